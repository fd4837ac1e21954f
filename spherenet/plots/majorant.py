"""Figures of Algorithm 2's majorants: the bounds against the true loss change, and τ per iteration."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .. import majorant as mj
from ..jets import loss_jet_from
from ..network import _backward, _direction, _forward_cache, _loss_from_output
from ..steps import Iterate
from . import save_figure

VARIANT_STYLE = {"spectral": ("tab:orange", "m spectral (paper)"), "telescoping": ("tab:red", "m telescoping"),
                 "frobenius": ("tab:purple", "m Frobenius")}
METHOD_LABELS = {"taylor": "Alg. 1 (Taylor)", "mm": "Alg. 2, spectral (paper)", "mm-telescoping":
                 "Alg. 2, telescoping", "mm-frobenius": "Alg. 2, Frobenius", "mm-closed": "closed form"}
EPS_ALG1 = math.pi / 6


_save = save_figure


def _algorithm1_tau(it: Iterate, J2: float) -> tuple[float, str]:
    """Algorithm 1's τ (with backtracking) if ``spherenet.taylor`` is there, else its model step β/κ."""
    try:
        from ..taylor import TaylorStep
    except ImportError:
        kappa, beta = 2 * J2, it.direction.beta
        tau = beta / kappa if kappa > 0 and beta / kappa <= EPS_ALG1 else EPS_ALG1
        return tau, "Alg. 1 model step"
    return TaylorStep()(it).tau, "Alg. 1"


def curve_comparison(weights, radii, X, Y, t) -> dict:
    """Everything the majorant figure draws at one iterate, on the angles ``t`` (1-D array).

    ``true = φ(t) - φ(0)``; ``taylor2 = -β t + κ t²/2`` (order-2 jet); ``m[variant] = m(t)``; ``tau``: each
    method's step (Algorithm 2 variants by ``majorant.minimise``, the closed form, Algorithm 1); ``true_at_tau``:
    ``φ(τ) - φ(0)`` for each.
    """
    radii = np.asarray(radii, dtype=float)
    cache = _forward_cache(weights, X)
    J, grads = _backward(weights, cache, Y)
    d = _direction(weights, grads, radii)
    it = Iterate(weights, radii, X, Y, cache, J, grads, d, J)
    jet = loss_jet_from(cache, weights, d.V, radii, X, Y, 2)
    Q = mj.input_energy(X)
    majorants = {v: mj._build(v, weights, d, radii, Q) for v in mj.VARIANTS}

    def change(s):
        return _loss_from_output(_forward_cache(majorants["spectral"].curve(s), X).F, Y) - J

    tau = {v: mj.minimise(m)[0] for v, m in majorants.items()}
    tau["closed form"] = mj._closed_form_tau(d.beta, float(np.prod(radii)), Q, len(weights))
    tau1, label1 = _algorithm1_tau(it, jet[2])
    tau[label1] = tau1
    return {"t": t, "true": np.array([change(s) for s in t]), "taylor2": jet[1] * t + jet[2] * t**2,
            "m": {v: m(t) for v, m in majorants.items()}, "tau": tau,
            "true_at_tau": {name: change(s) for name, s in tau.items()}, "beta": d.beta}


def majorant_figure(snapshots: dict, radii, X, Y, path, t=None) -> Path:
    """Majorants vs the true loss change vs the order-2 Taylor model along the update curve.

    ``snapshots``: ``{title: weights}``, one panel each (e.g. the first iterate and a late one: copy the net,
    ``spherenet.train.train`` it, take ``net.weights``). ``t``: angles (default 300 log-spaced in
    ``[1e-6, π/6]``). Each method's step τ is marked on the true curve. Log ``t`` axis; the loss axis is
    clipped to the range of the true change, since the majorants grow like ``t²`` and beyond.
    """
    t = np.geomspace(1e-6, math.pi / 6, 300) if t is None else np.asarray(t, dtype=float)
    fig = Figure(figsize=(6 * len(snapshots), 4.4))
    axes = fig.subplots(1, len(snapshots), squeeze=False)[0]
    for ax, (title, weights) in zip(axes, snapshots.items()):
        c = curve_comparison(weights, radii, X, Y, t)
        ax.plot(t, c["true"], color="black", lw=2, label="true φ(t) − φ(0)")
        ax.plot(t, c["taylor2"], color="tab:blue", ls="--", label="order-2 Taylor −βt + κt²/2")
        for v, values in c["m"].items():
            colour, label = VARIANT_STYLE[v]
            ax.plot(t, values, color=colour, label=label)
        markers = iter("ov^sDP*")
        for name, tau in c["tau"].items():
            ax.plot([tau], [c["true_at_tau"][name]], ls="none", marker=next(markers), ms=8, mfc="none", mew=1.5,
                    label=f"τ {name} = {tau:.2e}")
        low, high = np.min(c["true"]), np.max(np.abs(c["true"]))
        ax.set_ylim(1.3 * low, 0.5 * high)
        ax.set_xscale("log")
        ax.axhline(0, color="grey", lw=0.5)
        ax.set(xlabel="angle t [rad]", ylabel="change in loss", title=title)
        ax.legend(fontsize=7, loc="lower left")
    return _save(fig, path)


def tau_figure(taus: dict, path, title: str = "step angle per iteration") -> Path:
    """τ per iteration for each method (``{name: taus}``, e.g. ``history.tau`` of Algorithm 1, Algorithm 2
    and the closed form), log scale; zero steps are not drawn."""
    fig = Figure(figsize=(6.5, 4))
    ax = fig.subplots()
    styles = ["-", "--", ":", "-.", (0, (5, 1, 1, 1))]
    for k, (name, tau) in enumerate(taus.items()):
        tau = np.asarray(tau, dtype=float)
        # Methods often coincide (spectral vs telescoping, Frobenius vs closed form): vary the line style.
        ax.semilogy(np.arange(1, tau.size + 1), np.where(tau > 0, tau, np.nan), ls=styles[k % len(styles)],
                    lw=2.2 - 0.3 * (k % 3), label=METHOD_LABELS.get(name, name))
    ax.set(xlabel="iteration", ylabel="τ [rad]", title=title)
    ax.legend()
    return _save(fig, path)


_PICTURE_MARKERS = {"spectral": "o", "telescoping": "s", "frobenius": "^", "closed form": "D", "Alg. 1": "v"}
_PICTURE_COLOURS = {"spectral": "C1", "telescoping": "C3", "frobenius": "C4", "closed form": "C2", "Alg. 1": "k"}


def _picture_panel(ax, c: dict, title: str, zoom: bool) -> None:
    t = c["t"]
    ax.plot(t, c["true"], color="k", lw=2.2, label=r"true $\varphi(t) - \varphi(0)$")
    ax.plot(t, c["taylor2"], color="C0", ls="--", lw=1.4, label=r"order-2 Taylor $-\beta t + \kappa t^2/2$")
    for variant, (colour, label) in zip(("spectral", "telescoping", "frobenius"),
                                        (("C1", "m spectral (paper)"), ("C3", "m telescoping"),
                                         ("C4", "m Frobenius"))):
        ax.plot(t, c["m"][variant], color=colour, lw=1.4, label=label)
    for name, tau in c["tau"].items():
        ax.plot([tau], [c["true_at_tau"][name]], ls="none", marker=_PICTURE_MARKERS.get(name, "P"), ms=8,
                mfc="none", mew=1.6, color=_PICTURE_COLOURS.get(name, "C5"), label=f"τ {name} (true change there)")
    tau = c["tau"]["spectral"]
    m_tau = float(np.interp(np.log(tau), np.log(t), c["m"]["spectral"]))
    ax.plot([tau, tau], [m_tau, c["true_at_tau"]["spectral"]], color="C1", lw=1, ls=":")
    ax.plot([tau], [m_tau], "o", color="C1", ms=5, label=r"$m(\tau)$: the decrease MM promises")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xscale("log")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    ax.grid(True, which="major", alpha=0.3)
    ax.set_ylabel("change of the loss $J$")
    if not zoom:
        low = float(np.min(c["true"]))
        ax.set_ylim(1.3 * low, -0.6 * low)
        ax.set_title(f"{title}: all of the curve up to π/6")
    else:
        ax.set_ylim(5.0 * m_tau, -3.0 * m_tau)
        ax.set_xlim(1e-5, 20 * tau)
        ax.set_title(f"{title}: zoom on the majorants' minimum")
        ax.set_xlabel("angle $t$ [rad] (log scale)")


def picture(comparisons: dict, path) -> Path:
    """The majorants against the true loss change, one column per iterate: the whole curve, and a zoom.

    Parameters
    ----------
    comparisons : dict
        ``{title: curve_comparison(...)}`` (:func:`curve_comparison` on log-spaced angles).
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``. The top row shows the decrease available along the curve up to ``π/6``; the bottom row zooms in
        on the majorants' minimum, with ``m(τ)`` (the decrease MM promises) against the true change at ``τ``.
    """
    fig = Figure(figsize=(12, 8.6), layout="constrained")
    axes = fig.subplots(2, len(comparisons), squeeze=False)
    for col, (title, c) in enumerate(comparisons.items()):
        for row, ax in enumerate(axes[:, col]):
            _picture_panel(ax, c, title, zoom=row == 1)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=4, fontsize=8.5)
    return _save(fig, path)


def _failure_left(ax, d: dict, r: dict, title: str) -> None:
    window = d["t"] <= 4 * r["tau"]
    t = d["t"][window]
    ax.plot(t, d["true"][window], color="k", lw=2.2, label=r"true $\varphi(t) - \varphi(0)$")
    ax.plot(t, d["m"][window], color="C1", lw=1.6, label="m spectral (paper)")
    for j in np.flatnonzero((d["m"] < d["true"]) & window):         # shade every grid cell where m < true
        lo, hi = d["t"][max(j - 1, 0)], d["t"][min(j + 1, len(d["t"]) - 1)]
        ax.axvspan(math.sqrt(lo * d["t"][j]), math.sqrt(hi * d["t"][j]), color="C3", alpha=0.12, lw=0)
    ax.axvline(d["t_flip"], color="C2", ls="-.", lw=1.2, label=f"first unit switches, t = {d['t_flip']:.1e}")
    ax.plot([r["tau"], r["tau"]], [r["m_tau"], r["true_tau"]], color="C1", lw=1, ls=":")
    ax.plot([r["tau"]], [r["m_tau"]], "o", ms=6, color="C1", label=f"m(τ) = {r['m_tau']:+.1e}: promised")
    ax.plot([r["tau"]], [r["true_tau"]], "o", ms=9, mfc="none", mew=1.8, color="C1",
            label=f"φ(τ) - φ(0) = {r['true_tau']:+.1e}: delivered")
    ax.axhline(0, color="0.5", lw=0.6)
    ax.set_xscale("log")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(0, 0))
    low = float(min(np.min(d["m"][window]), np.min(d["true"][window])))
    ax.set_ylim(1.3 * low, max(-0.8 * low, 1.3 * float(np.max(d["true"][window]))))
    ax.set(xlabel="angle $t$ [rad] (log scale)", ylabel="change of the loss $J$", title=title)
    ax.legend(loc="lower left", fontsize=8)


def failure(cases: dict, report: dict, title: str, path) -> Path:
    """A majorant that fails to bound: ``m`` against the true change, and the gap ``A(t)`` against the slack ``S(t)``.

    Parameters
    ----------
    cases : dict
        ``{name: decomposition}``, the first being the failing iterate. Each decomposition holds, on the angles
        ``t``: ``true`` (``φ(t) - φ(0)``), ``m``, ``gap`` (Assumption 1's ``A(t)``), ``slack`` (the penalty's
        ``S(t)``) and ``t_flip`` (the first angle at which a hidden unit switches).
    report : dict
        ``spherenet.majorant.validity`` at the failing iterate (``tau``, ``m_tau``, ``true_tau``).
    title : str
        The left panel's title.
    path : str or Path
        Where the PNG goes.

    Returns
    -------
    Path
        ``path``. Left: the red bands are where ``m < φ(t) - φ(0)``. Right: the positive parts of ``A`` and
        ``S`` for ``t <= 0.1``, solid for the first case, dotted for the next.
    """
    fig = Figure(figsize=(12.5, 4.6), layout="constrained")
    ax, bx = fig.subplots(1, 2)
    d = next(iter(cases.values()))
    _failure_left(ax, d, report, title)
    for (name, data), style in zip(cases.items(), ("-", ":", "--")):
        keep = data["t"] <= 0.1
        tt = data["t"][keep]
        bx.loglog(tt, np.where(data["gap"][keep] > 0, data["gap"][keep], np.nan), color="C3", ls=style, lw=1.6,
                  label=f"gap A(t) of Assumption 1, {name}")
        bx.loglog(tt, np.where(data["slack"][keep] > 0, data["slack"][keep], np.nan), color="C0", ls=style,
                  lw=1.6, label=f"slack S(t) of the penalty, {name}")
    bx.axvline(d["t_flip"], color="C2", ls="-.", lw=1.2, label=f"first unit switch, {next(iter(cases))}")
    bx.set(xlabel="angle $t$ [rad]", ylabel="size (positive part)",
           title="m bounds the loss exactly where S(t) > A(t)")
    bx.grid(True, which="major", alpha=0.3)
    bx.legend(fontsize=8, loc="upper left")
    return _save(fig, path)
