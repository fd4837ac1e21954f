"""Row-parallel passes (spherenet.rows): the parts cover the rows in order; with threads the passes give
the one-thread numbers to rounding, and the same bits every time for the same thread count."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spherenet as sn
from spherenet import rows
from spherenet.jets import loss_jet2_adjoint, loss_jet_from, output_jet_from
from spherenet.network import Workspace, _backward, _direction, _forward_cache, _output
from spherenet.train import train


@given(st.integers(0, 50_000), st.integers(1, 8))
def test_parts_are_contiguous_ordered_and_cover_the_rows(n, count):
    with rows.threads(count):
        parts = rows.parts(n)
    assert parts[0].start == 0 and parts[-1].stop == n
    assert all(a.stop == b.start for a, b in zip(parts, parts[1:]))
    assert len(parts) == min(count, max(n // rows.MIN_ROWS, 1))
    assert all(p.stop - p.start >= rows.MIN_ROWS for p in parts) or len(parts) == 1


def test_one_thread_runs_in_one_part_and_map_keeps_the_order():
    assert rows.parts(100_000) == [slice(0, 100_000)]
    with rows.threads(3):
        assert rows.map_parts(lambda p, r: (p, r.start), 9 * rows.MIN_ROWS) == [
            (0, 0), (1, 3 * rows.MIN_ROWS), (2, 6 * rows.MIN_ROWS)]
    assert rows._current() == (None, 1)


def test_the_setting_belongs_to_the_thread_that_made_it():
    # Two trainings in two threads: one's `threads(...)` block must not reach into the other's passes.
    from concurrent.futures import ThreadPoolExecutor
    n = 4 * rows.MIN_ROWS
    with rows.threads(4):
        with ThreadPoolExecutor(1) as other:
            assert other.submit(rows.parts, n).result() == [slice(0, n)]
        assert len(rows.parts(n)) == 4


def test_bad_thread_count():
    with pytest.raises(ValueError, match="threads"):
        with rows.threads(0):
            pass


def _problem(dtype=np.float64, n=3 * rows.MIN_ROWS + 17):
    rng = np.random.default_rng(0)
    net = sn.NormalisedMLP((12, 20, 16, 3), seed=1, dtype=dtype)
    X = rng.normal(size=(n, 12))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)
    return net, X, (0.05 * rng.normal(size=(n, 3))).astype(dtype)


def _passes(net, X, Y):
    ws = Workspace()
    W = net.weights
    cache = _forward_cache(W, X, ws.cache("a", W, X))
    J, grads = _backward(W, cache, Y, ws)
    d = _direction(W, grads, net.radii)
    jet = loss_jet2_adjoint(cache, W, d.V, net.radii, X, d.alpha_moving, ws)
    return [cache.F.copy(), _output(W, X, ws).copy(), np.array([J]), *grads, jet]


@pytest.mark.parametrize("count", [2, 3])
def test_threaded_passes_equal_the_serial_ones_to_rounding_and_repeat_exactly(count):
    net, X, Y = _problem()
    serial = _passes(net, X, Y)
    with rows.threads(count):
        first, again = _passes(net, X, Y), _passes(net, X, Y)
    for a, b, s in zip(first, again, serial):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, s, rtol=1e-12, atol=1e-17)


def test_training_with_two_threads_repeats_bit_for_bit_and_tracks_one_thread():
    net, X, Y = _problem(n=2 * rows.MIN_ROWS + 5)
    runs = [train(net.copy(), X, Y, "taylor", 15, threads=t) for t in (2, 2, 1)]
    assert runs[0].loss_train == runs[1].loss_train and runs[0].tau == runs[1].tau
    np.testing.assert_allclose(runs[0].loss_train, runs[2].loss_train, rtol=1e-10)


def test_order_r_jets_with_threads_equal_the_serial_ones_to_rounding_and_repeat():
    """The paper's curve (loss and output jets) and the geodesic one, all through ``jets.CurveJet``."""
    from spherenet.beyond.geodesic import Geodesic
    net, X, Y = _problem()
    W = net.weights
    cache = _forward_cache(W, X)
    _, grads = _backward(W, cache, Y)
    V = _direction(W, grads, net.radii).V
    curve = Geodesic(W, V, net.radii)
    jets_of = [lambda: curve.loss_jet(cache, X, Y, 3), lambda: loss_jet_from(cache, W, V, net.radii, X, Y, 4),
               lambda: output_jet_from(cache, W, V, net.radii, X, 2)]
    for jet in jets_of:
        serial = jet()
        with rows.threads(2):
            first, again = jet(), jet()
        np.testing.assert_array_equal(first, again)
        np.testing.assert_allclose(first, serial, rtol=1e-11, atol=1e-18)
