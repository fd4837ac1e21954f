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


AVERAGING = ("mean and std at each entry over the runs that reached it with a finite value (how many: 'n'); "
             "a run that stopped early (see 'stopped_early') leaves the later entries to the others")


def _mean_std(rows) -> dict:
    """Mean and std at each index over the rows that reach it with a finite value; ``n``: how many did.

    Rows may differ in length (a run that stopped early is shorter); ``None`` (a non-finite value in the
    record) counts as missing. An index no row holds a finite value at gives ``None``.
    """
    a = np.full((len(rows), max((len(r) for r in rows), default=0)), np.nan)
    for i, r in enumerate(rows):
        a[i, :len(r)] = [np.nan if v is None else v for v in r]
    finite = np.isfinite(a)
    n = finite.sum(axis=0)
    total = np.where(finite, a, 0.0).sum(axis=0)
    mean = np.divide(total, n, out=np.full(n.shape, np.nan), where=n > 0)
    variance = np.divide(np.where(finite, (a - mean) ** 2, 0.0).sum(axis=0), n, out=np.full(n.shape, np.nan),
                         where=n > 0)
    return {"mean": _none_for_nan(mean), "std": _none_for_nan(np.sqrt(variance)), "n": n.tolist()}


def _none_for_nan(values) -> list:
    return [float(v) if np.isfinite(v) else None for v in values]


def stopped_early(records) -> dict:
    """How many of ``records`` stopped before their planned iterations, and each one's seed, widths, iterations
    done and reason (``History.stop_reason``)."""
    runs = [{"seed": r["seed"], "widths": r["widths"], "iterations_done": r["iterations_done"],
             "reason": r["stop_reason"]} for r in records if r.get("stop_reason")]
    return {"count": len(runs), "runs": runs}


def summarise_exp1(records) -> dict:
    """Per method: mean ± std over seeds of the curves (over the runs that reached each iteration, counts in
    ``n``), and which runs stopped early and why."""
    out = {}
    for method in ("taylor", "mm"):
        runs = [r for r in records if r["method"] == method]
        out[method] = {
            "seeds": len(runs),
            "stopped_early": stopped_early(runs),
            "averaging": AVERAGING,
            "loss_train": _mean_std([r["loss_train"] for r in runs]),
            "loss_test": _mean_std([r["loss_test"] for r in runs]),
            "tau": _mean_std([r["tau"] for r in runs]),
            "rmse_test": _mean_std([[r["rmse_test"]] for r in runs]),
            "seconds_per_iteration": _mean_std([[r["seconds_per_iteration"]] for r in runs]),
        }
    return out


def summarise_exp2(records, hidden, depths) -> dict:
    """Grids (rows: depths, columns: hidden widths) of mean and std over seeds (over the runs with a finite
    value: ``n``), of how many runs stopped early, and the list of those runs with their reasons."""
    grids, cells = {}, [[[r for r in records if tuple(r["widths"]) == exp2_widths(w, L)] for w in hidden]
                        for L in depths]
    for field in ("rmse_train", "rmse_test", "seconds"):
        stats = [[_mean_std([[r[field]] for r in cell]) for cell in row] for row in cells]
        grids[field] = {key: [[cell[key][0] for cell in row] for row in stats] for key in ("mean", "std", "n")}
    grids["stopped_early"] = [[stopped_early(cell)["count"] for cell in row] for row in cells]
    return {"hidden": list(hidden), "depths": list(depths), **grids, "runs": len(records),
            "stopped_runs": stopped_early(records)["runs"], "averaging": AVERAGING}


def stop_lines(summary: dict) -> list[str]:
    """One line per method (Experiment 1) or one in all (Experiment 2): how many runs stopped early, and
    why (the reasons, each with its count); nothing for a summary written before these were recorded."""
    if summary["experiment"] == "exp1":
        groups = [(m, summary[m]["seeds"], summary[m].get("stopped_early", {}).get("runs")) for m in ("taylor", "mm")]
    else:
        groups = [("taylor", summary.get("runs"), summary.get("stopped_runs"))]
    lines = []
    for method, n_runs, runs in groups:
        if runs is None:
            continue
        reasons = {}
        for r in runs:
            reason = r["reason"].split(": ", 1)[-1]       # "iteration 12: the loss ..." -> "the loss ..."
            reasons[reason] = reasons.get(reason, 0) + 1
        why = "; ".join(f"{count} x {reason}" for reason, count in reasons.items())
        lines.append(f"{method}: {len(runs)} of {n_runs} runs stopped early" + (f" ({why})" if why else ""))
    return lines


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
