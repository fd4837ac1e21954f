"""The checks behind ``spherenet check``: each compares the engine with an independent reference.

* gradient — the hand-written backward pass vs central finite differences of the loss along a random
  direction (the dot-product test);
* jets — the Taylor coefficients of ``φ(t) = J(Γ(t))`` vs complex evaluation: with the ReLU pattern frozen
  at ``t = 0``, ``φ`` is an entire function of ``t``, so sampling it on the circle ``t = ρ e^{iθ}`` and taking an
  FFT gives every coefficient (docs/method.md §6), and ``J_1 = -beta``;
* kappa — the ``κ`` Algorithm 1 trains with (``TaylorStep.model``: ``jets.loss_jet2_adjoint``) at every
  iterate of a short real run, vs complex evaluation;
* norms — 10,000 updates along the curve, no re-projection, keep ``||W_i||_F = mu_i``; so do the training
  steps of the majorant's run;
* majorant — at every step of a short real run of Algorithm 2: ``m(τ)`` vs docs/method.md §5's formula written
  out with SVD spectral norms, and whether the true loss change was at most ``m(τ)`` (the fraction of steps,
  and the worst ratio of true to predicted decrease).
"""
from __future__ import annotations

import math
import os
import sys

import numpy as np

from . import sphere
from .majorant import plain_spectral
from .network import NormalisedMLP, _backward, _direction, _forward_cache, _loss

TOL = {"gradient": 1e-7, "jets": 1e-9, "slope": 1e-12, "kappa": 1e-9, "norms": 1e-12, "majorant": 1e-10}
RUN_STEPS = {"kappa": 10, "majorant": 30}      # iterations of the real runs the kappa and majorant checks watch


def frozen_loss(weights, V, radii, X, Y, t, masks) -> complex:
    """The loss along the update curve at a real or complex angle ``t``, every ReLU frozen in its ``t = 0``
    pattern: the function whose Taylor coefficients the jets compute (docs/method.md §6).

    Parameters
    ----------
    weights, V : list of ndarray
        ``W_i`` and the directions ``V_i`` (a layer with ``V_i = 0`` stays).
    radii : array_like
    X, Y : ndarray
    t : float or complex
    masks : list of ndarray
        ``Z_{i,0}`` of the hidden layers at ``t = 0`` (only their signs are read: ``D_i = [Z_{i,0} > 0]``).

    Returns
    -------
    complex
        ``1/(2N) sum (f(t) - y)^2``, with ``E * E`` rather than ``|E|^2``, so that it is analytic in ``t``.
    """
    H = X.astype(complex)
    for i, (W, Vi, mu) in enumerate(zip(weights, V, radii)):
        G = W if not Vi.any() else np.cos(t) * W + mu * np.sin(t) * Vi      # a layer with V_i = 0 stays
        Z = H @ G.T
        H = np.where(masks[i] > 0, Z, 0) if i < len(weights) - 1 else Z
    E = H - Y
    return np.sum(E * E) / (2 * len(X))


def complex_loss_coefficients(weights, V, radii, X, Y, order: int, rho: float = 1.0, n: int = 64) -> np.ndarray:
    """``J_0..J_order`` by complex evaluation of the frozen-pattern loss on ``|t| = rho`` and an FFT (method.md §6).

    Parameters
    ----------
    weights, V : list of ndarray
    radii : array_like
    X, Y : ndarray
    order : int
    rho : float, optional
        The circle's radius (default 1: ``rho ≈ 1`` keeps rounding from being amplified by ``rho^-k``).
    n : int, optional
        Points on the circle (default 64).

    Returns
    -------
    ndarray, shape (order+1,)

    Notes
    -----
    ``φ_frozen(t)``: :func:`frozen_loss`, sampled at ``t = rho e^{2πi m/n}``; ``J_k = FFT_k / (n rho^k)``.
    """
    masks = _forward_cache(weights, X).Z[:-1]
    t = rho * np.exp(2j * np.pi * np.arange(n) / n)
    values = np.array([frozen_loss(weights, V, radii, X, Y, tm, masks) for tm in t])
    return (np.fft.fft(values)[: order + 1] / (n * rho ** np.arange(order + 1))).real


def random_problem(seed: int, widths=(12, 25, 30, 15, 3), n: int = 200):
    """A random normalised network and data with unit-norm inputs (the paper's scaling).

    Parameters
    ----------
    seed : int
    widths : sequence of int, optional
        Default ``(12, 25, 30, 15, 3)``.
    n : int, optional
        Samples (default 200).

    Returns
    -------
    net : NormalisedMLP
    X : ndarray, shape (n, d_0)
        Unit-norm rows.
    Y : ndarray, shape (n, d_L)
        ``0.05 N(0, 1)``.
    """
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

    Parameters
    ----------
    net : NormalisedMLP
    X, Y : ndarray
    rng : numpy.random.Generator
        For ``U``.

    Returns
    -------
    float

    Notes
    -----
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
    """``jets.loss_jet`` against complex evaluation (:func:`complex_loss_coefficients`) and the slope ``-beta``.

    Parameters
    ----------
    net : NormalisedMLP
    X, Y : ndarray
    order : int, optional
        Default 6.

    Returns
    -------
    tuple of float
        (max error of ``J_0..J_order`` relative to ``max |J_k|``, relative error of ``J_1 + beta``).
    """
    from .jets import loss_jet
    _, grads = _backward(net.weights, _forward_cache(net.weights, X), Y)
    d = _direction(net.weights, grads, net.radii)
    J = loss_jet(net.weights, d.V, net.radii, X, Y, order)
    ref = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, order)
    scale = np.abs(ref).max()
    return float(np.max(np.abs(J - ref)) / scale), abs(J[1] + d.beta) / d.beta


def check_norms(seed: int, steps: int = 10_000) -> float:
    """Largest relative norm drift after ``steps`` random updates along the curve (no re-projection; §3).

    Parameters
    ----------
    seed : int
    steps : int, optional
        Default 10,000, angles uniform in ``[0, π/6]``.

    Returns
    -------
    float
        ``| ||W||_F - 1 |`` for a ``(25, 30)`` matrix on the unit sphere.
    """
    rng = np.random.default_rng(seed)
    W = sphere.project(rng.normal(size=(25, 30)), 1.0)
    for t in rng.uniform(0, np.pi / 6, steps):
        V = sphere.project_tangent(W, rng.normal(size=W.shape), 1.0)
        W = sphere.curve(W, V / sphere.fro(V), 1.0, t)
    return abs(sphere.fro(W) - 1.0)


class _Watching:
    """A step rule that runs ``rule`` unchanged and, at every iterate of the real run, records
    ``compare(it, step, seen)``: after the step, from the iterate's weights, gradients and data (which no rule
    modifies), and ``seen = before(it)`` taken before it (the rule's trial passes overwrite ``it.cache``).
    Keeps the rule's ``name`` and ``uses_adjoints``, so the loop runs as it would for ``rule``."""

    def __init__(self, rule, compare, before=lambda it: None):
        self.rule, self.compare, self.before, self.values = rule, compare, before, []
        self.name, self.uses_adjoints = rule.name, getattr(rule, "uses_adjoints", True)

    def __call__(self, it):
        seen = self.before(it)
        step = self.rule(it)
        self.values.append(self.compare(it, step, seen))
        return step


def check_kappa(net, X, Y, steps: int = 10) -> tuple[float, bool]:
    """The ``κ`` Algorithm 1 trains with against ``2 J_2`` by complex evaluation, at every iterate of a real run.

    Parameters
    ----------
    net : NormalisedMLP
        Copied, not trained.
    X, Y : ndarray
    steps : int, optional
        Iterations of Algorithm 1 (default 10).

    Returns
    -------
    tuple
        (worst relative error, whether every iterate used the adjoint path ``jets.loss_jet2_adjoint`` of
        ``TaylorStep.model``).
    """
    from .taylor import TaylorStep
    from .train import train

    def compare(it, step, adjoint):
        ref = 2 * complex_loss_coefficients(it.weights, it.direction.V, it.radii, it.X, it.Y, 2)[2]
        return abs(step.info["kappa"] - ref) / abs(ref), adjoint

    rule = _Watching(TaylorStep(order=2), compare, before=lambda it: it.cache.dZ is not None)
    train(net.copy(), X, Y, rule, iterations=steps)
    return max(e for e, _ in rule.values), all(adjoint for _, adjoint in rule.values)


def check_majorant(net, X, Y, steps: int = 30) -> dict:
    """A real ``steps``-iteration run of Algorithm 2 (``"mm"``), the majorant checked at every step (§5).

    Parameters
    ----------
    net : NormalisedMLP
        Copied, not trained.
    X, Y : ndarray
    steps : int, optional
        Default 30.

    Returns
    -------
    dict
        ``steps``; ``formula``: worst relative error of ``m(τ)`` against ``majorant.plain_spectral`` (the formula
        written out, SVD norms); ``held``: steps where the true change ``J(Γ(τ)) - J(W)`` was at most ``m(τ)``;
        ``worst_ratio``: the smallest true/predicted decrease (``>= 1`` when it held everywhere); ``drift``: the
        run's largest norm drift.
    """
    from .mm import MajorantStep
    from .train import train

    def compare(it, step, _):
        ref = plain_spectral(it.weights, it.grads, it.radii, it.X, step.tau)
        return abs(step.predicted - ref) / abs(ref)

    rule = _Watching(MajorantStep("spectral"), compare)
    history = train(net.copy(), X, Y, rule, iterations=steps)
    actual, predicted = np.array(history.actual), np.array(history.predicted)
    return {"steps": history.iterations, "formula": max(rule.values), "held": int(np.sum(actual <= predicted)),
            "worst_ratio": float(np.min(actual / predicted)), "drift": max(history.drift)}


def print_claims(claims: dict, figures=(), out=None) -> None:
    """Print each claim as ``[ok]``/``[FAILED]`` (the tutorials' closing report) and the figures.

    Parameters
    ----------
    claims : dict
        ``{statement: bool}``.
    figures : iterable, optional
        Paths to list.
    out : file, optional
        Default ``sys.stdout``, looked up at call time (pytest and notebooks replace it).

    Examples
    --------
    >>> print_claims({"1 + 1 = 2": True})
    <BLANKLINE>
    == claims ==
    [ok] 1 + 1 = 2
    """
    out = out or sys.stdout                # looked up now: pytest and notebooks replace sys.stdout
    print("\n== claims ==", file=out)
    for claim, ok in claims.items():
        print(f"[{'ok' if ok else 'FAILED'}] {claim}", file=out)
    if figures:
        print("figures:", *map(str, figures), file=out)


def quick_mode(environ=None) -> bool:
    """Whether a tutorial run as a script or notebook takes its quick mode.

    Parameters
    ----------
    environ : mapping, optional
        Default ``os.environ``.

    Returns
    -------
    bool
        ``SPHERENET_QUICK=1``: True; ``0``, empty or unset: False (the full version); anything else is an error.

    Examples
    --------
    >>> quick_mode({"SPHERENET_QUICK": "1"}), quick_mode({})
    (True, False)
    """
    value = (os.environ if environ is None else environ).get("SPHERENET_QUICK", "").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"SPHERENET_QUICK={value!r}: set it to 1 (quick mode) or 0 (the full tutorial)")
    return value == "1"


def run_checks(seed: int = 0, out=None) -> bool:
    """Run every check on a random problem and print a verdict in words (what was compared, against which
    reference, with which tolerance ``TOL``).

    Parameters
    ----------
    seed : int, optional
    out : file, optional
        Default ``sys.stdout``.

    Returns
    -------
    bool
        Whether all passed.
    """
    out = out or sys.stdout
    rng = np.random.default_rng(seed)
    net, X, Y = random_problem(seed)
    results = []

    def report(name, ok, text):
        results.append(ok)
        print(f"[{'ok' if ok else 'FAIL'}] {name}: {text}", file=out)

    g = check_gradient(net, X, Y, rng)
    report("gradient", g < TOL["gradient"], f"backward pass vs central differences along a random unit "
           f"direction: relative error {g:.1e} (tolerance {TOL['gradient']:.0e})")
    jets, j1 = check_jets(net, X, Y)
    report("jets", jets < TOL["jets"] and j1 < TOL["slope"],
           f"jets.loss_jet orders 0..6 vs complex evaluation (FFT of the frozen-pattern loss on |t| = 1): "
           f"error {jets:.1e} relative to max |J_k| (tolerance {TOL['jets']:.0e}); J_1 vs -beta from the "
           f"backward pass: {j1:.1e} relative (tolerance {TOL['slope']:.0e})")
    kappa, adjoint = check_kappa(net, X, Y, RUN_STEPS["kappa"])
    report("kappa", kappa < TOL["kappa"] and adjoint,
           f"the kappa Algorithm 1 trains with (TaylorStep.model: jets.loss_jet2_adjoint"
           f"{'' if adjoint else ' NOT used'}) at each of the {RUN_STEPS['kappa']} iterates of a real run vs 2 J_2 by "
           f"complex evaluation: worst relative error {kappa:.1e} (tolerance {TOL['kappa']:.0e})")
    m = check_majorant(net, X, Y, RUN_STEPS["majorant"])
    drift = check_norms(seed)
    report("norms", drift < TOL["norms"] and m["drift"] < TOL["norms"],
           f"| ||W||_F - mu | / mu vs 0: {drift:.1e} after 10,000 random curve steps without re-projection, "
           f"{m['drift']:.1e} at most over the {m['steps']} training steps below (tolerance {TOL['norms']:.0e})")
    report("majorant", m["formula"] < TOL["majorant"],
           f"m(tau) at each of the {m['steps']} steps of a real Algorithm 2 run vs docs/method.md §5's formula with "
           f"SVD spectral norms: worst relative error {m['formula']:.1e} (tolerance {TOL['majorant']:.0e})")
    report("majorant validity", m["held"] == m["steps"],
           f"the true loss change was at most m(tau) at {m['held']}/{m['steps']} of those steps; worst ratio of "
           f"true to predicted decrease {m['worst_ratio']:.3g} (required: >= 1 at every step; the bound rests on "
           f"Assumption 1, so on other problems a failure is a finding about it, not necessarily a bug)")
    verdict = "all checks passed" if all(results) else f"{results.count(False)} check(s) FAILED"
    print(f"verdict: {verdict} (seed {seed}, network 12-25-30-15-3, {len(X)} samples, float64)", file=out)
    return all(results)
