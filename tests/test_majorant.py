"""Majorants of METHOD.md §5, their spectral-norm machinery, the golden-section search and the validity
measurement, each checked against plain-NumPy references written here from the formulas."""
import math

import numpy as np
import pytest
from hypothesis import assume, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import spherenet as sn
from spherenet import kernels, majorant as mj

from .strategies import Problem, matrices, problems, unit_rows

BUILDERS = {"spectral": mj.spectral, "frobenius": mj.frobenius, "telescoping": mj.telescoping}


# --- plain-NumPy references -----------------------------------------------------------------------------------

def reference_parts(weights, radii, X, Y):
    """``α, β, Q`` and the unit directions ``V_i``, straight from METHOD.md §3 and §5."""
    _, grads = sn.loss_and_grad(weights, X, Y)
    V, alpha, beta = [], 0.0, 0.0
    for W, G, mu in zip(weights, grads, radii):
        rgrad = G - np.sum(W * G) / mu**2 * W
        V.append(-rgrad / np.linalg.norm(rgrad))
        alpha += np.sum(W * G)
        beta += mu * np.linalg.norm(rgrad)
    return grads, V, alpha, beta, np.mean(np.sum(X**2, axis=1))


def random_problem(seed, widths=(4, 6, 5, 2), n=30, scale_rows=False):
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(list(widths), radius=["unit", "agd", 1.7][seed % 3], seed=seed)
    X = unit_rows(rng, n, widths[0])
    if scale_rows:
        X *= rng.uniform(0.3, 2.0, size=(n, 1))
    return net, X, rng.normal(size=(n, widths[-1]))


@st.composite
def drawn_problems(draw, widths=(4, 6, 5, 2), n=30, scale_rows=False):
    """As :func:`random_problem`, drawn entry by entry (:func:`tests.strategies.problems`), so failures shrink."""
    net, X, Y = draw(problems(fixed_widths=widths, n=n))
    if scale_rows:
        X = X * draw(hnp.arrays(np.float64, (n, 1), elements=st.floats(0.3, 2.0)))
    grads = sn.loss_and_grad(net.weights, X, Y)[1]
    assume(all(sn.sphere.rgrad_norm(W, G, mu) > 0 for W, G, mu in zip(net.weights, grads, net.radii)))
    return Problem(net, X, Y)


# --- spectral norms of a W + b U ------------------------------------------------------------------------------

# The Gram form squares a and b: below ~1e-154 a square underflows to 0 and so does the norm it carries (the
# update curve's a, b are cos t - 1, sin t of steps far above that).
pencil_coefficients = st.floats(-3, 3).map(lambda x: x if abs(x) >= 1e-100 else 0.0)


@given(st.integers(1, 9), st.integers(1, 9), st.data(), pencil_coefficients, pencil_coefficients)
def test_gram_norms_equal_svd_norms(rows, cols, data, a, b):
    W, U = data.draw(matrices((rows, cols))), data.draw(matrices((rows, cols)))
    got = mj.SpectralPencils([W], [U]).norms(a, b)[0, 0]
    want = np.linalg.norm(a * W + b * U, 2)
    # General pencil: accuracy relative to the size of the two terms (a W and b U may cancel).
    assert abs(got - want) <= 1e-12 * (abs(a) * np.linalg.norm(W, 2) + abs(b) * np.linalg.norm(U, 2)) + 1e-300


@given(drawn_problems(widths=(7, 9, 3, 8)),
       st.lists(st.floats(-math.pi, math.pi, allow_subnormal=False), min_size=1, max_size=5))
def test_gram_norms_on_the_update_curve_are_relatively_exact(problem, ts):
    net, X, Y = problem
    _, V, *_ = reference_parts(net.weights, net.radii, X, Y)
    U = [mu * Vi for mu, Vi in zip(net.radii, V)]
    t = np.array(ts)
    for a in (-2 * np.sin(t / 2) ** 2, np.cos(t)):           # ΔW(t) and Γ(t)
        got = mj.SpectralPencils(net.weights, U).norms(a, np.sin(t))
        want = mj.spectral_norms_svd(net.weights, U, a, np.sin(t))
        nonzero = want > 0
        np.testing.assert_allclose(got[nonzero], want[nonzero], rtol=1e-12)
        assert np.all(got[~nonzero] == 0)


@given(st.data(), st.floats(-2, 2), st.floats(-2, 2))
def test_lambda_max_kernel_matches_its_numpy_reference(data, a, b):
    weights = [data.draw(matrices(shape)) for shape in ((3, 5), (6, 3), (2, 6))]
    pencils = mj.SpectralPencils(weights, [data.draw(matrices(W.shape)) for W in weights])
    args = (pencils.A, pencils.B, pencils.C, pencils.sizes, a, b)
    fast, ref = kernels.lambda_max_numba(*args, np.empty(3)), kernels.lambda_max_reference(*args, np.empty(3))
    np.testing.assert_allclose(fast, ref, rtol=1e-13, atol=1e-13 * np.abs(ref).max())


# --- the majorants against their formulas ---------------------------------------------------------------------

@pytest.mark.parametrize("variant", list(BUILDERS))
@settings(max_examples=15)
@given(problem=drawn_problems(scale_rows=True), ts=st.lists(st.floats(0.01, math.pi), min_size=1, max_size=4))
def test_majorant_equals_plain_numpy_formula(variant, problem, ts):
    net, X, Y = problem
    grads, V, alpha, beta, Q = reference_parts(net.weights, net.radii, X, Y)
    m = BUILDERS[variant](net.weights, grads, net.radii, X)
    assert (m.alpha, m.beta, m.Q) == pytest.approx((alpha, beta, Q), rel=1e-12)
    values = m(np.array(ts))
    for t, value in zip(ts, values):
        plain = mj.plain_majorant(variant, net.weights, grads, net.radii, X, t)
        penalty = plain - (alpha * (np.cos(t) - 1) - beta * np.sin(t))
        # relative to the size of the terms: m itself may be a small difference of them
        assert abs(value - plain) <= 1e-12 * (abs(alpha * (np.cos(t) - 1)) + abs(beta * np.sin(t)) + abs(penalty))
        assert m(t) == pytest.approx(value, rel=1e-14, abs=1e-300)      # scalar and array calls agree


@pytest.mark.parametrize("variant", list(BUILDERS))
@settings(max_examples=15)
@given(problem=drawn_problems(scale_rows=True))
def test_majorant_is_zero_at_zero_with_slope_minus_beta(variant, problem):
    net, X, Y = problem
    grads, _, _, beta, _ = reference_parts(net.weights, net.radii, X, Y)
    m = BUILDERS[variant](net.weights, grads, net.radii, X)
    assert m(0.0) == 0.0
    h = 1e-6 * min(1.0, beta)          # the penalty's odd part errs by ~h² in the slope: small next to beta
    assert (m(h) - m(-h)) / (2 * h) == pytest.approx(-beta, rel=1e-7)


@settings(max_examples=15)
@given(problem=drawn_problems())
def test_penalties_are_ordered_telescoping_spectral_frobenius(problem):
    net, X, Y = problem
    grads = sn.loss_and_grad(net.weights, X, Y)[1]
    t = np.concatenate([np.geomspace(1e-6, 1, 40), np.linspace(1, math.pi, 20)])
    tel, spec, frob = (BUILDERS[v](net.weights, grads, net.radii, X).penalty(t)
                       for v in ("telescoping", "spectral", "frobenius"))
    assert np.all(tel <= spec * (1 + 1e-12)) and np.all(spec <= frob * (1 + 1e-12))
    assert np.any(tel < spec * (1 - 1e-6)) and np.any(spec < frob * (1 - 1e-6))   # and not all equal


def test_exposed_parts_match_the_formula():
    net, X, Y = random_problem(3)
    grads, V, *_ = reference_parts(net.weights, net.radii, X, Y)
    m = mj.spectral(net.weights, grads, net.radii, X)
    s = [np.linalg.norm(W, 2) for W in net.weights]
    assert m.P2 == pytest.approx(np.prod(s), rel=1e-13)
    t = 0.3
    dW = [W * (np.cos(t) - 1) + mu * Vi * np.sin(t) for W, Vi, mu in zip(net.weights, V, net.radii)]
    assert m.P1(t)[0] == pytest.approx(np.prod([si + np.linalg.norm(D, 2) for si, D in zip(s, dW)]), rel=1e-13)
    assert m.gap(t)[0] == pytest.approx(m.P1(t)[0] - m.P2, rel=1e-12)


# --- the closed-form step -------------------------------------------------------------------------------------

@settings(max_examples=15)
@given(problem=drawn_problems(scale_rows=True))
def test_closed_form_step_is_the_formula_and_minimises_its_model(problem):
    net, X, Y = problem
    grads, _, _, beta, Q = reference_parts(net.weights, net.radii, X, Y)
    P, L = np.prod(net.radii), net.depth
    tau = mj.closed_form_step(net.weights, grads, net.radii, X)
    assert tau == pytest.approx(np.log((1 + np.sqrt(1 + 4 * beta / (P**2 * Q * L))) / 2) / L, rel=1e-12)
    h = 1e-4 * tau
    slope = (mj.closed_form_model(tau + h, beta, P, Q, L) - mj.closed_form_model(tau - h, beta, P, Q, L)) / (2 * h)
    assert abs(slope) <= 1e-6 * beta


# --- golden-section search ------------------------------------------------------------------------------------

def counted(f):
    calls = []

    def g(t):
        calls.append(t)
        return f(t)
    return g, calls


@given(st.floats(1e-3, math.pi - 1e-3), st.sampled_from([mj.ATOL, 0.0]))
def test_golden_section_finds_interior_minimum_to_its_tolerance(c, atol):
    for f in (lambda t: (t - c) ** 2, lambda t: math.cosh(3 * (t - c)) + 0.1 * (t - c) ** 3):
        g, calls = counted(f)
        t, ft, n, at_end = mj.golden_section(g, atol=atol)
        assert abs(t - c) <= 2 * (mj.RTOL * abs(t) + atol)
        assert not at_end and n == len(calls) and ft == f(t)


@pytest.mark.parametrize("c", [1e-4, 3e-6])
def test_golden_section_tolerance_is_relative_to_the_minimiser_not_the_interval(c):
    for atol in (mj.ATOL, 0.0):
        t, *_ = mj.golden_section(lambda s: (s - c) ** 2, atol=atol)
        assert abs(t - c) <= 2 * (mj.RTOL * c + atol)
    t, *_ = mj.golden_section(lambda s: (s - c) ** 2, atol=0.0)
    assert abs(t - c) <= 1e-3 * c            # a 3.45e-4 · π tolerance would miss c entirely


@pytest.mark.parametrize("first_step", [None, 1e-6])
@pytest.mark.parametrize("f, end", [(lambda t: t, 0.0), (lambda t: -t, math.pi), (lambda t: (t + 1) ** 2, 0.0),
                                    (lambda t: (t - 5) ** 2, math.pi)])
def test_golden_section_minimum_at_an_end(f, end, first_step):
    t, ft, _, at_end = mj.golden_section(f, first_step=first_step)
    assert t == end and ft == f(end) and at_end


@given(st.floats(1e-6, 1.0))
def test_bracketing_first_reaches_the_same_tolerance_with_fewer_evaluations(c):
    f = lambda t: (t - c) ** 2 - 0.3 * (t - c) ** 3          # noqa: E731
    t_full, _, n_full, _ = mj.golden_section(f, atol=0.0)
    t_br, _, n_br, _ = mj.golden_section(f, atol=0.0, first_step=1e-7)
    for t in (t_full, t_br):
        assert abs(t - c) <= 2 * mj.RTOL * t
    if c < 1e-4:                             # bracketing pays when c² << first_step
        assert n_br < n_full


def test_bracketing_finds_the_minimum_nearest_the_start():
    f = lambda t: -0.5 * math.exp(-(t - 0.3) ** 2 / 0.01) - math.exp(-(t - 2) ** 2 / 0.1)   # noqa: E731
    assert mj.golden_section(f)[0] == pytest.approx(2.0, abs=1e-3)           # the whole interval: the far one
    assert mj.golden_section(f, first_step=1e-3)[0] == pytest.approx(0.3, abs=1e-3)


@settings(max_examples=10)
@given(problem=drawn_problems())
def test_golden_section_on_majorants_beats_a_fine_grid(problem):
    net, X, Y = problem
    grads = sn.loss_and_grad(net.weights, X, Y)[1]
    grid = np.concatenate([np.geomspace(1e-8, 1, 3000), np.linspace(1, math.pi, 1000)])
    for variant, atol in (("spectral", mj.ATOL), ("frobenius", 0.0)):
        m = BUILDERS[variant](net.weights, grads, net.radii, X)
        tau, m_tau, _, _ = mj.golden_section(m, atol=atol)
        if grid[np.argmin(m(grid))] <= 4 * atol:      # a minimiser within the search's absolute tolerance of 0
            assert m_tau == m(tau) <= 0                # (a near-stationary draw): the search may stop at 0
            continue
        assert m_tau == m(tau) < 0
        # Within the search tolerance δ of the minimiser, m(τ) - min m <= (p/2)(δ/τ)²|min m| for a t^p penalty.
        slack = 4 * (2 * (mj.RTOL * tau + atol) / tau) ** 2 * abs(m_tau)
        assert m_tau <= m(grid).min() + slack


def test_minimise_redoes_a_search_that_lands_above_m0():
    # -t + 200 t² (minimum at 0.0025) plus a dip near 1.94 that stays above 0 but lures the first two probes.
    lure = lambda t: -t + 200 * t**2 - 600 * math.exp(-(t - 1.94) ** 2 / 0.01)   # noqa: E731
    assert mj.golden_section(lure)[1] > 0
    tau, m_tau, evals, at_end, restarted = mj.minimise(lure)
    assert restarted and not at_end and m_tau < 0 and abs(tau - 0.0025) <= 2 * (mj.RTOL * tau + mj.ATOL)
    plain = lambda t: -t + 200 * t**2                                               # noqa: E731
    assert mj.minimise(plain) == (*mj.golden_section(plain), False)


def test_golden_section_rejects_bad_arguments():
    with pytest.raises(ValueError, match="a < b"):
        mj.golden_section(abs, 1.0, 1.0)
    with pytest.raises(ValueError, match="rtol"):
        mj.golden_section(abs, rtol=0.0)
    with pytest.raises(ValueError, match="atol"):
        mj.golden_section(abs, atol=-1.0)


# --- validity: does m bound φ(t) - φ(0)? ----------------------------------------------------------------------

@pytest.mark.parametrize("variant", list(BUILDERS))
@settings(max_examples=8)
@given(problem=drawn_problems(widths=(5, 3), n=40, scale_rows=True))
def test_one_layer_majorants_are_true_bounds(variant, problem):
    # L = 1: f = W x, so Assumption 1 is exact and Q/2 ||ΔW||_2² bounds 1/(2N) Σ ||ΔW x_n||²: m is a bound.
    net, X, Y = problem
    grads = sn.loss_and_grad(net.weights, X, Y)[1]
    report = mj.validity(BUILDERS[variant](net.weights, grads, net.radii, X), X, Y,
                         np.geomspace(1e-4, math.pi, 60))
    assert report["bound_fraction"] == 1.0 and report["fails_at"].size == 0
    assert report["worst_violation"] < 0 and 0 < report["looseness"] <= 1


@settings(max_examples=10)
@given(problem=drawn_problems(widths=(4, 6, 6, 1), n=25), variant=st.sampled_from(list(BUILDERS)))
def test_validity_measures_bound_fraction_and_looseness(problem, variant):
    """On random ReLU nets the bound rests on Assumption 1: its success rate is measured, not asserted."""
    net, X, Y = problem
    grads, V, *_ = reference_parts(net.weights, net.radii, X, Y)
    m = BUILDERS[variant](net.weights, grads, net.radii, X)
    t = np.geomspace(1e-5, math.pi, 40)
    report = mj.validity(m, X, Y, t)
    J0 = sn.loss(net.weights, X, Y)

    def true_change(s):
        return sn.loss([W * np.cos(s) + mu * Vi * np.sin(s) for W, Vi, mu in zip(net.weights, V, net.radii)],
                       X, Y) - J0

    true = np.array([true_change(s) for s in t])
    np.testing.assert_allclose(report["true"], true, rtol=1e-10, atol=1e-15 * J0)
    holds = m(t) >= true
    assert report["bound_fraction"] == pytest.approx(holds.mean())
    np.testing.assert_array_equal(report["fails_at"], t[~holds])
    tau = mj.minimise(m)[0]
    assert report["tau"] == tau and report["m_tau"] == m(tau)
    true_tau = true_change(tau)
    if true_tau == 0:                                        # the loss did not change (documented: NaN)
        assert math.isnan(report["looseness"])
    else:
        assert report["looseness"] == pytest.approx(m(tau) / true_tau, rel=1e-9)
    event(f"{variant}: bound holds on {'all' if holds.all() else 'part'} of the grid")


# --- boundary checks ------------------------------------------------------------------------------------------

def test_builders_reject_bad_input():
    net, X, Y = random_problem(0)
    grads = sn.loss_and_grad(net.weights, X, Y)[1]
    with pytest.raises(ValueError, match=r"weights\[1\].*sphere"):
        mj.spectral([net.weights[0], 2 * net.weights[1], net.weights[2]], grads, net.radii, X)
    with pytest.raises(ValueError, match=r"grads\[2\]"):
        mj.frobenius(net.weights, grads[:2] + [grads[2].T], net.radii, X)
    with pytest.raises(ValueError, match="radii"):
        mj.telescoping(net.weights, grads, net.radii[:2], X)
    with pytest.raises(ValueError, match="X"):
        mj.closed_form_step(net.weights, grads, net.radii, X[:, :2])
    with pytest.raises(ValueError, match="t_grid"):
        mj.validity(mj.spectral(net.weights, grads, net.radii, X), X, Y, [])


# --- figures --------------------------------------------------------------------------------------------------

def test_figures_are_written(tmp_path):
    from spherenet.plots import majorant as plots
    net, X, Y = random_problem(1, widths=(4, 6, 2), n=20)
    path = plots.majorant_figure({"first": net.weights}, net.radii, X, Y, tmp_path / "m.png",
                                 t=np.geomspace(1e-5, 0.5, 30))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    data = plots.curve_comparison(net.weights, net.radii, X, Y, np.array([1e-4]))
    # the order-2 Taylor model agrees with the true change to O(t³) at small t
    assert abs(data["taylor2"][0] - data["true"][0]) <= 1e-6 * abs(data["true"][0])
    path = plots.tau_figure({"a": [1e-2, 2e-2], "b": [1e-4, 0.0]}, tmp_path / "tau.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- a layer that stays (zero Riemannian gradient) ------------------------------------------------------------

@pytest.mark.parametrize("variant", ["spectral", "telescoping", "frobenius"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_majorant_with_a_layer_that_stays_matches_the_plain_formula(variant, seed):
    """Layer 1's gradient is radial, ``g_1 = c W_1`` (``c = 2.5``): its Riemannian gradient is 0, so it stays,
    ``Γ_1(t) = W_1``, ``ΔW_1 = 0``. Written out: ``m(t) = α'(cos t - 1) - β sin t + penalty``, with
    ``α' = Σ_{i moving} <W_i, g_i>`` (the first-order term ``Σ_i <g_i, ΔW_i(t)>`` has no term for layer 1,
    whose ``<W_1, g_1> = c mu_1²`` is not 0) and the penalties of METHOD.md §5 with ``||ΔW_1||_2 = 0`` and
    ``||Γ_1(t)||_2 = ||W_1||_2``; the Frobenius one does not look at the layers' norms."""
    rng = np.random.default_rng(seed)
    net, X, Y = random_problem(seed)
    W, radii = net.weights, net.radii
    _, grads = sn.loss_and_grad(W, X, Y)
    grads[0] = 2.5 * W[0]
    moving = [G - np.sum(Wi * G) / mu**2 * Wi for Wi, G, mu in zip(W[1:], grads[1:], radii[1:])]
    V = [np.zeros_like(W[0])] + [-r / np.linalg.norm(r) for r in moving]
    alpha = sum(np.sum(Wi * G) for Wi, G in zip(W[1:], grads[1:]))
    beta = sum(mu * np.linalg.norm(r) for mu, r in zip(radii[1:], moving))
    Q = np.mean(np.sum(X**2, axis=1))
    m = BUILDERS[variant](W, grads, radii, X)
    assert m.alpha == pytest.approx(alpha, rel=1e-12) and m.beta == pytest.approx(beta, rel=1e-12)
    s = [np.linalg.norm(Wi, 2) for Wi in W]
    for t in rng.uniform(0.05, 3.0, size=4):
        dW = [np.zeros_like(W[0])] + [Wi * (np.cos(t) - 1) + mu * Vi * np.sin(t)
                                      for Wi, Vi, mu in zip(W[1:], V[1:], radii[1:])]
        gamma = [Wi + D for Wi, D in zip(W, dW)]
        if variant == "spectral":
            bound = np.prod([si + np.linalg.norm(D, 2) for si, D in zip(s, dW)]) - np.prod(s)
        elif variant == "telescoping":
            bound = sum(np.prod([np.linalg.norm(gamma[j], 2) for j in range(i + 1, len(W))])
                        * np.linalg.norm(dW[i], 2) * np.prod(s[:i]) for i in range(len(W)))
        else:
            bound = np.prod(radii) * ((1 + 2 * np.sin(t / 2)) ** len(W) - 1)
        want = alpha * (np.cos(t) - 1) - beta * np.sin(t) + Q / 2 * bound**2
        assert m(t) == pytest.approx(want, rel=1e-10, abs=1e-14), t
        assert mj.plain_majorant(variant, W, grads, radii, X, t) == pytest.approx(want, rel=1e-10, abs=1e-14)
        np.testing.assert_array_equal(m.curve(t)[0], W[0])


# --- what the mutation run (benchmarks/README.md) found untested --------------------------------------------

def _counted(f):
    calls = []

    def g(t):
        calls.append(t)
        return f(t)
    return g, calls


def test_golden_section_counts_its_evaluations_and_places_them_by_the_golden_ratio():
    golden, grow = (3 - 5**0.5) / 2, (1 + 5**0.5) / 2
    for f, args, kwargs in ((lambda t: (t - 2.2) ** 2, (1.0, 3.0), {}), (lambda t: -t, (0.0, 1.0), {}),
                            (lambda t: t, (0.5, 2.0), {}),
                            (lambda t: (t - 1.0) ** 2, (0.0, math.pi), {"first_step": 0.1}),
                            (lambda t: -t, (0.0, 1.0), {"first_step": 0.3}),
                            (lambda t: 1.0, (0.0, math.pi), {"first_step": 0.1})):
        g, calls = _counted(f)
        t, ft, n, at_end = mj.golden_section(g, *args, **kwargs)
        assert n == len(calls) and ft == f(t)                           # every evaluation counted
    g, calls = _counted(lambda t: (t - 2.2) ** 2)
    assert mj.golden_section(g, 1.0, 3.0)[0] == pytest.approx(2.2, abs=2 * (mj.RTOL * 2.2 + mj.ATOL))
    assert calls[0] == pytest.approx(1.0 + golden * 2.0, rel=1e-15)
    g, calls = _counted(lambda t: 1.0)                                  # flat: no decrease stops the growth
    mj.golden_section(g, 0.5, math.pi, first_step=0.1)
    assert calls[:2] == [pytest.approx(0.6), pytest.approx(0.5 + 0.1 * grow)] and 0.5 <= calls[2] <= 0.5 + 0.1 * grow
    g, calls = _counted(lambda t: -t)
    mj.golden_section(g, 0.5, math.pi, first_step=0.1)
    assert calls[:3] == [pytest.approx(0.6), pytest.approx(0.5 + 0.1 * grow), pytest.approx(0.5 + 0.1 * grow**2)]
    # the cap on evaluations: exactly max_evals inside the interval (the ends may follow)
    g, calls = _counted(lambda t: (t - 1.0) ** 2)
    mj.golden_section(g, max_evals=10)
    assert len([c for c in calls if c not in (0.0, math.pi)]) == 10


def test_golden_section_and_minimise_messages_and_scale():
    for kwargs, message in (({"a": math.nan}, "a must be finite"), ({"b": math.inf}, "b must be finite"),
                            ({"rtol": 0.0}, "rtol must be > 0"), ({"atol": -1.0}, "atol must be >= 0"),
                            ({"first_step": 0.0}, "first_step must be > 0"),
                            ({"first_step": -1.0}, "first_step must be > 0"),
                            ({"first_step": math.nan}, "first_step must be finite")):
        with pytest.raises(ValueError, match="^" + message):
            mj.golden_section(abs, **kwargs)
    # the restart does not depend on the scale of m (m > 0 at the search's result, whatever its size)
    lure = lambda t: 1e-3 * (-t + 200 * t**2 - 600 * math.exp(-(t - 1.94) ** 2 / 0.01))   # noqa: E731
    g, calls = _counted(lure)
    tau, m_tau, evals, _, restarted = mj.minimise(g)
    assert restarted and m_tau < 0 and evals == len(calls)


def test_builders_name_what_is_wrong_and_accept_rounding_off_the_sphere():
    net, X, Y = random_problem(3)
    W, radii = net.weights, net.radii
    grads = sn.loss_and_grad(W, X, Y)[1]
    cases = (((W, grads[:2], radii, X), "grads must be a list of 3 arrays, one per weight matrix"),
             ((W, np.stack([np.zeros((2, 2))] * 3), radii, X), "grads must be a list of 3 arrays"),
             ((W, 5, radii, X), "grads must be a list of 3 arrays"),
             ((W, [grads[0], "g", grads[2]], radii, X), r"grads\[1\]"),
             ((W, grads, radii, np.ones((3, 5))), "X has 5 columns, expected 4"),
             ((W, grads, radii, np.zeros((3, 4))),
              "X: every row is zero, so Q = 1/N sum \\|\\|x_n\\|\\|\\^2 = 0 and the majorant is undefined$"))
    for args, message in cases:
        with pytest.raises((ValueError, TypeError), match="^" + message):
            mj.spectral(*args)
    off = [Wi * (1 + 1e-9) for Wi in W]                     # 1e-9 off the spheres: within the builders' 1e-8
    assert np.isfinite(mj.spectral(off, grads, radii, X)(0.1))


def test_plain_spectral_and_curve_norms_against_svd():
    net, X, Y = random_problem(4)
    W, radii = net.weights, net.radii
    _, grads = sn.loss_and_grad(W, X, Y)
    grads[1] = 2.0 * W[1]                                    # layer 2 stays
    m = mj.spectral(W, grads, radii, X)
    for t in (0.05, 0.7, 2.5):
        assert mj.plain_spectral(W, grads, radii, X, t) == pytest.approx(m(t), rel=1e-10, abs=1e-14)
    ts = np.array([0.3, 1.9])
    norms = m.curve_norms(ts)
    assert norms.shape == (2, 3)
    for row, t in zip(norms, ts):
        np.testing.assert_allclose(row, [np.linalg.norm(G, 2) for G in m.curve(t)], rtol=1e-10)
    np.testing.assert_array_equal(m.pencils.sizes, [min(Wi.shape) for Wi in W])
    both = m.pencils.norms([0.0, 1.0, 0.0], [0.0, 0.0, 0.0])  # a zero pair first, then ||W_i||_2, then 0 again
    np.testing.assert_allclose(both[1], [np.linalg.norm(Wi, 2) for Wi in W], rtol=1e-12)
    assert not both[0].any() and not both[2].any()


def test_majorant_calls_input_energy_and_repr():
    net, X, Y = random_problem(5)
    m = mj.spectral(net.weights, sn.loss_and_grad(net.weights, X, Y)[1], net.radii, X)
    assert isinstance(m(0.3), float) and m(np.array([[0.1, 0.2], [0.3, 0.4]])).shape == (2, 2)
    with pytest.raises(TypeError, match="^t must be a number or an array of numbers"):
        m("x")
    with pytest.raises(ValueError, match="^t must be finite"):
        m(math.nan)
    assert repr(m).startswith("SpectralMajorant(alpha=") and repr(m).endswith(", L=3)")
    X32 = np.full((200_000, 1), 0.1, np.float32)             # float32 rows: Q still summed in float64
    assert mj.input_energy(X32) == pytest.approx(float(np.float32(0.1)) ** 2, rel=1e-12)


def test_validity_defaults_keys_grid_and_options():
    net, X, Y = random_problem(6)
    m = mj.spectral(net.weights, sn.loss_and_grad(net.weights, X, Y)[1], net.radii, X)
    d = mj.validity(m, X, Y)
    assert set(d) == {"t", "m", "true", "bound_fraction", "fails_at", "worst_violation", "tau", "m_tau", "true_tau",
                      "looseness"}
    np.testing.assert_allclose(d["t"], np.geomspace(1e-6, math.pi, 200), rtol=1e-15)
    g = mj.validity(m, X, Y, t_grid=[[0, 1], [2, 3]], rtol=1e-2)   # t = 0: m = true = 0, which counts as bounded
    assert g["t"].dtype == float and g["t"].shape == (4,) and g["m"][0] == g["true"][0] == 0.0
    assert g["bound_fraction"] == np.mean(g["m"] >= g["true"]) and 0.0 not in g["fails_at"]
    assert g["tau"] == mj.minimise(m, 1e-2)[0] != mj.minimise(m)[0]
    with pytest.raises(ValueError, match="^t_grid must be a non-empty array of finite angles$"):
        mj.validity(m, X, Y, t_grid=[])
    with pytest.raises(ValueError, match="^X has 3 columns, expected 4"):
        mj.validity(m, np.ones((30, 3)), Y)
    with pytest.raises(ValueError, match="^Y has 3 columns, expected 2"):
        mj.validity(m, X, np.ones((30, 3)))
    still = mj.spectral(net.weights, [np.zeros_like(W) for W in net.weights], net.radii, X)   # nothing moves
    assert math.isnan(mj.validity(still, X, Y, t_grid=[0.5])["looseness"])
