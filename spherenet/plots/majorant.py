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
