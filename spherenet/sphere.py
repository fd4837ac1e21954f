"""Geometry of the Frobenius sphere ``S(mu) = {W : ||W||_F = mu}`` (METHOD.md §3).

Every function works on one matrix; a network lives on the product of one sphere per layer, and the
product's operations are these applied layer by layer. Inner product ``<A, B> = tr(A^T B)``.
"""
from __future__ import annotations

import math

import numpy as np


def inner(A: np.ndarray, B: np.ndarray) -> float:
    """Frobenius inner product ``<A, B> = tr(A^T B) = sum_ij A_ij B_ij`` (accumulated in float64)."""
    return float(np.vdot(np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)))


def fro(A: np.ndarray) -> float:
    """Frobenius norm ``||A||_F``."""
    return float(np.sqrt(inner(A, A)))


def project(W: np.ndarray, mu: float) -> np.ndarray:
    """Nearest point of the sphere: ``mu W / ||W||_F``. ``W`` must be non-zero."""
    norm = fro(W)
    if not norm > 0:
        raise ValueError("cannot project a zero (or non-finite) matrix onto a sphere")
    return W * (mu / norm)


def project_tangent(W: np.ndarray, Z: np.ndarray, mu: float) -> np.ndarray:
    """Tangent projection at ``W``: ``Proj_W(Z) = Z - <W, Z>/mu^2 W``, so ``<W, Proj_W(Z)> = 0``.

    Computed with ``<W, W>`` in place of ``mu^2`` (equal on the sphere): once rounding has moved ``||W||`` by
    ``δ``, dividing by ``mu^2`` would leave a radial part ``~δ <W, Z>`` that the updates then amplify.
    """
    ww = inner(W, W)
    T = Z - (inner(W, Z) / ww) * W
    # Second pass ("twice is enough"): when Z is nearly parallel to W, one pass leaves <W, T> at
    # eps ||Z||, large relative to ||T||; normalising T would then carry it off the tangent space.
    return T - (inner(W, T) / ww) * W


def rgrad(W: np.ndarray, G: np.ndarray, mu: float) -> np.ndarray:
    """Riemannian gradient from the Euclidean one: ``grad = Proj_W(G)``."""
    return project_tangent(W, G, mu)


def rgrad_norm(W: np.ndarray, G: np.ndarray, mu: float) -> float:
    """``||grad||_F`` without forming it: ``mu ||grad|| = sqrt(max(mu^2 ||G||^2 - <W, G>^2, 0))``.

    Valid for ``||W||_F = mu``; the clip at 0 removes the rounding of a cancellation near a stationary point.
    """
    return float(np.sqrt(max(mu**2 * inner(G, G) - inner(W, G) ** 2, 0.0))) / mu


def curve(W: np.ndarray, V: np.ndarray, mu: float, t: float) -> np.ndarray:
    """The update curve ``Gamma(t) = W cos t + mu V sin t`` for a unit tangent ``V`` (``||V||_F = 1``).

    It is the geodesic through ``W`` with initial velocity ``mu V``; ``t`` is the rotation angle, so
    ``||Gamma(t)||_F = mu`` for every ``t`` and ``dist(W, Gamma(t)) = mu t`` for ``0 <= t <= pi``.
    """
    # Increment form W + ((cos t - 1) W + mu sin t V), with cos t - 1 = -2 sin²(t/2): its rounding error
    # scales with the (small) increment, not with W, so norms drift ~t eps per step instead of ~eps.
    # Python floats (not NumPy scalars) keep a float32 W in float32.
    return W + ((-2.0 * math.sin(t / 2) ** 2) * W + (float(mu) * math.sin(t)) * V)


def exp_map(W: np.ndarray, xi: np.ndarray, mu: float) -> np.ndarray:
    """Exponential map ``Exp_W(xi) = cos(||xi||/mu) W + mu sin(||xi||/mu) xi/||xi||`` for a tangent ``xi``."""
    theta = fro(xi) / mu
    # mu sin(theta)/||xi|| = sin(theta)/theta, written with np.sinc so xi = 0 needs no special case.
    return math.cos(theta) * W + float(np.sinc(theta / np.pi)) * xi


def retract(W: np.ndarray, xi: np.ndarray, mu: float) -> np.ndarray:
    """Projective retraction ``R_W(xi) = mu (W + xi)/||W + xi||_F``; agrees with ``exp_map`` to 2nd order."""
    return project(W + xi, mu)


def dist(W1: np.ndarray, W2: np.ndarray, mu: float) -> float:
    """Geodesic distance on ``S(mu)``: ``mu arccos(<W1, W2>/mu^2)``, computed as
    ``2 mu atan2(||W1 - W2||, ||W1 + W2||)`` — the same angle, but accurate to rounding near 0 and pi, where
    arccos of a rounded cosine loses half the digits."""
    return float(2 * mu * np.arctan2(fro(W1 - W2), fro(W1 + W2)))


def transport(W_new: np.ndarray, xi: np.ndarray, mu: float) -> np.ndarray:
    """Vector transport by projection: carry the tangent ``xi`` to the tangent space at ``W_new``."""
    return project_tangent(W_new, xi, mu)


def check_point(W: np.ndarray, mu: float, rtol: float = 1e-10) -> str | None:
    """Return ``None`` if ``W`` lies on ``S(mu)`` within ``rtol``, else the reason in words."""
    W = np.asarray(W)
    if not np.isfinite(W).all():
        return "the matrix has non-finite entries"
    norm = fro(W)
    if abs(norm - mu) > rtol * mu:
        return f"||W||_F = {norm!r} differs from the radius {mu!r} by {abs(norm - mu) / mu:.3g} (relative)"
    return None


def check_tangent(W: np.ndarray, xi: np.ndarray, mu: float, rtol: float = 1e-10) -> str | None:
    """Return ``None`` if ``xi`` is tangent at ``W`` (``<W, xi> = 0`` within ``rtol``), else the reason."""
    W, xi = np.asarray(W), np.asarray(xi)
    if W.shape != xi.shape:
        return f"shapes differ: W {W.shape} vs xi {xi.shape}"
    if not np.isfinite(xi).all():
        return "the tangent vector has non-finite entries"
    cos = inner(W, xi) / max(mu * fro(xi), np.finfo(float).tiny)
    if abs(cos) > rtol:
        return f"<W, xi> / (mu ||xi||) = {cos:.3g}: xi is not orthogonal to W"
    return None
