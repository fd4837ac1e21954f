"""Figure of tutorial 2: the finite-difference check of the gradient, Euclidean and along the update curve."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure


def gradient_check(checks: dict, h, path) -> Path:
    """One panel per data set: the relative error of central differences against ``h``, both tests.

    Parameters
    ----------
    checks : dict
        ``{title: {"euclid": errors, "riem": errors, "flip_euclid": h, "flip_riem": h}}``: the errors of the
        Euclidean dot-product test and of ``-β = φ'(0)`` on the sphere for every ``h``, and the largest ``h``
        at which no ReLU unit flips for each.
    h : ndarray
        The finite-difference steps.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.

    Notes
    -----
    The ``h²`` truncation line is anchored at the last kink-free step when that step is at least ``1e-3``.
    """
    fig = Figure(figsize=(12, 4.8))
    axes = fig.subplots(1, len(checks), sharey=True)
    floor = min(min(c["euclid"].min(), c["riem"].min()) for c in checks.values()) / 10
    for ax, (title, c) in zip(axes, checks.items()):
        ax.loglog(h, c["euclid"], "o-", ms=4, color="C0",
                  label=r"Euclidean: $\frac{J(W+hU)-J(W-hU)}{2h}$ vs $\langle U, \nabla J\rangle$")
        ax.loglog(h, c["riem"], "s-", ms=4, color="C3",
                  label=r"on the sphere: $\frac{\varphi(h)-\varphi(-h)}{2h}$ vs $-\beta$")
        ax.loglog(h, c["euclid"][0] * h[0] / h, ":", color="0.2", lw=1.2, label=r"$\propto \varepsilon / h$ (rounding)")
        if c["flip_euclid"] >= 1e-3:      # a kink-free truncation range exists: anchor h^2 on it
            i = int(np.searchsorted(h, c["flip_euclid"]))
            ax.loglog(h, c["euclid"][i] * (h / h[i]) ** 2, "--", color="0.45", lw=1,
                      label=r"$\propto h^2$ (truncation)")
        for key, colour in (("flip_euclid", "C0"), ("flip_riem", "C3")):
            ax.axvline(c[key], color=colour, lw=0.9, ls="-.",
                       label="last $h$ before a unit flips" if key == "flip_euclid" else None)
        ax.set_ylim(floor, 10)
        ax.set_xlabel("finite-difference step $h$")
        ax.set_title(title)
        ax.grid(True, which="major", alpha=0.4)
    axes[0].set_ylabel("relative error of the derivative")
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.5, 0.02), ncol=3, fontsize=9)
    fig.suptitle("Gradient check: the V of rounding vs truncation, and what the ReLU kinks do to it")
    return save_figure(fig, path)
