"""Algorithm 1 (docs/method.md §4) and its order-r extension as step rules, and what a teacher looks at.

Algorithm 1 models ``φ(t) = J(Γ(t))`` by its Taylor polynomial of order 2, ``φ(0) - beta t + kappa t²/2``,
with ``kappa = 2 J_2`` from the loss jet (``spherenet.jets``), takes the safeguarded Newton step and backtracks
against the previous accepted loss. The extension (ours, not the paper's) uses the order-r polynomial
``φ_r(t) = sum_{k<=r} J_k t^k`` and its smallest positive local minimiser in ``(0, eps]``; r = 2 is Algorithm 1.

The model's slope is the exact ``-beta`` of the backward pass (the jet's ``J_1`` equals it to rounding), so
the ``beta = 0`` rules of docs/method.md §4 apply exactly.
"""
from __future__ import annotations

import math

import numpy as np
from numpy.polynomial import polynomial as P

from ._checks import finite_float, positive_int
from .jets import MAX_ORDER, loss_jet2_adjoint, loss_jet_from
from .network import Workspace
from .steps import Iterate, Step, backtrack, backtracking, loss_along

EPS = math.pi / 6

# A root of φ_r' counts as real when |Im t| <= _IMAG_TOL max(|t|, eps). Simple real roots come out of the
# companion-matrix eigenvalues with |Im t| ~ 1e-16; a pair split off a double root (|Im t| ~ 1e-8) is not a
# sign change of φ_r', so dropping it loses no minimiser.
_IMAG_TOL = 1e-9
# φ_r''(t) counts as zero when below _FLAT times the size of its terms; such a root is a multiple root of
# φ_r', located only to ~eps_mach^(1/m), so its sign change is read at t ± _SIGN_STEP eps instead.
_FLAT = 1e-8
_SIGN_STEP = 1e-4


def newton_safeguard(beta: float, kappa: float, eps: float = EPS) -> float:
    """The safeguarded Newton step of ``φ(0) - beta t + kappa t²/2``: docs/method.md §4 steps 3–4, literally.

    Parameters
    ----------
    beta : float
        ``-φ'(0) >= 0`` (a sum of norms).
    kappa : float
        ``φ''(0)``, finite (the step rule handles a non-finite ``kappa``).
    eps : float, optional
        The largest step (default ``EPS = π/6``).

    Returns
    -------
    float
        ``kappa != 0``: ``t_cr = beta/kappa`` when ``0 <= t_cr <= eps``, else ``eps`` (negative curvature or too
        long). ``kappa == 0``: ``0`` when ``beta = 0``, else ``eps``.

    Examples
    --------
    >>> newton_safeguard(1.0, 4.0)                   # the Newton step 1/4 lies in [0, eps]
    0.25
    >>> newton_safeguard(1.0, -2.0) == EPS           # negative curvature: eps = pi/6
    True
    >>> newton_safeguard(0.0, 0.0)                   # stationary: stay
    0.0
    """
    beta = finite_float("beta", beta, nonnegative=True)
    kappa = finite_float("kappa", kappa)
    eps = finite_float("eps", eps, positive=True)
    if kappa != 0:
        t_cr = beta / kappa                  # Python floats: a huge ratio is inf, not an error
        # 0 <= t_cr exactly when beta = 0 or kappa > 0 (beta >= 0); decided on the signs because the
        # quotient can underflow to -0.0 for beta > 0, kappa < 0. abs() makes beta = 0, kappa < 0 give +0.0.
        nonnegative = beta == 0 or kappa > 0
        return abs(t_cr) if nonnegative and t_cr <= eps else eps
    return 0.0 if beta == 0 else eps


def model_step(coeffs, eps: float = EPS) -> float:
    """Step of the order-r model ``φ_r(t) = sum_{k<=r} c_k t^k`` (ours, docs/method.md §4).

    Parameters
    ----------
    coeffs : array_like, shape (r+1,)
        ``c_0..c_r``, ``r >= 1``, finite.
    eps : float, optional
        The largest step (default ``π/6``).

    Returns
    -------
    float
        The smallest positive local minimiser in ``(0, eps]``, else ``eps``; ``0`` when ``c_1 >= 0`` (no descent
        at ``t = 0``, i.e. ``beta = 0``, as docs/method.md §4 gives for ``beta = 0``).

    Notes
    -----
    Candidates are the real roots of ``φ_r'`` in ``[0, eps]`` (numpy companion-matrix roots, real within
    ``_IMAG_TOL``; a positive root below the float range rounds to 0 and is kept, as ``t_cr = 0`` is in §4). A root
    ``t`` is a local minimiser when ``φ_r''(t) > 0``; where ``φ_r''(t)`` is rounding-small next to its terms (a
    multiple root of ``φ_r'``), when ``φ_r'`` goes from - to + across ``t ± _SIGN_STEP eps``. For ``r = 2`` this is
    exactly ``newton_safeguard(-c_1, 2 c_2, eps)``.

    Examples
    --------
    >>> model_step([0.0, -1.0, 1.0])                 # -t + t²: the Newton step 1/2
    0.5
    >>> model_step([0.0, -1.0, 0.0, 3.0])            # -t + 3t³: minimiser 1/3
    0.3333333333333333
    """
    c = np.asarray(coeffs, dtype=np.float64)
    if c.ndim != 1 or c.shape[0] < 2:
        raise ValueError(f"coeffs must be a 1-D array of r+1 >= 2 coefficients, got shape {c.shape}")
    if not np.isfinite(c).all():
        raise ValueError(f"coeffs must be finite, got {c}")
    eps = finite_float("eps", eps, positive=True)
    if c[1] >= 0:
        return 0.0
    d1, d2 = P.polyder(c), P.polyder(c, 2)
    with np.errstate(all="ignore"):       # tiny leading coefficients give huge (or inf) roots: not in [0, eps]
        roots = P.polyroots(d1)
    real = roots.real[np.abs(roots.imag) <= _IMAG_TOL * np.maximum(np.abs(roots), eps)]
    for t in np.sort(real[(real >= 0) & (real <= eps)]):
        if _is_local_min(d1, d2, t, eps):
            return float(t)
    return eps


def _is_local_min(d1, d2, t: float, eps: float) -> bool:
    """Is the root ``t`` of ``φ_r'`` (coefficients ``d1``) a local minimiser of ``φ_r``?"""
    curvature = P.polyval(t, d2)
    terms = P.polyval(abs(t), np.abs(d2))             # size of the terms summed into φ_r''(t)
    if abs(curvature) > _FLAT * terms:
        return curvature > 0
    h = _SIGN_STEP * eps
    return P.polyval(t - h, d1) < 0 < P.polyval(t + h, d1)


def safeguarded_step(c, order: int, eps: float = EPS) -> tuple[float, list]:
    """The model's step before backtracking, and the degenerate cases met (names from ``steps.FLAGS``).

    Parameters
    ----------
    c : ndarray, shape (r+1,)
        ``(J_0, -beta, J_2, ..)``: the model's coefficients.
    order : int
        ``r``.
    eps : float, optional
        The largest step.

    Returns
    -------
    t_model : float
        ``eps`` for a non-finite coefficient (``"kappa-nonfinite"``); order 2: :func:`newton_safeguard` (Algorithm 1,
        ``beta = max(-c_1, 0)``: a rounding-level ``c_1 > 0`` is ``beta = 0``); higher orders: :func:`model_step`.
    flags : list of str
        Also ``"kappa-nonpositive"`` when ``kappa = 2 c_2 <= 0``, ``"clipped"`` when the step is ``eps``.

    Examples
    --------
    >>> safeguarded_step([1.0, -1.0, -1.0], 2, eps=0.5)
    (0.5, ['kappa-nonpositive', 'clipped'])
    """
    kappa = 2 * c[2] if order >= 2 else math.nan
    flags = []
    if not np.isfinite(c).all():
        t_model = eps
        flags.append("kappa-nonfinite")
    elif order == 2:
        # beta >= 0 in exact arithmetic; a jet's c_1 can come out at rounding level on the wrong side
        # (-4.4e-18 along a direction that does not descend), which is beta = 0: no step
        t_model = newton_safeguard(max(-c[1], 0.0), kappa, eps)
    else:
        t_model = model_step(c, eps)
    if kappa <= 0:
        flags.append("kappa-nonpositive")
    if t_model == eps:
        flags.append("clipped")
    return t_model, flags


def predicted_change(coeffs, tau: float) -> float:
    """The model's ``φ_r(tau) - φ_r(0) = sum_{k=1..r} c_k tau^k``.

    Parameters
    ----------
    coeffs : array_like, shape (r+1,)
    tau : float

    Returns
    -------
    float

    Examples
    --------
    >>> predicted_change([5.0, -1.0, 1.0], 0.5)
    -0.25
    """
    return float(sum(c * tau**k for k, c in enumerate(coeffs) if k))


def step(phi, beta: float, kappa: float, J_prev: float, eps: float = EPS, max_halvings: int = 30):
    """Algorithm 1 (docs/method.md §4) as a search on one variable: the readable form of :class:`TaylorStep`.

    Parameters
    ----------
    phi : callable
        ``phi(t) -> float``: the loss along the update curve, ``φ(t) = J(Γ(t))``.
    beta : float
        ``-φ'(0) = Σ_i mu_i ||grad_i||_F >= 0``.
    kappa : float
        ``φ''(0) = 2 J_2``, from the loss jet.
    J_prev : float
        The previous accepted loss, which backtracking compares against.
    eps : float, optional
        The largest step, ``π/6`` in the paper.
    max_halvings : int, optional
        The cap on backtracking halvings.

    Returns
    -------
    tau : float
        The angle taken (0: stay).
    halvings : int
        The backtracking halvings made.

    Notes
    -----
    Steps 3–5 of Algorithm 1, literally:

        t_cr = beta / kappa;   tau = t_cr if 0 <= t_cr <= eps else eps     (kappa = 0: 0 if beta = 0 else eps)
        while phi(tau) > J_prev:  tau <- tau / 2                             (steps.backtracking)

    A non-finite ``kappa`` gives ``tau = eps`` before backtracking. :class:`TaylorStep` is the fast form: the
    same two functions (through :func:`safeguarded_step` and ``steps.backtrack``), with ``phi`` evaluated
    into the training loop's buffers and the jet from the backward pass's adjoints.

    Examples
    --------
    >>> phi = lambda t: 1.0 - t + t ** 2          # beta = 1, kappa = 2: the Newton step is 1/2 ...
    >>> step(phi, beta=1.0, kappa=2.0, J_prev=1.0, eps=1.0)
    (0.5, 0)
    >>> step(phi, beta=1.0, kappa=2.0, J_prev=1.0, eps=0.25)   # ... clipped to eps
    (0.25, 0)
    >>> step(phi, beta=1.0, kappa=-1.0, J_prev=1.0, eps=2.0)   # no minimum: eps, halved until phi <= J_prev
    (1.0, 1)
    """
    t_model = newton_safeguard(beta, kappa, eps) if math.isfinite(kappa) else eps
    return backtracking(phi, t_model, J_prev, max_halvings)


def jet_newton_step(it: Iterate, c, order: int, eps: float, max_halvings: int, loss_at=None) -> Step:
    """The jet-Newton step every full-batch jet rule takes: Algorithm 1 and the geodesic rules (§4, §7).

    Parameters
    ----------
    it : steps.Iterate
    c : ndarray, shape (r+1,)
        ``(J_0, -beta, J_2, .., J_r)``: the jet of ``φ`` along the rule's curve with the exact slope.
    order : int
    eps : float
    max_halvings : int
    loss_at : callable, optional
        ``loss_at(t) -> (J, weights, cache)``; default: the paper's curve.

    Returns
    -------
    steps.Step
        The model step (:func:`safeguarded_step`) after ``steps.backtrack``; ``predicted = sum_{k=1..r} c_k tau^k``
        at the ``tau`` taken (NaN for a non-finite ``c``); ``info``: ``kappa``, ``t_model``.
    """
    t_model, flags = safeguarded_step(c, order, eps)
    taken = backtrack(it, t_model, max_halvings, loss_at)
    taken.flags = tuple(flags) + taken.flags
    taken.predicted = predicted_change(c, taken.tau) if np.isfinite(c).all() else math.nan
    taken.info = {"kappa": 2 * c[2] if order >= 2 else math.nan, "t_model": t_model}
    return taken


class TaylorStep:
    """Step rule: the order-r Taylor model of ``φ`` along Γ, then backtracking (Algorithm 1 for ``order=2``; §4).

    The fast form of :func:`step`.

    Parameters
    ----------
    order : int, optional
        ``r``, ``1 <= r <= jets.MAX_ORDER`` (default 2).
    eps : float, optional
        The largest step (default ``π/6``).
    max_halvings : int, optional
        The cap on backtracking halvings (default 30; hitting it gives ``tau = 0``, ``"backtracking-cap"``).

    Attributes
    ----------
    name : str
        ``"taylor"``, or ``"taylor<r>"`` for ``r != 2``.

    Notes
    -----
    Per call: the jet ``J_0..J_r`` of ``φ`` (:meth:`model`), ``kappa = 2 J_2``, model coefficients
    ``c = (J_0, -beta, J_2, .., J_r)``; then :func:`jet_newton_step`: ``newton_safeguard(beta, kappa, eps)`` for
    ``r = 2``, ``model_step(c, eps)`` otherwise, and ``steps.backtrack`` against ``it.loss_prev``.
    ``Step.flags``: ``"stationary"`` (``beta = 0``: ``tau = 0``, no backtracking), ``"kappa-nonfinite"``
    (``t_model = eps``), ``"kappa-nonpositive"`` (``kappa <= 0``), ``"clipped"`` (``t_model = eps``).
    ``Step.info``: ``kappa``, ``coeffs`` (the jet as computed), ``t_model``. ``Step.predicted =
    sum_{k=1..r} c_k tau^k`` at the accepted ``tau``.
    """

    def __init__(self, order: int = 2, eps: float = EPS, max_halvings: int = 30):
        self.order = positive_int("order", order)
        if self.order > MAX_ORDER:
            raise ValueError(f"order must be <= {MAX_ORDER}, got {order}")
        self.eps = finite_float("eps", eps, positive=True)
        self.max_halvings = positive_int("max_halvings", max_halvings, minimum=0)
        self.name = "taylor" if self.order == 2 else f"taylor{self.order}"

    @property
    def uses_adjoints(self) -> bool:
        """Order 2 reads the backward pass's adjoints (:meth:`model`); the training loop keeps them only then."""
        return self.order == 2

    def __repr__(self) -> str:
        return f"TaylorStep(order={self.order}, eps={self.eps!r}, max_halvings={self.max_halvings})"

    def model(self, it: Iterate) -> tuple[np.ndarray, np.ndarray, float]:
        """The loss jet and the model built from it.

        Parameters
        ----------
        it : steps.Iterate

        Returns
        -------
        J : ndarray, shape (r+1,)
            The loss jet: ``jets.loss_jet_from``, or for order 2 with the adjoints at hand (``it.cache.dZ``, all of them
            or only the output layer's, the others then recomputed per block) the cheaper ``jets.loss_jet2_adjoint``
            (equal to rounding; tested).
        c : ndarray, shape (r+1,)
            ``J`` with the exact slope ``c_1 = -beta``.
        kappa : float
            ``2 J_2`` (NaN for order 1).
        """
        if self.order == 2 and it.cache.dZ is not None:
            J = loss_jet2_adjoint(it.cache, it.weights, it.direction.V, it.radii, it.X, it.direction.alpha_moving,
                                  it.workspace or Workspace(), it.Y)
        else:
            J = loss_jet_from(it, it.weights, it.direction.V, it.radii, it.X, it.Y, self.order)
        c = J.copy()
        c[1] = -it.direction.beta
        return J, c, 2 * J[2] if self.order >= 2 else math.nan

    def __call__(self, it: Iterate) -> Step:
        J, c, kappa = self.model(it)
        if it.direction.beta == 0:
            return Step(0.0, it.weights, it.cache, it.loss, predicted=0.0, flags=("stationary",),
                        info={"kappa": kappa, "coeffs": J, "t_model": 0.0})
        taken = jet_newton_step(it, c, self.order, self.eps, self.max_halvings)
        taken.info["coeffs"] = J
        return taken


def algorithm1(eps: float = EPS, max_halvings: int = 30) -> TaylorStep:
    """Algorithm 1 of the paper (docs/method.md §4): ``TaylorStep(order=2)``.

    Parameters
    ----------
    eps, max_halvings
        As :class:`TaylorStep`.

    Returns
    -------
    TaylorStep
    """
    return TaylorStep(order=2, eps=eps, max_halvings=max_halvings)


# --- what a teacher looks at: the true φ next to its Taylor models ---------------------------------------

def flip_fraction(cache0, cache_t) -> float:
    """Fraction of hidden ReLU units (over samples and hidden layers) with ``[Z(t) > 0] != [Z(0) > 0]``.

    Parameters
    ----------
    cache0, cache_t : network.ForwardCache
        The forward passes at ``t = 0`` and at ``t``.

    Returns
    -------
    float
        Where it is non-zero the activation pattern has changed and the jets (pattern fixed at ``t = 0``) stop
        being exact (docs/method.md §6). A network without hidden layers has no units to flip: 0.
    """
    hidden = range(len(cache0.Z) - 1)
    flipped = sum(int(np.count_nonzero((cache0.Z[i] > 0) != (cache_t.Z[i] > 0))) for i in hidden)
    total = sum(cache0.Z[i].size for i in hidden)
    return flipped / total if total else 0.0


def along_curve(it: Iterate, order: int = 4, t_max: float = EPS, n: int = 121, eps: float = EPS,
                max_halvings: int = 30) -> dict:
    """For one iteration: the true ``φ`` on a grid of ``t`` next to its Taylor models of orders ``1..order`` (§6).

    Parameters
    ----------
    it : steps.Iterate
    order : int, optional
        The highest model order (default 4).
    t_max, n : optional
        The grid: ``n >= 2`` points on ``[0, t_max]`` (default 121 on ``[0, π/6]``).
    eps, max_halvings : optional
        For the steps of each order's rule.

    Returns
    -------
    dict
        ``t: (n,)``; ``phi: (n,)`` the true ``φ(t) - φ(0)``; ``models: (order, n)`` with row ``m-1`` =
        ``sum_{k=1..m} J_k t^k``; ``flip_fraction: (n,)`` (:func:`flip_fraction`); ``t_flip``: first grid ``t``
        with a flipped unit (``nan`` if none); ``coeffs``: ``J_0..J_order``; ``beta``; ``kappa = 2 J_2``;
        ``tau_model: (order,)`` the model step of each order-m rule before backtracking and ``tau: (order,)``
        after it (as ``TaylorStep(m)`` would take it).
    """
    order = positive_int("order", order)
    n = positive_int("n", n, minimum=2)
    t_max = finite_float("t_max", t_max, positive=True)
    t = np.linspace(0.0, t_max, n)
    J = loss_jet_from(it, it.weights, it.direction.V, it.radii, it.X, it.Y, max(order, 2))
    phi, flips = np.empty(n), np.empty(n)
    for j, tj in enumerate(t):
        loss_t, _, cache_t = loss_along(it, tj)
        phi[j], flips[j] = loss_t - it.loss, flip_fraction(it.cache, cache_t)
    powers = t[None, :] ** np.arange(1, order + 1)[:, None]              # (order, n): t^k
    models = np.cumsum(J[1:order + 1, None] * powers, axis=0)
    tau_model, tau = np.empty(order), np.empty(order)
    for m in range(1, order + 1):
        taken = TaylorStep(m, eps, max_halvings)(it)
        tau_model[m - 1], tau[m - 1] = taken.info["t_model"], taken.tau
    flipped = np.flatnonzero(flips > 0)
    return {"t": t, "phi": phi, "models": models, "flip_fraction": flips,
            "t_flip": float(t[flipped[0]]) if flipped.size else math.nan, "coeffs": J[:order + 1],
            "beta": it.direction.beta, "kappa": 2 * J[2], "tau_model": tau_model, "tau": tau}
