"""The checks behind ``spherenet check``: each compares the engine with an independent reference.

* gradient — the hand-written backward pass vs central finite differences of the loss along a random
  direction (the dot-product test);
* jets — the Taylor coefficients of ``φ(t) = J(Γ(t))`` vs complex evaluation: with the ReLU pattern frozen
  at ``t = 0``, ``φ`` is an entire function of ``t``, so sampling it on the circle ``t = ρ e^{iθ}`` and taking an
  FFT gives every coefficient (METHOD.md §6), and ``J_1 = -beta``;
* norms — 10,000 updates along the curve, no re-projection, keep ``||W_i||_F = mu_i``;
* majorant — ``m(0) = 0``, ``m'(0) = -beta`` by central differences, and the measured share of angles where
  ``m(t) >= φ(t) - φ(0)`` (a finding, not a pass/fail: the bound rests on Assumption 1).
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

from . import sphere
from .network import NormalisedMLP, _backward, _direction, _forward_cache, _loss

TOL = {"gradient": 1e-7, "jets": 1e-9, "norms": 1e-12, "majorant": 1e-6}


def complex_loss_coefficients(weights, V, radii, X, Y, order: int, rho: float = 1.0, n: int = 64) -> np.ndarray:
    """``J_0..J_order`` by complex evaluation of the frozen-pattern loss on ``|t| = rho`` and an FFT.

    ``φ_frozen(t) = 1/(2N) sum (f(t) - y)^2`` with ``H = where(Z_0 > 0, Z(t), 0)`` (no conjugation: the analytic
    continuation). ``J_k = FFT_k / (n rho^k)``. ``rho ≈ 1`` keeps rounding from being amplified by ``rho^-k``.
    """
    Z0 = [z for z in _forward_cache(weights, X).Z[:-1]]
    theta = 2 * np.pi * np.arange(n) / n
    values = np.empty(n, complex)
    for m, th in enumerate(theta):
        t = rho * np.exp(1j * th)
        H = X.astype(complex)
        for i, (W, Vi, mu) in enumerate(zip(weights, V, radii)):
            G = W if not Vi.any() else np.cos(t) * W + mu * np.sin(t) * Vi      # a layer with V_i = 0 stays
            Z = H @ G.T
            H = np.where(Z0[i] > 0, Z, 0) if i < len(weights) - 1 else Z
        E = H - Y
        values[m] = np.sum(E * E) / (2 * len(X))
    return (np.fft.fft(values)[: order + 1] / (n * rho ** np.arange(order + 1))).real


def random_problem(seed: int, widths=(12, 25, 30, 15, 3), n: int = 200):
    """A random normalised network and data with unit-norm inputs (the paper's scaling)."""
    rng = np.random.default_rng(seed)
    net = NormalisedMLP(widths, seed=rng)
    X = rng.normal(size=(n, widths[0]))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.05 * rng.normal(size=(n, widths[-1]))
    return net, X, Y


def _pattern(weights, X) -> list:
    return [z > 0 for z in _forward_cache(weights, X).Z[:-1]]


def check_gradient(net, X, Y, rng) -> float:
    """Relative error of ``<∇J, U>`` against a central difference along a random unit ``U``.

    The difference step ``h`` starts at ``1e-5`` and is halved until no ReLU unit changes sign between
    ``W - hU`` and ``W + hU`` (a kink inside the stencil would make the difference meaningless).
    """
    _, grads = _backward(net.weights, _forward_cache(net.weights, X), Y)
    U = [rng.normal(size=W.shape) for W in net.weights]
    norm = math.sqrt(sum(float(np.vdot(u, u)) for u in U))
    U = [u / norm for u in U]
    pattern, h = _pattern(net.weights, X), 1e-5
    while h > 1e-9 and not all(
            all((p == q).all() for p, q in zip(pattern, _pattern([W + s * h * u for W, u in zip(net.weights, U)], X)))
            for s in (-1, 1)):
        h /= 2
    fd = (_loss([W + h * u for W, u in zip(net.weights, U)], X, Y)
          - _loss([W - h * u for W, u in zip(net.weights, U)], X, Y)) / (2 * h)
    exact = sum(float(np.vdot(g, u)) for g, u in zip(grads, U))
    return abs(exact - fd) / abs(exact)


def check_jets(net, X, Y, order: int = 6) -> tuple[float, float]:
    """(max relative error of ``J_1..J_order`` vs complex evaluation, relative error of ``J_1 + beta``)."""
    from .jets import loss_jet
    _, grads = _backward(net.weights, _forward_cache(net.weights, X), Y)
    d = _direction(net.weights, grads, net.radii)
    J = loss_jet(net.weights, d.V, net.radii, X, Y, order)
    ref = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, order)
    scale = np.abs(ref).max()
    return float(np.max(np.abs(J - ref)) / scale), abs(J[1] + d.beta) / d.beta


def check_norms(seed: int, steps: int = 10_000) -> float:
    """Largest relative norm drift after ``steps`` random updates along the curve (no re-projection)."""
    rng = np.random.default_rng(seed)
    W = sphere.project(rng.normal(size=(25, 30)), 1.0)
    for t in rng.uniform(0, np.pi / 6, steps):
        V = sphere.project_tangent(W, rng.normal(size=W.shape), 1.0)
        W = sphere.curve(W, V / sphere.fro(V), 1.0, t)
    return abs(sphere.fro(W) - 1.0)


def check_majorant(net, X, Y) -> tuple[float, float, float]:
    """(|m(0)|, relative error of m'(0) + beta, share of a t-grid on which m(t) >= φ(t) - φ(0))."""
    from .majorant import spectral, validity
    _, grads = _backward(net.weights, _forward_cache(net.weights, X), Y)
    m = spectral(net.weights, grads, net.radii, X)
    h = 1e-7
    slope = (m(h) - m(-h)) / (2 * h)
    beta = _direction(net.weights, grads, net.radii).beta
    return abs(float(m(0.0))), abs(slope + beta) / beta, validity(m, X, Y)["bound_fraction"]


def print_claims(claims: dict, figures=(), out=None) -> None:
    """Print each ``{statement: bool}`` as ``[ok]``/``[FAILED]`` (the tutorials' closing report) and the figures."""
    out = out or sys.stdout                # looked up now: pytest and notebooks replace sys.stdout
    print("\n== claims ==", file=out)
    for claim, ok in claims.items():
        print(f"[{'ok' if ok else 'FAILED'}] {claim}", file=out)
    if figures:
        print("figures:", *map(str, figures), file=out)


def quick_mode(environ=None) -> bool:
    """Whether a tutorial run as a script or notebook takes its quick mode: ``SPHERENET_QUICK=1`` in the
    environment (``0``, empty or unset: the full version)."""
    value = (os.environ if environ is None else environ).get("SPHERENET_QUICK", "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"SPHERENET_QUICK={value!r}: set it to 1 (quick mode) or 0 (the full tutorial)")
    return value == "1"


def run_checks(seed: int = 0, out=None) -> bool:
    """Run every check on a random problem, print a verdict in words, return whether all passed."""
    out = out or sys.stdout
    rng = np.random.default_rng(seed)
    net, X, Y = random_problem(seed)
    results = []

    def report(name, ok, text):
        results.append(ok)
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {text}", file=out)

    g = check_gradient(net, X, Y, rng)
    report("gradient", g < TOL["gradient"], f"backward pass vs central differences, relative error {g:.1e} "
           f"(tolerance {TOL['gradient']:.0e})")
    jets, j1 = check_jets(net, X, Y)
    report("jets", jets < TOL["jets"] and j1 < 1e-12,
           f"orders 0..6 vs complex evaluation, relative error {jets:.1e} (tolerance {TOL['jets']:.0e}); "
           f"J_1 = -beta to {j1:.1e}")
    drift = check_norms(seed)
    report("norms", drift < TOL["norms"], f"after 10,000 curve steps without re-projection, "
           f"| ||W||_F - mu | / mu = {drift:.1e}")
    m0, slope, share = check_majorant(net, X, Y)
    report("majorant", m0 == 0 and slope < TOL["majorant"], f"m(0) = {m0:.1e}, m'(0) = -beta to {slope:.1e}; "
           f"m(t) bounds the true loss change at {100 * share:.0f}% of 200 angles in [1e-6, pi] "
           f"(it rests on Assumption 1, so it need not be 100%)")
    verdict = "all checks passed" if all(results) else f"{results.count(False)} check(s) FAILED"
    print(f"verdict: {verdict} (seed {seed}, network 12-25-30-15-3, {len(X)} samples, float64)", file=out)
    return all(results)
