"""Training loops for the baselines, returning the same ``History`` as ``spherenet.train.train``.

One iteration: gradients on the batch (backward on the cached forward) -> optimiser update -> forward at the
new parameters. Full batch by default; ``batch_size`` draws mini-batches without replacement, epoch by
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

import numpy as np

from .._checks import check_data, finite_float, positive_int
from ..network import NormalisedMLP, _loss_from_output
from ..network import _backward as _plain_backward
from ..network import _forward_cache as _plain_forward
from ..train import History, _Batches
from . import mlp
from .optimisers import AGD, SGD, Adam, RetractedSGD, agd_init

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


def _run(method, forward, backward, optimiser, params, X, Y, X_test, Y_test, iterations, batch_size, seed,
         max_seconds):
    """The loop shared by every baseline (inputs already validated). Returns ``(params, History)``."""
    history = History(method)
    batches = _Batches(X, Y, batch_size, np.random.default_rng(seed))

    def evaluate(p, Xe, Ye):
        return _loss_from_output(forward(p, Xe).F, Ye)

    # Overflow inside a diverging run is detected below (non-finite loss/params) and reported in
    # stop_reason, so NumPy's overflow/invalid warnings would only repeat it.
    with np.errstate(over="ignore", invalid="ignore"):
        history.loss_train.append(evaluate(params, X, Y))
        if X_test is not None:
            history.loss_test.append(evaluate(params, X_test, Y_test))
        Xb, Yb = batches.next()
        cache = forward(params, Xb)
        elapsed, k = 0.0, 0
        while iterations is None or k < iterations:
            start = time.perf_counter()
            J, grads = backward(params, cache, Yb)
            up = optimiser(params, grads)
            if batches.full:
                new_cache = forward(up.params, X)
                J_new = J_train = _loss_from_output(new_cache.F, Y)
                elapsed += time.perf_counter() - start
            else:
                elapsed += time.perf_counter() - start
                J_new = evaluate(up.params, Xb, Yb)
                J_train = evaluate(up.params, X, Y)
            if not (math.isfinite(J_new) and math.isfinite(J_train) and _finite(up.params)):
                history.stop_reason = (f"{DIVERGED} at iteration {k + 1}: the loss or the parameters became "
                                       f"non-finite (loss {J_new}); stopped and kept the last good parameters")
                break
            params, k = up.params, k + 1
            if batches.full:
                cache = new_cache
            else:
                start = time.perf_counter()
                Xb, Yb = batches.next()
                cache = forward(params, Xb)
                elapsed += time.perf_counter() - start
            _record(history, up, J_new - J, J_train, elapsed)
            if X_test is not None:
                history.loss_test.append(evaluate(params, X_test, Y_test))
            if max_seconds is not None and elapsed >= max_seconds:
                history.stop_reason = f"time budget of {max_seconds:g} s reached after {k} iterations"
                break
    return params, history


def _record(history: History, up, actual, J_train, elapsed) -> None:
    history.loss_train.append(J_train)
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


def _train_mlp(optimiser, widths, X, Y, iterations, X_test, Y_test, batch_size, seed, max_seconds, init,
               dtype):
    dtype = _dtype(dtype)
    params = mlp.init_mlp(widths, init=init, seed=seed, dtype=dtype)
    widths = mlp.widths_of(params)
    run = _check_run(X, Y, widths[0], widths[-1], dtype, X_test, Y_test, iterations, batch_size, max_seconds)
    X, Y, X_test, Y_test, iterations, batch_size, max_seconds = run
    return _run(optimiser.name, mlp._forward_cache, mlp._backward, optimiser, params, X, Y, X_test, Y_test,
                iterations, batch_size, seed, max_seconds)


def train_sgd(widths, X, Y, lr, iterations=200, X_test=None, Y_test=None, batch_size=None, seed=0,
              max_seconds=None, init="pytorch", dtype=np.float64):
    """SGD (``p <- p - lr ∇_p J``) on a biased MLP of ``widths``; returns ``(params, History)``.

    ``params = [W_1, b_1, ..., W_L, b_L]`` start from :func:`spherenet.baselines.mlp.init_mlp` with ``seed``.
    ``batch_size=None``: full batch (gradient descent); else mini-batches drawn with ``seed``.
    ``iterations=None`` runs until ``max_seconds`` of training time are used.
    """
    return _train_mlp(SGD(lr), widths, X, Y, iterations, X_test, Y_test, batch_size, seed, max_seconds,
                      init, dtype)


def train_adam(widths, X, Y, lr, iterations=200, X_test=None, Y_test=None, batch_size=None, seed=0,
               max_seconds=None, betas=(0.9, 0.999), eps=1e-8, init="pytorch", dtype=np.float64):
    """Adam on a biased MLP of ``widths``; returns ``(params, History)``. Other arguments as :func:`train_sgd`."""
    return _train_mlp(Adam(lr, betas, eps), widths, X, Y, iterations, X_test, Y_test, batch_size, seed,
                      max_seconds, init, dtype)


def train_rsgd(net: NormalisedMLP, X, Y, lr, iterations=200, X_test=None, Y_test=None, batch_size=None,
               seed=0, max_seconds=None):
    """Retracted Riemannian SGD on ``net``'s spheres; returns ``(trained copy of net, History)``.

    ``net`` itself is not modified (so one network can start several runs, e.g. a learning-rate grid).
    ``seed`` only draws the mini-batches; the start is ``net``'s weights. Computes in ``net.dtype``.
    """
    if not isinstance(net, NormalisedMLP):
        raise TypeError(f"net must be a NormalisedMLP, got {type(net).__name__}")
    run = _check_run(X, Y, net.widths[0], net.widths[-1], net.dtype, X_test, Y_test, iterations, batch_size,
                     max_seconds)
    X, Y, X_test, Y_test, iterations, batch_size, max_seconds = run
    trained = net.copy()
    trained.weights, history = _run("rsgd", _plain_forward, _plain_backward, RetractedSGD(lr, net.radii),
                                    [W.copy() for W in net.weights], X, Y, X_test, Y_test, iterations,
                                    batch_size, seed, max_seconds)
    return trained, history


def train_agd(widths, X, Y, iterations=200, X_test=None, Y_test=None, batch_size=None, seed=0,
              max_seconds=None, dtype=np.float64):
    """AGD (METHOD.md §7) on the bias-free ReLU network of ``widths``; returns ``(weights, History)``.

    ``weights = [W_1, ..., W_L]`` start from :func:`spherenet.baselines.optimisers.agd_init` with ``seed``;
    evaluate them with ``spherenet.forward(weights, X)``.
    """
    dtype = _dtype(dtype)
    weights = agd_init(widths, seed=seed, dtype=dtype)
    d_in, d_out = weights[0].shape[1], weights[-1].shape[0]
    run = _check_run(X, Y, d_in, d_out, dtype, X_test, Y_test, iterations, batch_size, max_seconds)
    X, Y, X_test, Y_test, iterations, batch_size, max_seconds = run
    return _run("agd", _plain_forward, _plain_backward, AGD(), weights, X, Y, X_test, Y_test, iterations,
                batch_size, seed, max_seconds)
