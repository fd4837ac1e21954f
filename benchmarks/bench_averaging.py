"""Benchmark: the memory of the iterates' average a mini-batch run reports, chosen on validation data.

    python benchmarks/bench_averaging.py [--seeds 3] [--steps 4000] [--workers 2] [--only TEXT]

A mini-batch run of ``geo-batch`` reports the exponential average of its iterates with memory ``rho``, back on
the spheres (``spherenet.averaging``, docs/beyond.md §9; ``rho = 0``: the last iterate). Every candidate trains
the same iterates (the average changes what a run reports, not how it trains); this measures the validation
RMSE [N] of what each reports after 1/8, 1/4, 1/2 and all of ``--steps`` steps (the main job's 4,000 by
default), on the simulator at 30,000 samples and on its flights at 75,000 samples written as Neural-Fly CSVs
and read back. Every run as ``bench_batch_momentum.py`` sets it up: the training part's validation fifth held
out, spectral layers at the budget ladder's first rung, batch 1024, float32, seeds 1..``--seeds``. The test
part is not read. Cells: mean over seeds; the last column also gives every seed's value.
"""
from __future__ import annotations

import argparse
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from bench_batch_momentum import BATCH, validation_problem  # noqa: E402

from spherenet.experiments import MAIN_BATCH_STEPS  # noqa: E402

MEMORIES = (0.0, 0.9, 0.95, 0.98, 0.99)
SETS = ("simulator, 30,000", "Neural-Fly CSVs, 75,000")


def validation_curves(job: dict) -> dict:
    """Each memory's validation RMSE at the four points of the run, for one data set and seed."""
    from threadpoolctl import threadpool_limits

    from spherenet.network import NormalisedMLP
    from spherenet.train import train
    p = validation_problem(job)
    steps = job["steps"]
    out = {}
    with threadpool_limits(1):
        for memory in MEMORIES:
            net = NormalisedMLP(p["widths"], seed=p["seed"], dtype=np.float32)
            history = train(net, *p["fit"], "geo-batch", steps, *p["val"], batch_size=BATCH, seed=p["seed"],
                            norm="spectral", eval_every=steps // 8, average=memory)
            at = history.test_iterations()
            out[memory] = [float(p["scaling"].rmse_newtons(history.loss_test[at.index(k * steps // 8)]))
                           for k in (1, 2, 4, 8)]
    return {"set": job["set"], "rmse": out}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--steps", type=int, default=MAIN_BATCH_STEPS, help="steps of every run (a multiple of 8)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", default=None, help="run only the data sets whose name contains this text")
    p.add_argument("--out", default="out/bench_averaging", help="where the Neural-Fly CSVs are written")
    args = p.parse_args(argv)
    if args.steps < 8 or args.steps % 8:
        p.error(f"--steps must be a positive multiple of 8, got {args.steps}")
    chosen = [name for name in SETS if args.only is None or args.only in name]
    path = None
    if any("Neural-Fly" in name for name in chosen):
        from bench_time_to_accuracy import write_flights
        path = write_flights(75000, Path(args.out) / "neural-fly-75000" / "flights")
    jobs = [{"set": name, "seed": seed, "path": path, "epochs": None, "steps": args.steps}
            for name in chosen for seed in range(1, args.seeds + 1)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(validation_curves, jobs))
    points = [k * args.steps // 8 for k in (1, 2, 4, 8)]
    for name in chosen:
        print(f"{name}: validation RMSE [N] after {', '.join(map(str, points))} steps")
        print("| memory | " + " | ".join(map(str, points)) + " | seeds at the end |")
        print("|---|" + "---|" * (len(points) + 1))
        for memory in MEMORIES:
            curves = np.array([r["rmse"][memory] for r in results if r["set"] == name])
            label = "0 (the last iterate)" if memory == 0 else f"{memory:g}"
            print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in curves.mean(0)) + " | "
                  + " / ".join(f"{v:.3f}" for v in curves[:, -1]) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
