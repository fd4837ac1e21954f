"""Long runs: how far do the weights drift off their spheres over 100,000 updates, with no re-projection?

Problem: the paper's 12-25-30-15-3 net on 8 random unit-norm samples (small, so 100,000 iterations take
seconds). Every update is the real thing: forward, backward, Riemannian direction V_i, a step rule, and
W_i <- Γ_i(τ) = W_i cos τ + mu_i V_i sin τ through ``spherenet.train.train``. Rules: Algorithm 2's closed
form ("mm-closed", a real rule that moves at every step) and rules that take a FIXED angle τ (the stress
case: the same rounding of cos τ at every step). Printed: the drift max_i | ||W_i||_F - mu_i | / mu_i (maximum
over the run so far) at 1e3, 1e4, 1e5 updates. spherenet computes the update in the increment form

    Γ_i(τ) = W_i + ((cos τ - 1) W_i + mu_i sin τ V_i),     cos τ - 1 = -2 sin²(τ/2)

(``sphere.curve``); the last column is the same run's final drift with the product form
``W_i cos τ + mu_i V_i sin τ`` patched in, which rounds cos τ to a number near 1 at every step.

The geodesic rules (``geo-*``, the default method ``geo-cg-layer``) move each layer by its own angle
``a_i τ`` along ``beyond.Geodesic`` (through ``sphere.curve`` too). Rows for them: the default method as it
trains, a fixed angle along its curve (the real layer-normalised CG direction), and "random steps": no
network, a fresh random tangent direction (per-layer sizes random, so per-layer rates too) and a random
angle in [0, π/6] at every update, as mini-batch steps look to the curve.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_long_run.py [--updates 100000] [--quick] [--only geo]
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np

import spherenet as sn
from spherenet import sphere
from spherenet.beyond import DIRECTIONS, Geodesic
from spherenet.steps import Step
from spherenet.train import train

WIDTHS = [12, 25, 30, 15, 3]


class FixedAngle:
    """A step rule that always takes the angle ``tau`` along the real update curve."""

    def __init__(self, tau: float):
        self.tau, self.name = tau, f"fixed tau={tau:g}"

    def __call__(self, it) -> Step:
        return Step(self.tau)


class GeodesicAngle:
    """A step rule that always takes the angle ``tau`` along the geodesic rules' curve (``beyond.Geodesic``,
    per-layer rates) in the real ``direction`` (default: the default method's layer-normalised CG)."""

    def __init__(self, tau: float, direction: str = "cg-layer"):
        self.tau, self.direction, self.name = tau, DIRECTIONS[direction](), f"geo tau={tau:g}"

    def __call__(self, it) -> Step:
        D, _ = self.direction(it.weights, it.grads, it.radii)
        return Step(self.tau, weights_new=Geodesic(it.weights, D, it.radii).point(self.tau))


class RandomSteps:
    """Not a rule: ``updates`` moves along ``beyond.Geodesic`` with a random tangent ``D`` (each layer's size
    drawn in [0.01, 1], so the per-layer rates vary) and a random angle in [0, π/6] each time."""
    name = "random steps"


def random_steps(updates: int, dtype, curve=None, seed=0) -> tuple[np.ndarray, float]:
    """``(running max of the drift after each update, seconds)`` for :class:`RandomSteps`."""
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(WIDTHS, seed=seed, dtype=dtype)
    weights, radii, drift = net.weights, net.radii, np.empty(updates)
    original = sphere.curve
    sphere.curve = curve or original
    try:
        start = time.perf_counter()
        for k in range(updates):
            # tangents computed in float64 and then rounded to the weights' dtype, as the training loop does
            D = [(sphere.project_tangent(W.astype(np.float64), rng.normal(size=W.shape), mu)
                  * rng.uniform(0.01, 1.0)).astype(dtype) for W, mu in zip(weights, radii)]
            weights = Geodesic(weights, D, radii).point(rng.uniform(0, math.pi / 6))
            drift[k] = max(abs(sphere.fro(W.astype(np.float64)) - mu) / mu for W, mu in zip(weights, radii))
        seconds = time.perf_counter() - start
    finally:
        sphere.curve = original
    return np.maximum.accumulate(drift), seconds


def product_curve(W, V, mu, t, rate=1.0):
    """``W cos(a t) + mu V sin(a t)`` as written, in ``W``'s dtype (for comparison)."""
    return math.cos(rate * t) * W + (float(mu) * math.sin(rate * t)) * V


def long_run(rule, updates: int, dtype, curve=None, seed=0) -> tuple[np.ndarray, float]:
    """``(running max of the drift after each update, seconds)``; ``curve`` replaces ``sphere.curve``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(8, WIDTHS[0]))
    X, Y = X / np.linalg.norm(X, axis=1, keepdims=True), 0.3 * rng.normal(size=(8, WIDTHS[-1]))
    net = sn.NormalisedMLP(WIDTHS, seed=seed, dtype=dtype)
    original = sphere.curve
    sphere.curve = curve or original
    try:
        start = time.perf_counter()
        history = train(net, X.astype(dtype), Y.astype(dtype), rule, updates)
        seconds = time.perf_counter() - start
    finally:
        sphere.curve = original
    assert history.iterations == updates, history.stop_reason
    return np.maximum.accumulate(np.array(history.drift)), seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--updates", type=int, default=100_000)
    p.add_argument("--quick", action="store_true", help="10,000 updates")
    p.add_argument("--only", choices=["paper", "geo"], default=None,
                   help="only the paper's rules (mm-closed, fixed angles) or only the geodesic rules' rows")
    args = p.parse_args()
    n = 10_000 if args.quick else args.updates
    marks = [k for k in (1_000, 10_000, 100_000, 1_000_000) if k <= n]
    print(f"drift max_i | ||W_i||_F - mu_i | / mu_i (max so far), {WIDTHS}, 8 samples, {n:,} updates")
    print(f"{'rule':<16}{'dtype':<9}" + "".join(f"{f'at {k:,}':>11}" for k in marks)
          + f"{'seconds':>9}{'product form':>16}")
    paper = [("mm-closed", np.float64), (FixedAngle(1e-7), np.float64), (FixedAngle(1e-5), np.float64),
             (FixedAngle(1e-3), np.float64), (FixedAngle(0.3), np.float64),
             ("mm-closed", np.float32), (FixedAngle(1e-3), np.float32)]
    geo = [("geo-cg-layer", np.float64), (GeodesicAngle(1e-3), np.float64), (RandomSteps, np.float64),
           ("geo-cg-layer", np.float32), (GeodesicAngle(1e-3), np.float32), (RandomSteps, np.float32)]
    cases = {"paper": paper, "geo": geo, None: paper + geo}[args.only]
    for rule, dtype in cases:
        run = (lambda curve=None: random_steps(n, dtype, curve)) if rule is RandomSteps else (
            lambda curve=None: long_run(rule, n, dtype, curve))
        drift, seconds = run()
        # The default method's own run costs ~10x a fixed angle's (jets, backtracking): its product-form twin
        # is left out ("-"); the fixed angle along the same curve shows the form's effect.
        product = [math.nan] if rule == "geo-cg-layer" else run(product_curve)[0]
        name = rule if isinstance(rule, str) else rule.name
        print(f"{name:<16}{np.dtype(dtype).name:<9}" + "".join(f"{drift[k - 1]:>11.2e}" for k in marks)
              + f"{seconds:>9.1f}" + (f"{product[-1]:>16.2e}" if math.isfinite(product[-1]) else f"{'-':>16}"))


if __name__ == "__main__":
    main()
