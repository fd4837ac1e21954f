"""spherenet.beyond: the per-layer geodesic and its jet, the directions, and the GeodesicStep rule.

References are independent of the code under test: finite differences of the loss along the curve, the
paper's own curve and jets (``jets.loss_jet_from``, ``TaylorStep``), the sphere's defining equations.
"""
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import spherenet
from spherenet import sphere
from spherenet.beyond import ConjugateGradient, Geodesic, GeodesicStep
from spherenet.beyond.directions import AdamDirection, inner, riemannian_gradient
from spherenet.jets import loss_jet_from
from spherenet.network import _backward, _direction, _forward_cache
from spherenet.steps import Iterate
from spherenet.train import make_rule, train

WIDTHS = [5, 7, 6, 3]


def problem(seed, N=64):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(N, WIDTHS[0]))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.05 * rng.normal(size=(N, WIDTHS[-1]))
    return spherenet.NormalisedMLP(WIDTHS, radius=[1.0, 1.5, 0.7], seed=seed), X, Y


def iterate(net, X, Y):
    cache = _forward_cache(net.weights, X)
    J, grads = _backward(net.weights, cache, Y)
    return Iterate(net.weights, net.radii, X, Y, cache, J, grads, _direction(net.weights, grads, net.radii), J)


def random_tangent(net, rng, zero_layer=None):
    D = [sphere.project_tangent(W, rng.normal(size=W.shape), mu) * rng.uniform(0.1, 3)
         for W, mu in zip(net.weights, net.radii)]
    if zero_layer is not None:
        D[zero_layer] = np.zeros_like(D[zero_layer])
    return D


@settings(deadline=None, max_examples=15)
@given(seed=st.integers(0, 10_000), t=st.floats(-3.0, 3.0), zero=st.sampled_from([None, 0, 2]))
def test_geodesic_stays_on_spheres_and_starts_along_D(seed, t, zero):
    net, X, Y = problem(seed)
    D = random_tangent(net, np.random.default_rng(seed), zero)
    curve = Geodesic(net.weights, D, net.radii)
    for W, mu in zip(curve.point(t), net.radii):
        assert abs(np.linalg.norm(W) - mu) <= 1e-12 * mu
    assert curve.rates.max() == pytest.approx(1.0, abs=1e-15) and curve.rates.min() >= 0
    h = 1e-6                                                     # Γ'(0) = D / s by central differences
    for Wp, Wm, Di in zip(curve.point(h), curve.point(-h), D):
        np.testing.assert_allclose((Wp - Wm) / (2 * h), Di / curve.speed, atol=1e-8)


@settings(deadline=None, max_examples=10)
@given(seed=st.integers(0, 10_000), zero=st.sampled_from([None, 1]))
def test_geodesic_jet_matches_finite_differences(seed, zero):
    net, X, Y = problem(seed)
    D = random_tangent(net, np.random.default_rng(seed + 1), zero)
    curve = Geodesic(net.weights, D, net.radii)
    cache = _forward_cache(net.weights, X)
    J = curve.loss_jet(cache, X, Y, 4)
    h = 1e-3
    # the jet is exact while no ReLU unit flips: halve the grid until none does
    def flips(t):
        Zt = _forward_cache(curve.point(t), X).Z
        return not all(np.array_equal(a > 0, b > 0) for a, b in zip(cache.Z[:-1], Zt[:-1]))
    while h > 1e-7 and any(flips(tk) for tk in np.linspace(-2 * h, 2 * h, 33)):
        h /= 2
    # a unit within ~1e-7 of its kink (seed 4283): finite differences cannot see the jet; draw another
    assume(h > 1e-6)
    t = np.linspace(-2 * h, 2 * h, 9)
    phi = np.array([curve.loss(X, Y, tk)[0] for tk in t])
    fit = np.polynomial.polynomial.polyfit(t, phi, 6)
    scale = np.abs(J[:3]).max()
    # Rounding in phi, eps |phi|, reaches the fitted t^k coefficient amplified by 1/h^k: at the small h
    # that avoid every ReLU flip it can exceed 1e-6 of the coefficients (seed 3673: h = 1.6e-5).
    rounding = 100 * np.finfo(float).eps * abs(J[0]) / h ** np.arange(3)
    assert np.all(np.abs(J[:3] - fit[:3]) <= 1e-6 * scale + rounding)
    np.testing.assert_allclose(J[1], inner(_backward(net.weights, cache, Y)[1], D) / curve.speed,
                               rtol=1e-10)


def test_unit_rates_reproduce_the_papers_jet_exactly():
    net, X, Y = problem(3)
    it = iterate(net, X, Y)
    D = [mu * V for V, mu in zip(it.direction.V, net.radii)]
    curve = Geodesic(net.weights, D, net.radii)
    np.testing.assert_allclose(curve.rates, 1.0, rtol=1e-14)
    np.testing.assert_allclose(curve.loss_jet(it.cache, X, Y, 5),
                               loss_jet_from(it, net.weights, it.direction.V, net.radii, X, Y, 5),
                               rtol=1e-12, atol=1e-18)


def test_paper_direction_step_is_algorithm_1():
    net, X, Y = problem(7, N=128)
    h_paper = train(net.copy(), X, Y, "taylor", 15)
    h_geo = train(net.copy(), X, Y, GeodesicStep("paper"), 15)
    np.testing.assert_allclose(h_geo.loss_train, h_paper.loss_train, rtol=1e-12)
    np.testing.assert_allclose(h_geo.tau, h_paper.tau, rtol=1e-10)


def test_cg_without_memory_is_the_gradient_and_paper_direction():
    net, X, Y = problem(11)
    it = iterate(net, X, Y)
    g = riemannian_gradient(net.weights, it.grads, net.radii)
    for precondition, expect in (("none", [-gi for gi in g]),
                                 ("layer", [mu * V for V, mu in zip(it.direction.V, net.radii)])):
        cg = ConjugateGradient(precondition, restart=1)
        for _ in range(2):                                   # restart=1: beta_CG = 0 at every call
            D, info = cg(net.weights, it.grads, net.radii)
            assert info["beta_cg"] == 0.0
            for a, b in zip(D, expect):
                np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-18)


@pytest.mark.parametrize("direction", ["cg", "cg-layer", "adam"])
def test_rule_uses_its_memory_and_never_increases_the_loss(direction):
    net, X, Y = problem(5, N=128)
    rule = GeodesicStep(direction)
    h = train(net, X, Y, rule, 12)
    memory = h.info["beta_cg"] if direction != "adam" else [1 - f for f in h.info["fallback"]]
    assert max(memory) > 0                                   # not silently the memoryless direction
    assert np.all(np.diff(h.loss_train) <= 0)


def test_cg_direction_is_tangent_and_descends():
    net, X, Y = problem(13, N=128)
    cg = ConjugateGradient("none")
    weights = net.weights
    betas = []
    for _ in range(10):
        it = iterate(spherenet.NormalisedMLP.from_weights(weights, net.radii), X, Y)
        D, info = cg(weights, it.grads, net.radii)
        betas.append(info["beta_cg"])
        g = riemannian_gradient(weights, it.grads, net.radii)
        assert inner(g, D) < 0
        for W, Di, mu in zip(weights, D, net.radii):
            assert sphere.check_tangent(W, Di, mu, rtol=1e-12) is None
        curve = Geodesic(weights, D, net.radii)               # move by the jet's Newton step, as the rule does
        J = curve.loss_jet(it.cache, X, Y, 2)
        weights = curve.point(-J[1] / (2 * J[2]) if J[2] > 0 else 0.05)
    assert max(betas) > 0                                      # the memory was used


def test_adam_direction_is_tangent_and_descends():
    net, X, Y = problem(17, N=128)
    adam = AdamDirection()
    weights = net.weights
    for _ in range(6):
        it = iterate(spherenet.NormalisedMLP.from_weights(weights, net.radii), X, Y)
        D, _ = adam(weights, it.grads, net.radii)
        assert inner(riemannian_gradient(weights, it.grads, net.radii), D) < 0
        for W, Di, mu in zip(weights, D, net.radii):
            assert sphere.check_tangent(W, Di, mu, rtol=1e-12) is None
        weights = Geodesic(weights, D, net.radii).point(0.05)


def test_adam_direction_equals_adam_written_out_layer_by_layer():
    """The flat implementation (FlatTangents) against Adam's update per layer with sphere.project_tangent, over
    several points, in float64 and float32 weights; and its memory through state()/restore()."""
    for dtype in (np.float64, np.float32):
        net, X, Y = problem(23, N=128)
        weights = [W.astype(dtype) for W in net.weights]
        adam, resumed = AdamDirection(), None
        m = v = None
        for k in range(1, 6):
            it = iterate(spherenet.NormalisedMLP.from_weights(weights, net.radii), X.astype(dtype), Y.astype(dtype))
            D, _ = (resumed or adam)(weights, it.grads, net.radii)
            W64 = [W.astype(np.float64) for W in weights]
            g = [sphere.project_tangent(W, G.astype(np.float64), mu) for W, G, mu in zip(W64, it.grads, net.radii)]
            m = [0.1 * gi for gi in g] if m is None else [0.9 * sphere.project_tangent(W, mi, mu) + 0.1 * gi
                                                          for W, mi, gi, mu in zip(W64, m, g, net.radii)]
            v = [0.001 * gi * gi for gi in g] if v is None else [0.999 * vi + 0.001 * gi * gi for vi, gi in zip(v, g)]
            c1, c2 = 1 - 0.9 ** k, 1 - 0.999 ** k
            scale = np.sqrt(max(float(vi.max()) for vi in v) / c2)
            expected = [sphere.project_tangent(W, -(mi / c1) / (np.sqrt(vi / c2) + 1e-8 * scale), mu)
                        for W, mi, vi, mu in zip(W64, m, v, net.radii)]
            for Di, Ei in zip(D, expected):
                assert Di.shape == Ei.shape
                np.testing.assert_allclose(Di, Ei, rtol=1e-10, atol=1e-13 * np.abs(Ei).max())
            if k == 1:                                  # state() hands out views: later steps leave them be
                kept = adam.state()
                saved = {key: np.copy(value) for key, value in kept.items()}
            if k == 3:                                  # continue from the memory in a fresh object
                assert all(np.array_equal(kept[key], saved[key]) for key in saved)
                resumed = AdamDirection()
                resumed.restore(adam.state())
            weights = Geodesic(weights, D, net.radii).point(0.05)


@pytest.mark.parametrize("name", ["geo-cg", "geo-cg-layer", "geo-adam", "geo-rgrad"])
def test_training_is_monotone_on_the_spheres_with_the_lipschitz_bound(name):
    net, X, Y = problem(19, N=256)
    h = train(net, X, Y, name, 25)
    assert np.all(np.diff(h.loss_train) <= 0)
    assert h.loss_train[-1] < h.loss_train[0]
    assert max(h.drift) <= 1e-12
    assert net.spectral_norm_product() <= net.lipschitz_bound() == pytest.approx(np.prod(net.radii))


def test_bad_arguments():
    with pytest.raises(ValueError, match="direction"):
        GeodesicStep("newton")
    with pytest.raises(ValueError, match="order"):
        GeodesicStep("cg", order=1)
    with pytest.raises(ValueError, match="precondition"):
        ConjugateGradient("diagonal")
    net, _, _ = problem(0)
    with pytest.raises(ValueError, match="non-zero"):
        Geodesic(net.weights, [np.zeros_like(W) for W in net.weights], net.radii)
    assert make_rule("geo-cg", order=4).name == "geo-cg4"


class _Recorder:
    """A direction (the protocol GeodesicStep documents) that records what the rule asks of it:
    ``D_i = -c_i grad_i`` with layer factors ``c_i`` so that the layers turn at different rates."""
    name = "recorder"

    def __init__(self, factors):
        self.factors, self.resets, self.restored = factors, 0, None

    def reset(self):
        self.resets += 1

    def state(self):
        return {"count": np.array(3)}

    def restore(self, state):
        self.restored = state

    def __call__(self, weights, grads, radii):
        g = riemannian_gradient(weights, grads, radii)
        return [-c * gi for c, gi in zip(self.factors, g)], {"tag": 7.0}


def test_rule_moves_each_layer_along_its_own_geodesic_and_resets_the_direction_when_it_stays():
    net, X, Y = problem(23)
    it = iterate(net, X, Y)
    rec = _Recorder([1.0, 3.0, 0.5])
    rule = GeodesicStep(rec)
    step = rule(it)
    D, _ = rec(net.weights, it.grads, net.radii)
    speeds = np.array([np.linalg.norm(Di) / mu for Di, mu in zip(D, net.radii)])
    rates = speeds / speeds.max()
    assert step.tau > 0 and rec.resets == 0
    assert (step.info["speed"], step.info["min_rate"], step.info["tag"]) == (
        pytest.approx(speeds.max(), rel=1e-13), pytest.approx(rates.min(), rel=1e-13), 7.0)
    for W, Di, mu, a, W_new in zip(net.weights, D, net.radii, rates, step.weights_new):   # the geodesic, by hand
        expected = W * np.cos(a * step.tau) + mu * np.sin(a * step.tau) * Di / np.linalg.norm(Di)
        np.testing.assert_allclose(W_new, expected, rtol=1e-12, atol=1e-15)
    assert step.loss_new == pytest.approx(spherenet.loss(step.weights_new, X, Y), rel=1e-13)
    assert step.loss_new <= it.loss
    it.loss_prev = -1.0                                        # below every loss: backtracking fails
    assert rule(it).tau == 0 and rec.resets == 1
    rule.restore(rule.state())
    assert rec.restored == {"count": np.array(3)}


def test_rule_at_a_stationary_point_stays_and_resets_the_direction():
    net, X, _ = problem(29)
    it = iterate(net, X, spherenet.forward(net.weights, X))   # a perfect fit: beta = 0
    rec = _Recorder([1.0, 1.0, 1.0])
    step = GeodesicStep(rec)(it)
    assert it.direction.beta == 0 and rec.resets == 1
    assert (step.tau, step.weights_new, step.cache_new, step.loss_new, step.predicted, step.flags) == (
        0.0, it.weights, it.cache, it.loss, 0.0, ("stationary",))
    assert step.weights_new is it.weights and step.cache_new is it.cache


def test_rule_defaults_and_option_messages():
    import re

    from spherenet.beyond.directions import DIRECTIONS
    from spherenet.taylor import EPS
    rule = GeodesicStep()
    assert (rule.name, rule.order, rule.eps, rule.max_halvings) == ("geo-cg", 2, EPS, 30)
    assert isinstance(rule.direction, ConjugateGradient)
    assert GeodesicStep("adam", order=3).name == "geo-adam3" and GeodesicStep(max_halvings=0).max_halvings == 0
    with pytest.raises(ValueError, match=re.escape(f"choose one of {', '.join(DIRECTIONS)}")):
        GeodesicStep("newton")
    for kwargs, message in (({"order": 1}, "order must be >= 2"), ({"eps": 0.0}, "eps must be > 0"),
                            ({"eps": -1.0}, "eps must be > 0"), ({"max_halvings": -1}, "max_halvings must be >= 0")):
        with pytest.raises(ValueError, match="^" + message):
            GeodesicStep(**kwargs)
