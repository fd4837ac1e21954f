"""Training loops for the baselines, returning the same ``History`` as ``spherenet.train.train``.

One iteration: optimiser update with the batch's gradients -> full batch: forward and backward at the new
parameters (the loss there and the next step's gradients, in one pass; block by block on a large set,
``PASS_BUDGET``). Full batch by default; ``batch_size`` draws mini-batches without replacement, epoch by
epoch, from ``np.random.default_rng(seed)`` exactly as ``spherenet.train`` does (same seed, same batches).

How the ``History`` is filled (one rule for every baseline):

* ``loss_train``/``loss_test``: ``iterations + 1`` entries, entry 0 at initialisation, always the FULL
  training set / the test set;
* every per-step list (``tau, beta, predicted, actual, halvings, drift, seconds, flags``) has exactly one
  entry per iteration taken, so ``history.iterations`` is right; a quantity the optimiser does not have is
  NaN (``None`` in ``as_dict()``): ``tau`` and ``predicted`` always (no angle, no model), ``beta`` except for
  retracted SGD, ``drift`` except for retracted SGD; ``halvings`` is 0 (no backtracking);
  ``actual = J_new - J`` on the step's batch;
* ``info``: per-step lists: ``"lr"`` (the learning rate, constant) and ``"grad_norm"`` for SGD/Adam, ``"lr"``
  for retracted SGD, ``"eta"`` and ``"G"`` for AGD;
* ``seconds``: cumulative training time. Excluded, like the test loss: evaluations made only for the record
  (the full training loss and the step's batch loss after a mini-batch step). ``max_seconds`` budgets this
  same training time, checked after every iteration.

Non-finite loss or parameters after a step: the run stops, the last good parameters are kept and
``history.stop_reason`` says so (it starts with ``"diverged"``; see :func:`diverged`).
"""
from __future__ import annotations

import math
import time
from functools import partial

import numpy as np
from threadpoolctl import threadpool_limits

from .._checks import check_data, finite_float, positive_int
from ..network import NormalisedMLP, _loss_from_output
from ..network import _backward as _plain_backward
from ..network import _forward_cache as _plain_forward
from ..train import History, _Batches
from . import mlp
from .optimisers import AGD, AGD_RELU_GAIN, SGD, Adam, RetractedSGD, agd_init

NAN = float("nan")
DIVERGED = "diverged"


def diverged(history: History) -> bool:
    """Whether the run was stopped by a non-finite loss or parameter (a learning rate too large)."""
    return history.stop_reason.startswith(DIVERGED)


def _finite(params) -> bool:
    return all(np.isfinite(p).all() for p in params)


def _check_run(X, Y, d_in, d_out, dtype, X_test, Y_test, iterations, batch_size, max_seconds):
    X, Y = check_data(X, Y, d_in, d_out, dtype)
    if (X_test is None) != (Y_test is None):
        raise ValueError("give both X_test and Y_test, or neither")
    if X_test is not None:
        X_test, Y_test = check_data(X_test, Y_test, d_in, d_out, dtype, names=("X_test", "Y_test"))
    if max_seconds is not None:
        max_seconds = finite_float("max_seconds", max_seconds, positive=True)
    if iterations is None:
        if max_seconds is None:
            raise ValueError("iterations=None (no limit) needs a max_seconds budget")
    else:
        iterations = positive_int("iterations", iterations, minimum=0)
    if batch_size is not None:
        batch_size = positive_int("batch_size", batch_size)
    return X, Y, X_test, Y_test, iterations, batch_size, max_seconds


def weighted_loss(F, Y, weights=None) -> float:
    """``J = 1/(2N) Σ_n Σ_j w_j (F_nj - Y_nj)²`` (``weights=None``: every ``w_j = 1``, the training loss)."""
    if weights is None:
        return _loss_from_output(F, Y)
    R = F - Y
    return 0.5 * float(np.einsum("nj,nj,j->", R, R, weights)) / len(Y)


# A baseline's pass keeps its forward cache (``Z`` and ``H`` of every layer) on at most this many bytes of rows;
# a larger set goes block by block, so memory stays flat in N. Up to one block, a pass is exactly one forward
# and one backward on all rows (the bits of a whole-set pass); beyond it the gradients are the blocks'
# gradients, weighted by their share of rows, summed in row order (equal to rounding).
PASS_BUDGET = 128 * 2 ** 20


def _block_rows(params, dtype) -> int:
    """Rows per block of a pass: ``PASS_BUDGET`` over the bytes of one row's ``Z`` and ``H`` (at least 1)."""
    per_row = np.dtype(dtype).itemsize * 2 * sum(p.shape[0] for p in params if p.ndim == 2)
    return max(PASS_BUDGET // per_row, 1)


def _row_blocks(n: int, size: int) -> list[slice]:
    return [slice(s, min(s + size, n)) for s in range(0, n, size)]


def _output(forward, params, X) -> np.ndarray:
    """``f(X)`` block by block (``_block_rows``): the output rows of a whole-set forward pass, one block kept."""
    size = _block_rows(params, X.dtype)
    if len(X) <= size:
        return forward(params, X).F
    F = None
    for b in _row_blocks(len(X), size):
        Fb = forward(params, X[b]).F
        if F is None:
            F = np.empty((len(X), Fb.shape[1]), Fb.dtype)
        F[b] = Fb
    return F


def _loss_grads_output(forward, backward, params, X, Y):
    """``(J, grads, F)`` on all rows of ``(X, Y)``, block by block beyond one block (``PASS_BUDGET``)."""
    size = _block_rows(params, X.dtype)
    if len(X) <= size:
        cache = forward(params, X)
        J, grads = backward(params, cache, Y)
        return J, grads, cache.F
    F, grads = None, None
    for b in _row_blocks(len(X), size):
        cache = forward(params, X[b])
        _, block_grads = backward(params, cache, Y[b])          # the gradients of the block's mean loss
        share = (b.stop - b.start) / len(X)
        block_grads = [g * g.dtype.type(share) for g in block_grads]
        grads = block_grads if grads is None else [a + g for a, g in zip(grads, block_grads)]
        if F is None:
            F = np.empty((len(X), cache.F.shape[1]), cache.F.dtype)
        F[b] = cache.F
    return _loss_from_output(F, Y), grads, F


class _Evaluator:
    """The record-only evaluations of a run (full training loss in mini-batch runs, test loss), timed apart
    from training into ``history.seconds_eval`` and made every ``eval_every`` iterations and at the last."""

    def __init__(self, history, forward, X, Y, X_test, Y_test, weights, eval_every):
        self.history, self.forward, self.weights, self.every = history, forward, weights, eval_every
        self.train, self.test = (X, Y), (None if X_test is None else (X_test, Y_test))

    def loss(self, params, data) -> float:
        return weighted_loss(_output(self.forward, params, data[0]), data[1], self.weights)

    def __call__(self, params, k, with_train: bool) -> None:
        start = time.perf_counter()
        if with_train:
            self.history.loss_train.append(self.loss(params, self.train))
        if self.test is not None:
            self.history.loss_test.append(self.loss(params, self.test))
        self.history.eval_iterations.append(k)
        self.history.seconds_eval += time.perf_counter() - start

    def due(self, k) -> bool:
        return k % self.every == 0


def _run(method, forward, backward, optimiser, params, X, Y, X_test, Y_test, iterations, batch_size, seed,
         max_seconds, loss_weights=None, eval_every=1, callback=None):
    """The loop shared by every baseline (inputs already validated). Returns ``(params, History)``."""
    history = History(method)
    batches = _Batches(X, Y, batch_size, np.random.default_rng(seed))
    evaluate = _Evaluator(history, forward, X, Y, X_test, Y_test, loss_weights, eval_every)
    # Overflow inside a diverging run is detected below (non-finite loss/params) and reported in
    # stop_reason, so NumPy's overflow/invalid warnings would only repeat it. One BLAS thread, as
    # spherenet.train: these thin products lose ~8x with a second thread when the cores are shared.
    with threadpool_limits(1), np.errstate(over="ignore", invalid="ignore"):
        evaluate(params, 0, with_train=True)
        Xb, Yb = batches.next()
        J, grads, _ = _loss_grads_output(forward, backward, params, Xb, Yb)
        elapsed, k = 0.0, 0
        while iterations is None or k < iterations:
            start = time.perf_counter()
            up = optimiser(params, grads)
            if batches.full:            # the loss at the new point, and its gradients for the next step
                J_new, grads_new, F_new = _loss_grads_output(forward, backward, up.params, X, Y)
                elapsed += time.perf_counter() - start
            else:                       # the step's batch loss is for the record (and the divergence check)
                elapsed += time.perf_counter() - start
                start = time.perf_counter()
                J_new = _loss_from_output(_output(forward, up.params, Xb), Yb)
                history.seconds_eval += time.perf_counter() - start
            if not (math.isfinite(J_new) and _finite(up.params)):
                history.stop_reason = (f"{DIVERGED} at iteration {k + 1}: the loss or the parameters became "
                                       f"non-finite (loss {J_new}); stopped and kept the last good parameters")
                break
            params, k, J_prev = up.params, k + 1, J
            if batches.full:            # the full training loss comes with the step: recorded every iteration
                J, grads = J_new, grads_new
                history.loss_train.append(weighted_loss(F_new, Y, loss_weights))
            else:
                start = time.perf_counter()
                Xb, Yb = batches.next()
                J, grads, _ = _loss_grads_output(forward, backward, params, Xb, Yb)
                elapsed += time.perf_counter() - start
            _record(history, up, J_new - J_prev, elapsed)
            if evaluate.due(k):
                evaluate(params, k, with_train=not batches.full)
            if callback is not None:
                callback(k, history)
            if max_seconds is not None and elapsed >= max_seconds:
                history.stop_reason = f"time budget of {max_seconds:g} s reached after {k} iterations"
                break
        if history.eval_iterations[-1] != k:          # always evaluated at the last iteration
            evaluate(params, k, with_train=not batches.full)
    return params, history


def _record(history: History, up, actual, elapsed) -> None:
    history.tau.append(NAN)
    history.beta.append(float(up.beta))
    history.predicted.append(NAN)
    history.actual.append(float(actual))
    history.halvings.append(0)
    history.drift.append(float(up.drift))
    history.seconds.append(elapsed)
    history.flags.append(list(up.flags))
    history.record_info(up.info)


def _dtype(dtype):
    dtype = np.dtype(dtype)
    if dtype not in (np.float32, np.float64):
        raise TypeError(f"dtype must be float32 or float64, got {dtype}")
    return dtype


def _check_record(loss_weights, eval_every, callback, d_out):
    if loss_weights is not None:
        loss_weights = np.asarray(loss_weights, dtype=np.float64)
        if loss_weights.shape != (d_out,) or not np.all(np.isfinite(loss_weights) & (loss_weights > 0)):
            raise ValueError(f"loss_weights must be {d_out} positive finite numbers, got {loss_weights!r}")
    if callback is not None and not callable(callback):
        raise TypeError(f"callback must be callable, got {callback!r}")
    return dict(loss_weights=loss_weights, eval_every=positive_int("eval_every", eval_every), callback=callback)


def _train_mlp(optimiser, widths, X, Y, iterations, X_test, Y_test, batch_size, seed, max_seconds, init,
               dtype, record):
    dtype = _dtype(dtype)
    params = mlp.init_mlp(widths, init=init, seed=seed, dtype=dtype)
    widths = mlp.widths_of(params)
    run = _check_run(X, Y, widths[0], widths[-1], dtype, X_test, Y_test, iterations, batch_size, max_seconds)
    X, Y, X_test, Y_test, iterations, batch_size, max_seconds = run
    return _run(optimiser.name, mlp._forward_cache, mlp._backward, optimiser, params, X, Y, X_test, Y_test,
                iterations, batch_size, seed, max_seconds, **_check_record(**record, d_out=widths[-1]))


def train_sgd(widths, X, Y, lr, iterations=200, X_test=None, Y_test=None, batch_size=None, seed=0,
              max_seconds=None, init="pytorch", dtype=np.float64, loss_weights=None, eval_every=1,
              callback=None):
    """SGD (``p <- p - lr ∇_p J``) on a biased MLP of ``widths``; returns ``(params, History)``.

    ``params = [W_1, b_1, ..., W_L, b_L]`` start from :func:`spherenet.baselines.mlp.init_mlp` with ``seed``.
    ``batch_size=None``: full batch (gradient descent); else mini-batches drawn with ``seed``.
    ``iterations=None`` runs until ``max_seconds`` of training time are used.
    For the record only (the optimiser always sees ``J``): ``loss_weights`` ``w`` make the recorded losses
    ``1/(2N) Σ_n Σ_j w_j (f_j - y_j)²`` (:mod:`.standardise`: the loss in physical units); the test loss (and
    in mini-batch runs the full training loss) is evaluated every ``eval_every`` iterations and at the last;
    ``callback(k, history)`` is called after every iteration (progress bars).
    """
    return _train_mlp(SGD(lr), widths, X, Y, iterations, X_test, Y_test, batch_size, seed, max_seconds,
                      init, dtype, dict(loss_weights=loss_weights, eval_every=eval_every, callback=callback))


def train_adam(widths, X, Y, lr, iterations=200, X_test=None, Y_test=None, batch_size=None, seed=0,
               max_seconds=None, betas=(0.9, 0.999), eps=1e-8, init="pytorch", dtype=np.float64,
               loss_weights=None, eval_every=1, callback=None):
    """Adam on a biased MLP of ``widths``; returns ``(params, History)``. Other arguments as :func:`train_sgd`."""
    return _train_mlp(Adam(lr, betas, eps), widths, X, Y, iterations, X_test, Y_test, batch_size, seed,
                      max_seconds, init, dtype,
                      dict(loss_weights=loss_weights, eval_every=eval_every, callback=callback))


def _gradients_only(weights, cache, Y):
    """``network._backward`` without keeping its adjoints (only Algorithm 1's jet reads them)."""
    return _plain_backward(weights, cache, Y, keep_adjoints=False)


def train_rsgd(net: NormalisedMLP, X, Y, lr, iterations=200, X_test=None, Y_test=None, batch_size=None,
               seed=0, max_seconds=None, eval_every=1, callback=None):
    """Retracted Riemannian SGD on ``net``'s spheres; returns ``(trained copy of net, History)``.

    ``net`` itself is not modified (so one network can start several runs, e.g. a learning-rate grid).
    ``seed`` only draws the mini-batches; the start is ``net``'s weights. Computes in ``net.dtype``.
    """
    if not isinstance(net, NormalisedMLP):
        raise TypeError(f"net must be a NormalisedMLP, got {type(net).__name__}")
    run = _check_run(X, Y, net.widths[0], net.widths[-1], net.dtype, X_test, Y_test, iterations, batch_size,
                     max_seconds)
    X, Y, X_test, Y_test, iterations, batch_size, max_seconds = run
    record = _check_record(None, eval_every, callback, net.widths[-1])
    trained = net.copy()
    trained.weights, history = _run("rsgd", _plain_forward, _gradients_only, RetractedSGD(lr, net.radii),
                                    [W.copy() for W in net.weights], X, Y, X_test, Y_test, iterations,
                                    batch_size, seed, max_seconds, **record)
    return trained, history


# --- AGD's network (Bernstein et al. 2023, reference code jxbz/agd: architecture/fcn.py, main.py) -------------

def agd_plain_weights(weights, relu_gain=AGD_RELU_GAIN) -> list:
    """AGD's network ``h_k = g relu(W_k h_(k-1))``, ``f = W_L h_(L-1)`` (``g = sqrt(2)``) as a plain bias-free
    ReLU net: relu is positively homogeneous, so it is ``spherenet.forward`` with ``[W_1, g W_2, ..., g W_L]``."""
    return [weights[0]] + [relu_gain * W for W in weights[1:]]


def _agd_forward(weights, X, relu_gain=AGD_RELU_GAIN):
    return _plain_forward(agd_plain_weights(weights, relu_gain), X)


def _agd_backward(weights, cache, Y, relu_gain=AGD_RELU_GAIN, per_output=True):
    """Gradients of the authors' square loss ``ℓ = 1/(2 d_L N) Σ_n ||f(x_n) - y_n||²`` (their section 3;
    ``per_output=False``: ``1/(2N) Σ ...``): ``∇_{W_k} ℓ = c_k ∇_k J / d_L`` with ``c_1 = 1``, ``c_k = g``
    (chain rule through the plain weights). The value returned is ``J``, the loss the loop records."""
    J, grads = _gradients_only(agd_plain_weights(weights, relu_gain), cache, Y)
    d_L = weights[-1].shape[0] if per_output else 1
    return J, [g / d_L if k == 0 else g * (relu_gain / d_L) for k, g in enumerate(grads)]


def train_agd(widths, X, Y, iterations=200, X_test=None, Y_test=None, batch_size=None, seed=0,
              max_seconds=None, dtype=np.float64, gain=1.0, loss_weights=None, eval_every=1, callback=None,
              relu_gain=AGD_RELU_GAIN, per_output=True):
    """AGD as its authors define and run it, on the arrays given; returns ``(weights, History)``.

    Network: bias-free, ``h_k = sqrt(2) relu(W_k h_(k-1))`` (:func:`agd_plain_weights`); start
    :func:`spherenet.baselines.optimisers.agd_init` with ``seed``; loss ``1/(2 d_L N) Σ ||f - y||²``; update
    :class:`AGD` (``gain`` 1, the authors' default). Their prescription also scales the data,
    ``||x|| = sqrt(d_0)``, ``||y|| = sqrt(d_L)``: :func:`spherenet.baselines.run_baseline` standardises inputs
    and targets for that. Evaluate the result with ``spherenet.forward(agd_plain_weights(weights), X)``.
    ``relu_gain=1`` and ``per_output=False`` (the plain network and ``J``) only serve to show what each of
    the authors' conventions does (``benchmarks/bench_agd.py``). Other arguments as :func:`train_sgd`.
    """
    dtype = _dtype(dtype)
    weights = agd_init(widths, seed=seed, dtype=dtype)
    d_in, d_out = weights[0].shape[1], weights[-1].shape[0]
    run = _check_run(X, Y, d_in, d_out, dtype, X_test, Y_test, iterations, batch_size, max_seconds)
    X, Y, X_test, Y_test, iterations, batch_size, max_seconds = run
    relu_gain = finite_float("relu_gain", relu_gain, positive=True)
    forward = partial(_agd_forward, relu_gain=relu_gain)
    backward = partial(_agd_backward, relu_gain=relu_gain, per_output=bool(per_output))
    return _run("agd", forward, backward, AGD(gain), weights, X, Y, X_test, Y_test, iterations, batch_size, seed,
                max_seconds, **_check_record(loss_weights, eval_every, callback, d_out))
