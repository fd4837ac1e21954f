"""Degenerate optimisation states, each constructed honestly and run through the training loop: the stated
rule is applied and recorded in the history (``History.flags`` per iteration, ``History.stop_reason``).

The rules (flag names from ``spherenet.steps.FLAGS``):

* beta = 0 (every Riemannian gradient is zero), full batch: the step is tau = 0 (``"stationary"``) and the
  loop STOPS with a stop_reason naming the stationary point; the weights are unchanged. With mini-batches a
  zero gradient on one batch is not a stationary point of J: tau = 0 for that step and the loop goes on.
* A layer with zero Riemannian gradient: V_i = 0 (``"zero-layer"``); the other layers move.
* kappa <= 0: tau = eps before backtracking (``"kappa-nonpositive"``, ``"clipped"``); kappa = 0 likewise
  (beta > 0). Non-finite kappa: tau = eps before backtracking (``"kappa-nonfinite"``), predicted = NaN.
* Backtracking cap: tau = 0, the weights stay (``"backtracking-cap"``), and the next iteration compares
  against the loss at the weights kept.
* Golden section ending at an interval end (Algorithm 2): the end is returned (``"interval-end"``); near a
  stationary point the majorant's minimiser is below the search's resolution 2(rtol t + atol) and tau = 0.
* Non-finite loss at the new weights: the loop stops, the stop_reason says so (iteration, value, tau), and
  the net keeps the last good weights; the history holds only the good iterations.
* Exact ReLU ties (pre-activation exactly 0): the unit is inactive, sigma'(0) = 0, in the backward pass and
  in the jets alike, so both describe phi on the side of t where the unit stays off.
"""
import math
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spherenet as sn
from spherenet import sphere, taylor
from spherenet.jets import loss_jet
from spherenet.majorant import ATOL, RTOL
from spherenet.network import _backward, _direction, _forward_cache, _loss_from_output
from spherenet.steps import FLAGS, Step
from spherenet.train import RULES, History, train

from .strategies import unit_rows

EPS = math.pi / 6


def problem(seed=0, widths=(5, 7, 6, 3), n=40, dtype=np.float64):
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(list(widths), seed=seed, dtype=dtype)
    return net, unit_rows(rng, n, widths[0]).astype(dtype), (0.5 * rng.normal(size=(n, widths[-1]))).astype(dtype)


def same_weights(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(a, b))


def assert_recorded(history, flag, step=0):
    assert flag in FLAGS and flag in history.flags[step], (flag, history.flags)


# --- beta = 0 -------------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, options", [(name, {}) for name in RULES] + [("taylor", {"order": 4})])
def test_stationary_point_stops_full_batch_training(rule, options):
    """``Y = f(X)``: zero residual, so every gradient is exactly zero and beta = 0."""
    net, X, _ = problem(1)
    Y = net.forward(X)
    start = [W.copy() for W in net.weights]
    history = train(net, X, Y, rule, 10, **options)
    assert history.iterations == 1 and history.tau == [0.0] and history.beta == [0.0]
    assert_recorded(history, "stationary")
    assert "stationary" in history.stop_reason and "iteration 1" in history.stop_reason
    assert same_weights(net.weights, start) and history.loss_train == [0.0, 0.0]


def test_stationary_batches_do_not_stop_mini_batch_training():
    net, X, _ = problem(2)
    Y = net.forward(X)
    start = [W.copy() for W in net.weights]
    history = train(net, X, Y, "taylor", 6, batch_size=16)
    assert history.iterations == 6 and history.stop_reason == ""
    assert history.tau == [0.0] * 6 and all("stationary" in f for f in history.flags)
    assert same_weights(net.weights, start)


# --- a layer with zero Riemannian gradient ----------------------------------------------------------------

def dead_first_layer_problem():
    """Hidden units 0-1 are active on every sample, units 2-3 dead (pre-activation <= 0), and the output
    layer reads ONLY the dead units. So f = 0, dZ_1 = (dZ_2 W_2) ⊙ [Z_1 > 0] = 0 exactly and grad_1 = 0,
    while grad_2 = dZ_2^T H_1 != 0 (it points at the live units): layer 1 has zero Riemannian gradient."""
    rng = np.random.default_rng(0)
    W1 = np.zeros((4, 4))
    W1[0, 0] = W1[1, 1] = 1.0
    W1[2, 0] = W1[3, 1] = -1.0
    W2 = np.zeros((2, 4))
    W2[0, 2] = W2[1, 3] = 1.0
    net = sn.NormalisedMLP.from_weights([W1 / 2.0, W2 / math.sqrt(2.0)], [1.0, 1.0])
    X = np.abs(rng.normal(size=(10, 4)))
    return net, X / np.linalg.norm(X, axis=1, keepdims=True), rng.normal(size=(10, 2))


@pytest.mark.parametrize("rule", ["taylor", "mm"])
def test_zero_gradient_layer_is_flagged_and_the_others_move(rule):
    net, X, Y = dead_first_layer_problem()
    cache = _forward_cache(net.weights, X)
    J, grads = _backward(net.weights, cache, Y)
    assert not grads[0].any() and grads[1].any()
    start = [W.copy() for W in net.weights]
    history = train(net, X, Y, rule, 1)
    assert_recorded(history, "zero-layer")
    assert "stationary" not in history.flags[0] and history.tau[0] > 0
    assert not np.array_equal(net.weights[1], start[1])
    assert history.loss_train[1] < history.loss_train[0]


@pytest.mark.parametrize("rule", ["taylor", "mm"])
def test_zero_gradient_layer_does_not_move_and_stays_on_its_sphere(rule):
    net, X, Y = dead_first_layer_problem()
    start = [W.copy() for W in net.weights]
    history = train(net, X, Y, rule, 1)
    assert history.drift[0] <= 1e-12
    assert np.array_equal(net.weights[0], start[0])


# --- kappa <= 0, kappa = 0, kappa not finite ----------------------------------------------------------------

def test_negative_curvature_takes_eps_then_backtracks():
    """One linear layer, targets pointing against the output (``Y = -10 f(X)``): along the curve
    ``F(t) = F_0 cos t + mu X V^T sin t``, so ``kappa = (||mu X V^T||^2 - <F_0 - Y, F_0>)/N`` < 0 (a formula
    independent of the jets)."""
    rng = np.random.default_rng(1)
    net = sn.NormalisedMLP([5, 3], seed=1)
    X = unit_rows(rng, 20, 5)
    Y = -10.0 * net.forward(X)
    W, mu = net.weights[0], net.radii[0]
    J, grads = _backward(net.weights, _forward_cache(net.weights, X), Y)
    V = _direction(net.weights, grads, net.radii).V[0]
    F0, FV = X @ W.T, mu * X @ V.T
    kappa = (np.vdot(FV, FV) - np.vdot(F0 - Y, F0)) / len(X)
    assert kappa < 0
    history = train(net, X, Y, "taylor", 1)
    assert history.info["kappa"][0] == pytest.approx(kappa, rel=1e-12)
    assert_recorded(history, "kappa-nonpositive")
    assert_recorded(history, "clipped")
    assert history.info["t_model"][0] == EPS
    assert history.tau[0] == EPS / 2 ** history.halvings[0]
    assert history.loss_train[1] <= history.loss_train[0]


@pytest.mark.parametrize("J2, flags", [
    (0.0, {"kappa-nonpositive", "clipped"}),
    (math.inf, {"kappa-nonfinite", "clipped"}),
    (math.nan, {"kappa-nonfinite", "clipped"}),
])
def test_zero_and_nonfinite_curvature(monkeypatch, J2, flags):
    """kappa = 0 or non-finite cannot be reached honestly on float64 data of sane size, so the rule's model
    (whichever jet routine computes it) is patched to report that J_2; everything else is the real thing."""
    real = taylor.TaylorStep.model

    def patched(self, it):
        J, c, _ = real(self, it)
        J, c = J.copy(), c.copy()
        J[2] = c[2] = J2
        return J, c, 2 * J2

    monkeypatch.setattr(taylor.TaylorStep, "model", patched)
    net, X, Y = problem(3)
    history = train(net, X, Y, "taylor", 1)
    assert flags <= set(history.flags[0])
    assert history.info["t_model"][0] == EPS and history.tau[0] == EPS / 2 ** history.halvings[0]
    assert history.loss_train[1] <= history.loss_train[0]
    if J2 == 0:
        assert history.predicted[0] == pytest.approx(-history.beta[0] * history.tau[0], rel=1e-15)
    else:
        assert math.isnan(history.predicted[0])
        assert history.as_dict()["predicted"] == [None]             # NaN is written as null, not NaN


# --- backtracking cap ---------------------------------------------------------------------------------------

def test_backtracking_cap_stays_and_the_loop_recovers():
    """A previous accepted loss of -1 is below every reachable loss (J >= 0): no halving is accepted. It is
    planted through ``resume`` with a made-up history (one value: the 'initial loss')."""
    net, X, Y = problem(4)
    start = [W.copy() for W in net.weights]
    history = train(net, X, Y, "taylor", 2, resume=History("taylor", loss_train=[-1.0]))
    assert_recorded(history, "backtracking-cap")
    assert history.tau[0] == 0.0 and history.halvings[0] == 30
    J0 = _loss_from_output(_forward_cache(start, X).F, Y)
    assert history.loss_train[1] == J0 and history.actual[0] == 0.0
    assert "backtracking-cap" not in history.flags[1] and history.tau[1] > 0     # compared against J0 now
    assert history.loss_train[2] < J0
    assert not same_weights(net.weights, start)


class _StayOnce:
    """Stays at the first iteration, after looking at a far trial point when ``look`` (which overwrites the
    full-batch loop's one forward cache); Algorithm 1 afterwards."""
    name = "stay-once"

    def __init__(self, look):
        self.look, self.calls, self.taylor = look, 0, taylor.TaylorStep()

    def __call__(self, it):
        self.calls += 1
        if self.calls > 1:
            return self.taylor(it)
        if self.look:
            from spherenet.steps import loss_along
            loss_along(it, 0.7)
        return Step(0.0, it.weights, it.cache, it.loss)


def test_a_step_that_stays_after_trials_gets_the_forward_pass_at_its_point_back():
    """The trial's forward pass went into the cache of the point the step stays at: the next iteration must
    see that point's pass again, so both runs give the same bits."""
    runs = []
    for look in (True, False):
        net, X, Y = problem(5)
        runs.append(train(net, X, Y, _StayOnce(look), 3))
    assert runs[0].tau[0] == 0 and runs[0].tau[1] > 0
    for key in ("loss_train", "beta", "tau", "predicted"):
        assert getattr(runs[0], key) == getattr(runs[1], key), key


# --- golden section at an interval end -------------------------------------------------------------------------

@pytest.mark.parametrize("rule", ["mm", "mm-frobenius", "mm-telescoping"])
def test_majorant_minimiser_below_resolution_ends_at_zero(rule):
    """Near a stationary point (``Y = f(X) + 1e-8 noise``) beta is tiny, and the majorant's minimiser lies
    far below the golden section's resolution ``2 (rtol t + atol)``: the search ends at ``t = 0``, returns
    ``tau = 0`` and flags ``"interval-end"``; the weights stay, and since the rule has no memory every
    further iteration would be the same: the loop stops and says why."""
    net, X, _ = problem(5)
    rng = np.random.default_rng(5)
    Y = net.forward(X) + 1e-8 * rng.normal(size=(len(X), 3))
    start = [W.copy() for W in net.weights]
    history = train(net, X, Y, rule, 3)
    assert history.beta[0] > 0
    assert history.tau == [0.0] and "interval-end" in history.flags[0]
    assert "tau = 0 (interval-end)" in history.stop_reason and "would repeat" in history.stop_reason
    assert same_weights(net.weights, start)
    # the minimiser is positive but unresolvable: m < 0 just right of 0, far below the tolerance
    rule_obj = sn.train.make_rule(rule)
    cache = _forward_cache(start, X)
    J, grads = _backward(start, cache, Y)
    it = sn.steps.Iterate(start, net.radii, X, Y, cache, J, grads, _direction(start, grads, net.radii), J)
    m = rule_obj.majorant(it)
    t = np.geomspace(1e-14, 2 * ATOL, 60)
    assert m(t).min() < 0 and t[np.argmin(m(t))] < 2 * (RTOL * 1e-7 + ATOL)


# --- non-finite loss --------------------------------------------------------------------------------------------

class BreaksAt:
    """Algorithm 1, except that call ``k`` returns a broken step (a user's rule gone wrong)."""
    name = "breaks"

    def __init__(self, k, how):
        self.k, self.how, self.calls = k, how, 0

    def __call__(self, it):
        self.calls += 1
        if self.calls < self.k:
            return taylor.TaylorStep()(it)
        if self.how == "nan-tau":
            return Step(math.nan)
        return Step(0.1, weights_new=[np.full_like(W, np.inf) for W in it.weights])


def check_stopped_at(history, net, k, X, Y):
    assert history.iterations == k - 1 and len(history.loss_train) == k
    assert all(math.isfinite(J) for J in history.loss_train)
    assert re.search(rf"iteration {k}: the loss became non-finite", history.stop_reason)
    good = sn.NormalisedMLP([5, 7, 6, 3], seed=6)
    train(good, X, Y, "taylor", k - 1)
    assert same_weights(net.weights, good.weights)                      # the last good weights, exactly


def test_nonfinite_loss_stops_and_keeps_the_last_good_weights():
    net, X, Y = problem(6)
    history = train(net, X, Y, BreaksAt(4, "nan-tau"), 10)
    check_stopped_at(history, net, 4, X, Y)
    assert "tau = nan" in history.stop_reason


def test_nonfinite_weights_from_a_rule_stop_cleanly():
    net, X, Y = problem(6)
    history = train(net, X, Y, BreaksAt(4, "inf-weights"), 10)
    check_stopped_at(history, net, 4, X, Y)


def test_float32_gradient_overflow_is_not_called_stationary():
    net, X, Y = problem(7, dtype=np.float32)
    X, Y = X * np.float32(1e22), Y * np.float32(1e22)
    try:
        history = train(net, X, Y, "taylor", 3)
    except ValueError as err:
        assert re.search("overflow|non-finite|too large", str(err))
    else:
        assert "stationary" not in history.stop_reason and "non-finite" in history.stop_reason


# --- exact ReLU ties ------------------------------------------------------------------------------------------

def tie_problem(layer):
    """A pre-activation exactly 0 at sample 0, unit 0 of ``layer`` (1 or 2), made by disjoint supports:
    every product summed into it is an exact zero. Layer 1: ``x_0`` and ``W_1[0]`` share no coordinate.
    Layer 2: ``W_2[0]`` reads only units that are strictly inactive for sample 0."""
    rng = np.random.default_rng(9)
    net = sn.NormalisedMLP([4, 6, 5, 2], seed=9)
    X, Y = unit_rows(rng, 12, 4), rng.normal(size=(12, 2))
    W = [w.copy() for w in net.weights]
    if layer == 1:
        X[0, :2] = 0.0
        W[0][0, 2:] = 0.0
    else:
        Z1 = X @ W[0].T
        off = Z1[0] < -1e-3
        assert off.any() and (~off).any()
        W[1][0, ~off] = 0.0
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    W = [sphere.project(w, mu) for w, mu in zip(W, net.radii)]
    cache = _forward_cache(W, X)
    assert cache.Z[layer - 1][0, 0] == 0.0                           # an exact tie
    return W, net.radii, X, Y, cache


@pytest.mark.parametrize("layer", [1, 2])
def test_relu_tie_uses_the_inactive_rule_in_backward_and_jets(layer):
    """On the side of t where the tied unit stays off, φ is the frozen-pattern function the tie rule
    describes: its Taylor remainder against the jet has slope 4 (order 3), and one-sided differences give
    φ'(0) = -beta from the backward pass and φ''(0) = kappa. On the other side the unit switches on, a kink
    the jet does not see: the remainder shrinks at most like t² and is >1000x larger at the smallest t. The
    sides differ, so a tie rule 'active' (or different in backward and jets) fails one of the checks."""
    W, radii, X, Y, cache = tie_problem(layer)
    J, grads = _backward(W, cache, Y)
    d = _direction(W, grads, radii)
    coeffs = loss_jet(W, d.V, radii, X, Y, 3)

    def at(t):
        return _forward_cache([sphere.curve(w, v, mu, t) for w, v, mu in zip(W, d.V, radii)], X)

    def along(t):
        c = at(t)
        return _loss_from_output(c.F, Y), c.Z[layer - 1][0, 0]

    off = -1.0 if along(1e-3)[1] > 0 else 1.0                          # the side where the unit stays off
    assert along(off * 1e-3)[1] <= 0 < along(-off * 1e-3)[1]
    for t in (-8e-3, 8e-3):                                            # no OTHER unit flips for |t| <= 8e-3
        flipped = [(at(t).Z[i] > 0) != (cache.Z[i] > 0) for i in range(2)]
        flipped[layer - 1][0, 0] = False
        assert not any(f.any() for f in flipped)

    def remainder(t):
        return abs(along(t)[0] - sum(c * t**k for k, c in enumerate(coeffs)))

    h = np.array([8e-3, 4e-3, 2e-3])
    r_off = np.array([remainder(off * s) for s in h])
    r_on = np.array([remainder(-off * s) for s in h])
    slopes_off = np.diff(np.log(r_off)) / np.diff(np.log(h))
    slopes_on = np.diff(np.log(r_on)) / np.diff(np.log(h))
    assert np.all(np.abs(slopes_off - 4) < 0.3), slopes_off
    assert np.all(slopes_on < 2.5) and r_on[-1] > 1e3 * r_off[-1], (slopes_on, r_on, r_off)
    s = 1e-4                                                               # one-sided, 2nd-order accurate
    p = [along(off * k * s)[0] for k in range(4)]
    slope = off * (-3 * p[0] + 4 * p[1] - p[2]) / (2 * s)
    curvature = (2 * p[0] - 5 * p[1] + 4 * p[2] - p[3]) / s**2
    assert slope == pytest.approx(-d.beta, rel=1e-6)
    assert coeffs[1] == pytest.approx(-d.beta, rel=1e-12)
    assert curvature == pytest.approx(2 * coeffs[2], rel=1e-4)


# --- long runs: the weights stay on their spheres with no re-projection -----------------------------------------

class FixedAngle:
    """A rule that always takes the same angle along the real update curve: the same rounding of cos(tau) at
    every step, the stress case for the norms (benchmarks/bench_long_run.py prints the full table)."""
    name = "fixed"

    def __init__(self, tau):
        self.tau = tau

    def __call__(self, it):
        return Step(self.tau)


def long_run_drift(rule, updates):
    """Max drift over ``updates`` real updates (forward, backward, direction, rule, Γ(τ)) of 12-25-30-15-3."""
    rng = np.random.default_rng(0)
    net = sn.NormalisedMLP([12, 25, 30, 15, 3], seed=0)
    X, Y = unit_rows(rng, 8, 12), 0.3 * rng.normal(size=(8, 3))
    history = train(net, X, Y, rule, updates)
    assert history.iterations == updates and all(t > 0 for t in history.tau)       # it moved every time
    assert net.norm_drift() <= history.drift[-1] + 1e-18          # measured afresh on the final weights
    return max(history.drift)


@pytest.mark.parametrize("rule", ["mm-closed", FixedAngle(1e-3)], ids=["mm-closed", "fixed-1e-3"])
def test_10k_updates_keep_every_norm_to_1e_12(rule):
    assert long_run_drift(rule, 10_000) <= 1e-12


@pytest.mark.slow
@pytest.mark.parametrize("rule", ["mm-closed", FixedAngle(1e-3), FixedAngle(1e-7)],
                         ids=["mm-closed", "fixed-1e-3", "fixed-1e-7"])
def test_100k_updates_keep_every_norm_to_1e_12(rule):
    assert long_run_drift(rule, 100_000) <= 1e-12


# --- a hidden activation that overflows ----------------------------------------------------------------

def _overflowing_net():
    """float32, one sample ``x = (1e20, 1)``: ``Z_1 = (1e30, 1)``, then ``Z_2 = (-1e40, 1)``, whose first entry
    overflows to -Inf. The ReLU makes it a finite 0, so ``F = 1``, ``J = 1/8`` and every gradient are finite:
    only the a-priori bound ``||x|| mu_1 mu_2 = 1e40 > max(float32)`` tells."""
    W1 = np.array([[1e10, 0.0], [0.0, 1.0]], np.float32)
    W2 = np.array([[-1e10, 0.0], [0.0, 1.0]], np.float32)
    W3 = np.array([[1.0, 1.0]], np.float32)
    net = sn.NormalisedMLP.from_weights([W1, W2, W3])
    return net, np.array([[1e20, 1.0]], np.float32), np.array([[0.5]], np.float32)


def test_the_overflowing_net_hides_its_overflow_from_the_loss_and_gradients():
    net, X, Y = _overflowing_net()
    with np.errstate(over="ignore"):
        cache = _forward_cache(net.weights, X)
        J, grads = _backward(net.weights, cache, Y)
    assert np.isneginf(cache.Z[1][0, 0]) and cache.H[2][0, 0] == 0.0
    assert J == 0.125 and all(np.isfinite(G).all() for G in grads)


@pytest.mark.parametrize("rule", ["taylor", "mm"])
def test_a_hidden_activation_that_can_overflow_stops_training_before_a_step(rule):
    net, X, Y = _overflowing_net()
    before = [W.copy() for W in net.weights]
    with np.errstate(over="ignore"):
        history = train(net, X, Y, rule, iterations=3)
    assert history.iterations == 0 and same_weights(net.weights, before)
    assert re.search(r"hidden activation could overflow float32: .* = 1e\+40 on X", history.stop_reason)


def test_an_overflowing_test_set_also_stops_training():
    net, X, Y = problem(3, dtype=np.float32)
    X_test = X.copy()
    X_test[0] = X_test[0] / np.linalg.norm(X_test[0]) * np.float32(3e38)
    history = train(net, X, Y, "taylor", iterations=2, X_test=X_test, Y_test=Y)
    assert history.iterations == 0 and "on X_test" in history.stop_reason
    assert train(net, X, Y, "taylor", iterations=2, X_test=X, Y_test=Y).iterations == 2


@given(st.integers(0, 2**32 - 1), st.lists(st.floats(0.1, 10.0), min_size=1, max_size=4), st.floats(1e-3, 1e3))
def test_hidden_activation_bound_bounds_every_hidden_pre_activation(seed, radii, scale):
    """``|Z_i| <= max_n ||x_n|| max_{i<L} Π_{j<=i} mu_j`` for every hidden layer, on random nets and data."""
    rng = np.random.default_rng(seed)
    widths = [int(w) for w in rng.integers(1, 7, size=len(radii) + 1)]
    net = sn.NormalisedMLP(widths, radius=radii, seed=seed)
    X = scale * rng.normal(size=(int(rng.integers(1, 20)), widths[0]))
    bound = sn.network.hidden_activation_bound(net.radii, X)
    Z = _forward_cache(net.weights, X).Z[:-1]
    assert (bound == 0.0) == (len(radii) == 1)
    for i, Zi in enumerate(Z):
        prefix = np.max(np.linalg.norm(X, axis=1)) * np.prod(net.radii[:i + 1])
        assert np.abs(Zi).max() <= prefix * (1 + 1e-12) and prefix <= bound * (1 + 1e-12)
