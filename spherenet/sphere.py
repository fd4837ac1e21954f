"""Geometry of the Frobenius sphere ``S(mu) = {W : ||W||_F = mu}`` (docs/method.md §3).

Every function works on one matrix; a network lives on the product of one sphere per layer, and the
product's operations are these applied layer by layer. Inner product ``<A, B> = tr(A^T B)``.
"""
from __future__ import annotations

import math

import numpy as np


def inner(A: np.ndarray, B: np.ndarray) -> float:
    """Frobenius inner product ``<A, B> = tr(A^T B) = sum_ij A_ij B_ij`` (docs/method.md §3).

    Parameters
    ----------
    A, B : ndarray
        Arrays of one shape (any float dtype).

    Returns
    -------
    float
        ``<A, B>``, accumulated in float64.

    Examples
    --------
    >>> inner(np.eye(2), np.ones((2, 2)))
    2.0
    """
    return float(np.vdot(np.asarray(A, dtype=np.float64), np.asarray(B, dtype=np.float64)))


def fro(A: np.ndarray) -> float:
    """Frobenius norm ``||A||_F = sqrt(<A, A>)``.

    Parameters
    ----------
    A : ndarray

    Returns
    -------
    float
        ``||A||_F``, accumulated in float64.

    Examples
    --------
    >>> fro(np.array([[3.0, 4.0]]))
    5.0
    """
    return float(np.sqrt(inner(A, A)))


def project(W: np.ndarray, mu: float) -> np.ndarray:
    """Nearest point of the sphere ``S(mu)``: ``mu W / ||W||_F``.

    Parameters
    ----------
    W : ndarray
        A non-zero, finite matrix (else ``ValueError``).
    mu : float
        The radius.

    Returns
    -------
    ndarray
        ``mu W / ||W||_F``.

    Examples
    --------
    >>> project(np.array([[3.0, 4.0]]), 10.0)
    array([[6., 8.]])
    """
    norm = fro(W)
    if not norm > 0:
        raise ValueError("cannot project a zero (or non-finite) matrix onto a sphere")
    return W * (mu / norm)


def project_tangent(W: np.ndarray, Z: np.ndarray, mu: float) -> np.ndarray:
    """Tangent projection at ``W``: ``Proj_W(Z) = Z - <W, Z>/mu^2 W``, so ``<W, Proj_W(Z)> = 0``.

    Parameters
    ----------
    W : ndarray
        The point, ``||W||_F = mu``.
    Z : ndarray
        Any matrix of ``W``'s shape.
    mu : float
        The radius.

    Returns
    -------
    ndarray
        ``Proj_W(Z)``.

    Notes
    -----
    docs/method.md §3. Computed with ``<W, W>`` in place of ``mu^2`` (equal on the sphere): once rounding has moved
    ``||W||`` by ``δ``, dividing by ``mu^2`` would leave a radial part ``~δ <W, Z>`` that the updates then amplify.
    Applied twice ("twice is enough"): when ``Z`` is nearly parallel to ``W``, one pass leaves ``<W, T>`` at
    ``eps ||Z||``, large relative to ``||T||``.

    Examples
    --------
    >>> project_tangent(np.array([[1.0, 0.0]]), np.array([[2.0, 3.0]]), 1.0)
    array([[0., 3.]])
    """
    ww = inner(W, W)
    T = Z - (inner(W, Z) / ww) * W
    # Second pass ("twice is enough"): when Z is nearly parallel to W, one pass leaves <W, T> at
    # eps ||Z||, large relative to ||T||; normalising T would then carry it off the tangent space.
    return T - (inner(W, T) / ww) * W


def rgrad(W: np.ndarray, G: np.ndarray, mu: float) -> np.ndarray:
    """Riemannian gradient from the Euclidean one: ``grad = Proj_W(G)`` (docs/method.md §3).

    Parameters
    ----------
    W : ndarray
        The point, ``||W||_F = mu``.
    G : ndarray
        The Euclidean gradient ``∇_W J``, same shape.
    mu : float
        The radius.

    Returns
    -------
    ndarray
        ``Proj_W(G)`` (:func:`project_tangent`).
    """
    return project_tangent(W, G, mu)


def rgrad_norm(W: np.ndarray, G: np.ndarray, mu: float) -> float:
    """``||grad||_F`` without forming ``grad = Proj_W(G)``.

    Parameters
    ----------
    W : ndarray
        The point; valid for ``||W||_F = mu``.
    G : ndarray
        The Euclidean gradient, same shape.
    mu : float
        The radius.

    Returns
    -------
    float
        ``||grad||_F``.

    Notes
    -----
    ``mu ||grad|| = sqrt(max(mu^2 ||G||^2 - <W, G>^2, 0))`` (docs/method.md §3); the clip at 0 removes the
    rounding of a cancellation near a stationary point.

    Examples
    --------
    >>> rgrad_norm(np.array([[1.0, 0.0]]), np.array([[2.0, 3.0]]), 1.0)
    3.0
    """
    return float(np.sqrt(max(mu**2 * inner(G, G) - inner(W, G) ** 2, 0.0))) / mu


def curve(W: np.ndarray, V: np.ndarray, mu: float, t: float, rate: float = 1.0) -> np.ndarray:
    """The update curve ``Gamma(t) = W cos(a t) + mu V sin(a t)`` for a unit tangent ``V`` and a rate ``a``.

    The one function that moves weights along a sphere: Algorithm 1 and 2 use ``a = 1`` (docs/method.md §3),
    the geodesic rules of ``spherenet.beyond`` one rate per layer (§7).

    Parameters
    ----------
    W : ndarray
        The point at ``t = 0``, ``||W||_F = mu``.
    V : ndarray
        A unit tangent at ``W`` (``||V||_F = 1``, ``<W, V> = 0``), same shape as ``W``.
    mu : float
        The sphere's radius.
    t : float
        The curve parameter.
    rate : float, optional
        ``a``: the layer turns by the angle ``a t`` (default 1).

    Returns
    -------
    ndarray
        ``Gamma(t)``, a new array in ``W``'s dtype.

    Notes
    -----
    It is the geodesic through ``W`` with initial velocity ``a mu V``, so ``||Gamma(t)||_F = mu`` for every
    ``t`` and ``dist(W, Gamma(t)) = mu a t`` for ``0 <= a t <= pi``. It is computed in increment form,
    ``W + ((cos s - 1) W + mu sin s V)`` with ``s = a t`` and ``cos s - 1 = -2 sin²(s/2)``: the rounding error
    scales with the (small) increment, not with ``W``, so norms drift ~``s`` eps per step instead of ~eps.

    Examples
    --------
    >>> W, V = np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]])
    >>> curve(W, V, 1.0, np.pi / 2).round(12)       # a quarter turn (to rounding)
    array([[0., 1.]])
    >>> curve(W, V, 1.0, np.pi / 2, rate=0.5).round(6)
    array([[0.707107, 0.707107]])
    """
    angle = rate * t
    # Python floats (not NumPy scalars) keep a float32 W in float32.
    return W + ((-2.0 * math.sin(angle / 2) ** 2) * W + (float(mu) * math.sin(angle)) * V)


def layer_rates(directions) -> np.ndarray:
    """The zero-layer rule: the curve's rate per layer, 1 for a non-zero direction, 0 for a zero one.

    Parameters
    ----------
    directions : list of ndarray
        ``V_i`` per layer.

    Returns
    -------
    ndarray, shape (L,)
        ``a_i``: 1.0, or 0.0 for a layer whose direction is zero.

    Notes
    -----
    A layer with rate 0 stays where it is (``Gamma_i(t) = W_i``, not ``W_i cos t``, which would leave its
    sphere; docs/method.md §3). ``network.direction`` sets a layer's direction to exactly zero when its Riemannian
    gradient is rounding noise, ``||grad_i||_F <= 64 eps ||∇_i J||_F``: the one threshold.

    Examples
    --------
    >>> layer_rates([np.zeros((2, 2)), np.eye(2)])
    array([0., 1.])
    """
    return np.array([1.0 if np.any(D) else 0.0 for D in directions])


def curve_layers(weights: list, directions: list, radii, t: float, rates) -> list:
    """``[Gamma_i(t)]`` for every layer: :func:`curve` with layer ``i``'s rate ``a_i``.

    Parameters
    ----------
    weights, directions : list of ndarray
        ``W_i`` and unit tangents ``V_i``.
    radii : array_like
        ``mu_i``.
    t : float
        The shared curve parameter.
    rates : array_like
        ``a_i``; a layer with ``a_i = 0`` (the zero-layer rule, ``network.Direction.moving``) stays.

    Returns
    -------
    list of ndarray
        ``Gamma_i(t)``, or ``W_i`` itself (not a copy) for a layer that stays.
    """
    return [curve(W, V, mu, t, a) if a > 0 else W for W, V, mu, a in zip(weights, directions, radii, rates)]


def exp_map(W: np.ndarray, xi: np.ndarray, mu: float) -> np.ndarray:
    """Exponential map ``Exp_W(xi) = cos(||xi||/mu) W + mu sin(||xi||/mu) xi/||xi||`` (docs/method.md §3).

    Parameters
    ----------
    W : ndarray
        The point, ``||W||_F = mu``.
    xi : ndarray
        A tangent at ``W``; ``xi = 0`` returns ``W`` (written with ``np.sinc``, no special case).
    mu : float
        The radius.

    Returns
    -------
    ndarray
        ``Exp_W(xi)``.

    Examples
    --------
    >>> exp_map(np.array([[1.0, 0.0]]), np.array([[0.0, np.pi]]), 1.0).round(12)
    array([[-1.,  0.]])
    """
    theta = fro(xi) / mu
    # mu sin(theta)/||xi|| = sin(theta)/theta, written with np.sinc so xi = 0 needs no special case.
    return math.cos(theta) * W + float(np.sinc(theta / np.pi)) * xi


def retract(W: np.ndarray, xi: np.ndarray, mu: float) -> np.ndarray:
    """Projective retraction ``R_W(xi) = mu (W + xi)/||W + xi||_F`` (docs/method.md §3, for comparison).

    Parameters
    ----------
    W : ndarray
        The point, ``||W||_F = mu``.
    xi : ndarray
        A tangent at ``W``.
    mu : float
        The radius.

    Returns
    -------
    ndarray
        ``R_W(xi)``; it agrees with :func:`exp_map` to second order.
    """
    return project(W + xi, mu)


def dist(W1: np.ndarray, W2: np.ndarray, mu: float) -> float:
    """Geodesic distance on ``S(mu)``: ``mu arccos(<W1, W2>/mu^2)`` (docs/method.md §3).

    Parameters
    ----------
    W1, W2 : ndarray
        Two points of ``S(mu)``.
    mu : float
        The radius.

    Returns
    -------
    float
        The distance, in ``[0, mu pi]``.

    Notes
    -----
    Computed as ``2 mu atan2(||W1 - W2||, ||W1 + W2||)``: the same angle, but accurate to rounding near 0 and
    pi, where arccos of a rounded cosine loses half the digits.

    Examples
    --------
    >>> dist(np.array([[1.0, 0.0]]), np.array([[0.0, 1.0]]), 1.0) == np.pi / 2
    True
    """
    return float(2 * mu * np.arctan2(fro(W1 - W2), fro(W1 + W2)))


def transport(W_new: np.ndarray, xi: np.ndarray, mu: float) -> np.ndarray:
    """Vector transport by projection: carry the tangent ``xi`` to the tangent space at ``W_new``.

    Parameters
    ----------
    W_new : ndarray
        The new point, ``||W_new||_F = mu``.
    xi : ndarray
        A tangent at the previous point.
    mu : float
        The radius.

    Returns
    -------
    ndarray
        ``Proj_{W_new}(xi)`` (:func:`project_tangent`).
    """
    return project_tangent(W_new, xi, mu)


def check_point(W: np.ndarray, mu: float, rtol: float = 1e-10) -> str | None:
    """Whether ``W`` lies on ``S(mu)``.

    Parameters
    ----------
    W : array_like
    mu : float
        The radius.
    rtol : float, optional
        Allowed relative error of ``||W||_F`` (default 1e-10).

    Returns
    -------
    str or None
        ``None`` if ``W`` is finite and ``| ||W||_F - mu | <= rtol mu``, else the reason in words.

    Examples
    --------
    >>> check_point(np.array([[0.6, 0.8]]), 1.0) is None
    True
    """
    W = np.asarray(W)
    if not np.isfinite(W).all():
        return "the matrix has non-finite entries"
    norm = fro(W)
    if abs(norm - mu) > rtol * mu:
        return f"||W||_F = {norm!r} differs from the radius {mu!r} by {abs(norm - mu) / mu:.3g} (relative)"
    return None


def check_tangent(W: np.ndarray, xi: np.ndarray, mu: float, rtol: float = 1e-10) -> str | None:
    """Whether ``xi`` is tangent at ``W``.

    Parameters
    ----------
    W, xi : array_like
        The point and the candidate tangent.
    mu : float
        The radius.
    rtol : float, optional
        Allowed ``|<W, xi>| / (mu ||xi||)`` (default 1e-10).

    Returns
    -------
    str or None
        ``None`` if the shapes agree, ``xi`` is finite and ``<W, xi> = 0`` within ``rtol``, else the reason.
    """
    W, xi = np.asarray(W), np.asarray(xi)
    if W.shape != xi.shape:
        return f"shapes differ: W {W.shape} vs xi {xi.shape}"
    if not np.isfinite(xi).all():
        return "the tangent vector has non-finite entries"
    cos = inner(W, xi) / max(mu * fro(xi), np.finfo(float).tiny)
    if abs(cos) > rtol:
        return f"<W, xi> / (mu ||xi||) = {cos:.3g}: xi is not orthogonal to W"
    return None
