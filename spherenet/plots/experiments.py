"""Figures of training runs and of the paper's two experiments."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure

LABELS = {"taylor": "Algorithm 1 (Taylor / AD)", "mm": "Algorithm 2 (majorant / MM)"}
COLOURS = {"taylor": "tab:blue", "mm": "tab:orange"}


_save = save_figure


def _none_to_nan(values) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], float)


def training_figure(record: dict, path) -> Path:
    """Train/test loss J per iteration (log scale) and, when the method has one, the step tau."""
    has_tau = bool(record.get("tau"))
    fig = Figure(figsize=(10 if has_tau else 5.5, 3.8))
    axes = fig.subplots(1, 2 if has_tau else 1, squeeze=False)[0]
    # The test loss (and a mini-batch run's training loss) exists at the evaluated iterations only.
    evaluated = record.get("eval_iterations") or list(range(len(record["loss_test"])))
    train = _none_to_nan(record["loss_train"])
    axes[0].semilogy(evaluated if len(train) == len(evaluated) else np.arange(len(train)), train, label="train")
    axes[0].semilogy(evaluated, _none_to_nan(record["loss_test"]), label="test", ls="--")
    axes[0].set(xlabel="iteration", ylabel="loss J", title=f"{record['method']}, "
                f"{'-'.join(map(str, record['widths']))}, seed {record['seed']}")
    axes[0].legend()
    if has_tau:
        tau = _none_to_nan(record["tau"])
        axes[1].semilogy(np.arange(1, len(tau) + 1), np.where(tau > 0, tau, np.nan), color="tab:green")
        axes[1].set(xlabel="iteration", ylabel="step angle tau [rad]", title="automatic step size")
    return _save(fig, path)


def _band(ax, x, stats, colour, label, log=True):
    mean, std = np.array(stats["mean"], float), np.array(stats["std"], float)
    ax.plot(x, mean, color=colour, label=label)
    lower = np.where(mean - std > 0, mean - std, mean / 10) if log else mean - std
    ax.fill_between(x, lower, mean + std, color=colour, alpha=0.25, lw=0)


def exp1_figures(summary: dict, folder) -> list[Path]:
    """Experiment 1: mean ± std over seeds of train J, test J and tau, both algorithms (log scales)."""
    fig = Figure(figsize=(14, 3.9))
    axes = fig.subplots(1, 3)
    for method in ("taylor", "mm"):
        m = summary[method]
        n = len(m["loss_train"]["mean"])
        for ax, key in zip(axes[:2], ("loss_train", "loss_test")):
            _band(ax, np.arange(n), m[key], COLOURS[method], LABELS[method])
        _band(axes[2], np.arange(1, n), m["tau"], COLOURS[method], LABELS[method])
    for ax, title in zip(axes, ("train loss J", "test loss J", "step tau [rad]")):
        ax.set(xscale="log", yscale="log", xlabel="iteration", title=title)
        ax.set_xlim(left=1)
    axes[0].legend()
    seeds = summary["taylor"]["seeds"]
    stopped = sum(summary[m].get("stopped_early", {}).get("count", 0) for m in ("taylor", "mm"))
    fig.suptitle(f"Experiment 1: 12-25-30-15-3, mean ± std over {seeds} seeds"
                 + (f" ({stopped} stopped early: later points average the runs that reached them)" if stopped else "")
                 + (" (quick settings)" if summary.get("quick") else ""))
    return [_save(fig, Path(folder) / "exp1.png")]


def exp2_figures(summary: dict, folder) -> list[Path]:
    """Experiment 2: heat maps over depth x hidden width of RMSE [N] (mean, std) and time per run."""
    panels = [("rmse_train", "mean", "train RMSE mean [N]"), ("rmse_test", "mean", "test RMSE mean [N]"),
              ("rmse_test", "std", "test RMSE std [N]"), ("seconds", "mean", "time per run [s]")]
    fig = Figure(figsize=(16, 3.8), layout="constrained")
    for k, (ax, (field, stat, title)) in enumerate(zip(fig.subplots(1, len(panels)), panels)):
        grid = np.array(summary[field][stat], float)
        im = ax.imshow(grid, cmap="viridis", origin="lower", aspect="auto")
        ax.set(xticks=range(len(summary["hidden"])), xticklabels=summary["hidden"], yticks=range(
            len(summary["depths"])), yticklabels=summary["depths"], xlabel="hidden width",
            ylabel="depth L" if k == 0 else "", title=title)
        for (i, j), v in np.ndenumerate(grid):
            ax.text(j, i, f"{v:.3g}", ha="center", va="center", fontsize=7, color="w")
        fig.colorbar(im, ax=ax, shrink=0.8)
    fig.suptitle(f"Experiment 2: Algorithm 1, {summary['config']['iterations']} iterations" + (" (quick settings)" if summary.get("quick") else ""))
    return [_save(fig, Path(folder) / "exp2.png")]
