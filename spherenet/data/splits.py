"""Train/test splits of a :class:`FlightData`; each returns ``(train, test)``, both non-empty.

* :func:`random_split` - the paper's: a seeded random permutation, the first ``N - round(f N)`` samples
  train, the rest test. Samples of one flight land on both sides, so neighbouring (correlated) samples
  are shared: the test error measures interpolation. Rows keep their original order inside each part.
* :func:`split_by_flight` - whole flights to the test side (for real logs: generalisation to new flights).
* :func:`split_by_condition` - whole flights chosen by their metadata (e.g. wind speed bins, file-name
  condition), by a predicate ``meta -> bool`` or by ``key`` and an inclusive ``test_range``.
"""
from __future__ import annotations

from typing import Callable, Mapping

import numpy as np

from .._checks import finite_float
from .container import FlightData


def _check_data(data) -> FlightData:
    if not isinstance(data, FlightData):
        raise TypeError(f"data must be FlightData, got {type(data).__name__}")
    return data


def _by_mask(data: FlightData, test_mask: np.ndarray, what: str) -> tuple[FlightData, FlightData]:
    if test_mask.all() or not test_mask.any():
        side = "train" if test_mask.all() else "test"
        raise ValueError(f"{what} leaves the {side} part empty")
    return data.subset(np.flatnonzero(~test_mask)), data.subset(np.flatnonzero(test_mask))


def random_split(data: FlightData, test_fraction: float = 0.2, seed=0) -> tuple[FlightData, FlightData]:
    """Seeded random split: round(test_fraction N) samples to test. Same seed -> same split."""
    _check_data(data)
    f = finite_float("test_fraction", test_fraction)
    if not 0 < f < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    n = len(data)
    n_test = int(round(f * n))
    perm = np.random.default_rng(seed).permutation(n)
    mask = np.zeros(n, dtype=bool)
    mask[perm[n - n_test:]] = True
    return _by_mask(data, mask, f"test_fraction={test_fraction} with {n} samples")


def split_by_flight(data: FlightData, test_flights) -> tuple[FlightData, FlightData]:
    """Every sample of the flights ``test_flights`` (ids) to test, the other flights to train."""
    _check_data(data)
    ids = np.atleast_1d(np.asarray(test_flights))
    if ids.size == 0 or not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"test_flights must be a non-empty list of integer flight ids, got {test_flights!r}")
    unknown = np.setdiff1d(ids, data.flight_ids)
    if unknown.size:
        raise ValueError(f"test_flights: unknown flight id(s) {unknown.tolist()}; data has "
                         f"{data.flight_ids.tolist()}")
    return _by_mask(data, np.isin(data.flight, ids), f"test_flights={ids.tolist()}")


def _range_predicate(key: str, test_range) -> Callable[[Mapping], bool]:
    lo, hi = (finite_float("test_range[0]", test_range[0]), finite_float("test_range[1]", test_range[1]))
    if lo > hi:
        raise ValueError(f"test_range must be (lo, hi) with lo <= hi, got {test_range}")
    return lambda meta: lo <= float(meta[key]) <= hi


def split_by_condition(data: FlightData, predicate: Callable[[Mapping], bool] | None = None, *,
                       key: str | None = None, test_range=None) -> tuple[FlightData, FlightData]:
    """Whole flights to test where ``predicate(meta)`` is true, or where ``lo <= meta[key] <= hi``.

    Example: ``split_by_condition(data, key="wind_speed", test_range=(8, 12))`` holds out the windiest
    simulated flights; ``split_by_condition(data, lambda m: m["condition"] == "70wind")`` a Neural-Fly one.
    """
    _check_data(data)
    if (predicate is None) == (key is None):
        raise ValueError("give either predicate or key (with test_range), not both or neither")
    if key is not None:
        if test_range is None or len(test_range) != 2:
            raise ValueError("test_range must be a pair (lo, hi) when key is given")
        predicate = _range_predicate(key, test_range)
    elif not callable(predicate):
        raise TypeError(f"predicate must be callable meta -> bool, got {type(predicate).__name__}")
    test_ids = []
    for fid, meta in data.meta.items():
        try:
            if predicate(meta):
                test_ids.append(fid)
        except KeyError as err:
            raise ValueError(f"flight {fid}: metadata has no key {err.args[0]!r}") from None
    return _by_mask(data, np.isin(data.flight, test_ids), "the condition")
