"""``SphereNetRegressor``: the whole pipeline (a scaling with a Lipschitz budget, a normalised MLP, an
automatic step rule) behind the scikit-learn estimator conventions, without depending on scikit-learn.

    est = SphereNetRegressor(hidden=(25, 30, 15), iterations=200).fit(X, y)
    est.predict(X_new)          # raw units (newtons for the quadrotor data)
    est.score(X_new, y_new)     # R², uniform average over outputs

Conventions followed: the constructor stores its arguments untouched (validated in ``fit``); fitted state
lives in attributes ending in ``_``; ``get_params``/``set_params`` read ``__init__``'s signature; ``fit``
returns ``self``; using a method that needs a fitted model before ``fit`` raises :class:`NotFittedError`.

Rule for zero-norm inputs (``scaling="paper"`` only): the paper's scaling maps every sample ``x -> x / ||x||_2``, which is undefined
for ``x = 0`` (and, with ``standardize=True``, for a sample equal to the training mean). Such a row is
bad input in ``fit`` and in ``predict`` alike: ValueError naming ``X`` and the first offending row, never
a NaN prediction. An all-zero target set is refused in ``fit`` for the same reason (``y_max = 0``), and
so is ``standardize=True`` with a single training sample (it standardises to 0).
"""
from __future__ import annotations

import functools
import inspect
import json
import numbers
import sys

import numpy as np

from ._checks import as_float_matrix, check_choice, finite_float, positive_int
from .data.scaling import PaperScaling, StandardScaling, scaling_from_dict
from .network import NormalisedMLP, forward
from .results import load_weights, save_weights
from .spectral import NORMS
from .train import RULES, History, train, trained_network

_FORMAT = 2          # 2: the scaling's kind, the Lipschitz certificate (format 1 files are refused)


class NotFittedError(ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit``.

    Derives from ``ValueError`` and ``AttributeError``, like scikit-learn's ``NotFittedError``. When
    scikit-learn is installed the error raised is ALSO an instance of ``sklearn.exceptions.NotFittedError``
    (its checks test for that class exactly), so either ``except`` clause catches it.
    """


@functools.cache
def _not_fitted_error() -> type:
    try:
        from sklearn.exceptions import NotFittedError as SklearnNotFittedError
    except ImportError:
        return NotFittedError
    return type("NotFittedError", (NotFittedError, SklearnNotFittedError), {"__module__": __name__})


class SphereNetRegressor:
    """Normalised bias-free ReLU MLP regressor trained with the paper's automatic step sizes.

    Parameters
    ----------
    (Stored as given; validated when ``fit`` runs.)

    hidden : sequence of int, default (25, 30, 15)
        Hidden widths; the network is ``[n_features, *hidden, n_outputs]`` (``()`` gives one linear layer).
    method : str or None, default None
        Step rule, one of ``spherenet.train.RULES``; None: "geo-batch" with mini-batches (the default) and
        "geo-cg-layer" with ``batch_size=None`` (``spherenet.experiments.default_method``). "geo-cg-layer"
        (the paper's jet-Newton step along conjugate-gradient geodesics, docs/beyond.md), "geo-batch" (its
        mini-batch form, docs/beyond.md §7),
        "taylor" (the paper's Algorithm 1), "mm" (Algorithm 2),
        "mm-frobenius", "mm-telescoping", "mm-closed".
    order : int, default 2
        Order of the Taylor model; used by ``method="taylor"`` only, ignored by the others.
    iterations : int or "auto", default "auto"
        Training iterations, one per batch (>= 0); training stops earlier at a stationary point or a
        non-finite loss (see ``history_.stop_reason``). "auto": 4000 with mini-batches, 200 with full batch
        (``spherenet.experiments.default_iterations``).
    radius : "unit" | "agd" | "fan" | float | sequence of float, default "unit"
        Sphere radii ``mu_i`` (``spherenet.network.radii_for``).
    batch_size : int or None or "auto", default "auto"
        None: full batch (the paper); an int: mini-batches of this size; "auto": for "geo-batch" (the default
        method) mini-batches whose size is chosen on the validation fifth with the budget, halved from 1024
        while the validation error falls (:func:`spherenet.budget.select_batch_size`; 1024 with
        ``scaling="paper"``, which has no validation step), full batch for every other method
        (``spherenet.experiments.default_batch_size``).
    scaling : "standard" | "paper", default "standard"
        "standard": per-feature standardisation into the unit ball, a bias feature, and targets at the
        Lipschitz budget ``lipschitz`` (:class:`spherenet.data.StandardScaling`); "paper": the paper's
        ``x / ||x||`` and targets scaled to the initial gain (:class:`spherenet.data.PaperScaling`).
    lipschitz : float > 0 or None, default None
        The certified Lipschitz bound K of ``x -> predict(x)`` in output units per unit of the raw
        features' Euclidean norm (``scaling="standard"``). None chooses it on a validation fifth of the
        training data (:func:`spherenet.budget.select_lipschitz`; ``lipschitz_selection_`` keeps the table).
    standardize : bool, default False
        ``scaling="paper"`` only: standardise every feature before ``x / ||x||`` (NOT in the paper).
    dtype : "float64" | "float32" or None, default None
        Precision of the network and of training; scaling and predictions are float64. None: float64 for
        full batch, float32 with ``batch_size`` (``spherenet.experiments.default_dtype`` says why).
    random_state : int >= 0 or None, default 0
        Seed of the initialisation and of the mini-batch order. None draws a fresh seed from the OS;
        the seed used is kept in ``seed_`` so such a fit can be repeated.
    verbose : bool, default False
        Print the loss about ten times during training.
    norm : "frobenius" | "spectral" or None, default None
        The norm each layer is held at its radius in: the paper's Frobenius spheres, or spectral
        normalisation of the weights on them (:mod:`spherenet.spectral`, docs/beyond.md §8; ``method``
        "geo-batch" and ``scaling="standard"`` only), which spends the whole budget ``lipschitz`` on the layers'
        spectral norms. None: "spectral" for "geo-batch" with the standard scaling, else "frobenius"
        (``spherenet.experiments.default_norm``).

    Attributes
    ----------
    (Set by ``fit``.)

    net_ : NormalisedMLP             the trained network (on scaled data)
    scaling_ : StandardScaling | PaperScaling   the scaling fitted on the training data
    history_ : spherenet.train.History   everything the training loop recorded
    n_features_in_ : int             input width
    n_outputs_ : int                 output width (1 for a 1-D ``y``; ``predict`` then returns 1-D)
    n_iter_ : int                    iterations actually taken
    seed_ : int                      the seed used
    lipschitz_bound_ : float         certified Lipschitz bound [output units per input unit], below
    lipschitz_budget_ : float        the bound promised before training (``prod mu_i`` in place of the
                                     spectral norms): ``lipschitz`` for the standard scaling
    lipschitz_lower_ : float         the largest local constant ``||J(x_n)||_2`` over the training inputs
    lipschitz_selection_ : dict | None   the validation ladder, when ``lipschitz`` was None
    batch_size_ : int | None         the batch size trained with (None: full batch)
    batch_selection_ : dict | None   the sizes tried on the validation fifth, when ``batch_size`` was chosen

    Notes
    -----
    Standard scaling: ``lipschitz_bound_ = t prod_i ||W_i||_2 a / min_j s_j`` bounds ``x -> predict(x)``
    in the raw features' Euclidean norm (``spherenet.lipschitz``). Paper scaling:
    ``lipschitz_bound_ = prod_i ||W_i||_2 y_max / P_op`` bounds ``u -> predict`` where ``u`` is the NORMALISED
    input (``u = x/||x||``, after standardisation if on): the network is ``prod_i ||W_i||_2``-Lipschitz
    (<= ``prod_i mu_i``) and the inverse target scaling multiplies by ``y_max / P_op``. It is not a bound in
    raw inputs, because ``x -> x/||x||`` is unbounded near 0; on raw inputs with ``||x|| >= r`` (no
    standardisation) ``x -> x/||x||`` is ``1/r``-Lipschitz (``r x/||x||`` is the metric projection onto the
    ball of radius r), so ``lipschitz_bound_ / r`` bounds the raw map there.
    """

    def __init__(self, hidden=(25, 30, 15), method=None, order=2, iterations="auto", radius="unit",
                 batch_size="auto", scaling="standard", lipschitz=None, standardize=False, dtype=None,
                 random_state=0, verbose=False, norm=None):
        self.hidden = hidden
        self.method = method
        self.order = order
        self.iterations = iterations
        self.radius = radius
        self.batch_size = batch_size
        self.scaling = scaling
        self.lipschitz = lipschitz
        self.standardize = standardize
        self.dtype = dtype
        self.random_state = random_state
        self.verbose = verbose
        self.norm = norm

    # --- parameters -------------------------------------------------------------------------------------

    @classmethod
    def _param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        return sorted(p.name for p in params if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict:
        """The constructor parameters as a dict (``deep`` is accepted for compatibility: no parameter is
        itself an estimator). ``type(est)(**est.get_params())`` is an unfitted copy."""
        return {name: getattr(self, name) for name in self._param_names()}

    def set_params(self, **params) -> "SphereNetRegressor":
        """Set constructor parameters by name (no validation until ``fit``); returns ``self``."""
        valid = self._param_names()
        for name, value in params.items():
            if name not in valid:
                raise ValueError(f"invalid parameter {name!r} for {type(self).__name__}; valid parameters: "
                                 f"{', '.join(valid)}")
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{name}={getattr(self, name)!r}" for name in defaults
                   if name != "self" and not _same(getattr(self, name), defaults[name])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def _checked_params(self) -> dict:
        if isinstance(self.hidden, (str, bytes)) or not hasattr(self.hidden, "__iter__"):
            raise TypeError(f"hidden must be a sequence of positive integers, got {self.hidden!r}")
        from .experiments import default_batch_size, default_dtype, default_iterations, default_method, default_norm
        if self.method is not None:
            check_choice("method", self.method, tuple(RULES))
        batch_size = default_batch_size(self.method) if _is_auto(self.batch_size) else self.batch_size
        if batch_size is not None and not _is_auto(batch_size):
            positive_int("batch_size", batch_size)
        method = default_method(batch_size) if self.method is None else self.method
        if not isinstance(self.standardize, (bool, np.bool_)):
            raise TypeError(f"standardize must be True or False, got {self.standardize!r}")
        check_choice("scaling", self.scaling, ("standard", "paper"))
        if self.scaling == "paper" and self.lipschitz is not None:
            raise ValueError("lipschitz applies to scaling='standard'; the paper's scaling fixes the budget itself")
        if self.scaling == "standard" and self.standardize:
            raise ValueError("standardize=True applies to scaling='paper' (the standard scaling standardises)")
        if self.lipschitz is not None:
            finite_float("lipschitz", self.lipschitz, positive=True)
        norm = default_norm(method, self.scaling) if self.norm is None else check_choice("norm", self.norm, NORMS)
        if norm == "spectral" and (method != "geo-batch" or self.scaling != "standard"):
            raise ValueError(f"norm='spectral' applies to method 'geo-batch' with scaling='standard', not to "
                             f"method {method!r} with scaling={self.scaling!r}")
        try:
            dtype = np.dtype(default_dtype(batch_size) if self.dtype is None else self.dtype)
        except TypeError:
            dtype = None
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"dtype must be 'float32' or 'float64', got {self.dtype!r}")
        seed = self.random_state
        if seed is None:
            seed = int(np.random.SeedSequence().entropy)
        order = positive_int("order", self.order)          # checked for every method, used by "taylor"
        return {"hidden": tuple(positive_int(f"hidden[{i}]", h) for i, h in enumerate(self.hidden)), "method": method,
                "options": {"order": order} if method == "taylor" else {},
                "iterations": default_iterations(batch_size) if _is_auto(self.iterations) else
                positive_int("iterations", self.iterations, minimum=0), "batch_size": batch_size,
                "dtype": dtype, "seed": positive_int("random_state", seed, minimum=0), "norm": norm}

    # --- fit / predict / score --------------------------------------------------------------------------

    def fit(self, X, y) -> "SphereNetRegressor":
        """Fit the scaling and train the network on raw features and targets.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Raw features (finite).
        y : array_like, shape (N,) or (N, m)
            Raw targets; a 1-D ``y`` makes ``predict`` return 1-D.

        Returns
        -------
        SphereNetRegressor
            ``self``, fitted (the attributes ending in ``_``).

        Notes
        -----
        The scaling is fitted on ``X, y`` (the Lipschitz budget chosen first on a validation fifth if
        ``lipschitz`` is None), the network trained on the scaled data by ``method``
        (:func:`spherenet.train.train`), and its Lipschitz bound certified (:mod:`spherenet.lipschitz`).
        """
        params = self._checked_params()
        X = _as_matrix("X", X)
        Y, y_1d = _as_targets(y)
        if X.shape[0] != Y.shape[0]:
            raise ValueError(f"X has {X.shape[0]} rows but y has {Y.shape[0]}: one target per sample")
        if self.standardize and X.shape[0] == 1:
            raise ValueError("standardize=True needs at least 2 samples: with n_samples=1 the sample "
                             "standardises to the zero vector, where x / ||x|| is undefined")
        net, scaling, selection = self._fit_scaling(X, Y, params)
        batch, batch_selection = self._batch_size(X, Y, params, net.widths, scaling, selection)
        Xs, Ys = scaling.transform_inputs(X), scaling.transform_targets(Y)
        callback = _progress(params["iterations"]) if self.verbose else None
        history = train(net, Xs.astype(params["dtype"]), Ys.astype(params["dtype"]), rule=params["method"],
                        iterations=params["iterations"], batch_size=batch, seed=params["seed"],
                        callback=callback, norm=params["norm"], **params["options"])
        if self.verbose and history.stop_reason:
            print(f"[SphereNetRegressor] {history.stop_reason}")
        net = trained_network(net, history, params["norm"])     # the iterates' average, normalised as trained
        from .lipschitz import certificate
        cert = certificate(net.weights, scaling, [Xs])
        self._set_fitted(net, scaling, history, y_1d, params["seed"], cert["lipschitz_lower"], selection)
        self.batch_size_, self.batch_selection_ = batch, batch_selection
        return self

    def _fit_scaling(self, X, Y, params):
        """The network and its fitted scaling (the budget chosen on a validation part if not given)."""
        widths = [X.shape[1] + (self.scaling == "standard"), *params["hidden"], Y.shape[1]]
        if self.scaling == "paper":
            net = NormalisedMLP(widths, self.radius, params["seed"], params["dtype"])
            return net, PaperScaling.fit(X, Y, net.spectral_norm_product(), standardize=bool(self.standardize)), None
        K, selection = self.lipschitz, None
        if K is None:
            from .budget import first_batch, select_lipschitz, validation_rows
            K, selection = select_lipschitz(X, Y, validation_rows(X, "random", params["seed"]), widths,
                                            params["method"], params["seed"], params["dtype"], self.radius,
                                            first_batch(params["batch_size"]), rule_options=params["options"],
                                            norm=params["norm"], iterations=params["iterations"])
        net = NormalisedMLP(widths, self.radius, params["seed"], params["dtype"])
        return net, StandardScaling.fit(X, Y, K, float(np.prod(net.radii))), selection

    def _batch_size(self, X, Y, params, widths, scaling, selection):
        """The batch size to train with and its selection (:func:`spherenet.budget.select_batch_size` for
        ``"auto"`` with the standard scaling, on the budget ladder's validation fifth, starting from its chosen
        rung's error; ``None`` when not chosen)."""
        from .budget import chosen_error, first_batch, select_batch_size, validation_rows
        if not _is_auto(params["batch_size"]) or self.scaling != "standard":
            return first_batch(params["batch_size"]), None
        return select_batch_size(X, Y, validation_rows(X, "random", params["seed"]), scaling.lipschitz, widths,
                                 params["method"], params["seed"], params["dtype"], self.radius,
                                 rule_options=params["options"], norm=params["norm"],
                                 iterations=params["iterations"],
                                 first_error=chosen_error(selection) if selection else None)

    def _set_fitted(self, net, scaling, history, y_1d, seed, lipschitz_lower, selection) -> None:
        from .lipschitz import certificate
        self.net_, self.scaling_, self.history_ = net, scaling, history
        self.n_features_in_, self.n_outputs_ = scaling.n_features, scaling.n_targets
        self.n_iter_, self.seed_ = history.iterations, seed
        bounds = certificate(net.weights, scaling, [])
        self.lipschitz_bound_, self.lipschitz_budget_ = bounds["lipschitz_bound"], bounds["lipschitz_budget"]
        self.lipschitz_lower_, self.lipschitz_selection_ = lipschitz_lower, selection
        self._y_1d = y_1d

    def _check_fitted(self) -> None:
        if not hasattr(self, "net_"):
            raise _not_fitted_error()(f"This {type(self).__name__} instance is not fitted yet: call 'fit' "
                                      f"with training data before using this estimator.")

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "net_")

    def predict(self, X) -> np.ndarray:
        """Predictions in raw target units.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Raw features, as ``fit`` had them.

        Returns
        -------
        ndarray, shape (N,) or (N, m)
            ``inverse_targets(f(transform_inputs(X)))``, computed in float64 (also for a network trained in
            float32); 1-D if ``fit`` saw a 1-D ``y``.
        """
        self._check_fitted()
        X = _as_matrix("X", X, self.n_features_in_)
        # in float64 whatever the training precision: the function of the stored weights to float64's rounding,
        # the same for any subset of rows
        weights = [W.astype(np.float64, copy=False) for W in self.net_.weights]
        F = self.scaling_.inverse_targets(forward(weights, self.scaling_.transform_inputs(X)))
        return F[:, 0] if self._y_1d else F

    def _targets_for(self, X, y):
        F = self.predict(X)
        Y = _as_targets(y)[0]
        if Y.shape[0] != F.shape[0]:
            raise ValueError(f"X has {F.shape[0]} rows but y has {Y.shape[0]}: one target per sample")
        if Y.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {Y.shape[1]} outputs, expected {self.n_outputs_}")
        return F.reshape(Y.shape), Y

    def score(self, X, y) -> float:
        """Coefficient of determination ``R² = 1 - SS_res/SS_tot`` per output, averaged uniformly.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Raw features.
        y : array_like, shape (N,) or (N, m)
            Raw targets.

        Returns
        -------
        float
            The mean over outputs of ``R²``.

        Notes
        -----
        ``SS_res = sum_n (y_n - f_n)²``, ``SS_tot = sum_n (y_n - mean(y))²``. A constant output
        (``SS_tot = 0`` up to rounding, e.g. a single sample) scores 1.0 if predicted exactly, else 0.0
        (scikit-learn's ``force_finite`` rule).
        """
        F, Y = self._targets_for(X, y)
        ss_res = np.sum((Y - F) ** 2, axis=0)
        ss_tot = np.sum((Y - Y.mean(axis=0)) ** 2, axis=0)
        # A constant column's mean is exact only to rounding: its SS_tot is then ~N (eps |y|)², not 0.
        nonzero = ss_tot > Y.shape[0] * (4 * np.finfo(float).eps * np.abs(Y).max(axis=0)) ** 2
        r2 = np.where(nonzero, 1.0 - ss_res / np.where(nonzero, ss_tot, 1.0), np.where(ss_res > 0, 0.0, 1.0))
        return float(r2.mean())

    def rmse(self, X, y) -> float:
        """Root-mean-square norm of the prediction error, in raw target units.

        Parameters
        ----------
        X : array_like, shape (N, d)
            Raw features.
        y : array_like, shape (N,) or (N, m)
            Raw targets.

        Returns
        -------
        float
            ``sqrt(1/N sum_n ||f(x_n) - y_n||²)``.
        """
        F, Y = self._targets_for(X, y)
        return float(np.sqrt(np.sum((F - Y) ** 2) / Y.shape[0]))

    # --- persistence ------------------------------------------------------------------------------------

    def save(self, path):
        """Write the fitted model to one checksummed ``.npz``, atomically.

        Parameters
        ----------
        path : str or path-like
            The file to write (replaced if it exists).

        Returns
        -------
        pathlib.Path
            ``path``. The file holds the weights, the radii, and JSON strings for the parameters, the
            scaling, the history and the other fitted attributes; :meth:`load` reads it back.
        """
        self._check_fitted()
        state = {"kind": type(self).__name__, "format": _FORMAT, "y_1d": self._y_1d, "seed": self.seed_,
                 "lipschitz_lower": self.lipschitz_lower_, "lipschitz_selection": self.lipschitz_selection_}
        return save_weights(path, self.net_.weights, self.net_.radii,
                            params=_json_str(_encode(self.get_params())),
                            scaling=_json_str(self.scaling_.to_dict()),
                            history=_json_str(self.history_.as_dict()), state=_json_str(state))

    @classmethod
    def load(cls, path) -> "SphereNetRegressor":
        """The estimator :meth:`save` wrote.

        Parameters
        ----------
        path : str or path-like
            A file written by :meth:`save`.

        Returns
        -------
        SphereNetRegressor
            Fitted, predicting exactly as the saved one did.

        Notes
        -----
        A damaged or edited file is refused (checksum), and a file whose checksum was recomputed after an
        edit is refused by its contents; the ``ValueError`` names the file.
        """
        try:
            est = cls._load(path)
            est._checked_params()                    # parameters edited into something fit would refuse
            return est
        except (json.JSONDecodeError, KeyError, TypeError, AttributeError, IndexError) as err:
            what = f"no entry {err.args[0]!r}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
            raise ValueError(f"{path}: not a valid {cls.__name__} file ({what})") from None
        except ValueError as err:
            if str(path) in str(err):
                raise
            raise ValueError(f"{path}: {err}") from None

    @classmethod
    def _load(cls, path) -> "SphereNetRegressor":
        weights, radii, extra = load_weights(path)
        try:
            state, params, scaling, history = (json.loads(str(extra[k]))
                                               for k in ("state", "params", "scaling", "history"))
        except KeyError as err:
            raise ValueError(f"{path}: not a {cls.__name__} file (missing {err.args[0]!r})") from None
        if state.get("kind") != cls.__name__ or state.get("format") != _FORMAT:
            raise ValueError(f"{path}: not a {cls.__name__} file of format {_FORMAT}")
        est = cls(**_decode(params))
        drift = max([d for d in history.get("drift", []) if d is not None], default=0.0)
        try:
            est._set_fitted(_network_on_spheres(weights, radii, drift), scaling_from_dict(scaling),
                            _history_from_dict(history), bool(state["y_1d"]), state["seed"],
                            state["lipschitz_lower"], state["lipschitz_selection"])
        except (KeyError, TypeError) as err:
            raise ValueError(f"{path}: not a readable {cls.__name__} file ({type(err).__name__}: {err})") from None
        return est

    def __sklearn_tags__(self):
        """Tags for scikit-learn's checks (imported only when scikit-learn asks)."""
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags
        return Tags(estimator_type="regressor", target_tags=TargetTags(required=True, multi_output=True),
                    regressor_tags=RegressorTags(), input_tags=InputTags())


# --- input validation --------------------------------------------------------------------------------------

def _as_array(name: str, value) -> np.ndarray:
    """``value`` as a real NumPy array: lists and object arrays of numbers are converted; sparse, complex,
    string and other non-numeric input is refused naming ``name``."""
    if value is None:
        raise ValueError(f"{name} is required: this estimator requires y to be passed, but the target y is None"
                         if name == "y" else f"{name} is required, got None")
    sparse = sys.modules.get("scipy.sparse")     # a sparse matrix can only exist once SciPy made it: not imported
    if sparse is not None and sparse.issparse(value):               # here (11 MB and 0.1 s at start-up)
        raise TypeError(f"{name}: sparse input is not supported; pass a dense array ({name}.toarray())")
    if isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be an array of numbers, got {type(value).__name__}")
    try:
        arr = np.asarray(value)
    except ValueError as err:
        raise ValueError(f"{name} is not a rectangular array of numbers ({err})") from None
    if np.issubdtype(arr.dtype, np.complexfloating):
        raise ValueError(f"{name}: Complex data not supported (dtype {arr.dtype}); pass real numbers")
    if arr.dtype == object:
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"{name} must hold real numbers ({err})") from None
    if np.issubdtype(arr.dtype, np.floating) and arr.size and not np.isfinite(arr).all():
        where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
        raise ValueError(f"{name} contains NaN or inf ({arr[where]} at index {where})")
    return arr


def _as_matrix(name: str, value, n_features: int | None = None) -> np.ndarray:
    arr = _as_array(name, value)
    if arr.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples as rows), got shape {arr.shape}. Reshape your data: "
                         f"{name}.reshape(-1, 1) for one feature, {name}.reshape(1, -1) for one sample")
    if arr.shape[1] == 0:
        raise ValueError(f"{name} has 0 feature(s) (shape={arr.shape}) while a minimum of 1 is required.")
    if n_features is not None and arr.shape[1] != n_features:
        raise ValueError(f"{name} has {arr.shape[1]} features, but SphereNetRegressor is expecting "
                         f"{n_features} features as input")
    return as_float_matrix(name, arr)


def _as_targets(y) -> tuple[np.ndarray, bool]:
    """``(Y (N, m), y_was_1d)``."""
    arr = _as_array("y", y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"y must be 1-D (one output) or 2-D (samples as rows), got shape {arr.shape}")
    return as_float_matrix("y", arr.reshape(-1, 1) if arr.ndim == 1 else arr), arr.ndim == 1


# --- helpers -----------------------------------------------------------------------------------------------

def _is_auto(value) -> bool:
    return isinstance(value, str) and value == "auto"


def _same(a, b) -> bool:
    try:
        return type(a) is type(b) and bool(a == b)
    except (TypeError, ValueError):
        return False


def _progress(iterations: int):
    every = max(1, iterations // 10)

    def report(k, history):
        if k % every == 0 or k == iterations:
            print(f"[SphereNetRegressor] iteration {k}/{iterations}: J = {history.loss_train[-1]:.6e}, "
                  f"tau = {history.tau[-1]:.3e}")
    return report


def _json_str(obj) -> np.ndarray:
    return np.array(json.dumps(obj, allow_nan=False))


def _encode(value):
    """JSON-ready parameters: tuples and NumPy dtypes tagged so they come back as given, NumPy scalars as
    Python numbers."""
    if isinstance(value, dict):
        return {k: _encode(v) for k, v in value.items()}
    if isinstance(value, tuple):
        return {"__tuple__": [_encode(v) for v in value]}
    if isinstance(value, list):
        return [_encode(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return {"__dtype__": np.dtype(value).name, "as_type": isinstance(value, type)}
    if value is None or isinstance(value, (str, bool, numbers.Real)):
        return value
    raise TypeError(f"cannot save the parameter value {value!r} ({type(value).__name__}) as JSON")


def _decode(value):
    if isinstance(value, dict):
        if set(value) == {"__tuple__"}:
            return tuple(_decode(v) for v in value["__tuple__"])
        if "__dtype__" in value:
            dtype = np.dtype(value["__dtype__"])
            return dtype.type if value["as_type"] else dtype
        return {k: _decode(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_decode(v) for v in value]
    return value


def _network_on_spheres(weights, radii, drift: float) -> NormalisedMLP:
    """Saved weights checked against their radii up to the drift the fit itself recorded."""
    rtol = max(1e-6 if weights[0].dtype == np.float32 else 1e-10, 2 * drift)
    return NormalisedMLP.from_weights(weights, radii, rtol)


def _history_from_dict(d: dict) -> History:
    """Inverse of ``History.as_dict`` (``None`` back to NaN in the numeric lists)."""
    def nums(xs):
        return [np.nan if x is None else x for x in xs]
    d = dict(d)
    for key in ("loss_train", "loss_test", "tau", "beta", "predicted", "actual", "drift", "seconds"):
        d[key] = nums(d[key])
    d["info"] = {k: nums(v) for k, v in d["info"].items()}
    return History(**d)


# --- a trained run, ready to use ---------------------------------------------------------------------------

def from_run(folder) -> SphereNetRegressor:
    """The model a ``spherenet train`` run wrote, as a fitted :class:`SphereNetRegressor`.

    Parameters
    ----------
    folder : str or path-like
        The run's ``--out`` folder (``result.json`` and ``weights.npz``).

    Returns
    -------
    SphereNetRegressor
        ``predict`` takes raw features and returns newtons, with the run's scaling and its Lipschitz
        certificate (``lipschitz_bound_``, ``lipschitz_budget_``, ``lipschitz_lower_``).

    Notes
    -----
    Refused with an error naming the file: a missing or damaged file, a baseline's run (no network on
    spheres), a result written by a spherenet whose result format differs (``RESULT_FORMAT``).
    """
    from pathlib import Path

    from .experiments import RESULT_FORMAT, SPHERE_METHODS
    from .results import read_json
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder (a `spherenet train --out` folder)")
    record = read_json(folder / "result.json")
    if not isinstance(record, dict) or record.get("format") != RESULT_FORMAT:
        found = record.get("format") if isinstance(record, dict) else None
        raise ValueError(f"{folder / 'result.json'}: result format {found!r}, this spherenet reads format "
                         f"{RESULT_FORMAT}: written by another version; retrain with this one")
    if record.get("method") not in SPHERE_METHODS:
        raise ValueError(f"{folder}: a run of the baseline {record.get('method')!r}, not a network on spheres")
    weights, radii, _ = load_weights(folder / "weights.npz")
    try:
        history = History.from_dict({k: record[k] for k in ("method", "loss_train", "loss_test", "tau", "beta",
                                                              "halvings", "flags", "info", "stop_reason")})
        est = SphereNetRegressor(hidden=tuple(record["widths"][1:-1]), method=record["method"],
                                 iterations=record["iterations"], batch_size=record["batch_size"],
                                 scaling="paper" if record["scaling"]["kind"] == "PaperScaling" else "standard",
                                 lipschitz=record["lipschitz"] if record["lipschitz_selection"] is None
                                 and record["scaling"]["kind"] == "StandardScaling" else None,
                                 dtype=record["dtype"], random_state=record["seed"])
        est._set_fitted(_network_on_spheres(weights, radii, record["max_norm_drift"] or 0.0),
                        scaling_from_dict(record["scaling"]),
                        history, False, record["seed"], record["lipschitz_lower"], record["lipschitz_selection"])
        est.batch_size_ = record.get("batch_size_used", record["batch_size"])
        est.batch_selection_ = record.get("batch_selection")
    except (KeyError, TypeError) as err:
        raise ValueError(f"{folder / 'result.json'}: not a readable `spherenet train` result "
                         f"({type(err).__name__}: {err})") from None
    if est.net_.widths[0] != est.scaling_.n_inputs:
        raise ValueError(f"{folder}: weights.npz and result.json do not belong together (input widths differ)")
    return est


def load(path) -> SphereNetRegressor:
    """A trained model, ready to ``predict`` raw features.

    Parameters
    ----------
    path : str or path-like
        A ``spherenet train`` output folder (read by :func:`from_run`) or a file written by
        :meth:`SphereNetRegressor.save`.

    Returns
    -------
    SphereNetRegressor
        The fitted model.
    """
    from pathlib import Path
    return from_run(path) if Path(path).is_dir() else SphereNetRegressor.load(path)
