"""Accuracy against the certified Lipschitz bound: a sweep of the budget K, with its references.

For one method and one data source, :func:`tradeoff` trains the standard pipeline at ``points`` budgets
``K(rho)`` log-spaced over ``rho in [10^-0.5, 10^-4.5]`` (:func:`spherenet.budget.budget_for`), for
``seeds`` initialisations each, on a sweep executor. Beside the curve it runs, per seed:

* the default run, whose budget is chosen on a validation part (where the automatic rule lands);
* the paper's pipeline (``scaling="paper"``, the same method), and the standard pipeline at the paper's
  implicit budget ``K(rho = P_op)``: the paper scales the targets so that the largest has norm
  ``P_op = prod ||W_i||_2`` at initialisation, on unit-norm inputs, which is ``rho = P_op``;
* tuned, unconstrained Adam (``method="adam"``, full batch, as its users run it), which certifies
  nothing: only its empirical lower bound is known;

and records linear least squares, the training mean and the label noise on the same split. The summary is
JSON (``spherenet plot`` redraws it); :func:`spherenet.plots.tradeoff.tradeoff_figure` draws it.
"""
from __future__ import annotations

import numpy as np

from .budget import budget_for
from .experiments import load_problem, settings_for, sweep

RHO_RANGE = (10.0 ** -0.5, 10.0 ** -4.5)
QUICK = dict(points=5, seeds=2, n_samples=3000, iterations=60)
FULL = dict(points=9, seeds=3, n_samples=30000, iterations=200)


def budgets(base: dict, points: int) -> tuple[list[float], float]:
    """``points`` budgets log-spaced between ``K(rho)`` at the ends of ``RHO_RANGE`` for the run settings
    ``base``, and the paper's implicit budget ``K(P_op)`` of its first seed's network."""
    from .network import NormalisedMLP
    s = settings_for(**base)
    train, _ = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    rhos = np.geomspace(*RHO_RANGE, points)
    net = NormalisedMLP(s["widths"], seed=s["seed"])                         # the paper's network
    return [budget_for(rho, train.X, train.Y, 1.0) for rho in rhos], \
        budget_for(net.spectral_norm_product(), train.X, train.Y, 1.0)


def tradeoff_settings(base: dict, points: int, seeds: int) -> tuple[dict, list[dict]]:
    """The sweep's run settings, grouped: ``{"curve": [...], "auto": [...], ...}`` and the flat list."""
    Ks, K_paper = budgets(base, points)
    group = {
        "curve": [dict(base, lipschitz=K, seed=s) for K in Ks for s in range(seeds)],
        "auto": [dict(base, lipschitz=None, seed=s) for s in range(seeds)],
        "paper_budget": [dict(base, lipschitz=K_paper, seed=s) for s in range(seeds)],
        "paper": [dict(base, scaling="paper", lipschitz=None, seed=s) for s in range(seeds)],
        "adam": [dict(base, method="adam", lipschitz=None, seed=s) for s in range(seeds)],
    }
    return group, [s for runs in group.values() for s in runs]


def _stats(values) -> dict:
    a = np.array([np.nan if v is None else v for v in values], float)
    a = a[np.isfinite(a)]
    if not a.size:
        return {"mean": None, "std": None, "n": 0}
    return {"mean": float(a.mean()), "std": float(a.std()), "n": int(a.size)}


def summarise(group: dict, records: list[dict], Ks: list[float]) -> dict:
    """Mean and std over seeds of each budget's errors and bounds, and of each reference. ``records`` are
    in the order of ``group``'s settings (the curve's runs by budget, then by seed)."""
    by_key = iter(records)
    runs = {name: [next(by_key) for _ in settings] for name, settings in group.items()}
    seeds = len(runs["curve"]) // len(Ks)
    fields = ("rmse_test", "rmse_train", "lipschitz_bound", "lipschitz_lower", "lipschitz_budget")
    out = {"curve": [{"lipschitz": float(K), **{f: _stats([r[f] for r in runs["curve"][k * seeds:(k + 1) * seeds]])
                                               for f in fields}} for k, K in enumerate(Ks)]}
    for name in ("auto", "paper_budget", "paper", "adam"):
        out[name if name != "paper_budget" else "paper_budget_run"] = {f: _stats([r.get(f) for r in runs[name]])
                                                                        for f in fields}
    out["auto"]["chosen"] = [r["lipschitz"] for r in runs["auto"]]
    out["reference"] = {k: records[0][k] for k in ("rmse_test_linear", "rmse_test_mean", "label_noise_rmse")}
    return out


def tradeoff(out_dir, method="geo-cg-layer", data="sim", data_path=None, widths=(12, 25, 30, 15, 3),
             split="random", quick=False, points=None, seeds=None, n_samples=None, iterations=None,
             executor=None, progress=None) -> dict:
    """Run the sweep of test error against the Lipschitz budget (see the module docstring).

    Parameters
    ----------
    out_dir : str or path-like
        Where the runs are stored (``out_dir/runs``); a rerun resumes, finished runs are not redone.
    method, data, data_path, widths, split
        The runs' method, data and network (:func:`spherenet.experiments.settings_for`).
    quick : bool
        Small settings (``QUICK``) instead of ``FULL``.
    points, seeds, n_samples, iterations : int, optional
        Override the settings': budgets on the curve, seeds per budget, samples, iterations per run.
    executor : concurrent.futures.Executor, optional
        Where the runs execute (default: a local process pool; :func:`spherenet.experiments.sweep`).
    progress : callable, optional
        ``progress(done, total, record)`` as runs finish.

    Returns
    -------
    dict
        The summary: the settings, the curve (per budget: mean and std over seeds of the test RMSE and of
        the certified and empirical bounds), the budget chosen on validation, the paper's pipeline, its
        implicit budget, Adam and the reference errors (:func:`summarise`).
    """
    cfg = dict(QUICK if quick else FULL)
    for key, value in (("points", points), ("seeds", seeds), ("n_samples", n_samples),
                       ("iterations", iterations)):
        if value is not None:
            cfg[key] = value
    base = dict(method=method, data=data, data_path=data_path, widths=tuple(widths), split=split,
                n_samples=cfg["n_samples"], iterations=cfg["iterations"])
    group, settings = tradeoff_settings(base, cfg["points"], cfg["seeds"])
    Ks = [s["lipschitz"] for s in group["curve"][::cfg["seeds"]]]
    records = sweep(settings, out_dir, executor, progress)
    summary = summarise(group, records, Ks)
    return {"experiment": "lipschitz", "quick": quick, "config": {**cfg, **base, "widths": list(widths)},
            "paper_budget": group["paper_budget"][0]["lipschitz"], **summary}
