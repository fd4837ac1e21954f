"""The Lipschitz certificate of a trained network, and how tight it is.

A bias-free ReLU network ``g(x) = W_L σ(W_{L-1} ... σ(W_1 x))`` is, at a point where no pre-activation is
0, locally the linear map ``J(x) = W_L D_{L-1}(x) W_{L-1} ... D_1(x) W_1`` with ``D_i(x) = diag([Z_i > 0])``.
Hence two bounds on its Lipschitz constant (Euclidean norms):

    upper (certified, every input)   Lip(g) <= prod_i ||W_i||_2 <= prod_i ||W_i||_F = prod_i mu_i
    lower (empirical, at data)       Lip(g) >= max_n ||J(x_n)||_2

because ``||D_i||_2 <= 1``, and because ``g`` is linear with matrix ``J(x_n)`` on a neighbourhood of
``x_n`` (exact for a ReLU network at a fixed activation pattern). Composed with a scaling ``x -> x~ = A x +
c`` and ``y = t g + ybar``, both bounds carry over with the factors ``t`` and ``||A||_2`` (upper) or the
matrix ``t J(x~_n) A`` (lower). The gap between the two says how much the certificate overstates.
"""
from __future__ import annotations

import numpy as np

from ._checks import check_weights, as_float_matrix

ROW_BLOCK = 4096


def spectral_bound(weights) -> float:
    """The certified Lipschitz bound of the network itself.

    Parameters
    ----------
    weights : sequence of ndarray
        ``W_1..W_L``, ``W_i: (d_i, d_{i-1})``, chained.

    Returns
    -------
    float
        ``prod_i ||W_i||_2`` (ReLU is 1-Lipschitz, so this bounds ``x -> f(x)`` in the euclidean norm).
    """
    return float(np.prod([np.linalg.norm(np.asarray(W, np.float64), 2) for W in check_weights(weights)]))


def input_jacobians(weights, X, biases=None) -> np.ndarray:
    """The network's input Jacobian at every row of ``X``.

    Parameters
    ----------
    weights : sequence of ndarray
        ``W_1..W_L``, chained.
    X : array_like, shape (N, d_0)
        Network inputs.
    biases : sequence of ndarray, optional
        ``b_1..b_L`` of an ordinary MLP ``Z_i = H_{i-1} W_i^T + b_i`` (they move the pattern ``D_i``, not
        the formula); ``None`` for the bias-free network.

    Returns
    -------
    ndarray, shape (N, d_L, d_0), float64
        ``J(x_n) = W_L D_{L-1} ... D_1 W_1``, ``D_i = diag([Z_i(x_n) > 0])``.

    Notes
    -----
    Reverse accumulation from the output: ``B <- W_L``, then for ``i = L-1..1``: ``B <- (B ⊙ [Z_i > 0]) W_i``
    (tie rule of the package: a pre-activation of exactly 0 is inactive), in blocks of ``ROW_BLOCK`` rows.
    """
    weights = [np.asarray(W, np.float64) for W in check_weights(weights)]
    biases = [np.zeros(W.shape[0]) for W in weights] if biases is None else [np.asarray(b, np.float64)
                                                                            for b in biases]
    X = as_float_matrix("X", X, weights[0].shape[1])
    out = np.empty((X.shape[0], weights[-1].shape[0], weights[0].shape[1]))
    for start in range(0, X.shape[0], ROW_BLOCK):
        rows = slice(start, start + ROW_BLOCK)
        H, masks = X[rows], []
        for W, b in zip(weights[:-1], biases):
            Z = H @ W.T + b
            masks.append(Z > 0)
            H = np.maximum(Z, 0.0)
        B = np.broadcast_to(weights[-1], (H.shape[0],) + weights[-1].shape)
        for W, mask in zip(weights[-2::-1], masks[::-1]):
            B = (B * mask[:, None, :]) @ W
        out[rows] = B
    return out


def jacobian_norms(weights, X, input_map=None, output_factor=1.0, biases=None) -> np.ndarray:
    """The local Lipschitz constant of the scaled map at each sample.

    Parameters
    ----------
    weights, X, biases
        As in :func:`input_jacobians`.
    input_map : array_like, shape (d_0, d), optional
        ``A``, the Jacobian of the input scaling (``None``: identity).
    output_factor : float or array_like, shape (d_L,)
        ``T``, the target scaling's factor ``t`` or per-output factors (a diagonal ``T``).

    Returns
    -------
    ndarray, shape (N,)
        ``||T J(x_n) A||_2``.
    """
    J = input_jacobians(weights, X, biases)
    if input_map is not None:
        J = J @ np.asarray(input_map, np.float64)
    J = J * np.asarray(output_factor, np.float64).reshape(-1, 1)
    return np.linalg.norm(J, ord=2, axis=(1, 2))


def empirical_lower_bound(weights, X, input_map=None, output_factor=1.0, biases=None) -> float:
    """A lower bound on the Lipschitz constant of the scaled map.

    Parameters
    ----------
    weights, X, input_map, output_factor, biases
        As in :func:`jacobian_norms`.

    Returns
    -------
    float
        ``max_n ||T J(x_n) A||_2`` (the map is piecewise linear: each local constant is attained).
    """
    return float(jacobian_norms(weights, X, input_map, output_factor, biases).max())


def certificate(weights, scaling, X_scaled_sets) -> dict:
    """The Lipschitz certificate of a network trained on ``scaling``'s data, in the scaling's output units.

    Parameters
    ----------
    weights : sequence of ndarray
        The trained ``W_1..W_L``.
    scaling : StandardScaling or PaperScaling
        The data's scaling (:mod:`spherenet.data.scaling`).
    X_scaled_sets : sequence of ndarray
        Network inputs (scaled) over which the lower bound is taken; may be empty.

    Returns
    -------
    dict
        ``lipschitz_bound``: ``prod ||W_i||_2`` carried through the scaling; ``lipschitz_budget``: the same
        with ``prod mu_i``, what the scaling promised before training; ``lipschitz_lower``: the largest
        local constant over the rows of every array (``None`` for no arrays); ``lipschitz_norm``: which
        input norm the constants refer to.

    Notes
    -----
    Standard scaling: ``Lip <= t prod_i ||W_i||_2 a / min_j s_j`` in the raw features' euclidean norm;
    the paper's: ``t prod_i ||W_i||_2`` in the unit-normalised input ``x / ||x||`` (docs/method.md §7).
    """
    from .data.scaling import StandardScaling
    bound, t = spectral_bound(weights), scaling.unit
    if isinstance(scaling, StandardScaling):
        upper, budget = scaling.certificate(bound), scaling.lipschitz
        A, norm = scaling.input_jacobian(), "euclidean norm of the raw features"
    else:                               # the paper's: inputs x / ||x||, targets y P_op / y_max
        upper, A, norm = t * bound, None, "euclidean norm of the unit-normalised input x / ||x||"
        budget = t * float(np.prod([np.linalg.norm(np.asarray(W, np.float64)) for W in weights]))
    lower = max((empirical_lower_bound(weights, X, A, t) for X in X_scaled_sets), default=None)
    return {"lipschitz_bound": upper, "lipschitz_budget": budget, "lipschitz_lower": lower,
            "lipschitz_norm": norm}
