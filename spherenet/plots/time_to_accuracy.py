"""Test RMSE against training seconds, one panel per data set (``benchmarks/bench_time_to_accuracy.py``)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure

COLOURS = ["tab:green", "tab:blue", "tab:cyan", "tab:orange", "tab:purple", "tab:brown", "tab:gray"]


def time_to_accuracy_figure(panels: dict, path) -> Path:
    """``panels``: ``{title: {"curves": {label: [[(seconds, rmse), ...] per seed]}, "targets": {name: rmse}}}``.

    Every seed's curve is drawn (same colour per method, labelled once); the targets are horizontal lines.
    Seconds are training time only (evaluation excluded), on a log axis.
    """
    fig = Figure(figsize=(6.4 * len(panels), 4.6), layout="constrained")
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    labels = list(dict.fromkeys(label for panel in panels.values() for label in panel["curves"]))
    colour_of = dict(zip(labels, COLOURS * (1 + len(labels) // len(COLOURS))))   # one colour per method
    for ax, (title, panel) in zip(axes, panels.items()):
        lows = []
        for label, runs in panel["curves"].items():
            colour = colour_of[label]
            for k, curve in enumerate(runs):
                t, e = np.array(curve, float).T if curve else (np.empty(0), np.empty(0))
                keep = t > 0
                ax.plot(t[keep], e[keep], color=colour, lw=1.3, alpha=0.8, label=label if k == 0 else None)
                lows.extend(e[keep])
        for name, value in panel.get("targets", {}).items():
            ax.axhline(value, color="k", ls=":", lw=1)
            ax.annotate(f"{name}: {value:.2f} N", (1, value), xycoords=("axes fraction", "data"), ha="right",
                        va="bottom", fontsize=8)
        ax.set_xscale("log")
        if lows:
            low = float(np.min(lows))
            ax.set_ylim(0.95 * low, min(float(np.max(lows)), 3 * low))
        ax.set(xlabel="training seconds (evaluation excluded)", ylabel="test RMSE [N]", title=title)
        ax.grid(alpha=0.3, which="both")
        ax.legend(fontsize=8)
    return save_figure(fig, path)
