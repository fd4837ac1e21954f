"""The paper's scaling: unit-norm inputs, train-max target scaling, inverse, RMSE in newtons, JSON."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spherenet.data import PaperScaling


def data(n=200, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(1.0, 2.0, (n, 12)), rng.normal(0.0, 3.0, (n, 3))


def test_inputs_unit_norm_and_targets_scaled_by_train_max():
    X, Y = data()
    s = PaperScaling.fit(X, Y, p_op=2.5)
    Xs, Ys = s.transform_inputs(X), s.transform_targets(Y)
    np.testing.assert_allclose(np.linalg.norm(Xs, axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(Xs * np.linalg.norm(X, axis=1, keepdims=True), X, rtol=1e-13)
    assert np.linalg.norm(Ys, axis=1).max() == pytest.approx(2.5, rel=1e-14)
    assert s.y_max == pytest.approx(np.linalg.norm(Y, axis=1).max(), rel=1e-15)


def test_test_targets_use_the_training_maximum():
    X, Y = data()
    s = PaperScaling.fit(X, Y, p_op=1.7)
    Y_test = 2.0 * Y[:10]
    Ys = s.transform_targets(Y_test)
    np.testing.assert_allclose(Ys, Y_test * 1.7 / s.y_max, rtol=1e-15)
    assert np.linalg.norm(Ys, axis=1).max() > 1.7
    np.testing.assert_allclose(s.inverse_targets(Ys), Y_test, rtol=1e-14)


def test_rmse_newtons_is_rms_of_the_error_norm():
    X, Y = data(seed=1)
    s = PaperScaling.fit(X, Y, p_op=0.8)
    Ys = s.transform_targets(Y)
    pred = Ys + np.random.default_rng(2).normal(0, 0.05, Ys.shape)
    J = 0.5 * np.mean(np.sum((pred - Ys) ** 2, axis=1))
    direct = np.sqrt(np.mean(np.sum((s.inverse_targets(pred) - Y) ** 2, axis=1)))
    assert s.rmse_newtons(J) == pytest.approx(direct, rel=1e-12)
    np.testing.assert_allclose(s.rmse_newtons(np.array([J, 4 * J])), [direct, 2 * direct], rtol=1e-12)
    assert s.rmse_newtons(0.0) == 0.0
    with pytest.raises(ValueError, match="J"):
        s.rmse_newtons(-1.0)


@settings(deadline=None, max_examples=30)
@given(st.floats(1e-3, 1e3), st.integers(0, 1000))
def test_input_scaling_is_invariant_to_a_global_factor(c, seed):
    X, Y = data(20, seed)
    s = PaperScaling.fit(X, Y, p_op=1.0)
    np.testing.assert_allclose(s.transform_inputs(c * X), s.transform_inputs(X), rtol=1e-12, atol=1e-15)


def test_zero_norm_rows_and_zero_targets_raise_never_nan():
    X, Y = data()
    X[7] = 0.0
    with pytest.raises(ValueError, match=r"X: row 7 has zero norm"):
        PaperScaling.fit(X, Y, p_op=1.0)
    X, Y = data()
    s = PaperScaling.fit(X, Y, p_op=1.0)
    bad = X[:5].copy()
    bad[3] = 0.0
    with pytest.raises(ValueError, match=r"X: row 3 has zero norm"):
        s.transform_inputs(bad)
    with pytest.raises(ValueError, match=r"Y: all target rows are zero"):
        PaperScaling.fit(X, np.zeros_like(Y), p_op=1.0)
    with pytest.raises(ValueError, match="p_op"):
        PaperScaling.fit(X, Y, p_op=0.0)
    with pytest.raises(ValueError, match="non-finite"):
        s.transform_inputs(np.full((2, 12), np.nan))
    with pytest.raises(ValueError, match="columns"):
        s.transform_inputs(X[:, :11])


def test_standardize_centres_features_before_the_unit_norm():
    X, Y = data()
    X[:, 5] = 3.0
    s = PaperScaling.fit(X, Y, p_op=1.0, standardize=True)
    assert s.standardize and s.constant_features == (5,)
    Xs = s.transform_inputs(X)
    Z = (X - X.mean(0)) / np.where(X.std(0) > 0, X.std(0), 1.0)
    np.testing.assert_allclose(Xs, Z / np.linalg.norm(Z, axis=1, keepdims=True), rtol=1e-12)
    assert np.all(Xs[:, 5] == 0.0)
    plain = PaperScaling.fit(X, Y, p_op=1.0)
    assert not plain.standardize and not np.allclose(plain.transform_inputs(X), Xs)


@pytest.mark.parametrize("standardize", [False, True])
def test_json_round_trip(standardize):
    X, Y = data()
    s = PaperScaling.fit(X, Y, p_op=3.3, standardize=standardize)
    back = PaperScaling.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s
    np.testing.assert_array_equal(back.transform_inputs(X), s.transform_inputs(X))
    with pytest.raises(ValueError, match="kind"):
        PaperScaling.from_dict({"p_op": 1.0})
    with pytest.raises(ValueError, match="missing the key"):
        PaperScaling.from_dict({"kind": "PaperScaling", "p_op": 1.0})
