"""The ordinary ReLU MLP *with biases*: the network a user of SGD or Adam would pick.

    f(x) = W_L σ( ... σ(W_1 x + b_1) ... ) + b_L        σ(z) = max(0, z),  linear output

``params = [W_1, b_1, ..., W_L, b_L]`` with ``W_i: (d_i, d_{i-1})`` and ``b_i: (d_i,)``. Samples are rows, as in
``spherenet.network``: ``Z_i = H_{i-1} @ W_i.T + b_i``, ``H_0 = X``, ``H_i = σ(Z_i)``. The loss is the same
``J = 1/(2N) Σ_n ||f(x_n) - y_n||²``, so its numbers compare directly with the normalised network's, and the
ReLU uses the same kernels and tie rule (a unit with ``Z == 0`` is inactive, ``σ'(0) = 0``).

A one-layer MLP (``widths = [d_0, d_L]``) is the affine map ``x -> W x + b``; the least-squares baseline uses it.
"""
from __future__ import annotations

import numpy as np

from .. import kernels
from .._checks import as_float_matrix, check_choice, check_data, check_finite
from ..network import ForwardCache, _loss_from_output, check_widths

INITS = ("pytorch", "glorot")


def init_mlp(widths, init: str = "pytorch", seed=0, dtype=np.float64) -> list[np.ndarray]:
    """Initial ``[W_1, b_1, ..., W_L, b_L]`` for ``widths = [d_0, ..., d_L]``.

    ``"pytorch"`` (default; ``torch.nn.Linear``'s rule): ``W_i, b_i ~ U(-1/sqrt(d_{i-1}), 1/sqrt(d_{i-1}))``.
    ``"glorot"``: ``W_i ~ U(-a, a)``, ``a = sqrt(6/(d_i + d_{i-1}))``, ``b_i = 0``.
    Sampled in float64 from ``np.random.default_rng(seed)`` and then cast, so float32 starts from the same point.
    """
    widths = check_widths(widths)
    check_choice("init", init, INITS)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    params = []
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        if init == "pytorch":
            a = 1.0 / np.sqrt(d_in)
            W, b = rng.uniform(-a, a, size=(d_out, d_in)), rng.uniform(-a, a, size=d_out)
        else:
            a = np.sqrt(6.0 / (d_in + d_out))
            W, b = rng.uniform(-a, a, size=(d_out, d_in)), np.zeros(d_out)
        params += [W.astype(dtype), b.astype(dtype)]
    return params


def widths_of(params) -> tuple[int, ...]:
    """``[d_0, ..., d_L]`` read off ``[W_1, b_1, ..., W_L, b_L]``."""
    return (params[0].shape[1],) + tuple(W.shape[0] for W in params[::2])


def check_params(params) -> list[np.ndarray]:
    """Validate ``[W_1, b_1, ..., W_L, b_L]``: shapes chain, ``b_i`` matches ``W_i``, all finite, one dtype."""
    if isinstance(params, np.ndarray) or not hasattr(params, "__len__") or len(params) < 2 or len(params) % 2:
        raise TypeError("params must be a list [W_1, b_1, ..., W_L, b_L] of arrays")
    dtype = np.float32 if np.asarray(params[0]).dtype == np.float32 else np.float64
    out = []
    for i in range(0, len(params), 2):
        W = as_float_matrix(f"params[{i}]", params[i], dtype=dtype)
        if out and W.shape[1] != out[-2].shape[0]:
            raise ValueError(f"params[{i}] has shape {W.shape} but the previous layer has {out[-2].shape[0]} "
                             f"outputs: W_i must be (d_i, d_(i-1))")
        b = np.ascontiguousarray(params[i + 1], dtype=dtype)
        if b.shape != (W.shape[0],):
            raise ValueError(f"params[{i + 1}] (a bias) has shape {b.shape}, expected ({W.shape[0]},)")
        check_finite(f"params[{i + 1}]", b)
        out += [W, b]
    return out


# --- forward, backward (unchecked: the training loop validates once) -------------------------------------

def _forward_cache(params, X) -> ForwardCache:
    """``Z_i = H_{i-1} @ W_i.T + b_i``, ``H_i = max(Z_i, 0)``, linear output.

    A hidden layer's ``Z_i`` and ``H_i`` are one array holding ``H_i`` (the ReLU runs in place, as the sphere
    network's training pass does): the backward pass reads a hidden ``Z`` only through ``[Z > 0] = [H > 0]``, and
    a pass allocates half the memory (``z > 0`` on ``cache.Z`` is the activation pattern, as before).
    """
    H, Z = [X], []
    L = len(params) // 2
    for i in range(L):
        W, b = params[2 * i], params[2 * i + 1]
        z = kernels.matmul_nt(H[-1], W, np.empty((X.shape[0], W.shape[0]), dtype=X.dtype))
        z += b
        Z.append(z)
        if i < L - 1:
            H.append(kernels.relu(z, z))
    return ForwardCache(H, Z)


def _backward(params, cache: ForwardCache, Y) -> tuple[float, list]:
    """Loss and gradients ``[∇_{W_1} J, ∇_{b_1} J, ...]`` by reverse accumulation.

    ``dZ_L = (F - Y)/N``; for ``i = L..1``: ``∇_{W_i} J = dZ_i^T H_{i-1}``, ``∇_{b_i} J = Σ_n dZ_i[n]``,
    ``dZ_{i-1} = (dZ_i W_i) ⊙ [Z_{i-1} > 0]``.
    """
    J = _loss_from_output(cache.F, Y)
    dZ = (cache.F - Y) / Y.shape[0]
    L = len(params) // 2
    grads = [None] * (2 * L)
    for i in range(L - 1, -1, -1):
        grads[2 * i] = dZ.T @ cache.H[i]
        grads[2 * i + 1] = dZ.sum(axis=0)
        if i:
            dH = dZ @ params[2 * i]
            dZ = kernels.relu_mask(dH, cache.Z[i - 1], dH)
    return J, grads


# --- checked public versions -----------------------------------------------------------------------------

def _checked(params, X, Y=None):
    params = check_params(params)
    d_in, d_out, dtype = params[0].shape[1], params[-1].shape[0], params[0].dtype
    if Y is None:
        return params, as_float_matrix("X", X, d_in, dtype), None
    X, Y = check_data(X, Y, d_in, d_out, dtype)
    return params, X, Y


def mlp_forward(params, X) -> np.ndarray:
    """Output ``f(X): (N, d_L)`` of the biased MLP for ``X: (N, d_0)``."""
    params, X, _ = _checked(params, X)
    return _forward_cache(params, X).F


def mlp_loss(params, X, Y) -> float:
    """``J = 1/(2N) Σ_n ||f(x_n) - y_n||²``."""
    params, X, Y = _checked(params, X, Y)
    return _loss_from_output(_forward_cache(params, X).F, Y)


def mlp_loss_and_grad(params, X, Y) -> tuple[float, list]:
    """``(J, [∇_{W_1} J, ∇_{b_1} J, ..., ∇_{W_L} J, ∇_{b_L} J])`` by the hand-written backward pass."""
    params, X, Y = _checked(params, X, Y)
    return _backward(params, _forward_cache(params, X), Y)
