"""The automatic step on mini-batches: Adam's direction on the product of spheres, the length from the
slope and curvature of the loss along the geodesic, averaged across batches (docs/beyond.md §7). No learning
rate, no schedule.

Per batch ``b`` (``g = Proj_W ∇J_b``, ``T`` transport by projection, ``beta1, beta2 = 0.95, 0.999``):

    m, v   <- beta1 T(m) + (1 - beta1) g,  beta2 v + (1 - beta2) g ⊙ g           (Adam's moments)
    D       = -T(m̂ / (sqrt(v̂) + delta)), or -g if not descent   (Adam's direction, tangent: AdamDirection)
    Γ       = Geodesic(W, D, mu)                          (per-layer rates; the fastest layer turns by t)
    beta_b  = -<∇J_b, D>/s                                slope of J_b along Γ, exact on the whole batch
    B      <- rho B + (1 - rho) beta_b                    averaged across batches (rho = 0.99)
    t       = clip(B / K, 0, eps)                         the Newton step of the averaged model
    tau     = t, halved (at most ``max_halvings = 2``) while J_b(Γ(tau)) > J_b(W); else tau = 0
    kappa_b = 2 (J_b(Γ(t)) - J_b(W) + beta_b t) / t²      the secant curvature of the first trial (free:
    K      <- rho K + (1 - rho) kappa_b                    the trial's forward pass is needed anyway)

The first curvature (before any trial) is the order-2 jet's ``2 c_2`` on a sample of the first batch; with
spectrally normalised layers (:mod:`spherenet.spectral`, whose jets this rule does not have) the first step
is the largest, ``eps``, halved as needed, and its secant gives the first curvature.
One batch's slope and curvature are noisy; the step of the *averaged* model ``-B t + K t²/2`` follows the
expected slope and curvature, which change slowly, instead of each batch's noise. The step length therefore
has no learning rate and no schedule: it is the Newton step of the averaged model, which shrinks as the
expected slope along Adam's direction does. The (cheap) halvings keep each step a descent step on its own
batch. Every iterate is ``Γ(tau)``: on the spheres, so ``prod mu_i`` bounds the Lipschitz constant at every
step; the loss is bounded on the spheres, so the rule cannot diverge.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import finite_float, positive_int
from ..network import ForwardCache
from ..steps import Step, backtrack
from ..taylor import EPS
from .directions import AdamDirection, inner
from .geodesic import Geodesic

# A secant's curvature term K t²/2 must stand this many rounding units of the loss above the rounding of the
# two losses it is the difference of; below that the secant measures rounding, not curvature.
_RESOLVABLE = 64


def secant_curvature(J0: float, beta: float, t: float, Jt: float) -> float:
    """The curvature of the parabola through ``φ(0) = J0``, ``φ'(0) = -beta`` and ``φ(t) = Jt``.

    ``kappa = 2 (φ(t) - φ(0) + beta t) / t²`` (docs/beyond.md §7).

    Parameters
    ----------
    J0, beta, t, Jt : float
        ``t > 0``.

    Returns
    -------
    float

    Examples
    --------
    >>> secant_curvature(1.0, 2.0, 0.5, 1.0 - 2.0 * 0.5 + 3.0 * 0.5 ** 2 / 2)      # φ = 1 - 2t + 3t²/2
    3.0
    """
    return 2 * (Jt - J0 + beta * t) / (t * t)


class BatchGeodesicStep:
    """Step rule ``rule(it) -> Step`` for mini-batches (module docstring; docs/beyond.md §7).

    Parameters
    ----------
    eps : float, optional
        The largest step (default ``π/6``).
    memory : float, optional
        ``rho`` in ``[0, 1)``, the averaging of slope and curvature across batches (default 0.99).
    betas : tuple of float, optional
        The moment constants of the direction (default ``(0.95, 0.999)``: only the direction is Adam's, and
        ``beta1 = 0.95`` ended lower than Adam's 0.9 on the validation data of three data sets,
        ``benchmarks/bench_batch_momentum.py``).
    max_halvings : int, optional
        Halvings of the step against the batch's own loss before the step is skipped (``tau = 0``; default 2).
    delta : float, optional
        Adam's ``delta`` (``AdamDirection``).
    curvature_rows : int or None, optional
        Rows of the batch the first curvature (the jet's, before any secant) is estimated on
        (:meth:`curvature_sample`; ``None``: all).

    Notes
    -----
    ``Step.info``: ``kappa`` (this step's secant curvature, NaN when there is none), ``kappa_model`` (the
    averaged ``K`` the step used), ``beta_batch``, ``t_model``, ``speed`` and the direction's ``info``; flag
    ``"clipped"`` when ``t_model = eps``. ``Step.predicted`` is ``-beta_b tau + K tau²/2``.
    """
    name = "geo-batch"
    uses_adjoints = False
    supports_spectral = True          # reads losses and gradients only (the first curvature: see __call__)

    def __init__(self, eps: float = EPS, memory: float = 0.99, betas=(0.95, 0.999), max_halvings: int = 2,
                 delta: float = 1e-8, curvature_rows: int | None = 256):
        self.eps = finite_float("eps", eps, positive=True)
        self.rho = finite_float("memory", memory, nonnegative=True)
        if not self.rho < 1:
            raise ValueError(f"memory must be in [0, 1), got {memory!r}")
        self.max_halvings = positive_int("max_halvings", max_halvings, minimum=0)
        self.curvature_rows = None if curvature_rows is None else positive_int("curvature_rows", curvature_rows)
        self.direction = AdamDirection(betas, finite_float("delta", delta, positive=True))
        self.reset()

    def reset(self) -> None:
        """Forget Adam's moments and the averaged model."""
        self.direction.reset()
        # running sums (slope weight, slope sum, curvature weight, curvature sum); B, K are sum / weight
        self.model = np.zeros(4)

    def state(self) -> dict:
        """The memory across batches (Adam's moments, the averaged model) as named arrays (for checkpoints).

        Returns
        -------
        dict
        """
        return {"model": self.model.copy(), **self.direction.state()}

    def restore(self, state: dict) -> None:
        """Continue from a memory that :meth:`state` returned.

        Parameters
        ----------
        state : dict

        Raises
        ------
        ValueError
            For the three-number model of the earlier rule (curvature from a jet on every batch), which this
            rule cannot continue.
        """
        model = np.array(state["model"], dtype=np.float64)
        if model.shape != (4,):
            raise ValueError(f"the geo-batch memory holds {model.size} numbers, expected 4: written by an earlier "
                             "version of the rule (curvature from a jet on every batch); start a new run")
        self.model = model
        self.direction.restore({k: v for k, v in state.items() if k != "model"})

    def _fold(self, index: int, value: float) -> None:
        """``(weight, sum) <- rho (weight, sum) + (1 - rho)(1, value)`` for the slope (0) or curvature (1)."""
        part = self.model[2 * index:2 * index + 2]
        part *= self.rho
        part += (1 - self.rho) * np.array([1.0, value])

    def fold_slope(self, beta: float) -> None:
        """Fold one batch's slope ``beta_b`` into ``B`` (a non-finite one is left out).

        Parameters
        ----------
        beta : float
        """
        if math.isfinite(beta):
            self._fold(0, beta)

    def fold_curvature(self, kappa: float) -> None:
        """Fold one curvature measurement into ``K`` (a non-finite one is left out).

        Parameters
        ----------
        kappa : float
        """
        if math.isfinite(kappa):
            self._fold(1, kappa)

    def averages(self) -> tuple[float, float]:
        """``(B, K)``: the bias-corrected averages, ``sum / weight`` (NaN before the first value).

        Returns
        -------
        tuple of float

        Notes
        -----
        Weights ``(1 - rho) rho^j`` over the values folded so far, normalised by their sum.
        """
        wB, sB, wK, sK = self.model
        return (sB / wB if wB > 0 else math.nan), (sK / wK if wK > 0 else math.nan)

    def model_step(self) -> float:
        """The averaged model's Newton step ``t = clip(B/K, 0, eps)``.

        Returns
        -------
        float
            ``eps`` when ``K <= 0 < B`` or ``B >= eps K``; 0 when ``B <= 0`` or nothing is known yet.
        """
        B, K = self.averages()
        if not B > 0:
            return 0.0
        if math.isnan(K):
            return self.eps
        return self.eps if B >= self.eps * K else B / K          # (K <= 0 < B included; B/K cannot overflow)

    def curvature_sample(self, it):
        """Every ``k``-th row of the batch, ``k = ceil(N / curvature_rows)`` (all rows when ``N <= curvature_rows``).

        Parameters
        ----------
        it : steps.Iterate

        Returns
        -------
        tuple
            ``(cache, X, Y)`` of those rows.

        Notes
        -----
        Every k-th row, not the first rows: batches are sorted by sample index.
        """
        n = it.X.shape[0]
        if self.curvature_rows is None or n <= self.curvature_rows:
            return it.cache, it.X, it.Y
        k = -(-n // self.curvature_rows)
        inputs = [np.ascontiguousarray(A[::k]) for A in it.cache.H]
        cache = ForwardCache(inputs, [np.ascontiguousarray(Z[::k]) for Z in it.cache.Z])
        return cache, inputs[0], np.ascontiguousarray(it.Y[::k])

    def resolvable(self, J0: float, t: float, dtype) -> bool:
        """Whether a secant over ``[0, t]`` resolves curvature of the size of ``K``: ``|K| t²/2`` exceeds
        ``64`` rounding units of the loss (``dtype``'s ``eps``), which the two losses' difference carries
        (always, while no ``K`` is known).

        Parameters
        ----------
        J0, t : float
        dtype : numpy dtype

        Returns
        -------
        bool
        """
        K = self.averages()[1]
        if math.isnan(K):                                      # no scale to compare with: take the secant
            return True
        return abs(K) * t * t / 2 > _RESOLVABLE * np.finfo(dtype).eps * abs(J0)

    def __call__(self, it) -> Step:
        if it.direction.beta == 0:
            return Step(0.0, it.weights, it.cache, it.loss, predicted=0.0, flags=("stationary",))
        D, info = self.direction(it.weights, it.grads, it.radii)
        curve = Geodesic(it.weights, D, it.radii)
        beta = -inner(it.grads, D) / curve.speed              # the slope on the whole batch, exact
        self.fold_slope(beta)
        if self.model[2] == 0 and it.normalisation is None:   # no curvature yet: the jet's, on a sample
            self.fold_curvature(2 * curve.loss_jet(*self.curvature_sample(it), 2)[2])
        t_model, K = self.model_step(), self.averages()[1]
        trials = []

        def loss_at(t):
            trials.append((t, *it.loss_at(curve.point(t))))
            return trials[-1][1:]

        step = backtrack(it, t_model, self.max_halvings, loss_at=loss_at)
        kappa = math.nan
        if trials and self.resolvable(it.loss, t_model, it.X.dtype):
            kappa = secant_curvature(it.loss, beta, t_model, trials[0][1])
            self.fold_curvature(kappa)
        step.flags = (("clipped",) if t_model == self.eps else ()) + step.flags
        step.predicted = -beta * step.tau + K * step.tau ** 2 / 2 if math.isfinite(K) else math.nan
        step.info = {"kappa": kappa, "kappa_model": K, "beta_batch": beta, "t_model": t_model,
                     "speed": curve.speed, **info}
        return step
