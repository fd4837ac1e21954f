"""Every Numba kernel equals its NumPy reference, on random shapes and on the edge cases (1x1, empty);
the jet kernels also in float32; and NaN, ±Inf and -0.0 come out of each kernel where and as they come out
of its reference.

CI runs this file a second time with NUMBA_DISABLE_JIT=1, so the loop bodies are also checked as plain
Python.
"""
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from spherenet import jets, kernels, sphere

from .strategies import entries, offset

sizes = st.integers(0, 12)
SPECIALS = np.array([np.nan, np.inf, -np.inf, -0.0])
special_entries = st.one_of(entries, st.sampled_from(SPECIALS.tolist()))


def _pair(name):
    return kernels.KERNELS[name]


def _rand(data, *shape, dtype=np.float64):
    """An array Hypothesis draws entry by entry (a failure shrinks to a small one): entries in [-1, 1], with
    many exact zeros of both signs (they exercise the ReLU tie rule)."""
    return data.draw(hnp.arrays(np.float64, shape, elements=entries, fill=entries)).astype(dtype)


def test_every_kernel_is_listed_with_a_reference():
    assert set(kernels.KERNELS) >= {"matmul_nt", "relu", "relu_mask", "output_cauchy", "loss_cauchy", "lambda_max",
                                    "tangent_direction", "sphere_adam", "spectral_pullback"}
    for name, (ref, fast) in kernels.KERNELS.items():
        assert ref.__name__.endswith("_reference"), name
        assert getattr(kernels, name) in (ref, fast)


@given(sizes, sizes, st.integers(1, 12), st.data())
def test_matmul_nt(n, m, k, data):
    A, B = _rand(data, n, k), _rand(data, m, k)
    ref, fast = _pair("matmul_nt")
    expected = A @ B.T
    for fn in (ref, fast):
        np.testing.assert_allclose(fn(A, B, np.empty((n, m))), expected, rtol=1e-12, atol=1e-14)


@given(sizes, sizes, st.data())
def test_relu(n, m, data):
    Z = _rand(data, n, m)
    ref, fast = _pair("relu")
    expected = np.where(Z > 0, Z, 0.0)
    for fn in (ref, fast):
        out = fn(Z, np.empty_like(Z))
        np.testing.assert_array_equal(out, expected)
        assert not np.signbit(out).any()
    in_place = Z.copy()                           # two views of one array, as the training loop passes them
    fast(in_place[:], in_place[:])
    np.testing.assert_array_equal(in_place, expected)


@given(sizes, sizes, st.integers(1, 4), st.data())
def test_relu_mask_on_stacked_blocks(n, m, blocks, data):
    Z, G = _rand(data, n, m), _rand(data, blocks * n, m)
    ref, fast = _pair("relu_mask")
    expected = np.vstack([g * (Z > 0) for g in np.split(G, blocks)])
    for fn in (ref, fast):
        np.testing.assert_array_equal(fn(G, Z, np.empty_like(G)), expected)
    in_place = G.copy()
    fast(in_place, Z, in_place)
    np.testing.assert_array_equal(in_place, expected)
    views = G.copy()                              # two views of one array (the backward pass's blocks)
    fast(views[:], Z, views[:])
    np.testing.assert_array_equal(views, expected)


def test_relu_mask_tie_rule_is_inactive_at_zero():
    Z = np.array([[0.0, -0.0, 1e-300, -1e-300]])
    for fn in kernels.KERNELS["relu_mask"]:
        np.testing.assert_array_equal(fn(np.ones((1, 4)), Z, np.empty((1, 4))), [[0, 0, 1, 0]])


@given(sizes, sizes, st.floats(1e-3, 1e3), st.floats(-10, 10), st.data())
def test_curve_update_alias_moves_in_place_along_the_curve(n, m, mu, t, data):
    W, V = _rand(data, n, m), _rand(data, n, m)
    expected = W * np.cos(t) + mu * V * np.sin(t)
    W2 = W.copy()
    assert kernels.curve_update(W2, V, mu, t) is W2
    np.testing.assert_allclose(W2, expected, rtol=1e-12, atol=1e-12 * mu)


def test_float32_kernels_keep_float32():
    rng = np.random.default_rng(0)
    Z = rng.normal(size=(3, 4)).astype(np.float32)
    for name in ("relu",):
        for fn in kernels.KERNELS[name]:
            assert fn(Z, np.empty_like(Z)).dtype == np.float32


@pytest.mark.parametrize("name", ["relu", "relu_mask"])
def test_one_by_one(name):
    ref, fast = kernels.KERNELS[name]
    args = {"relu": lambda: (np.array([[-2.0]]), np.empty((1, 1))),
            "relu_mask": lambda: (np.array([[3.0]]), np.array([[0.5]]), np.empty((1, 1)))}[name]
    np.testing.assert_allclose(fast(*args()), ref(*args()), rtol=1e-15)


# --- the jet kernels ---------------------------------------------------------------------------------

@settings(max_examples=30)
@given(st.data(), st.integers(1, 6), st.integers(1, 40), st.integers(1, 9), st.sampled_from([np.float64, np.float32]))
def test_output_cauchy_numba_matches_reference(data, r, n, d, dtype):
    P0 = _rand(data, n, d, dtype=dtype)
    Ps, Qs = _rand(data, 2, r * n, d, dtype=dtype)
    cos, sin = jets.curve_coefficients(r, dtype)
    ref, fast = kernels.KERNELS["output_cauchy"]
    a = ref(P0, Ps, Qs, cos, sin, np.full((r * n, d), np.nan, dtype))
    b = fast(P0, Ps, Qs, cos, sin, np.full((r * n, d), np.nan, dtype))
    np.testing.assert_allclose(b, a, rtol=1e-13 if dtype == np.float64 else 1e-5,
                               atol=(1e-14 if dtype == np.float64 else 1e-6) * np.abs(a).max())


@settings(max_examples=30)
@given(st.data(), st.integers(0, 6), st.integers(1, 40), st.integers(1, 4), st.sampled_from([np.float64, np.float32]))
def test_loss_cauchy_numba_matches_reference_and_accumulates(data, r, n, m, dtype):
    E0, Es = _rand(data, n, m, dtype=dtype), _rand(data, r * n, m, dtype=dtype)
    start = _rand(data, r + 1)
    ref, fast = kernels.KERNELS["loss_cauchy"]
    a, b = ref(E0, Es, start.copy()), fast(E0, Es, start.copy())
    np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-12 * np.abs(a).max())
    E = np.concatenate([E0, Es]).astype(np.float64).reshape(r + 1, -1)
    # a[0] = start[0] + <E_0, E_0>: the subtraction cancels up to |start[0]| eps.
    assert math.isclose(a[0] - start[0], float(np.vdot(E[0], E[0])), rel_tol=1e-12,
                        abs_tol=4 * np.finfo(float).eps * abs(a[0]))


# --- NaN, ±Inf and -0.0: each kernel propagates them as its reference does ----------------------------------

def _special(data, *shape, dtype=np.float64):
    """As :func:`_rand`, with NaN, +Inf, -Inf and -0.0 among the entries."""
    return data.draw(hnp.arrays(np.float64, shape, elements=special_entries, fill=special_entries)).astype(dtype)


def _assert_same_specials(got, want, exact=False):
    """NaN, +Inf, -Inf at the same places; the finite rest equal (``exact``: bit for bit, signs of zeros
    included) or to rounding."""
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(want), err_msg=kind.__name__)
    finite = np.isfinite(want)
    if exact:
        np.testing.assert_array_equal(got[finite], want[finite])
        np.testing.assert_array_equal(np.signbit(got[finite]), np.signbit(want[finite]))
    else:
        np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)


def test_specials_the_elementwise_rules():
    """The rules themselves, on one row: max(z, 0) keeps NaN and gives +0 for -0; the mask multiplies."""
    Z = np.array([[np.nan, np.inf, -np.inf, -0.0, 0.0, -1.0, 2.0]])
    G = np.array([[1.0, 1.0, 1.0, -1.0, np.nan, np.inf, np.nan]])
    with np.errstate(invalid="ignore"):
        for fn in kernels.KERNELS["relu"]:
            out = fn(Z, np.empty_like(Z))
            np.testing.assert_array_equal(out, [[np.nan, np.inf, 0.0, 0.0, 0.0, 0.0, 2.0]])
            assert not np.signbit(out[0, 2:]).any()
        for fn in kernels.KERNELS["relu_mask"]:
            out = fn(G, Z, np.empty_like(G))
            # inactive units (Z NaN, -Inf, ±0, < 0) give G·0: -0 for G = -1, NaN for G = NaN or Inf
            np.testing.assert_array_equal(out, [[0.0, 1.0, 0.0, -0.0, np.nan, np.nan, np.nan]])
            assert np.signbit(out[0, 3])


@given(sizes, sizes, st.data(), st.sampled_from([np.float64, np.float32]))
def test_specials_relu(n, m, data, dtype):
    Z = _special(data, n, m, dtype=dtype)
    ref, fast = _pair("relu")
    _assert_same_specials(fast(Z, np.empty_like(Z)), ref(Z, np.empty_like(Z)), exact=True)
    in_place = Z.copy()
    _assert_same_specials(fast(in_place, in_place), ref(Z, np.empty_like(Z)), exact=True)


@given(sizes, sizes, st.integers(1, 3), st.data(), st.sampled_from([np.float64, np.float32]))
def test_specials_relu_mask(n, m, blocks, data, dtype):
    Z, G = _special(data, n, m, dtype=dtype), _special(data, blocks * n, m, dtype=dtype)
    ref, fast = _pair("relu_mask")
    with np.errstate(invalid="ignore"):
        want = ref(G, Z, np.empty_like(G))
        _assert_same_specials(fast(G, Z, np.empty_like(G)), want, exact=True)
        in_place = G.copy()
        _assert_same_specials(fast(in_place, Z, in_place), want, exact=True)


@given(sizes, sizes, st.integers(1, 12), st.data())
def test_specials_matmul_nt(n, m, k, data):
    A, B = _special(data, n, k), _special(data, m, k)
    ref, fast = _pair("matmul_nt")
    with np.errstate(invalid="ignore"):
        _assert_same_specials(fast(A, B, np.empty((n, m))), ref(A, B, np.empty((n, m))))


@settings(max_examples=30)
@given(st.data(), st.integers(1, 4), st.integers(1, 12), st.integers(1, 5), st.sampled_from([np.float64, np.float32]))
def test_specials_output_cauchy(data, r, n, d, dtype):
    P0 = _special(data, n, d, dtype=dtype)
    Ps, Qs = _special(data, 2, r * n, d, dtype=dtype)
    cos, sin = jets.curve_coefficients(r, dtype)
    ref, fast = kernels.KERNELS["output_cauchy"]
    with np.errstate(invalid="ignore"):
        want = ref(P0, Ps, Qs, cos, sin, np.empty((r * n, d), dtype))
        got = fast(P0, Ps, Qs, cos, sin, np.empty((r * n, d), dtype))
    for kind in (np.isnan, np.isposinf, np.isneginf):
        np.testing.assert_array_equal(kind(got), kind(want), err_msg=kind.__name__)
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12 if dtype == np.float64 else 1e-5,
                               atol=1e-12 if dtype == np.float64 else 1e-5)


@settings(max_examples=30)
@given(st.data(), st.integers(0, 4), st.integers(1, 12), st.integers(1, 4), st.sampled_from([np.float64, np.float32]))
def test_specials_loss_cauchy(data, r, n, m, dtype):
    E0, Es = _special(data, n, m, dtype=dtype), _special(data, r * n, m, dtype=dtype)
    ref, fast = kernels.KERNELS["loss_cauchy"]
    with np.errstate(invalid="ignore"):
        _assert_same_specials(fast(E0, Es, np.zeros(r + 1)), ref(E0, Es, np.zeros(r + 1)))


@settings(max_examples=30)
@given(st.data(), st.integers(1, 3), st.integers(1, 5), st.sampled_from([(1.0, 0.0), (0.6, 0.8), (np.inf, 1.0)]))
def test_specials_lambda_max(data, L, k, ab):
    """A block with a non-finite entry gives NaN in both; a special value in the zero padding is ignored."""
    A, B, C = (_special(data, L, k + 1, k + 1) for _ in range(3))
    sizes = data.draw(hnp.arrays(np.int64, L, elements=st.integers(1, k)))
    ref, fast = kernels.KERNELS["lambda_max"]
    a, b = ab
    with np.errstate(invalid="ignore", over="ignore"):
        want = ref(A, B, C, sizes, a, b, np.empty(L))
        got = fast(A, B, C, sizes, a, b, np.empty(L))
        blocks = [a * a * A[i, :n, :n] + a * b * B[i, :n, :n] + b * b * C[i, :n, :n] for i, n in enumerate(sizes)]
    np.testing.assert_array_equal(np.isnan(got), np.isnan(want))
    np.testing.assert_array_equal(np.isnan(want), [not np.isfinite(G).all() for G in blocks])
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-12, atol=1e-12)


# --- the tangent-space kernels ---------------------------------------------------------------------------

def _point(data, n, m, salt=0):
    """A non-zero drawn matrix (the fixed offset keeps it away from 0)."""
    return _rand(data, n, m) + offset((n, m), salt)


@given(st.integers(1, 9), st.integers(1, 9), st.floats(1e-3, 1e3), st.data(), st.sampled_from([np.float64, np.float32]))
def test_tangent_direction_is_the_unit_negative_riemannian_gradient(n, m, mu, data, dtype):
    W = (mu * sphere.project(_point(data, n, m), 1.0)).astype(dtype)
    G = _rand(data, n, m, dtype=dtype)
    W64, G64 = W.astype(np.float64), G.astype(np.float64)
    g = G64 - np.vdot(W64, G64) / np.vdot(W64, W64) * W64          # one exact-arithmetic projection
    tol = 1e-12 if dtype == np.float64 else 1e-5
    for fn in kernels.KERNELS["tangent_direction"]:
        out = np.full(W.shape, np.nan, dtype)
        w_g, n_g, n_G = fn(W, G, out)
        assert math.isclose(w_g, float(np.vdot(W64, G64)), rel_tol=1e-12, abs_tol=1e-12 * mu)
        assert math.isclose(n_G, float(np.linalg.norm(G64)), rel_tol=1e-12)
        assert math.isclose(n_g, float(np.linalg.norm(g)), rel_tol=1e-9, abs_tol=1e-12 * n_G)
        if n_g > 1e-6 * n_G:
            np.testing.assert_allclose(out, -g / np.linalg.norm(g), rtol=tol, atol=tol)
            assert abs(np.vdot(out.astype(np.float64), W64)) <= 10 * tol * mu


def test_tangent_direction_of_a_radial_gradient_is_zero():
    W = np.array([[3.0, 4.0]])
    for fn in kernels.KERNELS["tangent_direction"]:
        out = np.full((1, 2), np.nan)
        assert fn(W, 2 * W, out) == (50.0, 0.0, 10.0)
        np.testing.assert_array_equal(out, 0.0)


def _flat_problem(data, shapes):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    bounds = np.concatenate(([0], np.cumsum([a * b for a, b in shapes]))).astype(np.int64)
    w, grad, m = (rng.normal(size=bounds[-1]) for _ in range(3))
    v = rng.random(bounds[-1]) ** 2
    return w, grad, m, v, bounds


@settings(max_examples=50)
@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), min_size=1, max_size=4), st.integers(1, 50),
       st.data())
def test_sphere_adam_numba_matches_reference_and_is_tangent(shapes, k, data):
    w, grad, m, v, bounds = _flat_problem(data, shapes)
    b1, b2, delta = 0.9, 0.999, 1e-8
    args = (w, grad, m, v, bounds, b1, b2, 1 - b1 ** k, 1 - b2 ** k, delta)
    outs = {}
    for fn in kernels.KERNELS["sphere_adam"]:
        arrays = [np.full_like(w, np.nan) for _ in range(4)]
        outs[fn] = fn(*args, *arrays), arrays
    (gd_ref, ref), (gd_fast, fast) = outs.values()
    assert math.isclose(gd_fast, gd_ref, rel_tol=1e-12, abs_tol=1e-12 * np.abs(ref[3]).max())
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12 * np.abs(b).max())
    g, m_new, v_new, D = ref
    # what each output was projected from (a 1x1 layer's tangent space is {0}: its outputs are rounding of these)
    unprojected = -(m_new / (1 - b1 ** k)) / (np.sqrt(v_new / (1 - b2 ** k)) + delta * np.sqrt(v_new.max() / (1 - b2 ** k)))
    for lo, hi in zip(bounds[:-1], bounds[1:]):              # every output tangent, layer by layer
        layer = slice(lo, hi)
        for x, source in ((g, grad), (m_new, np.abs(m) + np.abs(g)), (D, unprojected)):
            scale = max(np.abs(x).max(), np.abs(source).max())
            assert abs(np.dot(w[layer], x[layer])) <= 1e-12 * np.linalg.norm(w[layer]) * scale * (hi - lo)
    np.testing.assert_allclose(v_new, b2 * v + (1 - b2) * g * g, rtol=1e-15)


@given(st.integers(1, 7), st.integers(1, 7), st.floats(1e-2, 1e2), st.data(), st.sampled_from([np.float64, np.float32]))
def test_spectral_pullback_numba_matches_reference(n, m, mu, data, dtype):
    from spherenet.spectral import top_singular
    W = _point(data, n, m).astype(dtype)
    G = _rand(data, n, m, dtype=dtype)
    s, u, v = top_singular(W)
    ref, fast = kernels.KERNELS["spectral_pullback"]
    a = ref(W, G, u, v, s, mu, np.full_like(G, np.nan))
    b = fast(W, G, u, v, s, mu, np.full_like(G, np.nan))
    assert a.dtype == b.dtype == dtype
    tol = 1e-12 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(b, a, rtol=tol, atol=tol * np.abs(a).max())


@settings(max_examples=50)
@given(st.integers(1, 12), st.integers(1, 12), st.integers(0, 2**32 - 1), st.floats(1e-3, 0.3))
def test_top_eigen_warm_finds_the_top_pair_from_a_nearby_start_and_certifies_it(m, n, seed, turn):
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(m, n))
    G = W.T @ W
    values, vectors = np.linalg.eigh(G)
    start = vectors[:, -1] + turn * rng.normal(size=n)              # the top vector, turned a little
    for fn in kernels.KERNELS["top_eigen_warm"]:
        out = np.full(n, np.nan)
        lam, certified = fn(G, start, 6, out)
        if certified:                                               # then it is the top pair, to the stated margin
            assert values[-1] / (1 + 2e-12) <= lam <= values[-1] * (1 + 1e-14)
            gap = values[-1] - values[-2] if n > 1 else values[-1]
            assert 1 - abs(out @ vectors[:, -1]) / np.linalg.norm(out) <= 1e-8 * values[-1] / gap
            again = np.empty(n)                                     # a vector it returned gives the same bits
            assert fn(G, out, 6, again) == (lam, True) and np.array_equal(again, out)
        elif n == 1 or values[-1] - values[-2] > 0.1 * values[-1]:
            assert turn > 0.05, "a well-separated top pair from a close start must certify"


def test_top_eigen_warm_refuses_another_eigenvector():
    G = np.diag([3.0, 2.0, 1.0])
    for fn in kernels.KERNELS["top_eigen_warm"]:
        out = np.empty(3)
        assert fn(G, np.array([0.0, 1.0, 0.0]), 6, out) == (2.0, False)    # converged, to the second: refused
        lam, certified = fn(G, np.array([1.0, 0.3, 0.2]), 6, out)
        assert certified and lam == pytest.approx(3.0, rel=1e-14)
        assert fn(np.zeros((2, 2)), np.array([1.0, 0.0]), 6, np.empty(2))[1] is False   # no positive top: refused


@pytest.mark.parametrize("special", [np.nan, np.inf])
def test_specials_tangent_space_kernels(special):
    """A non-finite gradient entry comes out of the tangent-space kernels as out of their references: no finite
    direction made from it, no certified eigenpair."""
    rng = np.random.default_rng(0)
    W, G = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    G[1, 2] = special
    with np.errstate(invalid="ignore", over="ignore"):
        (ref, fast) = kernels.KERNELS["tangent_direction"]
        a, b = np.empty_like(W), np.empty_like(W)
        want, got = ref(W, G, a), fast(W, G, b)
        assert all(not math.isfinite(x) for x in want[:2]) and all(not math.isfinite(x) for x in got[:2])
        _assert_same_specials(b, a, exact=True)
        bounds = np.array([0, 12])
        outs = []
        for fn in kernels.KERNELS["sphere_adam"]:
            arrays = [np.empty(12) for _ in range(4)]
            outs.append((fn(W.ravel(), G.ravel(), np.zeros(12), np.zeros(12), bounds, 0.9, 0.999, 0.1, 0.001, 1e-8,
                            *arrays), arrays))
        assert not math.isfinite(outs[0][0]) and not math.isfinite(outs[1][0])
        for x, y in zip(outs[1][1], outs[0][1]):
            _assert_same_specials(x, y)
        u, v = rng.normal(size=3), rng.normal(size=4)
        ref, fast = kernels.KERNELS["spectral_pullback"]
        _assert_same_specials(fast(W, G, u, v, 2.0, 1.0, np.empty_like(G)), ref(W, G, u, v, 2.0, 1.0, np.empty_like(G)))
        gram = G.T @ G
        for fn in kernels.KERNELS["top_eigen_warm"]:
            assert fn(gram, np.ones(4), 6, np.empty(4)) == (0.0, False)
