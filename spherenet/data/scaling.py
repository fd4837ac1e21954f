"""The paper's data scaling (docs/method.md §2) as a fitted, reusable, JSON-serialisable object.

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

from .._checks import as_float_matrix, check_finite, finite_float


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


class _Newtons:
    """What both scalings share: their property ``unit`` [N] is what one unit of scaled target is worth."""

    def transform(self, data) -> tuple[np.ndarray, np.ndarray]:
        """(transform_inputs(data.X), transform_targets(data.Y)) for a FlightData."""
        return self.transform_inputs(data.X), self.transform_targets(data.Y)

    def rmse_newtons(self, J):
        """``sqrt(2 J) unit`` [N] for a loss J >= 0 on scaled data (float or array)."""
        J_arr = np.asarray(J, dtype=np.float64)
        if not np.all(np.isfinite(J_arr)) or np.any(J_arr < 0):
            raise ValueError(f"J must be finite and >= 0, got {J!r}")
        out = np.sqrt(2.0 * J_arr) * self.unit
        return float(out) if out.ndim == 0 else out


@dataclass(frozen=True)
class PaperScaling(_Newtons):
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
        """Fit the paper's scaling on the training data.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Training inputs.
        Y : array_like, shape (N, m)
            Training targets [N].
        p_op : float > 0
            ``P_op = prod_i ||W_i||_2`` of the network at initialisation.
        standardize : bool
            Standardise every feature before ``x / ||x||`` (NOT in the paper).

        Returns
        -------
        PaperScaling
            Inputs ``x -> x / ||x||``, targets ``y -> y P_op / y_max`` with ``y_max = max_n ||y_n||``
            (docs/method.md §2).
        """
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
    def n_inputs(self) -> int:
        """Width of the network's input (the features themselves)."""
        return self.n_features

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

    @property
    def unit(self) -> float:
        """``y_max / P_op`` [N]: one unit of scaled target (``rmse_newtons(J) = sqrt(2 J) y_max / P_op``)."""
        return self.y_max / self.p_op

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


# --- an information-preserving scaling with a Lipschitz budget chosen by the user -------------------------

def _column_moments(name: str, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std of every column, computed on columns divided by their largest |entry| (no overflow
    for entries up to 1e308, no underflow to 0 for denormal columns)."""
    big = np.abs(X).max(axis=0)
    safe = np.where(big > 0, big, 1.0)
    S = X / safe
    mean = S.mean(axis=0)
    std = np.sqrt(np.mean((S - mean) ** 2, axis=0))
    constant = np.flatnonzero(std <= 8 * np.finfo(float).eps * np.abs(mean))
    if constant.size:
        raise ValueError(f"{name}: column {constant[0]} is constant in the training data (std 0; "
                         f"{constant.size} such column(s)); standardising divides by it. Drop the column, "
                         f"or use the paper's scaling")
    return mean * safe, std * safe


@dataclass(frozen=True)
class StandardScaling(_Newtons):
    """Per-feature standardisation into the unit ball, an optional bias feature, targets at a chosen
    Lipschitz budget. Fitted on the TRAINING set; NOT the paper's (see :class:`PaperScaling`)::

        inputs   z = (x - m) / s                     per feature, training mean m and std s
                 x~ = a [z, 1]   (bias=True)         a constant feature, the size of one std of a feature:
                                                     the first layer gets a bias
                 a = 1 / max_train ||[z_n, 1]||      every training row in the unit ball
        targets  y_s = (y - ybar) / t                ybar = training mean, t = target factor [N]
        inverse  y = t g(x~) + ybar                  g = the network
        RMSE[N]  = sqrt(2 J) t

    The raw map ``x -> y`` is then Lipschitz in the Euclidean norm of the raw feature vector, with

        Lip <= t * prod_i ||W_i||_2 * a / min_j s_j  <=  t * prod_i mu_i * a / min_j s_j = K,

    (``x -> x~`` is affine with linear part ``a diag(1/s)``, of norm ``a / min_j s_j``; the bias feature
    and both means are constants). The user chooses the budget ``K``; :meth:`fit` solves for ``t``.
    Unlike the paper's scaling, every row keeps its magnitude, and the budget is a stated number.
    A constant training feature is refused (``s_j = 0``). No budget ``K > 0`` is out of reach: every
    ``K`` gives a finite ``t``, so there is no floor (only float range: ``y_s`` must stay finite).
    """

    mean: tuple
    std: tuple
    input_factor: float          # a
    y_mean: tuple
    target_factor: float         # t [N]
    radii_product: float         # prod_i mu_i of the network it was fitted for
    bias: bool = True

    def __post_init__(self):
        for name in ("input_factor", "target_factor", "radii_product"):
            finite_float(name, getattr(self, name), positive=True)
        for name in ("mean", "std", "y_mean"):
            arr = np.asarray(getattr(self, name), dtype=np.float64)
            if arr.ndim != 1 or arr.size == 0 or not np.all(np.isfinite(arr)):
                raise ValueError(f"{name} must be a non-empty sequence of finite numbers")
            object.__setattr__(self, name, tuple(float(v) for v in arr))
        if len(self.std) != len(self.mean) or min(self.std) <= 0:
            raise ValueError("std must have one positive entry per feature")
        object.__setattr__(self, "bias", bool(self.bias))

    @classmethod
    def fit(cls, X, Y, lipschitz: float, radii_product: float = 1.0, bias: bool = True) -> "StandardScaling":
        """Fit on the training data so that the raw map's certified bound is ``lipschitz``.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Training features (N >= 2, no constant feature).
        Y : array_like, shape (N, m)
            Training targets [N].
        lipschitz : float > 0
            The budget ``K``.
        radii_product : float > 0
            ``prod_i mu_i`` of the network the scaling is for.
        bias : bool
            Add the bias feature ``a`` to every input.

        Returns
        -------
        StandardScaling
            With ``t = K min_j s_j / (a prod_i mu_i)``, so that ``t prod_i mu_i a / min_j s_j = K`` (see the
            class docstring).
        """
        X, Y = as_float_matrix("X", X), as_float_matrix("Y", Y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but Y has {Y.shape[0]}")
        if X.shape[0] < 2:
            raise ValueError(f"X: standardising needs at least 2 training samples (n_samples={X.shape[0]})")
        K = finite_float("lipschitz", lipschitz, positive=True)
        P = finite_float("radii_product", radii_product, positive=True)
        mean, std = _column_moments("X", X)
        Z = (X - mean) / std
        a = 1.0 / _row_norms("X (standardised)", np.hstack([Z, np.ones((len(Z), 1))]) if bias else Z).max()
        t = K * std.min() / (a * P)
        out = cls(tuple(mean), tuple(std), a, tuple(_column_moments_mean(Y)), t, P, bias)
        scaled = out.transform_targets(Y)
        if not np.all(np.isfinite(scaled)):
            raise ValueError(f"lipschitz={lipschitz:g} is too small for float64: the scaled targets overflow")
        return out

    @property
    def n_features(self) -> int:
        return len(self.mean)

    @property
    def n_targets(self) -> int:
        return len(self.y_mean)

    @property
    def n_inputs(self) -> int:
        """Width of the network's input: the features, plus one for the bias feature."""
        return self.n_features + self.bias

    @property
    def input_lipschitz(self) -> float:
        """``a / min_j s_j``: the Lipschitz constant of ``x -> x~`` (Euclidean norms)."""
        return self.input_factor / min(self.std)

    @property
    def lipschitz(self) -> float:
        """The budget ``K = t prod_i mu_i a / min_j s_j`` [output units per raw input unit]."""
        return self.target_factor * self.radii_product * self.input_lipschitz

    def certificate(self, network_bound: float) -> float:
        """``t * network_bound * a / min_j s_j``: the raw map's Lipschitz bound for a network bound."""
        return self.target_factor * float(network_bound) * self.input_lipschitz

    def transform_inputs(self, X) -> np.ndarray:
        """(N, d) raw -> (N, d + bias) network inputs ``a [(x - m) / s, 1]``."""
        X = as_float_matrix("X", X, self.n_features)
        with np.errstate(over="ignore"):
            U = (X - np.asarray(self.mean)) * (self.input_factor / np.asarray(self.std))
        check_finite("X (scaled)", U)
        return np.hstack([U, np.full((len(U), 1), self.input_factor)]) if self.bias else U

    def input_jacobian(self) -> np.ndarray:
        """``d x~ / d x``: the (d + bias, d) matrix ``[a diag(1/s); 0]``."""
        D = np.diag(self.input_factor / np.asarray(self.std))
        return np.vstack([D, np.zeros((1, self.n_features))]) if self.bias else D

    def transform_targets(self, Y) -> np.ndarray:
        """(N, m) [N] -> (N, m) scaled: ``(y - ybar) / t``."""
        Y = as_float_matrix("Y", Y, self.n_targets)
        with np.errstate(over="ignore"):
            return (Y - np.asarray(self.y_mean)) / self.target_factor

    def inverse_targets(self, Ys) -> np.ndarray:
        """(N, m) scaled -> (N, m) [N]: ``t y_s + ybar``."""
        Ys = as_float_matrix("Ys", Ys, self.n_targets)
        return Ys * self.target_factor + np.asarray(self.y_mean)

    @property
    def unit(self) -> float:
        """``t`` [N]: one unit of scaled target (``rmse_newtons(J) = sqrt(2 J) t``)."""
        return self.target_factor

    def to_dict(self) -> dict:
        """JSON-ready dict; :meth:`from_dict` inverts it exactly."""
        return {"kind": "StandardScaling", "mean": list(self.mean), "std": list(self.std),
                "input_factor": self.input_factor, "y_mean": list(self.y_mean),
                "target_factor": self.target_factor, "radii_product": self.radii_product, "bias": self.bias,
                "lipschitz": self.lipschitz}

    @classmethod
    def from_dict(cls, d: dict) -> "StandardScaling":
        if not isinstance(d, dict) or d.get("kind") != "StandardScaling":
            raise ValueError("d must be a dict produced by StandardScaling.to_dict() (kind='StandardScaling')")
        try:
            return cls(d["mean"], d["std"], d["input_factor"], d["y_mean"], d["target_factor"],
                       d["radii_product"], d["bias"])
        except KeyError as err:
            raise ValueError(f"d is missing the key {err.args[0]!r}") from None


def _column_moments_mean(Y: np.ndarray) -> np.ndarray:
    big = np.abs(Y).max(axis=0)
    safe = np.where(big > 0, big, 1.0)
    return (Y / safe).mean(axis=0) * safe


SCALINGS = {"paper": PaperScaling, "standard": StandardScaling}


def scaling_from_dict(d: dict):
    """The scaling object a ``to_dict()`` of either class describes."""
    kind = d.get("kind") if isinstance(d, dict) else None
    for cls in SCALINGS.values():
        if kind == cls.__name__:
            return cls.from_dict(d)
    raise ValueError(f"unknown scaling kind {kind!r}; expected one of "
                     f"{', '.join(c.__name__ for c in SCALINGS.values())}")
