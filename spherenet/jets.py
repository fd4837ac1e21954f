"""Taylor-mode jets of the loss along the update curve (METHOD.md §6).

A jet of order ``r`` of ``u(t)`` is the array of normalised coefficients ``u_k = u^(k)(0)/k!``, ``k = 0..r``,
so ``sum_k u_k t^k`` is the Taylor model itself. Products of jets are Cauchy sums
``(ab)_k = sum_{j<=k} a_j b_{k-j}``. Pushing the jet of the update curve

    Γ_i(t) = W_i cos t + mu_i V_i sin t,        Γ_{i,k} = cos_k W_i + sin_k mu_i V_i

through the network gives the jet of the output ``F_k`` and of the loss ``φ(t) = J(Γ(t))``:
``J_0 = φ(0)``, ``J_1 = -beta``, ``2 J_2 = kappa``.

Stacked layout: the coefficients ``k = 1..r`` of an ``(n, d)`` quantity are stored as one ``(r n, d)`` array,
coefficient ``k`` in row block ``k-1``, so each layer costs two matrix products for all orders at once (the W/V
split, ``layer_jet``); coefficient 0 is the forward pass's own array (never recomputed). The first layer's jet is a
combination of two fixed arrays, so the second layer's Cauchy sums fold into its weights
(``second_layer_jet``). Samples are independent, so the jet runs over blocks of ``BLOCK`` samples whose
working arrays stay in cache (``CurveJet``), the blocks' parts on ``spherenet.rows``.

ReLU on a jet (tie rule shared with the backward pass, ``kernels.relu_mask``): the activation pattern is
fixed by ``Z_0``, ``H_k = [Z_0 > 0] ⊙ Z_k``; a unit with ``Z_0 == 0`` is inactive. The jet is exact for
``|t|`` below the first angle at which some unit changes sign (``spherenet.taylor.along_curve`` shows where).
"""
from __future__ import annotations

from math import factorial

import numpy as np

from . import kernels, rows
from ._checks import as_float_matrix, check_data, check_weights, finite_float, positive_int
from .network import ROW_BLOCK, ForwardCache, _block_buffers, _forward_cache

# --- 1-D jet arithmetic --------------------------------------------------------------------------------


def _factorials(n: int) -> np.ndarray:
    return np.array([float(factorial(k)) for k in range(n)])


def to_derivatives(coeffs) -> np.ndarray:
    """Plain derivatives ``u^(k)(0) = k! u_k`` from normalised coefficients ``u_k``: ``(r+1,) -> (r+1,)``."""
    coeffs = np.asarray(coeffs, dtype=float)
    return coeffs * _factorials(coeffs.shape[0])


def from_derivatives(derivs) -> np.ndarray:
    """Normalised coefficients ``u_k = u^(k)(0)/k!`` from plain derivatives: ``(r+1,) -> (r+1,)``."""
    derivs = np.asarray(derivs, dtype=float)
    return derivs / _factorials(derivs.shape[0])


def cauchy(a, b) -> np.ndarray:
    """Jet of a product: ``(ab)_k = sum_{j<=k} a_j b_{k-j}``, ``k = 0..r`` with ``r+1 = min(len(a), len(b))``."""
    a, b = np.asarray(a), np.asarray(b)
    n = min(a.shape[0], b.shape[0])
    return np.array([sum(a[j] * b[k - j] for j in range(k + 1)) for k in range(n)])


def curve_coefficients(order: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(cos_k, sin_k)``, ``k = 0..order``: the jets of ``cos t`` and ``sin t`` at 0.

    ``cos_k = (-1)^(k/2)/k!`` for even ``k`` (else 0), ``sin_k = (-1)^((k-1)/2)/k!`` for odd ``k`` (else 0).
    """
    k = np.arange(order + 1)
    inv_fact = 1.0 / _factorials(order + 1)
    cos = np.where(k % 2 == 0, (-1.0) ** (k // 2) * inv_fact, 0.0)
    sin = np.where(k % 2 == 1, (-1.0) ** ((k - 1) // 2) * inv_fact, 0.0)
    return cos.astype(dtype), sin.astype(dtype)


# --- the network jet along Γ(t) ------------------------------------------------------------------------


def relu_jet(Z0: np.ndarray, Zs: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``H_k = [Z_0 > 0] ⊙ Z_k`` for ``k >= 1``: ``Zs, out: (r N, d)`` stacked, ``Z0: (N, d)``.

    (``H_0 = max(Z_0, 0)`` is the forward pass's ``H``.) ``layer_jet`` applies it in place.
    """
    return kernels.relu_mask(Zs, Z0, out)


def first_layer_jet(Z0: np.ndarray, XV: np.ndarray, cos, sin, out: np.ndarray) -> np.ndarray:
    """``Z_{1,k} = X @ Γ_{1,k}.T = cos_k Z_{1,0} + sin_k mu_1 X @ V_1.T`` for ``k = 1..r`` into ``out: (r n, d_1)``.

    ``X`` is fixed, so one product ``XV = mu_1 X @ V_1.T: (n, d_1)`` serves every order. ``cos_k = 0`` for odd
    ``k`` and ``sin_k = 0`` for even ``k``, so each coefficient is a single scaled copy.
    """
    n = Z0.shape[0]
    for k in range(1, cos.shape[0]):
        rows = out[(k - 1) * n:k * n]
        np.multiply(XV, sin[k], out=rows) if k % 2 else np.multiply(Z0, cos[k], out=rows)
    return out


def layer_jet(H: np.ndarray, Z0_below: np.ndarray, P0: np.ndarray, W: np.ndarray, muV: np.ndarray, c, s,
              out: np.ndarray, work: np.ndarray) -> np.ndarray:
    """``Z_{i,k} = sum_{j<=k} H_{i-1,k-j} Γ_{i,j}^T = sum_j c_j P_{k-j} + s_j Q_{k-j}``, ``k = 1..r``.

    The products come first, ``P_m = H_{i-1,m} W_i^T`` (``m = 1..r``) and ``Q_m = H_{i-1,m} mu_i V_i^T``
    (``m = 0..r-1``; ``s_0 = 0``), two for all orders at once; the Cauchy sums follow on the output side
    (``kernels.output_cauchy``). ``H: ((r+1) n, d_{i-1})``: ``H_{i-1,0}`` in row block 0, the layer below's
    ``Z_{i-1,1..r}`` after it, masked here in place, ``H_{i-1,k} = [Z_{i-1,0} > 0] ⊙ Z_{i-1,k}`` (``Z0_below``:
    ``Z_{i-1,0}``, or its ReLU: only the sign is read). ``P0 = Z_{i,0}`` from the forward pass.
    ``out: (r n, d_i)``; ``work``: flat room for ``2 r n d_i`` numbers.
    """
    n, d = Z0_below.shape[0], W.shape[0]
    rn = H.shape[0] - n
    relu_jet(Z0_below, H[n:], H[n:])
    Ps = np.matmul(H[n:], W.T, out=work[:rn * d].reshape(rn, d))
    Qs = np.matmul(H[:rn], muV.T, out=work[rn * d:2 * rn * d].reshape(rn, d))
    return kernels.output_cauchy(P0, Ps, Qs, c, s, out)


def second_layer_matrices(W: np.ndarray, V: np.ndarray, mu: float, first, second) -> np.ndarray:
    """``[M_k N_k]: (r, d_2, 2 d_1)``, ``k = 1..r``: layer 2's jet as two products per order (``second_layer_jet``).

    ``first = (c, s)``, ``second = (c', s')``: the curve coefficients of layers 1 and 2;
    ``M_k = (c' c)_k W_2 + (s' c)_k mu_2 V_2`` and ``N_k = (c' s)_k W_2 + (s' s)_k mu_2 V_2`` (Cauchy products
    ``jets.cauchy`` of the 1-D jets), in ``W``'s dtype.
    """
    (c, s), (c2, s2) = first, second
    cc, sc, cs, ss = (cauchy(np.asarray(a, float), np.asarray(b, float))
                      for a, b in ((c2, c), (s2, c), (c2, s), (s2, s)))
    W64, V64 = W.astype(float), float(mu) * V.astype(float)
    MN = np.empty((len(cc) - 1, W.shape[0], 2 * W.shape[1]), W.dtype)
    for k in range(1, len(cc)):
        MN[k - 1] = np.concatenate([cc[k] * W64 + sc[k] * V64, cs[k] * W64 + ss[k] * V64], axis=1)
    return MN


def second_layer_jet(H0: np.ndarray, Z0: np.ndarray, XV: np.ndarray, MN: np.ndarray, out: np.ndarray,
                     work: np.ndarray | None = None) -> np.ndarray:
    """Layer 2's jet ``Z_{2,k} = [H_{1,0}  D_1 ⊙ P] @ [M_k N_k]^T``, ``k = 1..r``, without Cauchy sums.

    The first layer's jet is two fixed arrays for every order, ``Z_{1,k} = c_k Z_{1,0} + s_k P`` with
    ``P = XV = mu_1 X V_1^T`` and ``(c, s)`` its curve coefficients, and the ReLU mask ``D_1 = [Z_{1,0} > 0]``
    is fixed too, so ``H_{1,k} = c_k H_{1,0} + s_k D_1 ⊙ P`` and the sums of ``layer_jet`` fold into
    the weights: ``sum_j (c'_j H_{1,k-j} W_2^T + s'_j H_{1,k-j} mu_2 V_2^T) = H_{1,0} M_k^T + (D_1 ⊙ P) N_k^T``
    (``second_layer_matrices``). ``H0 = H_{1,0}``, ``Z0 = Z_{1,0}`` (only its sign is read), ``XV``: ``(n, d_1)``;
    ``out: (r n, d_2)``, order ``k`` in row block ``k-1``; ``work``: flat room for ``3 n d_1`` numbers.
    """
    n, d = H0.shape
    work = np.empty(3 * n * d, H0.dtype) if work is None else work
    HP = work[:2 * n * d].reshape(n, 2 * d)
    HP[:, :d], HP[:, d:] = H0, kernels.relu_mask(XV, Z0, work[2 * n * d:3 * n * d].reshape(n, d))
    for k in range(MN.shape[0]):
        np.matmul(HP, MN[k].T, out=out[k * n:(k + 1) * n])
    return out


# Samples are independent, so the jet is computed on blocks of this many samples: the working arrays
# (r n d numbers per layer) then stay in cache instead of streaming r times the data through memory.
BLOCK = 2048

# Highest jet order accepted: 1/k! < 1e-32 past it, so further coefficients carry no information.
MAX_ORDER = 30


def paper_coefficients(V, order: int, dtype) -> list:
    """Per layer ``(c_i, s_i)``: the jets of ``cos t`` and ``sin t``, or ``(1, 0, 0, ..)`` and 0 for a layer
    with ``V_i = 0``, which stays put (``Γ_i(t) = W_i``)."""
    cos, sin = curve_coefficients(order, dtype)
    fixed = (np.eye(1, order + 1, dtype=dtype)[0], np.zeros(order + 1, dtype))
    return [(cos, sin) if D.any() else fixed for D in V]


class CurveJet:
    """The jet of a curve ``Γ_i(t) = c_i(t) W_i + s_i(t) mu_i V_i`` and what every block of samples reuses.

    ``coeffs[i] = (c_i, s_i)``: the jets of layer i's two scalar functions, in ``X``'s dtype
    (``paper_coefficients`` for Algorithm 1's curve; ``spherenet.beyond.geodesic`` passes its own).
    Kept: ``muV[i] = mu_i V_i`` and ``MN``, layer 2's matrices (``second_layer_matrices``); per block of
    samples ``XV = mu_1 X V_1^T`` is one product.
    """

    def __init__(self, weights, V, radii, X, coeffs):
        if any(s[0] != 0 or c[0] != 1 for c, s in coeffs):
            raise ValueError("every curve passes through the weights at t = 0: c_i(0) = 1, s_i(0) = 0")
        self.weights, self.coeffs, self.X, self.V1, self.mu1 = weights, coeffs, X, V[0], X.dtype.type(radii[0])
        self.order = coeffs[0][0].shape[0] - 1
        self.muV = [D * W.dtype.type(mu) for W, D, mu in zip(weights, V, radii)]
        if len(weights) > 1:
            self.MN = second_layer_matrices(weights[1], V[1], radii[1], coeffs[0], coeffs[1])

    def room(self, n: int) -> list:
        """Preallocated room for one block of up to ``n`` samples: each layer's jet (``(r+1) n`` rows: a layer's
        input ``H_0`` goes in front of the layer below's ``Z_1..Z_r``), the block's ``XV``, then the work room
        of ``second_layer_jet`` and ``layer_jet``, one after the other."""
        r, dtype, W = self.order, self.X.dtype, self.weights
        work = max([3 * W[0].shape[0]] + [2 * r * Wi.shape[0] for Wi in W[2:]])
        return [np.empty((r + 1) * n * Wi.shape[0], dtype) for Wi in W] + [np.empty((n, W[0].shape[0]), dtype),
                                                                             np.empty(n * work, dtype)]

    def block(self, cache, rows: slice, room: list) -> np.ndarray:
        """``F_1..F_r`` for the samples ``rows``: ``(r n, d_L)`` stacked (a view into ``room``)."""
        r, n, W = self.order, rows.stop - rows.start, self.weights

        def jet(i):                              # layer i's jet: H_0 of the layer above, then Z_1..Z_r
            return room[i][:(r + 1) * n * W[i].shape[0]].reshape((r + 1) * n, W[i].shape[0])

        XV = kernels.matmul_nt(self.X[rows], self.V1, room[-2][:n])
        XV *= self.mu1
        if len(W) == 1:
            return first_layer_jet(cache.Z[0][rows], XV, *self.coeffs[0], jet(0)[n:])
        Zs = second_layer_jet(cache.H[1][rows], cache.Z[0][rows], XV, self.MN, jet(1)[n:], room[-1])
        for i in range(2, len(W)):
            H = jet(i - 1)
            H[:n] = cache.H[i][rows]
            Zs = layer_jet(H, cache.Z[i - 1][rows], cache.Z[i][rows], W[i], self.muV[i], *self.coeffs[i],
                           jet(i)[n:], room[-1])
        return Zs

    def output(self, cache) -> np.ndarray:
        """Coefficients ``F_0..F_r`` of the network output along the curve: ``(r+1, N, d_L)``."""
        F = np.empty((self.order + 1,) + cache.F.shape, cache.F.dtype)
        F[0] = cache.F

        def part(_, rows_):
            room = self.room(min(rows_.stop - rows_.start, BLOCK))
            for block in rows.blocks(rows_, BLOCK):
                F[1:, block] = self.block(cache, block, room).reshape(self.order, block.stop - block.start, -1)

        rows.map_parts(part, cache.F.shape[0])
        return F

    def loss(self, cache, Y) -> np.ndarray:
        """``J_0..J_r`` of ``φ(t) = J(Γ(t))``: per block the output jet ``F_1..F_r``, the errors
        ``E_0 = F_0 - Y``, ``E_k = F_k``, and the Cauchy sums ``S_k += sum_{j<=k} <E_j, E_{k-j}>``
        (``kernels.loss_cauchy``, float64); then ``J_k = S_k/(2N)``, the parts' sums added in row order."""
        N = Y.shape[0]

        def part(_, rows_):
            S = np.zeros(self.order + 1)
            room = self.room(min(rows_.stop - rows_.start, BLOCK))
            E0 = np.empty((min(rows_.stop - rows_.start, BLOCK), Y.shape[1]), cache.F.dtype)
            for block in rows.blocks(rows_, BLOCK):
                e0 = np.subtract(cache.F[block], Y[block], out=E0[:block.stop - block.start])
                kernels.loss_cauchy(e0, self.block(cache, block, room), S)
            return S

        return rows.add_in_order(rows.map_parts(part, N)) / (2 * N)


def output_jet_from(cache: ForwardCache, weights, V, radii, X, order: int) -> np.ndarray:
    """Coefficients ``F_0..F_r`` of the network output along Γ(t): ``(r+1, N, d_L)`` (unchecked).

    ``F_0`` is ``cache.F``: order 0 is the forward pass, reused as is.
    """
    if order == 0:
        return cache.F[None].copy()
    return CurveJet(weights, V, radii, X, paper_coefficients(V, order, X.dtype)).output(cache)


def loss_jet_from(it_or_cache, weights, V, radii, X, Y, order: int) -> np.ndarray:
    """``J_0..J_order`` of ``φ(t) = J(Γ(t))`` from a forward cache at ``weights`` (unchecked fast path).

    ``it_or_cache``: a ``steps.Iterate`` (its ``cache`` is used) or a ``ForwardCache`` of ``weights`` on ``X``.
    """
    cache = getattr(it_or_cache, "cache", it_or_cache)
    if order == 0:
        S = kernels.loss_cauchy(cache.F - Y, np.empty((0, Y.shape[1]), X.dtype), np.zeros(1))
        return S / (2 * X.shape[0])
    return CurveJet(weights, V, radii, X, paper_coefficients(V, order, X.dtype)).loss(cache, Y)


def loss_jet2_adjoint(cache: ForwardCache, weights, V, radii, X, alpha: float, ws) -> np.ndarray:
    """``J_0, J_1, J_2`` of ``φ(t) = J(Γ(t))`` from the first-order jet and the backward pass's adjoints.

    The same numbers as ``loss_jet_from(..., order=2)`` (to rounding), at lower cost: Algorithm 1 needs only
    ``J_2 = (2<E_0, F_2> + <F_1, F_1>)/(2N)``, and ``<E_0, F_2>/N`` follows from the adjoints ``dZ_i`` of the
    backward pass (``cache.dZ``) without propagating the second-order coefficients. ``F_2`` is linear in the
    second-order sources ``S_i = Z_{i,2} - H_{i-1,2} W_i^T = mu_i H_{i-1,1} V_i^T - Z_{i,0}/2``, so

        <E_0, F_2>/N = sum_i <dZ_i, S_i> = sum_{i>=2} mu_i <dZ_i^T H_{i-1,1}, V_i> - alpha/2,

    using ``<dZ_i, Z_{i,0}> = <∇_i J, W_i>`` (sum over the moving layers: ``alpha``; a layer with ``V_i = 0``
    stays put and has no source) and ``H_{0,1} = 0`` (``X`` is fixed). The first-order
    jet is ``Z_{1,1} = mu_1 X V_1^T``, ``Z_{i,1} = H_{i-1,1} W_i^T + mu_i H_{i-1,0} V_i^T``, ``H_{i,1} = [Z_{i,0} > 0] ⊙ Z_{i,1}``:
    two products per layer, plus one per layer for the adjoint term. ``ws``: a ``network.Workspace``.
    """
    N, dt = X.shape[0], X.dtype
    # The two shared block buffers of each part (network.ROW_BLOCK rows of the widest layer), whatever the depth
    # and N: this pass needs one layer at a time, and H_{i-1,1} is spent once Z_{i,1} has its first product.
    _block_buffers(ws, weights, N, dt)

    def block(p, r):
        n = r.stop - r.start
        buffers = [f"block.a{p}", f"block.b{p}"]
        Z1 = kernels.matmul_nt(X[r], V[0], ws.scratch(buffers[0], (n, V[0].shape[0]), dt))
        Z1 *= dt.type(radii[0])
        seconds = []
        for i in range(1, len(weights)):
            H1 = kernels.relu_mask(Z1, cache.Z[i - 1][r], Z1)
            T = cache.dZ[i][r].T @ H1
            seconds.append(float(radii[i]) * float(np.vdot(T, V[i])))
            buffers.reverse()
            Z1 = kernels.matmul_nt(H1, weights[i], ws.scratch(buffers[0], (n, weights[i].shape[0]), dt))
            HV = kernels.matmul_nt(cache.H[i][r], V[i], ws.scratch(buffers[1], Z1.shape, dt))   # H1's room
            HV *= dt.type(radii[i])
            Z1 += HV
        F1 = Z1.astype(np.float64, copy=False)
        return np.array(seconds + [float(np.vdot(cache.dZ[-1][r], F1)), float(np.vdot(F1, F1))])

    def part(p, r):                              # the blocks' sums, in row order
        return rows.add_in_order([block(p, b) for b in rows.blocks(r, ROW_BLOCK)])

    total = rows.add_in_order(rows.map_parts(part, N))     # per layer mu_i <dZ_i^T H_{i-1,1}, V_i>, J_1, <F_1, F_1>
    second = -alpha / 2
    for term in total[:-2]:
        second += term
    J0 = float(np.vdot(cache.dZ[-1], cache.dZ[-1])) * N / 2
    return np.array([J0, total[-2], second + total[-1] / (2 * N)])


# --- checked entry points ------------------------------------------------------------------------------


def _checked(weights, directions, radii, X, Y, order):
    weights = check_weights(weights)
    dtype = weights[0].dtype
    if isinstance(directions, np.ndarray) or not hasattr(directions, "__len__"):
        raise TypeError("directions must be a list of 2-D arrays, one per layer")
    if len(directions) != len(weights):
        raise ValueError(f"directions has {len(directions)} entries for {len(weights)} weight matrices")
    V = [as_float_matrix(f"directions[{i}]", D, dtype=dtype) for i, D in enumerate(directions)]
    for i, (W, D) in enumerate(zip(weights, V)):
        if D.shape != W.shape:
            raise ValueError(f"directions[{i}] has shape {D.shape}, weights[{i}] has {W.shape}")
    if isinstance(radii, (str, bytes)) or np.ndim(radii) != 1 or len(radii) != len(weights):
        raise ValueError(f"radii must be a sequence of {len(weights)} positive numbers, got {radii!r}")
    radii = np.array([finite_float(f"radii[{i}]", float(m) if isinstance(m, np.floating) else m,
                                   positive=True) for i, m in enumerate(radii)])
    if Y is None:
        X = as_float_matrix("X", X, weights[0].shape[1], dtype)
    else:
        X, Y = check_data(X, Y, weights[0].shape[1], weights[-1].shape[0], dtype)
    order = positive_int("order", order, minimum=0)
    if order > MAX_ORDER:
        raise ValueError(f"order must be <= {MAX_ORDER} (1/k! is below 1e-32 beyond it), got {order}")
    return weights, V, radii, X, Y, order


def loss_jet(weights, directions, radii, X, Y, order: int) -> np.ndarray:
    """Coefficients ``J_k = φ^(k)(0)/k!``, ``k = 0..order``, of ``φ(t) = J(Γ(t))``: ``ndarray (order+1,)``.

    ``Γ_i(t) = W_i cos t + mu_i V_i sin t`` with ``weights[i] = W_i: (d_i, d_{i-1})``,
    ``directions[i] = V_i`` (same shape), ``radii[i] = mu_i > 0``; ``X: (N, d_0)``, ``Y: (N, d_L)``.
    Computed in the weights' dtype (float32 or float64), the loss coefficients accumulated in float64.
    For the direction of steepest descent ``J_1 = -beta`` and ``2 J_2 = kappa``.
    """
    weights, V, radii, X, Y, order = _checked(weights, directions, radii, X, Y, order)
    return loss_jet_from(_forward_cache(weights, X), weights, V, radii, X, Y, order)


def network_jet(weights, directions, radii, X, order: int) -> np.ndarray:
    """Coefficients ``F_k``, ``k = 0..order``, of the output ``f(X; Γ(t))``: ``ndarray (order+1, N, d_L)``."""
    weights, V, radii, X, _, order = _checked(weights, directions, radii, X, None, order)
    return output_jet_from(_forward_cache(weights, X), weights, V, radii, X, order)
