"""The paper's data scaling (METHOD.md section 2) as a fitted, reusable, JSON-serialisable object.

Fitted on the TRAINING set with the network's ``P_op`` (product of the spectral norms of the weights at
initialisation, a float the caller passes)::

    inputs   x <- x / ||x||_2                     every sample, train and test
    targets  y <- y P_op / y_max,                 y_max = max_train ||y_n||_2  (test uses the train max)
    inverse  y = y_s y_max / P_op
    RMSE[N]  = sqrt(2 J) y_max / P_op             = RMS over samples of the 3-vector error norm,
                                                    for J = 1/(2N) sum ||f(x_n) - y_s,n||^2

Optional, NOT in the paper: ``standardize=True`` first maps every feature to ``(x - mean) / std`` with
the training mean and std, then applies the per-sample unit norm. A constant training feature
(std = 0) is only centred (divided by 1) and listed in :attr:`PaperScaling.constant_features`.

A zero-norm input row (after standardisation, if on) or an all-zero training target set would make the
scaling undefined: they raise ValueError naming the argument and the first offending row, never NaN.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import as_float_matrix, finite_float


def _row_norms(name: str, A: np.ndarray) -> np.ndarray:
    # Scaled by each row's largest entry, so rows of 1e200 (or 1e-170) neither overflow nor underflow.
    big = np.abs(A).max(axis=1, initial=0.0)
    safe = np.where(big > 0, big, 1.0)[:, None]
    S = A / safe
    norms = big * np.sqrt(np.einsum("ij,ij->i", S, S))
    bad = np.flatnonzero(norms == 0.0)
    if bad.size:
        raise ValueError(f"{name}: row {bad[0]} has zero norm ({bad.size} such rows); the per-sample "
                         f"scaling x / ||x|| is undefined for it")
    return norms


@dataclass(frozen=True)
class PaperScaling:
    """Fitted scaling. p_op > 0, y_max > 0 [N]; mean/std: (d,) tuples when standardising, else None."""

    p_op: float
    y_max: float
    n_features: int
    n_targets: int
    mean: tuple | None = None
    std: tuple | None = None

    def __post_init__(self):
        finite_float("p_op", self.p_op, positive=True)
        finite_float("y_max", self.y_max, positive=True)
        if (self.mean is None) != (self.std is None):
            raise ValueError("mean and std must both be given (standardize) or both be None")
        for name in ("mean", "std"):
            value = getattr(self, name)
            if value is not None:
                arr = np.asarray(value, dtype=np.float64)
                if arr.shape != (self.n_features,) or not np.all(np.isfinite(arr)):
                    raise ValueError(f"{name} must be {self.n_features} finite numbers")
                object.__setattr__(self, name, tuple(float(v) for v in arr))
        if self.std is not None and min(self.std) < 0:
            raise ValueError("std must be >= 0")

    @classmethod
    def fit(cls, X, Y, p_op: float, standardize: bool = False) -> "PaperScaling":
        """Fit on training inputs X (N, d) and targets Y (N, m) [N] for a network with gain bound p_op."""
        X, Y = as_float_matrix("X", X), as_float_matrix("Y", Y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        y_norms = np.sqrt(np.einsum("ij,ij->i", Y, Y))
        if not np.any(y_norms > 0):
            raise ValueError("Y: all target rows are zero; y <- y P_op / max||y|| is undefined")
        mean = std = None
        if standardize:
            mean, std = tuple(X.mean(axis=0)), tuple(X.std(axis=0))
        out = cls(finite_float("p_op", p_op, positive=True), float(y_norms.max()), X.shape[1], Y.shape[1],
                  mean, std)
        out.transform_inputs(X)
        return out

    @property
    def standardize(self) -> bool:
        return self.mean is not None

    @property
    def constant_features(self) -> tuple:
        """Indices of features whose training std is 0 (centred only)."""
        return tuple(i for i, s in enumerate(self.std or ()) if s == 0.0)

    def transform_inputs(self, X) -> np.ndarray:
        """(N, d) -> (N, d) rows of unit 2-norm (after the optional standardisation)."""
        X = as_float_matrix("X", X, self.n_features)
        if self.standardize:
            std = np.asarray(self.std)
            X = (X - np.asarray(self.mean)) / np.where(std > 0, std, 1.0)
        # Two steps (by the row's largest entry, then by the norm of the result), so rows of denormals
        # or of 1e200 come out with unit norm too.
        _row_norms("X", X)
        big = np.abs(X).max(axis=1)[:, None]
        S = X / big
        return S / np.sqrt(np.einsum("ij,ij->i", S, S))[:, None]

    def transform_targets(self, Y) -> np.ndarray:
        """(N, m) [N] -> (N, m) scaled: y P_op / y_max."""
        Y = as_float_matrix("Y", Y, self.n_targets)
        return Y * (self.p_op / self.y_max)

    def inverse_targets(self, Ys) -> np.ndarray:
        """(N, m) scaled -> (N, m) [N]: y_s y_max / P_op."""
        Ys = as_float_matrix("Ys", Ys, self.n_targets)
        return Ys * (self.y_max / self.p_op)

    def transform(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(transform_inputs(data.X), transform_targets(data.Y)) for a FlightData."""
        return self.transform_inputs(data.X), self.transform_targets(data.Y)

    def rmse_newtons(self, J):
        """sqrt(2 J) y_max / P_op [N] for a loss J >= 0 on scaled data (float or array)."""
        J_arr = np.asarray(J, dtype=np.float64)
        if not np.all(np.isfinite(J_arr)) or np.any(J_arr < 0):
            raise ValueError(f"J must be finite and >= 0, got {J!r}")
        out = np.sqrt(2.0 * J_arr) * (self.y_max / self.p_op)
        return float(out) if out.ndim == 0 else out

    def to_dict(self) -> dict:
        """JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        return {"kind": "PaperScaling", "p_op": self.p_op, "y_max": self.y_max,
                "n_features": self.n_features, "n_targets": self.n_targets,
                "mean": None if self.mean is None else list(self.mean),
                "std": None if self.std is None else list(self.std)}

    @classmethod
    def from_dict(cls, d: dict) -> "PaperScaling":
        if not isinstance(d, dict) or d.get("kind") != "PaperScaling":
            raise ValueError("d must be a dict produced by PaperScaling.to_dict() (kind='PaperScaling')")
        try:
            return cls(d["p_op"], d["y_max"], int(d["n_features"]), int(d["n_targets"]),
                       None if d["mean"] is None else tuple(d["mean"]),
                       None if d["std"] is None else tuple(d["std"]))
        except KeyError as err:
            raise ValueError(f"d is missing the key {err.args[0]!r}") from None
