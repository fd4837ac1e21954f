"""The paper's two experiments (PAPER_RESULTS.md), as sweeps of runs plus their summaries.

Experiment 1: network 12-25-30-15-3, many seeds; Algorithm 1 for 200 iterations and Algorithm 2 for 3000;
mean ± std over seeds of train/test J and of the step tau.
Experiment 2: hidden widths {15, 20, 25, 30, 35} x depths L in {4, 6, 8, 10, 12} (equal hidden widths),
Algorithm 1 for 200 iterations; mean and std of the final train/test RMSE [N] and of the time per run.
"""
from __future__ import annotations

import numpy as np

from .experiments import sweep

# The paper trains in float32; so do both experiments here (float64 gives the same errors to ~1e-3 N).
FULL = {
    "exp1": dict(seeds=40, taylor_iterations=200, mm_iterations=3000, n_samples=30000, dtype="float32"),
    "exp2": dict(seeds=40, hidden=(15, 20, 25, 30, 35), depths=(4, 6, 8, 10, 12), iterations=200,
                 n_samples=30000, dtype="float32"),
}
QUICK = {
    "exp1": dict(seeds=3, taylor_iterations=60, mm_iterations=300, n_samples=4000, dtype="float32"),
    "exp2": dict(seeds=2, hidden=(15, 25), depths=(4, 6), iterations=40, n_samples=3000, dtype="float32"),
}


# The paper's pipeline exactly: its scaling (x / ||x||, targets to P_op / y_max). The split stays the one the
# shipped summaries (figures/exp1, figures/exp2) were run with, the held-out figure-8 flights.
PAPER = dict(scaling="paper", split="flights")


def exp1_settings(seeds, taylor_iterations, mm_iterations, n_samples, dtype="float32") -> list[dict]:
    common = dict(PAPER, widths=(12, 25, 30, 15, 3), n_samples=n_samples, dtype=dtype)
    return ([dict(common, method="taylor", iterations=taylor_iterations, seed=s) for s in range(seeds)]
            + [dict(common, method="mm", iterations=mm_iterations, seed=s) for s in range(seeds)])


def exp2_widths(hidden: int, depth: int) -> tuple[int, ...]:
    """``12 - hidden x (L-1) - 3``: L weight matrices, all hidden layers of width ``hidden``."""
    return (12,) + (hidden,) * (depth - 1) + (3,)


def exp2_settings(seeds, hidden, depths, iterations, n_samples, dtype="float32") -> list[dict]:
    return [dict(PAPER, method="taylor", widths=exp2_widths(w, L), iterations=iterations, seed=s,
                 n_samples=n_samples, dtype=dtype)
            for L in depths for w in hidden for s in range(seeds)]


def _mean_std(rows) -> dict:
    a = np.array([[np.nan if v is None else v for v in r] for r in rows], dtype=float)
    return {"mean": np.nanmean(a, axis=0).tolist(), "std": np.nanstd(a, axis=0).tolist()}


def summarise_exp1(records) -> dict:
    """Mean ± std over seeds of the curves, per method (curves of one method have equal length)."""
    out = {}
    for method in ("taylor", "mm"):
        rs = [r for r in records if r["method"] == method]
        n = min(len(r["loss_train"]) for r in rs)
        out[method] = {
            "seeds": len(rs),
            "loss_train": _mean_std([r["loss_train"][:n] for r in rs]),
            "loss_test": _mean_std([r["loss_test"][:n] for r in rs]),
            "tau": _mean_std([r["tau"][:n - 1] for r in rs]),
            "rmse_test": _mean_std([[r["rmse_test"]] for r in rs]),
            "seconds_per_iteration": _mean_std([[r["seconds_per_iteration"]] for r in rs]),
        }
    return out


def summarise_exp2(records, hidden, depths) -> dict:
    """Grids (rows: depths, columns: hidden widths) of mean and std over seeds."""
    grids = {}
    for field in ("rmse_train", "rmse_test", "seconds"):
        mean = np.full((len(depths), len(hidden)), np.nan)
        std = mean.copy()
        for i, L in enumerate(depths):
            for j, w in enumerate(hidden):
                vals = [r[field] for r in records if tuple(r["widths"]) == exp2_widths(w, L)]
                vals = np.array([np.nan if v is None else v for v in vals], float)
                mean[i, j], std[i, j] = np.nanmean(vals), np.nanstd(vals)
        grids[field] = {"mean": mean.tolist(), "std": std.tolist()}
    return {"hidden": list(hidden), "depths": list(depths), **grids}


def reproduce(which: str, out_dir, quick=False, seeds=None, n_samples=None, executor=None,
              progress=None) -> dict:
    """Run experiment ``which`` (``"exp1"`` or ``"exp2"``) and return its summary.

    ``quick``: the small ``QUICK`` settings instead of the paper's ``FULL`` ones; ``seeds``/``n_samples``
    override the number of seeds and of simulator samples.
    """
    cfg = dict((QUICK if quick else FULL)[which])
    if seeds is not None:
        cfg["seeds"] = seeds
    if n_samples is not None:
        cfg["n_samples"] = n_samples
    if which == "exp1":
        records = sweep(exp1_settings(**cfg), out_dir, executor, progress)
        summary = summarise_exp1(records)
    else:
        records = sweep(exp2_settings(**cfg), out_dir, executor, progress)
        summary = summarise_exp2(records, cfg["hidden"], cfg["depths"])
        summary["total_run_seconds"] = float(sum(r["seconds"] for r in records))
    return {"experiment": which, "quick": quick, "config": cfg, **summary}
