"""SphereNetRegressor: the scikit-learn-style round trip on simulator data, against hand-computed
references of the paper's pipeline; input refusal; parameters and cloning; save/load; and, when
scikit-learn is installed, its own ``check_estimator``."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spherenet.data import default_problem
from spherenet.estimator import NotFittedError, SphereNetRegressor
from spherenet.network import NormalisedMLP, forward

PARAMS = ["batch_size", "dtype", "hidden", "iterations", "lipschitz", "method", "norm", "order", "radius", "random_state",
          "scaling", "standardize", "verbose"]


@pytest.fixture(scope="module")
def problem():
    return default_problem(seed=0, n_samples=3000)


@pytest.fixture(scope="module")
def fitted(problem):
    train, _ = problem
    return SphereNetRegressor(iterations=30, scaling="paper", batch_size=None).fit(train.X, train.Y)  # the paper's


@pytest.fixture(scope="module")
def fitted_standard(problem):
    train, _ = problem
    return SphereNetRegressor(iterations=30).fit(train.X, train.Y)


@pytest.fixture(scope="module")
def small(problem):
    """A cheap slice of the training data for tests that fit several times."""
    train, _ = problem
    return train.X[:300], train.Y[:300]


def _r2_reference(Y, F):
    """R² written independently: 1 - MSE/variance, per output, averaged."""
    return float(np.mean(1.0 - ((Y - F) ** 2).mean(axis=0) / Y.var(axis=0)))


# --- the round trip --------------------------------------------------------------------------------------

def test_fit_predict_score_beat_the_mean_predictor(problem, fitted):
    train, test = problem
    F = fitted.predict(train.X)
    assert F.shape == train.Y.shape and F.dtype == np.float64
    rmse_mean = np.sqrt(np.mean(np.sum((train.Y - train.Y.mean(axis=0)) ** 2, axis=1)))
    assert fitted.rmse(train.X, train.Y) < rmse_mean
    assert fitted.score(train.X, train.Y) > 0
    assert fitted.score(train.X, train.Y) == pytest.approx(_r2_reference(train.Y, F), rel=1e-12)
    assert fitted.rmse(test.X, test.Y) == pytest.approx(
        np.sqrt(np.mean(np.sum((fitted.predict(test.X) - test.Y) ** 2, axis=1))), rel=1e-12)
    assert fitted.n_iter_ == len(fitted.history_.tau) == 30
    assert fitted.n_features_in_ == 12 and fitted.n_outputs_ == 3


def test_predictions_are_in_newtons_via_the_papers_scaling(problem, fitted):
    """predict = f(x/||x||) * max||y|| / P_op, with P_op the initial network's spectral-norm product."""
    train, test = problem
    init = NormalisedMLP([12, 25, 30, 15, 3], seed=0)
    p_op = np.prod([np.linalg.norm(W, 2) for W in init.weights])
    y_max = np.linalg.norm(train.Y, axis=1).max()
    U = test.X / np.linalg.norm(test.X, axis=1, keepdims=True)
    expected = fitted.net_.forward(U) * y_max / p_op
    np.testing.assert_allclose(fitted.predict(test.X), expected, rtol=1e-12, atol=1e-12 * y_max)
    # the scaling's training RMSE formula sqrt(2J) y_max/P_op is the raw RMSE
    J = fitted.history_.loss_train[-1]
    assert fitted.scaling_.rmse_newtons(J) == pytest.approx(fitted.rmse(train.X, train.Y), rel=1e-9)


def test_lipschitz_bound(problem, fitted):
    train, _ = problem
    init = NormalisedMLP([12, 25, 30, 15, 3], seed=0)
    p_op = np.prod([np.linalg.norm(W, 2) for W in init.weights])
    gain = np.prod([np.linalg.norm(W, 2) for W in fitted.net_.weights])
    y_max = np.linalg.norm(train.Y, axis=1).max()
    assert fitted.lipschitz_bound_ == pytest.approx(gain * y_max / p_op, rel=1e-12)
    assert fitted.lipschitz_bound_ <= np.prod(fitted.net_.radii) * y_max / p_op * (1 + 1e-12)
    # on normalised inputs u, v: ||pred(u) - pred(v)|| <= L ||u - v||
    rng = np.random.default_rng(1)
    U = train.X[:200] / np.linalg.norm(train.X[:200], axis=1, keepdims=True)
    V = U + 1e-3 * rng.standard_normal(U.shape)
    V /= np.linalg.norm(V, axis=1, keepdims=True)
    ratios = (np.linalg.norm(fitted.predict(U) - fitted.predict(V), axis=1) / np.linalg.norm(U - V, axis=1))
    assert ratios.max() <= fitted.lipschitz_bound_


def test_default_pipeline_is_the_standard_scaling_with_a_chosen_budget(problem, fitted_standard):
    """predict = t g(a [(x - m)/s, 1]) + ybar, written out by hand; the certificate holds on raw inputs."""
    train, test = problem
    est = fitted_standard
    m, s, ybar = train.X.mean(0), train.X.std(0), train.Y.mean(0)
    Z = np.hstack([(test.X - m) / s, np.ones((len(test.X), 1))])
    a = 1 / np.linalg.norm(np.hstack([(train.X - m) / s, np.ones((len(train.X), 1))]), axis=1).max()
    t = est.scaling_.target_factor
    W64 = [W.astype(np.float64) for W in est.net_.weights]      # predict computes in float64 (trained in float32)
    np.testing.assert_allclose(est.predict(test.X), t * forward(W64, a * Z) + ybar, rtol=1e-10, atol=1e-10)
    K = est.lipschitz_selection_["chosen"]
    assert est.lipschitz_budget_ == pytest.approx(K, rel=1e-12)
    mu = 1.0                                        # radius="unit": every layer's mu_i = 1
    assert t * mu * a / s.min() == pytest.approx(K, rel=1e-12)
    assert 0 < est.lipschitz_lower_ <= est.lipschitz_bound_ <= K * (1 + 1e-12)
    rng = np.random.default_rng(2)
    A = test.X[:300]
    B = A + rng.standard_normal(A.shape) * s * 0.1
    ratios = np.linalg.norm(est.predict(A) - est.predict(B), axis=1) / np.linalg.norm(A - B, axis=1)
    assert ratios.max() <= est.lipschitz_bound_
    fixed = SphereNetRegressor(iterations=3, lipschitz=2.5 * K).fit(train.X[:500], train.Y[:500])
    assert fixed.lipschitz_selection_ is None and fixed.lipschitz_budget_ == pytest.approx(2.5 * K)


def test_one_dimensional_y_gives_one_dimensional_predictions(small):
    X, Y = small
    est = SphereNetRegressor(hidden=(8,), iterations=5).fit(X, Y[:, 2])
    F = est.predict(X)
    assert F.shape == (300,) and est.n_outputs_ == 1
    assert est.score(X, Y[:, 2]) == pytest.approx(_r2_reference(Y[:, 2:], F[:, None]), rel=1e-12)


def test_lists_and_float32(small):
    X, Y = small
    est = SphereNetRegressor(hidden=(8,), iterations=3, dtype="float32").fit(X[:50].tolist(), Y[:50].tolist())
    assert est.net_.dtype == np.float32
    assert est.predict(X[:50].tolist()).dtype == np.float64


def test_deterministic_for_equal_random_state(small):
    X, Y = small
    a = SphereNetRegressor(hidden=(8, 8), iterations=5, random_state=3).fit(X, Y).predict(X)
    b = SphereNetRegressor(hidden=(8, 8), iterations=5, random_state=3).fit(X, Y).predict(X)
    c = SphereNetRegressor(hidden=(8, 8), iterations=5, random_state=4).fit(X, Y).predict(X)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_random_state_none_records_a_repeatable_seed(small):
    X, Y = small
    est = SphereNetRegressor(hidden=(8,), iterations=3, random_state=None).fit(X, Y)
    again = SphereNetRegressor(hidden=(8,), iterations=3, random_state=est.seed_).fit(X, Y)
    np.testing.assert_array_equal(est.predict(X), again.predict(X))


def test_mm_methods_run_through_the_estimator(small):
    X, Y = small
    for method in ("mm", "mm-closed"):
        est = SphereNetRegressor(hidden=(8,), method=method, iterations=3).fit(X, Y)
        assert est.history_.method.startswith("mm") and est.n_iter_ <= 3


def test_verbose_prints_progress(small, capsys):
    X, Y = small
    SphereNetRegressor(hidden=(4,), iterations=4, verbose=True).fit(X[:40], Y[:40])
    assert "iteration 4/4" in capsys.readouterr().out


# --- parameters, repr, cloning -------------------------------------------------------------------------

def test_constructor_stores_parameters_only():
    est = SphereNetRegressor(hidden="nonsense", method="nope", iterations=-5)
    assert sorted(vars(est)) == PARAMS
    assert est.get_params() == {**SphereNetRegressor().get_params(), "hidden": "nonsense", "method": "nope",
                                "iterations": -5}


def test_set_params_and_unknown_names():
    est = SphereNetRegressor()
    assert est.set_params(iterations=7, method="mm") is est
    assert (est.iterations, est.method) == (7, "mm")
    with pytest.raises(ValueError, match="'lr'.*valid parameters: batch_size, dtype, hidden"):
        est.set_params(lr=0.1)


@settings(deadline=None, max_examples=30)
@given(st.fixed_dictionaries({}, optional={
    "hidden": st.lists(st.integers(1, 50), max_size=4).map(tuple), "iterations": st.integers(0, 1000),
    "method": st.sampled_from(["taylor", "mm", "mm-closed"]), "order": st.integers(1, 6),
    "batch_size": st.none() | st.integers(1, 100), "standardize": st.booleans(),
    "radius": st.sampled_from(["unit", "agd", 2.0]), "random_state": st.none() | st.integers(0, 99)}))
def test_get_params_clone_is_equal(params):
    est = SphereNetRegressor(**params)
    clone = type(est)(**est.get_params())
    assert clone.get_params() == est.get_params()
    assert all(getattr(clone, k) is getattr(est, k) for k in params)
    assert repr(clone) == repr(est)
    assert eval(repr(est), {"SphereNetRegressor": SphereNetRegressor}).get_params() == est.get_params()


def test_repr_shows_non_default_parameters_only():
    assert repr(SphereNetRegressor()) == "SphereNetRegressor()"
    assert repr(SphereNetRegressor(iterations=30, method="mm")) == \
        "SphereNetRegressor(method='mm', iterations=30)"
    assert repr(SphereNetRegressor(hidden=[25, 30, 15])) == "SphereNetRegressor(hidden=[25, 30, 15])"


def test_clone_of_fitted_is_unfitted_and_refits_identically(small):
    X, Y = small
    est = SphereNetRegressor(hidden=(6, 5), iterations=4, random_state=2).fit(X, Y)
    clone = type(est)(**est.get_params())
    with pytest.raises(NotFittedError):
        clone.predict(X)
    np.testing.assert_array_equal(clone.fit(X, Y).predict(X), est.predict(X))


# --- refusing bad input --------------------------------------------------------------------------------

def test_predict_before_fit_raises_not_fitted():
    est = SphereNetRegressor()
    for call in (lambda: est.predict(np.ones((2, 3))), lambda: est.score(np.ones((2, 3)), np.ones(2)),
                 lambda: est.rmse(np.ones((2, 3)), np.ones(2)), lambda: est.save("unused.npz")):
        with pytest.raises(NotFittedError, match="not fitted yet") as info:
            call()
        assert isinstance(info.value, ValueError) and isinstance(info.value, AttributeError)


def _with(A, index, value, dtype=float):
    A = A.astype(dtype)
    A[index] = value
    return A


@pytest.mark.parametrize("make, error, match", [
    (lambda X, Y: (_with(X, (3, 2), np.nan), Y), ValueError, r"X contains NaN or inf .*\(3, 2\)"),
    (lambda X, Y: (X, _with(Y, (1, 0), np.inf)), ValueError, r"y contains NaN or inf"),
    (lambda X, Y: (X, Y[:-1]), ValueError, "X has 20 rows but y has 19"),
    (lambda X, Y: (X[:0], Y[:0]), ValueError, "X is empty"),
    (lambda X, Y: (X[:, :0], Y), ValueError, "X has 0 feature"),
    (lambda X, Y: (X[:, :, None], Y), ValueError, r"X must be 2-D .*shape \(20, 12, 1\)"),
    (lambda X, Y: (X[:, 0], Y), ValueError, "X must be 2-D.*Reshape"),
    (lambda X, Y: (X, Y[:, :, None]), ValueError, "y must be 1-D .* or 2-D"),
    (lambda X, Y: (X.astype(str), Y), TypeError, "X must hold real numbers"),
    (lambda X, Y: ("abc", Y), TypeError, "X must be an array"),
    (lambda X, Y: (_with(X, (0, 0), {"a": 1}, object), Y), TypeError, "X must hold real numbers"),
    (lambda X, Y: (X + 1j, Y), ValueError, "X: Complex data not supported"),
    (lambda X, Y: (X, None), ValueError, "requires y to be passed"),
    (lambda X, Y: (X, 0 * Y + 2.0), ValueError, "y is constant"),
    (lambda X, Y: (_with(X, (slice(None), 3), 1.5), Y), ValueError, "column 3 is constant"),
    (lambda X, Y: ([[1.0, 2.0], [3.0]], Y[:2]), ValueError, "X is not a rectangular array"),
])
def test_fit_refuses_bad_data(small, make, error, match):
    X, Y = small
    with pytest.raises(error, match=match):
        SphereNetRegressor(hidden=(3,), iterations=1).fit(*make(X[:20], Y[:20]))


def test_fit_refuses_sparse_input(small):
    import scipy.sparse
    X, Y = small
    with pytest.raises(TypeError, match="X: sparse input is not supported"):
        SphereNetRegressor().fit(scipy.sparse.csr_matrix(X), Y)


@pytest.mark.parametrize("params, error, match", [
    ({"method": "sgd"}, ValueError, "unknown method 'sgd'; choose one of: taylor, mm, mm-frobenius"),
    ({"hidden": "25"}, TypeError, "hidden must be a sequence"),
    ({"hidden": (25, 0)}, ValueError, r"hidden\[1\] must be >= 1"),
    ({"hidden": (2.5,)}, TypeError, r"hidden\[0\] must be an integer"),
    ({"iterations": -1}, ValueError, "iterations must be >= 0"),
    ({"iterations": 2.0}, TypeError, "iterations must be an integer"),
    ({"order": 0}, ValueError, "order must be >= 1"),
    ({"batch_size": 0}, ValueError, "batch_size must be >= 1"),
    ({"radius": "wide"}, ValueError, "unknown radius rule 'wide'"),
    ({"radius": -1.0}, ValueError, "radius must be > 0"),
    ({"dtype": "int8"}, ValueError, "dtype must be 'float32' or 'float64'"),
    ({"dtype": "float16"}, ValueError, "dtype must be 'float32' or 'float64'"),
    ({"random_state": -1}, ValueError, "random_state must be >= 0"),
    ({"random_state": "seed"}, TypeError, "random_state must be an integer"),
    ({"standardize": "yes"}, TypeError, "standardize must be True or False"),
])
def test_fit_refuses_bad_parameters(small, params, error, match):
    X, Y = small
    with pytest.raises(error, match=match):
        SphereNetRegressor(**params).fit(X[:20], Y[:20])


def test_standardize_with_one_sample_is_refused_clearly(small):
    X, Y = small
    with pytest.raises(ValueError, match="n_samples=1"):
        SphereNetRegressor(standardize=True, scaling="paper").fit(X[:1], Y[:1])
    with pytest.raises(ValueError, match="n_samples=1"):
        SphereNetRegressor().fit(X[:1], Y[:1])


@pytest.mark.parametrize("make, match", [
    (lambda X, Y: (_with(X, 5, 0.0), Y), "X: row 5 has zero norm"),
    (lambda X, Y: (X, 0 * Y), "all target rows are zero"),
])
def test_paper_scaling_refuses_what_it_cannot_scale(small, make, match):
    X, Y = small
    with pytest.raises(ValueError, match=match):
        SphereNetRegressor(hidden=(3,), iterations=1, scaling="paper").fit(*make(X[:20], Y[:20]))


@pytest.mark.parametrize("params, match", [
    ({"lipschitz": -1.0}, "lipschitz must be > 0"), ({"lipschitz": float("nan")}, "lipschitz must be finite"),
    ({"scaling": "paper", "lipschitz": 1.0}, "lipschitz applies to scaling='standard'"),
    ({"standardize": True}, "standardize=True applies to scaling='paper'"), ({"scaling": "unit"}, "scaling"),
])
def test_budget_options_are_checked(small, params, match):
    X, Y = small
    with pytest.raises(ValueError, match=match):
        SphereNetRegressor(hidden=(3,), iterations=1, **params).fit(X[:20], Y[:20])


def test_predict_and_score_refuse_mismatched_input(fitted, problem):
    _, test = problem
    with pytest.raises(ValueError, match="X has 11 features, but SphereNetRegressor is expecting 12"):
        fitted.predict(test.X[:, :11])
    with pytest.raises(ValueError, match="X: row 0 has zero norm"):
        fitted.predict(np.zeros((2, 12)))
    with pytest.raises(ValueError, match="X has 10 rows but y has 9"):
        fitted.score(test.X[:10], test.Y[:9])
    with pytest.raises(ValueError, match="y has 2 outputs, expected 3"):
        fitted.rmse(test.X[:10], test.Y[:10, :2])


def test_score_on_constant_targets_follows_the_force_finite_rule(fitted, problem):
    _, test = problem
    F = fitted.predict(test.X[:5])
    assert fitted.score(test.X[:5], F) == 1.0                       # exact prediction
    assert fitted.score(test.X[:5], np.tile(F[0] + 1.0, (5, 1))) == 0.0   # constant, missed


# --- persistence -----------------------------------------------------------------------------------------

def test_save_load_round_trip_is_exact(fitted, problem, tmp_path):
    _, test = problem
    path = fitted.save(tmp_path / "model.npz")
    loaded = SphereNetRegressor.load(path)
    np.testing.assert_array_equal(loaded.predict(test.X), fitted.predict(test.X))
    assert loaded.get_params() == fitted.get_params()
    assert loaded.scaling_ == fitted.scaling_
    assert loaded.history_.loss_train == fitted.history_.loss_train
    assert loaded.history_.tau == fitted.history_.tau
    assert (loaded.n_iter_, loaded.seed_, loaded.lipschitz_bound_) == \
        (fitted.n_iter_, fitted.seed_, fitted.lipschitz_bound_)


def test_save_load_keeps_one_dimensional_targets_and_parameter_types(small, tmp_path):
    X, Y = small
    est = SphereNetRegressor(hidden=[5], radius=(1.0, 2.0), iterations=np.int64(2), dtype=np.float32)
    est.fit(X, Y[:, 0])
    loaded = SphereNetRegressor.load(est.save(tmp_path / "m.npz"))
    assert loaded.hidden == [5] and loaded.radius == (1.0, 2.0) and loaded.dtype is np.float32
    assert loaded.iterations == 2 and loaded.predict(X).shape == (300,)
    assert loaded.net_.dtype == np.float32
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))


def test_load_refuses_tampered_and_foreign_files(fitted, tmp_path):
    path = fitted.save(tmp_path / "model.npz")
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["W0"] = arrays["W0"].copy()
    arrays["W0"][0, 0] += 1e-9
    np.savez(tmp_path / "tampered.npz", **arrays)
    with pytest.raises(ValueError, match="checksum mismatch"):
        SphereNetRegressor.load(tmp_path / "tampered.npz")

    from spherenet.results import save_weights
    state = json.loads(str(arrays["state"]))
    foreign = {k: v for k, v in arrays.items() if k not in ("_sha256", "radii") and not k.startswith("W")}
    foreign["state"] = np.array(json.dumps({**state, "kind": "SomethingElse"}))
    weights = [arrays[f"W{i}"] for i in range(4)]
    save_weights(tmp_path / "foreign.npz", weights, arrays["radii"], **foreign)
    with pytest.raises(ValueError, match="not a SphereNetRegressor file"):
        SphereNetRegressor.load(tmp_path / "foreign.npz")


# --- scikit-learn, when installed ------------------------------------------------------------------------

# The checks each scaling cannot pass, with the reason. Keep these lists as short as honesty allows.
EXPECTED_FAILED_CHECKS = {
    "standard": {},
    "paper": {"check_estimators_dtypes": "its integer-cast X has an all-zero row (row 15); the paper's per-sample "
                                         "scaling x / ||x|| is undefined there and SphereNetRegressor refuses it "
                                         "(documented zero-norm rule)"},
}


@pytest.mark.filterwarnings("ignore:Estimator SphereNetRegressor does not inherit:UserWarning")
@pytest.mark.parametrize("scaling", ["standard", "paper"])
def test_sklearn_check_estimator(scaling):
    pytest.importorskip("sklearn")
    from sklearn.utils.estimator_checks import check_estimator
    # 25 iterations and a given budget keep the ~50 fits cheap; R² on the check's data is 0.8.
    options = {"lipschitz": 10.0} if scaling == "standard" else {}
    results = check_estimator(SphereNetRegressor(iterations=25, scaling=scaling, **options),
                              expected_failed_checks=EXPECTED_FAILED_CHECKS[scaling], on_skip=None)
    status = {r["check_name"]: r["status"] for r in results}
    assert {name for name, s in status.items() if s == "xfail"} == set(EXPECTED_FAILED_CHECKS[scaling])
    assert "check_regressors_train" in status and status["check_regressors_train"] == "passed"


def test_sklearn_clone_and_not_fitted_error_and_r2(fitted, problem):
    pytest.importorskip("sklearn")
    from sklearn.base import clone
    from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    from sklearn.metrics import r2_score
    est = SphereNetRegressor(iterations=3, method="mm")
    assert clone(est).get_params() == est.get_params()
    with pytest.raises(SklearnNotFittedError):
        est.predict(np.ones((2, 12)))
    _, test = problem
    assert fitted.score(test.X, test.Y) == pytest.approx(r2_score(test.Y, fitted.predict(test.X)), rel=1e-12)


def test_method_none_is_the_automatic_rule_for_the_batch_size(small):
    X, Y = small
    full = SphereNetRegressor(hidden=(4,), iterations=2, lipschitz=300.0, batch_size=None).fit(X, Y)
    batched = SphereNetRegressor(hidden=(4,), iterations=2, lipschitz=300.0, batch_size=64).fit(X, Y)
    default = SphereNetRegressor(hidden=(4,), iterations=2, lipschitz=300.0).fit(X, Y)
    assert [e.history_.method for e in (full, batched, default)] == ["geo-cg-layer", "geo-batch", "geo-batch"]
    assert full.get_params()["method"] is None
