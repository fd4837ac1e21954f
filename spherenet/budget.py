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
but the largest targets. Each rung trains the run's own method, widths and seed for ``RUNG_ITERATIONS``
iterations (whatever the run's length, so that a resumed run finds the same budget) on the fit part and measures the RMSE [N] on the
validation part, which is made the way the test part is (random rows, or whole flights). The walk stops
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


def budget_for(rho: float, train, radii_product: float, bias: bool = True) -> float:
    """``K(rho)``: the budget at which the largest scaled training target has norm ``rho``."""
    from .data import StandardScaling
    unit = StandardScaling.fit(train.X, train.Y, 1.0, radii_product, bias)      # t = min s / (a prod mu)
    M = float(np.sqrt(np.sum((train.Y - np.asarray(unit.y_mean)) ** 2, axis=1)).max())
    return M / rho * radii_product * unit.input_lipschitz


def validation_parts(train, split: str, seed: int):
    """``(fit, validation)`` of the training data, made the way the test part was (``split``)."""
    from .data import random_split, split_by_flight
    from .experiments import held_out_flights
    if split == "flights" and len(train.flight_ids) >= 2:
        return split_by_flight(train, held_out_flights(train.flight_ids, VALIDATION_FRACTION, seed))
    return random_split(train, VALIDATION_FRACTION, seed=seed)


def choose_budget(rungs, tolerance: float = TOLERANCE) -> dict:
    """The rung with the smallest ``lipschitz`` among those with ``rmse_validation <= (1 + tolerance) best``."""
    best = min(r["rmse_validation"] for r in rungs)
    return min((r for r in rungs if r["rmse_validation"] <= (1 + tolerance) * best), key=lambda r: r["lipschitz"])


def select_lipschitz(s: dict, train, threads: int = 1, progress=None) -> tuple[float, dict]:
    """``(K*, table)`` for run settings ``s`` (see the module docstring); ``table`` records every rung."""
    from .experiments import fit_scaling, network_widths, scaled_arrays
    from .network import NormalisedMLP
    from .train import train as train_loop
    start = time.perf_counter()
    fit, validation = validation_parts(train, s["split"], s["data_seed"])
    dtype = np.dtype(s["dtype"]).type
    iterations = RUNG_ITERATIONS
    options = {"order": s["order"]} if s["method"] == "taylor" else {}
    rungs = []
    for rho in LADDER:
        net = NormalisedMLP(network_widths(s), seed=s["seed"], dtype=dtype)
        K = budget_for(rho, train, float(np.prod(net.radii)))
        scaling = fit_scaling(dict(s, lipschitz=K), fit, net)
        (X, Y, Xv, Yv), _ = scaled_arrays(fit, validation, net, dtype, scaling)
        history = train_loop(net, X, Y, s["method"], iterations, Xv, Yv, batch_size=s["batch_size"],
                             seed=s["seed"], threads=threads, **options)
        error = float(scaling.rmse_newtons(history.loss_test[-1]))
        rungs.append({"rho": rho, "lipschitz": K, "rmse_validation": error})
        if progress:
            progress(len(rungs), rungs[-1])
        best = min(r["rmse_validation"] for r in rungs)
        if error > (1 + TOLERANCE) * best:
            break
    chosen = choose_budget(rungs)
    table = {"rule": f"smallest K within {TOLERANCE:.0%} of the best validation RMSE", "tolerance": TOLERANCE,
             "iterations": iterations, "n_fit": len(fit), "n_validation": len(validation), "rungs": rungs,
             "chosen": chosen["lipschitz"], "seconds": time.perf_counter() - start}
    return chosen["lipschitz"], table
