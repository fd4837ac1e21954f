"""Baselines: biased-MLP gradient, each optimiser's step against its formula computed here independently,
the tuner's choice (validation only, never the test set), divergence, determinism, budgets, least squares."""
import json
import math
from functools import partial

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet import baselines as bl
from spherenet.baselines import mlp
from spherenet.train import History

from .strategies import widths as widths_strategy

WIDTHS = [5, 7, 6, 3]


def problem(N=40, widths=WIDTHS, seed=0, scale=0.1):
    """Unit-norm input rows (the paper's scaling), random targets."""
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, widths[0]))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    return X, scale * rng.standard_normal((N, widths[-1]))


def pattern(params, X):
    return [z > 0 for z in mlp._forward_cache(params, X).Z[:-1]]


# --- the biased MLP --------------------------------------------------------------------------------------

@settings(deadline=None, max_examples=25)
@given(widths=widths_strategy(min_layers=1, max_layers=4, max_width=7), seed=st.integers(0, 2**31),
       init=st.sampled_from(mlp.INITS))
def test_mlp_gradient_matches_central_differences(widths, seed, init):
    X, Y = problem(N=12, widths=widths, seed=seed)
    params = mlp.init_mlp(widths, init=init, seed=seed)
    J, grads = mlp.mlp_loss_and_grad(params, X, Y)
    assert J == pytest.approx(0.5 * np.sum((mlp.mlp_forward(params, X) - Y) ** 2) / len(X), rel=1e-14)
    rng = np.random.default_rng(seed + 1)
    h = 1e-3
    for k, G in enumerate(grads):            # one direction per array: a gradient put in the wrong slot fails
        U = rng.standard_normal(G.shape)
        moved = {s: [p + s * h * U if i == k else p for i, p in enumerate(params)] for s in (-2, -1, 1, 2)}
        # Smoothness needs the same ReLU pattern on the whole segment (no unit crosses 0).
        if any((a != b).any() for q in moved.values() for a, b in zip(pattern(params, X), pattern(q, X))):
            continue
        J_at = {s: mlp.mlp_loss(q, X, Y) for s, q in moved.items()}
        # Fourth-order central difference: truncation O(h^4), rounding O(eps J / h), both far below 1e-7.
        fd = (8 * (J_at[1] - J_at[-1]) - (J_at[2] - J_at[-2])) / (12 * h)
        exact = float(np.vdot(G, U))
        assert abs(fd - exact) <= 1e-7 * max(abs(exact), 1e-3 * np.linalg.norm(G) * np.linalg.norm(U)), (k, fd, exact)


def test_init_rules():
    p = mlp.init_mlp([4, 9, 2], init="pytorch", seed=3)
    assert all(np.abs(p[i]).max() <= 1 / np.sqrt(d) for i, d in [(0, 4), (1, 4), (2, 9), (3, 9)])
    assert np.abs(p[2]).max() > 0.5 / 3                      # uses the range, not a tiny one
    g = mlp.init_mlp([4, 9, 2], init="glorot", seed=3)
    assert not g[1].any() and not g[3].any()
    assert np.abs(g[0]).max() <= np.sqrt(6 / 13) and np.abs(g[0]).max() > 0.5 * np.sqrt(6 / 13)
    assert all(np.array_equal(a, b) for a, b in zip(p, mlp.init_mlp([4, 9, 2], seed=3)))
    assert not np.array_equal(p[0], mlp.init_mlp([4, 9, 2], seed=4)[0])
    p32 = mlp.init_mlp([4, 9, 2], seed=3, dtype=np.float32)
    assert p32[0].dtype == np.float32 and np.allclose(p32[0], p[0], rtol=1e-7)


# --- one step of each optimiser, against its formula written here ------------------------------------------

def test_sgd_step_is_minus_lr_gradient():
    X, Y = problem()
    lr = 0.3
    params, h = bl.train_sgd(WIDTHS, X, Y, lr, iterations=1, seed=5)
    p0 = mlp.init_mlp(WIDTHS, seed=5)
    J0, g0 = mlp.mlp_loss_and_grad(p0, X, Y)
    for p, q, g in zip(params, p0, g0):
        np.testing.assert_allclose(p, q - lr * g, rtol=0, atol=1e-15)
    assert h.loss_train[0] == pytest.approx(J0, rel=1e-14)
    assert h.actual[0] == pytest.approx(mlp.mlp_loss(params, X, Y) - J0, rel=1e-10, abs=1e-16)
    assert h.info["lr"] == [lr]


def test_adam_first_step_closed_form_and_second_step():
    p = [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([3.0, -1.0])]
    g1 = [np.array([[0.2, -1e-3], [4.0, 0.0]]), np.array([-5e-9, 7.0])]
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    adam = bl.Adam(lr, (b1, b2), eps)
    up = adam(p, g1)
    for new, q, g in zip(up.params, p, g1):
        np.testing.assert_allclose(new, q - lr * g / (np.abs(g) + eps), rtol=1e-14, atol=1e-18)
    assert up.params[0][1, 1] == 0.0 and abs(up.params[1][0] - 3.0) < lr / 2   # |g| ~ eps: a short step
    g2 = [2 * g + 0.1 for g in g1]
    up2 = adam(up.params, g2)
    for new, q, ga, gb in zip(up2.params, up.params, g1, g2):
        m = (b1 * (1 - b1) * ga + (1 - b1) * gb) / (1 - b1**2)
        v = (b2 * (1 - b2) * ga**2 + (1 - b2) * gb**2) / (1 - b2**2)
        np.testing.assert_allclose(new, q - lr * m / (np.sqrt(v) + eps), rtol=1e-13)
    assert all(np.array_equal(a, b) for a, b in zip(p, [np.array([[1.0, -2.0], [0.5, 0.0]]), np.array([3.0, -1.0])]))


def test_train_adam_first_step():
    X, Y = problem()
    lr = 1e-2
    params, _ = bl.train_adam(WIDTHS, X, Y, lr, iterations=1, seed=2)
    p0 = mlp.init_mlp(WIDTHS, seed=2)
    _, g0 = mlp.mlp_loss_and_grad(p0, X, Y)
    for p, q, g in zip(params, p0, g0):
        np.testing.assert_allclose(p, q - lr * g / (np.abs(g) + 1e-8), rtol=1e-14, atol=1e-16)


def test_rsgd_step_matches_retraction_and_keeps_norms():
    X, Y = problem()
    net = sn.NormalisedMLP(WIDTHS, radius="agd", seed=1)
    W0 = [W.copy() for W in net.weights]
    lr = 5.0
    one, h1 = bl.train_rsgd(net, X, Y, lr, iterations=1)
    _, G = sn.loss_and_grad(W0, X, Y)
    for W, W_new, g, mu in zip(W0, one.weights, G, net.radii):
        grad = g - np.sum(W * g) / mu**2 * W
        step = W - lr * grad
        np.testing.assert_allclose(W_new, mu * step / np.sqrt(np.sum(step**2)), rtol=1e-13, atol=1e-16)
    assert h1.beta[0] == pytest.approx(sum(mu * np.linalg.norm(g - np.sum(W * g) / mu**2 * W)
                                           for W, g, mu in zip(W0, G, net.radii)), rel=1e-12)
    assert all(np.array_equal(a, b) for a, b in zip(net.weights, W0))            # input net untouched
    many, h = bl.train_rsgd(net, X, Y, 50.0, iterations=2000)
    assert h.iterations == 2000 and max(h.drift) <= 1e-12
    assert max(abs(np.linalg.norm(W) - mu) / mu for W, mu in zip(many.weights, net.radii)) <= 1e-12
    assert h.loss_train[-1] < 0.9 * h.loss_train[0]                               # it does train


def test_agd_init_is_scaled_semi_orthogonal():
    widths = [5, 9, 4, 4, 2]
    weights = bl.agd_init(widths, seed=7)
    for W, d_in, d_out in zip(weights, widths[:-1], widths[1:]):
        assert W.shape == (d_out, d_in)
        gram = W.T @ W if d_out >= d_in else W @ W.T
        np.testing.assert_allclose(gram, d_out / d_in * np.eye(min(d_in, d_out)), atol=1e-13)
    assert not np.allclose(weights[1], bl.agd_init(widths, seed=8)[1])


def agd_reference_loss_and_grad(weights, X, Y):
    """The reference code's network and loss, written out here: ``h_k = sqrt(2) relu(W_k h_(k-1))``,
    ``f = W_L h_(L-1)``, ``ℓ = 1/(2 d_L N) Σ ||f - y||²`` (jxbz/agd architecture/fcn.py; paper section 3)."""
    H, Z = [X], []
    for k, W in enumerate(weights):
        Z.append(H[-1] @ W.T)
        if k < len(weights) - 1:
            H.append(np.sqrt(2) * np.maximum(Z[-1], 0))
    N, d_L = Y.shape
    R = Z[-1] - Y
    dZ, grads = R / (N * d_L), [None] * len(weights)
    for k in range(len(weights) - 1, -1, -1):
        grads[k] = dZ.T @ H[k]
        if k:
            dZ = np.sqrt(2) * (dZ @ weights[k]) * (Z[k - 1] > 0)
    return 0.5 * np.sum(R ** 2) / (N * d_L), grads, Z[-1]


def test_agd_step_matches_the_authors_definition():
    X, Y = problem(widths=[5, 8, 6, 3])
    widths = [5, 8, 6, 3]
    weights, h = bl.train_agd(widths, X, Y, iterations=1, seed=4)
    W0 = bl.agd_init(widths, seed=4)
    ell, grads, F = agd_reference_loss_and_grad(W0, X, Y)
    np.testing.assert_allclose(sn.forward(bl.agd_plain_weights(W0), X), F, rtol=1e-13, atol=1e-15)
    assert h.loss_train[0] == pytest.approx(3 * ell, rel=1e-13)        # recorded: 1/(2N) Σ ||f - y||²
    L = len(W0)
    s = [np.sqrt(d_out / d_in) for d_in, d_out in zip(widths[:-1], widths[1:])]
    G = sum(sk * np.linalg.norm(g) for sk, g in zip(s, grads)) / L
    eta = np.log((1 + np.sqrt(1 + 4 * G)) / 2)
    for W, W_new, g, sk in zip(W0, weights, grads, s):
        np.testing.assert_allclose(W_new, W - eta / L * sk * g / np.linalg.norm(g), rtol=1e-13, atol=1e-16)
    assert h.info["G"][0] == pytest.approx(G, rel=1e-13) and h.info["eta"][0] == pytest.approx(eta, rel=1e-13)
    doubled, _ = bl.train_agd(widths, X, Y, iterations=1, seed=4, gain=2.0)      # the reference's --gain
    np.testing.assert_allclose(doubled[0] - W0[0], 2 * (weights[0] - W0[0]), rtol=1e-12, atol=1e-16)


def test_agd_at_an_exact_fit_is_stationary():
    X, _ = problem()
    W0 = bl.agd_init(WIDTHS, seed=0)
    Y = sn.forward(bl.agd_plain_weights(W0), X)
    weights, h = bl.train_agd(WIDTHS, X, Y, iterations=3, seed=0)
    assert h.flags == [["stationary"]] * 3 and h.info["eta"] == [0.0] * 3
    assert all(np.array_equal(a, b) for a, b in zip(weights, W0))


# --- history, divergence, determinism, budgets -------------------------------------------------------------

@pytest.mark.parametrize("name", bl.BASELINES)
def test_history_is_consistent_and_json_safe(name):
    X, Y = problem(N=30)
    Xt, Yt = problem(N=10, seed=9)
    pred, h, _ = bl.run_baseline(name, WIDTHS, X, Y, Xt, Yt, iterations=7, lr=None if name == "agd" else 0.01,
                                 batch_size=8)
    assert isinstance(h, History) and h.method == name and h.iterations == 7
    assert len(h.loss_train) == len(h.loss_test) == 8
    for key in ("tau", "beta", "predicted", "actual", "halvings", "drift", "seconds", "flags"):
        assert len(getattr(h, key)) == 7, key
    assert all(len(v) == 7 for v in h.info.values())
    assert np.all(np.diff(h.seconds) >= 0)
    d = json.loads(json.dumps(h.as_dict(), allow_nan=False))
    assert d["tau"] == [None] * 7 and all(isinstance(a, float) for a in d["actual"])
    assert (d["drift"][0] is None) == (name != "rsgd") and (d["beta"][0] is None) == (name != "rsgd")
    assert h.loss_test[-1] == pytest.approx(0.5 * np.sum((pred(Xt) - Yt) ** 2) / len(Xt), rel=1e-12)


def test_diverging_lr_stops_with_a_reason_and_no_nan():
    X, Y = problem()
    params, h = bl.train_sgd(WIDTHS, X, Y, 1e200, iterations=50)
    assert bl.diverged(h) and "non-finite" in h.stop_reason
    assert h.iterations < 50 and len(h.loss_train) == h.iterations + 1
    assert all(math.isfinite(J) for J in h.loss_train) and all(np.isfinite(p).all() for p in params)
    assert mlp.mlp_loss(params, X, Y) == pytest.approx(h.loss_train[-1], rel=1e-12)   # the last good ones
    _, ok = bl.train_sgd(WIDTHS, X, Y, 1e-3, iterations=5)
    assert not bl.diverged(ok) and ok.stop_reason == ""
    best, table = bl.tune_lr(partial(bl.train_sgd, WIDTHS), [1e-2, 1e200], X, Y, iterations=20, extend=False)
    assert best == 1e-2 and [r["status"] for r in table] == ["ok", "diverged"]
    assert table[1]["val_loss"] is None and math.isfinite(table[0]["val_loss"])
    json.dumps(table, allow_nan=False)
    with pytest.raises(ValueError, match="diverged"):
        bl.tune_lr(partial(bl.train_sgd, WIDTHS), [1e200, 1e250], X, Y, iterations=20)


@pytest.mark.parametrize("name", ["sgd", "adam", "rsgd", "agd"])
def test_mini_batch_runs_are_deterministic_for_a_seed(name):
    X, Y = problem(N=50)
    lr = None if name == "agd" else 0.05

    def run(seed, batch_size=16):
        return bl.run_baseline(name, WIDTHS, X, Y, iterations=12, seed=seed, batch_size=batch_size, lr=lr)

    (p1, h1, _), (p2, h2, _) = run(3), run(3)
    assert h1.loss_train == h2.loss_train and h1.actual == h2.actual
    assert all(np.array_equal(a, b) for a, b in zip(p1.params, p2.params))
    assert run(4)[1].loss_train != h1.loss_train
    assert run(3, batch_size=None)[1].loss_train != h1.loss_train               # batches are really used


def test_max_seconds_stops_the_loop():
    X, Y = problem(N=200)
    _, h = bl.train_adam(WIDTHS, X, Y, 1e-3, iterations=10**7, max_seconds=0.05)
    assert "time budget" in h.stop_reason and 0 < h.iterations < 10**7
    assert h.seconds[-1] >= 0.05 and (h.iterations == 1 or h.seconds[-2] < 0.05)   # stopped at the first chance
    _, h = bl.train_agd(WIDTHS, X, Y, iterations=None, max_seconds=0.02)
    assert "time budget" in h.stop_reason and h.iterations > 0


# --- the tuner -----------------------------------------------------------------------------------------------

def constant_trainer(X, Y, lr, X_test, Y_test, seed=0, iterations=1, seen=None):
    """A stand-in 'trainer' whose model predicts the constant ``lr``: its validation loss is known exactly."""
    if seen is not None:
        seen.append((X.copy(), X_test.copy()))
    h = History("constant")
    h.loss_test = [0.5 * float(np.sum((Y_test - lr) ** 2)) / len(Y_test)]
    return [lr], h


def test_tuner_picks_lowest_validation_loss_on_training_rows_only():
    rng = np.random.default_rng(0)
    X = np.arange(100.0)[:, None]                                  # row i is identifiable by its value
    Y = 1.0 + 0.1 * rng.standard_normal((100, 1))
    seen = []
    grid = [0.5, 1.0, 2.0, 10.0]
    best, table = bl.tune_lr(partial(constant_trainer, seen=seen), grid, X, Y, validation_fraction=0.25,
                             seed=1)
    fit, val = bl.validation_split(100, 0.25, seed=1)
    expected = [0.5 * np.sum((Y[val] - lr) ** 2) / len(val) for lr in grid]
    assert [r["val_loss"] for r in table] == pytest.approx(expected, rel=1e-14)
    assert best == grid[int(np.argmin(expected))] == 1.0
    assert len(val) == 25 and not set(fit) & set(val) and len(set(fit) | set(val)) == 100
    for X_fit, X_val in seen:
        assert sorted(X_fit[:, 0]) == sorted(fit) and sorted(X_val[:, 0]) == sorted(val)
    with pytest.raises(TypeError, match="test"):
        bl.tune_lr(constant_trainer, grid, X, Y, X_test=X, Y_test=Y)


@pytest.mark.parametrize("grid, added", [([1e-2, 10 ** -1.5, 1e-1], [10 ** -0.5, 1.0, 10 ** 0.5]),
                                         ([10.0, 10 ** 1.5, 100.0], [10 ** -0.5, 1.0, 10 ** 0.5])])
def test_tuner_extends_the_grid_past_a_winning_edge(grid, added):
    rng = np.random.default_rng(0)
    X, Y = np.arange(80.0)[:, None], 1.0 + 0.01 * rng.standard_normal((80, 1))   # best constant: about 1
    best, table = bl.tune_lr(constant_trainer, grid, X, Y)
    assert [r["lr"] for r in table if r["extended"]] == pytest.approx(added, rel=1e-12)
    assert [r["lr"] for r in table if not r["extended"]] == grid
    assert [r["lr"] for r in table] == sorted(r["lr"] for r in table)
    assert best == pytest.approx(1.0, rel=1e-12) and best not in (table[0]["lr"], table[-1]["lr"])
    text = bl.format_tuning(table, best)
    assert "+" in text and "warning" not in text
    unextended, rows = bl.tune_lr(constant_trainer, grid, X, Y, extend=False)
    assert unextended in (grid[0], grid[-1]) and len(rows) == 3
    assert "still at the edge" in bl.format_tuning(rows, unextended)


def test_tuner_extends_at_most_max_extensions_per_side_and_refuses_an_empty_grid():
    X, Y = np.arange(40.0)[:, None], np.full((40, 1), 1.0)
    best, table = bl.tune_lr(constant_trainer, [1e-9, 1e-8], X, Y)
    assert len(table) == 2 + bl.MAX_EXTENSIONS and best == pytest.approx(1e-8 * 10 ** bl.MAX_EXTENSIONS)
    assert "still at the edge" in bl.format_tuning(table, best)
    with pytest.raises(ValueError, match="empty"):
        bl.tune_lr(constant_trainer, [], X, Y)


def test_run_baseline_tunes_on_validation_even_when_the_test_set_disagrees():
    X, Y = problem(N=60, seed=1)
    Xt, Yt = problem(N=20, seed=2)
    grid = [1e-3, 1e-1, 1.0]
    # A test set that rewards not training at all: its targets are the initial network's own outputs.
    Y_adv = mlp.mlp_forward(mlp.init_mlp(WIDTHS, seed=0), Xt)
    test_loss = [bl.train_sgd(WIDTHS, X, Y, lr, 30, Xt, Y_adv)[1].loss_test[-1] for lr in grid]
    assert int(np.argmin(test_loss)) == 0                         # the test set would pick the smallest rate
    p1, h1, t1 = bl.run_baseline("sgd", WIDTHS, X, Y, Xt, Yt, iterations=30, grid=grid)
    p2, h2, t2 = bl.run_baseline("sgd", WIDTHS, X, Y, Xt, Y_adv, iterations=30, grid=grid)
    assert t1 == t2 and p1.lr == p2.lr == min(t1, key=lambda r: r["val_loss"])["lr"]
    assert p1.lr != grid[0] and h1.loss_train == h2.loss_train
    assert h2.loss_test[-1] > min(test_loss)
    assert "*" in bl.format_tuning(t1, p1.lr).splitlines()[grid.index(p1.lr) + 1]


def test_default_grids_are_half_decade_log_grids():
    assert bl.GRIDS["sgd"] == pytest.approx([10 ** (e / 2) for e in range(-6, 3)], rel=1e-14)
    assert bl.GRIDS["adam"] == pytest.approx([10 ** (e / 2) for e in range(-8, -1)], rel=1e-14)


# --- least squares, validation -------------------------------------------------------------------------------

def test_least_squares_recovers_an_exact_affine_map():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((30, 6))
    A, c = rng.standard_normal((2, 6)), rng.standard_normal(2)
    pred = bl.fit_linear(X, X @ A.T + c)
    np.testing.assert_allclose(pred.params[0], A, atol=1e-12)
    np.testing.assert_allclose(pred.params[1], c, atol=1e-12)
    X2 = rng.standard_normal((5, 6))
    np.testing.assert_allclose(pred(X2), X2 @ A.T + c, atol=1e-12)


def test_bad_input_is_refused_with_a_named_reason():
    X, Y = problem()
    with pytest.raises(ValueError, match="sgd, adam, rsgd, agd"):
        bl.run_baseline("lbfgs", WIDTHS, X, Y)
    for lr in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="lr"):
            bl.train_sgd(WIDTHS, X, Y, lr)
    with pytest.raises(ValueError, match="iterations"):
        bl.train_adam(WIDTHS, X, Y, 0.1, iterations=-1)
    with pytest.raises(ValueError, match="max_seconds"):
        bl.train_adam(WIDTHS, X, Y, 0.1, iterations=None)
    with pytest.raises(ValueError, match="columns"):
        bl.train_sgd(WIDTHS, X[:, :3], Y, 0.1)
    with pytest.raises(ValueError, match="X_test"):
        bl.train_agd(WIDTHS, X, Y, X_test=X)
    with pytest.raises(ValueError, match="non-finite"):
        bl.train_agd(WIDTHS, np.where(X > 0.9, np.nan, X), Y)
    with pytest.raises(ValueError, match="learning rate"):
        bl.run_baseline("agd", WIDTHS, X, Y, lr=0.1)
    with pytest.raises(TypeError, match="NormalisedMLP"):
        bl.train_rsgd(WIDTHS, X, Y, 0.1)
    with pytest.raises(ValueError, match="betas"):
        bl.train_adam(WIDTHS, X, Y, 0.1, betas=(0.9, 1.0))
    with pytest.raises(ValueError, match="validation_fraction"):
        bl.tune_lr(constant_trainer, [1.0], X, Y, validation_fraction=0.001)


def test_float32_runs_stay_float32():
    X, Y = problem()
    params, h = bl.train_adam(WIDTHS, X, Y, 1e-2, iterations=5, dtype=np.float32)
    assert all(p.dtype == np.float32 for p in params) and h.loss_train[-1] < h.loss_train[0]
    net = sn.NormalisedMLP(WIDTHS, seed=0, dtype=np.float32)
    trained, h = bl.train_rsgd(net, X, Y, 10.0, iterations=5)
    assert trained.dtype == np.float32 and max(h.drift) < 1e-6
