"""Geometry of the Frobenius sphere: the properties METHOD.md §3 states, checked on random points."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from spherenet import sphere

from .strategies import angles, matrices, seeds, sphere_points, unit_tangents


@given(sphere_points(), st.floats(1e-3, 1e3))
def test_project_lands_on_sphere_and_is_idempotent(point, mu):
    W, _ = point
    P = sphere.project(3.7 * W, mu)
    assert np.linalg.norm(P) == pytest.approx(mu, rel=1e-14)
    np.testing.assert_allclose(sphere.project(P, mu), P, rtol=1e-14, atol=0)


@given(sphere_points(), st.data())
def test_tangent_projection_is_orthogonal_and_idempotent(point, data):
    W, mu = point
    Z = data.draw(matrices(W.shape)) * mu
    T = sphere.project_tangent(W, Z, mu)
    assert abs(np.vdot(W, T)) <= 1e-14 * mu * np.linalg.norm(Z)
    np.testing.assert_allclose(sphere.project_tangent(W, T, mu), T, atol=1e-14 * np.linalg.norm(Z))


@given(sphere_points(), st.data())
def test_rgrad_norm_identity(point, data):
    W, mu = point
    G = data.draw(matrices(W.shape))
    direct = np.linalg.norm(sphere.rgrad(W, G, mu))
    # The identity takes a square root of a cancelling difference: its error is ~sqrt(eps) ||G||.
    assert sphere.rgrad_norm(W, G, mu) == pytest.approx(direct, rel=1e-9, abs=1e-7 * np.linalg.norm(G))


@given(unit_tangents(), angles)
def test_curve_stays_on_sphere(tangent, t):
    W, V, mu = tangent
    assert np.linalg.norm(sphere.curve(W, V, mu, t)) == pytest.approx(mu, rel=1e-14)


@given(unit_tangents(), seeds)
def test_ten_thousand_curve_steps_keep_the_norm_without_reprojection(tangent, seed):
    W, _, mu = tangent
    rng = np.random.default_rng(seed)
    for t in rng.uniform(0, np.pi / 6, size=10_000):
        xi = sphere.project_tangent(W, rng.normal(size=W.shape), mu)
        W = sphere.curve(W, V=xi / np.linalg.norm(xi), mu=mu, t=t)
    assert abs(np.linalg.norm(W) - mu) <= 1e-12 * mu


@given(unit_tangents(), st.floats(0.0, np.pi * (1 - 1e-6)))
def test_distance_along_curve_is_mu_t(tangent, t):
    W, V, mu = tangent
    # dist uses the atan2 form, accurate near t = 0 and t = pi too (arccos lost half the digits there).
    assert sphere.dist(W, sphere.curve(W, V, mu, t), mu) == pytest.approx(mu * t, rel=1e-12, abs=1e-14 * mu)


@given(unit_tangents(), st.floats(0.0, 50.0))
def test_exp_map_of_scaled_unit_tangent_is_the_curve(tangent, t):
    W, V, mu = tangent
    np.testing.assert_allclose(sphere.exp_map(W, mu * t * V, mu), sphere.curve(W, V, mu, t),
                               atol=1e-12 * mu * max(1, t))


def test_exp_map_at_zero_is_identity():
    W = np.array([[0.6, 0.8]])
    np.testing.assert_array_equal(sphere.exp_map(W, np.zeros_like(W), 1.0), W)


@given(unit_tangents())
def test_exp_and_retraction_agree_to_second_order(tangent):
    W, V, mu = tangent
    hs = np.array([1e-2, 5e-3, 2.5e-3, 1.25e-3])
    err = [np.linalg.norm(sphere.exp_map(W, h * mu * V, mu) - sphere.retract(W, h * mu * V, mu)) for h in hs]
    slope = np.polyfit(np.log(hs), np.log(err), 1)[0]
    assert 2.8 < slope < 3.2


def test_curve_displacement_is_chord():
    W = np.array([[1.0, 0.0]]) * 2
    V = np.array([[0.0, 1.0]])
    for t in (0.1, 1.0, 3.0):
        assert np.linalg.norm(sphere.curve(W, V, 2.0, t) - W) == pytest.approx(2 * 2 * np.sin(t / 2))


def test_transport_gives_a_tangent_at_the_new_point():
    rng = np.random.default_rng(0)
    W = sphere.project(rng.normal(size=(4, 3)), 1.5)
    xi = sphere.project_tangent(W, rng.normal(size=W.shape), 1.5)
    W2 = sphere.exp_map(W, 0.3 * xi, 1.5)
    assert sphere.check_tangent(W2, sphere.transport(W2, xi, 1.5), 1.5, rtol=1e-13) is None


def test_check_point_and_check_tangent_explain_failures():
    W = np.array([[3.0, 4.0]])
    assert sphere.check_point(W, 5.0) is None
    assert "differs from the radius" in sphere.check_point(W, 1.0)
    assert "non-finite" in sphere.check_point(np.array([[np.nan, 1.0]]), 1.0)
    assert "not orthogonal" in sphere.check_tangent(W, np.array([[1.0, 0.0]]), 5.0)
    assert "shapes differ" in sphere.check_tangent(W, np.zeros((2, 1)), 5.0)


def test_project_refuses_zero_matrix():
    with pytest.raises(ValueError, match=r"^cannot project a zero \(or non-finite\) matrix onto a sphere$"):
        sphere.project(np.zeros((2, 2)), 1.0)


@given(unit_tangents(), st.floats(1e-12, 1e-6))
def test_tangent_projection_of_a_nearly_radial_matrix_is_tangent_to_rounding(tangent, size):
    """``Z = W + (tiny tangent)``: one projection pass leaves ``<W, T>`` at ``eps ||Z||``, huge next to ``||T||``;
    the second pass ("twice is enough") brings it to ``eps ||W|| ||T||`` (the docstring's claim)."""
    W, V, mu = tangent
    Z = W + size * mu * V
    T = sphere.project_tangent(W, Z, mu)
    assert abs(np.vdot(W, T)) <= 8 * W.size * np.finfo(float).eps * mu * np.linalg.norm(T)


def test_check_point_and_check_tangent_thresholds_and_messages():
    """The default ``rtol = 1e-10`` is relative to ``mu`` (both sides of it), strict (``rtol = 0`` accepts an
    exact point), and the messages say what and how much."""
    W = np.array([[3.0, 4.0]])                                   # ||W||_F = 5 exactly
    for mu in (0.01, 100.0):
        assert sphere.check_point(W * (mu / 5) * (1 + 0.5e-10), mu) is None
        reason = sphere.check_point(W * (mu / 5) * (1 + 2e-10), mu)
        assert reason is not None and reason.endswith("by 2e-10 (relative)")
    assert sphere.check_point(W, 5.0, rtol=0.0) is None
    assert sphere.check_point(np.array([[np.nan, 1.0]]), 1.0) == "the matrix has non-finite entries"
    xi = np.array([[4.0, -3.0]])                                 # <W, xi> = 0 exactly
    assert sphere.check_tangent(W, xi, 5.0, rtol=0.0) is None
    # nearly tangent and long: cos = <W, xi>/(mu ||xi||) = 3e-6/2.5e7, far below 1e-10
    assert sphere.check_tangent(W, 1e6 * xi + np.array([[1e-6, 0.0]]), 5.0) is None
    assert sphere.check_tangent(W, np.array([[100.0, 0.0]]), 5.0) == (
        "<W, xi> / (mu ||xi||) = 0.6: xi is not orthogonal to W")
    assert sphere.check_tangent(W, np.array([[np.inf, 0.0]]), 5.0) == "the tangent vector has non-finite entries"


def test_curve_layers_returns_a_staying_layer_itself_and_moves_the_others():
    rng = np.random.default_rng(3)
    W = [sphere.project(rng.normal(size=(3, 4)), mu) for mu in (1.0, 2.0)]
    V = [np.zeros_like(W[0]), sphere.project_tangent(W[1], rng.normal(size=(3, 4)), 2.0)]
    V[1] /= np.linalg.norm(V[1])
    out = sphere.curve_layers(W, V, [1.0, 2.0], 0.3, [0.0, 0.5])
    assert out[0] is W[0]                                       # not a copy: the documented zero-layer rule
    np.testing.assert_allclose(out[1], W[1] * np.cos(0.15) + 2.0 * np.sin(0.15) * V[1], rtol=1e-14, atol=1e-15)
