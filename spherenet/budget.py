"""The default Lipschitz budget: chosen on a validation part of the training data, nothing to tune.

With the standard scaling (:class:`spherenet.data.StandardScaling`) the user may state the budget ``K``,
the certified Lipschitz constant of the learned map in physical units. Without one, :func:`select_lipschitz`
walks a ladder of budgets and keeps the smallest one whose validation error is within ``TOLERANCE`` of
the best seen:

    rho in LADDER (largest scaled target max_n ||y_s,n||, descending)
    K(rho) = M prod_i mu_i a / (rho min_j s_j),     M = max_n ||y_n - ybar||       (so max ||y_s|| = rho)
    K* = min { K(rho) : e_val(K(rho)) <= (1 + TOLERANCE) min_rho e_val(K(rho)) }

``rho`` is scale-free: the network's inputs lie in the unit ball and ``prod mu_i`` bounds its gain, so
``rho = 1`` asks for all of that gain at the largest target, and small ``rho`` leaves room for everything
but the largest targets. Each rung trains the run's own method, widths and seed as long as the run will
train (its iterations, at least ``RUNG_ITERATIONS``, and its time budget, if any) on the fit part and measures
the RMSE [N] on the validation part, which is made the way the test part is (random rows, or whole flights).
The best budget grows with the horizon: a loose budget fits more slowly and, trained longer, fits better
(docs/beyond.md §8). A resumed run keeps the budget its checkpoint was trained at. The walk stops
early once a rung is worse than the best by more than ``TOLERANCE`` (the error is U-shaped in ``log K``:
a tight budget cannot fit, a loose one fits slowly and generalises worse).

A sphere method's ``batch_size="auto"`` (the main job's) is chosen next, at that budget, on the same parts:
:func:`select_batch_size` halves the batch from ``FIRST_BATCH`` while the validation error falls.
"""
from __future__ import annotations

import time

import numpy as np

LADDER = tuple(10.0 ** -e for e in (1.5, 2.0, 2.5, 3.0, 3.5, 4.0))
TOLERANCE = 0.05
RUNG_ITERATIONS = 200
VALIDATION_FRACTION = 0.2
# batch_size="auto" of a sphere method (select_batch_size): from FIRST_BATCH, halved while the validation error
# falls, down to SMALLEST_BATCH
FIRST_BATCH = 1024
SMALLEST_BATCH = 256


def budget_for(rho: float, X, Y, radii_product: float, bias: bool = True) -> float:
    """The budget at which the largest scaled training target has norm ``rho``.

    Parameters
    ----------
    rho : float
        The norm wanted for the largest scaled target (a rung of ``LADDER``).
    X, Y : array_like
        Raw training features ``(N, d)`` and targets ``(N, m)``.
    radii_product : float
        ``prod_i mu_i`` of the network.
    bias : bool
        Whether the scaling adds the bias feature.

    Returns
    -------
    float
        ``K(rho) = max_n ||y_n - ȳ|| / rho * prod_i mu_i * a / min_j s_j``.
    """
    from .data import StandardScaling
    unit = StandardScaling.fit(X, Y, 1.0, radii_product, bias)
    M = float(np.sqrt(np.sum((np.asarray(Y, np.float64) - np.asarray(unit.y_mean)) ** 2, axis=1)).max())
    if not M > 0:
        raise ValueError("y is constant in the training data: there is no spread to choose a Lipschitz budget "
                         "for; give the budget (lipschitz=K, --lipschitz K)")
    return M / rho * radii_product * unit.input_lipschitz


def validation_rows(train, split: str = "random", seed=0) -> np.ndarray:
    """A boolean mask of the training rows held out for validation, made the way the test part was: a
    seeded fifth of the rows (``split="random"``) or of the flights (``"flights"``, ``train`` a FlightData)."""
    from .experiments import held_out_flights
    n = len(train.X) if hasattr(train, "X") else len(train)
    if split == "flights" and len(train.flight_ids) >= 2:
        return np.isin(train.flight, held_out_flights(train.flight_ids, VALIDATION_FRACTION, seed))
    if n < 3:
        raise ValueError(f"X: choosing the Lipschitz budget needs at least 3 training samples (n_samples={n}), "
                         f"two to fit and one to validate; give the budget (lipschitz=K)")
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng(seed).permutation(n)[n - max(1, int(round(VALIDATION_FRACTION * n))):]] = True
    return mask


def validation_error(X, Y, held_out, lipschitz: float, widths, method, seed=0, dtype=np.float64, radius="unit",
                     batch_size=None, threads=1, rule_options=None, norm="frobenius", iterations=RUNG_ITERATIONS,
                     max_seconds=None) -> float:
    """The validation RMSE [N] of one run at the budget ``lipschitz``: the standard scaling fitted on the rows not
    ``held_out``, the network trained there as :func:`spherenet.train.train` is told, scored on ``held_out``.

    Parameters
    ----------
    X, Y : ndarray
        Raw training features and targets, float64.
    held_out : array_like of bool
        The validation rows.
    lipschitz : float
        The budget ``K``.
    widths, method, seed, dtype, radius, batch_size, threads, rule_options, norm, iterations, max_seconds
        How the network is made and trained.

    Returns
    -------
    float
        The RMSE of the model the run reports (:func:`spherenet.train.trained_network`).
    """
    from .data import StandardScaling
    from .network import NormalisedMLP
    from .train import train
    held_out = np.asarray(held_out, dtype=bool)
    net = NormalisedMLP(widths, radius, seed=seed, dtype=dtype)
    scaling = StandardScaling.fit(X[~held_out], Y[~held_out], lipschitz, float(np.prod(net.radii)))
    fit_X, fit_Y = scaling.transform_inputs(X[~held_out]), scaling.transform_targets(Y[~held_out])
    val_X, val_Y = scaling.transform_inputs(X[held_out]), scaling.transform_targets(Y[held_out])
    history = train(net, fit_X.astype(dtype), fit_Y.astype(dtype), method, iterations, val_X.astype(dtype),
                    val_Y.astype(dtype), batch_size=batch_size, seed=seed, threads=threads, norm=norm,
                    eval_every=max(iterations, 1), max_seconds=max_seconds, **(rule_options or {}))
    return float(scaling.rmse_newtons(history.loss_test[-1]))


def first_batch(batch_size):
    """The batch size to train with before ``"auto"`` is chosen: ``FIRST_BATCH``, where the walk of
    :func:`select_batch_size` starts (any other ``batch_size`` as it is)."""
    return FIRST_BATCH if isinstance(batch_size, str) and batch_size == "auto" else batch_size


def chosen_error(table: dict) -> float:
    """The validation RMSE of the rung :func:`select_lipschitz` chose (``table`` is its second result)."""
    return next(r["rmse_validation"] for r in table["rungs"] if r["lipschitz"] == table["chosen"])


def choose_budget(rungs, tolerance: float = TOLERANCE) -> dict:
    """The rung with the smallest ``lipschitz`` among those with ``rmse_validation <= (1 + tolerance) best``."""
    best = min(r["rmse_validation"] for r in rungs)
    return min((r for r in rungs if r["rmse_validation"] <= (1 + tolerance) * best), key=lambda r: r["lipschitz"])


def select_lipschitz(X, Y, held_out, widths, method="geo-cg-layer", seed=0, dtype=np.float64, radius="unit",
                     batch_size=None, threads=1, rule_options=None, progress=None,
                     norm="frobenius", iterations: int = RUNG_ITERATIONS,
                     max_seconds: float | None = None) -> tuple[float, dict]:
    """Choose the Lipschitz budget on a validation part of the training data.

    Parameters
    ----------
    X, Y : array_like
        Raw training features ``(N, d)`` and targets ``(N, m)``.
    held_out : array_like of bool, shape (N,)
        The validation rows (:func:`validation_rows`).
    widths : sequence of int
        The network's widths; its input width is ``d + 1`` (the bias feature).
    method, seed, dtype, radius, batch_size, threads, rule_options, norm
        How every rung's network is made and trained (:func:`spherenet.train.train`).
    iterations, max_seconds : optional
        The run's length: every rung trains ``max(iterations, RUNG_ITERATIONS)`` iterations, stopped after
        ``max_seconds`` of training if given.
    progress : callable, optional
        ``progress(rungs_done, rung)`` after every rung.

    Returns
    -------
    K : float
        The chosen budget.
    table : dict
        The rule, the sizes of the two parts, every rung tried (``rho``, ``lipschitz``,
        ``rmse_validation``), the chosen ``K`` and the seconds spent.

    Notes
    -----
    For each ``rho`` of ``LADDER`` the network is trained as long as the run at ``K(rho)``
    (:func:`budget_for`) on the other rows and scored on ``held_out``; the ladder stops once a rung is worse
    than ``(1 + TOLERANCE)`` times the best, and the smallest ``K`` within that of the best is chosen
    (:func:`choose_budget`; docs/method.md §7).
    """
    from .network import NormalisedMLP
    start = time.perf_counter()
    held_out = np.asarray(held_out, dtype=bool)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    rungs, rung_iterations = [], max(int(iterations), RUNG_ITERATIONS)
    run = dict(widths=widths, method=method, seed=seed, dtype=dtype, radius=radius, batch_size=batch_size,
               threads=threads, rule_options=rule_options, norm=norm, iterations=rung_iterations,
               max_seconds=max_seconds)
    for rho in LADDER:
        K = budget_for(rho, X, Y, float(np.prod(NormalisedMLP(widths, radius, seed=seed).radii)))
        error = validation_error(X, Y, held_out, K, **run)
        rungs.append({"rho": rho, "lipschitz": K, "rmse_validation": error})
        if progress:
            progress(len(rungs), rungs[-1])
        if error > (1 + TOLERANCE) * min(r["rmse_validation"] for r in rungs):
            break
    chosen = choose_budget(rungs)
    table = {"rule": f"smallest K within {TOLERANCE:.0%} of the best validation RMSE", "tolerance": TOLERANCE,
             "iterations": rung_iterations, "max_seconds": max_seconds, "n_fit": int((~held_out).sum()),
             "n_validation": int(held_out.sum()),
             "rungs": rungs, "chosen": chosen["lipschitz"], "seconds": time.perf_counter() - start}
    return chosen["lipschitz"], table


def select_batch_size(X, Y, held_out, lipschitz: float, widths, method, seed=0, dtype=np.float64,
                      radius="unit", threads=1, rule_options=None, norm="frobenius", iterations: int = RUNG_ITERATIONS,
                      max_seconds: float | None = None, first_error: float | None = None,
                      progress=None) -> tuple[int, dict]:
    """Choose the mini-batch size on the validation part: halve it while the validation error falls.

        B_0 = FIRST_BATCH (1024),   B_{j+1} = B_j / 2   while   B_{j+1} >= SMALLEST_BATCH (256)
                                                         and    e(B_{j+1}) < e(B_j)

    ``e(B)``: the validation RMSE of a run of the run's length at the budget ``lipschitz`` with batches of ``B``
    (:func:`validation_error`). At the same number of steps a smaller batch costs less per step and adds noise,
    which helps on some data (the simulator) and hurts on others (the real-format set; docs/beyond.md §10).

    Parameters
    ----------
    X, Y, held_out, lipschitz, widths, method, seed, dtype, radius, threads, rule_options, norm
        As :func:`validation_error`.
    iterations, max_seconds : optional
        The run's length (at least ``RUNG_ITERATIONS`` iterations), as in :func:`select_lipschitz`.
    first_error : float, optional
        ``e(B_0)`` when it is known: the budget ladder's chosen rung, trained with ``B_0`` exactly so.
    progress : callable, optional
        ``progress(sizes_tried, last)`` after every run trained here.

    Returns
    -------
    B : int
        The chosen batch size.
    table : dict
        The rule, every size tried (``batch_size``, ``rmse_validation``), the chosen one and the seconds spent.

    Notes
    -----
    A size at or above the fit part's rows is full batch; the walk does not try two of those (the same run).
    """
    start = time.perf_counter()
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    n_fit = int((~np.asarray(held_out, dtype=bool)).sum())
    run = dict(widths=widths, method=method, seed=seed, dtype=dtype, radius=radius, threads=threads,
               rule_options=rule_options, norm=norm, iterations=max(int(iterations), RUNG_ITERATIONS),
               max_seconds=max_seconds)
    tried, size = [], FIRST_BATCH
    if first_error is not None:
        tried.append({"batch_size": size, "rmse_validation": first_error})
        size //= 2
    while size >= SMALLEST_BATCH and (not tried or size < n_fit):
        tried.append({"batch_size": size,
                      "rmse_validation": validation_error(X, Y, held_out, lipschitz, batch_size=size, **run)})
        if progress:
            progress(len(tried), tried[-1])
        if len(tried) > 1 and not tried[-1]["rmse_validation"] < tried[-2]["rmse_validation"]:
            break
        size //= 2
    chosen = min(tried, key=lambda t: t["rmse_validation"])["batch_size"]       # a tie keeps the larger
    return chosen, {"rule": f"halve the batch from {FIRST_BATCH} while the validation RMSE falls (down to "
                            f"{SMALLEST_BATCH})", "tried": tried, "chosen": chosen,
                    "seconds": time.perf_counter() - start}
