"""The comparison table: every baseline as its users run it, beside spherenet's default, on the simulator.

One command makes the table (runs are stored in ``OUT/runs`` and a rerun resumes, reading finished runs):

    python benchmarks/bench_baselines.py --seeds 3 --seconds 5 --out out/bench_baselines

Every row is ``spherenet train`` with the settings shown (``spherenet.experiments.run``), for seeds
``0..seeds-1`` (the initialisation, the mini-batches and the validation split; the data are the simulator's
default problem, 30,000 samples split 80/20 at random as ``spherenet train`` does, or with ``--split flights``
24,000 samples of random-waypoint flights to train and 6,000 of held-out figure-8 flights to test).
spherenet's default is its whole pipeline: the standard scaling with the Lipschitz budget chosen on a
validation part, then ``geo-batch`` on batches of 1024 with spectral layers (the budget chosen by its own
ladder, float32); its full-batch rule (``--batch-size full``) is ``geo-cg-layer``. (The main job's own length,
4,000 steps, against Adam at equal steps and equal time: ``bench_main_job.py``.) Adam and SGD tune their
learning rate (and, with ``batch auto``, the batch size) on a 20 % validation part of the training data for each seed, as ``spherenet train --method adam``
does; "equal time" rows stop every run, and every tuning candidate, after ``--seconds`` of training
(evaluation excluded). Columns: test and train RMSE [N], mean ± std over seeds; the settings the tuning chose
(per seed); iterations done; training and tuning seconds (means; the machine may be shared, so times are
indicative).
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np

from spherenet import baselines as bl
from spherenet.experiments import default_executor, load_problem, sweep
from spherenet.results import write_json

UNLIMITED = 10**7          # iterations for the equal-time rows: the time budget stops them
EVAL_EVERY = 500           # equal-time rows: evaluate the test set every 500 iterations (and at the last)


def rows(seconds: float, iterations: int = 200) -> dict:
    """Row label -> run settings (without the seed and the sample count)."""
    timed = dict(iterations=UNLIMITED, max_seconds=seconds, eval_every=EVAL_EVERY)
    n = dict(iterations=iterations)
    return {
        f"spherenet full batch (`geo-cg-layer`, `--batch-size full`), {iterations} it":
            dict(method="geo-cg-layer", **n),
        f"Algorithm 1 (`taylor`), {iterations} it": dict(method="taylor", **n),
        f"Adam, full batch, lr tuned, {iterations} it": dict(method="adam", **n),
        f"SGD, full batch, lr tuned, {iterations} it": dict(method="sgd", **n),
        f"AGD, the authors' conventions, {iterations} it": dict(method="agd", **n),
        f"retracted SGD on the spheres (lr 100), {iterations} it": dict(method="rsgd", **n),
        f"spherenet full batch (`geo-cg-layer`, `--batch-size full`), {seconds:g} s":
            dict(method="geo-cg-layer", **timed),
        f"Adam, full batch, lr tuned, {seconds:g} s": dict(method="adam", **timed),
        f"Adam, batch and lr tuned (batch auto), {seconds:g} s": dict(method="adam", batch_size="auto", **timed),
        f"spherenet default (`geo-batch`, batches of 1024, spectral layers), {seconds:g} s":
            dict(method="geo-batch", batch_size=1024, **timed),
        f"Adam, batch 1024, lr tuned, {seconds:g} s": dict(method="adam", batch_size=1024, **timed),
    }


def _stat(values) -> str:
    return f"{np.mean(values):.2f} ± {np.std(values):.2f}"


def _settings(records) -> str:
    if records[0].get("lr") is None:
        return "—"
    batch = lambda r: "full" if r.get("batch_size_used") is None else str(r["batch_size_used"])   # noqa: E731
    return ", ".join(f"{r['lr']:.2g}" + (f" / {batch(r)}" if r["batch_size"] == "auto" else "") for r in records)


def references(n_samples: int, split: str) -> dict:
    train, test = load_problem("sim", None, 0, n_samples, split=split)
    err = lambda P, Y: math.sqrt(np.mean(np.sum((P - Y) ** 2, axis=1)))    # noqa: E731
    line = bl.fit_linear(train.X, train.Y)
    mean = train.Y.mean(axis=0)
    return {"predicting the training mean": (err(np.broadcast_to(mean, test.Y.shape), test.Y),
                                             err(np.broadcast_to(mean, train.Y.shape), train.Y)),
            "least squares with a bias (exact)": (err(line(test.X), test.Y), err(line(train.X), train.Y))}


def table(groups: dict, seeds: int, n_samples: int, split: str) -> str:
    lines = [f"| method | test RMSE [N] | train RMSE [N] | tuned lr (/ batch), seeds 0..{seeds - 1} | iterations | "
             "training s | tuning s |", "|---|---|---|---|---|---|---|"]
    for label, records in groups.items():
        lines.append(f"| {label} | {_stat([r['rmse_test'] for r in records])} | "
                     f"{_stat([r['rmse_train'] for r in records])} | {_settings(records)} | "
                     f"{np.mean([r['iterations_done'] for r in records]):.0f} | "
                     f"{np.mean([r['seconds_train'] for r in records]):.1f} | "
                     f"{np.mean([r.get('seconds_tuning', 0.0) for r in records]):.0f} |")
    for label, (test, train) in references(n_samples, split).items():
        lines.append(f"| {label} | {test:.2f} | {train:.2f} | — | — | — | — |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--seconds", type=float, default=5.0, help="the equal-time budget (training seconds)")
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--samples", type=int, default=30000, help="simulator samples, train + test (default 30000)")
    p.add_argument("--iterations", type=int, default=200, help="iterations of the fixed-length rows")
    p.add_argument("--split", choices=("random", "flights"), default="random",
                   help="the test part: random 80/20 (the default of spherenet train) or held-out flights")
    p.add_argument("--only", default=None, help="run only the rows whose label contains this text")
    p.add_argument("--out", default="out/bench_baselines")
    args = p.parse_args(argv)
    chosen = {k: v for k, v in rows(args.seconds, args.iterations).items() if args.only is None or args.only in k}
    settings = [dict(v, seed=s, n_samples=args.samples, split=args.split) for v in chosen.values()
                for s in range(args.seeds)]
    start = time.perf_counter()
    executor = default_executor(args.workers)
    try:
        records = sweep(settings, args.out, executor,
                        progress=lambda done, total, r: print(f"  run {done}/{total}: {r['method']} seed {r['seed']}"
                                                              f" test {r['rmse_test']:.3f} N", flush=True))
    finally:
        executor.shutdown(cancel_futures=True)
    groups = {label: records[i * args.seeds:(i + 1) * args.seeds] for i, label in enumerate(chosen)}
    text = table(groups, args.seeds, args.samples, args.split)
    print(text)
    print(f"wall clock {time.perf_counter() - start:.0f} s for {len(settings)} runs")
    write_json(Path(args.out) / "summary.json", {"table": text, "seeds": args.seeds, "seconds": args.seconds,
                                                 "split": args.split})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
