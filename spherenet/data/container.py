"""``FlightData``: the one container every data source returns (simulator and CSV loaders alike).

Layout (the paper's 12 -> 3 interface, samples as rows)::

    X (N, 12) float64   z [m] | v_x v_y v_z [m/s, world frame] | q_x q_y q_z q_w (scalar last) | u_1..u_4
    Y (N, 3)  float64   F_a,x F_a,y F_a,z [N, world frame]
    flight (N,) int64   flight id of each sample
    t (N,) float64      time within its flight [s]

``u`` is the normalised rotor feature: rotor speed in RPM / 8000 for the simulator (the paper's choice),
motor command / ``pwm_scale`` for Neural-Fly logs, the file's own column for Neural-Lander logs.
``meta`` maps each flight id to a dict of facts about that flight (trajectory kind, wind, source file...),
which the by-condition splits read.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Mapping, Sequence

import numpy as np

from .._checks import as_float_matrix, check_finite

FEATURE_NAMES = ("z", "v_x", "v_y", "v_z", "q_x", "q_y", "q_z", "q_w", "u_1", "u_2", "u_3", "u_4")
TARGET_NAMES = ("fa_x", "fa_y", "fa_z")


def _as_vector(name: str, value, n: int, dtype) -> np.ndarray:
    arr = np.asarray(value)
    if arr.ndim != 1 or arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n},), got {arr.shape}")
    if dtype is np.int64:
        if not (np.issubdtype(arr.dtype, np.integer) or arr.dtype == bool):
            raise TypeError(f"{name} must hold integers (flight ids), got dtype {arr.dtype}")
        return np.ascontiguousarray(arr, dtype=np.int64)
    arr = np.ascontiguousarray(arr, dtype=np.float64)
    check_finite(name, arr)
    return arr


def _freeze_meta(meta, flights: np.ndarray) -> Mapping[int, Mapping]:
    meta = {} if meta is None else meta
    if not isinstance(meta, Mapping):
        raise TypeError(f"meta must be a mapping flight id -> dict, got {type(meta).__name__}")
    present = set(np.unique(flights).tolist())
    out = {}
    for key, value in meta.items():
        if int(key) in present:
            out[int(key)] = MappingProxyType(dict(value))
    for fid in sorted(present - set(out)):
        out[fid] = MappingProxyType({})
    return MappingProxyType(dict(sorted(out.items())))


@dataclass(frozen=True, eq=False)
class FlightData:
    """Samples of one or more flights; immutable (arrays are made read-only).

    X: (N, d_in) inputs, Y: (N, d_out) targets [N], flight: (N,) int flight ids, t: (N,) [s],
    feature_names: d_in names, target_names: d_out names, source: where the data came from,
    meta: {flight id: {fact: value}} (flights without facts get an empty dict).
    """

    X: np.ndarray
    Y: np.ndarray
    flight: np.ndarray
    t: np.ndarray
    feature_names: tuple = FEATURE_NAMES
    target_names: tuple = TARGET_NAMES
    source: str = ""
    meta: Mapping[int, Mapping] = field(default=None)

    def __post_init__(self):
        fnames, tnames = tuple(self.feature_names), tuple(self.target_names)
        X = as_float_matrix("X", self.X, len(fnames), allow_empty=True)
        Y = as_float_matrix("Y", self.Y, len(tnames), allow_empty=True)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        flight = _as_vector("flight", self.flight, X.shape[0], np.int64)
        t = _as_vector("t", self.t, X.shape[0], np.float64)
        if not isinstance(self.source, str):
            raise TypeError(f"source must be a str, got {type(self.source).__name__}")
        for arr in (X, Y, flight, t):
            arr.flags.writeable = False
        for name, value in (("X", X), ("Y", Y), ("flight", flight), ("t", t), ("feature_names", fnames),
                            ("target_names", tnames), ("meta", _freeze_meta(self.meta, flight))):
            object.__setattr__(self, name, value)

    def __len__(self) -> int:
        return self.X.shape[0]

    def __repr__(self) -> str:
        return (f"FlightData(n={len(self)}, flights={len(self.flight_ids)}, d_in={self.X.shape[1]}, "
                f"d_out={self.Y.shape[1]}, source={self.source!r})")

    @property
    def flight_ids(self) -> np.ndarray:
        """Sorted distinct flight ids, shape (n_flights,)."""
        return np.unique(self.flight)

    def subset(self, idx) -> "FlightData":
        """Rows ``idx`` (integer indices or a boolean mask of length N), in the given order."""
        idx = np.asarray(idx)
        if idx.dtype == bool:
            if idx.shape != (len(self),):
                raise ValueError(f"idx: boolean mask must have shape ({len(self)},), got {idx.shape}")
        elif idx.size and not np.issubdtype(idx.dtype, np.integer):
            raise TypeError(f"idx must be integer indices or a boolean mask, got dtype {idx.dtype}")
        elif idx.size and (idx.min() < -len(self) or idx.max() >= len(self)):
            raise ValueError(f"idx: index out of range for {len(self)} samples")
        idx = idx.astype(np.int64) if idx.dtype != bool else idx
        return FlightData(self.X[idx], self.Y[idx], self.flight[idx], self.t[idx], self.feature_names,
                          self.target_names, self.source, self.meta)

    def flights(self, ids: Sequence[int]) -> "FlightData":
        """All samples of the flights ``ids``."""
        return self.subset(np.isin(self.flight, np.asarray(ids, dtype=np.int64)))


def concat(parts: Sequence[FlightData], renumber: bool = False) -> FlightData:
    """Stack ``parts`` row-wise.

    Flight ids must not clash with different metadata unless ``renumber=True``, which offsets each part's
    ids so they follow the previous part's largest id. Feature and target names must agree.
    """
    parts = list(parts)
    if not parts or not all(isinstance(p, FlightData) for p in parts):
        raise TypeError("parts must be a non-empty sequence of FlightData")
    first = parts[0]
    for i, p in enumerate(parts[1:], 1):
        if p.feature_names != first.feature_names or p.target_names != first.target_names:
            raise ValueError(f"parts[{i}] has different feature/target names from parts[0]")
    flights, meta, offset = [], {}, 0
    for i, p in enumerate(parts):
        ids = p.flight + offset if renumber else p.flight
        for fid, m in p.meta.items():
            key = int(fid) + offset if renumber else int(fid)
            if key in meta and dict(meta[key]) != dict(m):
                raise ValueError(f"parts[{i}]: flight id {key} already used with different metadata; "
                                 f"pass renumber=True")
            meta[key] = m
        flights.append(ids)
        if renumber and len(p):
            offset = int(ids.max()) + 1
    sources = list(dict.fromkeys(p.source for p in parts))
    return FlightData(np.concatenate([p.X for p in parts]), np.concatenate([p.Y for p in parts]),
                      np.concatenate(flights), np.concatenate([p.t for p in parts]), first.feature_names,
                      first.target_names, "+".join(s for s in sources if s), meta)
