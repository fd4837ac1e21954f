"""Majorants of the loss change along the update curve (docs/method.md §5) and the 1-D search Algorithm 2 uses.

Along ``Γ_i(t) = W_i cos t + mu_i V_i sin t`` the loss change ``φ(t) - φ(0)`` is bounded, under Assumption 1,
by a majorant of the form

    m(t) = α (cos t - 1) - β sin t + penalty(t)        α = Σ_i <W_i, g_i>,  β = Σ_i mu_i ||grad_i||_F

(``g_i = ∇_{W_i} J``). The variants differ only in the penalty ``Q/2 B(t)²``, where ``B(t)`` bounds
``||Δf(x)||/||x||`` layer by layer, so that ``1/(2N) Σ_n ||Δf(x_n)||² <= Q/2 B(t)²``:

* ``spectral`` (the paper): ``Q/2 (P_1(t) - P_2)²``, ``P_1(t) = Π_i (||W_i||_2 + ||ΔW_i(t)||_2)``,
  ``P_2 = Π_i ||W_i||_2``, ``ΔW_i(t) = Γ_i(t) - W_i``;
* ``frobenius``: ``Q/2 (P ((1 + 2 sin(t/2))^L - 1))²`` with ``P = Π_i mu_i``;
* ``telescoping``: ``Q/2 (Σ_i [Π_{j>i} ||Γ_j(t)||_2] ||ΔW_i(t)||_2 [Π_{j<i} ||W_j||_2])²``.

Since ``P_1 - P_2 = Σ_i [Π_{j<i} ||W_j||_2] ||ΔW_i||_2 [Π_{j>i}(||W_j||_2 + ||ΔW_j||_2)]`` exactly and
``||Γ_j||_2 <= ||W_j||_2 + ||ΔW_j||_2 <= mu_j (1 + 2 sin(t/2))``, the penalties are ordered
telescoping <= spectral <= frobenius for every ``t``. Because Assumption 1 replaces the functional first-order
term by the parameter one, none of them is guaranteed to bound ``φ(t) - φ(0)``; :func:`validity` measures it.

Builders (``spectral``, ``frobenius``, ``telescoping``; ``closed_form_step``) take ``(weights, grads, radii, X)``
and validate it; the step rules of ``spherenet.mm`` call the unchecked ``_build``.
"""
from __future__ import annotations

import math

import numpy as np

from . import kernels, sphere
from ._checks import as_float_matrix, check_data, check_radii, check_weights, finite_float
from .network import Direction, _direction, _forward_cache, _loss_from_output

RTOL = 3.45e-4                        # the authors' tolerance: sqrt(eps(Float32)), Optim.jl's default
ATOL = float(np.finfo(np.float32).eps)  # ≈ 1.19e-7, Optim.jl's default absolute tolerance in Float32
GOLDEN = (3.0 - math.sqrt(5.0)) / 2.0  # ≈ 0.381966, the golden-section fraction


# --- exact spectral norms of the two-matrix family a W + b U -----------------------------------------------

class SpectralPencils:
    """Exact ``||a W_i + b U_i||_2`` for every layer ``i`` and many coefficient pairs ``(a, b)`` (docs/method.md §5).

    Parameters
    ----------
    weights, U : list of ndarray
        ``W_i, U_i: (d_i, d_{i-1})``.

    Attributes
    ----------
    A, B, C : ndarray, shape (L, k, k)
        ``W W^T``, ``W U^T + U W^T``, ``U U^T`` on each layer's short side, zero-padded to the largest ``k``.
    sizes : ndarray of int64
        ``k_i = min(d_i, d_{i-1})``.

    Notes
    -----
    On the short side (``M M^T`` if ``d_i <= d_{i-1}``, else ``M^T M``) the Gram matrix of ``M = aW + bU`` is a
    quadratic in ``(a, b)``:

        ||a W + b U||_2² = λ_max(a² A + ab B + b² C)    (k × k)

    ``A, B, C`` are formed once per iteration; every ``(a, b)`` then costs one ``eigvalsh`` of each ``k_i × k_i``
    matrix instead of an SVD, all layers in one compiled call (``kernels.lambda_max``, beside its NumPy reference
    ``kernels.lambda_max_reference``). ``λ_max`` of a PSD matrix is computed to a few ``eps`` relative to
    ``||Gram||_2``; when ``<W, U> = 0`` (the update curve) ``||Gram||_2 >= (a²||W||_F² + b²||U||_F²)/k``, so the
    norm is accurate to about ``k eps`` relative (tested against ``np.linalg.norm(aW + bU, 2)``).
    """

    def __init__(self, weights, U):
        short = [(W, V) if W.shape[0] <= W.shape[1] else (W.T, V.T) for W, V in zip(weights, U)]
        self.sizes = np.array([W.shape[0] for W, _ in short], dtype=np.int64)
        k, L = int(self.sizes.max()), len(short)
        self.A, self.B, self.C = (np.zeros((L, k, k)) for _ in range(3))
        for i, (W, V) in enumerate(short):
            n = W.shape[0]
            self.A[i, :n, :n] = W @ W.T
            cross = W @ V.T
            self.B[i, :n, :n] = cross + cross.T
            self.C[i, :n, :n] = V @ V.T

    def norms(self, a, b) -> np.ndarray:
        """``||a_n W_i + b_n U_i||_2`` for every pair and layer.

        Parameters
        ----------
        a, b : array_like, shape (n,)
            Coefficients (scalars accepted).

        Returns
        -------
        ndarray, shape (n, L)

        Notes
        -----
        Computed as ``s ||(a/s)W + (b/s)U||``, ``s = max(|a|, |b|)``, so ``a², b²`` cannot underflow (``t ~ 1e-160``);
        ``a = b = 0`` gives 0, and a rounded ``λ_max = -tiny`` is clipped to 0.
        """
        a, b = np.atleast_1d(np.asarray(a, dtype=float)), np.atleast_1d(np.asarray(b, dtype=float))
        out = np.empty((a.size, self.sizes.size))
        for row, an, bn in zip(out, a, b):
            # ||aW + bU|| = s ||(a/s)W + (b/s)U||, s = max(|a|, |b|): a², b² cannot underflow (t ~ 1e-160).
            s = max(abs(an), abs(bn))
            if s == 0:
                row[:] = 0.0
                continue
            kernels.lambda_max(self.A, self.B, self.C, self.sizes, an / s, bn / s, row)
            # rounding can leave λ_max = -tiny for a zero matrix
            np.multiply(np.sqrt(np.maximum(row, 0.0, out=row), out=row), s, out=row)
        return out


def spectral_norms_svd(weights, U, a, b) -> np.ndarray:
    """Reference for :meth:`SpectralPencils.norms`: each ``||a_n W_i + b_n U_i||_2`` by a full SVD (slow; for tests).

    Parameters
    ----------
    weights, U : list of ndarray
    a, b : array_like, shape (n,)

    Returns
    -------
    ndarray, shape (n, L)
    """
    return np.array([[np.linalg.norm(an * W + bn * Ui, 2) for W, Ui in zip(weights, U)]
                     for an, bn in zip(np.atleast_1d(a), np.atleast_1d(b))])


# --- the majorants -------------------------------------------------------------------------------------------

def _telescoped(left: np.ndarray, mid: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``Σ_i [Π_{j<i} left_j] mid_i [Π_{j>i} right_j]`` along the last axis (arrays ``(n, L)``)."""
    ones = np.ones_like(left[:, :1])
    before = np.cumprod(np.concatenate([ones, left[:, :-1]], axis=1), axis=1)
    after = np.cumprod(np.concatenate([ones, right[:, :0:-1]], axis=1), axis=1)[:, ::-1]
    return np.sum(before * mid * after, axis=1)


class Majorant:
    """``m(t) = α(cos t - 1) - β sin t + penalty(t)`` (docs/method.md §5); callable on a scalar (-> float) or an
    array of ``t`` (-> array of its shape).

    The fast form of :func:`plain_majorant` (tested against it).

    Parameters
    ----------
    weights : list of ndarray
        ``W_i`` on their spheres.
    direction : network.Direction
        ``V_i``, ``beta``, ``alpha`` at ``weights``.
    radii : array_like
        ``mu_i``.
    Q : float
        ``1/N Σ ||x_n||²`` (:func:`input_energy`).

    Attributes
    ----------
    alpha, beta, Q, L : float
        ``alpha`` over the moving layers only (``Direction.alpha_moving``: a layer with ``V_i = 0`` stays,
        ``Γ_i(t) = W_i``), ``beta``, ``Q`` and the depth.
    U : list of ndarray
        ``U_i = mu_i V_i``.
    lipschitz_product : float
        The product of norms the penalty starts from (``Π ||W_i||_2``, or ``Π mu_i`` for ``frobenius``).
    """
    variant = ""

    def __init__(self, weights: list, direction: Direction, radii, Q: float):
        self.weights, self.direction = weights, direction
        self.radii = np.asarray(radii, dtype=float)
        # Only moving layers enter the first-order term: a layer with V_i = 0 stays, Γ_i(t) = W_i.
        self.alpha, self.beta, self.Q, self.L = direction.alpha_moving, direction.beta, float(Q), len(weights)
        self.U = [mu * V for mu, V in zip(self.radii, direction.V)]     # U_i = mu_i V_i
        self.fixed = ~direction.moving

    def linear(self, t):
        """Assumption 1's first-order term ``α(cos t - 1) - β sin t``.

        Parameters
        ----------
        t : float or array_like

        Returns
        -------
        ndarray
            Computed with ``cos t - 1 = -2 sin²(t/2)`` (no cancellation at small ``t``).
        """
        t = np.asarray(t, dtype=float)
        return -2.0 * self.alpha * np.sin(t / 2) ** 2 - self.beta * np.sin(t)

    def penalty(self, t):
        """The variant's ``Q/2 B(t)²`` (defined by each subclass).

        Parameters
        ----------
        t : array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)
        """
        raise NotImplementedError

    def __call__(self, t):
        try:
            t_arr = np.asarray(t, dtype=float)
        except (TypeError, ValueError):
            raise TypeError(f"t must be a number or an array of numbers, got {t!r}") from None
        if not np.isfinite(t_arr).all():
            raise ValueError(f"t must be finite, got {t!r}")
        flat = t_arr.reshape(-1)
        values = self.linear(flat) + self.penalty(flat)
        return float(values[0]) if t_arr.ndim == 0 else values.reshape(t_arr.shape)

    def curve(self, t: float) -> list:
        """The weights the majorant is about: ``[Γ_i(t)] = [W_i cos t + U_i sin t]`` (``sphere.curve_layers``).

        Parameters
        ----------
        t : float

        Returns
        -------
        list of ndarray
            ``W_i`` itself for a layer that stays.
        """
        return sphere.curve_layers(self.weights, self.direction.V, self.radii, t, self.direction.rates)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(alpha={self.alpha:.6g}, beta={self.beta:.6g}, Q={self.Q:.6g}, L={self.L})"


class SpectralMajorant(Majorant):
    """The paper's ``m(t) = α(cos t - 1) - β sin t + Q/2 (P_1(t) - P_2)²``, spectral norms per ``t`` (method.md §5).

    The fast form of :func:`plain_spectral`. Parameters and attributes as :class:`Majorant`, and

    Attributes
    ----------
    pencils : SpectralPencils
        For ``||a W_i + b U_i||_2``.
    norms_W : ndarray, shape (L,)
        ``||W_i||_2``.
    P2 : float
        ``P_2 = Π ||W_i||_2`` (also ``lipschitz_product``).
    """
    variant = "spectral"

    def __init__(self, weights, direction, radii, Q):
        super().__init__(weights, direction, radii, Q)
        self.pencils = SpectralPencils(weights, self.U)
        self.norms_W = self.pencils.norms(1.0, 0.0)[0]          # ||W_i||_2
        self.P2 = self.lipschitz_product = float(np.prod(self.norms_W))     # the paper's P_2 = Π ||W_i||_2

    def layer_norms(self, a, b) -> np.ndarray:
        """``||a_n W_i + b_n U_i||_2`` (:meth:`SpectralPencils.norms`).

        Parameters
        ----------
        a, b : array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n, L)
        """
        return self.pencils.norms(a, b)

    def delta_norms(self, t) -> np.ndarray:
        """``||ΔW_i(t)||_2`` with ``ΔW_i(t) = (cos t - 1) W_i + sin t U_i`` (0 for a layer that stays).

        Parameters
        ----------
        t : float or array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n, L)
        """
        t = np.atleast_1d(np.asarray(t, dtype=float))
        norms = self.layer_norms(-2.0 * np.sin(t / 2) ** 2, np.sin(t))
        norms[:, self.fixed] = 0.0                               # a layer that stays: ΔW_i = 0
        return norms

    def curve_norms(self, t) -> np.ndarray:
        """``||Γ_i(t)||_2`` with ``Γ_i(t) = cos t W_i + sin t U_i`` (``||W_i||_2`` for a layer that stays).

        Parameters
        ----------
        t : float or array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n, L)
        """
        t = np.atleast_1d(np.asarray(t, dtype=float))
        norms = self.layer_norms(np.cos(t), np.sin(t))
        norms[:, self.fixed] = self.norms_W[self.fixed]          # a layer that stays: Γ_i = W_i
        return norms

    def P1(self, t):
        """``P_1(t) = Π_i (||W_i||_2 + ||ΔW_i(t)||_2)``.

        Parameters
        ----------
        t : float or array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)
        """
        return np.prod(self.norms_W + self.delta_norms(t), axis=1)

    def gap(self, t) -> np.ndarray:
        """``P_1(t) - P_2``, summed as ``Σ_i [Π_{j<i} ||W_j||_2] ||ΔW_i||_2 [Π_{j>i}(||W_j||_2 + ||ΔW_j||_2)]``.

        Parameters
        ----------
        t : float or array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)
            The telescoped sum equals the difference of products exactly but does not cancel at small ``t``.
        """
        d = self.delta_norms(t)
        s = np.broadcast_to(self.norms_W, d.shape)
        return _telescoped(s, d, s + d)

    def penalty(self, t):
        """``Q/2 (P_1(t) - P_2)²`` (from :meth:`gap`).

        Parameters
        ----------
        t : array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)
        """
        return 0.5 * self.Q * self.gap(t) ** 2


class TelescopingMajorant(SpectralMajorant):
    """``m(t) = α(cos t - 1) - β sin t + Q/2 (Σ_i [Π_{j>i} ||Γ_j(t)||_2] ||ΔW_i(t)||_2 [Π_{j<i} ||W_j||_2])²``.

    docs/method.md §5; parameters and attributes as :class:`SpectralMajorant`. Tighter than it but often not
    unimodal on ``[0, π]`` (``||Γ_j(t)||_2`` dips at large t).
    """
    variant = "telescoping"

    def bound(self, t) -> np.ndarray:
        """The telescoping sum: the Lipschitz-type bound ``B(t)`` on ``||Δf(x)||/||x||``.

        Parameters
        ----------
        t : float or array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)
            ``||ΔW_i(t)||_2`` and ``||Γ_i(t)||_2`` come from one batch of ``2n`` coefficient pairs per layer.
        """
        t = np.atleast_1d(np.asarray(t, dtype=float))
        n, s = t.size, np.sin(t)
        # ||ΔW_i(t)||_2 and ||Γ_i(t)||_2 in one batch of 2n coefficient pairs per layer.
        both = self.layer_norms(np.concatenate([-2.0 * np.sin(t / 2) ** 2, np.cos(t)]), np.concatenate([s, s]))
        d, g = both[:n], both[n:]
        d[:, self.fixed], g[:, self.fixed] = 0.0, self.norms_W[self.fixed]    # layers that stay
        return _telescoped(np.broadcast_to(self.norms_W, d.shape), d, g)

    def penalty(self, t):
        """``Q/2 B(t)²`` with ``B`` from :meth:`bound`.

        Parameters
        ----------
        t : array_like, shape (n,)

        Returns
        -------
        ndarray, shape (n,)
        """
        return 0.5 * self.Q * self.bound(t) ** 2


class FrobeniusMajorant(Majorant):
    """``m_F(t) = α(cos t - 1) - β sin t + Q/2 (P ((1 + 2 sin(t/2))^L - 1))²``, ``P = Π_i mu_i`` (method.md §5).

    Parameters as :class:`Majorant`; ``P`` (= ``lipschitz_product``) is an attribute. Uses only
    ``||W_i||_2 <= mu_i`` and ``||ΔW_i(t)||_F = 2 mu_i sin(t/2)``: no spectral norm at all.
    """
    variant = "frobenius"

    def __init__(self, weights, direction, radii, Q):
        super().__init__(weights, direction, radii, Q)
        self.P = self.lipschitz_product = float(np.prod(self.radii))

    def penalty(self, t):
        """``Q/2 (P ((1 + 2 sin(t/2))^L - 1))²``.

        Parameters
        ----------
        t : array_like

        Returns
        -------
        ndarray
            ``(1 + x)^L - 1`` is computed as ``expm1(L log1p(x))``: no cancellation at small ``t``.
        """
        t = np.asarray(t, dtype=float)
        # (1 + x)^L - 1 = expm1(L log1p(x)): no cancellation at small t.
        growth = np.expm1(self.L * np.log1p(2.0 * np.sin(t / 2)))
        return 0.5 * self.Q * (self.P * growth) ** 2


VARIANTS = {"spectral": SpectralMajorant, "frobenius": FrobeniusMajorant, "telescoping": TelescopingMajorant}


def input_energy(X: np.ndarray) -> float:
    """``Q = 1/N Σ_n ||x_n||²`` (docs/method.md §2).

    Parameters
    ----------
    X : ndarray, shape (N, d_0)

    Returns
    -------
    float
        Accumulated in float64; ``= 1`` for unit-norm rows.

    Examples
    --------
    >>> input_energy(np.array([[3.0, 4.0], [0.0, 1.0]]))
    13.0
    """
    return float(np.einsum("ij,ij->", X, X, dtype=np.float64)) / X.shape[0]


def _build(variant: str, weights, direction: Direction, radii, Q: float) -> Majorant:
    return VARIANTS[variant](weights, direction, radii, Q)


def _checked(weights, grads, radii, X):
    weights = [W.astype(np.float64) for W in check_weights(weights)]
    if isinstance(grads, np.ndarray) or not hasattr(grads, "__len__") or len(grads) != len(weights):
        raise ValueError(f"grads must be a list of {len(weights)} arrays, one per weight matrix")
    grads = [as_float_matrix(f"grads[{i}]", G) for i, G in enumerate(grads)]
    radii = check_radii(radii, len(weights))
    for i, (W, G, mu) in enumerate(zip(weights, grads, radii)):
        if G.shape != W.shape:
            raise ValueError(f"grads[{i}] has shape {G.shape}, weights[{i}] has {W.shape}")
        reason = sphere.check_point(W, mu, rtol=1e-8)
        if reason:
            raise ValueError(f"weights[{i}] is not on its sphere of radius radii[{i}]: {reason}")
    X = as_float_matrix("X", X, weights[0].shape[1])
    Q = input_energy(X)
    if not Q > 0:
        raise ValueError("X: every row is zero, so Q = 1/N sum ||x_n||^2 = 0 and the majorant is undefined")
    return weights, _direction(weights, grads, radii), radii, Q


def spectral(weights, grads, radii, X) -> SpectralMajorant:
    """The paper's majorant at ``weights``, inputs checked: ``m = spectral(...); m(t)`` (docs/method.md §5).

    Parameters
    ----------
    weights : list of ndarray
        ``W_i: (d_i, d_{i-1})``, ``||W_i||_F = radii[i]`` (to 1e-8; used in float64).
    grads : list of ndarray
        Euclidean gradients ``∇_{W_i} J``, same shapes.
    radii : array_like
    X : array_like, shape (N, d_0)
        Inputs; only ``Q = 1/N Σ ||x_n||²`` is used, which must be positive.

    Returns
    -------
    SpectralMajorant
    """
    return SpectralMajorant(*_checked(weights, grads, radii, X))


def frobenius(weights, grads, radii, X) -> FrobeniusMajorant:
    """Frobenius-only majorant ``m_F`` (arguments as :func:`spectral`).

    Returns
    -------
    FrobeniusMajorant
    """
    return FrobeniusMajorant(*_checked(weights, grads, radii, X))


def telescoping(weights, grads, radii, X) -> TelescopingMajorant:
    """Telescoping (tightest) majorant (arguments as :func:`spectral`).

    Returns
    -------
    TelescopingMajorant
    """
    return TelescopingMajorant(*_checked(weights, grads, radii, X))


# --- the readable form ----------------------------------------------------------------------------------------

def plain_majorant(variant: str, weights, grads, radii, X, t: float) -> float:
    """The majorant ``m(t)`` written out literally, spectral norms by SVD: the readable form of :class:`Majorant`.

    Parameters
    ----------
    variant : {"spectral", "frobenius", "telescoping"}
        ``"spectral"`` is the paper's (:func:`plain_spectral`).
    weights, grads : list of ndarray
        ``W_i`` on their spheres and the Euclidean gradients ``∇_{W_i} J``.
    radii : array_like
        ``mu_i``.
    X : ndarray, shape (N, d_0)
        The inputs (only ``Q = 1/N Σ ||x_n||²`` is used).
    t : float
        The angle.

    Returns
    -------
    float
        ``m(t)``.

    Notes
    -----
    ``m(t) = α(cos t - 1) - β sin t + Q/2 B(t)²`` with, over the moving layers (docs/method.md §5),
    ``α = Σ_i <W_i, ∇_i J>``, ``β = Σ_i mu_i ||grad_i||_F``, ``ΔW_i = (cos t - 1) W_i + mu_i sin t V_i``
    (0 for a layer that stays) and ``B(t)`` = ``Π_i (||W_i||_2 + ||ΔW_i||_2) - Π_i ||W_i||_2`` (spectral),
    ``Π_i mu_i ((1 + 2 sin(t/2))^L - 1)`` (frobenius) or
    ``Σ_i [Π_{j>i} ||W_j + ΔW_j||_2] ||ΔW_i||_2 [Π_{j<i} ||W_j||_2]`` (telescoping).
    """
    d = _direction(weights, grads, radii)
    dW = [((math.cos(t) - 1) * W + mu * math.sin(t) * V) * a for W, V, mu, a in zip(weights, d.V, radii, d.rates)]
    s = [np.linalg.norm(W, 2) for W in weights]
    if variant == "spectral":
        bound = np.prod([si + np.linalg.norm(D, 2) for si, D in zip(s, dW)]) - np.prod(s)
    elif variant == "frobenius":
        bound = np.prod(radii) * ((1 + 2 * math.sin(t / 2)) ** len(weights) - 1)
    else:
        bound = sum(np.prod([np.linalg.norm(W + D, 2) for W, D in zip(weights[i + 1:], dW[i + 1:])])
                    * np.linalg.norm(dW[i], 2) * np.prod(s[:i]) for i in range(len(weights)))
    Q = float(np.mean(np.sum(X * X, axis=1)))
    return d.alpha_moving * (math.cos(t) - 1) - d.beta * math.sin(t) + Q / 2 * bound ** 2


def plain_spectral(weights, grads, radii, X, t: float) -> float:
    """The paper's majorant, literally (:func:`plain_majorant` with ``"spectral"``).

    Parameters
    ----------
    weights, grads, radii, X, t
        As :func:`plain_majorant`.

    Returns
    -------
    float
        ``m(t) = α(cos t - 1) - β sin t + Q/2 (P_1(t) - P_2)²``, ``P_1(t) = Π_i (||W_i||_2 + ||ΔW_i(t)||_2)``,
        ``P_2 = Π_i ||W_i||_2`` (docs/method.md §5).

    Notes
    -----
    :class:`SpectralMajorant` is its fast form: exact spectral norms of ``a W + b U`` from three Gram
    matrices per layer, every layer in one compiled call, and ``P_1 - P_2`` summed without cancellation.
    """
    return plain_majorant("spectral", weights, grads, radii, X, t)


# --- the closed-form step -------------------------------------------------------------------------------------

def closed_form_model(t, beta: float, P: float, Q: float, L: int):
    """``h(t) = -β t + Q/2 (P (e^{L t} - 1))²``: the AGD-style model the closed-form step minimises exactly.

    Parameters
    ----------
    t : float or array_like
    beta, P, Q : float
        ``β``, ``P = Π_i mu_i``, ``Q``.
    L : int
        The depth.

    Returns
    -------
    ndarray
        ``h(t)``, of ``t``'s shape.

    Notes
    -----
    docs/method.md §5: ``(1 + 2 sin(t/2))^L <= (1 + t)^L <= e^{Lt}`` and the linear term replaced by its first order.
    """
    t = np.asarray(t, dtype=float)
    return -beta * t + 0.5 * Q * (P * np.expm1(L * t)) ** 2


def _closed_form_tau(beta: float, P: float, Q: float, L: int) -> float:
    # h'(t) = 0  <=>  x² - x = c = β/(P² Q L) with x = e^{Lt}; root x = (1 + sqrt(1 + 4c))/2, and
    # x - 1 = 2c/(1 + sqrt(1 + 4c)) avoids the cancellation of sqrt(1 + 4c) - 1 for small c.
    c = beta / (P * P * Q * L)
    return math.log1p(2.0 * c / (1.0 + math.sqrt(1.0 + 4.0 * c))) / L


def closed_form_step(weights, grads, radii, X) -> float:
    """The AGD-like closed-form step, inputs checked (arguments as :func:`spectral`).

    Returns
    -------
    float
        ``τ = (1/L) log((1 + sqrt(1 + 4β/(P² Q L)))/2)``, ``P = Π_i mu_i``: the minimiser of
        :func:`closed_form_model` (docs/method.md §5); ``β = 0`` gives ``τ = 0``.
    """
    weights, direction, radii, Q = _checked(weights, grads, radii, X)
    return _closed_form_tau(direction.beta, float(np.prod(radii)), Q, len(weights))


# --- golden-section search --------------------------------------------------------------------------------------
#
# Golden section keeps a bracket [lower, upper] and its best point x and cuts the longer side at the golden
# fraction 0.382. The stopping rule max(x - lower, upper - x) <= 2 (rtol |x| + atol) puts the returned t_min within
# 2 (rtol |t_min| + atol) of the minimiser: relative to |t_min|, NOT to the interval width. With the defaults
# (rtol = 3.45e-4 = sqrt(eps_float32), atol = eps_float32 ≈ 1.19e-7) a minimiser near 1e-4 is found to about
# 3e-7 absolute (0.3 %), in ~32 evaluations on [0, π]; below t ≈ 3.5e-4 the absolute part dominates.
# Bracketing from first_step (grow the step by φ = (1 + √5)/2 ≈ 1.618 until f rises or b is reached) costs
# about log_φ(t*/first_step) + 15 evaluations against log_φ((b - a)/(rtol t*)) without it, so it also saves
# evaluations when the minimiser t* is below about sqrt(8 first_step). An end of [a, b] is evaluated only when the
# final bracket touches it, and returned when no worse (at_end): a minimum at an end is found exactly.

def golden_section(f, a: float = 0.0, b: float = math.pi, rtol: float = RTOL, atol: float = ATOL,
                   first_step: float | None = None, max_evals: int = 1000):
    """Minimise a unimodal ``f`` on ``[a, b]``: Optim.jl's ``GoldenSection``, the authors' search (docs/method.md §5).

    Parameters
    ----------
    f, a, b, rtol, atol, first_step, max_evals
        The function, the interval (default ``[0, π]``), the tolerances (default: the authors', in Float32), an
        optional first bracketing step (not the authors'; finds the local minimum nearest ``a``), a cap on evaluations.

    Returns
    -------
    t_min, f_min, n_evals, at_end : float, float, int, bool

    Notes
    -----
    Stop when ``max(x - lower, upper - x) <= 2 (rtol |x| + atol)``, relative to ``|t_min|`` (the comment above).

    Examples
    --------
    >>> round(golden_section(lambda t: (t - 1.0) ** 2)[0], 3)
    1.0
    >>> golden_section(lambda t: -t, 0.0, 1.0)          # at_end: a minimum at an end is found exactly
    (1.0, -1.0, 17, True)
    """
    a, b = finite_float("a", a), finite_float("b", b)
    if not a < b:
        raise ValueError(f"the interval [a, b] = [{a}, {b}] is empty: need a < b")
    rtol, atol = finite_float("rtol", rtol, positive=True), finite_float("atol", atol, nonnegative=True)
    if first_step is not None:
        first_step = finite_float("first_step", first_step, positive=True)
    lower, upper, ends = a, b, {}
    if first_step is not None:
        lower, upper, x, fx, n, ends = _bracket_from(f, a, b, first_step)
    else:
        x = lower + GOLDEN * (upper - lower)
        fx, n = f(x), 1
    while n < max_evals:
        if max(x - lower, upper - x) <= 2.0 * (rtol * abs(x) + atol):
            break
        if upper - x > x - lower:
            new = x + GOLDEN * (upper - x)
            f_new, n = f(new), n + 1
            if f_new < fx:
                lower, x, fx = x, new, f_new
            else:
                upper = new
        else:
            new = x - GOLDEN * (x - lower)
            f_new, n = f(new), n + 1
            if f_new < fx:
                upper, x, fx = x, new, f_new
            else:
                lower = new
    for end, touches in ((a, lower == a), (b, upper == b)):
        if touches:
            f_end, n = (ends[end], n) if end in ends else (f(end), n + 1)    # b may be known from the bracketing
            if f_end <= fx:
                return float(end), float(f_end), n, True
    return float(x), float(fx), n, False


def _bracket_from(f, a, b, step):
    """Expand ``a + step (1.618)^k`` until ``f`` rises: returns ``(lower, upper, x, f(x), evals, {b: f(b)})``
    (the last empty unless ``b`` was reached)."""
    grow = (1.0 + math.sqrt(5.0)) / 2.0       # φ ≈ 1.618
    prev, x = a, min(a + step, b)
    fx, n = f(x), 1
    while x < b:
        new = min(a + (x - a) * grow, b)
        f_new, n = f(new), n + 1
        if f_new >= fx:
            return prev, new, x, fx, n, ({b: f_new} if new == b else {})
        prev, x, fx = x, new, f_new
    return prev, b, x, fx, n, {b: fx}


FALLBACK_STEP = 1e-6     # first bracketing step when the search on all of [0, π] provably failed


def minimise(m, rtol: float = RTOL, atol: float = ATOL, first_step: float | None = None):
    """Algorithm 2's ``τ = argmin_{t∈[0, π]} m(t)`` (docs/method.md §5).

    Parameters
    ----------
    m : callable
        The majorant, ``m(0) = 0``.
    rtol, atol, first_step
        As :func:`golden_section`.

    Returns
    -------
    tau, m_tau, evals, at_end, restarted : float, float, int, bool, bool

    Notes
    -----
    :func:`golden_section` on ``[0, π]`` (with ``first_step`` if given). Safeguard (not the authors'): golden
    section assumes ``m`` unimodal; the telescoping majorant often is not (its ``||Γ_j(t)||_2`` dips at large
    ``t``). As ``m(0) = 0`` and ``m'(0) = -β < 0``, a result with ``m(τ) > 0`` proves the search missed the
    minimum near 0; it is then redone bracketing from ``first_step`` (or ``FALLBACK_STEP = 1e-6``):
    ``restarted = True``.
    """
    tau, m_tau, evals, at_end = golden_section(m, 0.0, math.pi, rtol, atol, first_step)
    if m_tau <= 0:
        return tau, m_tau, evals, at_end, False
    tau, m_tau, more, at_end = golden_section(m, 0.0, math.pi, rtol, atol, first_step or FALLBACK_STEP)
    return tau, m_tau, evals + more, at_end, True


# --- how well does a majorant bound the true loss change? ----------------------------------------------------

def validity(m: Majorant, X, Y, t_grid=None, rtol: float = RTOL) -> dict:
    """Compare ``m(t)`` with the true ``φ(t) - φ(0) = J(Γ(t)) - J(W)`` at the iterate ``m`` was built at (§5).

    Parameters
    ----------
    m : Majorant
    X : array_like, shape (N, d_0)
    Y : array_like, shape (N, d_L)
    t_grid : array_like, optional
        Finite angles; default 200 points log-spaced in ``[1e-6, π]``.
    rtol : float, optional
        For the majorant's own minimiser (:func:`minimise`).

    Returns
    -------
    dict
        ``t``, ``m`` (= m(t)), ``true``; ``bound_fraction``: share of grid points with ``m(t) >= true``;
        ``fails_at``: the ``t`` where ``m(t) < true``; ``worst_violation = max(true - m)`` (``<= 0`` iff m bounds
        everywhere on the grid); at the minimiser ``tau``: ``m_tau``, ``true_tau`` and ``looseness = m_tau / true_tau``
        (predicted over true decrease; ``<= 1`` when ``m`` bounds, negative when the loss rose, NaN if the loss did
        not change).
    """
    X, Y = check_data(X, Y, m.weights[0].shape[1], m.weights[-1].shape[0])
    t = np.geomspace(1e-6, math.pi, 200) if t_grid is None else np.asarray(t_grid, dtype=float).reshape(-1)
    if t.size == 0 or not np.isfinite(t).all():
        raise ValueError("t_grid must be a non-empty array of finite angles")
    J0 = _loss_from_output(_forward_cache(m.weights, X).F, Y)

    def change(s):
        return _loss_from_output(_forward_cache(m.curve(float(s)), X).F, Y) - J0

    true = np.array([change(s) for s in t])
    mt = m(t)
    tau, m_tau, *_ = minimise(m, rtol)
    true_tau = change(tau)
    return {"t": t, "m": mt, "true": true,
            "bound_fraction": float(np.mean(mt >= true)), "fails_at": t[mt < true],
            "worst_violation": float(np.max(true - mt)),
            "tau": tau, "m_tau": m_tau, "true_tau": true_tau,
            "looseness": m_tau / true_tau if true_tau != 0 else math.nan}
