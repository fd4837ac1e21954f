"""Figures of the automatic step on mini-batches (tutorial 8): one batch's slope, curvature and Newton step
against the full batch's, the secant curvature from the trial point, and a run's steps and reported model."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from . import save_figure


def batch_estimates(slopes, curvatures, beta: float, kappa: float, path) -> Path:
    """Histograms of the batches' slopes ``beta_b``, curvatures ``kappa_b`` and Newton steps ``beta_b/kappa_b``,
    with the full batch's ``beta``, ``kappa`` and ``beta/kappa`` and the batches' means.

    Parameters
    ----------
    slopes, curvatures : array_like
        One value per batch.
    beta, kappa : float
        The full batch's.
    path : str or Path

    Returns
    -------
    Path
    """
    slopes, curvatures = np.asarray(slopes, float), np.asarray(curvatures, float)
    fig = Figure(figsize=(12, 3.6))
    panels = ((slopes, beta, r"slope $\beta_b$"), (curvatures, kappa, r"curvature $\kappa_b$"),
              (slopes / curvatures, beta / kappa, r"Newton step $\beta_b/\kappa_b$ (rad)"))
    for k, (values, full, label) in enumerate(panels):
        ax = fig.add_subplot(1, 3, k + 1)
        ax.hist(values, bins=30, color="C0", alpha=0.7)
        ax.axvline(full, color="black", lw=2, label="full batch")
        ax.axvline(values.mean(), color="C3", ls="--", lw=1.5, label="mean over the batches")
        ax.set_xlabel(label)
        ax.set_ylabel("batches")
        ax.legend(fontsize=8)
    fig.suptitle("one batch's estimates along the full batch's direction", fontsize=10)
    return save_figure(fig, path)


def secant(t, phi, beta: float, c2: float, t_trial: float, phi_trial: float, path) -> Path:
    """``φ_b(t) - φ_b(0)`` along the geodesic against the jet's parabola ``-β t + c_2 t²`` and the secant's, the
    parabola through ``φ_b(0)``, ``φ_b'(0) = -β`` and the trial point ``(t_trial, φ_b(t_trial))``.

    Parameters
    ----------
    t, phi : array_like
        Angles and ``φ_b(t) - φ_b(0)`` there.
    beta, c2 : float
        The slope ``-φ_b'(0)`` and the jet's second coefficient.
    t_trial, phi_trial : float
        The trial angle and ``φ_b(t_trial) - φ_b(0)``.
    path : str or Path

    Returns
    -------
    Path
    """
    t = np.asarray(t, float)
    secant_c2 = (phi_trial + beta * t_trial) / t_trial ** 2
    fig = Figure(figsize=(7, 4.2))
    ax = fig.add_subplot()
    ax.plot(t, phi, color="black", lw=2.2, label=r"true $\varphi_b(t) - \varphi_b(0)$")
    ax.plot(t, -beta * t + c2 * t ** 2, "--", color="C0", label=r"jet: $-\beta t + c_2 t^2$ (curvature at $t=0$)")
    ax.plot(t, -beta * t + secant_c2 * t ** 2, ":", color="C3", lw=2,
            label=r"secant: through the trial point (curvature over $[0, t]$)")
    ax.plot([t_trial], [phi_trial], "o", color="C3", ms=7, label=f"trial point t = {t_trial:.3g}")
    ax.set_xlabel("angle t along the geodesic (rad)")
    ax.set_ylabel("change of the batch's loss")
    ax.legend(fontsize=8)
    return save_figure(fig, path)


def batch_run(history, curves: dict, path) -> Path:
    """A ``geo-batch`` run: per step the averaged model's step ``t`` and the angle taken ``tau`` (left), and the
    validation RMSE of the models a run can report (right).

    Parameters
    ----------
    history : spherenet.train.History
        The run (its ``info["t_model"]`` and ``tau``).
    curves : dict
        Label -> ``(steps, rmse)``: e.g. the last iterate and the iterates' average.
    path : str or Path

    Returns
    -------
    Path
    """
    fig = Figure(figsize=(12, 4))
    ax = fig.add_subplot(1, 2, 1)
    steps = np.arange(1, len(history.tau) + 1)
    ax.semilogy(steps, history.info["t_model"], color="C0", lw=1, label=r"$t = B/K$, the averaged model's step")
    taken = np.asarray(history.tau, float)
    ax.semilogy(steps[taken > 0], taken[taken > 0], ".", color="C3", ms=2, label=r"$\tau$, after the halvings")
    ax.set_xlabel("step")
    ax.set_ylabel("angle (rad)")
    ax.legend(fontsize=8)
    ax = fig.add_subplot(1, 2, 2)
    for k, (label, (at, rmse)) in enumerate(curves.items()):
        ax.plot(at, rmse, marker="o", ms=3, color=f"C{k}", label=label)
    ax.set_xlabel("step")
    ax.set_ylabel("validation RMSE [N]")
    ax.legend(fontsize=8)
    return save_figure(fig, path)
