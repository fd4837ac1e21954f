"""Learning-rate grid search on a validation part of the training data, and the one-call baselines.

The Euclidean optimisers need a learning rate, so each is *tuned* the way a careful user would: train on
80 % of the training data for every rate of a log grid, keep the rate with the lowest final loss on the
other 20 % (the validation part — never the test set), retrain on all the training data with it. spherenet's
step rules need none of this; the table is part of the comparison.
"""
from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial

import numpy as np

from .. import progress
from .._checks import as_float_matrix, check_choice, check_data, finite_float, positive_int
from ..network import _forward_cache as _plain_forward
from ..network import NormalisedMLP
from . import mlp
from .optimisers import AGD_RELU_GAIN
from .standardise import Standardiser
from .trainers import diverged, train_adam, train_agd, train_rsgd, train_sgd


def log_grid(low_exp: float, high_exp: float, per_decade: int = 2) -> tuple[float, ...]:
    """``10^e`` for ``e = low_exp, low_exp + 1/per_decade, ..., high_exp``."""
    n = int(round((high_exp - low_exp) * per_decade))
    return tuple(float(10.0 ** (low_exp + j / per_decade)) for j in range(n + 1))


# Half-decade grids, wide enough that the winner is inside. Measured on the default problem (10^4 simulated
# samples, unit-norm inputs, targets scaled to P_op ~ 0.04 as in docs/method.md §2, 12-25-30-15-3, 200 full-batch
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


MAX_EXTENSIONS = 4          # half-decade steps added beyond an edge of the grid that wins, per side
AUTO_BATCH_SIZES = (None, 256, 1024, 4096)      # batch_size="auto" picks one of these (None: full batch)


def _validated_grid(grid) -> list[float]:
    if isinstance(grid, (str, bytes)) or not hasattr(grid, "__len__"):
        raise TypeError("grid must be a sequence of learning rates")
    if len(grid) == 0:
        raise ValueError("the learning-rate grid is empty: give at least one rate")
    return sorted(set(finite_float(f"grid[{i}]", lr, positive=True) for i, lr in enumerate(grid)))


def _grid_ratio(grid) -> float:
    """The factor between neighbouring rates (their geometric mean step; sqrt(10) for a single rate)."""
    return (grid[-1] / grid[0]) ** (1 / (len(grid) - 1)) if len(grid) > 1 else 10 ** 0.5


def _best(table):
    ok = [row for row in table if row["status"] == "ok"]
    return min(ok, key=lambda row: (row["val_loss"], row["lr"])) if ok else None


def _edge_to_extend(table, ratio, added):
    """The next rate beyond the edge of the grid tried so far that won, or ``None`` when the winner is inside
    (or no rate converged, or ``MAX_EXTENSIONS`` were added on that side)."""
    best = _best(table)
    if best is None:
        return None
    lrs = sorted(row["lr"] for row in table)
    if best["lr"] == lrs[0] and added["low"] < MAX_EXTENSIONS:
        added["low"] += 1
        return lrs[0] / ratio
    if best["lr"] == lrs[-1] and added["high"] < MAX_EXTENSIONS:
        added["high"] += 1
        return lrs[-1] * ratio
    return None


def tune_lr(trainer, grid, X, Y, validation_fraction=0.2, seed=0, extend=True, progress=None,
            **options) -> tuple[float, list]:
    """Pick a learning rate from ``grid`` by the final loss on a validation part of ``(X, Y)``.

    ``trainer(X_fit, Y_fit, lr, X_test=X_val, Y_test=Y_val, seed=seed, **options) -> (params, History)``,
    e.g. ``functools.partial(train_adam, widths)``; ``options`` (``iterations``, ``batch_size``,
    ``max_seconds``, ``loss_weights``...) are passed on. ``(X, Y)`` is the TRAINING data: a test set must not
    be passed. ``extend``: when the winner is the smallest or the largest rate tried, the grid grows beyond
    that edge by its own ratio (half a decade for the default grids) until the winner is inside, at most
    ``MAX_EXTENSIONS`` rates per side; added rows have ``"extended": True``. ``progress(row)`` is called after
    every rate. Returns ``(best_lr, table)``; ``table`` has one dict per rate, sorted by rate:
    ``{"lr", "val_loss", "iterations", "status", "extended"}`` with ``status`` ``"ok"`` or ``"diverged"``
    (then ``val_loss`` is ``None``: a diverged run is a failed candidate, never a NaN). Ties go to the
    smaller rate. Raises ``ValueError`` for an empty grid and when every rate diverges.
    """
    if "X_test" in options or "Y_test" in options:
        raise TypeError("tune_lr never sees a test set: it validates on a part of the training data")
    if not callable(trainer):
        raise TypeError(f"trainer must be callable, got {type(trainer).__name__}")
    X, Y = as_float_matrix("X", X), as_float_matrix("Y", Y)
    if len(X) != len(Y):
        raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
    grid = _validated_grid(grid)
    fit, val = validation_split(len(X), validation_fraction, seed)

    def attempt(lr, extended):
        _, h = trainer(X[fit], Y[fit], lr, X_test=X[val], Y_test=Y[val], seed=seed, **options)
        failed = diverged(h)
        row = {"lr": lr, "val_loss": None if failed else float(h.loss_test[-1]), "iterations": h.iterations,
               "status": "diverged" if failed else "ok", "extended": extended}
        if progress is not None:
            progress(row)
        return row

    table = [attempt(lr, False) for lr in grid]
    added, ratio = {"low": 0, "high": 0}, _grid_ratio(grid)
    while extend and (lr := _edge_to_extend(table, ratio, added)) is not None:
        table.append(attempt(lr, True))
    table.sort(key=lambda row: row["lr"])
    best = _best(table)
    if best is None:
        raise ValueError(f"every learning rate of the grid diverged: {grid}")
    return best["lr"], table


def format_tuning(table, best_lr=None) -> str:
    """The tuning table as text lines ``[batch] lr  validation loss``: the winner (the row marked ``"best"``,
    else the rate ``best_lr``) marked ``*``, rates added beyond the given grid marked ``+``, and a warning
    line if the winner still lies at an edge of the rates tried."""
    batches = any("batch_size" in row for row in table)
    winner = next((row for row in table if row.get("best")),
                  next((row for row in table if row["lr"] == best_lr), None))
    lines = [("     batch" if batches else "") + "        lr    validation J"]
    for row in table:
        loss = "diverged" if row["val_loss"] is None else f"{row['val_loss']:.4e}"
        batch = f"{'full' if row.get('batch_size') is None else row['batch_size']:>10}" if batches else ""
        lines.append(f"{'*' if row is winner else ' '}{'+' if row.get('extended') else ' '}{batch} "
                     f"{row['lr']:9.3g}    {loss}")
    if any(row.get("extended") for row in table):
        lines.append("(+: added beyond the grid because the best rate was at its edge)")
    if winner is not None:
        same = sorted(r["lr"] for r in table if r.get("batch_size") == winner.get("batch_size"))
        if len(same) > 1 and winner["lr"] in (same[0], same[-1]):
            lines.append(f"warning: the best rate {winner['lr']:.3g} is still at the edge of the rates tried")
    return "\n".join(lines)


# --- predictors and the one-call baselines ---------------------------------------------------------------

@dataclass
class Predictor:
    """A trained baseline: ``predictor(X) -> (N, d_L)`` from raw inputs, in the units of the raw targets.

    ``params``: ``[W_1, b_1, ..., W_L, b_L]`` when ``biased`` (SGD, Adam, least squares), else the bias-free
    ``[W_1, ..., W_L]`` (retracted SGD, AGD); ``relu_gain``: the factor after every hidden ReLU (AGD's
    sqrt(2)); ``standardiser``: the data preparation it was trained with (``None``: the arrays as given);
    ``lr``, ``batch_size``: the settings used (tuned or given); ``seconds_tuning``: the time tuning took.
    """
    name: str
    params: list
    biased: bool
    lr: float | None = None
    standardiser: Standardiser | None = None
    relu_gain: float = 1.0
    batch_size: int | None = None
    seconds_tuning: float = 0.0

    def __call__(self, X) -> np.ndarray:
        X = as_float_matrix("X", X, self.params[0].shape[1])
        if self.standardiser is not None:
            X = self.standardiser.transform_inputs(X)
        X = X.astype(self.params[0].dtype)
        if self.biased:
            F = mlp._forward_cache(self.params, X).F
        else:
            weights = [self.params[0]] + [self.relu_gain * W for W in self.params[1:]]
            F = _plain_forward(weights, X).F
        return F if self.standardiser is None else self.standardiser.inverse_targets(F)


def fit_linear(X, Y) -> Predictor:
    """The least-squares affine map, a reference for every run's errors.

    Parameters
    ----------
    X : ndarray, shape (N, d)
        Inputs.
    Y : ndarray, shape (N, m)
        Targets.

    Returns
    -------
    Predictor
        ``x -> W x + b`` minimising ``sum_n ||W x_n + b - y_n||²`` (``lstsq`` on ``[X, 1]``).
    """
    X, Y = check_data(X, Y, None, None)
    A = np.hstack([X, np.ones((len(X), 1))])
    coef = np.linalg.lstsq(A, Y, rcond=None)[0]          # (d_0 + 1, d_L)
    return Predictor("linear", [np.ascontiguousarray(coef[:-1].T), coef[-1].copy()], biased=True)


def _check_batch(batch_size):
    if batch_size is None or isinstance(batch_size, str) and batch_size == "auto":
        return batch_size
    if isinstance(batch_size, str):
        raise ValueError(f"batch_size {batch_size!r}: give a positive integer, None (full batch) or 'auto'")
    return positive_int("batch_size", batch_size)


def _tune(trainer, grid, X, Y, batch_size, validation_fraction, seed, options, progress):
    """``(lr, batch_size, table)``: the rate (and, for ``batch_size="auto"``, the batch size from
    ``AUTO_BATCH_SIZES``) with the lowest validation loss; the table's winning row has ``"best": True``."""
    n_fit = len(X) - int(round(validation_fraction * len(X)))
    batches = [b for b in AUTO_BATCH_SIZES if b is None or b < n_fit] if batch_size == "auto" else [batch_size]
    table = []
    for b in batches:
        # Only the final validation loss counts: evaluate at the start and the last iteration only.
        _, rows = tune_lr(trainer, grid, X, Y, validation_fraction=validation_fraction, seed=seed,
                          progress=progress, batch_size=b, eval_every=2**62, **options)
        table += [{"batch_size": b, **row} for row in rows]
    best = min((r for r in table if r["status"] == "ok"), key=lambda r: (r["val_loss"], r["lr"]))
    best["best"] = True
    return best["lr"], best["batch_size"], table


def run_baseline(name, widths, X, Y, X_test=None, Y_test=None, iterations=200, seed=0, batch_size=None,
                 max_seconds=None, lr=None, grid=None, validation_fraction=0.2, standardise=True, eval_every=1,
                 quiet=True, dtype=np.float64):
    """Train a baseline optimiser as its own users run it.

    Parameters
    ----------
    name : {"sgd", "adam", "agd", "rsgd"}
        The baseline (``BASELINES``).
    widths : sequence of int
        The network's widths.
    X, Y : ndarray
        Training inputs and targets; losses are recorded in the units of ``Y``.
    X_test, Y_test : ndarray, optional
        Used only to record ``history.loss_test`` (every ``eval_every`` iterations).
    iterations, max_seconds, seed, batch_size, eval_every, dtype
        The training budget, seed, mini-batch size (``"auto"``: tuned with the rate, sgd and adam), how
        often the test loss is recorded, and the precision.
    lr : float, optional
        A fixed learning rate; ``None`` tunes it (sgd, adam) or takes ``RSGD_DEFAULT_LR`` (rsgd).
    grid : sequence of float, optional
        The rates to tune over (default ``GRIDS[name]``, extended past an edge that wins).
    validation_fraction, standardise, quiet
        The share of ``(X, Y)`` held out for tuning; whether inputs and targets are standardised with the
        training statistics (:mod:`.standardise`); ``False`` shows progress bars on a terminal.

    Returns
    -------
    predictor : Predictor
        The trained parameters and the data preparation around them.
    history : History
        What training recorded.
    table : list of dict or None
        The tuning table (``None`` when nothing was tuned).

    Notes
    -----
    ``"sgd"``/``"adam"`` (PyTorch's way): a biased MLP with PyTorch's default initialisation and Adam's
    defaults on standardised data; ``lr=None`` tunes the rate by :func:`tune_lr` with the same budget on a
    validation part, then retrains on all of ``(X, Y)``. ``"agd"`` (its authors' way, :func:`train_agd`):
    standardised data, no learning rate. ``"rsgd"``: a ``NormalisedMLP(widths, seed=seed)`` (the start
    spherenet's rules get for the same seed) on the arrays as given (give it the paper's scaling).
    """
    check_choice("baseline", name, BASELINES)
    batch_size = _check_batch(batch_size)
    if batch_size == "auto" and (name not in ("sgd", "adam") or lr is not None):
        raise ValueError("batch_size='auto' is tuned with the learning rate: it applies to sgd and adam "
                         "without a fixed lr")
    if name == "rsgd":
        return _run_rsgd(NormalisedMLP(widths, seed=seed, dtype=dtype), X, Y, X_test, Y_test, iterations, seed,
                         batch_size, max_seconds, lr, grid, eval_every, quiet)
    stand = Standardiser.fit(X, Y) if standardise else None
    data = _standardised(stand, X, Y, X_test, Y_test, dtype)
    options = dict(iterations=iterations, max_seconds=max_seconds, dtype=dtype,
                   loss_weights=None if stand is None else stand.loss_weights)
    if name == "agd":
        return _run_agd(widths, data, stand, seed, batch_size, eval_every, lr, grid, quiet, options)
    return _run_tuned(name, widths, data, stand, seed, batch_size, eval_every, lr, grid, validation_fraction,
                      quiet, options)


def _run_agd(widths, data, stand, seed, batch_size, eval_every, lr, grid, quiet, options):
    """AGD on the standardised ``data``: no learning rate to give or tune."""
    if lr is not None or grid is not None:
        raise ValueError("AGD has no learning rate: leave lr and grid unset")
    with _training_bar(options["iterations"], "training agd", quiet) as callback:
        weights, h = train_agd(widths, data[0], data[1], X_test=data[2], Y_test=data[3], seed=seed,
                               batch_size=batch_size, eval_every=eval_every, callback=callback, **options)
    return Predictor("agd", weights, False, standardiser=stand, relu_gain=AGD_RELU_GAIN,
                     batch_size=batch_size), h, None


def _run_tuned(name, widths, data, stand, seed, batch_size, eval_every, lr, grid, validation_fraction, quiet,
               options):
    """SGD or Adam on the standardised ``data``: the rate (and an ``"auto"`` batch size) tuned unless given."""
    trainer = partial({"sgd": train_sgd, "adam": train_adam}[name], widths)
    table, seconds_tuning = None, 0.0
    if lr is None:
        start = time.perf_counter()
        with _tuning_bar(name, quiet) as progress:
            lr, batch_size, table = _tune(trainer, GRIDS[name] if grid is None else grid, data[0], data[1],
                                          batch_size, validation_fraction, seed, options, progress)
        seconds_tuning = time.perf_counter() - start
    elif grid is not None:
        raise ValueError("give lr (fixed) or grid (tuned), not both")
    with _training_bar(options["iterations"], f"training {name}", quiet) as callback:
        params, h = trainer(*data[:2], lr, X_test=data[2], Y_test=data[3], seed=seed, batch_size=batch_size,
                            eval_every=eval_every, callback=callback, **options)
    return Predictor(name, params, True, lr=float(lr), standardiser=stand, batch_size=batch_size,
                     seconds_tuning=seconds_tuning), h, table


def _run_rsgd(net, X, Y, X_test, Y_test, iterations, seed, batch_size, max_seconds, lr, grid, eval_every,
              quiet):
    if grid is not None:
        raise ValueError("retracted SGD runs with a fixed learning rate: give lr, not grid")
    lr = RSGD_DEFAULT_LR if lr is None else lr
    with _training_bar(iterations, "training rsgd", quiet) as callback:
        net, h = train_rsgd(net, X, Y, lr, X_test=X_test, Y_test=Y_test,
                            seed=seed, iterations=iterations, batch_size=batch_size, max_seconds=max_seconds,
                            eval_every=eval_every, callback=callback)
    return Predictor("rsgd", net.weights, biased=False, lr=float(lr), batch_size=batch_size), h, None


def _standardised(stand, X, Y, X_test, Y_test, dtype=np.float64):
    """The arrays the baseline trains on: standardised (in float64, then stored in ``dtype``), or as given."""
    if stand is None:
        return X, Y, X_test, Y_test
    test = (None, None) if X_test is None else (stand.transform_inputs(X_test, dtype),
                                                stand.transform_targets(Y_test, dtype))
    return (stand.transform_inputs(X, dtype), stand.transform_targets(Y, dtype), *test)


@contextmanager
def _training_bar(iterations, desc, quiet):
    with progress.bar(iterations, desc, quiet) as pbar:
        yield progress.iteration_callback(pbar)


@contextmanager
def _tuning_bar(name, quiet):
    with progress.bar(None, f"tuning {name} (rates tried)", quiet, unit="rate") as pbar:
        def report(row):
            pbar.update(1)
            loss = "diverged" if row["val_loss"] is None else f"{row['val_loss']:.4g}"
            pbar.set_postfix_str(f"lr {row['lr']:.3g}: {loss}")
        yield report
