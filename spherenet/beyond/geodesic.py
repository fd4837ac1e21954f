"""The update curve with one angle *per layer*, and the Taylor jet of the loss along it.

Algorithm 1 turns every layer by the same angle ``t``. For any tangent direction ``D = (D_1..D_L)``
(``<W_i, D_i> = 0``) the geodesic ``Exp_W(t D / s)`` is, layer by layer,

    Γ_i(t) = W_i cos(a_i t) + mu_i U_i sin(a_i t),   U_i = D_i/||D_i||_F,   a_i = ||D_i||_F / (mu_i s)

with ``s = max_i ||D_i||_F/mu_i`` so the fastest layer turns by exactly ``t`` (``a_i <= 1``): ``eps`` keeps its
meaning as the largest angle any layer turns. Every ``Γ_i(t)`` stays on its sphere of radius ``mu_i``
(``cos² + sin² = 1``, ``||U_i|| = 1``, ``<W_i, U_i> = 0``), so ``prod mu_i`` still bounds the Lipschitz constant.
With ``a_i = 1`` and ``U_i = V_i`` (the paper's direction) this is the paper's curve exactly.

The jet of ``cos(a t)`` is ``cos_k a^k``: pushing these per-layer coefficients through ``jets.CurveJet``
gives ``J_0..J_r`` of ``φ(t) = J(Γ(t))``, with ``J_1 = <grad J, D>/s`` (``grad`` the Riemannian gradient).
"""
from __future__ import annotations

import numpy as np

from .. import sphere
from ..jets import CurveJet, rate_coefficients
from ..network import _forward_cache, _loss_from_output


class Geodesic:
    """The curve ``Γ_i(t) = W_i cos(a_i t) + mu_i U_i sin(a_i t)`` through ``weights`` along tangents ``D`` (§7).

    Parameters
    ----------
    weights : list of ndarray
        ``W_i: (d_i, d_{i-1})`` on the spheres ``radii``.
    D : list of ndarray
        A tangent at each ``W_i`` (any norm, zero allowed for a layer that should not move; finite, at least one
        non-zero).
    radii : array_like

    Attributes
    ----------
    U : list of ndarray
        Unit tangents ``D_i/||D_i||_F`` (0 for a zero layer), in the weights' dtype.
    rates : ndarray
        ``a_i = ||D_i||_F/(mu_i s)`` in ``[0, 1]``, max 1.
    speed : float
        ``s = max_i ||D_i||_F/mu_i``, so ``Γ'(0) = D/s``.
    """

    def __init__(self, weights, D, radii):
        norms = np.array([sphere.fro(Di) for Di in D])
        radii = np.asarray(radii, dtype=float)
        if not np.all(np.isfinite(norms)) or not norms.max() > 0:
            raise ValueError("D must be finite with at least one non-zero layer")
        self.weights, self.radii = weights, radii
        self.speed = float(np.max(norms / radii))
        self.rates = norms / radii / self.speed
        dtype = weights[0].dtype
        self.U = [(Di / n).astype(dtype, copy=False) if n > 0 else np.zeros_like(W)
                  for Di, n, W in zip(D, norms, weights)]

    def point(self, t: float) -> list:
        """``[Γ_i(t)]``: every layer on its sphere.

        Parameters
        ----------
        t : float

        Returns
        -------
        list of ndarray
            In increment form (``sphere.curve``): the rounding error scales with the step, so norms drift ~``t`` eps
            per step, not ~eps.
        """
        return sphere.curve_layers(self.weights, self.U, self.radii, t, self.rates)

    def loss(self, X, Y, t: float):
        """``φ(t) = J(Γ(t))`` on ``(X, Y)``.

        Parameters
        ----------
        X, Y : ndarray
        t : float

        Returns
        -------
        tuple
            ``(φ(t), weights, cache)``.
        """
        weights = self.point(t)
        cache = _forward_cache(weights, X)
        return _loss_from_output(cache.F, Y), weights, cache

    def loss_jet(self, cache, X, Y, order: int) -> np.ndarray:
        """``J_0..J_order`` of ``φ(t) = J(Γ(t))`` (docs/method.md §6–7).

        Parameters
        ----------
        cache : network.ForwardCache
            The forward pass at ``weights`` on ``X``.
        X, Y : ndarray
        order : int

        Returns
        -------
        ndarray, shape (order+1,)

        Notes
        -----
        Per layer the curve coefficients are ``cos_k a_i^k`` and ``sin_k a_i^k`` (the jet of ``cos(a_i t)``,
        ``sin(a_i t)``); otherwise exactly ``jets.loss_jet_from`` (blocks of samples, ReLU pattern frozen at ``t = 0``,
        loss Cauchy sums in float64, parts of the rows on ``spherenet.rows``).
        """
        coeffs = [rate_coefficients(a, order, X.dtype) for a in self.rates]
        return CurveJet(self.weights, self.U, self.radii, X, coeffs).loss(cache, Y)
