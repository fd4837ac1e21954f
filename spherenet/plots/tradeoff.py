"""The accuracy-vs-certificate figure of a Lipschitz sweep (:mod:`spherenet.tradeoff`)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure


def _series(summary: dict, field: str, stat: str = "mean") -> np.ndarray:
    return np.array([point[field][stat] for point in summary["curve"]], float)


def _references(ax, summary: dict) -> None:
    ref = summary["reference"]
    lines = [(ref["rmse_test_linear"], "linear least squares", "tab:gray", "--"),
             (summary["adam"]["rmse_test"]["mean"], "Adam, tuned (no certificate)", "tab:red", "-."),
             (summary["paper"]["rmse_test"]["mean"], "the paper's pipeline", "tab:purple", ":")]
    if ref.get("label_noise_rmse"):
        lines.append((ref["label_noise_rmse"], "label noise (simulator)", "k", ":"))
    for y, label, colour, style in lines:
        if y is not None and np.isfinite(y):
            ax.axhline(y, color=colour, ls=style, lw=1.2, label=f"{label}: {y:.2f} N")


def _budget_marks(ax, summary: dict) -> None:
    chosen = np.median(summary["auto"]["chosen"])
    ax.axvline(chosen, color="tab:green", lw=1.2,
               label=f"chosen on validation: K = {chosen:.3g} ({summary['auto']['rmse_test']['mean']:.2f} N)")
    ax.axvline(summary["paper_budget"], color="tab:purple", lw=1.2, ls=":",
               label=f"the paper's implicit budget K = {summary['paper_budget']:.3g}")


def tradeoff_figure(summary: dict, path) -> Path:
    """The accuracy a Lipschitz budget costs, and how tight its certificate is.

    Parameters
    ----------
    summary : dict
        The summary of ``spherenet.tradeoff.tradeoff``: ``curve`` (one point per budget ``K``, with the mean and
        std of ``rmse_test``, ``lipschitz_bound`` and ``lipschitz_lower``), ``reference``, ``adam``, ``paper``,
        ``paper_budget`` and ``auto`` (the budgets chosen on validation).
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``. Left: test (and train) RMSE against the budget ``K``, with the references. Right: the
        certified bound and the empirical lower bound against ``K``, beside the line bound = ``K``.
    """
    K = np.array([point["lipschitz"] for point in summary["curve"]])
    fig = Figure(figsize=(13, 4.6), layout="constrained")
    left, right = fig.subplots(1, 2)
    left.errorbar(K, _series(summary, "rmse_test"), _series(summary, "rmse_test", "std"), marker="o",
                  color="tab:blue", capsize=3, label="test RMSE (mean ± std over seeds)")
    left.plot(K, _series(summary, "rmse_train"), marker=".", ls="--", color="tab:blue", alpha=0.6,
              label="train RMSE")
    _references(left, summary)
    _budget_marks(left, summary)
    adam = summary["adam"]
    if adam["lipschitz_lower"]["mean"] is not None:
        left.plot(adam["lipschitz_lower"]["mean"], adam["rmse_test"]["mean"], marker="*", ms=12, ls="none",
                  color="tab:red", label=f"Adam at its empirical lower bound {adam['lipschitz_lower']['mean']:.3g}")
    left.set(xscale="log", xlabel="Lipschitz budget K [N per unit of the raw features' norm]",
             ylabel="RMSE [N]", title="accuracy against the certified budget")
    left.legend(fontsize=7.5, loc="upper right")
    right.loglog(K, K, color="k", lw=0.8, label="bound = K (the budget)")
    right.plot(K, _series(summary, "lipschitz_bound"), marker="o", color="tab:orange",
               label="certified: t ∏‖W_i‖₂ a / min s")
    right.plot(K, _series(summary, "lipschitz_lower"), marker="v", color="tab:green",
               label="empirical lower bound: max_n ‖J(x_n)‖₂")
    right.set(xlabel="Lipschitz budget K", ylabel="Lipschitz constant", title="how much of the budget is used")
    right.legend(fontsize=8)
    cfg = summary["config"]
    fig.suptitle(f"{cfg['method']} on {cfg['data']} ({cfg['split']} split), {'-'.join(map(str, cfg['widths']))}, "
                 f"{cfg['iterations']} iterations, {cfg['seeds']} seeds" + (" (quick settings)" if summary.get("quick") else ""))
    return save_figure(fig, path)
