"""The Lipschitz budget and certificate: the standard scaling, the input Jacobians against finite
differences, the certificate against sampled pairs, the budget rule, and the paper pipeline's μ-invariance."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra.numpy import arrays

import spherenet as sn
from spherenet import budget, lipschitz
from spherenet.data import PaperScaling, StandardScaling, label_noise_rmse
from spherenet.data.simulator import _run
from spherenet.experiments import run, scaled_arrays
from spherenet.train import train

finite = st.floats(-1e3, 1e3, allow_nan=False, allow_subnormal=False)


def raw_data(seed=0, n=200, d=5, m=2):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, d)) * rng.uniform(0.01, 10, d) + rng.uniform(-5, 5, d)
    Y = np.tanh(X @ rng.standard_normal((d, m))) * 3 + 1.0
    return X, Y


def raw_map(net, scaling):
    return lambda X: scaling.inverse_targets(net.forward(scaling.transform_inputs(X)))


def test_standard_scaling_formulas_and_round_trip():
    X, Y = raw_data()
    s = StandardScaling.fit(X, Y, lipschitz=7.5, radii_product=2.0)
    U = s.transform_inputs(X)
    assert U.shape == (200, 6) and np.linalg.norm(U, axis=1).max() == pytest.approx(1.0, abs=1e-15)
    a = s.input_factor
    np.testing.assert_allclose(U[:, :5], a * (X - X.mean(0)) / X.std(0), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(U[:, 5], a)                                     # the bias feature: one std
    assert s.target_factor * 2.0 * a / X.std(0).min() == pytest.approx(7.5, rel=1e-14) == s.lipschitz
    np.testing.assert_allclose(s.inverse_targets(s.transform_targets(Y)), Y, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(s.transform_targets(Y).mean(0), 0, atol=1e-13)
    assert s.rmse_newtons(0.5 * 0.04) == pytest.approx(0.2 * s.target_factor)
    assert StandardScaling.from_dict(s.to_dict()) == s
    assert sn.data.scaling_from_dict(s.to_dict()) == s
    np.testing.assert_allclose(s.input_jacobian() @ (X[1] - X[0]), U[1] - U[0], rtol=1e-12, atol=1e-15)


def test_standard_scaling_refuses_bad_input_with_its_place():
    X, Y = raw_data()
    X[:, 3] = 2.5
    with pytest.raises(ValueError, match="column 3 is constant"):
        StandardScaling.fit(X, Y, 1.0)
    X, Y = raw_data()
    for K in (0.0, -1.0, np.inf, np.nan):
        with pytest.raises(ValueError, match="lipschitz"):
            StandardScaling.fit(X, Y, K)
    with pytest.raises(ValueError, match="overflow"):
        StandardScaling.fit(X, Y * 1e300, 1e-300)
    s = StandardScaling.fit(X * 1e200, Y, 1.0)                  # huge features: scaled, not overflowed
    assert np.all(np.isfinite(s.transform_inputs(X * 1e200)))
    with pytest.raises(ValueError, match="columns"):
        s.transform_inputs(X[:, :4])


def test_input_jacobians_match_central_differences():
    net = sn.NormalisedMLP([4, 7, 6, 3], seed=3)
    X = np.random.default_rng(1).standard_normal((20, 4))
    J = lipschitz.input_jacobians(net.weights, X)
    h = 1e-6
    for n in range(20):
        fd = np.column_stack([(net.forward(X[n:n + 1] + h * e) - net.forward(X[n:n + 1] - h * e))[0] / (2 * h)
                              for e in np.eye(4)])
        np.testing.assert_allclose(J[n], fd, rtol=1e-6, atol=1e-9)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), K=st.floats(0.01, 100.0))
def test_certificate_bounds_every_sampled_pair_and_the_local_constants(seed, K):
    X, Y = raw_data(seed)
    net = sn.NormalisedMLP([6, 8, 5, 2], seed=seed)
    s = StandardScaling.fit(X, Y, K, float(np.prod(net.radii)))
    cert = lipschitz.certificate(net.weights, s, [s.transform_inputs(X)])
    assert 0 < cert["lipschitz_lower"] <= cert["lipschitz_bound"] <= cert["lipschitz_budget"] * (1 + 1e-12)
    assert cert["lipschitz_budget"] == pytest.approx(K, rel=1e-12)
    f = raw_map(net, s)
    rng = np.random.default_rng(seed)
    A, B = X[rng.integers(0, 200, 300)], X[rng.integers(0, 200, 300)] + rng.standard_normal((300, 5))
    ratio = np.linalg.norm(f(A) - f(B), axis=1) / np.linalg.norm(A - B, axis=1)
    assert ratio.max() <= cert["lipschitz_bound"] * (1 + 1e-12)
    # the local constant is attained: along the top right-singular vector, a tiny step moves by it
    J = lipschitz.input_jacobians(net.weights, s.transform_inputs(X)) @ s.input_jacobian() * s.target_factor
    n = int(np.argmax(np.linalg.norm(J, ord=2, axis=(1, 2))))
    v = np.linalg.svd(J[n])[2][0]
    step = 1e-7 * v
    moved = np.linalg.norm(f(X[n:n + 1] + step) - f(X[n:n + 1])) / np.linalg.norm(step)
    assert moved == pytest.approx(cert["lipschitz_lower"], rel=1e-5)


@settings(max_examples=20, deadline=None)
@given(arrays(np.float64, (12, 3), elements=finite), st.floats(0.1, 10.0))
def test_paper_scaling_certificate_holds_on_normalised_inputs(W0, gain):
    U = W0 / np.maximum(np.linalg.norm(W0, axis=1, keepdims=True), 1e-3)
    net = sn.NormalisedMLP([3, 5, 2], seed=1)
    s = PaperScaling(p_op=net.spectral_norm_product(), y_max=gain, n_features=3, n_targets=2)
    cert = lipschitz.certificate(net.weights, s, [U])
    F = s.inverse_targets(net.forward(U))
    gaps = np.linalg.norm(F[:, None] - F[None], axis=2)
    dist = np.linalg.norm(U[:, None] - U[None], axis=2)
    assert np.all(gaps <= cert["lipschitz_bound"] * dist * (1 + 1e-12) + 1e-300)
    assert cert["lipschitz_lower"] <= cert["lipschitz_bound"] <= cert["lipschitz_budget"] * (1 + 1e-12)


def test_choose_budget_takes_the_smallest_within_tolerance():
    rungs = [{"lipschitz": 1.0, "rmse_validation": 2.0}, {"lipschitz": 10.0, "rmse_validation": 1.04},
             {"lipschitz": 100.0, "rmse_validation": 1.0}, {"lipschitz": 1000.0, "rmse_validation": 1.2}]
    assert budget.choose_budget(rungs)["lipschitz"] == 10.0
    assert budget.choose_budget(rungs, tolerance=0.01)["lipschitz"] == 100.0


def test_budget_for_gives_the_largest_scaled_target():
    X, Y = raw_data()
    for rho in (0.5, 1e-3):
        K = budget.budget_for(rho, X, Y, radii_product=3.0)
        s = StandardScaling.fit(X, Y, K, 3.0)
        assert np.linalg.norm(s.transform_targets(Y), axis=1).max() == pytest.approx(rho, rel=1e-12)


def test_run_selects_the_budget_and_reports_the_certificate():
    r, arrays_ = run(dict(n_samples=1500, iterations=10, widths=(12, 10, 3)))
    table = r["lipschitz_selection"]
    assert table["chosen"] == r["lipschitz"] == budget.choose_budget(table["rungs"])["lipschitz"]
    assert [g["rho"] for g in table["rungs"]] == list(budget.LADDER[:len(table["rungs"])])
    assert 0 < r["lipschitz_lower"] <= r["lipschitz_bound"] <= r["lipschitz_budget"] * (1 + 1e-12)
    again, _ = run(dict(n_samples=1500, iterations=10, widths=(12, 10, 3)))
    assert again["lipschitz"] == r["lipschitz"] and again["loss_train"] == r["loss_train"]      # deterministic
    fixed, _ = run(dict(n_samples=1500, iterations=10, widths=(12, 10, 3), lipschitz=123.0))
    assert fixed["lipschitz_selection"] is None and fixed["lipschitz_budget"] == pytest.approx(123.0)
    with pytest.raises(ValueError, match="standard scaling"):
        run(dict(n_samples=1500, iterations=1, scaling="paper", lipschitz=1.0))


def test_every_rung_trains_as_long_as_the_run(monkeypatch):
    seen = []
    real = budget.select_lipschitz

    def spy(*args, **kwargs):
        K, table = real(*args, **kwargs)
        seen.append((kwargs["iterations"], kwargs["max_seconds"], table["iterations"], table["max_seconds"]))
        return K, table
    monkeypatch.setattr(budget, "select_lipschitz", spy)
    small = dict(n_samples=1500, widths=(12, 10, 3), batch_size=200)
    run(dict(small, iterations=10))                             # shorter than RUNG_ITERATIONS: 200
    run(dict(small, iterations=260))
    run(dict(small, iterations=10 ** 6, max_seconds=0.05))     # stopped by the clock, each rung too
    assert seen == [(10, None, 200, None), (260, None, 260, None), (10 ** 6, 0.05, 10 ** 6, 0.05)]


def test_paper_pipeline_is_invariant_to_the_radii():
    """The paper scales targets by P_op = prod ||W_i||_2 at initialisation, which grows as prod mu_i, and the
    network is positively homogeneous in every W_i: the radii cancel, so the budget is fixed by the data."""
    data = sn.data.default_problem(seed=0, n_samples=1200)
    predictions = []
    for radius in (1.0, 3.0):
        net = sn.NormalisedMLP([12, 9, 7, 3], radius=radius, seed=2)
        (X, Y, Xt, _), scaling = scaled_arrays(*data, net)
        train(net, X, Y, "taylor", 15)
        predictions.append(scaling.inverse_targets(net.forward(Xt)))
    np.testing.assert_allclose(predictions[0], predictions[1], rtol=1e-9, atol=1e-9)


def test_label_noise_is_the_true_forces_error_on_the_labels():
    from spherenet.data import QuadrotorParams
    params = QuadrotorParams()
    res = _run(["waypoints", "figure8"], 300, 4, params, None, None, {})
    direct = np.sqrt(np.mean(np.sum((res.data.Y - res.true_force.reshape(-1, 3)) ** 2, axis=1)))
    assert label_noise_rmse(res.data) == pytest.approx(direct, rel=1e-12)
    assert 0 < direct < np.sqrt(np.mean(np.sum(res.data.Y ** 2, axis=1)))


def test_input_jacobians_of_a_biased_mlp_match_central_differences():
    from spherenet.baselines.mlp import init_mlp, mlp_forward
    params = init_mlp([3, 6, 5, 2], seed=4)
    X = np.random.default_rng(2).standard_normal((15, 3))
    J = lipschitz.input_jacobians(params[0::2], X, biases=params[1::2])
    h = 1e-6
    for n in range(15):
        fd = np.column_stack([(mlp_forward(params, X[n:n + 1] + h * e) - mlp_forward(params, X[n:n + 1] - h * e))[0]
                              / (2 * h) for e in np.eye(3)])
        np.testing.assert_allclose(J[n], fd, rtol=1e-6, atol=1e-9)


def test_adams_empirical_lipschitz_is_the_raw_maps_local_slope():
    from spherenet.baselines import run_baseline
    from spherenet.experiments import _baseline_lipschitz_lower
    X, Y = raw_data(3, n=120)
    predictor, _, _ = run_baseline("adam", (5, 7, 2), X, Y, iterations=30, lr=0.01)
    lower = _baseline_lipschitz_lower(predictor, [X[:40]])
    h = 1e-6 * X.std(0)
    norms = []
    for n in range(40):
        J = np.column_stack([(predictor(X[n:n + 1] + hj * e) - predictor(X[n:n + 1] - hj * e))[0] / (2 * hj)
                             for hj, e in zip(h, np.eye(5))])
        norms.append(np.linalg.norm(J, 2))
    assert lower == pytest.approx(max(norms), rel=1e-5)
