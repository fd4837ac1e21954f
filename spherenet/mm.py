"""Algorithm 2 (majorisation–minimisation, docs/method.md §5) as step rules, and the closed-form variant.

Per iteration, at ``W`` with direction ``V`` and ``β = -φ'(0)``:

    build m(t) = α(cos t - 1) - β sin t + penalty(t)        (spherenet.majorant)
    τ = argmin_{t ∈ [0, π]} m(t)                             (golden-section search)
    W_i <- Γ_i(τ)                                            (done by the training loop)

No backtracking and no decrease check: the authors take ``τ`` as it is. The rule does not evaluate
``J(Γ(τ))`` (``weights_new`` stays ``None``), so the loop's one forward pass at the new weights is the only
one. ``Step.predicted = m(τ)``, the majorant's promise for ``φ(τ) - φ(0)``.

Names: ``"mm"`` (spectral, the paper's), ``"mm-frobenius"``, ``"mm-telescoping"``, ``"mm-closed"``.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import check_choice, finite_float
from .majorant import ATOL, RTOL, VARIANTS, _build, _closed_form_tau, closed_form_model, input_energy, minimise
from .steps import Iterate, Step

NAMES = {"spectral": "mm", "frobenius": "mm-frobenius", "telescoping": "mm-telescoping"}


def _stationary(it: Iterate, info: dict) -> Step:
    """``β = 0``: every Riemannian gradient vanishes; stay (``τ = 0``, nothing predicted)."""
    return Step(0.0, it.weights, it.cache, it.loss, predicted=0.0, flags=("stationary",), info=info)


class MajorantStep:
    """Algorithm 2: ``τ = argmin_{[0, π]} m(t)`` for a majorant (docs/method.md §5).

    Parameters
    ----------
    variant : {"spectral", "frobenius", "telescoping"}, optional
        The majorant (default ``"spectral"``, the paper's).
    rtol, atol : float, optional
        For :func:`spherenet.majorant.golden_section` (defaults: the authors' Optim.jl tolerances in Float32).
    first_step : float, optional
        Bracketing from a small angle before the search (not the authors'; ``None`` = their search on all of
        ``[0, π]``).

    Attributes
    ----------
    name : str
        ``"mm"``, ``"mm-frobenius"`` or ``"mm-telescoping"``.

    Notes
    -----
    The search is :func:`spherenet.majorant.minimise`: the authors' golden section, plus a safeguard for
    majorants that are not unimodal on ``[0, π]`` (a result with ``m(τ) > 0 = m(0)`` is redone by bracketing
    from a small angle and flagged ``"not-unimodal"``; results with ``m(τ) <= 0`` are taken as found).
    ``Step.predicted = m(τ)``. ``Step.info``: ``alpha``, ``Q``, ``lipschitz_product`` (the product of norms the
    penalty uses: ``Π ||W_i||_2``, or ``Π mu_i`` for ``frobenius``), ``evals`` (majorant evaluations). Flags:
    ``"stationary"`` (``β = 0``, then ``τ = 0``), ``"interval-end"`` (the minimiser is ``0`` or ``π``),
    ``"not-unimodal"``.
    """

    def __init__(self, variant: str = "spectral", rtol: float = RTOL, atol: float = ATOL,
                 first_step: float | None = None):
        self.variant = check_choice("majorant variant", variant, tuple(VARIANTS))
        self.rtol = finite_float("rtol", rtol, positive=True)
        self.atol = finite_float("atol", atol, nonnegative=True)
        self.first_step = None if first_step is None else finite_float("first_step", first_step, positive=True)
        self.name = NAMES[variant]

    uses_adjoints = False                        # the training loop need not keep the backward's adjoints

    def majorant(self, it: Iterate, Q: float | None = None):
        """The majorant this rule minimises at ``it``.

        Parameters
        ----------
        it : steps.Iterate
        Q : float, optional
            Default ``1/N Σ ||x_n||²`` of ``it.X``.

        Returns
        -------
        majorant.Majorant
        """
        Q = input_energy(it.X) if Q is None else Q
        return _build(self.variant, it.weights, it.direction, it.radii, Q)

    def __call__(self, it: Iterate) -> Step:
        Q = input_energy(it.X)
        if it.direction.beta == 0:
            return _stationary(it, {"alpha": it.direction.alpha, "Q": Q, "lipschitz_product": math.nan, "evals": 0})
        m = self.majorant(it, Q)
        tau, m_tau, evals, at_end, restarted = minimise(m, self.rtol, self.atol, self.first_step)
        flags = (("not-unimodal",) if restarted else ()) + (("interval-end",) if at_end else ())
        return Step(tau, predicted=m_tau, flags=flags,
                    info={"alpha": it.direction.alpha, "Q": Q, "lipschitz_product": m.lipschitz_product, "evals": evals})

    def __repr__(self) -> str:
        return (f"MajorantStep(variant={self.variant!r}, rtol={self.rtol!r}, atol={self.atol!r}, "
                f"first_step={self.first_step!r})")


class ClosedFormStep:
    """The AGD-like closed form ``τ = (1/L) log((1 + sqrt(1 + 4β/(P² Q L)))/2)``, ``P = Π_i mu_i`` (method.md §5).

    Notes
    -----
    ``τ`` minimises ``h(t) = -β t + Q/2 (P (e^{Lt} - 1))²`` (:func:`spherenet.majorant.closed_form_model`),
    which is ``Step.predicted``. No search (``evals = 0``); ``β = 0`` gives ``τ = 0`` and ``"stationary"``.
    """
    name = "mm-closed"
    uses_adjoints = False

    def __call__(self, it: Iterate) -> Step:
        Q, P, L, beta = input_energy(it.X), float(np.prod(it.radii)), len(it.weights), it.direction.beta
        info = {"alpha": it.direction.alpha, "Q": Q, "lipschitz_product": P, "evals": 0}
        if beta == 0:
            return _stationary(it, info)
        tau = _closed_form_tau(beta, P, Q, L)
        return Step(tau, predicted=float(closed_form_model(tau, beta, P, Q, L)), info=info)

    def __repr__(self) -> str:
        return "ClosedFormStep()"
