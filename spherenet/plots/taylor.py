"""Figures of the Taylor models along the update curve and of Algorithm 1 (tutorial 4): the models against the true
loss, the Newton step and backtracking, a training run, and models of higher order."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure


def along_curve(diag: dict, path, title: str | None = None) -> Path:
    """Draw ``spherenet.taylor.along_curve``'s output: true ``φ(t) - φ(0)`` against the Taylor models of
    orders ``1..r``, the fraction of flipped ReLU units on a twin axis, and each order's step ``τ``.

    Parameters
    ----------
    diag : dict
        The output of ``spherenet.taylor.along_curve``.
    path : str or Path
        Where the PNG goes.
    title : str, optional
        The title (default: ``β`` and ``κ``).

    Returns
    -------
    Path
        ``path``.
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


def _model_panel(ax, panel: dict, eps: float) -> None:
    t, phi, beta, kappa, trials = panel["t"], panel["phi"], panel["beta"], panel["kappa"], panel["trials"]
    model = -beta * t + kappa * t**2 / 2
    ax.plot(t, phi, "k-", lw=2.4, label=r"true $\varphi(t) - \varphi(0)$")
    ax.plot(t, model, "--", color="C0", lw=1.6, label=r"model $-\beta t + \kappa t^2/2$")
    ax.axhline(panel["prev"], color="C3", lw=1, ls=":", label=r"$J_{prev} - \varphi(0)$")
    ax.axvline(eps, color="0.5", lw=1, ls="-.")
    t_model = trials[0][0]
    ax.axvline(t_model, color="C0", lw=1, ls=":", label=rf"safeguarded model step {t_model:.3f}")
    if len(trials) == 1:                          # accepted at once: the model's and the true change there
        ax.plot(t_model, -beta * t_model + kappa * t_model**2 / 2, "o", color="C0", ms=7)
        ax.plot(t_model, trials[0][1], "o", color="k", ms=7, label="accepted step")
    else:
        zoom = ax.inset_axes([0.6, 0.45, 0.32, 0.34])
        near = t <= 1.6 * trials[-1][0]
        zoom.plot(t[near], phi[near], "k-", lw=2)
        zoom.plot(t[near], model[near], "--", color="C0", lw=1.4)
        zoom.axhline(panel["prev"], color="C3", lw=1, ls=":")
        low = min(phi[near].min(), model[near].min())
        zoom.set_ylim(1.3 * low, -0.8 * low)
        zoom.set_xlim(0, t[near][-1])
        zoom.set_title("zoom near the accepted step", fontsize=8)
        zoom.tick_params(labelsize=7)
        for i, (tau, change) in enumerate(trials):
            accepted = i == len(trials) - 1
            style = dict(marker="o" if accepted else "X", ms=9, color="C2" if accepted else "C3", ls="none")
            ax.plot(tau, change, **style, label=("accepted" if accepted else "rejected") + f": $\\tau$ = {tau:.3f}")
            if tau <= t[near][-1]:
                zoom.plot(tau, change, **style)
    span = np.ptp(phi)
    ax.set_ylim(phi.min() - 0.3 * span, phi.max() + 0.6 * span)
    ax.set_xlim(0, eps * 1.02)
    ax.text(eps * 0.985, phi.max() + 0.45 * span, r"$\varepsilon = \pi/6$", ha="right", fontsize=9, color="0.4")
    ax.set_xlabel("angle $t$ on the update curve")
    ax.set_title(panel["title"], fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left" if len(trials) == 1 else "upper left")


def newton_and_backtracking(panels, path, eps: float = math.pi / 6) -> Path:
    """Algorithm 1's quadratic model against the true loss along the curve, one panel per iterate.

    Parameters
    ----------
    panels : sequence of dict
        Each with ``title``; ``t`` (angles in ``[0, eps]``) and ``phi`` (``φ(t) - φ(0)`` there); ``beta`` and
        ``kappa``; ``prev`` (``J_prev - φ(0)``); ``trials``: the ``(τ, φ(τ) - φ(0))`` backtracking tried, the
        safeguarded model step first and the accepted step last. A panel with rejected trials gets a zoom.
    path : str or Path
        Where the PNG goes.
    eps : float, optional
        The longest step (dash-dotted).

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(6 * len(panels), 4.6))
    axes = fig.subplots(1, len(panels), squeeze=False)[0]
    for ax, panel in zip(axes, panels):
        _model_panel(ax, panel, eps)
    axes[0].set_ylabel("change of the loss")
    return save_figure(fig, path)


def training(history, path, eps: float = math.pi / 6) -> Path:
    """A run of Algorithm 1: training and test loss, and the step ``τ`` per iteration with its special cases.

    Parameters
    ----------
    history : spherenet.train.History
        Of a ``"taylor"`` run with test data (``info`` holds ``t_model`` and ``kappa``).
    path : str or Path
        Where the PNG goes.
    eps : float, optional
        The longest step.

    Returns
    -------
    Path
        ``path``. Triangles mark model steps backtracking halved, squares iterations with ``κ <= 0``.
    """
    k = np.arange(history.iterations + 1)
    steps = k[1:]
    tau, t_model = np.array(history.tau), np.array(history.info["t_model"])
    fig = Figure(figsize=(11, 4.4))
    ax_loss, ax_tau = fig.subplots(1, 2)
    ax_loss.semilogy(k, history.loss_train, color="C0", lw=1.8, label="training loss")
    ax_loss.semilogy(k, history.loss_test, color="C1", lw=1.4, label="test loss (figure-8 flights)")
    ax_loss.set(xlabel="iteration", ylabel="loss $J$")
    ax_loss.set_title("Algorithm 1 on the simulated quadrotor data", fontsize=10)
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_loss.legend(fontsize=9)
    ax_tau.semilogy(steps, tau, "o-", ms=3, lw=1, color="C2", label=r"step $\tau$ taken")
    halved = np.array(history.halvings) > 0
    ax_tau.semilogy(steps[halved], t_model[halved], "v", color="C3", ms=7,
                    label=r"model step $t_{model}$ where backtracking halved it")
    negative = np.array(history.info["kappa"]) <= 0
    ax_tau.semilogy(steps[negative], tau[negative], "s", mfc="none", color="k", ms=8, label=r"$\kappa \leq 0$")
    ax_tau.axhline(eps, color="0.5", ls="-.", lw=1, label=r"$\varepsilon = \pi/6$")
    ax_tau.set(xlabel="iteration", ylabel=r"angle $\tau$ [rad]")
    ax_tau.set_title(r"The step Algorithm 1 chose, iteration by iteration", fontsize=10)
    ax_tau.grid(True, which="both", alpha=0.3)
    ax_tau.legend(fontsize=8, loc="center right")
    return save_figure(fig, path)


def higher_order(steps: dict, coeffs, grid, phi, path, eps: float = math.pi / 6) -> Path:
    """The Taylor models of several orders at one iterate, the true loss, and the step each model takes.

    Parameters
    ----------
    steps : dict
        ``{r: τ}``, each order's model step.
    coeffs : array_like
        The loss jet ``J_0..J_R`` (``R >= max(steps)``).
    grid, phi : ndarray
        Angles in ``[0, eps]`` and the true ``φ(t) - φ(0)`` there.
    path : str or Path
        Where the PNG goes.
    eps : float, optional
        The longest step.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(7.6, 4.8))
    ax = fig.subplots()
    ax.plot(grid, phi, "k-", lw=2.6, label=r"true $\varphi(t) - \varphi(0)$", zorder=5)
    for r, tau in steps.items():
        model = np.polynomial.Polynomial(np.r_[0.0, coeffs[1:r + 1]])(grid)
        ax.plot(grid, model, "--", lw=1.2, color=f"C{r - 2}")
        ax.plot(tau, np.interp(tau, grid, phi), "o", ms=11 - r, color=f"C{r - 2}", zorder=6,
                label=rf"order {r}: $\tau$ = {tau:.3f}, $\varphi(\tau) - \varphi(0)$ = {np.interp(tau, grid, phi):.3g}")
    best = int(np.argmin(phi))
    ax.plot(grid[best], phi[best], "*", ms=18, mfc="none", mec="k", mew=1.3, zorder=7,
            label=f"true minimum on the grid, t = {grid[best]:.3f}")
    span = np.ptp(phi)
    ax.set_ylim(phi.min() - 0.4 * span, phi.max() + 0.4 * span)
    ax.set_xlim(0, eps * 1.03)
    ax.axvline(eps, color="0.5", lw=1, ls="-.")
    ax.set_xlabel(r"angle $t$ on the update curve (up to $\varepsilon = \pi/6$, dash-dotted)")
    ax.set_ylabel("change of the loss")
    ax.set_title(f"Models of order {min(steps)}..{max(steps)} (dashed) at the first iterate, and the step each one "
                 "takes", fontsize=10)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, loc="lower left")
    return save_figure(fig, path)


def orders(runs: dict, path) -> Path:
    """Training loss of Taylor rules of several orders from the same start, and relative to order 2.

    Parameters
    ----------
    runs : dict
        ``{r: History}``; must contain order 2 (Algorithm 1), the reference of the right panel.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(11, 4.4))
    ax_loss, ax_ratio = fig.subplots(1, 2)
    base = np.array(runs[2].loss_train)
    for i, (r, h) in enumerate(runs.items()):
        loss = np.array(h.loss_train)
        ax_loss.semilogy(loss, color=f"C{i}", lw=1.6, label=f"order {r}" + (" (Algorithm 1)" if r == 2 else ""))
        ax_ratio.plot(loss / base, color=f"C{i}", lw=1.6, label=f"order {r}")
    ax_loss.set(xlabel="iteration", ylabel="training loss $J$")
    ax_loss.set_title("Same start, same data: Taylor models of order " + ", ".join(map(str, runs)), fontsize=10)
    ax_loss.grid(True, which="both", alpha=0.3)
    ax_loss.legend(fontsize=9)
    ax_ratio.axhline(1.0, color="0.5", lw=0.8)
    ax_ratio.set(xlabel="iteration", ylabel="training loss / loss of order 2")
    ax_ratio.set_title("Relative to Algorithm 1 (above 1: worse)", fontsize=10)
    ax_ratio.grid(True, alpha=0.3)
    ax_ratio.legend(fontsize=9)
    return save_figure(fig, path)
