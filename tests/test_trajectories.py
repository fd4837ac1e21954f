"""Whole trajectories of Algorithms 1 and 2 against a second implementation written here in plain NumPy
from METHOD.md alone.

The reference shares no code with spherenet: the initial weights come from ``NormalisedMLP`` (data
construction only), everything after that is below. It computes

* the gradients by the textbook backward pass, ``V_i``, ``β`` as in METHOD.md §3;
* ``κ = φ''(0)`` by complex evaluation (METHOD.md §6 check (b)): the ReLU pattern frozen at ``t = 0`` makes
  ``φ`` entire, and the FFT of ``φ`` on the circle ``t = e^{iθ}`` (64 points) gives ``J_2``, ``κ = 2 J_2`` —
  where spherenet takes ``κ`` from its adjoint jet (``jets.loss_jet2_adjoint``);
* Algorithm 1's safeguard and backtracking literally as METHOD.md §4 writes them;
* Algorithm 2's majorant with spectral norms by SVD (``np.linalg.norm(·, 2)``), written as
  ``P_1(t) - P_2`` (no telescoping), and Optim.jl's golden-section search (the one the authors called) on
  ``[0, π]`` with their tolerances — where spherenet uses eigenvalues of Gram pencils and its own search.

Algorithm 1 runs 25 iterations on a problem where steps are clipped at ``ε`` and backtracking halves (both
asserted); ``τ`` and ``J`` agree to 1e-10 relative. Algorithm 2 runs 10 iterations; ``τ`` agrees to rounding
(the search's points depend only on its comparisons, so equal decisions give equal ``τ``).
"""
import math

import numpy as np
import pytest

import spherenet as sn
from spherenet.train import train

EPS = math.pi / 6


# --- the reference: METHOD.md in plain NumPy --------------------------------------------------------------

def forward(weights, X, pattern=None):
    """``F`` and the hidden pre-activations ``Z_i``. ``pattern``: frozen ReLU masks, ``H = where(pattern, Z, 0)``
    (for complex ``Z``); by default ``H = max(Z, 0)`` with the tie ``Z = 0`` inactive."""
    H, Zs = X, []
    for i, W in enumerate(weights[:-1]):
        Z = H @ W.T
        Zs.append(Z)
        H = np.where(Z > 0 if pattern is None else pattern[i], Z, 0)
    return H @ weights[-1].T, Zs


def loss(weights, X, Y):
    """``J = 1/(2N) Σ_n ||f(x_n) - y_n||²``; for complex weights the analytic ``Σ E²`` (no conjugate)."""
    E = forward(weights, X)[0] - Y
    return np.sum(E * E) / (2 * X.shape[0])


def gradients(weights, X, Y):
    """``∇_i J``: ``dZ_L = (F - Y)/N``, ``∇_i J = dZ_i^T H_{i-1}``, ``dZ_{i-1} = (dZ_i W_i) ⊙ [Z_{i-1} > 0]``."""
    F, Zs = forward(weights, X)
    Hs = [X] + [np.maximum(Z, 0) for Z in Zs]
    dZ = (F - Y) / X.shape[0]
    grads = [None] * len(weights)
    for i in reversed(range(len(weights))):
        grads[i] = dZ.T @ Hs[i]
        if i:
            dZ = (dZ @ weights[i]) * (Zs[i - 1] > 0)
    return grads


def direction(weights, grads, radii):
    """``V_i = -grad_i/||grad_i||_F``, ``grad_i = g_i - <W_i, g_i>/mu_i² W_i``; ``β = Σ_i mu_i ||grad_i||_F``."""
    V, beta = [], 0.0
    for W, G, mu in zip(weights, grads, radii):
        rgrad = G - np.sum(W * G) / mu**2 * W
        norm = np.linalg.norm(rgrad)
        assert norm > 0                       # the problems below have no layer that stays
        V.append(-rgrad / norm)
        beta += mu * norm
    return V, beta


def curve(weights, V, radii, t):
    """``Γ_i(t) = W_i cos t + mu_i V_i sin t`` (``t`` may be complex)."""
    return [W * np.cos(t) + mu * Vi * np.sin(t) for W, Vi, mu in zip(weights, V, radii)]


def kappa_by_complex_evaluation(weights, V, radii, X, Y, n=64, rho=1.0):
    """``κ = 2 J_2``, ``J_k = FFT(φ(ρ e^{2πij/n}))_k / (n ρ^k)`` with the ReLU pattern frozen at ``t = 0``."""
    pattern = [Z > 0 for Z in forward(weights, X)[1]]
    t = rho * np.exp(2j * np.pi * np.arange(n) / n)
    phi = np.array([np.sum((forward(curve(weights, V, radii, tk), X, pattern)[0] - Y) ** 2) / (2 * X.shape[0])
                    for tk in t])
    J2 = np.fft.fft(phi)[2] / (n * rho**2)
    return 2 * J2.real


def algorithm1(weights, radii, X, Y, iterations, cap=30):
    """METHOD.md §4, literally. Returns per step ``τ``, ``J(Γ(τ))``, halvings, and whether ``τ`` was clipped."""
    J_prev = loss(weights, X, Y)
    out = {"tau": [], "J": [], "halvings": [], "clipped": []}
    for _ in range(iterations):
        V, beta = direction(weights, gradients(weights, X, Y), radii)
        kappa = kappa_by_complex_evaluation(weights, V, radii, X, Y)
        if kappa != 0:
            t_cr = beta / kappa
            tau = t_cr if 0 <= t_cr <= EPS else EPS
        else:
            tau = 0.0 if beta == 0 else EPS
        clipped, halvings = tau == EPS, 0
        while loss(curve(weights, V, radii, tau), X, Y) > J_prev:
            tau, halvings = tau / 2, halvings + 1
            assert halvings <= cap
        weights = curve(weights, V, radii, tau)
        J_prev = loss(weights, X, Y)
        for key, value in zip(out, (tau, J_prev, halvings, clipped)):
            out[key].append(value)
    return out


def golden_section(f, lower, upper, rel_tol=3.45e-4, abs_tol=float(np.finfo(np.float32).eps), iterations=1000):
    """Optim.jl's ``GoldenSection`` (what the authors called), line for line: the minimiser."""
    golden_ratio = 0.5 * (3.0 - math.sqrt(5.0))
    x = lower + golden_ratio * (upper - lower)
    fx = f(x)
    for _ in range(iterations):
        x_tol = rel_tol * abs(x) + abs_tol
        x_midpoint = (upper + lower) / 2
        if abs(x - x_midpoint) <= 2 * x_tol - (upper - lower) / 2:
            break
        if upper - x > x - lower:
            new_x = x + golden_ratio * (upper - x)
            new_f = f(new_x)
            if new_f < fx:
                lower, x, fx = x, new_x, new_f
            else:
                upper = new_x
        else:
            new_x = x - golden_ratio * (x - lower)
            new_f = f(new_x)
            if new_f < fx:
                upper, x, fx = x, new_x, new_f
            else:
                lower = new_x
    return x


def majorant(weights, grads, V, beta, radii, X):
    """``m(t) = α(cos t - 1) - β sin t + Q/2 (P_1(t) - P_2)²`` of METHOD.md §5, spectral norms by SVD."""
    alpha = sum(np.sum(W * G) for W, G in zip(weights, grads))
    Q = np.mean(np.sum(X * X, axis=1))
    s = [np.linalg.norm(W, 2) for W in weights]

    def m(t):
        dW = [W * (np.cos(t) - 1) + mu * Vi * np.sin(t) for W, Vi, mu in zip(weights, V, radii)]
        P1 = np.prod([si + np.linalg.norm(D, 2) for si, D in zip(s, dW)])
        return alpha * (np.cos(t) - 1) - beta * np.sin(t) + Q / 2 * (P1 - np.prod(s)) ** 2
    return m


def algorithm2(weights, radii, X, Y, iterations):
    """METHOD.md §5: ``τ = argmin_[0, π] m(t)``, ``W_i <- Γ_i(τ)``, no decrease check."""
    out = {"tau": [], "J": []}
    for _ in range(iterations):
        grads = gradients(weights, X, Y)
        V, beta = direction(weights, grads, radii)
        tau = golden_section(majorant(weights, grads, V, beta, radii, X), 0.0, math.pi)
        weights = curve(weights, V, radii, tau)
        out["tau"].append(tau)
        out["J"].append(loss(weights, X, Y))
    return out


# --- the problems ------------------------------------------------------------------------------------------

def problem(seed, widths=(4, 8, 6, 2), n=40, y_scale=0.5):
    """Unit-norm inputs, Gaussian targets, the package's initial weights (its data construction)."""
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(list(widths), seed=seed)
    X = rng.normal(size=(n, widths[0]))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return net, X, y_scale * rng.normal(size=(n, widths[-1]))


# --- the reference's own sanity: κ by complex evaluation is φ''(0) -------------------------------------------

def test_reference_kappa_is_the_second_derivative_by_finite_differences():
    net, X, Y = problem(0)
    V, _ = direction(net.weights, gradients(net.weights, X, Y), net.radii)
    kappa = kappa_by_complex_evaluation(net.weights, V, net.radii, X, Y)
    h = 1e-4
    phi = [loss(curve(net.weights, V, net.radii, t), X, Y) for t in (-h, 0.0, h)]
    assert kappa == pytest.approx((phi[0] - 2 * phi[1] + phi[2]) / h**2, rel=1e-5)


# --- the trajectories ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("seed", [0, 2])
def test_algorithm1_trajectory_matches_the_reference(seed):
    net, X, Y = problem(seed)
    ref = algorithm1([W.copy() for W in net.weights], net.radii, X, Y, 25)
    history = train(net, X, Y, "taylor", iterations=25)
    assert history.iterations == 25 and not history.stop_reason
    # the run covers both safeguards: a step clipped at ε and backtracking halvings
    assert any(ref["clipped"]) and sum(ref["halvings"]) > 0
    assert [("clipped" in f) for f in history.flags] == ref["clipped"]
    assert history.halvings == ref["halvings"]
    np.testing.assert_allclose(history.tau, ref["tau"], rtol=1e-10, atol=0)
    np.testing.assert_allclose(history.loss_train[1:], ref["J"], rtol=1e-10, atol=0)


@pytest.mark.parametrize("seed", [0, 1])
def test_algorithm2_trajectory_matches_the_reference(seed):
    net, X, Y = problem(seed)
    ref = algorithm2([W.copy() for W in net.weights], net.radii, X, Y, 10)
    history = train(net, X, Y, "mm", iterations=10)
    assert history.iterations == 10 and not history.stop_reason
    # spherenet's additions to the search (an end of [0, π], the non-unimodal restart) never act here, so
    # the search is the authors' one
    assert not any(set(f) & {"interval-end", "not-unimodal"} for f in history.flags)
    np.testing.assert_allclose(history.tau, ref["tau"], rtol=4 * np.finfo(float).eps, atol=0)
    np.testing.assert_allclose(history.loss_train[1:], ref["J"], rtol=1e-10, atol=0)
