"""The automatic step on mini-batches: Adam's direction on the product of spheres, the length from the
geodesic jet averaged across batches (docs/beyond.md §7). No learning rate, no schedule.

Per batch ``b`` (``g = Proj_W ∇J_b``, ``T`` transport by projection, ``beta1, beta2 = 0.9, 0.999``):

    m, v   <- beta1 T(m) + (1 - beta1) g,  beta2 v + (1 - beta2) g ⊙ g           (Adam's moments)
    D       = -T(m̂ / (sqrt(v̂) + delta)), or -g if not descent   (Adam's direction, tangent: AdamDirection)
    Γ       = Geodesic(W, D, mu)                          (per-layer rates; the fastest layer turns by t)
    beta_b  = -<∇J_b, D>/s,   kappa_b = 2 c_2             slope of J_b along Γ, curvature (its jet) on
                                                          every k-th row, k = ceil(|b| / curvature_rows)
    B, K   <- rho (B, K) + (1 - rho)(beta_b, kappa_b)     averaged across batches (rho = 0.99)
    t       = clip(B / K, 0, eps)                         the Newton step of the averaged model
    tau     = t, halved (at most ``max_halvings = 2``) while J_b(Γ(tau)) > J_b(W); else tau = 0

One batch's jet is a noisy model of the expected loss along ``D``; the step of the *averaged* model
``-B t + K t²/2`` follows the expected slope and curvature, which change slowly, instead of each batch's
noise. The step length therefore has no learning rate and no schedule: it is the Newton step of the
averaged model, which shrinks as the expected slope along Adam's direction does. The (cheap) halvings keep
each step a descent step on its own batch. Every iterate is ``Γ(tau)``: on the spheres, so ``prod mu_i``
bounds the Lipschitz constant at every step; the loss is bounded on the spheres, so the rule cannot diverge.
"""
from __future__ import annotations

import math

import numpy as np

from .._checks import finite_float, positive_int
from ..network import ForwardCache
from ..steps import Step, backtrack
from ..taylor import EPS, predicted_change
from .directions import AdamDirection, inner
from .geodesic import Geodesic


class BatchGeodesicStep:
    """Step rule ``rule(it) -> Step`` for mini-batches (module docstring; docs/method.md §7).

    Parameters
    ----------
    eps : float, optional
        The largest step (default ``π/6``).
    memory : float, optional
        ``rho`` in ``[0, 1)``, the averaging of slope and curvature across batches (default 0.99).
    betas : tuple of float, optional
        Adam's moment constants (the standard ones; only the direction is Adam's).
    max_halvings : int, optional
        Halvings of the step against the batch's own loss before the step is skipped (``tau = 0``; default 2).
    delta : float, optional
        Adam's ``delta`` (``AdamDirection``).
    curvature_rows : int or None, optional
        Rows of the batch the curvature is estimated on (:meth:`curvature_sample`; ``None``: all).

    Notes
    -----
    ``Step.info``: ``kappa``, ``beta_batch``, ``t_model``, ``speed`` and the direction's ``info``; flag
    ``"clipped"`` when ``t_model = eps``.
    """
    name = "geo-batch"
    uses_adjoints = False

    def __init__(self, eps: float = EPS, memory: float = 0.99, betas=(0.9, 0.999), max_halvings: int = 2,
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
        self.model = np.zeros(3)                  # running sums: (weight, B, K); their ratio B/K is the step

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
        """
        self.model = np.array(state["model"], dtype=np.float64)
        self.direction.restore({k: v for k, v in state.items() if k != "model"})

    def averaged_step(self, beta: float, kappa: float) -> float:
        """Fold one batch's slope and curvature into the averages and return the averaged model's Newton step.

        Parameters
        ----------
        beta, kappa : float
            ``beta_b``, ``kappa_b``; a non-finite pair is not folded in.

        Returns
        -------
        float
            ``t = clip(B/K, 0, eps)``: ``eps`` when ``K <= 0 < B``, 0 when ``B <= 0``.

        Notes
        -----
        ``B, K`` average with weights ``(1 - rho) rho^j``, normalised by their sum (i.e. bias-corrected).
        """
        if math.isfinite(beta) and math.isfinite(kappa):
            self.model = self.rho * self.model + (1 - self.rho) * np.array([1.0, beta, kappa])
        weight, B, K = self.model
        if not weight > 0 or not B > 0:
            return 0.0
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
        The jet's curvature is averaged over ~100 batches, so a part of each batch estimates it as well, for a
        quarter of the jet's cost at batch 1024. Every k-th row, not the first rows: batches are sorted by sample index.
        """
        n = it.X.shape[0]
        if self.curvature_rows is None or n <= self.curvature_rows:
            return it.cache, it.X, it.Y
        k = -(-n // self.curvature_rows)
        inputs = [np.ascontiguousarray(A[::k]) for A in it.cache.H]
        cache = ForwardCache(inputs, [np.ascontiguousarray(Z[::k]) for Z in it.cache.Z])
        return cache, inputs[0], np.ascontiguousarray(it.Y[::k])

    def __call__(self, it) -> Step:
        if it.direction.beta == 0:
            return Step(0.0, it.weights, it.cache, it.loss, predicted=0.0, flags=("stationary",))
        D, info = self.direction(it.weights, it.grads, it.radii)
        curve = Geodesic(it.weights, D, it.radii)
        c = curve.loss_jet(*self.curvature_sample(it), 2)
        c[1] = inner(it.grads, D) / curve.speed              # the slope on the whole batch, exact
        t_model = self.averaged_step(-c[1], 2 * c[2])
        step = backtrack(it, t_model, self.max_halvings, loss_at=lambda t: it.loss_at(curve.point(t)))
        step.flags = (("clipped",) if t_model == self.eps else ()) + step.flags
        step.predicted = predicted_change(c, step.tau) if np.isfinite(c).all() else math.nan
        step.info = {"kappa": 2 * c[2], "beta_batch": -c[1], "t_model": t_model, "speed": curve.speed, **info}
        return step
