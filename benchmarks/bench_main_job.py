"""The main job against tuned Adam, at equal iterations and at equal training time (issue 15's "beside it").

    python benchmarks/bench_main_job.py [--seeds 1,2,3] [--workers 2] [--out out/bench_main_job]

For each seed: ``spherenet train`` as the README runs it (no options: ``geo-batch`` on mini-batches, spectral
layers, float32, the budget and then the batch size chosen on a validation fifth, 4,000 steps; the model it
reports is the average of its last ~20 iterates), then the project's Adam as its
users run it (biases, PyTorch's initialisation, standardised data, the learning rate tuned on a validation
fifth):

* with batch 1024, for the same number of steps (4,000: equal iterations);
* with batch 1024, and with the batch size tuned with the rate (``batch auto``: full, 256, 1024 or 4096), for
  the main job's own training seconds of that seed (``max_seconds``, every tuning candidate too: equal time).

Training seconds exclude evaluation and tuning. Runs go one per worker; a shared machine makes the seconds, and
so the equal-time rows, indicative. Prints a table (mean ± std over seeds, every seed's value, the batch sizes
trained with, and in how many seeds the main job ended lower than each Adam row) and writes it to
``OUT/summary.json``.
"""
from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from spherenet.experiments import MAIN_BATCH_STEPS, default_batch_size, default_method, run
from spherenet.results import write_json


def main_settings(steps: int) -> dict:
    """The main job's settings, resolved as ``spherenet train`` resolves them without options."""
    batch = default_batch_size(None)
    return dict(method=default_method(batch), batch_size=batch, iterations=steps, eval_every=500)


def adam_rows(steps: int, seconds: float) -> dict:
    """Row label -> settings of the Adam runs beside the main job (``seconds``: the main job's)."""
    timed = dict(iterations=10**7, max_seconds=seconds)
    rows = {f"Adam, batch 1024, lr tuned, {steps} it": dict(method="adam", batch_size=1024, iterations=steps),
            "Adam, batch 1024, lr tuned, same seconds": dict(method="adam", batch_size=1024, **timed),
            "Adam, batch and lr tuned, same seconds": dict(method="adam", batch_size="auto", **timed)}
    return {label: dict(s, eval_every=500) for label, s in rows.items()}


def _run(settings: dict) -> dict:
    record, _ = run(settings)
    return {k: record.get(k) for k in ("rmse_test", "rmse_test_linear", "iterations_done", "seconds_train", "lr",
                                       "batch_size_used", "lipschitz_budget", "lipschitz_bound")}


def table(rows: dict, seeds: list[int]) -> str:
    """Mean ± std and every seed's test RMSE per row, the batch sizes trained with, steps, seconds, and in how
    many seeds the main job (the first row) ended lower."""
    lines = [f"| run | test RMSE [N], mean ± std | seeds {', '.join(map(str, seeds))} | batch | steps | training s "
             f"| main job lower |", "|---|---|---|---|---|---|---|"]
    main = [r["rmse_test"] for r in next(iter(rows.values()))]
    for i, (label, records) in enumerate(rows.items()):
        tests = [r["rmse_test"] for r in records]
        batches = sorted({"full" if r["batch_size_used"] is None else str(r["batch_size_used"]) for r in records})
        lower = sum(m < t for m, t in zip(main, tests))
        lines.append(f"| {label} | {np.mean(tests):.3f} ± {np.std(tests):.3f} | "
                     f"{' / '.join(f'{t:.3f}' for t in tests)} | {', '.join(batches)} | "
                     f"{np.mean([r['iterations_done'] for r in records]):.0f} | "
                     f"{np.mean([r['seconds_train'] for r in records]):.2f} | "
                     f"{'—' if i == 0 else f'{lower} of {len(tests)}'} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", default="1,2,3", help="comma-separated seeds (default 1,2,3, the README's)")
    p.add_argument("--steps", type=int, default=MAIN_BATCH_STEPS, help="the main job's steps (default its own)")
    p.add_argument("--samples", type=int, default=30000, help="simulator samples, train + test (default 30000)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--out", default="out/bench_main_job")
    args = p.parse_args(argv)
    seeds = [int(s) for s in args.seeds.split(",")]
    start = time.perf_counter()
    with ProcessPoolExecutor(args.workers) as pool:
        main = main_settings(args.steps)
        main_runs = list(pool.map(_run, [dict(main, seed=s, n_samples=args.samples) for s in seeds]))
        rows = {f"`spherenet train` ({main['method']}, batch {main['batch_size']}), {args.steps} it": main_runs}
        jobs = {}
        for run_, seed in zip(main_runs, seeds):
            for label, s in adam_rows(args.steps, run_["seconds_train"]).items():
                jobs.setdefault(label, []).append(pool.submit(_run, dict(s, seed=seed, n_samples=args.samples)))
        rows.update({label: [f.result() for f in futures] for label, futures in jobs.items()})
    text = table(rows, seeds)
    linear = np.mean([r["rmse_test_linear"] for r in main_runs])
    text += f"\n\nlinear least squares on the same splits: {linear:.3f} N (mean over the seeds)"
    print(text)
    print(f"wall clock {time.perf_counter() - start:.0f} s")
    write_json(Path(args.out) / "summary.json", {"table": text, "seeds": seeds, "steps": args.steps,
                                                 "runs": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
