"""The normalised MLP: initialisation, forward, the hand-written gradient, the direction data, bad input."""
import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import spherenet as sn
from spherenet import sphere

from .strategies import matrices, problems, seeds, unit_rows


def tie_margin(net, X):
    """Smallest |pre-activation| of any hidden unit: perturbations below it cross no ReLU kink."""
    Z = sn.forward_cache(net.weights, X).Z[:-1]
    return min((np.abs(z).min() for z in Z), default=np.inf)


def safe_step(net, X, U):
    """A finite-difference step that moves no hidden pre-activation across 0 (each layer's change is
    bounded by h ||U_i|| ||H_{i-1}|| plus what reaches it from below; a factor 10 covers the chain)."""
    scale = max(np.linalg.norm(u) for u in U) * max(1.0, np.linalg.norm(X, axis=1).max())
    if scale == 0:                                        # no direction at all: nothing can cross a kink
        return 1e-5
    return min(1e-5, tie_margin(net, X) / (10 * scale * 2 ** len(U)))


@given(problems(), st.data())
def test_gradient_matches_central_differences(problem, data):
    net, X, Y = problem
    U = [data.draw(matrices(W.shape)) for W in net.weights]
    h = safe_step(net, X, U)
    assume(h > 1e-9)
    J, grads = net.loss_and_grad(X, Y)
    jp = sn.loss([W + h * u for W, u in zip(net.weights, U)], X, Y)
    jm = sn.loss([W - h * u for W, u in zip(net.weights, U)], X, Y)
    fd = (jp - jm) / (2 * h)
    exact = sum(np.vdot(g, u) for g, u in zip(grads, U))
    # Central differences err by O(h^2 J''') (relative 1e-6 leaves room for the third derivative of drawn
    # networks at h = 1e-5; a wrong gradient is off by O(1)) plus the rounding of the two losses over h: each
    # loss is a sum of N d_L squares, rounded to within (N d_L + 8) eps of J.
    rounding = 2 * (Y.size + 8) * np.finfo(float).eps * (J + 1) / h
    assert exact == pytest.approx(fd, rel=1e-6, abs=rounding + 1e-12)


@given(problems())
def test_forward_matches_a_plain_loop(problem):
    net, X, _ = problem
    out = []
    for x in X:
        h = x
        for i, W in enumerate(net.weights):
            h = W @ h
            if i < len(net.weights) - 1:
                h = np.array([max(v, 0.0) for v in h])
        out.append(h)
    np.testing.assert_allclose(net.forward(X), np.array(out), rtol=1e-13, atol=1e-15)


@given(problems())
def test_output_only_forward_equals_the_cached_forward(problem):
    # The evaluation pass reuses two buffers in place; it must give the cached pass's output bit for bit,
    # also when called again with the same workspace (its buffers then hold the previous call's layers).
    from spherenet.network import Workspace, _output
    net, X, _ = problem
    ws = Workspace()
    expected = sn.forward_cache(net.weights, X).F
    for _ in range(2):
        np.testing.assert_array_equal(_output(net.weights, X, ws), expected)


@pytest.mark.parametrize("widths", [(5, 3), (5, 6, 3), (5, 7, 6, 3)])
def test_passes_over_several_row_blocks_match_a_plain_reference(widths):
    """More rows than ``network.ROW_BLOCK``: the first layer's gradient and the evaluation pass go block by
    block; against the formulas applied to all rows at once with plain NumPy."""
    from spherenet.network import ROW_BLOCK, Workspace, _output
    rng = np.random.default_rng(4)
    net = sn.NormalisedMLP(list(widths), seed=4)
    X, Y = unit_rows(rng, 2 * ROW_BLOCK + 77, widths[0]), rng.normal(size=(2 * ROW_BLOCK + 77, widths[-1]))
    Hs, H = [X], X
    for i, W in enumerate(net.weights):
        H = H @ W.T if i == len(widths) - 2 else np.maximum(H @ W.T, 0)
        Hs.append(H)
    dZ, expected = (H - Y) / len(X), []
    for i in range(len(net.weights) - 1, -1, -1):
        expected.insert(0, dZ.T @ Hs[i])
        dZ = (dZ @ net.weights[i]) * (Hs[i] > 0)
    J, grads = net.loss_and_grad(X, Y)
    assert J == pytest.approx(np.sum((H - Y) ** 2) / (2 * len(X)), rel=1e-13)
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-11, atol=1e-15 * np.abs(e).max())
    np.testing.assert_allclose(_output(net.weights, X, Workspace()), H, rtol=1e-13, atol=1e-15)


def test_backward_without_kept_adjoints_gives_the_same_bits():
    """Rules that never read the adjoints (``uses_adjoints = False``) get them in block buffers only."""
    from spherenet.network import ROW_BLOCK, Workspace, _backward, _forward_cache
    rng = np.random.default_rng(6)
    net = sn.NormalisedMLP([5, 7, 6, 3], seed=6)
    X, Y = unit_rows(rng, ROW_BLOCK + 9, 5), rng.normal(size=(ROW_BLOCK + 9, 3))
    cache = _forward_cache(net.weights, X)
    J, grads = _backward(net.weights, cache, Y, Workspace())
    assert cache.dZ[0] is None and all(d.shape == z.shape for d, z in zip(cache.dZ[1:], cache.Z[1:]))
    J2, grads2 = _backward(net.weights, cache, Y, Workspace(), keep_adjoints=False)
    assert cache.dZ is None and J2 == J
    for a, b in zip(grads, grads2):
        np.testing.assert_array_equal(a, b)


@given(problems())
def test_inner_w_grad_is_the_same_for_every_layer(problem):
    """f is 1-homogeneous in each W_i, so <W_i, ∇_i J> = <f, f - y>/N for every layer."""
    net, X, Y = problem
    _, grads = net.loss_and_grad(X, Y)
    d = sn.direction(net.weights, grads, net.radii)
    F = net.forward(X)
    expected = np.vdot(F, F - Y) / len(X)
    np.testing.assert_allclose(d.inner_wg, expected, rtol=1e-10, atol=1e-14)
    assert d.alpha == pytest.approx(len(net.weights) * expected, rel=1e-10, abs=1e-13)


@given(problems())
def test_direction_is_unit_tangent_and_beta_is_minus_the_slope(problem):
    net, X, Y = problem
    J, grads = net.loss_and_grad(X, Y)
    d = sn.direction(net.weights, grads, net.radii)
    for W, V, mu, n in zip(net.weights, d.V, net.radii, d.rgrad_norms):
        if n:
            assert np.linalg.norm(V) == pytest.approx(1.0, rel=1e-14)
            assert sphere.check_tangent(W, V, mu, rtol=1e-13) is None
    assert d.beta == pytest.approx(sum(mu * n for mu, n in zip(net.radii, d.rgrad_norms)), rel=1e-14)
    h = min(1e-6, safe_step(net, X, [mu * V for mu, V in zip(net.radii, d.V)]))
    assume(h > 1e-9 and d.beta > 1e-8)
    phi = lambda t: sn.loss([sphere.curve(W, V, mu, t) for W, V, mu in zip(net.weights, d.V, net.radii)], X, Y)
    slope = (phi(h) - phi(-h)) / (2 * h)
    assert slope == pytest.approx(-d.beta, rel=1e-6, abs=1e-10 * (J + 1) / h * 1e-6)


def test_zero_gradient_layer_gets_zero_direction():
    net = sn.NormalisedMLP([2, 3, 1], seed=0)
    grads = [np.zeros((3, 2)), 2.0 * net.weights[1]]       # second: parallel to W, so grad_2 = 0
    d = sn.direction(net.weights, grads, net.radii)
    assert d.zero_layers == [0, 1]
    assert d.beta == 0.0
    assert all(not V.any() for V in d.V)


@given(st.lists(st.integers(1, 30), min_size=2, max_size=6), seeds,
       st.sampled_from(["unit", "agd", "fan", 0.5, 3.0]))
def test_initialisation_is_on_the_spheres_and_deterministic(widths, seed, radius):
    net = sn.NormalisedMLP(widths, radius=radius, seed=seed)
    again = sn.NormalisedMLP(widths, radius=radius, seed=seed)
    assert len(net.radii) == len(widths) - 1
    for i, (W, W2, mu) in enumerate(zip(net.weights, again.weights, net.radii)):
        assert W.shape == (widths[i + 1], widths[i])
        assert np.linalg.norm(W) == pytest.approx(mu, rel=1e-14)
        np.testing.assert_array_equal(W, W2)
    assert net.spectral_norm_product() <= net.lipschitz_bound() * (1 + 1e-12)


def test_radius_rules():
    w = [4, 16, 2]
    np.testing.assert_allclose(sn.radii_for(w, "unit"), [1, 1])
    np.testing.assert_allclose(sn.radii_for(w, "agd"), [2, np.sqrt(1 / 8)])
    np.testing.assert_allclose(sn.radii_for(w, "fan"), [8 / 3, np.sqrt(32) / 3])
    np.testing.assert_allclose(sn.radii_for(w, [1, 2]), [1, 2])


def test_glorot_bound_before_projection():
    """With mu equal to the pre-projection norm, the entries keep the U(-a, a) law: check the range."""
    rng = np.random.default_rng(0)
    W = sn.network.glorot_sphere_init([200, 300], [1.0], rng)[0]
    raw = np.random.default_rng(0).uniform(-np.sqrt(6 / 500), np.sqrt(6 / 500), size=(300, 200))
    np.testing.assert_allclose(W, raw / np.linalg.norm(raw), rtol=1e-14)


def test_float32_network_runs_in_float32():
    net = sn.NormalisedMLP([3, 4, 2], seed=1, dtype=np.float32)
    X = unit_rows(np.random.default_rng(0), 5, 3).astype(np.float32)
    assert net.forward(X).dtype == np.float32
    J, grads = net.loss_and_grad(X, np.zeros((5, 2), np.float32))
    assert grads[0].dtype == np.float32 and np.isfinite(J)


def test_from_weights_round_trip_and_refusal():
    net = sn.NormalisedMLP([3, 5, 2], radius="agd", seed=3)
    again = sn.NormalisedMLP.from_weights(net.weights, net.radii)
    np.testing.assert_array_equal(again.weights[1], net.weights[1])
    assert again.widths == net.widths
    with pytest.raises(ValueError, match=r"weights\[0\] is not on its sphere"):
        sn.NormalisedMLP.from_weights([2 * net.weights[0], net.weights[1]], net.radii)


@pytest.mark.parametrize("widths, error, match", [
    ([3], ValueError, "at least 2"),
    ([3, 0, 2], ValueError, r"widths\[1\] must be >= 1"),
    ([3, -1], ValueError, r"widths\[1\]"),
    ([3, 2.5], TypeError, r"widths\[1\] must be an integer"),
    ("3-2", TypeError, "widths"),
])
def test_bad_widths(widths, error, match):
    with pytest.raises(error, match=match):
        sn.NormalisedMLP(widths)


@pytest.mark.parametrize("radius, error, match", [
    (0.0, ValueError, "radius must be > 0"),
    (-1.0, ValueError, "radius must be > 0"),
    (np.inf, ValueError, "radius must be finite"),
    (np.nan, ValueError, "radius must be finite"),
    ([1.0], ValueError, "radius has 1 entries"),
    ([1.0, 0.0], ValueError, r"radius\[1\] must be > 0"),
    ("huge", ValueError, "unknown radius rule"),
])
def test_bad_radius(radius, error, match):
    with pytest.raises(error, match=match):
        sn.NormalisedMLP([2, 3, 1], radius=radius)


def test_bad_data_is_refused_with_the_argument_named():
    net = sn.NormalisedMLP([3, 4, 2], seed=0)
    X, Y = np.ones((5, 3)), np.zeros((5, 2))
    cases = [
        (np.ones((5, 4)), Y, ValueError, "X has 4 columns, expected 3"),
        (X, np.zeros((5, 3)), ValueError, "Y has 3 columns, expected 2"),
        (X, np.zeros((4, 2)), ValueError, "X has 5 rows but Y has 4"),
        (np.ones(3), Y, ValueError, "X must be 2-D"),
        (np.ones((0, 3)), np.zeros((0, 2)), ValueError, "X is empty"),
        (np.where(np.eye(5, 3) > 0, np.nan, 1.0), Y, ValueError, r"X contains a non-finite value \(nan\) at index \(0, 0\)"),
        (X, np.full((5, 2), np.inf), ValueError, "Y contains a non-finite value"),
        (X.astype(str), Y, TypeError, "X must hold real numbers"),
        (X + 0j, Y, TypeError, "X must be real"),
        (None, Y, TypeError, "X must be a 2-D array"),
    ]
    for Xb, Yb, error, match in cases:
        with pytest.raises(error, match=match):
            net.loss_and_grad(Xb, Yb)


def test_bad_weights_are_refused():
    X = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"weights\[1\] contains a non-finite"):
        sn.forward([np.ones((4, 3)), np.full((2, 4), np.nan)], X)
    with pytest.raises(ValueError, match=r"weights\[1\] has shape \(2, 5\)"):
        sn.forward([np.ones((4, 3)), np.ones((2, 5))], X)
    with pytest.raises(TypeError, match="non-empty list"):
        sn.forward([], X)
    with pytest.raises(ValueError, match=r"grads\[0\] has shape"):
        sn.direction([np.ones((4, 3))], [np.ones((3, 4))], [1.0])


@given(problems())
def test_workspace_caches_sharing_z_and_h_give_the_same_bits(problem):
    # The training loop's caches keep a hidden layer's Z and H in one array (ReLU in place); the backward
    # pass and the jets read a hidden Z only through its mask, so every number must be unchanged.
    from spherenet import jets
    from spherenet.network import Workspace, _backward, _direction, _forward_cache
    net, X, Y = problem
    W, ws = net.weights, Workspace()
    shared, full = _forward_cache(W, X, ws.cache("a", W, X)), _forward_cache(W, X)
    assert all(z is h for z, h in zip(shared.Z[:-1], shared.H[1:]))
    J_s, g_s = _backward(W, shared, Y, ws)
    J_f, g_f = _backward(W, full, Y)
    assert J_s == J_f and all(np.array_equal(a, b) for a, b in zip(g_s, g_f))
    d = _direction(W, g_f, net.radii)
    for order in (2, 4):
        np.testing.assert_array_equal(jets.loss_jet_from(shared, W, d.V, net.radii, X, Y, order),
                                      jets.loss_jet_from(full, W, d.V, net.radii, X, Y, order))
    np.testing.assert_array_equal(
        jets.loss_jet2_adjoint(shared, W, d.V, net.radii, X, d.alpha_moving, ws),
        jets.loss_jet2_adjoint(full, W, d.V, net.radii, X, d.alpha_moving, Workspace()))


# --- what the mutation run (benchmarks/README.md) found untested --------------------------------------------

def test_float32_weights_keep_float32_whatever_the_inputs_dtype():
    from spherenet.network import Workspace, _output
    net = sn.NormalisedMLP([3, 6, 5, 2], seed=2, dtype=np.float32)
    X = unit_rows(np.random.default_rng(2), 7, 3)                       # float64 inputs
    F = net.forward(X)
    assert F.dtype == sn.forward_cache(net.weights, X).F.dtype == np.float32
    J, grads = net.loss_and_grad(X, np.zeros((7, 2)))
    assert all(g.dtype == np.float32 for g in grads)
    assert all(V.dtype == np.float32 for V in sn.direction(net.weights, grads, net.radii).V)
    cache = sn.forward_cache(net.weights, X)
    assert all(a.dtype == np.float32 for a in cache.H + cache.Z) and cache.dZ is None
    X32 = X.astype(np.float32)
    out = _output(net.weights, X32, Workspace())                         # the evaluation pass: same bits
    assert out.dtype == np.float32 and np.array_equal(out, sn.forward_cache(net.weights, X32).F)


def test_forward_and_loss_name_the_bad_argument_and_loss_is_the_mean_squared_error():
    net = sn.NormalisedMLP([3, 4, 2], seed=0)
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(5, 3)), rng.normal(size=(5, 2))
    for call in (sn.forward, sn.forward_cache):
        with pytest.raises(ValueError, match=r"^X has 4 columns, expected 3"):
            call(net.weights, np.ones((5, 4)))
    with pytest.raises(TypeError, match=r"^Y \(the targets\) is required, got None$"):
        sn.loss(net.weights, X, None)
    H = np.maximum(X @ net.weights[0].T, 0) @ net.weights[1].T
    assert net.loss(X, Y) == pytest.approx(np.sum((H - Y) ** 2) / 10, rel=1e-14)


def test_direction_names_bad_gradients_and_reads_rounding_in_the_gradients_dtype():
    W = sphere.project(np.random.default_rng(1).normal(size=(3, 4)), 1.0)
    with pytest.raises(TypeError, match=r"^grads must be a list of 2-D arrays, one per layer$"):
        sn.direction([W], np.ones((1, 3, 4)), [1.0])
    with pytest.raises(ValueError, match=r"^weights and grads must have one entry per layer: 1, 2$"):
        sn.direction([W], [W, W], [1.0])
    with pytest.raises(ValueError, match=r"^grads\[0\] must be 2-D"):
        sn.direction([W], [np.ones(12)], [1.0])
    ints = sn.direction([W], [np.arange(12).reshape(3, 4)], [1.0])      # integers are taken as float64
    assert ints.rgrad_norms[0] == pytest.approx(sphere.fro(sphere.rgrad(W, np.arange(12.0).reshape(3, 4), 1.0)))
    # a radial float32 gradient: its tangent part is float32 rounding (~1e-8 relative), a zero layer in
    # float32, though far above float64's threshold
    W32 = W.astype(np.float32)
    radial = (3 * W32).astype(np.float32)
    assert sn.direction([W32], [radial], [1.0]).zero_layers == [0]
    assert sn.direction([W32.astype(np.float64)], [radial.astype(np.float64)], [1.0]).zero_layers == []


def test_norm_drift_from_weights_tolerances_and_repr():
    net = sn.NormalisedMLP([3, 4, 2], radius=[2.0, 1.2345678], seed=1)
    assert repr(net) == "NormalisedMLP(widths=[3, 4, 2], radii=[2.0, 1.234568], dtype=float64)"
    net.weights[0] = net.weights[0] * (1 + 1e-6)
    assert net.norm_drift() == pytest.approx(1e-6, rel=1e-6)             # relative to mu = 2
    W32 = sphere.project(np.random.default_rng(3).normal(size=(2, 3)), 1.0).astype(np.float32)
    for drift, ok in ((3e-7, True), (1e-3, False)):                       # float32 default rtol: 1e-6
        W = (W32 * np.float32(1 + drift)).astype(np.float32)
        if ok:
            assert sn.NormalisedMLP.from_weights([W], [1.0]).dtype == np.float32
        else:
            with pytest.raises(ValueError, match=r"^weights\[0\] is not on its sphere"):
                sn.NormalisedMLP.from_weights([W], [1.0])
    with pytest.raises(ValueError, match=r"^weights\[0\] is not on its sphere"):    # float64: 1e-10
        sn.NormalisedMLP.from_weights([W32.astype(np.float64) * (1 + 1e-8)], [sphere.fro(W32.astype(np.float64))])


def test_hidden_activation_bound_of_no_rows_is_zero():
    from spherenet.network import hidden_activation_bound
    assert hidden_activation_bound([2.0, 3.0, 1.0], np.empty((0, 2))) == 0.0
    assert hidden_activation_bound([2.0], np.ones((3, 2))) == 0.0


def test_workspace_reuses_an_array_per_name_shape_and_dtype():
    from spherenet.network import Workspace, _backward, _forward_cache
    ws = Workspace()
    a = ws.array("a", (2, 3), np.float64)
    assert ws.array("a", (2, 3), np.float64) is a and ws.array("b", (2, 3), np.float64) is not a
    assert ws.array("a", (3, 2), np.float64) is not a and ws.array("a", (3, 2), np.float32).dtype == np.float32
    s = ws.scratch("s", (3, 4), np.float64)
    assert np.shares_memory(ws.scratch("s", (4, 3), np.float64), s)            # same size: same buffer
    assert np.shares_memory(ws.scratch("s", (2, 2), np.float64), s)            # smaller: a view of it
    assert not np.shares_memory(ws.scratch("t", (2, 2), np.float64), s)
    assert ws.scratch("s", (2, 2), np.float32).dtype == np.float32
    big = ws.scratch("s", (5, 5), np.float64)
    assert big.shape == (5, 5) and not np.shares_memory(big, s)
    ws.reserve(("r",), 10, 3, np.float32, block=4)                              # rows per buffer: min(10, 4)
    assert ws._arrays["r0"].size == 12 and ws._arrays["r0"].dtype == np.float32
    ws.reserve(("q",), 10, 3, np.float32)
    assert ws._arrays["q0"].size == 30
    with sn.rows.threads(2):                                                    # one buffer per part
        n = 2 * sn.rows.MIN_ROWS + 2
        ws.reserve(("p",), n, 1, np.float64)
    assert ws._arrays["p0"].size == ws._arrays["p1"].size == n // 2
    # a forward pass into buffers that held a backward pass's adjoints drops them (they are stale)
    net = sn.NormalisedMLP([3, 4, 2], seed=0)
    X, Y = np.ones((4, 3)), np.zeros((4, 2))
    cache = _forward_cache(net.weights, X)
    _backward(net.weights, cache, Y)
    assert cache.dZ is not None and _forward_cache(net.weights, X, out=cache).dZ is None


def test_construction_defaults_and_messages():
    from spherenet.network import radii_for
    np.testing.assert_array_equal(radii_for([3, 4, 2]), [1.0, 1.0])
    with pytest.raises(TypeError, match="^dtype must be float32 or float64, got"):
        sn.NormalisedMLP([2, 1], dtype=np.int64)
    with pytest.raises(TypeError, match="^dtype must be float32 or float64, got"):
        sn.NormalisedMLP([2, 1], dtype="no such dtype")
    with pytest.raises(TypeError, match="^seed"):
        sn.NormalisedMLP([2, 1], seed="x")
    with pytest.raises(ValueError, match=r"^radius 1e\+39 of layer 0 cannot be represented in float32"):
        sn.NormalisedMLP([2, 3], radius=1e39, dtype=np.float32)                # overflow: no RuntimeWarning
    with pytest.raises(ValueError, match=r"^radius .* of layer 0 cannot be represented in float32"):
        sn.NormalisedMLP([2, 3], radius=1e-43, dtype=np.float32)                # subnormal: 4.5e-4 off its sphere
    with pytest.raises(TypeError, match="^widths must be a sequence of positive integers, got 5$"):
        sn.NormalisedMLP(5)
    widths = sn.NormalisedMLP(np.array([3, 4, 2]), seed=0).widths
    assert widths == (3, 4, 2) and all(type(w) is int for w in widths)
