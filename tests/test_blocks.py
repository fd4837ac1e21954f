"""Large data read in blocks (issue 18): the block-wise paths against the in-memory ones, memory-mapped input
never copied whole, and bad arrays on disk named by their file in one line.

* Algorithm 1 with the hidden adjoints recomputed per block (``network.ADJOINT_BUDGET`` exceeded) takes the
  same steps, bit for bit, as with them kept;
* every rule on a full-batch pass that keeps only its output (``network.FORWARD_BUDGET`` exceeded) takes the
  steps of the cached pass, to rounding (its output is computed block by block; float64 gives the same bits
  with OpenBLAS, float32 differs in the last bits);
* a baseline's pass over several blocks (``trainers.PASS_BUDGET`` exceeded) agrees with the one-block pass to
  rounding (the gradients are summed in another order), and with one block it is the same pass;
* ``load_arrays`` maps the files, ``train`` and the checks read them without a copy (the memory they allocate
  is far below the data's size), and a NaN in a late block is found and named.
"""
import tracemalloc

import numpy as np
import pytest

import spherenet as sn
from spherenet import network
from spherenet._checks import FINITE_BLOCK, check_data
from spherenet.baselines import run_baseline, trainers
from spherenet.baselines.standardise import BLOCK, Standardiser
from spherenet.data import load_arrays, save_arrays
from spherenet.jets import loss_jet2_adjoint
from spherenet.network import (StreamedCache, Workspace, _backward, _direction, _forward_cache,
                               hidden_activation_bound)
from spherenet.train import RULES, _Loop, make_rule, train

WIDTHS = (12, 25, 30, 15, 3)


def arrays(N, dtype=np.float64, seed=0, n_test=300):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N + n_test, WIDTHS[0]))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.3 * rng.standard_normal((N + n_test, WIDTHS[-1]))
    return [A.astype(dtype) for A in (X[:N], Y[:N], X[N:], Y[N:])]


def same_history(a, b):
    return (a.loss_train == b.loss_train and a.loss_test == b.loss_test and a.tau == b.tau
            and a.info["kappa"] == b.info["kappa"] and a.halvings == b.halvings)


# --- Algorithm 1: the hidden adjoints recomputed per block --------------------------------------------

@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_adjoint_jet_from_the_output_adjoint_alone_is_bitwise_the_kept_one(dtype):
    X, Y, _, _ = arrays(9000, dtype)                           # three blocks of network.ROW_BLOCK rows
    weights = sn.NormalisedMLP(WIDTHS, seed=1, dtype=dtype).weights
    jets = []
    for keep in (True, "output"):
        cache, ws = _forward_cache(weights, X), Workspace()
        J, grads = _backward(weights, cache, Y, ws, keep)
        assert (cache.dZ[1] is None) == (keep == "output") and cache.dZ[-1] is not None
        d = _direction(weights, grads, np.ones(4))
        jets.append(loss_jet2_adjoint(cache, weights, d.V, np.ones(4), X, d.alpha_moving, ws, Y))
    assert np.array_equal(jets[0], jets[1])
    with pytest.raises(ValueError, match="pass Y"):
        loss_jet2_adjoint(cache, weights, d.V, np.ones(4), X, d.alpha_moving, Workspace())


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("threads", [1, 2])
def test_algorithm1_over_the_adjoint_budget_takes_the_same_steps_bitwise(monkeypatch, dtype, threads):
    X, Y, Xt, Yt = arrays(9000, dtype)
    runs = []
    for budget in (network.ADJOINT_BUDGET, 0):
        monkeypatch.setattr(network, "ADJOINT_BUDGET", budget)
        assert network.adjoints_to_keep(WIDTHS, len(X), dtype) == (True if budget else "output")
        runs.append(train(sn.NormalisedMLP(WIDTHS, seed=0, dtype=dtype), X, Y, "taylor", 6, Xt, Yt,
                          threads=threads))
    assert same_history(*runs) and runs[0].iterations == 6


# --- a full-batch pass that keeps only its output (network.StreamedCache) ----------------------------------

@pytest.mark.parametrize("dtype, rtol", [(np.float64, 1e-12), (np.float32, 1e-5)])
@pytest.mark.parametrize("rule", list(RULES))
def test_every_rule_streamed_takes_the_steps_of_the_cached_pass(monkeypatch, rule, dtype, rtol):
    X, Y, Xt, Yt = arrays(9000, dtype)
    cached = train(sn.NormalisedMLP(WIDTHS, seed=0, dtype=dtype), X, Y, rule, 4, Xt, Yt)
    monkeypatch.setattr(network, "FORWARD_BUDGET", 0)
    loop = _Loop(sn.NormalisedMLP(WIDTHS, seed=0, dtype=dtype), X, Y, None, None, make_rule(rule), None, 0, None, 1,
                 None)
    loop.begin(None)
    assert isinstance(loop.cache, StreamedCache) and loop.keep_adjoints in (False, "output")
    streamed = train(sn.NormalisedMLP(WIDTHS, seed=0, dtype=dtype), X, Y, rule, 4, Xt, Yt)
    assert streamed.iterations == cached.iterations == 4 and streamed.halvings == cached.halvings
    for a, b in ((cached.loss_train, streamed.loss_train), (cached.tau, streamed.tau),
                 (cached.loss_test, streamed.loss_test)):
        np.testing.assert_allclose(b, a, rtol=rtol)


def test_a_streamed_pass_on_two_threads_and_with_a_mini_batch_rule_agrees(monkeypatch):
    X, Y, Xt, Yt = arrays(9000)
    cached = train(sn.NormalisedMLP(WIDTHS, seed=0), X, Y, "taylor", 4, Xt, Yt, threads=2)
    monkeypatch.setattr(network, "FORWARD_BUDGET", 0)
    streamed = train(sn.NormalisedMLP(WIDTHS, seed=0), X, Y, "taylor", 4, Xt, Yt, threads=2)
    np.testing.assert_allclose(streamed.loss_train, cached.loss_train, rtol=1e-12)
    np.testing.assert_allclose(streamed.tau, cached.tau, rtol=1e-12)


def test_a_streamed_run_allocates_far_less_than_the_forward_cache(monkeypatch, tmp_path):
    X, Y, _, _ = load_arrays(save_arrays(tmp_path, *arrays(100_000)))
    cache_bytes = X.dtype.itemsize * len(X) * sum(WIDTHS[1:])
    monkeypatch.setattr(network, "FORWARD_BUDGET", cache_bytes // 2)
    assert network.streams_forward(WIDTHS, len(X), X.dtype)
    tracemalloc.start()
    h = train(sn.NormalisedMLP(WIDTHS, seed=0), X, Y, "taylor", 2)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert h.iterations == 2 and h.loss_train[-1] < h.loss_train[0]
    assert peak < cache_bytes / 4       # what grows with N: the output, its error and adjoint (N x d_L each)


# --- baselines: passes block by block ----------------------------------------------------------------

@pytest.mark.parametrize("method", ["adam", "rsgd", "agd"])
def test_baseline_passes_over_several_blocks_agree_with_one_pass(monkeypatch, method):
    X, Y, Xt, Yt = arrays(3000)
    options = dict(iterations=5, lr=None if method == "agd" else 1e-2)
    one = run_baseline(method, WIDTHS, X, Y, Xt, Yt, **options)[1]
    monkeypatch.setattr(trainers, "PASS_BUDGET", 700 * 8 * 2 * sum(WIDTHS))      # blocks of ~700 rows
    blocks = run_baseline(method, WIDTHS, X, Y, Xt, Yt, **options)[1]
    assert one.iterations == blocks.iterations == 5
    for a, b in ((one.loss_train, blocks.loss_train), (one.loss_test, blocks.loss_test)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert one.loss_train[-1] < one.loss_train[0]


def test_a_baseline_pass_over_several_blocks_is_the_whole_pass_to_rounding(monkeypatch):
    X, Y, _, _ = arrays(2500)
    params = sn.baselines.mlp.init_mlp(WIDTHS, seed=3)
    forward, backward = sn.baselines.mlp._forward_cache, sn.baselines.mlp._backward
    J, grads, F = trainers._loss_grads_output(forward, backward, params, X, Y)
    monkeypatch.setattr(trainers, "PASS_BUDGET", 600 * 8 * 2 * sum(WIDTHS))
    assert trainers._block_rows(params, X.dtype) < 700
    Jb, grads_b, Fb = trainers._loss_grads_output(forward, backward, params, X, Y)
    np.testing.assert_allclose(Fb, F, rtol=1e-14, atol=1e-16)
    assert Jb == pytest.approx(J, rel=1e-14)
    for g, gb in zip(grads, grads_b):
        np.testing.assert_allclose(gb, g, rtol=1e-12, atol=1e-16 * np.abs(g).max())
    np.testing.assert_allclose(trainers._output(forward, params, X), F, rtol=1e-14, atol=1e-16)


def test_standardising_block_by_block_gives_the_whole_array_bits(monkeypatch):
    X = np.random.default_rng(2).standard_normal((BLOCK + 123, 4)) * [1, 5, 0.1, 3] + [0, 1, 2, 3]
    stand = Standardiser.fit(X, X[:, :2])
    for dtype in (np.float64, np.float32):
        whole = ((X - stand.x_mean) / stand.x_std).astype(dtype)
        assert np.array_equal(stand.transform_inputs(X, dtype), whole)


# --- memory-mapped input: read in blocks, never copied whole ---------------------------------------------

def test_memory_mapped_arrays_reach_the_loop_without_a_copy(tmp_path):
    X, Y, Xt, Yt = load_arrays(save_arrays(tmp_path, *arrays(200_000)))
    assert all(isinstance(A, np.memmap) for A in (X, Y, Xt, Yt))
    tracemalloc.start()
    Xc, Yc = check_data(X, Y, WIDTHS[0], WIDTHS[-1])
    loop = _Loop(sn.NormalisedMLP(WIDTHS, seed=0), X, Y, Xt, Yt, make_rule("taylor"), 256, 0, None, 1, None)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert np.shares_memory(Xc, X) and np.shares_memory(Yc, Y) and np.shares_memory(loop.X, X)
    assert peak < X.nbytes / 10                     # the finiteness checks read a block at a time
    assert hidden_activation_bound(np.ones(4), X) == pytest.approx(
        np.sqrt(np.einsum("ij,ij->i", X, X).max()), rel=0, abs=0)


def test_a_minibatch_run_on_memory_mapped_data_allocates_far_less_than_the_data(tmp_path):
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((150_000, 48)) / 7, rng.standard_normal((150_000, 3))
    X, Y, _, _ = load_arrays(save_arrays(tmp_path, X, Y))
    net = sn.NormalisedMLP((48, 25, 30, 15, 3), seed=0)
    tracemalloc.start()
    h = train(net, X, Y, "geo-batch", 3, batch_size=512)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert h.iterations == 3 and np.isfinite(h.loss_train).all()
    # What grows with N: the epoch's order and the training loss's output and error (N x d_L), not a copy of X
    assert peak < X.nbytes / 4


def test_memory_mapped_and_in_memory_runs_give_the_same_bits(tmp_path):
    data = arrays(5000, np.float32)
    mapped = load_arrays(save_arrays(tmp_path, *data))
    for rule, batch in (("taylor", None), ("mm", None), ("geo-batch", 1000)):
        a, b = (train(sn.NormalisedMLP(WIDTHS, seed=0, dtype=np.float32), *d[:2], rule, 3, *d[2:], batch_size=batch)
                for d in (data, mapped))
        assert a.loss_train == b.loss_train and a.tau == b.tau


# --- bad input: one line naming the file ---------------------------------------------------------------

def test_a_nan_in_a_late_block_is_named_with_its_file_and_index(tmp_path):
    X, Y, Xt, Yt = arrays(FINITE_BLOCK + 500)
    X[FINITE_BLOCK + 7, 3] = np.nan
    X, Y, Xt, Yt = load_arrays(save_arrays(tmp_path, X, Y, Xt, Yt))
    with pytest.raises(ValueError) as err:
        train(sn.NormalisedMLP(WIDTHS, seed=0), X, Y, "taylor", 1, Xt, Yt)
    message = str(err.value)
    assert "\n" not in message and str(tmp_path / "X.npy") in message and f"({FINITE_BLOCK + 7}, 3)" in message


def test_wrong_shapes_in_files_are_named(tmp_path):
    X, Y, Xt, Yt = arrays(100)
    save_arrays(tmp_path, X, Y[:99], Xt, Yt)
    with pytest.raises(ValueError, match=r"X\.npy has 100 rows but .*Y\.npy has 99"):
        load_arrays(tmp_path)
    save_arrays(tmp_path, X, Y, Xt[:, :5], Yt)
    with pytest.raises(ValueError, match=r"X_test\.npy has 5 columns but .*X\.npy has 12"):
        load_arrays(tmp_path)
    save_arrays(tmp_path, X[:, :11], Y, X[:, :11], Y)
    X11, Y11, _, _ = load_arrays(tmp_path)
    with pytest.raises(ValueError, match=r"X \(file .*X\.npy\) has 11 columns, expected 12"):
        train(sn.NormalisedMLP(WIDTHS, seed=0), X11, Y11, "taylor", 1)


@pytest.mark.parametrize("case, error, pattern", [
    ("no folder", FileNotFoundError, "no such folder"),
    ("no Y", FileNotFoundError, r"no such file: .*Y\.npy"),
    ("no partner", FileNotFoundError, r"X_test\.npy has no partner: no such file: .*Y_test\.npy"),
    ("integers", ValueError, r"X\.npy holds int64; save it as float32 or float64"),
    ("3-D", ValueError, r"X\.npy has shape \(4, 3, 2\); expected 2-D"),
    ("Fortran", ValueError, r"X\.npy is stored in Fortran order"),
    ("not npy", ValueError, r"X\.npy: not an \.npy array"),
    ("dtypes", ValueError, "mix float32 and float64"),
])
def test_bad_folders_give_one_line_naming_the_file(tmp_path, case, error, pattern):
    folder = tmp_path / "data"
    if case != "no folder":
        folder.mkdir()
        np.save(folder / "X.npy", np.ones((4, 3)))
        np.save(folder / "Y.npy", np.ones((4, 1)))
    if case == "no Y":
        (folder / "Y.npy").unlink()
    elif case == "no partner":
        np.save(folder / "X_test.npy", np.ones((2, 3)))
    elif case == "integers":
        np.save(folder / "X.npy", np.ones((4, 3), dtype=np.int64))
    elif case == "3-D":
        np.save(folder / "X.npy", np.ones((4, 3, 2)))
    elif case == "Fortran":
        np.save(folder / "X.npy", np.asfortranarray(np.ones((4, 3))))
    elif case == "not npy":
        (folder / "X.npy").write_text("x0,x1\n1,2\n")
    elif case == "dtypes":
        np.save(folder / "Y.npy", np.ones((4, 1), dtype=np.float32))
    with pytest.raises(error, match=pattern) as err:
        load_arrays(folder)
    assert "\n" not in str(err.value)
