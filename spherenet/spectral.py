"""Layers normalised in the spectral norm: the certificate spent where the function uses it (docs/beyond.md §8).

The optimiser's weights ``W_i`` stay on their Frobenius spheres ``||W_i||_F = mu_i``; the network computes with

    E_i = mu_i W_i / sigma_i,      sigma_i = sigma_1(W_i) = ||W_i||_2,

so ``||E_i||_2 = mu_i`` exactly and ``prod_i mu_i`` bounds the Lipschitz constant as before, now with the
layers' spectral norms at the bound instead of below it (``||W_i||_2 <= ||W_i||_F``, usually far below:
the product of a trained net's spectral norms is ~7 % of its Frobenius budget, docs/beyond.md §8). ``E`` does
not depend on the scale of ``W``, so the loss's Euclidean gradient in ``W`` is, with ``G_i = ∇_{E_i} J`` and
``(u_i, v_i)`` the top singular pair of ``W_i`` (``d sigma = u^T dW v``),

    ∇_{W_i} J = (mu_i / sigma_i) (G_i - (<G_i, W_i> / sigma_i) u_i v_i^T),

which is orthogonal to ``W_i``: tangent to the sphere, as the gradient of a scale-invariant map must be. Where
``sigma_1 = sigma_2`` the map is not differentiable and any top pair gives a one-sided derivative.
"""
from __future__ import annotations

import numpy as np
from scipy.linalg import lapack

from . import kernels
from ._checks import check_choice
from .network import NormalisedMLP

NORMS = ("frobenius", "spectral")


# Rayleigh-quotient iterations from a start before LAPACK takes over: a step of geo-batch turns the top vector by
# a small angle, which 2-3 iterations remove (their convergence is cubic).
WARM_ITERATIONS = 6


def top_singular(W: np.ndarray, start: np.ndarray | None = None) -> tuple[float, np.ndarray, np.ndarray]:
    """``(sigma_1, u, v)`` of ``W`` with ``W v = sigma_1 u``, from the smaller Gram matrix, in float64.

    Parameters
    ----------
    W : ndarray, shape (m, n), not zero
    start : ndarray, optional
        A vector close to the top one of the smaller Gram matrix (``u`` if ``m <= n``, else ``v``), e.g. that of
        a nearby matrix: then Rayleigh-quotient iteration from it, kept only with a certificate
        (``kernels.top_eigen_warm``), and LAPACK when it does not converge or certify.

    Returns
    -------
    tuple
        ``sigma_1 > 0`` and unit ``u: (m,)``, ``v: (n,)``.

    Notes
    -----
    The top eigenpair alone of ``W W^T`` (or ``W^T W``), by LAPACK's ``dsyevr``, is 2-5 times as fast as an SVD
    at these sizes, where the call's overhead dominates; ``sigma_1`` comes out to a few rounding units relative,
    the pair with the accuracy the singular-value gap allows. From a start, ``sigma_1`` is certified to lie within
    ``5e-13`` relative below the true one (never above it), the pair to ``1e-10`` over the gap.

    Examples
    --------
    >>> s, u, v = top_singular(np.array([[3.0, 0.0], [0.0, -4.0]]))
    >>> round(s, 12), abs(u).round(12).tolist(), abs(v).round(12).tolist()
    (4.0, [0.0, 1.0], [0.0, 1.0])
    >>> round(top_singular(np.array([[3.0, 0.0], [0.0, -4.0]]), start=np.array([0.1, 1.0]))[0], 12)
    4.0
    """
    W = np.asarray(W, dtype=np.float64)
    wide = W.shape[0] <= W.shape[1]
    gram = W @ W.T if wide else W.T @ W
    vector = np.empty(gram.shape[0])
    value, certified = (kernels.top_eigen_warm(gram, start, WARM_ITERATIONS, vector)
                        if start is not None and start.shape == vector.shape else (0.0, False))
    if not certified:
        value, lapack_vector = _top_eigenpair(gram)
        # sigma_1 is the Rayleigh quotient of the top vector on both paths (the same arithmetic), so a run that
        # starts from a vector this returned gets the same bits again (a resumed run, SpectralNormalisation)
        quotient, certified = kernels.top_eigen_warm(gram, lapack_vector, 1, vector)
        value, vector = (quotient, vector) if certified else (value, lapack_vector)
    sigma = float(np.sqrt(max(value, 0.0)))
    if not sigma > 0:
        raise ValueError("a zero matrix has no spectral normalisation")
    if wide:
        return sigma, vector, (W.T @ vector) / sigma
    return sigma, (W @ vector) / sigma, vector


def _top_eigenpair(gram: np.ndarray) -> tuple[float, np.ndarray]:
    """The top eigenvalue and unit eigenvector of a symmetric matrix, by LAPACK's ``dsyevr`` (``eigh`` if it
    fails)."""
    n = gram.shape[0]
    value, vector, *_, info = lapack.dsyevr(gram, range="I", il=n, iu=n)
    if info != 0:                                   # dsyevr failed to converge: the full solver
        values, vectors = np.linalg.eigh(gram)
        return float(values[-1]), vectors[:, -1]
    return float(value[0]), vector[:, 0]


class SpectralNormalisation:
    """The map ``W -> E`` (``E_i = mu_i W_i / sigma_1(W_i)``) and the pullback of gradients (module docstring).

    Parameters
    ----------
    radii : array_like
        ``mu_i``: each layer's spectral norm in the network, and its Frobenius radius on the optimiser's side.

    Notes
    -----
    The loop asks for the same weights more than once (a trial point becomes the next current point), so the
    last few weight lists' singular pairs are kept, recognised by identity (the list is held, so its ``id``
    cannot be reused while it is). Each new pair starts from the current point's (:meth:`anchor`,
    :func:`top_singular`'s ``start``): a step moves it little. Those starts are the object's memory
    (:meth:`state`), which a resumed run restores; the current point's pair, found again from its own vectors,
    comes out the same to the bit, so the resumed run repeats an uninterrupted one.
    """
    name = "spectral"

    def __init__(self, radii):
        self.radii = np.asarray(radii, dtype=np.float64)
        self._seen: list[tuple[list, list]] = []
        self.starts: list | None = None

    def tops(self, weights) -> list:
        """``[(sigma_i, u_i, v_i)]`` per layer (:func:`top_singular`).

        Parameters
        ----------
        weights : list of ndarray

        Returns
        -------
        list of tuple
        """
        for held, tops in self._seen:
            if held is weights:
                return tops
        tops = [top_singular(W, x) for W, x in zip(weights, self.starts or [None] * len(weights))]
        self._seen = [(weights, tops)] + self._seen[:2]
        return tops

    def anchor(self, weights) -> None:
        """Every later pair starts from the top vectors of ``weights`` (the training loop's current point).

        Parameters
        ----------
        weights : list of ndarray
        """
        self.starts = [u if W.shape[0] <= W.shape[1] else v for W, (_, u, v) in zip(weights, self.tops(weights))]

    def state(self) -> dict:
        """The warm starts as named arrays ``spectral<i>`` (empty before the first pair).

        Returns
        -------
        dict
        """
        return {f"spectral{i}": x for i, x in enumerate(self.starts or [])}

    def restore(self, state: dict) -> None:
        """Continue from the warm starts :meth:`state` returned (other keys of ``state`` are ignored).

        Parameters
        ----------
        state : dict

        Raises
        ------
        ValueError
            For a start that is not a vector of finite numbers.
        """
        starts = []
        for key in (f"spectral{i}" for i in range(len(self.radii))):
            if key in state:
                try:
                    start = np.asarray(state[key], dtype=np.float64)
                except (TypeError, ValueError):
                    start = np.array([np.nan])
                if start.ndim != 1 or not np.isfinite(start).all():
                    raise ValueError(f"the run's state {key!r} (a warm start of the spectral layers) is not a "
                                     f"vector of finite numbers: {str(state[key])[:80]}")
                starts.append(start)
        self.starts = starts if len(starts) == len(self.radii) else None
        self._seen = []

    def effective(self, weights) -> list:
        """``[E_i] = [mu_i W_i / sigma_1(W_i)]``, in the weights' dtype: what the network computes with.

        Parameters
        ----------
        weights : list of ndarray

        Returns
        -------
        list of ndarray
        """
        return [W * W.dtype.type(mu / s) for W, mu, (s, _, _) in zip(weights, self.radii, self.tops(weights))]

    def pullback(self, weights, grads) -> list:
        """``∇_{W_i} J = (mu_i/sigma_i)(G_i - (<G_i, W_i>/sigma_i) u_i v_i^T)`` from ``G_i = ∇_{E_i} J``.

        Parameters
        ----------
        weights : list of ndarray
            ``W`` (the optimiser's point).
        grads : list of ndarray
            ``G``, the Euclidean gradient with respect to the effective weights ``E``.

        Returns
        -------
        list of ndarray
            In the gradients' dtype.
        """
        return [kernels.spectral_pullback(W, G, u, v, s, mu, np.empty_like(G))
                for W, G, mu, (s, u, v) in zip(weights, grads, self.radii, self.tops(weights))]

    def network(self, net: NormalisedMLP) -> NormalisedMLP:
        """The network that computes what ``net`` computes under this normalisation: weights ``E``, radii
        ``||E_i||_F`` (so ``lipschitz_bound()`` is the Frobenius bound; ``spectral_norm_product()`` is
        ``prod mu_i``).

        Parameters
        ----------
        net : NormalisedMLP
            Its weights are the optimiser's ``W``.

        Returns
        -------
        NormalisedMLP
        """
        return NormalisedMLP.from_weights(self.effective(net.weights))


def network_weights(weights, normalisation=None) -> list:
    """The matrices the network computes with at the optimiser's ``weights``: themselves (``normalisation``
    ``None``, the paper), or ``normalisation.effective(weights)``.

    Parameters
    ----------
    weights : list of ndarray
    normalisation : SpectralNormalisation or None

    Returns
    -------
    list of ndarray
    """
    return weights if normalisation is None else normalisation.effective(weights)


def normalisation_for(norm: str, radii):
    """``None`` for ``"frobenius"`` (the paper: the network computes with ``W``), a
    :class:`SpectralNormalisation` for ``"spectral"``.

    Parameters
    ----------
    norm : {"frobenius", "spectral"}
    radii : array_like

    Returns
    -------
    SpectralNormalisation or None
    """
    check_choice("norm", norm, NORMS)
    return SpectralNormalisation(radii) if norm == "spectral" else None
