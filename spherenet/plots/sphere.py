"""Figures of tutorial 1: the update curve against the projective retraction, norm drift, and a picture on S²."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .. import sphere
from . import save_figure


def retraction(t, gap, slope: float, mu: float, path) -> Path:
    """Log-log ``||Γ(t) - R_W(tμV)||_F`` against the exact chord ``2μ sin((t - arctan t)/2)`` and ``μt³/3``.

    Parameters
    ----------
    t, gap : ndarray
        The step angles and the measured distances between the two updates.
    slope : float
        The fitted log-log slope (shown in the title).
    mu : float
        The sphere's radius.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    fig = Figure(figsize=(6.0, 4.2))
    ax = fig.subplots()
    ax.loglog(t, gap, "o", color="C0", label=r"measured $\|\Gamma(t) - R_W(t\mu V)\|_F$")
    ax.loglog(t, 2 * mu * np.sin((t - np.arctan(t)) / 2), "-", color="C1", lw=1.2,
              label=r"$2\mu\sin\frac{t-\arctan t}{2}$ (exact)")
    ax.loglog(t, mu * t**3 / 3, "--", color="k", lw=1, zorder=3, label=r"$\mu t^3/3$ (slope 3)")
    ax.set_xlabel(r"step angle $t$ [rad]")
    ax.set_ylabel("distance between the two updates")
    ax.set_title(f"Exponential map vs projective retraction (fitted slope {slope:.3f})")
    ax.grid(True, which="major", alpha=0.4)
    ax.grid(True, which="minor", alpha=0.12)
    ax.legend(loc="upper left")
    return save_figure(fig, path)


def norm_drift(drift: dict, predicted, t_range, path) -> Path:
    """The largest relative norm drift so far for each update rule, with the Euclidean prediction and rounding.

    Parameters
    ----------
    drift : dict
        ``{"curve" | "retraction" | "euclidean": |‖W_k‖_F - μ| / μ per step}``.
    predicted : ndarray
        ``sqrt(1 + Σ_{j≤k} t_j²) - 1``, the Euclidean drift in exact arithmetic.
    t_range : tuple of float
        The range the step angles were drawn from (shown in the title).
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``.
    """
    eps, floor = np.finfo(float).eps, 1e-17
    k = np.arange(1, len(drift["curve"]) + 1)
    fig = Figure(figsize=(6.8, 4.6))
    ax = fig.subplots()
    styles = {"euclidean": ("C3", r"Euclidean $W - \eta G$"), "retraction": ("C2", r"retraction $R_W(t\mu V)$"),
              "curve": ("C0", r"update curve $\Gamma(t)$, never re-projected")}
    for name, (colour, label) in styles.items():
        # Running maximum: the worst drift so far (a log axis cannot show the exact zeros).
        ax.loglog(k, np.maximum(np.maximum.accumulate(drift[name]), floor), color=colour, lw=1.6, label=label)
    ax.loglog(k, predicted, ":", color="k", lw=1.2, label=r"$\sqrt{1 + \sum_{j \leq k} t_j^2} - 1$")
    ax.loglog(k, eps * k, "-.", color="0.5", lw=1, label=r"$\varepsilon k$ (rounding, worst case)")
    ax.loglog(k, eps * np.sqrt(k), "--", color="0.5", lw=1, label=r"$\varepsilon\sqrt{k}$ (rounding, random walk)")
    ax.set_ylim(floor / 2, 1)
    ax.set_xlabel("step $k$")
    ax.set_ylabel(r"largest $|\,\|W\|_F - \mu\,| / \mu$ so far")
    ax.set_title(f"Norm drift over {len(k):,} random steps, angles $t_k \\in$ [{t_range[0]}, {t_range[1]}]")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="center right", fontsize=8.5)
    return save_figure(fig, path)


def _great_circle_3d(fig, W, V, ts, arc, geo, ret, T):
    ax3 = fig.add_subplot(1, 2, 1, projection="3d")
    u, v = np.meshgrid(np.linspace(0, 2 * np.pi, 25), np.linspace(0, np.pi, 13))
    ax3.plot_wireframe(np.cos(u) * np.sin(v), np.sin(u) * np.sin(v), np.cos(v), color="0.75", lw=0.4)
    N = np.cross(W, V)                      # second tangent direction at W
    a, b = np.meshgrid(np.linspace(-0.3, T + 0.1, 2), np.linspace(-0.45, 0.45, 2))
    plane = W[:, None, None] + a * V[:, None, None] + b * N[:, None, None]
    ax3.plot_surface(*plane, color="C1", alpha=0.18, shade=False)
    ax3.plot(*(W + np.outer([0, T], V)).T, color="C1", lw=1.5, label=r"tangent line $W + t\mu V$")
    for p_ret, s in zip(ret, ts):
        ax3.plot(*np.array([p_ret, W + s * V]).T, color="C2", lw=0.7, ls="--")
    ax3.plot(*arc.T, color="C0", lw=2.5, label=r"geodesic $\Gamma(t)$, angle $t$")
    ax3.scatter(*geo.T, color="C0", s=28, depthshade=False)
    ax3.scatter(*ret.T, color="C2", marker="s", s=28, depthshade=False,
                label=r"retraction $R_W(t\mu V)$, angle $\arctan t$")
    ax3.scatter(*(W + np.outer(ts, V)).T, color="C1", s=14, depthshade=False)
    ax3.scatter(*W, color="k", s=40, depthshade=False)
    ax3.text(*(W + np.array([0, 0, 0.1])), "$W$", fontsize=12)
    ax3.set_box_aspect((1, 1, 1))
    ax3.set_xlim(-0.9, 0.9), ax3.set_ylim(-0.9, 0.9), ax3.set_zlim(-0.9, 0.9)
    ax3.view_init(elev=15, azim=-70)
    ax3.set_axis_off()
    ax3.set_title(r"$S^2$ ($1\times 3$ matrices, $\mu = 1$) and the tangent plane at $W$")
    ax3.legend(loc="lower left", fontsize=8.5)


def _great_circle_plane(fig, ts, T):
    ax = fig.add_subplot(1, 2, 2)              # coordinates: x along mu V, y along W
    phi = np.linspace(0, 2 * np.pi, 400)
    ax.plot(np.cos(phi), np.sin(phi), color="0.6", lw=1)
    ax.axhline(1.0, color="C1", lw=1.5, label=r"tangent line $W + t\mu V$")
    for i, s in enumerate(ts):
        ax.plot([0, s], [0, 1], color="C2", lw=0.6, ls="--")
        ax.plot(s, 1, "o", color="C1", ms=4)
        ax.plot(np.sin(np.arctan(s)), np.cos(np.arctan(s)), "s", color="C2", ms=5,
                label="retraction, angle $\\arctan t$" if i == 0 else None)
        ax.plot(np.sin(s), np.cos(s), "o", color="C0", ms=5, label="geodesic, angle $t$" if i == 0 else None)
        ax.annotate(f"{s:g}", (s, 1), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=8)
    ax.plot(np.sin(np.linspace(0, T, 100)), np.cos(np.linspace(0, T, 100)), color="C0", lw=2)
    ax.plot(0, 1, "ko")
    ax.annotate("$W$", (0, 1), textcoords="offset points", xytext=(-14, 4))
    ax.plot([0, 0], [0, 1], color="k", lw=0.8)
    ax.plot(0, 0, "k+")
    ax.set_aspect("equal")
    ax.set_xlim(-0.25, T + 0.15)
    ax.set_ylim(-0.1, 1.25)
    ax.set_xlabel(r"component along $\mu V$")
    ax.set_ylabel(r"component along $W$")
    ax.set_title(r"The plane of $W$ and $V$: same circle, different speed")
    ax.legend(loc="lower left", fontsize=8.5)


def great_circle(path, T: float = 1.25) -> Path:
    """The update curve and the projective retraction on the unit sphere S² (``1×3`` matrices, ``μ = 1``).

    Left: the sphere, the tangent plane at a point ``W``, the geodesic ``Γ(t)`` and the retraction points
    ``R_W(tμV)`` for ``t = 0.25, 0.5, .., T``. Right: the plane of ``W`` and ``V``, where the retraction lands at
    angle ``arctan t`` and the geodesic at ``t``. The points come from ``spherenet.sphere.curve`` and
    ``spherenet.sphere.retract``.

    Parameters
    ----------
    path : str or Path
        Where the PNG goes.
    T : float, optional
        The largest angle drawn.

    Returns
    -------
    Path
        ``path``.
    """
    W = sphere.project(np.array([[-0.35, -0.3, 0.9]]), 1.0)
    V = sphere.project_tangent(W, np.array([[1.0, 0.2, -0.3]]), 1.0)
    V /= sphere.fro(V)
    ts = np.arange(0.25, T + 1e-9, 0.25)
    arc = np.array([sphere.curve(W, V, 1.0, s)[0] for s in np.linspace(0, T, 100)])
    geo = np.array([sphere.curve(W, V, 1.0, s)[0] for s in ts])
    ret = np.array([sphere.retract(W, s * V, 1.0)[0] for s in ts])
    fig = Figure(figsize=(12, 5.4))
    _great_circle_3d(fig, W[0], V[0], ts, arc, geo, ret, T)
    _great_circle_plane(fig, ts, T)
    return save_figure(fig, path)
