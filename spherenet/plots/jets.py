"""Figures of tutorial 3: the three checks of the loss jet, and where the Taylor expansion stops being exact."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure

EPS_MACH = np.finfo(float).eps


def complex_evaluation(errors: dict, rounding: dict, path) -> Path:
    """Relative error of ``J_k`` by complex evaluation on circles ``|t| = ρ``, against each circle's rounding estimate.

    Parameters
    ----------
    errors, rounding : dict
        ``{ρ: array over k}``: the measured relative errors and ``ε max|φ| / (√n ρ^k |J_k|)``.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(6.4, 4.2))
    ax = fig.subplots()
    for (rho, err), colour, marker in zip(errors.items(), ("C0", "C3", "C2"), "os^"):
        k = np.arange(len(err))
        ax.semilogy(k, np.maximum(err, 1e-17), marker=marker, color=colour, lw=1.5,
                    label=rf"FFT on $|t| = \rho = {rho:g}$ vs the jet")
        ax.semilogy(k, rounding[rho], ":", color=colour, lw=1.2,
                    label=rf"rounding estimate $\varepsilon \max|\varphi| / (\sqrt{{n}}\rho^k |J_k|)$, "
                          rf"$\rho = {rho:g}$")
    ax.axhline(1.0, color="0.4", lw=0.8)
    ax.text(0.05, 1.5, "100 % error", fontsize=8, color="0.3")
    ax.set_ylim(1e-17, 1e2)
    ax.set_xlabel("order $k$")
    ax.set_ylabel(r"relative error of $J_k$")
    ax.set_title("Complex evaluation with the ReLU pattern frozen: radius 1, not 'small'", fontsize=10)
    ax.grid(True, which="major", alpha=0.4)
    ax.legend(fontsize=8, loc="center right")
    return save_figure(fig, path)


def remainders(t, R, slopes, floor: float, path) -> Path:
    """Log-log Taylor remainders ``R_r(t) = |φ(t) - Σ_{k≤r} J_k t^k|`` with their fitted slopes.

    Parameters
    ----------
    t : ndarray
        The angles.
    R : ndarray, shape (r, len(t))
        Row ``r - 1``: the remainder of the order-``r`` model.
    slopes : sequence of float
        The fitted slope of each row (fitted for ``t <= 0.05``; the rest is shaded).
    floor : float
        The rounding level ``ε φ(0)``.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(6.6, 4.6))
    ax = fig.subplots()
    for r in range(1, len(slopes) + 1):
        ax.loglog(t, np.maximum(R[r - 1], 1e-30), "o-", ms=3, lw=1.2, color=f"C{r - 1}",
                  label=f"$r = {r}$: slope {slopes[r - 1]:.2f} (theory {r + 1})")
    ax.axhline(floor, color="0.3", ls=":", lw=1)
    ax.text(1.1e-2, floor / 15, r"rounding of $\varphi$: $\varepsilon\,\varphi(0)$", fontsize=8, color="0.3")
    ax.axvspan(0.05, t[-1], color="0.9", zorder=0)
    ax.text(0.056, R.max() * 2, "not fitted", fontsize=8, color="0.4")
    ax.set_ylim(floor / 100, R.max() * 10)
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel("angle $t$ on the update curve")
    ax.set_ylabel(r"$R_r(t) = |\varphi(t) - \sum_{k\leq r} J_k t^k|$")
    ax.set_title("Taylor remainder of the order-$r$ jet model (small network; fitted where no unit flips)",
                 fontsize=10)
    ax.grid(True, which="major", alpha=0.4)
    ax.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)


def kinks(t, total, kink, truncation, flips, loss0: float, path) -> Path:
    """Every order's model error against the kink error and the order-r truncation error, log-log.

    Parameters
    ----------
    t : ndarray
        The angles.
    total : ndarray, shape (r, len(t))
        ``|φ - φ_r|`` for ``r = 1..``.
    kink, truncation : ndarray
        ``|φ - φ_frozen|`` and ``|φ_frozen - φ_r|`` (highest order).
    flips : ndarray
        The fraction of ReLU units flipped since ``t = 0`` (twin axis).
    loss0 : float
        ``φ(0)``, which sets the rounding level ``10 ε φ(0)``.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    floor = 10 * EPS_MACH * loss0
    fig = Figure(figsize=(7.4, 4.8))
    ax = fig.subplots()
    for r, err in enumerate(total, start=1):
        ax.loglog(t, np.maximum(err, floor / 10), "-", lw=1.1, color=f"C{r - 1}", alpha=0.9,
                  label=rf"$|\varphi - \varphi_{r}|$, order-{r} model")
    ax.loglog(t, np.maximum(kink, floor / 10), "k--", lw=2, label=r"kink error $|\varphi - \varphi_{frozen}|$")
    ax.loglog(t, np.maximum(truncation, floor / 10), ":", color="0.35", lw=2,
              label=rf"truncation $|\varphi_{{frozen}} - \varphi_{len(total)}|$")
    ax.axhline(floor, color="0.6", lw=0.8)
    ax.text(1e-4, floor / 3.5, r"rounding level $10\,\varepsilon\,\varphi(0)$", fontsize=8, color="0.4")
    t_flip = t[np.argmax(flips > 0)]
    ax.axvline(t_flip, color="C3", lw=1, ls="-.")
    ax.text(t_flip * 1.15, floor / 3.5, "first unit flips", fontsize=8, color="C3")
    ax.set_ylim(floor / 10, 1e-3)
    ax.set_xlabel("angle $t$ on the update curve")
    ax.set_ylabel("absolute error")
    ax.set_title("The paper's network: past the first flip, the kinks, not the truncation, set the error",
                 fontsize=10)
    ax.grid(True, which="major", alpha=0.4)
    ax2 = ax.twinx()
    ax2.semilogx(t, flips, color="grey", lw=1)
    ax2.fill_between(t, flips, color="grey", alpha=0.15, lw=0)
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("fraction of ReLU units flipped since t = 0", color="grey")
    ax.legend(fontsize=7.5, loc="upper left", framealpha=0.95)
    return save_figure(fig, path)


def along_curve(diag: dict, frozen, path) -> Path:
    """``spherenet.taylor.along_curve``'s true ``φ(t) - φ(0)`` and its models, with the frozen-pattern ``φ``.

    Parameters
    ----------
    diag : dict
        The output of ``spherenet.taylor.along_curve`` (``t``, ``phi``, ``models``, ``flip_fraction``, ``beta``,
        ``kappa``).
    frozen : ndarray
        ``φ_frozen(t) - φ(0)`` on the same grid (every ReLU in its ``t = 0`` pattern).
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    t, phi, flips = diag["t"], diag["phi"], diag["flip_fraction"]
    fig = Figure(figsize=(7.6, 4.8))
    ax = fig.subplots()
    ax2 = ax.twinx()
    ax2.fill_between(t, flips, color="0.85", lw=0)
    ax2.plot(t, flips, color="0.6", lw=1)
    ax2.set_ylim(0, 1)
    ax2.set_ylabel("fraction of ReLU units flipped since t = 0 (grey)", color="0.45")
    ax.set_zorder(ax2.get_zorder() + 1)          # the curves in front of the grey area
    ax.patch.set_visible(False)
    for m, model in enumerate(diag["models"], start=1):
        ax.plot(t, model, "--", lw=1.3, color=f"C{m - 1}", label=f"order-{m} model $\\varphi_{m}(t) - \\varphi(0)$")
    ax.plot(t, frozen, "-", color="0.35", lw=1.4, label=r"$\varphi_{frozen}(t) - \varphi(0)$ (pattern of $t = 0$)")
    ax.plot(t, phi, "k-", lw=2.6, label=r"true $\varphi(t) - \varphi(0)$")
    low, high = min(phi.min(), frozen.min()), max(phi.max(), frozen.max())
    ax.set_ylim(low - 0.3 * (high - low), high + 0.3 * (high - low))
    ax.set_xlim(t[0], t[-1])
    ax.set_xlabel(r"angle $t$ on the update curve (up to $\varepsilon = \pi/6$)")
    ax.set_ylabel(r"change of the loss along the curve")
    ax.set_title(rf"Taylor models describe the frozen pattern; the true loss bends away ($\beta$ = {diag['beta']:.3g}, "
                 rf"$\kappa$ = {diag['kappa']:.3g})", fontsize=10)
    ax.grid(True, alpha=0.3)
    handles, labels = ax.get_legend_handles_labels()
    order = [len(handles) - 1, len(handles) - 2] + list(range(len(handles) - 2))     # true, frozen, models
    fig.legend([handles[i] for i in order], [labels[i] for i in order], loc="upper center",
               bbox_to_anchor=(0.5, 0.02), ncol=4, fontsize=8)
    return save_figure(fig, path)
