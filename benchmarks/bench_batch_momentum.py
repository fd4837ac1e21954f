"""Benchmark: the moment constants of ``geo-batch``'s direction, chosen on validation data (never the test set).

    python benchmarks/bench_batch_momentum.py [--seeds 3] [--workers 2] [--only TEXT] [--epochs E]

``geo-batch`` takes Adam's direction on the spheres and chooses the length itself; the moment constants
``(beta1, beta2)`` shape the direction only. This measures each candidate's validation RMSE [N] on three
data sets: the simulator at 30,000 and 300,000 samples and the simulator's flights at 75,000 samples written
as Neural-Fly CSVs and read back (as ``bench_time_to_accuracy.py`` makes them). Every run: the training part
of the default random split, its validation fifth held out (``budget.validation_rows``, as the budget ladder
holds it out), spectral layers at the budget ladder's first rung (the rung the ladder picks for spectral layers
on these sets), batch 1024, float32, 20 epochs (12 on the 300,000-sample set), seeds 1..``--seeds``. The
test part is not read. Columns: mean ± std over seeds of the validation RMSE after the last step.
"""
from __future__ import annotations

import argparse
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

CANDIDATES = ((0.9, 0.999), (0.95, 0.999), (0.97, 0.999), (0.95, 0.99))
SETS = {"simulator, 30,000": (dict(data="sim", n_samples=30000), 20),
        "Neural-Fly CSVs, 75,000": (dict(data="neural-fly"), 20),
        "simulator, 300,000": (dict(data="sim", n_samples=300000), 12)}
BATCH = 1024


def validation_problem(job: dict) -> dict:
    """One data set and seed as the budget ladder trains its rungs (``budget.select_lipschitz``): the budget
    from all training rows at the ladder's first rung, the scaling fitted on the rows not held out; the fitting
    rows ``fit`` and the validation rows ``val`` scaled, in float32, and the steps of ``job["epochs"]`` (or the
    set's) epochs."""
    from spherenet.budget import LADDER, budget_for, validation_rows
    from spherenet.data import StandardScaling
    from spherenet.experiments import load_problem, network_widths, settings_for
    from spherenet.network import NormalisedMLP
    base, epochs = SETS[job["set"]]
    epochs, seed = job.get("epochs") or epochs, job["seed"]
    s = settings_for(**base, data_path=job["path"] if base["data"] == "neural-fly" else None, method="geo-batch",
                     seed=seed, batch_size=BATCH)
    train_part, _ = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    held_out = validation_rows(train_part, s["split"], seed)
    X, Y = np.asarray(train_part.X, np.float64), np.asarray(train_part.Y, np.float64)
    widths = network_widths(s)
    product = float(np.prod(NormalisedMLP(widths, seed=seed).radii))
    K = budget_for(LADDER[0], X, Y, product)
    scaling = StandardScaling.fit(X[~held_out], Y[~held_out], K, product)
    fit = [a.astype(np.float32) for a in (scaling.transform_inputs(X[~held_out]),
                                          scaling.transform_targets(Y[~held_out]))]
    val = [a.astype(np.float32) for a in (scaling.transform_inputs(X[held_out]),
                                          scaling.transform_targets(Y[held_out]))]
    return dict(widths=widths, seed=seed, K=K, scaling=scaling, fit=fit, val=val,
                steps=epochs * (len(fit[0]) // BATCH))


def validation_rmse(job: dict) -> dict:
    """Every candidate's validation RMSE for one data set and seed (:func:`validation_problem`)."""
    from threadpoolctl import threadpool_limits

    from spherenet.beyond.stochastic import BatchGeodesicStep
    from spherenet.network import NormalisedMLP
    from spherenet.train import train
    p = validation_problem(job)
    out = {}
    with threadpool_limits(1):
        for betas in CANDIDATES:
            net = NormalisedMLP(p["widths"], seed=p["seed"], dtype=np.float32)
            history = train(net, *p["fit"], BatchGeodesicStep(betas=betas), p["steps"], *p["val"], batch_size=BATCH,
                            seed=p["seed"], norm="spectral", eval_every=p["steps"])
            out[str(betas)] = float(p["scaling"].rmse_newtons(history.loss_test[-1]))
    return {"set": job["set"], "seed": p["seed"], "lipschitz": p["K"], "rmse": out}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--only", default=None, help="run only the data sets whose name contains this text")
    p.add_argument("--epochs", type=int, default=None, help="epochs of every run (default: 20, 12 on 300,000)")
    p.add_argument("--out", default="out/bench_batch_momentum")
    args = p.parse_args()
    chosen = [name for name in SETS if args.only is None or args.only in name]
    path = None
    if any(SETS[name][0]["data"] == "neural-fly" for name in chosen):
        import sys
        sys.path.insert(0, str(Path(__file__).parent))
        from bench_time_to_accuracy import write_flights
        path = write_flights(75000, Path(args.out) / "neural-fly-75000" / "flights")
    jobs = [{"set": name, "seed": seed, "path": path, "epochs": args.epochs}
            for name in chosen for seed in range(1, args.seeds + 1)]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(validation_rmse, jobs))
    print("| (beta1, beta2) | " + " | ".join(chosen) + " |")
    print("|---|" + "---|" * len(chosen))
    for betas in CANDIDATES:
        cells = []
        for name in chosen:
            values = [r["rmse"][str(betas)] for r in results if r["set"] == name]
            cells.append(f"{np.mean(values):.3f} ± {np.std(values):.3f}")
        print(f"| {betas} | " + " | ".join(cells) + " |")
    for name in chosen:
        print(f"{name}: K = " + ", ".join(f"{r['lipschitz']:.0f}" for r in results if r["set"] == name))


if __name__ == "__main__":
    main()
