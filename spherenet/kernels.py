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
    """``out = A @ B.T``: a layer, ``Z = H @ W.T`` (docs/method.md §1).

    Parameters
    ----------
    A : ndarray, shape (n, k)
    B : ndarray, shape (m, k)
    out : ndarray, shape (n, m)

    Returns
    -------
    ndarray
        ``out``.

    Examples
    --------
    >>> matmul_nt_reference(np.array([[1.0, 2.0]]), np.array([[3.0, 4.0]]), np.empty((1, 1)))
    array([[11.]])
    """
    return np.matmul(A, B.T, out=out)


def _matmul_nt_loops(A, B, out):
    """The fast form of :func:`matmul_nt_reference` as explicit loops (compiled: ``matmul_nt_numba``).

    Parameters and result as :func:`matmul_nt_reference`; the package uses the reference (BLAS is faster).
    """
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
    """``out = max(Z, 0)`` elementwise (docs/method.md §1).

    Parameters
    ----------
    Z : ndarray
    out : ndarray
        Same shape (may be ``Z``).

    Returns
    -------
    ndarray
        ``out``. The tie ``Z = ±0`` gives +0. NaN stays NaN (NumPy's ``maximum`` propagates it), so an overflowed
        pre-activation is never turned into a finite 0.

    Examples
    --------
    >>> relu_reference(np.array([-1.0, 0.0, 2.0]), np.empty(3))
    array([0., 0., 2.])
    """
    return np.maximum(Z, 0, out=out)


def _relu_loops(Z, out):
    """The fast form of :func:`relu_reference`: one pass, no temporaries (compiled: ``relu_numba``, used as ``relu``).

    Parameters and result as :func:`relu_reference`, NaN passed through alike.
    """
    a = Z.reshape(-1)
    b = out.reshape(-1)
    # "not (z <= 0)" is true for z > 0 and for NaN, so NaN passes through as np.maximum lets it (one unordered
    # compare, still a branch-free select).
    if Z.ctypes.data == out.ctypes.data:
        # In place (the training loop's hidden layers): through one array, or the compiler's overlap check between
        # two names for the same memory sends the loop to its scalar fallback (4.4x slower in float32,
        # bench_kernels.py's row "relu, in place, float32").
        for i in range(b.size):
            b[i] = b[i] if not b[i] <= 0 else 0.0
    else:
        for i in range(a.size):
            b[i] = a[i] if not a[i] <= 0 else 0.0
    return out


relu_numba = _jit(_relu_loops)


# --- ReLU backward / jet masking: out = G ⊙ [Z > 0] ------------------------------------------------------

def relu_mask_reference(G: np.ndarray, Z: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``out = G ⊙ [Z > 0]``: the tie rule: a unit with ``Z == 0`` is *inactive* (docs/method.md §1, §6).

    Parameters
    ----------
    G : ndarray, shape (r n, m)
        One or several stacked blocks of ``Z``'s shape.
    Z : ndarray, shape (n, m)
    out : ndarray, shape (r n, m)
        May be ``G``.

    Returns
    -------
    ndarray
        ``out``.

    Notes
    -----
    The same rule serves the backward pass (``dZ = dH ⊙ [Z > 0]``) and the jets (``H_k = [Z_0 > 0] ⊙ Z_k``). A
    product, not a select: an inactive unit gives ``G · 0``, which is NaN where ``G`` is NaN or ±Inf (and ``-0.0``
    where ``G < 0``), so a non-finite adjoint or jet coefficient is never masked to a finite 0.

    Examples
    --------
    >>> relu_mask_reference(np.array([[1.0, 2.0], [3.0, 4.0]]), np.array([[0.0, 5.0]]), np.empty((2, 2)))
    array([[0., 2.],
           [0., 4.]])
    """
    r = G.shape[0] // max(Z.shape[0], 1)
    mask = np.tile(Z > 0, (r, 1))
    return np.multiply(G, mask, out=out)


def _relu_mask_loops(G, Z, out):
    """The fast form of :func:`relu_mask_reference`: one pass, no boolean temporary, no tiling (compiled:
    ``relu_mask_numba``, used as ``relu_mask``).

    Parameters and result as :func:`relu_mask_reference`, with the same products (NaN/Inf · 0 = NaN, ``-0.0``).
    """
    z = Z.reshape(-1)
    g = G.reshape(-1)
    o = out.reshape(-1)
    size = z.size
    # Load, then multiply by a selected 1 or 0: a conditional load compiles to a branch, which mispredicts on
    # ReLU masks and, with out = G, ran 10x slower than a branch-free select (bench_kernels.py). The product
    # keeps NaN/Inf · 0 = NaN and the sign of -0, as the reference. In place (the backward pass) the loop reads
    # and writes one array: two names for the same memory fail the compiler's overlap check and run the scalar
    # fallback (5.2x slower in float32, bench_kernels.py's row "relu_mask, in place, float32").
    in_place = G.ctypes.data == out.ctypes.data
    for b in range(g.size // max(size, 1)):
        base = b * size
        if in_place:
            for k in range(size):
                o[base + k] = o[base + k] * (1.0 if z[k] > 0 else 0.0)
        else:
            for k in range(size):
                o[base + k] = g[base + k] * (1.0 if z[k] > 0 else 0.0)
    return out


relu_mask_numba = _jit(_relu_mask_loops)


# --- the versions the package uses ---------------------------------------------------------------------

matmul_nt = matmul_nt_reference          # BLAS: 1.4-14x faster than the loops (benchmarks/README.md)
relu = relu_numba                        # one pass, no temporaries
relu_mask = relu_mask_numba              # one pass, no boolean temporary, no tiling


def curve_update(W: np.ndarray, V: np.ndarray, mu: float, t: float) -> np.ndarray:
    """Deprecated alias: ``W[...] = sphere.curve(W, V, mu, t)`` in place (the one curve function; docs/method.md §3).

    Parameters
    ----------
    W : ndarray
        Overwritten.
    V, mu, t
        As :func:`spherenet.sphere.curve`.

    Returns
    -------
    ndarray
        ``W``.
    """
    from .sphere import curve
    W[...] = curve(W, V, mu, t)
    return W


KERNELS = {
    "matmul_nt": (matmul_nt_reference, matmul_nt_numba),
    "relu": (relu_reference, relu_numba),
    "relu_mask": (relu_mask_reference, relu_mask_numba),
}


# --- jets: a layer's Cauchy sums along the update curve, on its output side (docs/method.md §6) ----------------

def output_cauchy_reference(P0, Ps, Qs, c, s, out):
    """A layer's Cauchy sums on its output side (docs/method.md §6).

    Parameters
    ----------
    P0 : ndarray, shape (n, d)
        ``P_0``.
    Ps : ndarray, shape (r n, d)
        ``P_1..P_r`` (``P_m`` in row block ``m-1``): with ``P_0``, the jet of ``H W^T``.
    Qs : ndarray, shape (r n, d)
        ``Q_0..Q_{r-1}`` (``Q_m`` in row block ``m``): the jet of ``H mu V^T``.
    c, s : ndarray, shape (r+1,)
        The layer's curve coefficients; ``s_0 = 0`` (every update curve passes through ``W`` at ``t = 0``), so
        ``Q_r`` is never needed.
    out : ndarray, shape (r n, d)

    Returns
    -------
    ndarray
        ``out``, with ``out_k = sum_{j<=k} c_j P_{k-j} + sum_{1<=j<=k} s_j Q_{k-j}``, ``k = 1..r``.

    Notes
    -----
    A term whose coefficient is exactly 0 (``c_j`` for odd ``j``, ``s_j`` for even ``j``) is absent from the sum,
    not multiplied by 0: a non-finite ``P`` or ``Q`` then reaches ``out`` only through the terms that use it.

    Examples
    --------
    >>> one = np.ones((1, 1))
    >>> output_cauchy_reference(one, 0 * one, 2 * one, np.array([1.0, 0.0]), np.array([0.0, 1.0]), np.empty((1, 1)))
    array([[2.]])
    """
    n, r = P0.shape[0], c.shape[0] - 1
    P = [P0] + [Ps[(m - 1) * n:m * n] for m in range(1, r + 1)]
    Q = [Qs[m * n:(m + 1) * n] for m in range(r)]
    for k in range(1, r + 1):
        out[(k - 1) * n:k * n] = (sum(c[j] * P[k - j] for j in range(k + 1) if c[j] != 0)
                                  + sum(s[j] * Q[k - j] for j in range(1, k + 1) if s[j] != 0))
    return out


def _output_cauchy_loops(P0, Ps, Qs, c, s, out):
    """The fast form of :func:`output_cauchy_reference`: whole blocks at a time, no temporaries (compiled:
    ``output_cauchy_numba``, used as ``output_cauchy``).

    Parameters and result as :func:`output_cauchy_reference`, zero-coefficient terms skipped alike.
    """
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
    """``y += a x`` on flat arrays (compiled: ``_axpy``)."""
    for e in range(y.size):
        y[e] += a * x[e]


_axpy = _jit(_axpy_loops)
output_cauchy_numba = _jit(_output_cauchy_loops)


# --- jets: the loss's Cauchy sums S_k = sum_{j<=k} <E_j, E_{k-j}> ------------------------------------------

def loss_cauchy_reference(E0: np.ndarray, Es: np.ndarray, out: np.ndarray) -> np.ndarray:
    """The loss's Cauchy sums ``out[k] += sum_{j<=k} <E_j, E_{k-j}>``, ``k = 0..r`` (docs/method.md §6).

    Parameters
    ----------
    E0 : ndarray, shape (n, m)
        The error ``F_0 - Y``.
    Es : ndarray, shape (r n, m)
        ``E_k = F_k`` (``k >= 1``) stacked in row blocks.
    out : ndarray, shape (r+1,)
        float64, added to (so row blocks of samples can be summed one after the other).

    Returns
    -------
    ndarray
        ``out``, accumulated in float64 (``J_k = out[k]/(2N)``).

    Examples
    --------
    >>> loss_cauchy_reference(np.array([[1.0]]), np.array([[2.0]]), np.zeros(2))     # (1 + 2t)²: 1, 4
    array([1., 4.])
    """
    r = out.shape[0] - 1
    E = np.concatenate([E0, Es]).astype(np.float64).reshape(r + 1, -1)
    gram = E @ E.T                                       # gram[j, l] = <E_j, E_l>
    for k in range(r + 1):
        out[k] += sum(gram[j, k - j] for j in range(k + 1))
    return out


def _loss_cauchy_loops(E0, Es, out):
    """The fast form of :func:`loss_cauchy_reference`: per sample and output, no Gram matrix (compiled:
    ``loss_cauchy_numba``; the package uses the reference, as fast or faster with BLAS).

    Parameters and result as :func:`loss_cauchy_reference`.
    """
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
    """``out[i] = λ_max(a² A_i + ab B_i + b² C_i)`` on each leading ``sizes[i]``-square block (method.md §5).

    Parameters
    ----------
    A, B, C : ndarray, shape (L, k, k)
        Symmetric matrices, zero-padded (``majorant.SpectralPencils``).
    sizes : ndarray of int, shape (L,)
    a, b : float
    out : ndarray, shape (L,)

    Returns
    -------
    ndarray
        ``out``. A block with a NaN or ±Inf entry has no eigenvalues: its ``out[i]`` is NaN (LAPACK would read only
        one triangle, and Numba's ``eigvalsh`` raises).

    Examples
    --------
    >>> Z = np.zeros((1, 2, 2))
    >>> lambda_max_reference(np.eye(2)[None], Z, Z, np.array([2]), 2.0, 0.0, np.empty(1))
    array([4.])
    """
    for i, k in enumerate(sizes):
        G = a * a * A[i, :k, :k] + a * b * B[i, :k, :k] + b * b * C[i, :k, :k]
        out[i] = np.linalg.eigvalsh(G)[-1] if np.isfinite(G).all() else np.nan
    return out


def _lambda_max_loops(A, B, C, sizes, a, b, out):
    """The fast form of :func:`lambda_max_reference`: one compiled call for all layers (compiled: ``lambda_max_numba``,
    used as ``lambda_max``).

    Parameters and result as :func:`lambda_max_reference`, a non-finite block giving NaN alike.
    """
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


# --- the tangent space: the Riemannian gradient, Adam's tangent direction, the spectral pullback ----------------
# Small arrays (one layer, or all layers as one flat vector): NumPy's per-call overhead is most of the time
# there, so the compiled forms make one pass per quantity with no temporaries (benchmarks/bench_step_cost.py).
# Every sum in float64, whatever the arrays' dtype.

def tangent_direction_reference(W, G, out):
    """``g = Proj_W(G)`` (the Riemannian gradient, docs/method.md §3) and ``out = -g/||g||_F``.

    Parameters
    ----------
    W : ndarray
        The point (``||W||_F = mu``).
    G : ndarray
        The Euclidean gradient, ``W``'s shape.
    out : ndarray
        ``W``'s shape: ``-g/||g||``, or 0 where ``g = 0``.

    Returns
    -------
    tuple of float
        ``(<W, G>, ||g||_F, ||G||_F)``.

    Notes
    -----
    The projection as ``sphere.project_tangent``: with ``<W, W>`` for ``mu²``, applied twice.

    Examples
    --------
    >>> out = np.empty((1, 2))
    >>> tangent_direction_reference(np.array([[1.0, 0.0]]), np.array([[2.0, 3.0]]), out), out
    ((2.0, 3.0, 3.605551275463989), array([[-0., -1.]]))
    """
    W, G = W.astype(np.float64, copy=False), G.astype(np.float64, copy=False)
    ww, w_g = float(np.vdot(W, W)), float(np.vdot(W, G))
    T = G - (w_g / ww) * W
    g = T - (float(np.vdot(W, T)) / ww) * W
    n = math.sqrt(float(np.vdot(g, g)))
    out[...] = g / -n if n > 0 else 0.0
    return w_g, n, math.sqrt(float(np.vdot(G, G)))


def _tangent_direction_loops(W, G, out):
    """The fast form of :func:`tangent_direction_reference` (compiled: ``tangent_direction_numba``): four passes,
    no temporaries. (``np.float64(x)``, not ``float(x)``: compiled, ``float`` keeps a float32 a float32.)"""
    w, x, o = W.reshape(-1), G.reshape(-1), out.reshape(-1)
    ww = w_g = gg = 0.0
    for k in range(w.size):
        a, b = np.float64(w[k]), np.float64(x[k])
        ww += a * a
        w_g += a * b
        gg += b * b
    c1 = w_g / ww
    w_t = 0.0
    for k in range(w.size):
        a = np.float64(w[k])
        w_t += a * (np.float64(x[k]) - c1 * a)
    c2 = w_t / ww
    nn = 0.0
    for k in range(w.size):
        a = np.float64(w[k])
        g = (np.float64(x[k]) - c1 * a) - c2 * a
        nn += g * g
    n = math.sqrt(nn)
    for k in range(w.size):
        a = np.float64(w[k])
        o[k] = ((np.float64(x[k]) - c1 * a) - c2 * a) / -n if n > 0 else 0.0
    return w_g, n, math.sqrt(gg)


tangent_direction_numba = _jit(_tangent_direction_loops)
tangent_direction = tangent_direction_numba
KERNELS["tangent_direction"] = (tangent_direction_reference, tangent_direction_numba)


def _project_layers(w, x, bounds, ww):
    """``Proj_{W_i}(X_i)`` on every layer segment ``bounds[i]:bounds[i+1]`` of flat vectors, applied twice."""
    starts, sizes = bounds[:-1], np.diff(bounds)
    for _ in range(2):
        x = x - np.repeat(np.add.reduceat(w * x, starts) / ww, sizes) * w
    return x


def sphere_adam_reference(w, grad, m, v, bounds, b1, b2, c1, c2, delta, g_out, m_out, v_out, D_out):
    """One step of Adam's direction on the product of spheres, all layers as flat float64 vectors (docs/beyond.md §7).

    ``g = Proj_W(∇J)``, ``m' = b1 Proj_W(m) + (1 - b1) g``, ``v' = b2 v + (1 - b2) g ⊙ g``,
    ``D = -Proj_W((m'/c1) / (sqrt(v'/c2) + delta sqrt(max v'/c2)))``; each ``Proj`` per layer, twice, with
    ``<W_i, W_i>`` for ``mu_i²`` (``sphere.project_tangent``).

    Parameters
    ----------
    w, grad, m, v : ndarray, shape (P,)
        The weights, the Euclidean gradient, the moments at the previous point.
    bounds : ndarray of int, shape (L + 1,)
        Layer ``i`` is ``bounds[i]:bounds[i+1]``; every layer non-empty.
    b1, b2, c1, c2, delta : float
        The moments' constants, their bias corrections ``1 - b^k``, and ``delta`` relative to ``sqrt(max v̂)``.
    g_out, m_out, v_out, D_out : ndarray, shape (P,)
        ``g``, ``m'``, ``v'``, ``D`` (may not be the inputs).

    Returns
    -------
    float
        ``<g, D>`` (negative for a descent direction).
    """
    ww = np.add.reduceat(w * w, bounds[:-1])
    g_out[...] = _project_layers(w, grad, bounds, ww)
    m_out[...] = b1 * _project_layers(w, m, bounds, ww) + (1 - b1) * g_out
    v_out[...] = b2 * v + (1 - b2) * g_out * g_out
    scale = max(math.sqrt(v_out.max() / c2), np.finfo(np.float64).tiny)
    D_out[...] = _project_layers(w, -(m_out / c1) / (np.sqrt(v_out / c2) + delta * scale), bounds, ww)
    return float(np.dot(g_out, D_out))


def _project_layers_loops(w, x, bounds, out):
    """``out = Proj_W(x)`` per layer, twice (``_project_layers``); ``out`` may be ``x``."""
    for i in range(bounds.shape[0] - 1):
        ww = w_x = 0.0
        for k in range(bounds[i], bounds[i + 1]):
            ww += w[k] * w[k]
            w_x += w[k] * x[k]
        c = w_x / ww
        w_t = 0.0
        for k in range(bounds[i], bounds[i + 1]):
            out[k] = x[k] - c * w[k]
            w_t += w[k] * out[k]
        c = w_t / ww
        for k in range(bounds[i], bounds[i + 1]):
            out[k] = out[k] - c * w[k]
    return out


_project_layers_compiled = _jit(_project_layers_loops)


def _sphere_adam_loops(w, grad, m, v, bounds, b1, b2, c1, c2, delta, g_out, m_out, v_out, D_out):
    """The fast form of :func:`sphere_adam_reference` (compiled: ``sphere_adam_numba``): a few passes over the flat
    vectors, no temporaries."""
    _project_layers_compiled(w, grad, bounds, g_out)
    _project_layers_compiled(w, m, bounds, m_out)
    v_max = 0.0
    for k in range(w.size):
        g = g_out[k]
        m_out[k] = b1 * m_out[k] + (1 - b1) * g
        v_out[k] = b2 * v[k] + (1 - b2) * g * g
        v_max = max(v_max, v_out[k])
    scale = max(math.sqrt(v_max / c2), 2.2250738585072014e-308)          # np.finfo(float64).tiny
    for k in range(w.size):
        D_out[k] = -(m_out[k] / c1) / (math.sqrt(v_out[k] / c2) + delta * scale)
    _project_layers_compiled(w, D_out, bounds, D_out)
    g_d = 0.0
    for k in range(w.size):
        g_d += g_out[k] * D_out[k]
    return g_d


sphere_adam_numba = _jit(_sphere_adam_loops)
sphere_adam = sphere_adam_numba
KERNELS["sphere_adam"] = (sphere_adam_reference, sphere_adam_numba)


def spectral_pullback_reference(W, G, u, v, sigma, mu, out):
    """``out = (mu/sigma)(G - (<G, W>/sigma) u v^T)``: ``∇_W J`` from ``G = ∇_E J``, ``E = mu W/sigma_1(W)``
    (docs/beyond.md §8, ``spectral.SpectralNormalisation.pullback``).

    Parameters
    ----------
    W, G : ndarray, shape (m, n)
    u, v : ndarray, shape (m,), (n,)
        ``W``'s top singular pair (float64).
    sigma, mu : float
    out : ndarray, shape (m, n)
        In ``G``'s dtype.

    Returns
    -------
    ndarray
        ``out``.
    """
    along = float(np.vdot(G.astype(np.float64), W.astype(np.float64))) / sigma
    out[...] = (mu / sigma) * (G - along * np.outer(u, v))
    return out


def _spectral_pullback_loops(W, G, u, v, sigma, mu, out):
    """The fast form of :func:`spectral_pullback_reference` (compiled: ``spectral_pullback_numba``)."""
    g_w = 0.0
    for r in range(W.shape[0]):
        for c in range(W.shape[1]):
            g_w += np.float64(G[r, c]) * np.float64(W[r, c])
    along, scale = g_w / sigma, mu / sigma
    for r in range(W.shape[0]):
        for c in range(W.shape[1]):
            out[r, c] = scale * (np.float64(G[r, c]) - along * u[r] * v[c])
    return out


spectral_pullback_numba = _jit(_spectral_pullback_loops)
spectral_pullback = spectral_pullback_numba
KERNELS["spectral_pullback"] = (spectral_pullback_reference, spectral_pullback_numba)


# --- the top eigenpair of a small Gram matrix, from a start close to it (spectral layers' sigma_1) ----------------

WARM_RESIDUAL = 1e-10          # relative residual at which the iteration stops
WARM_MARGIN = 1e-12            # the certificate: no eigenvalue above lam (1 + WARM_MARGIN)
# The solve's shift sits this far above lam: once lam equals lambda_max to the last bit (cubic convergence gets
# there), G - lam I is exactly singular, while G - lam (1 + 1e-13) I is not and still converges in one step.
WARM_SHIFT = 1e-13


def top_eigen_warm_reference(G, x, max_iter, out):
    """Rayleigh-quotient iteration on the symmetric positive semi-definite ``G`` from ``x``, with a certificate.

    ``lam = x^T G x / x^T x`` (the Rayleigh quotient: never above ``lambda_max``),
    ``x <- (G - lam (1 + 1e-13) I)^{-1} x``, normalised, until the residual ``||G x - lam x|| <= 1e-10 lam ||x||`` (cubic convergence near an
    eigenvector); then the Cholesky factorisation of ``lam (1 + 1e-12) I - G`` certifies that no eigenvalue
    lies above ``lam (1 + 1e-12)``, which a vector converged to another eigenvector fails.

    Parameters
    ----------
    G : ndarray, shape (k, k)
    x : ndarray, shape (k,)
        The start, not zero (e.g. the top vector of a nearby matrix). It is not normalised first, so a vector
        this returned gives the same ``lam`` and ``out`` again, to the bit.
    max_iter : int
    out : ndarray, shape (k,)
        The vector whose Rayleigh quotient ``lam`` is (unit to rounding).

    Returns
    -------
    tuple
        ``(lam, certified)``: ``lambda_max(G) / (1 + 1e-12) <= lam <= lambda_max(G)`` when ``certified``;
        ``certified`` is false when the iteration did not converge in ``max_iter`` steps or the certificate
        failed (then ``lam`` means nothing).

    Examples
    --------
    >>> out = np.empty(2)
    >>> top_eigen_warm_reference(np.array([[2.0, 0.1], [0.1, 1.0]]), np.array([1.0, 0.2]), 10, out)[1]
    True
    >>> top_eigen_warm_reference(np.diag([2.0, 1.0]), np.array([0.0, 1.0]), 10, out)      # the wrong eigenvector
    (1.0, False)
    """
    out[...] = x
    for _ in range(max_iter):
        y = G @ out
        xx = float(out @ out)
        lam = float(out @ y) / xx
        if np.linalg.norm(y - lam * out) <= WARM_RESIDUAL * lam * np.sqrt(xx):
            try:
                np.linalg.cholesky(lam * (1 + WARM_MARGIN) * np.eye(len(x)) - G)
            except np.linalg.LinAlgError:
                return lam, False
            return lam, True
        try:
            z = np.linalg.solve(G - lam * (1 + WARM_SHIFT) * np.eye(len(x)), out)
        except np.linalg.LinAlgError:
            return 0.0, False
        out[...] = z / np.linalg.norm(z)
    return 0.0, False


def _top_eigen_warm_loops(G, x, max_iter, out):
    """The fast form of :func:`top_eigen_warm_reference` (compiled: ``top_eigen_warm_numba``): its own LU with
    partial pivoting for the shifted solves (an exactly singular pivot ends the iteration uncertified)."""
    k = G.shape[0]
    y = np.empty(k)
    A = np.empty((k, k))
    for a in range(k):
        out[a] = x[a]
    for _ in range(max_iter):
        xy = xx = 0.0
        for a in range(k):
            s = 0.0
            for b in range(k):
                s += G[a, b] * out[b]
            y[a] = s
            xy += out[a] * s
            xx += out[a] * out[a]
        lam = xy / xx
        r = 0.0
        for a in range(k):
            r += (y[a] - lam * out[a]) ** 2
        if math.sqrt(r) <= WARM_RESIDUAL * lam * math.sqrt(xx):
            return lam, _cholesky_succeeds(G, lam * (1 + WARM_MARGIN))
        for a in range(k):
            for b in range(k):
                A[a, b] = G[a, b] - (lam * (1 + WARM_SHIFT) if a == b else 0.0)
        if not _solve_in_place(A, out):
            return 0.0, False
        norm = 0.0
        for a in range(k):
            norm += out[a] * out[a]
        norm = math.sqrt(norm)
        for a in range(k):
            out[a] /= norm
    return 0.0, False


def _solve_in_place_loops(A, b):
    """``b <- A^{-1} b`` by Gaussian elimination with partial pivoting (``A`` overwritten); false if a pivot is 0."""
    k = A.shape[0]
    for j in range(k):
        p = j
        for i in range(j + 1, k):
            if abs(A[i, j]) > abs(A[p, j]):
                p = i
        if A[p, j] == 0.0:
            return False
        if p != j:
            for c in range(k):
                A[j, c], A[p, c] = A[p, c], A[j, c]
            b[j], b[p] = b[p], b[j]
        for i in range(j + 1, k):
            f = A[i, j] / A[j, j]
            for c in range(j, k):
                A[i, c] -= f * A[j, c]
            b[i] -= f * b[j]
    for j in range(k - 1, -1, -1):
        s = b[j]
        for c in range(j + 1, k):
            s -= A[j, c] * b[c]
        b[j] = s / A[j, j]
    return True


def _cholesky_succeeds_loops(G, shift):
    """Whether ``shift I - G`` has a Cholesky factorisation (is positive definite)."""
    k = G.shape[0]
    C = np.zeros((k, k))
    for j in range(k):
        d = shift - G[j, j]
        for p in range(j):
            d -= C[j, p] * C[j, p]
        if not d > 0:
            return False
        C[j, j] = math.sqrt(d)
        for i in range(j + 1, k):
            s = -G[i, j]
            for p in range(j):
                s -= C[i, p] * C[j, p]
            C[i, j] = s / C[j, j]
    return True


_solve_in_place = _jit(_solve_in_place_loops)
_cholesky_succeeds = _jit(_cholesky_succeeds_loops)
top_eigen_warm_numba = _jit(_top_eigen_warm_loops)
top_eigen_warm = top_eigen_warm_numba
KERNELS["top_eigen_warm"] = (top_eigen_warm_reference, top_eigen_warm_numba)
