"""The loss jet along the update curve against independent references (METHOD.md §6), in float64:
complex evaluation + FFT with the ReLU pattern frozen, the Taylor-remainder slope, central differences,
J_1 = -beta from the backward pass; plus jet arithmetic, the tie rule, validation and the jet kernels."""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet import jets, sphere
from spherenet.verify import complex_loss_coefficients
from spherenet.network import ROW_BLOCK, _backward, _direction, _forward_cache, _loss_from_output
from tests.strategies import problems, unit_rows


def setup(net, X, Y):
    """Forward cache, loss, direction at ``net.weights``."""
    cache = _forward_cache(net.weights, X)
    J, grads = _backward(net.weights, cache, Y)
    return cache, J, _direction(net.weights, grads, net.radii)


def random_problem(seed, widths=(5, 7, 6, 3), n=20, radius="unit"):
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(list(widths), radius=radius, seed=seed)
    return net, unit_rows(rng, n, widths[0]), rng.normal(size=(n, widths[-1]))


# --- independent references ----------------------------------------------------------------------------

def phi_true(net, V, X, Y, t):
    """``φ(t) = J(Γ(t))`` by the package's plain loss at the rotated weights (the ReLU follows ``t``)."""
    return sn.loss([sn.sphere.curve(W, D, mu, t) for W, D, mu in zip(net.weights, V, net.radii)], X, Y)


# --- jet arithmetic ------------------------------------------------------------------------------------

def test_curve_coefficients_are_the_derivatives_of_cos_and_sin():
    cos, sin = jets.curve_coefficients(9)
    np.testing.assert_array_equal(jets.to_derivatives(cos), [1, 0, -1, 0, 1, 0, -1, 0, 1, 0])
    np.testing.assert_array_equal(jets.to_derivatives(sin), [0, 1, 0, -1, 0, 1, 0, -1, 0, 1])
    cos32, _ = jets.curve_coefficients(3, np.float32)
    assert cos32.dtype == np.float32


def test_converters_are_inverse_and_scale_by_factorial():
    derivs = np.array([2.0, -3.0, 5.0, 7.0, -11.0])
    coeffs = jets.from_derivatives(derivs)
    np.testing.assert_allclose(coeffs, derivs / [1, 1, 2, 6, 24], rtol=1e-15)
    np.testing.assert_allclose(jets.to_derivatives(coeffs), derivs, rtol=1e-15)


@pytest.mark.parametrize("shapes", [((5,), (5,)), ((7, 5, 3), (6,)), ((4, 3), (4, 2, 3)), ((3, 2), (5, 2))])
def test_cauchy_product_is_the_plain_sum_with_axes_carried_along(shapes):
    rng = np.random.default_rng(len(shapes[0]))
    a, b = rng.normal(size=shapes[0]), rng.normal(size=shapes[1])
    n = min(len(a), len(b))
    plain = np.array([sum(a[j] * b[k - j] for j in range(k + 1)) for k in range(n)])
    np.testing.assert_array_equal(jets.cauchy(a, b), plain)             # the same sums in the same order


def test_cauchy_product_gives_trig_identities():
    cos, sin = jets.curve_coefficients(10)
    one = jets.cauchy(cos, cos) + jets.cauchy(sin, sin)                  # cos² + sin² = 1
    np.testing.assert_allclose(one, np.eye(11)[0], atol=1e-16)
    k = np.arange(11)
    np.testing.assert_allclose(jets.cauchy(sin, cos), 2.0**k * sin / 2, atol=1e-16)   # sin t cos t = sin(2t)/2
    assert jets.cauchy([1.0, 2.0, 3.0], [4.0, 5.0]).tolist() == [4.0, 13.0]            # truncated at the shorter


# --- the loss jet against the references ---------------------------------------------------------------

@settings(max_examples=25)
@given(problems(max_layers=4, max_width=8, max_n=30), st.integers(0, 6))
def test_loss_jet_matches_complex_evaluation(problem, order):
    net, X, Y = problem
    cache, _, d = setup(net, X, Y)
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, order)
    full = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, 6)
    ref = full[:order + 1]
    assert J.shape == (order + 1,)
    assert np.abs(ref.imag).max() <= 1e-12 * np.abs(full).max()
    # The FFT's rounding is relative to the largest coefficient of the whole jet (a J_0 near 0 shows it).
    scale = np.maximum(np.abs(ref.real), 1e-6 * np.abs(full.real).max())
    assert np.all(np.abs(J - ref.real) <= 1e-9 * scale), (J, ref.real)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_loss_jet_matches_complex_evaluation_across_sample_blocks(seed):
    """N larger than ``jets.BLOCK`` and not a multiple of it: the blocks must add up."""
    net, X, Y = random_problem(seed, widths=(4, 6, 5, 2), n=2 * jets.BLOCK + 37, radius="agd")
    cache, _, d = setup(net, X, Y)
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 6)
    ref = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, 6)
    np.testing.assert_allclose(J, ref, rtol=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_high_orders_work_too(seed):
    net, X, Y = random_problem(seed)
    cache, _, d = setup(net, X, Y)
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 12)
    ref = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, 12)
    np.testing.assert_allclose(J, ref, rtol=1e-11)


@settings(max_examples=30)
@given(problems(max_layers=4, max_width=8, max_n=30))
def test_first_coefficient_is_minus_beta(problem):
    net, X, Y = problem
    _, J0, d = setup(net, X, Y)
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 2)
    assert abs(J[0] - J0) <= 1e-14 * J0
    assert abs(J[1] + d.beta) <= 1e-12 * max(d.beta, 1e-300) or (d.beta == 0 and J[1] == 0)


# Problems whose ReLU pattern does not change for 0 <= t <= 0.12, with both hidden layers partly active
# (found by scanning seeds; asserted below).
SMOOTH = [(22, 5), (37, 8), (56, 5)]


@pytest.mark.parametrize("seed,n", SMOOTH)
def test_taylor_remainder_has_slope_order_plus_one(seed, n):
    """``|φ(t) - sum_{k<=r} J_k t^k| = |J_{r+1} t^{r+1} + J_{r+2} t^{r+2}| + O(t^{r+3})``, hence log-log slope
    r+1 where ``J_{r+1}`` dominates, for r = 1..6.

    Window per order: ``t in [a, 4a]``, ``a = 10^(-12/(r+1))``, where the remainder is ~1e-12 (well above
    the 1e-16 rounding of φ) and no unit changes sign (checked), so the jet is exact there.
    """
    net, X, Y = random_problem(seed, widths=(4, 6, 5, 2), n=n)
    cache, _, d = setup(net, X, Y)
    assert d.beta > 0 and all(0 < np.mean(Z > 0) < 1 for Z in cache.Z[:-1])
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 8)
    for r in range(1, 7):
        a = 10 ** (-12 / (r + 1))
        t = np.geomspace(a, 4 * a, 8)
        for tk in t:
            Z_t = _forward_cache([sn.sphere.curve(W, D, mu, tk) for W, D, mu in
                                  zip(net.weights, d.V, net.radii)], X).Z
            assert all(np.array_equal(Z_t[i] > 0, cache.Z[i] > 0) for i in range(len(Z_t) - 1))
        remainder = np.array([abs(phi_true(net, d.V, X, Y, tk) - np.polyval(J[r::-1], tk)) for tk in t])
        # The next two terms must account for the remainder (up to O(t^{r+3}) and the ~4e-16 rounding of
        # phi): a test of J_{r+1} and J_{r+2} against phi that holds even where J_{r+2} t rivals J_{r+1}
        # (seed 37: J_6 = -3.3e-3, J_7 = 3.3e-2), which bends a plain log-log slope.
        next_terms = np.abs(J[r + 1] * t ** (r + 1) + J[r + 2] * t ** (r + 2))
        assert np.all(np.abs(remainder - next_terms) <= 0.02 * remainder + 1e-15), (r, remainder, next_terms)
        if abs(J[r + 2]) * t[-1] <= 0.1 * abs(J[r + 1]):       # J_{r+1} dominates: slope r + 1
            slope = np.polyfit(np.log(t), np.log(remainder), 1)[0]
            assert abs(slope - (r + 1)) <= 0.3, (r, slope)


@pytest.mark.parametrize("seed", [3, 4, 5, 6])
def test_first_two_coefficients_match_central_differences(seed):
    net, X, Y = random_problem(seed)
    cache, J0, d = setup(net, X, Y)
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 2)
    h = 1e-4
    # keep the check where the pattern is fixed: no pre-activation changes sign within ±2h
    for s in (-2 * h, 2 * h):
        Z_s = _forward_cache([sn.sphere.curve(W, D, mu, s) for W, D, mu in zip(net.weights, d.V, net.radii)], X).Z
        assert all(np.array_equal(Z_s[i] > 0, cache.Z[i] > 0) for i in range(len(Z_s) - 1))
    plus, minus = phi_true(net, d.V, X, Y, h), phi_true(net, d.V, X, Y, -h)
    d1 = (plus - minus) / (2 * h)
    d2 = (plus - 2 * J0 + minus) / h**2
    assert abs(J[1] - d1) <= 1e-7 * abs(J[1])
    assert abs(2 * J[2] - d2) <= 1e-4 * abs(2 * J[2])


def test_zero_direction_layers_stay_put():
    """A layer with ``V_i = 0`` stays where it is (``Γ_i(t) = W_i``): with every ``V_i = 0`` the loss is
    constant along the curve, and with one zero layer the jet equals that of the network whose zero layer
    is frozen — computed here by complex evaluation with that layer held fixed."""
    net, X, Y = random_problem(7, widths=(3, 5, 4, 4, 2))
    V = [np.zeros_like(W) for W in net.weights]
    J = jets.loss_jet(net.weights, V, net.radii, X, Y, 6)
    assert J[0] == pytest.approx(sn.loss(net.weights, X, Y), rel=1e-14)
    np.testing.assert_array_equal(J[1:], 0.0)
    cache, _, d = setup(net, X, Y)
    V = list(d.V)
    V[1] = np.zeros_like(V[1])
    from spherenet.verify import complex_loss_coefficients
    expected = complex_loss_coefficients(net.weights, V, net.radii, X, Y, 6)
    np.testing.assert_allclose(jets.loss_jet(net.weights, V, net.radii, X, Y, 6), expected, rtol=1e-9,
                               atol=1e-12 * abs(expected).max())


@pytest.mark.parametrize("frozen_layer", [None, 2])
def test_adjoint_jet_equals_complex_evaluation_across_blocks(frozen_layer):
    """Algorithm 1's ``J_0, J_1, J_2`` from the backward pass's adjoints, on more rows than one block of
    ``network.ROW_BLOCK`` (and a layer with ``V_i = 0``), against the frozen-pattern complex evaluation."""
    from spherenet.network import Workspace
    from spherenet.verify import complex_loss_coefficients
    net, X, Y = random_problem(12, widths=(5, 7, 6, 4, 2), n=2 * ROW_BLOCK + 321)
    cache, _, d = setup(net, X, Y)
    V = list(d.V)
    if frozen_layer is not None:
        V[frozen_layer] = np.zeros_like(V[frozen_layer])
    alpha = sum(a for a, D in zip(d.inner_wg, V) if D.any())
    J = jets.loss_jet2_adjoint(cache, net.weights, V, net.radii, X, alpha, Workspace())
    expected = complex_loss_coefficients(net.weights, V, net.radii, X, Y, 2)
    np.testing.assert_allclose(J, expected, rtol=1e-10, atol=1e-13 * abs(expected).max())


def test_order_zero_reuses_the_forward_cache():
    """Order 0 (and every J_k's E_0) comes from the cache given: a doctored cache output shows through."""
    net, X, Y = random_problem(8)
    cache, J0, d = setup(net, X, Y)
    assert math.isclose(jets.loss_jet_from(cache, net.weights, d.V, net.radii, X, Y, 0)[0], J0, rel_tol=1e-14)
    cache.Z[-1] = cache.Z[-1] + 1.0
    doctored = _loss_from_output(cache.F, Y)
    assert not math.isclose(doctored, J0, rel_tol=1e-3)
    assert math.isclose(jets.loss_jet_from(cache, net.weights, d.V, net.radii, X, Y, 3)[0], doctored,
                        rel_tol=1e-14)


def test_tie_rule_is_the_backward_passs():
    """A unit with ``Z_0 == 0`` exactly is inactive in the jet, as in the backward pass: then J_1 = -beta.

    The first hidden unit of sample 0 sits exactly on the tie (X row orthogonal to W_1's row); the
    direction moves it, so counting it active would add its first-order change to J_1.
    """
    W1 = sn.sphere.project(np.array([[0.0, 1.0], [1.0, 1.0], [1.0, -0.5]]), 1.0)
    W2 = sn.sphere.project(np.array([[1.0, -2.0, 0.5], [0.3, 1.0, 1.0]]), 1.0)
    net = sn.NormalisedMLP.from_weights([W1, W2])
    X = np.array([[1.0, 0.0], [0.6, 0.8], [-0.8, 0.6]])
    Y = np.array([[1.0, -1.0], [0.5, 2.0], [-1.0, 0.0]])
    cache, _, d = setup(net, X, Y)
    assert cache.Z[0][0, 0] == 0.0
    assert abs(d.V[0][0, 0]) > 0.05                       # the direction does move the tied unit
    J = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 3)
    assert abs(J[1] + d.beta) <= 1e-13 * d.beta
    ref = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, 3)
    np.testing.assert_allclose(J, ref, rtol=1e-10)


def test_relu_jet_masks_every_coefficient_by_the_zeroth():
    Z0 = np.array([[1.0, 0.0, -2.0], [0.5, -0.1, 3.0]])
    Zs = np.arange(12.0).reshape(4, 3) + 1                # two stacked coefficients, no zeros of their own
    H = jets.relu_jet(Z0, Zs, np.empty_like(Zs))
    np.testing.assert_array_equal(H, np.where(np.tile(Z0 > 0, (2, 1)), Zs, 0.0))
    assert H[0, 1] == 0 and H[2, 1] == 0                   # the tie Z_0 == 0 is inactive


def test_network_jet_first_coefficient_is_the_output_and_rest_match_fft():
    net, X, Y = random_problem(9, n=11)
    cache, _, d = setup(net, X, Y)
    F = jets.network_jet(net.weights, d.V, net.radii, X, 4)
    assert F.shape == (5, 11, 3)
    np.testing.assert_array_equal(F[0], cache.F)
    # output coefficient k of one entry, by FFT of the frozen-pattern forward pass with Y = 0
    t = np.exp(2j * np.pi * np.arange(32) / 32)
    Z0 = cache.Z

    def out(tm):
        H = X.astype(complex)
        for i, (W, D, mu) in enumerate(zip(net.weights, d.V, net.radii)):
            Z = H @ (W * np.cos(tm) + mu * D * np.sin(tm)).T
            H = np.where(Z0[i] > 0, Z, 0)
        return Z

    ref = np.fft.fft(np.array([out(tm) for tm in t]), axis=0)[:5] / 32
    np.testing.assert_allclose(F, ref.real, rtol=1e-9, atol=1e-13)


def test_float32_jet_computes_in_float32_and_agrees_with_float64():
    net, X, Y = random_problem(10, n=50)
    _, _, d = setup(net, X, Y)
    W32 = [W.astype(np.float32) for W in net.weights]
    V32 = [V.astype(np.float32) for V in d.V]
    J64 = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 4)
    J32 = jets.loss_jet(W32, V32, net.radii, X.astype(np.float32), Y.astype(np.float32), 4)
    assert J32.dtype == np.float64
    assert jets.network_jet(W32, V32, net.radii, X, 2).dtype == np.float32
    np.testing.assert_allclose(J32, J64, rtol=2e-5)


# --- validation ----------------------------------------------------------------------------------------

def test_bad_input_is_refused_naming_the_argument():
    net, X, Y = random_problem(11)
    W, R = net.weights, net.radii
    V = [np.zeros_like(w) for w in W]
    cases = [
        (dict(order=-1), ValueError, "order"),
        (dict(order=1.5), TypeError, "order"),
        (dict(directions=V[:2]), ValueError, "directions"),
        (dict(directions=[V[0], V[1].T, V[2]]), ValueError, r"directions\[1\]"),
        (dict(radii=R[:2]), ValueError, "radii"),
        (dict(radii=[1.0, -1.0, 1.0]), ValueError, r"radii\[1\]"),
        (dict(X=X[:, :3]), ValueError, "X"),
        (dict(Y=np.where(np.arange(Y.size).reshape(Y.shape) == 4, np.nan, Y)), ValueError, "Y"),
        (dict(Y=Y[:5]), ValueError, "rows"),
        (dict(weights=[W[0], W[2]]), ValueError, r"weights\[1\]"),
    ]
    for change, error, match in cases:
        args = dict(weights=W, directions=V, radii=R, X=X, Y=Y, order=2) | change
        with pytest.raises(error, match=match):
            jets.loss_jet(**args)


@pytest.mark.parametrize("layer_1, layer_2", [("curve", "curve"), ("fixed", "curve"), ("curve", "fixed"),
                                              ("geodesic", "geodesic")])
@pytest.mark.parametrize("hidden", [True, False])
def test_first_two_layers_fast_form_equals_the_readable_form(layer_1, layer_2, hidden):
    """Layers 1 and 2 (layer 2's sums folded into ``[M_k N_k]``, each layer's ReLU in its own rule) against
    ``jets.plain_layer_jet``, for the paper's curve, fixed layers and geodesic rates; layer 2 hidden or not."""
    r, n = 6, 40
    rng = np.random.default_rng(3)
    rates = {"curve": 1.0, "fixed": 0.0, "geodesic": 0.7}
    (c1, s1), (c2, s2) = (jets.rate_coefficients(rates[k], r) for k in (layer_1, layer_2))
    X = rng.normal(size=(n, 4))
    W1, V1 = rng.normal(size=(2, 7, 4))
    W2, V2 = rng.normal(size=(2, 5, 7))
    Z1 = X @ W1.T
    Z1[rng.random((n, 7)) < 0.2] = 0.0                    # ties are inactive
    H1 = np.maximum(Z1, 0)
    X0 = np.concatenate([X[None], np.zeros((r, n, 4))])
    X0[0] = X
    # the readable form, with layer 1's Z_0 set to the tied one used by the fast form
    Z1_jet = jets.plain_linear_jet(X0, W1, V1, 1.3, c1, s1)
    Z1_jet[0] = Z1
    expected = jets.plain_layer_jet(jets.plain_relu_jet(Z1_jet), W2, V2, 1.7, c2, s2, hidden=hidden)
    first = jets.LayerCurve(W1, V1, 1.3, c1, s1, hidden=True)
    second = jets.LayerCurve(W2, V2, 1.7, c2, s2, hidden=hidden,
                             folded=jets.second_layer_matrices(W2, V2, 1.7, (c1, s1), (c2, s2)))
    pair = jets.first_layer_jet(X, (Z1, H1), first, np.empty(2 * n * 7), np.empty(n * 7))
    Z2 = H1 @ W2.T
    got = jets.second_layer_jet(pair, (Z2, np.maximum(Z2, 0) if hidden else None), second,
                                np.empty((r + 1) * n * 5))
    want = np.vstack(expected) if hidden else np.vstack(expected[1:])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * abs(want).max())


@pytest.mark.parametrize("r", [1, 2, 6])
@pytest.mark.parametrize("hidden", [True, False])
def test_general_layer_fast_form_equals_the_readable_form(r, hidden):
    """A layer past the second: the products first, then ``kernels.output_cauchy``, then its own ReLU."""
    n, rng = 30, np.random.default_rng(r)
    c, s = jets.curve_coefficients(r)
    Z_below = rng.normal(size=(r + 1, n, 6))
    Z_below[0][rng.random((n, 6)) < 0.2] = 0.0             # ties are inactive
    H = jets.plain_relu_jet(Z_below)
    W, V = rng.normal(size=(2, 4, 6))
    expected = jets.plain_layer_jet(H, W, V, 0.8, c, s, hidden=hidden)
    Z0 = H[0] @ W.T
    got = jets.layer_jet(np.vstack(H), (Z0, np.maximum(Z0, 0) if hidden else None),
                         jets.LayerCurve(W, V, 0.8, c, s, hidden=hidden), np.empty((r + 1) * n * 4),
                         np.empty(2 * r * n * 4))
    want = np.vstack(expected) if hidden else np.vstack(expected[1:])
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-13 * abs(want).max())


@pytest.mark.parametrize("widths", [(4, 3), (4, 6, 2), (4, 6, 5, 2), (3, 5, 4, 6, 2)])
@pytest.mark.parametrize("zero_layer", [None, 0, 1])
def test_loss_and_network_jets_equal_their_readable_forms(widths, zero_layer):
    """``jets.loss_jet``/``network_jet`` (stacked, blocks, folded layer 2) against ``plain_loss_jet`` /
    ``plain_network_jet`` (one coefficient, one layer at a time), a layer that stays included."""
    rng = np.random.default_rng(len(widths))
    net = sn.NormalisedMLP(list(widths), seed=1)
    X, Y = rng.normal(size=(50, widths[0])), rng.normal(size=(50, widths[-1]))
    V = [sphere.project(sphere.project_tangent(W, rng.normal(size=W.shape), 1.0), 1.0) for W in net.weights]
    if zero_layer is not None and zero_layer < len(V):
        V[zero_layer] = np.zeros_like(V[zero_layer])
    F = jets.network_jet(net.weights, V, net.radii, X, 5)
    np.testing.assert_allclose(F, jets.plain_network_jet(net.weights, V, net.radii, X, 5),
                               rtol=1e-11, atol=1e-13 * abs(F).max())
    J = jets.loss_jet(net.weights, V, net.radii, X, Y, 5)
    np.testing.assert_allclose(J, jets.plain_loss_jet(net.weights, V, net.radii, X, Y, 5),
                               rtol=1e-11, atol=1e-14 * abs(J).max())


def test_a_curve_must_pass_through_the_weights():
    net, X, Y = random_problem(2)
    cos, sin = jets.curve_coefficients(3)
    with pytest.raises(ValueError, match="passes through"):
        jets.CurveJet(net.weights, net.weights, net.radii, X, [(cos, sin + 0.1)] * len(net.weights))


@pytest.mark.parametrize("widths", [(4, 3), (4, 6, 2)])
def test_one_and_two_layer_jets_match_complex_evaluation(widths):
    """The shallow cases take their own paths through ``jets.CurveJet``: the first layer alone, or the first
    layer and the collapsed second one without any general layer."""
    net, X, Y = random_problem(11, widths=widths, n=30)
    cache, _, d = setup(net, X, Y)
    from spherenet.verify import complex_loss_coefficients
    expected = complex_loss_coefficients(net.weights, d.V, net.radii, X, Y, 5)
    np.testing.assert_allclose(jets.loss_jet(net.weights, d.V, net.radii, X, Y, 5), expected, rtol=1e-9,
                               atol=1e-12 * abs(expected).max())


@given(problems())
def test_adjoint_jet_equals_the_order_2_jet(problem):
    """``jets.loss_jet2_adjoint`` (Algorithm 1's κ in training) and the order-2 Taylor-mode jet
    (``jets.loss_jet``) are two derivations of the same ``J_0, J_1, J_2``: they agree to a few rounding units
    of the jet's largest coefficient (the claim of benchmarks/README.md), whatever the depth and radii. Each is a
    sum of the ``N d_L`` error products, rounded differently (``J_0`` from ``dZ = E/N`` as ``N/2 <dZ, dZ>``), so
    they may differ by the rounding bound of such a sum, ``(N d_L + 8) eps`` of the largest coefficient."""
    from spherenet.network import Workspace
    net, X, Y = problem
    cache, _, d = setup(net, X, Y)
    adjoint = jets.loss_jet2_adjoint(cache, net.weights, d.V, net.radii, X, d.alpha_moving, Workspace())
    full = jets.loss_jet(net.weights, d.V, net.radii, X, Y, 2)
    bound = (Y.size + 8) * np.finfo(float).eps * np.abs(full).max()
    np.testing.assert_allclose(adjoint, full, rtol=0, atol=bound)


# --- what the mutation run (benchmarks/README.md) found untested --------------------------------------------

def test_jets_keep_the_weights_dtype_in_every_part():
    net, X, Y = random_problem(12, n=9)
    _, _, d = setup(net, X, Y)
    W32 = [W.astype(np.float32) for W in net.weights]
    V32 = [V.astype(np.float32) for V in d.V]
    coefficients = jets.curve_coefficients(3, np.float32) + jets.rate_coefficients(0.5, 3, np.float32)
    assert all(a.dtype == np.float32 for a in coefficients)
    assert all(a.dtype == np.float32 for cs in jets.paper_coefficients(V32, 3, np.float32) for a in cs)
    c = jets.curve_coefficients(3)
    assert jets.second_layer_matrices(W32[1], V32[1], 1.0, c, c).dtype == np.float32
    cj = jets.CurveJet(W32, V32, net.radii, X.astype(np.float32), jets.paper_coefficients(V32, 3, np.float32))
    outs, scratch = cj.buffers(4)
    assert all(a.dtype == np.float32 for a in outs + [scratch])
    # float64 directions, inputs or targets are taken in the weights' dtype: the same numbers as float32 ones
    X32, Y32 = X.astype(np.float32), Y.astype(np.float32)
    J32 = jets.loss_jet(W32, V32, net.radii, X32, Y32, 3)
    np.testing.assert_array_equal(jets.loss_jet(W32, d.V, net.radii, X, Y, 3), J32)
    np.testing.assert_array_equal(jets.network_jet(W32, d.V, net.radii, X, 3),
                                  jets.network_jet(W32, V32, net.radii, X32, 3))
    for a, b, want in ((np.float32, np.float32, np.float32), (np.float64, np.float32, np.float64),
                       (np.float32, np.float64, np.float64)):
        assert jets.cauchy(np.ones(3, a), np.ones(3, b)).dtype == want


def test_readable_forms_default_to_a_hidden_layer_and_honour_rates():
    net, X, Y = random_problem(13)
    _, _, d = setup(net, X, Y)
    c, s = jets.curve_coefficients(3)
    H = np.concatenate([X[None], np.zeros((3,) + X.shape)])
    np.testing.assert_array_equal(jets.plain_layer_jet(H, net.weights[0], d.V[0], 1.0, c, s),
                                  jets.plain_relu_jet(jets.plain_linear_jet(H, net.weights[0], d.V[0], 1.0, c, s)))
    # every layer at rate a: φ_a(t) = φ(a t), so J_k(a) = a^k J_k
    paper = jets.plain_loss_jet(net.weights, d.V, net.radii, X, Y, 4)
    half = jets.plain_loss_jet(net.weights, d.V, net.radii, X, Y, 4, rates=[0.5, 0.5, 0.5])
    np.testing.assert_allclose(half, paper * 0.5 ** np.arange(5), rtol=1e-12, atol=1e-18)
    np.testing.assert_allclose(jets.plain_network_jet(net.weights, d.V, net.radii, X, 2, rates=[0.5] * 3)[2],
                               jets.plain_network_jet(net.weights, d.V, net.radii, X, 2)[2] / 4, rtol=1e-12, atol=1e-18)


def test_order_one_output_jet_and_the_checked_entry_points_messages():
    net, X, Y = random_problem(14)
    _, _, d = setup(net, X, Y)
    W, R = net.weights, net.radii
    F = jets.network_jet(W, d.V, R, X, 1)
    assert F.shape == (2,) + sn.forward(W, X).shape
    np.testing.assert_allclose(F[1], jets.plain_network_jet(W, d.V, R, X, 1)[1], rtol=1e-12, atol=1e-16)
    assert jets.loss_jet(W, d.V, R, X, Y, jets.MAX_ORDER).shape == (31,)
    cases = [(dict(directions=np.stack([np.zeros((2, 2))] * 3)), TypeError,
              "directions must be a list of 2-D arrays, one per layer$"),
             (dict(directions=[d.V[0], "v", d.V[2]]), TypeError, r"directions\[1\]"),
             (dict(X=X[:, :3]), ValueError, "X has 3 columns, expected 5"),
             (dict(Y=Y[:, :2]), ValueError, "Y has 2 columns, expected 3"),
             (dict(order=-1), ValueError, "order must be >= 0"),
             (dict(order=31), ValueError, r"order must be <= 30 \(1/k! is below 1e-32 beyond it\), got 31")]
    for change, error, match in cases:
        args = dict(weights=W, directions=d.V, radii=R, X=X, Y=Y, order=2) | change
        with pytest.raises(error, match="^" + match):
            jets.loss_jet(**args)
    with pytest.raises(ValueError, match="^X has 3 columns, expected 5"):
        jets.network_jet(W, d.V, R, X[:, :3], 2)
    bent = [(c.copy(), s) for c, s in jets.paper_coefficients(d.V, 2, X.dtype)]
    bent[0][0][0] = 0.5
    with pytest.raises(ValueError, match="^every curve passes through the weights at t = 0"):
        jets.CurveJet(W, d.V, R, X, bent)
