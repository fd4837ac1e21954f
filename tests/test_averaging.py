"""The model a mini-batch run reports: the exponential average of its iterates, back on the spheres."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet.averaging import MEMORY, IterateAverage, averaged_weights
from spherenet.train import train, trained_network

WIDTHS = (4, 6, 5, 2)


def data(seed=0, n=96):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, WIDTHS[0]))
    X /= 1.5 * np.linalg.norm(X, axis=1).max()
    return X, 0.05 * np.tanh(X[:, :2] @ rng.standard_normal((2, 2)))


def random_points(rng, k, radii):
    """``k`` iterates: lists of matrices on their spheres."""
    shapes = [(WIDTHS[i + 1], WIDTHS[i]) for i in range(len(WIDTHS) - 1)]
    out = []
    for _ in range(k):
        Ws = [rng.standard_normal(s) for s in shapes]
        out.append([W * (mu / np.linalg.norm(W)) for W, mu in zip(Ws, radii)])
    return out


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), k=st.integers(1, 40), rho=st.sampled_from([0.5, 0.9, MEMORY, 0.99]))
def test_the_model_is_the_weighted_mean_projected_onto_the_spheres(seed, k, rho):
    """Against the sum written out: A = sum_j (1 - rho) rho^(k-j) W_j / (1 - rho^k), M_i = mu_i A_i/||A_i||."""
    rng = np.random.default_rng(seed)
    radii = rng.uniform(0.5, 2.0, len(WIDTHS) - 1)
    points = random_points(rng, k, radii)
    average = IterateAverage(rho, radii)
    for W in points:
        average.fold(W)
    model = average.model(points[-1])
    weights = [(1 - rho) * rho ** (k - 1 - j) for j in range(k)]
    for i, mu in enumerate(radii):
        A = sum(w * W[i] for w, W in zip(weights, points)) / sum(weights)
        np.testing.assert_allclose(model[i], mu * A / np.linalg.norm(A), rtol=1e-12, atol=1e-14)
        assert abs(np.linalg.norm(model[i]) - mu) <= 1e-14 * mu


def test_nothing_before_the_first_fold_and_dtype_kept():
    radii = np.ones(3)
    average = IterateAverage(MEMORY, radii)
    points = [[W.astype(np.float32) for W in p] for p in random_points(np.random.default_rng(1), 2, radii)]
    assert average.model(points[0]) is None and average.state() == {}
    average.fold(points[0])
    assert all(M.dtype == np.float32 for M in average.model(points[1]))
    np.testing.assert_allclose(average.model(points[1])[0], points[0][0], rtol=1e-6)   # one fold: that point


def test_a_cancelled_layer_is_reported_as_the_iterates():
    radii = np.ones(3)
    p = random_points(np.random.default_rng(2), 1, radii)[0]
    average = IterateAverage(0.5, radii)
    average.fold(p)
    average.fold([-W if i == 1 else W for i, W in enumerate(p)])    # layer 1: W then -W, weights 1/3 and 2/3
    average.fold([W if i == 1 else W for i, W in enumerate(p)])     # ... then W: 1/7 - 2/7 + 4/7 = 3/7 of W
    assert np.allclose(average.model(p)[1], p[1])
    average = IterateAverage(0.5, radii)
    average.fold(p)
    average.fold([-W if i == 1 else W for i, W in enumerate(p)])
    average.sum[:] = 0.0                                               # every layer cancelled
    last = random_points(np.random.default_rng(3), 1, radii)[0]
    assert all(np.array_equal(M, W) for M, W in zip(average.model(last), last))


def test_state_round_trip_and_bad_states():
    radii = np.ones(3)
    points = random_points(np.random.default_rng(4), 3, radii)
    average = IterateAverage(MEMORY, radii)
    for W in points:
        average.fold(W)
    size = sum(W.size for W in points[0])
    copy = IterateAverage(MEMORY, radii)
    copy.restore({k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in average.state().items()}, size)
    assert all(np.array_equal(a, b) for a, b in zip(copy.model(points[0]), average.model(points[0])))
    copy.restore({"rng": 1}, size)                                     # none kept: start afresh
    assert copy.model(points[0]) is None
    good = average.state()
    for bad in ({**good, "average": good["average"][:-1]}, {**good, "average_weight": 0.0},
                {**good, "average": np.full(size, np.nan)}, {"average": good["average"]},
                {**good, "average": "junk"}):
        with pytest.raises(ValueError, match="state 'average'"):
            copy.restore(bad, size)


@pytest.mark.parametrize("memory", [1.0, -0.1, float("nan"), "sometimes"])
def test_bad_memory_is_refused_in_one_line(memory):
    X, Y = data()
    with pytest.raises(ValueError, match="average must be"):
        train(sn.NormalisedMLP(WIDTHS, seed=1), X, Y, "geo-batch", 2, batch_size=16, average=memory)


@pytest.mark.parametrize("norm", ["frobenius", "spectral"])
def test_the_average_changes_what_is_reported_not_how_the_run_trains(norm):
    X, Y = data()
    Xt, Yt = data(seed=5, n=40)
    runs = {}
    for average in ("auto", None):
        net = sn.NormalisedMLP(WIDTHS, seed=1)
        runs[average] = (net, train(net, X, Y, "geo-batch", 30, Xt, Yt, batch_size=16, seed=2, norm=norm,
                                    eval_every=10, average=average))
    (net_a, h_a), (net_n, h_n) = runs["auto"], runs[None]
    for key in ("tau", "beta", "predicted", "actual", "halvings", "drift"):
        assert getattr(h_a, key) == getattr(h_n, key), key              # the same iterates, bit for bit
    assert all(np.array_equal(a, b) for a, b in zip(net_a.weights, net_n.weights))
    assert "average" in h_a.batch_state and "average" not in h_n.batch_state
    assert h_a.loss_test[0] == h_n.loss_test[0]                        # before any step: the start
    assert h_a.loss_test[-1] != h_n.loss_test[-1]
    # each run's last evaluation is of the network trained_network returns, recomputed by network.forward
    for net, h in runs.values():
        model = trained_network(net, h, norm)
        F = model.forward(Xt)
        assert np.isclose(0.5 * np.mean(np.sum((F - Yt) ** 2, axis=1)), h.loss_test[-1], rtol=1e-10)
    model = trained_network(net_a, h_a, norm)
    if norm == "spectral":
        assert np.isclose(model.spectral_norm_product(), np.prod(net_a.radii), rtol=1e-12)
    else:
        np.testing.assert_allclose([np.linalg.norm(W) for W in model.weights], net_a.radii, rtol=1e-14)
    expected = averaged_weights(h_a, net_a.weights, net_a.radii)
    assert not any(np.array_equal(a, b) for a, b in zip(expected, net_a.weights))


def test_full_batch_reports_the_last_iterate():
    X, Y = data()
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    h = train(net, X, Y, "geo-cg-layer", 5, X, Y)
    assert "average" not in h.batch_state
    assert all(np.array_equal(a, b) for a, b in zip(trained_network(net, h).weights, net.weights))
    net2 = sn.NormalisedMLP(WIDTHS, seed=1)
    h2 = train(net2, X, Y, "geo-cg-layer", 5, X, Y, average=0.9)       # asked for: kept on full batch too
    assert "average" in h2.batch_state and h2.tau == h.tau
