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
from ._numba_cache import njit                # numba.njit, cached when a folder allows


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
    """``out = max(Z, 0)`` elementwise (the tie ``Z = ±0`` gives +0). NaN stays NaN (NumPy's ``maximum``
    propagates it), so an overflowed pre-activation is never turned into a finite 0."""
    return np.maximum(Z, 0, out=out)


def _relu_loops(Z, out):
    a = Z.reshape(-1)
    b = out.reshape(-1)
    for i in range(a.size):
        # "not (z <= 0)" is true for z > 0 and for NaN, so NaN passes through as np.maximum lets it
        # (one unordered compare, still a branch-free select).
        b[i] = a[i] if not a[i] <= 0 else 0.0
    return out


relu_numba = _jit(_relu_loops)


# --- ReLU backward / jet masking: out = G ⊙ [Z > 0] ------------------------------------------------------

def relu_mask_reference(G: np.ndarray, Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = G ⊙ [Z > 0]``: the tie rule of spherenet — a unit with ``Z == 0`` is *inactive*.

    A product, not a select: an inactive unit gives ``G · 0``, which is NaN where ``G`` is NaN or ±Inf (and
    ``-0.0`` where ``G < 0``), so a non-finite adjoint or jet coefficient is never masked to a finite 0.

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
            # Load, then multiply by a selected 1 or 0: a conditional load compiles to a branch, which
            # mispredicts on ReLU masks and, with out = G, ran 10x slower than a branch-free select
            # (bench_kernels.py). The product keeps NaN/Inf · 0 = NaN and the sign of -0, as the reference.
            v = g[base + k]
            o[base + k] = v * (1.0 if z[k] > 0 else 0.0)
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
    # np.sin, not math.sin: a non-finite t gives NaN (as in the reference) also when run as plain Python
    c = -2.0 * np.sin(t / 2) ** 2
    s = mu * np.sin(t)
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


# --- jets: a layer's Cauchy sums along the update curve, on its output side (METHOD.md §6) ----------------

def output_cauchy_reference(P0, Ps, Qs, c, s, out):
    """``out_k = sum_{j<=k} c_j P_{k-j} + sum_{1<=j<=k} s_j Q_{k-j}``, ``k = 1..r``: a layer's Cauchy sums on
    its output side.

    ``P0: (n, d)`` and ``Ps: (r n, d)`` hold ``P_0`` and ``P_1..P_r`` (``P_m`` in row block ``m-1``), ``Qs: (r n, d)``
    holds ``Q_0..Q_{r-1}`` (``Q_m`` in row block ``m``): the jets of ``H W^T`` and ``H mu V^T``. ``c, s: (r+1,)``:
    the layer's curve coefficients; ``s_0 = 0`` (every update curve passes through ``W`` at ``t = 0``), so
    ``Q_r`` is never needed. ``out: (r n, d)``.

    A term whose coefficient is exactly 0 (``c_j`` for odd ``j``, ``s_j`` for even ``j``) is absent from the sum,
    not multiplied by 0: a non-finite ``P`` or ``Q`` then reaches ``out`` only through the terms that use it.
    """
    n, r = P0.shape[0], c.shape[0] - 1
    P = [P0] + [Ps[(m - 1) * n:m * n] for m in range(1, r + 1)]
    Q = [Qs[m * n:(m + 1) * n] for m in range(r)]
    for k in range(1, r + 1):
        out[(k - 1) * n:k * n] = (sum(c[j] * P[k - j] for j in range(k + 1) if c[j] != 0)
                                  + sum(s[j] * Q[k - j] for j in range(1, k + 1) if s[j] != 0))
    return out


def _output_cauchy_loops(P0, Ps, Qs, c, s, out):
    m = P0.size
    p0, ps, qs, o = P0.reshape(-1), Ps.reshape(-1), Qs.reshape(-1), out.reshape(-1)
    for k in range(1, c.shape[0]):
        z = o[(k - 1) * m:k * m]
        for e in range(m):
            z[e] = 0.0
        # Whole blocks at a time, each term skipped where its coefficient is 0 (cos_j for odd j, sin_j for
        # even j): long contiguous loops, which the compiler vectorises.
        for j in range(k + 1):
            if c[j] != 0:
                _axpy(z, c[j], p0 if j == k else ps[(k - j - 1) * m:(k - j) * m])
            if j > 0 and s[j] != 0:
                _axpy(z, s[j], qs[(k - j) * m:(k - j + 1) * m])
    return out


def _axpy_loops(y, a, x):
    for e in range(y.size):
        y[e] += a * x[e]


_axpy = _jit(_axpy_loops)
output_cauchy_numba = _jit(_output_cauchy_loops)


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

output_cauchy = output_cauchy_numba      # no temporaries (bench_jets.py)
loss_cauchy = loss_cauchy_reference      # BLAS's Gram matrix: as fast or faster on jets.BLOCK rows (bench_jets.py)

KERNELS["output_cauchy"] = (output_cauchy_reference, output_cauchy_numba)
KERNELS["loss_cauchy"] = (loss_cauchy_reference, loss_cauchy_numba)


# --- majorant: the largest eigenvalue of a 2-parameter family of small Gram matrices -----------------------

def lambda_max_reference(A, B, C, sizes, a, b, out):
    """``out[i] = λ_max(a² A_i + ab B_i + b² C_i)`` on each leading ``sizes[i] × sizes[i]`` block (NumPy).

    A block with a NaN or ±Inf entry has no eigenvalues: its ``out[i]`` is NaN (LAPACK would read only one
    triangle, and Numba's ``eigvalsh`` raises).
    """
    for i, k in enumerate(sizes):
        G = a * a * A[i, :k, :k] + a * b * B[i, :k, :k] + b * b * C[i, :k, :k]
        out[i] = np.linalg.eigvalsh(G)[-1] if np.isfinite(G).all() else np.nan
    return out


def _lambda_max_loops(A, B, C, sizes, a, b, out):
    aa, ab, bb = a * a, a * b, b * b
    for i in range(sizes.shape[0]):
        k = sizes[i]
        G = np.empty((k, k))
        finite = True
        for r in range(k):
            for c in range(k):
                G[r, c] = aa * A[i, r, c] + ab * B[i, r, c] + bb * C[i, r, c]
                finite = finite and math.isfinite(G[r, c])
        out[i] = np.linalg.eigvalsh(G)[-1] if finite else np.nan
    return out


# Compiled: one call per (a, b) for all layers, without NumPy's per-call overhead (~3x faster here; see
# benchmarks/bench_majorant.py).
lambda_max_numba = _jit(_lambda_max_loops)
lambda_max = lambda_max_numba

KERNELS["lambda_max"] = (lambda_max_reference, lambda_max_numba)
