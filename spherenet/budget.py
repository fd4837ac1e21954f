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
"""
from __future__ import annotations

import time

import numpy as np

LADDER = tuple(10.0 ** -e for e in (1.5, 2.0, 2.5, 3.0, 3.5, 4.0))
TOLERANCE = 0.05
RUNG_ITERATIONS = 200
VALIDATION_FRACTION = 0.2


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
    from .data import StandardScaling
    from .network import NormalisedMLP
    from .train import train as train_loop
    start = time.perf_counter()
    held_out = np.asarray(held_out, dtype=bool)
    X, Y = np.asarray(X, np.float64), np.asarray(Y, np.float64)
    rungs, rung_iterations = [], max(int(iterations), RUNG_ITERATIONS)
    for rho in LADDER:
        net = NormalisedMLP(widths, radius, seed=seed, dtype=dtype)
        K = budget_for(rho, X, Y, float(np.prod(net.radii)))
        scaling = StandardScaling.fit(X[~held_out], Y[~held_out], K, float(np.prod(net.radii)))
        fit_X, fit_Y = scaling.transform_inputs(X[~held_out]), scaling.transform_targets(Y[~held_out])
        val_X, val_Y = scaling.transform_inputs(X[held_out]), scaling.transform_targets(Y[held_out])
        history = train_loop(net, fit_X.astype(dtype), fit_Y.astype(dtype), method, rung_iterations,
                             val_X.astype(dtype), val_Y.astype(dtype), batch_size=batch_size, seed=seed,
                             threads=threads, norm=norm, eval_every=rung_iterations, max_seconds=max_seconds,
                             **(rule_options or {}))
        error = float(scaling.rmse_newtons(history.loss_test[-1]))
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
