"""Validation at the package boundary: every public entry point checks its input here.

Each checker raises ``ValueError`` or ``TypeError`` with a message that names the argument (and, where it
helps, the offending index), so bad input never surfaces as a traceback from deep inside NumPy or as a
silent NaN.
"""
from __future__ import annotations

import numbers

import numpy as np

FLOAT_DTYPES = (np.float32, np.float64)


def as_float_matrix(name: str, value, ncols: int | None = None, dtype=np.float64,
                    allow_empty: bool = False) -> np.ndarray:
    """Return ``value`` as a finite 2-D float array, or raise naming ``name``."""
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be a 2-D array of numbers, got {type(value).__name__}")
    label = named_with_file(name, value)
    try:
        arr = np.asarray(value)
    except (ValueError, TypeError) as err:
        raise ValueError(f"{label} must be a rectangular 2-D array of numbers ({err})") from None
    if arr.dtype == object or not (np.issubdtype(arr.dtype, np.number) or arr.dtype == bool):
        raise TypeError(f"{label} must hold real numbers, got dtype {arr.dtype}")
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise TypeError(f"{label} must be real, got dtype {arr.dtype}")
    if arr.ndim != 2:
        raise ValueError(f"{label} must be 2-D (samples as rows), got shape {arr.shape}")
    if ncols is not None and arr.shape[1] != ncols:
        raise ValueError(f"{label} has {arr.shape[1]} columns, expected {ncols}")
    if arr.shape[0] == 0 and not allow_empty:
        raise ValueError(f"{label} is empty (0 rows)")
    arr = np.ascontiguousarray(arr, dtype=dtype)
    check_finite(name, arr)
    return arr


# Rows per block of the finiteness check: a memory-mapped array is read a block at a time, never whole.
FINITE_BLOCK = 65536


def named_with_file(name: str, value) -> str:
    """``name``, followed by the file a memory-mapped array (``np.load(..., mmap_mode="r")``) reads from."""
    while value is not None:
        filename = getattr(value, "filename", None)
        if isinstance(value, np.memmap) and filename:
            return f"{name} (file {filename})"
        value = getattr(value, "base", None)
    return name


def check_finite(name: str, arr: np.ndarray) -> None:
    """Raise ``ValueError`` naming the first non-finite entry of ``arr`` (checked block by block of rows)."""
    if not arr.size:
        return
    rows = arr.reshape(arr.shape[0] if arr.ndim else 1, -1)
    for start in range(0, rows.shape[0], FINITE_BLOCK):
        block = rows[start:start + FINITE_BLOCK]
        if not np.isfinite(block).all():
            bad = np.unravel_index(start * rows.shape[1] + int(np.argmin(np.isfinite(block))), arr.shape)
            where = tuple(int(i) for i in bad)
            raise ValueError(f"{named_with_file(name, arr)} contains a non-finite value ({arr[where]}) "
                             f"at index {where}")


def float_dtype_of(value) -> type:
    """float32 stays float32; everything else computes in float64."""
    return np.float32 if np.asarray(value).dtype == np.float32 else np.float64


def check_data(X, Y, d_in: int, d_out: int, dtype=np.float64, names=("X", "Y")) -> tuple[np.ndarray, np.ndarray]:
    """Validate a data set for a network with input width ``d_in`` and output width ``d_out``."""
    X = as_float_matrix(names[0], X, d_in, dtype)
    Y = as_float_matrix(names[1], Y, d_out, dtype)
    if X.shape[0] != Y.shape[0]:
        raise ValueError(f"{named_with_file(names[0], X)} has {X.shape[0]} rows but {named_with_file(names[1], Y)} "
                         f"has {Y.shape[0]}: "
                         f"one target row per sample")
    return X, Y


def positive_int(name: str, value, minimum: int = 1) -> int:
    """Return ``value`` as an int ``>= minimum`` (bools refused), or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    return int(value)


def rng_from(name: str, seed) -> np.random.Generator:
    """A generator from ``seed``: ``None`` (fresh entropy), a non-negative integer, or a ``Generator``."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is not None:
        positive_int(name, seed, minimum=0)
    return np.random.default_rng(seed)


def finite_float(name: str, value, positive: bool = False, nonnegative: bool = False) -> float:
    """Return ``value`` as a finite float (optionally > 0 or >= 0), or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    x = float(value)
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite, got {value!r}")
    if positive and x <= 0:
        raise ValueError(f"{name} must be > 0, got {value!r}")
    if nonnegative and x < 0:
        raise ValueError(f"{name} must be >= 0, got {value!r}")
    return x


def check_radii(radii, n_layers: int, name: str = "radii") -> np.ndarray:
    """Return ``radii`` as a float64 array of ``n_layers`` finite positive numbers, or raise naming ``name``.

    The one radius validation: a sequence (not a string or a scalar), one entry per weight matrix, each
    finite and > 0.
    """
    if isinstance(radii, (str, bytes)) or np.ndim(radii) != 1:
        raise TypeError(f"{name} must be a sequence of {n_layers} positive numbers, got {radii!r}")
    if len(radii) != n_layers:
        raise ValueError(f"{name} has {len(radii)} entries but the network has {n_layers} weight matrices")
    return np.array([finite_float(f"{name}[{i}]", float(r) if isinstance(r, np.floating) else r, positive=True)
                     for i, r in enumerate(radii)])


def check_choice(name: str, value, choices) -> str:
    """Return ``value`` if it is one of ``choices``, else raise listing them."""
    if value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of: {', '.join(map(str, choices))}")
    return value


def check_weights(weights, radii=None, dtype=None) -> list[np.ndarray]:
    """Validate a list of weight matrices that chain (``W_i: (d_i, d_{i-1})``) and are finite."""
    if isinstance(weights, np.ndarray) or not hasattr(weights, "__len__") or len(weights) == 0:
        raise TypeError("weights must be a non-empty list of 2-D arrays")
    out = []
    for i, W in enumerate(weights):
        W = as_float_matrix(f"weights[{i}]", W, dtype=dtype or float_dtype_of(W))
        if i and W.shape[1] != out[-1].shape[0]:
            raise ValueError(f"weights[{i}] has shape {W.shape} but weights[{i-1}] has {out[-1].shape[0]} "
                             f"rows: W_i must be (d_i, d_(i-1))")
        out.append(W)
    if radii is not None and len(radii) != len(out):
        raise ValueError(f"radii has {len(radii)} entries for {len(out)} weight matrices")
    return out
