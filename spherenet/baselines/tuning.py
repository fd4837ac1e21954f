"""Learning-rate grid search on a validation part of the training data, and the one-call baselines.

The Euclidean optimisers need a learning rate, so each is *tuned* the way a careful user would: train on
80 % of the training data for every rate of a log grid, keep the rate with the lowest final loss on the
other 20 % (the validation part — never the test set), retrain on all the training data with it. spherenet's
step rules need none of this; the table is part of the comparison.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import numpy as np

from .._checks import as_float_matrix, check_choice, check_data, finite_float
from ..network import _forward_cache as _plain_forward
from ..network import NormalisedMLP
from . import mlp
from .trainers import diverged, train_adam, train_agd, train_rsgd, train_sgd


def log_grid(low_exp: float, high_exp: float, per_decade: int = 2) -> tuple[float, ...]:
    """``10^e`` for ``e = low_exp, low_exp + 1/per_decade, ..., high_exp``."""
    n = int(round((high_exp - low_exp) * per_decade))
    return tuple(float(10.0 ** (low_exp + j / per_decade)) for j in range(n + 1))


# Half-decade grids, wide enough that the winner is inside. Measured on the default problem (10^4 simulated
# samples, unit-norm inputs, targets scaled to P_op ~ 0.04 as in METHOD.md §2, 12-25-30-15-3, 200 full-batch
# iterations, seed 0): SGD's gradients are tiny there, its best rate is 1 (3.16 blows up to J ~ 1e133, 10
# diverges); Adam's best is 0.01, with both neighbours worse.
GRIDS = {
    "sgd": log_grid(-3, 1),       # 1e-3 ... 10, 9 rates
    "adam": log_grid(-4, -1),     # 1e-4 ... 0.1, 7 rates
}
# Retracted SGD takes a fixed rate, not tuned (that is the comparison). lr ||grad_i|| is roughly the angle
# turned on sphere i; on the same problem ||grad_i|| ~ 1e-4, and final training J after 200 iterations was
# 1.4e-4 / 1.0e-4 / 5.0e-5 / 8.5e-5 / 1.9e-4 for lr = 10 / 30 / 100 / 300 / 1000: 100 is the default.
RSGD_DEFAULT_LR = 100.0
BASELINES = ("sgd", "adam", "rsgd", "agd")


def validation_split(N: int, validation_fraction: float = 0.2, seed=0) -> tuple[np.ndarray, np.ndarray]:
    """Disjoint sorted index arrays ``(fit, validation)`` from a seeded permutation of ``range(N)``;
    the validation part has ``round(validation_fraction N)`` rows, and both parts at least one."""
    f = finite_float("validation_fraction", validation_fraction, positive=True)
    n_val = int(round(f * N))
    if not 0 < n_val < N:
        raise ValueError(f"validation_fraction={validation_fraction} leaves an empty fit or validation part "
                         f"of {N} samples")
    order = np.random.default_rng(seed).permutation(N)
    return np.sort(order[n_val:]), np.sort(order[:n_val])


def tune_lr(trainer, grid, X, Y, validation_fraction=0.2, seed=0, **options) -> tuple[float, list]:
    """Pick a learning rate from ``grid`` by the final loss on a validation part of ``(X, Y)``.

    ``trainer(X_fit, Y_fit, lr, X_test=X_val, Y_test=Y_val, seed=seed, **options) -> (params, History)``,
    e.g. ``functools.partial(train_adam, widths)``; ``options`` (``iterations``, ``batch_size``,
    ``max_seconds``...) are passed on. ``(X, Y)`` is the TRAINING data: a test set must not be passed.
    Returns ``(best_lr, table)``; ``table`` has one dict per rate, in grid order:
    ``{"lr", "val_loss", "iterations", "status"}`` with ``status`` ``"ok"`` or ``"diverged"`` (then
    ``val_loss`` is ``None``: a diverged run is a failed candidate, never a NaN). Ties go to the smaller rate.
    Raises ``ValueError`` when every rate diverges.
    """
    if "X_test" in options or "Y_test" in options:
        raise TypeError("tune_lr never sees a test set: it validates on a part of the training data")
    if not callable(trainer):
        raise TypeError(f"trainer must be callable, got {type(trainer).__name__}")
    X, Y = as_float_matrix("X", X), as_float_matrix("Y", Y)
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
    if isinstance(grid, (str, bytes)) or not hasattr(grid, "__len__") or len(grid) == 0:
        raise TypeError("grid must be a non-empty sequence of learning rates")
    grid = sorted(finite_float(f"grid[{i}]", lr, positive=True) for i, lr in enumerate(grid))
    fit, val = validation_split(len(X), validation_fraction, seed)
    table = []
    for lr in grid:
        _, h = trainer(X[fit], Y[fit], lr, X_test=X[val], Y_test=Y[val], seed=seed, **options)
        failed = diverged(h)
        table.append({"lr": lr, "val_loss": None if failed else float(h.loss_test[-1]),
                      "iterations": h.iterations, "status": "diverged" if failed else "ok"})
    ok = [row for row in table if row["status"] == "ok"]
    if not ok:
        raise ValueError(f"every learning rate of the grid diverged: {grid}")
    return min(ok, key=lambda row: row["val_loss"])["lr"], table


def format_tuning(table, best_lr=None) -> str:
    """The grid as text lines ``lr  validation loss``, the winner marked with ``*``."""
    lines = ["      lr    validation J"]
    for row in table:
        loss = "diverged" if row["val_loss"] is None else f"{row['val_loss']:.4e}"
        lines.append(f"{'*' if row['lr'] == best_lr else ' '} {row['lr']:9.3g}    {loss}")
    return "\n".join(lines)


# --- predictors and the one-call baselines ---------------------------------------------------------------

@dataclass
class Predictor:
    """A trained baseline: ``predictor(X) -> (N, d_L)``.

    ``params``: ``[W_1, b_1, ..., W_L, b_L]`` when ``biased`` (SGD, Adam, least squares), else the bias-free
    ``[W_1, ..., W_L]`` (retracted SGD, AGD); ``lr``: the learning rate used, or ``None``.
    """
    name: str
    params: list
    biased: bool
    lr: float | None = None

    def __call__(self, X) -> np.ndarray:
        X = as_float_matrix("X", X, self.params[0].shape[1], self.params[0].dtype)
        forward = mlp._forward_cache if self.biased else _plain_forward
        return forward(self.params, X).F


def fit_linear(X, Y) -> Predictor:
    """Least-squares affine map ``y ≈ W x + b`` (minimises ``J``), by ``lstsq`` on ``[X, 1]``."""
    X, Y = check_data(X, Y, None, None)
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]          # (d_0 + 1, d_L)
    return Predictor("linear", [np.ascontiguousarray(coef[:-1].T), coef[-1].copy()], biased=True)


def run_baseline(name, widths, X, Y, X_test=None, Y_test=None, iterations=200, seed=0, batch_size=None,
                 max_seconds=None, lr=None, grid=None, validation_fraction=0.2):
    """Train baseline ``name`` (one of ``BASELINES``) on ``(X, Y)``; returns ``(Predictor, History, table)``.

    ``"sgd"``/``"adam"``: biased MLP; ``lr=None`` tunes it by :func:`tune_lr` over ``grid`` (default
    ``GRIDS[name]``) with the same ``iterations``/``batch_size``/``max_seconds``, then retrains on all of
    ``(X, Y)``; ``table`` is the tuning table (``None`` when ``lr`` is given). ``"rsgd"``: a
    ``NormalisedMLP(widths, seed=seed)`` (the start spherenet's rules get for the same seed), fixed
    ``lr`` (default ``RSGD_DEFAULT_LR``). ``"agd"``: no learning rate. The test set is used only to record
    ``history.loss_test``.
    """
    check_choice("baseline", name, BASELINES)
    options = dict(iterations=iterations, batch_size=batch_size, max_seconds=max_seconds)
    if name == "agd":
        if lr is not None or grid is not None:
            raise ValueError("AGD has no learning rate: leave lr and grid unset")
        weights, h = train_agd(widths, X, Y, X_test=X_test, Y_test=Y_test, seed=seed, **options)
        return Predictor("agd", weights, biased=False), h, None
    if name == "rsgd":
        if grid is not None:
            raise ValueError("retracted SGD runs with a fixed learning rate: give lr, not grid")
        lr = RSGD_DEFAULT_LR if lr is None else lr
        net, h = train_rsgd(NormalisedMLP(widths, seed=seed), X, Y, lr, X_test=X_test, Y_test=Y_test,
                            seed=seed, **options)
        return Predictor("rsgd", net.weights, biased=False, lr=float(lr)), h, None
    trainer = partial({"sgd": train_sgd, "adam": train_adam}[name], widths)
    table = None
    if lr is None:
        lr, table = tune_lr(trainer, GRIDS[name] if grid is None else grid, X, Y,
                            validation_fraction=validation_fraction, seed=seed, **options)
    elif grid is not None:
        raise ValueError("give lr (fixed) or grid (tuned), not both")
    params, h = trainer(X, Y, lr, X_test=X_test, Y_test=Y_test, seed=seed, **options)
    return Predictor(name, params, biased=True, lr=float(lr)), h, table
