"""Numba kernels, each beside a plain NumPy reference with the same signature.

Every kernel ``k`` comes in two versions:

* ``k_reference`` — the formula written with NumPy, the readable definition;
* ``k_numba`` — the same computation as explicit loops, compiled with ``numba.njit(cache=True)``.
  The loops are an ordinary Python function (``_k_loops``) wrapped by ``njit``, so with
  ``NUMBA_DISABLE_JIT=1`` they run as plain Python and can be checked line by line.

``k`` itself (no suffix) is the version the package uses; it is the faster of the two as measured by
``benchmarks/bench_kernels.py`` on a 2-core machine (numbers in ``benchmarks/README.md``). BLAS wins the
matrix products; fused loops win where they avoid temporaries (masks, in-place updates).
``KERNELS`` lists every pair, and the test suite checks each fast version against its reference.

Serial Numba only: a ``parallel=True`` kernel next to a threaded BLAS oversubscribes the two cores.
"""
from __future__ import annotations

import math

import numpy as np
from numba import njit


def _jit(fn):
    return njit(cache=True, fastmath=False, nogil=True)(fn)


# --- matrix product out = A @ B.T (a layer: Z = H @ W.T) ----------------------------------------------

def matmul_nt_reference(A: np.ndarray, B: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = A @ B.T`` for ``A: (n, k)``, ``B: (m, k)``, ``out: (n, m)``."""
    return np.matmul(A, B.T, out=out)


def _matmul_nt_loops(A, B, out):
    n, k = A.shape
    m = B.shape[0]
    for r in range(n):
        for c in range(m):
            acc = 0.0
            for j in range(k):
                acc += A[r, j] * B[c, j]
            out[r, c] = acc
    return out


matmul_nt_numba = _jit(_matmul_nt_loops)


# --- ReLU forward: out = max(Z, 0) ---------------------------------------------------------------------

def relu_reference(Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = max(Z, 0)`` elementwise (the tie ``Z = 0`` gives 0 either way)."""
    return np.maximum(Z, 0, out=out)


def _relu_loops(Z, out):
    a = Z.reshape(-1)
    b = out.reshape(-1)
    for i in range(a.size):
        b[i] = a[i] if a[i] > 0 else 0.0
    return out


relu_numba = _jit(_relu_loops)


# --- ReLU backward / jet masking: out = G ⊙ [Z > 0] ------------------------------------------------------

def relu_mask_reference(G: np.ndarray, Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = G ⊙ [Z > 0]``: the tie rule of spherenet — a unit with ``Z == 0`` is *inactive*.

    The same rule serves the backward pass (``dZ = dH ⊙ [Z > 0]``) and the jets (``H_k = [Z_0 > 0] ⊙ Z_k``).
    ``G`` may hold several stacked blocks of ``Z``'s shape (``G: (r n, m)`` for ``Z: (n, m)``).
    """
    r = G.shape[0] // max(Z.shape[0], 1)
    mask = np.tile(Z > 0, (r, 1))
    return np.multiply(G, mask, out=out)


def _relu_mask_loops(G, Z, out):
    z = Z.reshape(-1)
    g = G.reshape(-1)
    o = out.reshape(-1)
    size = z.size
    for b in range(g.size // max(size, 1)):
        base = b * size
        for k in range(size):
            # Load before selecting: a conditional load compiles to a branch, which mispredicts on ReLU
            # masks and, with out = G, ran 10x slower than this branch-free select (bench_kernels.py).
            v = g[base + k]
            o[base + k] = v if z[k] > 0 else 0.0
    return out


relu_mask_numba = _jit(_relu_mask_loops)


# --- exp-map update in place: W <- W cos t + mu V sin t ------------------------------------------------

def curve_update_reference(W: np.ndarray, V: np.ndarray, mu: float, t: float) -> np.ndarray:
    """In place ``W <- W cos t + mu V sin t`` (one step along the update curve); returns ``W``.

    Written as ``W += (cos t - 1) W + mu sin t V`` with ``cos t - 1 = -2 sin²(t/2)``: rounding then scales
    with the increment, not with ``W`` (see ``sphere.curve``).
    """
    W += (-2.0 * np.sin(t / 2) ** 2) * W + (mu * np.sin(t)) * V
    return W


def _curve_update_loops(W, V, mu, t):
    c = -2.0 * math.sin(t / 2) ** 2
    s = mu * math.sin(t)
    w = W.reshape(-1)
    v = V.reshape(-1)
    for i in range(w.size):
        w[i] += c * w[i] + s * v[i]
    return W


curve_update_numba = _jit(_curve_update_loops)


# --- the versions the package uses ---------------------------------------------------------------------

matmul_nt = matmul_nt_reference          # BLAS: 1.4-14x faster than the loops (benchmarks/README.md)
relu = relu_numba                        # one pass, no temporaries
relu_mask = relu_mask_numba              # one pass, no boolean temporary, no tiling
curve_update = curve_update_numba

KERNELS = {
    "matmul_nt": (matmul_nt_reference, matmul_nt_numba),
    "relu": (relu_reference, relu_numba),
    "relu_mask": (relu_mask_reference, relu_mask_numba),
    "curve_update": (curve_update_reference, curve_update_numba),
}


# --- jets: the Cauchy sums of a layer's input along the update curve (METHOD.md §6) -------------------

def curve_cauchy_reference(Z0: np.ndarray, Zs: np.ndarray, cos: np.ndarray, sin: np.ndarray,
                           out: np.ndarray) -> np.ndarray:
    """The two stacked Cauchy sums a layer's jet needs, with the ReLU of the layer below applied first.

    ``Z0: (n, d)`` and ``Zs: (r n, d)``: the jet ``Z_0, Z_1..Z_r`` of the pre-activation below (``Z_k`` in
    row block ``k-1``); ``cos, sin: (r+1,)`` the curve's coefficients. With ``H_k = [Z_0 > 0] ⊙ Z_k``
    (the tie rule of ``relu_mask``) it writes, for ``k = 1..r`` into row block ``k-1`` of ``out: (r n, 2d)``::

        A_k = sum_{j<=k} cos_j H_{k-j}   (columns :d)        B_k = sum_{j<=k} sin_j H_{k-j}   (columns d:)
    """
    n, d = Z0.shape
    r = cos.shape[0] - 1
    H = [relu_reference(Z0, np.empty_like(Z0))]
    H += [relu_mask_reference(Zs[(k - 1) * n:k * n], Z0, np.empty_like(Z0)) for k in range(1, r + 1)]
    for k in range(1, r + 1):
        rows = slice((k - 1) * n, k * n)
        out[rows, :d] = sum(cos[j] * H[k - j] for j in range(k + 1))
        out[rows, d:] = sum(sin[j] * H[k - j] for j in range(k + 1))
    return out


def _curve_cauchy_loops(Z0, Zs, cos, sin, out):
    n, d = Z0.shape
    r = cos.shape[0] - 1
    for i in range(n):
        for k in range(1, r + 1):
            o = (k - 1) * n + i                   # [A_k | B_k] of sample i: row o of out
            for c in range(2 * d):
                out[o, c] = 0.0
            for j in range(k + 1):                # cos_j = 0 for odd j, sin_j = 0 for even j
                first, w = (0, cos[j]) if j % 2 == 0 else (d, sin[j])
                if j == k:
                    for c in range(d):
                        out[o, first + c] += w * Z0[i, c]
                else:
                    s = (k - j - 1) * n + i       # Z_{k-j} of sample i
                    for c in range(d):
                        out[o, first + c] += w * Zs[s, c]
            for c in range(d):                    # H = [Z_0 > 0] ⊙ Z: inactive units (and ties) give 0
                a, b = out[o, c], out[o, d + c]   # (loaded first, then selected: branch-free, no inf * 0;
                active = Z0[i, c] > 0             # a branch here mispredicts on ReLU masks, 2-4x slower)
                out[o, c] = a if active else 0.0
                out[o, d + c] = b if active else 0.0
    return out


curve_cauchy_numba = _jit(_curve_cauchy_loops)


# --- jets: the loss's Cauchy sums S_k = sum_{j<=k} <E_j, E_{k-j}> ------------------------------------------

def loss_cauchy_reference(E0: np.ndarray, Es: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out[k] += sum_{j<=k} <E_j, E_{k-j}>`` for ``k = 0..r``, accumulated in float64 (``J_k = out[k]/(2N)``).

    ``E0: (n, m)`` the error ``F_0 - Y``; ``Es: (r n, m)`` stacks ``E_k = F_k`` (``k >= 1``) in row blocks;
    ``out: (r+1,)`` float64, added to (so row blocks of samples can be summed one after the other).
    """
    r = out.shape[0] - 1
    E = np.concatenate([E0, Es]).astype(np.float64).reshape(r + 1, -1)
    gram = E @ E.T                                       # gram[j, l] = <E_j, E_l>
    for k in range(r + 1):
        out[k] += sum(gram[j, k - j] for j in range(k + 1))
    return out


def _loss_cauchy_loops(E0, Es, out):
    n, m = E0.shape
    r = out.shape[0] - 1
    e = np.empty(r + 1, dtype=np.float64)
    for i in range(n):
        for c in range(m):
            e[0] = E0[i, c]
            for k in range(1, r + 1):
                e[k] = Es[(k - 1) * n + i, c]
            for k in range(r + 1):
                s = 0.0
                for j in range(k + 1):
                    s += e[j] * e[k - j]
                out[k] += s
    return out


loss_cauchy_numba = _jit(_loss_cauchy_loops)

curve_cauchy = curve_cauchy_numba        # fused mask + Cauchy sums, branch-free (bench_jets.py)
loss_cauchy = loss_cauchy_numba          # no float64 copy of the stacked errors (bench_jets.py)

KERNELS["curve_cauchy"] = (curve_cauchy_reference, curve_cauchy_numba)
KERNELS["loss_cauchy"] = (loss_cauchy_reference, loss_cauchy_numba)


# --- majorant: the largest eigenvalue of a 2-parameter family of small Gram matrices -----------------------

def lambda_max_reference(A, B, C, sizes, a, b, out):
    """``out[i] = λ_max(a² A_i + ab B_i + b² C_i)`` on each leading ``sizes[i] × sizes[i]`` block (NumPy)."""
    for i, k in enumerate(sizes):
        out[i] = np.linalg.eigvalsh(a * a * A[i, :k, :k] + a * b * B[i, :k, :k] + b * b * C[i, :k, :k])[-1]
    return out


def _lambda_max_loops(A, B, C, sizes, a, b, out):
    aa, ab, bb = a * a, a * b, b * b
    for i in range(sizes.shape[0]):
        k = sizes[i]
        G = np.empty((k, k))
        for r in range(k):
            for c in range(k):
                G[r, c] = aa * A[i, r, c] + ab * B[i, r, c] + bb * C[i, r, c]
        out[i] = np.linalg.eigvalsh(G)[-1]
    return out


# Compiled: one call per (a, b) for all layers, without NumPy's per-call overhead (~3x faster here; see
# benchmarks/bench_majorant.py).
lambda_max_numba = _jit(_lambda_max_loops)
lambda_max = lambda_max_numba

KERNELS["lambda_max"] = (lambda_max_reference, lambda_max_numba)
