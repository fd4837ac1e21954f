"""Figure of the Taylor models along the update curve: where the jets are exact, and which step each order takes."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure


def along_curve(diag: dict, path, title: str | None = None) -> Path:
    """Draw ``spherenet.taylor.along_curve``'s output: true ``φ(t) - φ(0)`` against the Taylor models of
    orders ``1..r``, the fraction of flipped ReLU units on a twin axis, and each order's step ``τ``.

    Writes one PNG to ``path`` and returns it (as a ``Path``).
    """
    t, phi, models, flips = diag["t"], diag["phi"], diag["models"], diag["flip_fraction"]
    fig = Figure(figsize=(7.5, 4.6))
    ax = fig.add_subplot()
    ax.plot(t, phi, color="black", lw=2.4, label=r"true $\varphi(t)-\varphi(0)$", zorder=5)
    for m, (model, tau) in enumerate(zip(models, diag["tau"]), start=1):
        colour = f"C{m - 1}"
        ax.plot(t, model, ls="--", lw=1.3, color=colour, label=rf"order-{m} model, $\tau$ = {tau:.3g}")
        ax.axvline(tau, color=colour, ls=":", lw=1.0)
        # the true loss reached by this order's step (markers of equal steps overlap; the legend lists all)
        ax.plot([tau], [np.interp(tau, t, phi)], marker="o", ms=7 - m, color=colour, zorder=6)
    # The models of high order run off quickly once the pattern changes: keep φ in view.
    span = float(np.ptp(phi)) or 1.0
    ax.set_ylim(phi.min() - 0.5 * span, phi.max() + 0.5 * span)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("angle t on the update curve (rad)")
    ax.set_ylabel(r"$\varphi(t)-\varphi(0)$")
    ax2 = ax.twinx()
    ax2.fill_between(t, flips, step="mid", color="grey", alpha=0.25, lw=0)
    ax2.plot(t, flips, color="grey", lw=1, label="flipped ReLU units")
    ax2.set_ylabel("fraction of ReLU units flipped since t = 0", color="grey")
    ax2.set_ylim(0, max(float(flips.max()) * 1.1, 1e-3))
    lines, labels = ax.get_legend_handles_labels()
    lines2, labels2 = ax2.get_legend_handles_labels()
    ax.legend(lines + lines2, labels + labels2, fontsize=8, loc="best")
    ax.set_title(title or rf"Taylor models of $\varphi$ ($\beta$ = {diag['beta']:.3g}, "
                          rf"$\kappa$ = {diag['kappa']:.3g})", fontsize=10)
    return save_figure(fig, path)
