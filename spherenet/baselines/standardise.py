"""Standardising inputs and targets with training statistics: how a PyTorch or scikit-learn user prepares
data for SGD, Adam or AGD (``sklearn.preprocessing.StandardScaler`` on both sides).

    x̃ = (x - mean_x)/std_x        ỹ = (y - mean_y)/std_y        (per feature, per target; training data)

A feature or target whose training std is 0 is only centred (its std is taken as 1). The baseline trains on
``(x̃, ỹ)`` and predicts ``y = mean_y + std_y ⊙ f(x̃)``. Its loss in the units of ``y`` is a weighted loss of
the standardised outputs,

    J = 1/(2N) Σ_n ||f_phys(x_n) - y_n||² = 1/(2N) Σ_n Σ_j std_y[j]² (f(x̃_n)_j - ỹ_n[j])²,

so the loops record ``J`` with ``loss_weights = std_y²`` and ``rmse(J) = sqrt(2 J)`` in the units of ``y``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import as_float_matrix


def _stats(A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = A.mean(axis=0), A.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


# Rows per block of a transform: a memory-mapped set is read a block at a time, and no temporary is the size of
# the whole set (each entry is computed as before, so the result has the same bits).
BLOCK = 65536


def _transform(A: np.ndarray, mean: np.ndarray, std: np.ndarray, dtype) -> np.ndarray:
    out = np.empty(A.shape, dtype)
    for start in range(0, len(A), BLOCK):
        out[start:start + BLOCK] = (A[start:start + BLOCK] - mean) / std
    return out


@dataclass(frozen=True)
class Standardiser:
    """Per-column means and stds of the training inputs and targets (stds of 0 replaced by 1)."""
    x_mean: np.ndarray
    x_std: np.ndarray
    y_mean: np.ndarray
    y_std: np.ndarray

    @classmethod
    def fit(cls, X, Y) -> "Standardiser":
        """Statistics of training inputs ``X: (N, d_0)`` and targets ``Y: (N, d_L)``, ``N >= 1``."""
        X, Y = as_float_matrix("X", X), as_float_matrix("Y", Y)
        if len(X) != len(Y):
            raise ValueError(f"X has {len(X)} rows but Y has {len(Y)}")
        return cls(*_stats(X), *_stats(Y))

    def transform_inputs(self, X, dtype=np.float64) -> np.ndarray:
        """``(x - mean_x)/std_x`` in ``dtype``, computed in float64 block by block of rows (``BLOCK``)."""
        return _transform(as_float_matrix("X", X, len(self.x_mean)), self.x_mean, self.x_std, dtype)

    def transform_targets(self, Y, dtype=np.float64) -> np.ndarray:
        """``(y - mean_y)/std_y`` in ``dtype``, as :meth:`transform_inputs`."""
        return _transform(as_float_matrix("Y", Y, len(self.y_mean)), self.y_mean, self.y_std, dtype)

    def inverse_targets(self, Ys) -> np.ndarray:
        """``mean_y + std_y ⊙ ỹ``: standardised outputs back in the units of ``y``."""
        return self.y_mean + self.y_std * np.asarray(Ys, dtype=np.float64)

    @property
    def loss_weights(self) -> np.ndarray:
        """``std_y²``: the per-target weights that turn the standardised loss into ``J`` in ``y``'s units."""
        return self.y_std ** 2

    @staticmethod
    def rmse_newtons(J) -> float:
        """``sqrt(2 J)`` for a loss ``J`` recorded in the units of ``y`` (newtons for the quadrotor)."""
        J = float(J)
        if not (math.isfinite(J) and J >= 0):
            raise ValueError(f"J must be finite and >= 0, got {J!r}")
        return math.sqrt(2.0 * J)

    def to_dict(self) -> dict:
        return {"kind": "Standardiser", **{k: [float(v) for v in getattr(self, k)]
                                           for k in ("x_mean", "x_std", "y_mean", "y_std")}}
