"""Figures of tutorial 6: one simulated flight, training curves in newtons, and the Lipschitz certificates."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter

from . import save_figure


def _log_ticks(axis, subs=(1.0, 2.0, 5.0)) -> None:
    axis.set_major_locator(LogLocator(subs=subs))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


def flight(result, reference, effects: dict, path) -> Path:
    """One simulated flight: its track from above, height and speed, the label against the truth, each effect alone.

    Parameters
    ----------
    result : spherenet.data.SimulationResult
        ``spherenet.data.simulate_references`` of one flight (``data``, ``states``, ``wind``, ``true_force``).
    reference : ndarray, shape (N, 3)
        The reference positions at the logged samples.
    effects : dict
        ``{name: force (N, 3)}``, each aerodynamic effect alone.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    data, states = result.data, result.states[0]
    t = data.t
    fig = Figure(figsize=(12, 7.6), layout="constrained")
    (ax, bx), (cx, dx) = fig.subplots(2, 2)
    ax.plot(reference[:, 0], reference[:, 1], color="0.6", ls="--", lw=1, label="reference")
    sc = ax.scatter(states[:, 0], states[:, 1], c=states[:, 2], s=4, cmap="viridis", label="flown (colour: height)")
    fig.colorbar(sc, ax=ax, label="height z [m]")
    w = result.wind[0].mean(axis=0)
    u = w[:2] / np.linalg.norm(w[:2])
    ax.annotate("", xy=(0.2 + 0.08 * u[0], 0.12 + 0.08 * u[1]), xytext=(0.2 - 0.08 * u[0], 0.12 - 0.08 * u[1]),
                xycoords="axes fraction", arrowprops=dict(arrowstyle="->", lw=2, color="C3"))
    ax.text(0.2, 0.01, f"mean wind {np.linalg.norm(w):.1f} m/s", transform=ax.transAxes, ha="center", color="C3")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set(xlabel="x [m]", ylabel="y [m]", title="trajectory seen from above")
    ax.legend(fontsize=8.5, loc="upper right")
    bx.plot(t, states[:, 2], color="C2", label="height z [m]")
    bx.plot(t, np.linalg.norm(states[:, 3:6], axis=1), color="C0", label="ground speed |v| [m/s]")
    bx.set(xlabel="time [s]", title="height and speed")
    bx.legend(fontsize=8.5)
    for k, name in enumerate("xyz"):
        cx.plot(t, data.Y[:, k], color=f"C{k}", lw=1.0, label=f"label $F_{{a,{name}}}$")
        cx.plot(t, result.true_force[0][:, k], color="k", lw=0.6, ls="--")
    cx.plot([], [], color="k", lw=0.6, ls="--", label="noise-free truth")
    low, high = cx.get_ylim()
    cx.set_ylim(low, high + 0.35 * (high - low))
    cx.set(xlabel="time [s]", ylabel="force [N]", title="the label F_a vs the true residual force")
    cx.legend(fontsize=8.5, ncol=4, loc="upper center")
    for k, (name, F) in enumerate(effects.items()):
        dx.plot(t, np.linalg.norm(F, axis=1), color=f"C{k + 3}", label=name.replace("_", " "))
    dx.plot(t, np.linalg.norm(result.true_force[0], axis=1), color="k", lw=1.6, label="all together")
    dx.set_ylim(0, 1.35 * dx.get_ylim()[1])
    dx.set(xlabel="time [s]", ylabel="|F| [N]", title="where F_a comes from: each effect alone")
    dx.legend(fontsize=8.5, ncol=3, loc="upper center")
    return save_figure(fig, path)


def training(histories: dict, references: dict, scaling, path) -> Path:
    """RMSE in newtons per iteration on the training and test sets, with constant references as lines.

    Parameters
    ----------
    histories : dict
        ``{label: History}`` with ``loss_train`` and ``loss_test`` (up to three).
    references : dict
        ``{label: (train RMSE, test RMSE)}`` in newtons (e.g. least squares, the training mean).
    scaling : spherenet.data.PaperScaling
        Turns losses into newtons (``rmse_newtons``).
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, key, title in zip(axes, ("loss_train", "loss_test"), ("training set (waypoints)", "test set (figure-8)")):
        for (label, h), colour in zip(histories.items(), ("C0", "C1", "C2")):
            k = np.arange(len(getattr(h, key)))
            ax.plot(k[1:], scaling.rmse_newtons(np.array(getattr(h, key)))[1:], color=colour, lw=1.6, label=label)
        for (label, values), style in zip(references.items(), ("--", ":")):
            ax.axhline(values[0 if key == "loss_train" else 1], color="k", ls=style, lw=1.2, label=label)
        ax.set_xscale("log")
        ax.set_yscale("log")
        _log_ticks(ax.yaxis, subs=(1.0, 2.0, 3.0, 5.0))
        ax.set(xlabel="iteration", title=title)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("RMSE [N]")
    axes[1].legend(fontsize=8.5)
    return save_figure(fig, path)


def lipschitz(products: dict, prior: float, lip: dict, n_per_unit: float, path) -> Path:
    """Lipschitz certificates in newtons per unit input: at every iterate of the sphere methods, and against the
    local slopes each trained network really has.

    Parameters
    ----------
    products : dict
        ``{label: Π_i ||W_i||_2 per iterate}`` of the sphere runs.
    prior : float
        ``Π_i μ_i``, the bound before training.
    lip : dict
        ``{label: {"certificate": float, "slopes": per-sample ||∂f/∂x||_2}}``: the sphere net first, Adam's last.
    n_per_unit : float
        Newtons per scaled unit (``max ||y|| / P_op``).
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(12, 4.4), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    for (label, p), colour in zip(products.items(), ("C0", "C1")):
        ax.plot(np.arange(len(p)), p * n_per_unit, color=colour, lw=1.6, label=f"{label}: Π ||W_i||_2")
    ax.axhline(prior * n_per_unit, color="k", ls="--", lw=1.2, label="Π μ_i: the bound before training")
    last = list(lip)[-1]
    ax.axhline(lip[last]["certificate"] * n_per_unit, color="C2", ls="-.", lw=1.4,
               label=f"{last.split(' (')[0]} after training: Π ||W_i||_2")
    ax.set_xscale("symlog", linthresh=1)
    ax.set_xlim(0, max(len(p) for p in products.values()))
    ax.set_yscale("log")
    _log_ticks(ax.yaxis)
    ax.set(xlabel="iteration", ylabel="Lipschitz certificate [N per unit input]",
           title="the certificate at every iterate (sphere) vs after training (Adam)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8.5)
    bins = np.geomspace(min(v["slopes"].min() for v in lip.values()) * n_per_unit / 1.2,
                        max(v["certificate"] for v in lip.values()) * n_per_unit * 1.2, 60)
    for (label, v), colour in zip(lip.items(), ("C0", "C2")):
        bx.hist(v["slopes"] * n_per_unit, bins=bins, color=colour, alpha=0.45,
                label=f"{label}: ||∂f/∂x||_2 per sample")
        bx.axvline(v["certificate"] * n_per_unit, color=colour, lw=2, label=f"{label}: certificate")
    bx.set_xscale("log")
    bx.set_yscale("log")
    _log_ticks(bx.xaxis)
    bx.set_ylim(0.7, 30 * bx.get_ylim()[1])
    bx.set(xlabel="N per unit change of the scaled input", ylabel="samples",
           title="local slopes vs the certified bound")
    bx.legend(fontsize=8, loc="upper left")
    return save_figure(fig, path)
