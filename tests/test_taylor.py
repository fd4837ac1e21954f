"""Algorithm 1 and its order-r extension: the step formulas on 1-D models with known answers, the step
rules' post-conditions on random problems (monotone loss, tau in [0, pi/6], weights on their spheres,
caps and degenerate cases reported), and the teacher's diagnostics along the curve."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.polynomial import polynomial as P

import spherenet as sn
from spherenet import taylor
from spherenet.network import Direction, _backward, _direction, _forward_cache, _loss_from_output
from spherenet.steps import Iterate
from tests.strategies import problems, unit_rows

EPS = math.pi / 6


def iterate(weights, radii, X, Y, loss_prev=None):
    cache = _forward_cache(weights, X)
    J, grads = _backward(weights, cache, Y)
    return Iterate(weights, radii, X, Y, cache, J, grads, _direction(weights, grads, radii),
                   J if loss_prev is None else loss_prev)


def random_problem(seed, widths=(5, 8, 6, 3), n=40, dtype=np.float64):
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(list(widths), seed=seed, dtype=dtype)
    return net, unit_rows(rng, n, widths[0]).astype(dtype), rng.normal(size=(n, widths[-1])).astype(dtype)


# --- the step formulas ---------------------------------------------------------------------------------

@pytest.mark.parametrize("beta,kappa,expected", [
    (1.0, 4.0, 0.25),             # Newton step inside (0, eps]
    (1.0, 1.0, EPS),              # too long: clipped
    (1.0, -2.0, EPS),             # negative curvature
    (1.0, 0.0, EPS),              # kappa = 0, beta > 0
    (0.0, 0.0, 0.0),              # kappa = 0, beta = 0
    (0.0, 3.0, 0.0),              # t_cr = 0
    (0.0, -3.0, 0.0),             # t_cr = -0: 0 <= t_cr holds, tau = 0 (and not -0.0)
    (EPS, 1.0, EPS),              # t_cr = eps exactly is kept
])
def test_newton_safeguard_follows_method_section_4(beta, kappa, expected):
    tau = taylor.newton_safeguard(beta, kappa)
    assert tau == expected and math.copysign(1.0, tau) == 1.0


def test_newton_safeguard_refuses_bad_input():
    with pytest.raises(ValueError, match="beta"):
        taylor.newton_safeguard(-1.0, 1.0)
    with pytest.raises(ValueError, match="kappa"):
        taylor.newton_safeguard(1.0, math.nan)
    with pytest.raises(ValueError, match="eps"):
        taylor.newton_safeguard(1.0, 1.0, 0.0)


finite = dict(allow_nan=False, allow_infinity=False)
betas = st.one_of(st.just(0.0), st.floats(0.0, 1e300, **finite), st.floats(0.0, 1e-300, **finite))
halves = st.one_of(st.just(0.0), st.floats(-1e300, 1e300, **finite), st.floats(-1e-300, 1e-300, **finite))


@settings(max_examples=400)
@given(betas, halves, st.floats(-1e6, 1e6, **finite), st.sampled_from([EPS, 1.0, 1e-3]))
def test_model_step_of_order_2_is_newton_safeguard_exactly(beta, J2, J0, eps):
    """``kappa = 2 J_2`` (how the step rule forms it; exact in binary floating point)."""
    kappa = 2 * J2
    assert taylor.model_step([J0, -beta, J2], eps) == taylor.newton_safeguard(beta, kappa, eps)


@st.composite
def derivative_with_known_roots(draw):
    """``φ_r' = a prod_j (t - s_j) [(t - u)^2 + v^2]^{0|1}`` with real roots ``s_j`` at least 0.02 apart in
    (0.01, 0.8), sign chosen so ``φ_r'(0) < 0``; returns the coefficients of ``φ_r`` and the expected step."""
    k = draw(st.integers(1, 4))
    roots = sorted(draw(st.lists(st.floats(0.01, 0.8), min_size=k, max_size=k)))
    if any(b - a < 0.02 for a, b in zip(roots, roots[1:])):
        roots = [0.02 + 0.15 * j for j in range(k)]
    d = P.polyfromroots(roots)
    if draw(st.booleans()) and k <= 3:                  # a complex pair: no real root added
        d = P.polymul(d, [draw(st.floats(0.01, 1.0)) ** 2 + 0.3**2, -2 * 0.3, 1.0])
    d = d * draw(st.floats(0.1, 10.0))
    if P.polyval(0.0, d) > 0:
        d = -d
    coeffs = np.concatenate([[draw(st.floats(-5.0, 5.0))], P.polyint(d)[1:]])
    # expected: the first root in (0, eps) where φ_r' goes from - to +, else eps
    expected = EPS
    for s in roots:
        if s < EPS and P.polyval(s - 1e-3, d) < 0 < P.polyval(s + 1e-3, d):
            expected = s
            break
    return coeffs, expected


@settings(max_examples=150)
@given(derivative_with_known_roots())
def test_model_step_finds_the_smallest_local_minimiser(case):
    coeffs, expected = case
    assert taylor.model_step(coeffs) == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_model_step_handles_multiple_roots_of_the_derivative():
    # φ' = (t - 0.1)^2 (t - 0.2): no sign change at the double root, the minimiser is 0.2
    assert taylor.model_step(np.concatenate([[1.0], P.polyint(P.polyfromroots([0.1, 0.1, 0.2]))[1:]])) \
        == pytest.approx(0.2, rel=1e-9)
    # φ' = (t - 0.1)^3: a sign change at a triple root (found to ~eps^(1/3) only)
    assert taylor.model_step(np.concatenate([[1.0], P.polyint(P.polyfromroots([0.1, 0.1, 0.1]))[1:]])) \
        == pytest.approx(0.1, rel=1e-4)
    # order 1 (a line) and no descent
    assert taylor.model_step([1.0, -1.0]) == EPS
    assert taylor.model_step([1.0, 0.5, -3.0]) == 0.0
    with pytest.raises(ValueError, match="coeffs"):
        taylor.model_step([1.0])
    with pytest.raises(ValueError, match="coeffs"):
        taylor.model_step([1.0, -1.0, math.inf])


# --- the step rules on random problems -----------------------------------------------------------------

def run(rule, net, X, Y, iterations):
    """A minimal training loop: yields ``(it, step)``, moving to the step's weights."""
    weights, radii = [W.copy() for W in net.weights], net.radii
    J_prev = None
    for _ in range(iterations):
        it = iterate(weights, radii, X, Y, J_prev)
        step = rule(it)
        yield it, step
        weights, J_prev = step.weights_new, step.loss_new


@settings(max_examples=6)
@given(problems(max_layers=3, max_width=8, max_n=30), st.sampled_from([1, 2, 3, 4]))
def test_taylor_steps_never_increase_the_loss_and_keep_the_spheres(problem, order):
    net, X, Y = problem
    rule = taylor.TaylorStep(order=order)
    for it, step in run(rule, net, X, Y, 30):
        assert 0.0 <= step.tau <= EPS
        assert step.loss_new <= it.loss_prev
        assert step.loss_new == _loss_from_output(_forward_cache(step.weights_new, X).F, Y)
        assert set(step.flags) <= set(sn.steps.FLAGS)
        if "stationary" in step.flags:
            assert step.tau == 0.0 and it.direction.beta == 0
            break
        if step.halvings == 0 and "backtracking-cap" not in step.flags:
            assert step.tau == step.info["t_model"]
        assert step.predicted == pytest.approx(sum(c * step.tau**k for k, c in enumerate(
            [0.0, -it.direction.beta, *step.info["coeffs"][2:]])), rel=1e-12, abs=1e-300)
    for W, mu in zip(step.weights_new, net.radii):
        assert abs(np.linalg.norm(W) - mu) <= 1e-12 * mu


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_algorithm1_uses_kappa_from_the_jet_and_the_newton_rule(seed):
    """kappa against a central second difference of φ (independent of the jets), and t_model against
    METHOD.md §4's rule, on 20 iterations."""
    net, X, Y = random_problem(seed)
    first = None
    for it, step in run(taylor.algorithm1(), net, X, Y, 20):
        first = first or (it, step.info["kappa"])
        beta, kappa = it.direction.beta, step.info["kappa"]
        assert step.info["t_model"] == taylor.newton_safeguard(beta, kappa)
        c = np.array(step.info["coeffs"], dtype=float)
        c[1] = -beta
        assert taylor.model_step(c) == step.info["t_model"]            # the general rule at r = 2
        assert ("kappa-nonpositive" in step.flags) == (kappa <= 0)
        assert ("clipped" in step.flags) == (step.info["t_model"] == EPS)
    it, kappa = first                     # at the random start no unit is within 1e-4 of a sign change
    h = 1e-4
    caches = [_forward_cache(sn.steps.weights_along(it, s), X) for s in (-h, 0.0, h)]
    assert all(np.array_equal(c.Z[i] > 0, it.cache.Z[i] > 0) for c in caches for i in range(2))
    phi = [_loss_from_output(c.F, Y) for c in caches]
    assert abs((phi[0] - 2 * phi[1] + phi[2]) / h**2 - kappa) <= 1e-4 * abs(kappa)


def test_backtracking_cap_is_reported():
    """Constructed honestly: ``loss_prev = -1`` is below every reachable loss (J >= 0), so no halving can
    be accepted; the step must stay (tau = 0), use exactly ``max_halvings`` halvings and say so."""
    net, X, Y = random_problem(3)
    it = iterate(net.weights, net.radii, X, Y, loss_prev=-1.0)
    step = taylor.TaylorStep(order=2, max_halvings=7)(it)
    assert step.tau == 0.0 and step.halvings == 7
    assert "backtracking-cap" in step.flags
    assert step.weights_new is it.weights and step.loss_new == it.loss
    assert step.predicted == 0.0


def test_stationary_point_gives_tau_zero():
    """``Y = f(X)``: zero loss, every gradient exactly zero, beta = 0."""
    net, X, _ = random_problem(4)
    it = iterate(net.weights, net.radii, X, sn.forward(net.weights, X))
    assert it.direction.beta == 0
    for order in (1, 2, 4):
        step = taylor.TaylorStep(order=order)(it)
        assert step.tau == 0.0 and "stationary" in step.flags and step.halvings == 0


def test_zero_layer_does_not_move():
    net, X, Y = random_problem(5)
    it = iterate(net.weights, net.radii, X, Y)
    d = it.direction
    V = [np.zeros_like(d.V[0])] + d.V[1:]
    norms = np.concatenate([[0.0], d.rgrad_norms[1:]])
    it.direction = Direction(V, norms, d.inner_wg, float(np.dot(net.radii, norms)), d.alpha)
    step = taylor.TaylorStep(order=3)(it)
    assert it.direction.zero_layers == [0] and step.tau > 0
    np.testing.assert_array_equal(step.weights_new[0], net.weights[0])        # stays, on its sphere


def test_float32_problem_trains_monotonically():
    net, X, Y = random_problem(6, dtype=np.float32)
    losses = [it.loss for it, _ in run(taylor.TaylorStep(order=2), net, X, Y, 12)]
    assert all(b <= a for a, b in zip(losses, losses[1:])) and losses[-1] < losses[0]


def test_rule_options_are_validated():
    with pytest.raises(ValueError, match="order"):
        taylor.TaylorStep(order=0)
    with pytest.raises(ValueError, match="eps"):
        taylor.TaylorStep(eps=-1.0)
    with pytest.raises(ValueError, match="max_halvings"):
        taylor.TaylorStep(max_halvings=-1)
    assert taylor.TaylorStep().name == "taylor" and taylor.TaylorStep(order=4).name == "taylor4"


# --- diagnostics ---------------------------------------------------------------------------------------

def test_along_curve_shows_true_phi_models_and_flips(tmp_path):
    net, X, Y = random_problem(7, widths=(5, 16, 16, 3), n=60)
    it = iterate(net.weights, net.radii, X, Y)
    d = taylor.along_curve(it, order=4, t_max=0.8, n=41)
    t = d["t"]
    assert t.shape == (41,) and d["models"].shape == (4, 41) and t[-1] == 0.8
    # the true φ by an independent loss evaluation
    for j in (0, 7, 40):
        W_t = [sn.sphere.curve(W, V, mu, t[j]) for W, V, mu in zip(net.weights, it.direction.V, net.radii)]
        assert d["phi"][j] == pytest.approx(sn.loss(W_t, X, Y) - it.loss, abs=1e-14)
        Z0, Zt = it.cache.Z, _forward_cache(W_t, X).Z
        flips = sum(np.count_nonzero((Z0[i] > 0) != (Zt[i] > 0)) for i in range(2)) / (60 * 32)
        assert d["flip_fraction"][j] == flips
    assert d["phi"][0] == 0 and d["flip_fraction"][0] == 0 and np.all(d["models"][:, 0] == 0)
    assert d["flip_fraction"][-1] > 0 and d["t_flip"] > 0
    # the order-m model is Σ_{k<=m} J_k t^k, and each τ is the rule's own
    np.testing.assert_allclose(d["models"][1], d["coeffs"][1] * t + d["coeffs"][2] * t**2, rtol=1e-13)
    assert d["tau"][1] == taylor.algorithm1()(it).tau
    assert np.all((0 <= d["tau"]) & (d["tau"] <= d["tau_model"]) & (d["tau_model"] <= EPS))
    # before the first flip the order-4 model is far closer to φ than the order-1 model
    early = (t > 0) & (t < d["t_flip"])
    if early.any():
        err1 = np.abs(d["phi"][early] - d["models"][0][early]).max()
        err4 = np.abs(d["phi"][early] - d["models"][3][early]).max()
        assert err4 < 1e-2 * err1

    from spherenet.plots.taylor import along_curve as plot
    path = plot(d, tmp_path / "fig" / "taylor.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 10_000


# --- backtracking's count of halvings, and the iterate a rule sees -----------------------------------------

@pytest.mark.parametrize("cap", [0, 1, 5, 30])
@pytest.mark.parametrize("accept_at", ["first", "last", "never", "equal"])
def test_backtrack_tries_exactly_cap_plus_one_angles(cap, accept_at):
    """``J(Γ(τ/2^k)) <= J_prev`` is tried for ``k = 0..cap``: accepted at the last allowed halving, refused
    after it (``τ = 0``, the cap flag); equality counts as no increase."""
    from spherenet.steps import Iterate, backtrack
    good = {"first": 0, "last": cap, "never": cap + 1, "equal": 0}[accept_at]
    tried = []

    def loss_at(t):
        tried.append(t)
        k = len(tried) - 1
        J = 1.0 if accept_at == "equal" else (0.5 if k >= good else 2.0)
        return J, ["W(t)"], "cache(t)"
    it = Iterate(["W"], None, None, None, "cache", 1.0, None, None, 1.0)
    step = backtrack(it, 0.4, max_halvings=cap, loss_at=loss_at)
    assert tried == [0.4 / 2**k for k in range(min(good, cap) + 1)]
    if good <= cap:
        assert (step.tau, step.halvings, step.weights_new, step.cache_new, step.flags) == (
            0.4 / 2**good, good, ["W(t)"], "cache(t)", ())
    else:
        assert (step.tau, step.halvings, step.weights_new, step.loss_new, step.flags) == (
            0.0, cap, ["W"], 1.0, ("backtracking-cap",))


def test_iterate_at_holds_the_loss_gradients_direction_and_adjoints():
    from spherenet.steps import iterate_at
    rng = np.random.default_rng(5)
    net = sn.NormalisedMLP([4, 6, 3], seed=5)
    X, Y = rng.normal(size=(20, 4)), rng.normal(size=(20, 3))
    it = iterate_at(net.weights, net.radii, X, Y)
    J, grads = sn.loss_and_grad(net.weights, X, Y)
    assert it.loss == J == it.loss_prev and it.X is X and it.Y is Y and it.weights is net.weights
    assert all(np.array_equal(a, b) for a, b in zip(it.grads, grads))
    assert it.direction.beta == sn.direction(net.weights, grads, net.radii).beta > 0
    np.testing.assert_array_equal(it.cache.F, sn.forward(net.weights, X))
    assert it.cache.dZ is not None and np.array_equal(it.radii, net.radii)
    assert iterate_at(net.weights, net.radii, X, Y, loss_prev=7.5).loss_prev == 7.5


def test_a_slope_of_rounding_size_on_the_wrong_side_is_no_descent():
    """A jet's c_1 slightly above 0 (beta = -4.4e-18 in a fuzzed 2-sample fit) is beta = 0: the step is 0."""
    from spherenet.taylor import safeguarded_step
    tau, flags = safeguarded_step(np.array([1.0, 4.4e-18, 0.5]), 2, np.pi / 6)
    assert tau == 0.0 and "clipped" not in flags


# --- the readable form of Algorithm 1's step against the rule ------------------------------------------------

@settings(max_examples=20)
@given(seed=st.integers(0, 2**16), prev_gap=st.sampled_from([0.0, 1e-3, 0.05]), eps=st.sampled_from([EPS, 1.5]))
def test_the_rule_takes_the_step_of_the_scalar_algorithm(seed, prev_gap, eps):
    """``taylor.step(phi, beta, kappa, J_prev)``, fed the true loss along the curve, takes the angle and the
    halvings of ``TaylorStep(order=2)`` at real iterates (with ``J_prev`` below ``J`` too, which forces
    halvings, and ``eps`` large enough that the Newton step is taken unclipped)."""
    net, X, Y = random_problem(seed)
    it = iterate(net.weights, net.radii, X, Y)
    it.loss_prev = it.loss - prev_gap * it.loss
    taken = taylor.TaylorStep(order=2, eps=eps)(it)
    phi = lambda t: taylor.loss_along(it, t)[0]
    tau, halvings = taylor.step(phi, it.direction.beta, taken.info["kappa"], it.loss_prev, eps=eps)
    assert (tau, halvings) == (taken.tau, taken.halvings)
    assert ("backtracking-cap" in taken.flags) == (tau == 0 and halvings == 30)


def test_the_scalar_algorithm_on_a_known_function():
    """``φ(t) = 1 - t + t²``: ``beta = 1``, ``kappa = 2``, minimiser 1/2. With a curvature too small (0.5) the
    Newton step 2 is clipped to ``eps = 1.5``, where ``φ = 1.75 > J_prev = 1``: one halving to 0.75."""
    phi = lambda t: 1.0 - t + t * t
    assert taylor.step(phi, 1.0, 2.0, J_prev=1.0, eps=1.0) == (0.5, 0)
    assert taylor.step(phi, 1.0, 0.5, J_prev=1.0, eps=1.5) == (0.75, 1)
    assert taylor.step(lambda t: 1.0 + t, 1.0, 2.0, J_prev=1.0, max_halvings=4) == (0.0, 4)   # the cap
    assert taylor.step(phi, 0.0, 2.0, J_prev=1.0) == (0.0, 0)                    # stationary: stay
    assert taylor.step(phi, 1.0, math.nan, J_prev=1.0, eps=0.5) == (0.5, 0)      # no curvature: eps
