"""Taylor-mode jets of the loss along the update curve (docs/method.md §6).

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

import functools
from math import factorial

import numpy as np

from . import kernels, rows, sphere
from ._checks import as_float_matrix, check_data, check_radii, check_weights, positive_int
from .network import ROW_BLOCK, ForwardCache, _block_adjoints, _block_buffers, _forward_cache

# --- 1-D jet arithmetic --------------------------------------------------------------------------------


def _factorials(n: int) -> np.ndarray:
    return np.array([float(factorial(k)) for k in range(n)])


def to_derivatives(coeffs) -> np.ndarray:
    """Plain derivatives ``u^(k)(0) = k! u_k`` from normalised coefficients ``u_k`` (docs/method.md §6).

    Parameters
    ----------
    coeffs : array_like, shape (r+1,)

    Returns
    -------
    ndarray, shape (r+1,)

    Examples
    --------
    >>> to_derivatives([1.0, 1.0, 0.5])               # exp(t): every derivative is 1
    array([1., 1., 1.])
    """
    coeffs = np.asarray(coeffs, dtype=float)
    return coeffs * _factorials(coeffs.shape[0])


def from_derivatives(derivs) -> np.ndarray:
    """Normalised coefficients ``u_k = u^(k)(0)/k!`` from plain derivatives (docs/method.md §6).

    Parameters
    ----------
    derivs : array_like, shape (r+1,)

    Returns
    -------
    ndarray, shape (r+1,)

    Examples
    --------
    >>> from_derivatives([1.0, 2.0, 6.0])
    array([1., 2., 3.])
    """
    derivs = np.asarray(derivs, dtype=float)
    return derivs / _factorials(derivs.shape[0])


def cauchy(a, b) -> np.ndarray:
    """Jet of a product: ``(ab)_k = sum_{j<=k} a_j b_{k-j}`` (docs/method.md §6).

    Parameters
    ----------
    a, b : array_like
        Jets (first axis: the order; further axes are carried along).

    Returns
    -------
    ndarray
        ``(ab)_k`` for ``k = 0..r``, ``r+1 = min(len(a), len(b))``.

    Examples
    --------
    >>> cauchy([1.0, 1.0, 0.0], [1.0, 1.0, 0.0])      # (1 + t)² = 1 + 2t + t²
    array([1., 2., 1.])
    """
    a, b = np.asarray(a), np.asarray(b)
    n = min(a.shape[0], b.shape[0])
    shape = np.broadcast_shapes(a.shape[1:], b.shape[1:])
    a, b = (u.reshape(u.shape[:1] + (1,) * (len(shape) + 1 - u.ndim) + u.shape[1:]) for u in (a, b))
    out = np.zeros((n,) + shape, np.result_type(a, b))
    for j in range(n):                       # coefficient k adds its terms in the order j = 0, 1, .., k
        out[j:] += a[j] * b[:n - j]
    return out


def curve_coefficients(order: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(cos_k, sin_k)``, ``k = 0..order``: the jets of ``cos t`` and ``sin t`` at 0 (docs/method.md §6).

    Parameters
    ----------
    order : int
    dtype : numpy dtype, optional
        Of the result (computed in float64).

    Returns
    -------
    cos, sin : ndarray, shape (order+1,)
        ``cos_k = (-1)^(k/2)/k!`` for even ``k`` (else 0), ``sin_k = (-1)^((k-1)/2)/k!`` for odd ``k`` (else 0).

    Examples
    --------
    >>> curve_coefficients(3)
    (array([ 1. ,  0. , -0.5,  0. ]), array([ 0.        ,  1.        ,  0.        , -0.16666667]))
    """
    cos, sin = _cos_sin(order)
    return cos.astype(dtype), sin.astype(dtype)


@functools.lru_cache(maxsize=None)
def _cos_sin(order: int) -> tuple[np.ndarray, np.ndarray]:
    k = np.arange(order + 1)
    inv_fact = 1.0 / _factorials(order + 1)
    cos = np.where(k % 2 == 0, (-1.0) ** (k // 2) * inv_fact, 0.0)
    sin = np.where(k % 2 == 1, (-1.0) ** ((k - 1) // 2) * inv_fact, 0.0)
    cos.flags.writeable = sin.flags.writeable = False
    return cos, sin


# --- the readable form: one layer at a time, every coefficient its own array -----------------------------
#
# These are the formulas of docs/method.md §6 written out with plain NumPy. The fast form below computes the
# same numbers (tested in tests/test_jets.py) with every order stacked into one array, blocks of samples and
# reused buffers.


def plain_linear_jet(H, W, V, mu, c, s) -> np.ndarray:
    """Jet of a linear layer along its curve: ``Z_k = sum_{j<=k} H_{k-j} Γ_j^T``, ``Γ_j = c_j W + s_j mu V``.

    Parameters
    ----------
    H : array_like, shape (r+1, n, d_in)
        The input's jet ``H_0..H_r``.
    W, V : ndarray, shape (d_out, d_in)
        The layer's weights and its unit direction.
    mu : float
        The layer's radius.
    c, s : array_like, shape (r+1,)
        The jets of the curve's two scalar functions (``cos t``, ``sin t`` for the paper's curve:
        :func:`curve_coefficients`; :func:`rate_coefficients` for a layer turning at another rate).

    Returns
    -------
    ndarray, shape (r+1, n, d_out)
        ``Z_0..Z_r`` (a product of two series is their Cauchy sum; docs/method.md §6).
    """
    G = [c[j] * W + s[j] * mu * V for j in range(len(c))]
    return np.array([sum(H[k - j] @ G[j].T for j in range(k + 1)) for k in range(len(c))])


def plain_relu_jet(Z) -> np.ndarray:
    """Jet of ReLU with the pattern frozen at ``t = 0`` (docs/method.md §6).

    Parameters
    ----------
    Z : array_like, shape (r+1, n, d)
        The pre-activation's jet.

    Returns
    -------
    ndarray, shape (r+1, n, d)
        ``H_0 = max(Z_0, 0)``, ``H_k = [Z_0 > 0] ⊙ Z_k``; a unit with ``Z_0 = 0`` is inactive (the tie rule).
    """
    Z = np.asarray(Z)
    return np.concatenate([np.maximum(Z[:1], 0), (Z[0] > 0) * Z[1:]])


def plain_layer_jet(H, W, V, mu, c, s, hidden: bool = True) -> np.ndarray:
    """The order-r jet of a ReLU layer: :func:`plain_linear_jet`, then :func:`plain_relu_jet` if ``hidden``.

    The readable form of :func:`layer_jet` (and of :func:`first_layer_jet`, :func:`second_layer_jet`).

    Parameters
    ----------
    H, W, V, mu, c, s
        As :func:`plain_linear_jet`.
    hidden : bool, optional
        Whether a ReLU follows (default); the output layer (``hidden=False``) is linear.

    Returns
    -------
    ndarray, shape (r+1, n, d_out)
        ``Z_k = sum_{j<=k} H_{k-j} (c_j W + s_j mu V)^T``, then ``H'_0 = max(Z_0, 0)``, ``H'_k = [Z_0 > 0] ⊙ Z_k``
        if hidden (docs/method.md §6).
    """
    Z = plain_linear_jet(H, W, V, mu, c, s)
    return plain_relu_jet(Z) if hidden else Z


def plain_network_jet(weights, directions, radii, X, order: int, rates=None) -> np.ndarray:
    """``F_0..F_r`` of the output ``f(X; Γ(t))``, layer by layer: the readable form of :func:`network_jet`.

    Parameters
    ----------
    weights, directions : list of ndarray
        ``W_i`` and ``V_i``.
    radii : array_like
        ``mu_i``.
    X : array_like, shape (N, d_0)
    order : int
        ``r``.
    rates : array_like, optional
        ``a_i``; default ``sphere.layer_rates(directions)``: 1, or 0 for a layer that stays.

    Returns
    -------
    ndarray, shape (r+1, N, d_L)

    Notes
    -----
    ``H_0 = (X, 0, .., 0)`` (the inputs do not move), then :func:`plain_layer_jet` per layer with the jets of
    ``cos(a_i t)`` and ``sin(a_i t)`` (:func:`rate_coefficients`); docs/method.md §6.
    """
    rates = sphere.layer_rates(directions) if rates is None else rates
    H = np.concatenate([np.asarray(X, float)[None], np.zeros((order,) + np.shape(X))])
    for i, (W, V, mu, a) in enumerate(zip(weights, directions, radii, rates)):
        H = plain_layer_jet(H, W, V, mu, *rate_coefficients(a, order), hidden=i < len(weights) - 1)
    return H


def plain_loss_jet(weights, directions, radii, X, Y, order: int, rates=None) -> np.ndarray:
    """``J_0..J_r`` of ``φ(t) = J(Γ(t))``: the readable form of :func:`loss_jet`.

    Parameters
    ----------
    weights, directions, radii, X, order, rates
        As :func:`plain_network_jet`.
    Y : array_like, shape (N, d_L)

    Returns
    -------
    ndarray, shape (r+1,)

    Notes
    -----
    ``J_k = 1/(2N) sum_{j<=k} <E_j, E_{k-j}>``, ``E_0 = F_0 - Y``, ``E_k = F_k`` (docs/method.md §6).
    """
    E = plain_network_jet(weights, directions, radii, X, order, rates)
    E[0] = E[0] - Y
    return np.array([sum(np.vdot(E[j], E[k - j]) for j in range(k + 1)) for k in range(order + 1)]) / (2 * len(X))


def rate_coefficients(rate: float, order: int, dtype=np.float64) -> tuple[np.ndarray, np.ndarray]:
    """``(c, s)``: the jets of ``cos(a t)`` and ``sin(a t)``, ``c_k = cos_k a^k``, ``s_k = sin_k a^k``.

    Parameters
    ----------
    rate : float
        ``a``: 1 is the paper's curve (:func:`curve_coefficients`), 0 a layer that stays.
    order : int
    dtype : numpy dtype, optional
        Of the result (computed in float64).

    Returns
    -------
    c, s : ndarray, shape (order+1,)

    Examples
    --------
    >>> rate_coefficients(0.0, 2)                     # a layer that stays: (1, 0, .., 0) and 0
    (array([ 1.,  0., -0.]), array([0., 0., 0.]))
    """
    cos, sin = _cos_sin(order)
    powers = float(rate) ** np.arange(order + 1)                 # 0.0 ** 0 = 1: a layer that stays keeps W
    return (cos * powers).astype(dtype), (sin * powers).astype(dtype)


# --- the fast form: all orders stacked, blocks of samples, reused buffers ----------------------------------
#
# One rule per kind of layer, all with one signature, ``rule(inputs, primal, layer, out, scratch) -> series``:
# ``inputs`` the layer's input jet (in the form the rule below produced), ``primal = (Z_0, H_0)`` the layer's
# own pre-activation and output from the forward pass (``H_0`` is ``None`` for the output layer), ``layer``
# its :class:`LayerCurve`, ``out`` and ``scratch`` flat buffers. A hidden layer's rule ends with its own ReLU.


def relu_jet(Z0: np.ndarray, Zs: np.ndarray, out: np.ndarray) -> np.ndarray:
    """``H_k = [Z_0 > 0] ⊙ Z_k`` for ``k >= 1``, stacked: the fast form of :func:`plain_relu_jet`.

    Parameters
    ----------
    Z0 : ndarray, shape (N, d)
        The pre-activation at ``t = 0``.
    Zs : ndarray, shape (r N, d)
        ``Z_1..Z_r`` stacked.
    out : ndarray, shape (r N, d)
        May be ``Zs``.

    Returns
    -------
    ndarray
        ``out``. (``H_0 = max(Z_0, 0)`` is the forward pass's ``H``.)
    """
    return kernels.relu_mask(Zs, Z0, out)


class LayerCurve:
    """What a layer's jet rule needs of its curve ``Γ_i(t) = c_i(t) W_i + s_i(t) mu_i V_i``.

    Parameters
    ----------
    W, V : ndarray
        The layer's weights and unit direction.
    mu : float
        Its radius (kept in ``W``'s dtype).
    c, s : ndarray, shape (r+1,)
        The jets of ``c_i(t)``, ``s_i(t)`` in the weights' dtype.
    hidden : bool
        Whether a ReLU follows.
    folded : ndarray, optional
        For the second layer only, its matrices ``[M_k N_k]`` (:func:`second_layer_matrices`).

    Attributes
    ----------
    muV : ndarray
        ``mu V``; the parameters are kept under their own names.
    """

    def __init__(self, W, V, mu, c, s, hidden: bool, folded=None):
        self.W, self.V, self.mu, self.c, self.s = W, V, W.dtype.type(mu), c, s
        self.muV = V * self.mu
        self.hidden, self.folded = hidden, folded


def first_layer_jet(X: np.ndarray, primal, layer: LayerCurve, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Layer 1's jet: the fast form of :func:`plain_layer_jet` for the first layer.

    Parameters
    ----------
    X : ndarray, shape (n, d_0)
        The block's inputs.
    primal : tuple
        ``(Z_{1,0}, H_{1,0})`` from the forward pass (``H`` ``None`` for an output layer).
    layer : LayerCurve
    out, scratch : ndarray
        Flat buffers (``scratch``: room for ``n d_1`` numbers).

    Returns
    -------
    ndarray
        Output layer (``L = 1``): ``Z_{1,1..r}`` stacked, ``(r n, d_1)``. Hidden: ``[H_{1,0}  D_1 ⊙ P]: (n, 2 d_1)``
        for :func:`second_layer_jet` to fold.

    Notes
    -----
    ``Z_{1,k} = X Γ_{1,k}^T = c_k Z_{1,0} + s_k P``, ``P = mu_1 X V_1^T`` (``X`` does not move, so one product
    serves every order). Its ReLU: ``H_{1,k} = c_k H_{1,0} + s_k D_1 ⊙ P`` with ``D_1 = [Z_{1,0} > 0]``: two arrays
    for every order (docs/method.md §6).
    """
    Z0, H0 = primal
    n, d = Z0.shape
    P = kernels.matmul_nt(X, layer.V, scratch[:n * d].reshape(n, d))
    P *= layer.mu
    if not layer.hidden:
        Zs = out[:(len(layer.c) - 1) * n * d].reshape(-1, d)
        for k in range(1, len(layer.c)):
            order_k = Zs[(k - 1) * n:k * n]
            np.multiply(P, layer.s[k], out=order_k) if k % 2 else np.multiply(Z0, layer.c[k], out=order_k)
        return Zs
    pair = out[:2 * n * d].reshape(n, 2 * d)
    pair[:, :d], pair[:, d:] = H0, kernels.relu_mask(P, Z0, P)     # (the kernel writes contiguous arrays)
    return pair


def second_layer_jet(pair: np.ndarray, primal, layer: LayerCurve, out: np.ndarray, scratch=None) -> np.ndarray:
    """Layer 2's jet, its Cauchy sums folded into the weights: the fast form of :func:`plain_layer_jet`.

    Parameters
    ----------
    pair : ndarray, shape (n, 2 d_1)
        ``[H_{1,0}  D_1 ⊙ P]`` from :func:`first_layer_jet`.
    primal : tuple
        ``(Z_{2,0}, H_{2,0})`` (``H`` ``None`` for an output layer).
    layer : LayerCurve
        With ``folded = [M_k N_k]`` (:func:`second_layer_matrices`).
    out : ndarray
        Flat buffer; ``scratch`` is unused.

    Returns
    -------
    ndarray
        ``H_{2,0..r}`` stacked ``((r+1) n, d_2)`` if hidden, else ``Z_{2,1..r}``, ``(r n, d_2)``.

    Notes
    -----
    ``Z_{2,k} = [H_{1,0}  D_1 ⊙ P] [M_k N_k]^T``, ``k = 1..r``: since ``H_{1,k} = c_k H_{1,0} + s_k D_1 ⊙ P``,
    ``sum_j (c'_j H_{1,k-j} W_2^T + s'_j H_{1,k-j} mu_2 V_2^T) = H_{1,0} M_k^T + (D_1 ⊙ P) N_k^T``; then its own
    ReLU if it is hidden (docs/method.md §6).
    """
    return _finish_layer(primal, layer, out, lambda Zs, n: [
        np.matmul(pair, layer.folded[k].T, out=Zs[k * n:(k + 1) * n]) for k in range(layer.folded.shape[0])])


def layer_jet(H: np.ndarray, primal, layer: LayerCurve, out: np.ndarray, scratch: np.ndarray) -> np.ndarray:
    """Layer ``i >= 3``'s jet: the fast form of :func:`plain_layer_jet`.

    Parameters
    ----------
    H : ndarray, shape ((r+1) n, d_{i-1})
        The layer below's output jet, stacked.
    primal : tuple
        ``(Z_{i,0}, H_{i,0})`` (``H`` ``None`` for the output layer).
    layer : LayerCurve
    out, scratch : ndarray
        Flat buffers; ``scratch``: room for ``2 r n d_i`` numbers.

    Returns
    -------
    ndarray
        As :func:`second_layer_jet`.

    Notes
    -----
    ``Z_{i,k} = sum_{j<=k} H_{i-1,k-j} Γ_{i,j}^T = sum_j c_j P_{k-j} + s_j Q_{k-j}``, ``k = 1..r``, then its own ReLU
    if hidden (docs/method.md §6). The products come first, ``P_m = H_{i-1,m} W_i^T`` (``m = 1..r``) and
    ``Q_m = H_{i-1,m} mu_i V_i^T`` (``m = 0..r-1``; ``s_0 = 0``), two for all orders at once; the Cauchy sums follow
    on the output side (``kernels.output_cauchy``, with ``P_0 = Z_{i,0}`` from the forward pass).
    """
    Z0 = primal[0]
    n, d = Z0.shape
    rn = H.shape[0] - n
    Ps = np.matmul(H[n:], layer.W.T, out=scratch[:rn * d].reshape(rn, d))
    Qs = np.matmul(H[:rn], layer.muV.T, out=scratch[rn * d:2 * rn * d].reshape(rn, d))
    return _finish_layer(primal, layer, out, lambda Zs, _: kernels.output_cauchy(Z0, Ps, Qs, layer.c, layer.s, Zs))


def _finish_layer(primal, layer: LayerCurve, out: np.ndarray, fill) -> np.ndarray:
    """``fill(Zs, n)`` writes ``Z_{1..r}`` into ``Zs``; a hidden layer's output is ``H_0`` (from the forward
    pass) in front of ``[Z_0 > 0] ⊙ Z_{1..r}``, the input layout :func:`layer_jet` reads."""
    Z0, H0 = primal
    n, d = Z0.shape
    r = len(layer.c) - 1
    if not layer.hidden:
        Zs = out[:r * n * d].reshape(r * n, d)
        fill(Zs, n)
        return Zs
    H = out[:(r + 1) * n * d].reshape((r + 1) * n, d)
    fill(H[n:], n)
    H[:n] = H0
    relu_jet(Z0, H[n:], H[n:])
    return H


def second_layer_matrices(W: np.ndarray, V: np.ndarray, mu: float, first, second) -> np.ndarray:
    """``[M_k N_k]``, ``k = 1..r``: layer 2's jet as two products per order (:func:`second_layer_jet`).

    Parameters
    ----------
    W, V : ndarray, shape (d_2, d_1)
        Layer 2's weights and direction.
    mu : float
        Its radius.
    first, second : tuple of ndarray
        ``(c, s)`` and ``(c', s')``: the curve coefficients of layers 1 and 2.

    Returns
    -------
    ndarray, shape (r, d_2, 2 d_1)
        In ``W``'s dtype (computed in float64).

    Notes
    -----
    ``M_k = (c' c)_k W_2 + (s' c)_k mu_2 V_2`` and ``N_k = (c' s)_k W_2 + (s' s)_k mu_2 V_2`` (Cauchy products
    :func:`cauchy` of the 1-D jets; docs/method.md §6).
    """
    (c, s), (c2, s2) = first, second
    cc, sc, cs, ss = (cauchy(np.asarray(a, float), np.asarray(b, float))
                      for a, b in ((c2, c), (s2, c), (c2, s), (s2, s)))
    W64, V64 = W.astype(float), float(mu) * V.astype(float)
    folded = np.empty((len(cc) - 1, W.shape[0], 2 * W.shape[1]), W.dtype)
    for k in range(1, len(cc)):
        folded[k - 1] = np.concatenate([cc[k] * W64 + sc[k] * V64, cs[k] * W64 + ss[k] * V64], axis=1)
    return folded


# Samples are independent, so the jet is computed on blocks of this many samples: the working arrays
# (r n d numbers per layer) then stay in cache instead of streaming r times the data through memory.
BLOCK = 2048

# Highest jet order accepted: 1/k! < 1e-32 past it, so further coefficients carry no information.
MAX_ORDER = 30


def paper_coefficients(V, order: int, dtype) -> list:
    """Per layer ``(c_i, s_i)`` of the paper's curve.

    Parameters
    ----------
    V : list of ndarray
        The directions.
    order : int
    dtype : numpy dtype

    Returns
    -------
    list of tuple
        :func:`rate_coefficients` at rate 1, or 0 for a layer with ``V_i = 0``, which stays put
        (``Γ_i(t) = W_i``; ``sphere.layer_rates``).
    """
    return [rate_coefficients(a, order, dtype) for a in sphere.layer_rates(V)]


_RULES = (first_layer_jet, second_layer_jet)         # layers 1 and 2; every later layer: layer_jet


class CurveJet:
    """The jet of a curve ``Γ_i(t) = c_i(t) W_i + s_i(t) mu_i V_i`` through the network, block by block.

    The fast form of :func:`plain_network_jet` and :func:`plain_loss_jet` (tested against them).

    Parameters
    ----------
    weights, V : list of ndarray
        ``W_i`` and the directions.
    radii : array_like
        ``mu_i``.
    X : ndarray, shape (N, d_0)
    coeffs : list of tuple
        ``coeffs[i] = (c_i, s_i)``: the jets of layer i's two scalar functions, in ``X``'s dtype
        (:func:`paper_coefficients` for Algorithm 1's curve; ``spherenet.beyond.geodesic`` passes its own);
        every curve must pass through the weights, ``c_i(0) = 1``, ``s_i(0) = 0``.

    Attributes
    ----------
    order : int
        ``r``.
    layers : list of LayerCurve
        One each, whose rule (:func:`first_layer_jet`, :func:`second_layer_jet`, :func:`layer_jet`) carries a
        block of samples' jet one layer up.
    """

    def __init__(self, weights, V, radii, X, coeffs):
        if any(s[0] != 0 or c[0] != 1 for c, s in coeffs):
            raise ValueError("every curve passes through the weights at t = 0: c_i(0) = 1, s_i(0) = 0")
        self.X, self.order, L = X, coeffs[0][0].shape[0] - 1, len(weights)
        self.layers = [LayerCurve(W, D, mu, c, s, hidden=i < L - 1)
                       for i, (W, D, mu, (c, s)) in enumerate(zip(weights, V, radii, coeffs))]
        if L > 1:
            self.layers[1].folded = second_layer_matrices(weights[1], V[1], radii[1], coeffs[0], coeffs[1])

    def buffers(self, n: int) -> tuple[list, np.ndarray]:
        """Room for one block of up to ``n`` samples.

        Parameters
        ----------
        n : int

        Returns
        -------
        outs : list of ndarray
            Each layer's output jet (``(r+1) n d_i`` numbers).
        scratch : ndarray
            One buffer for the products of whichever layer runs.
        """
        r, dtype = self.order, self.X.dtype
        widths = [layer.W.shape[0] for layer in self.layers]
        scratch = max([widths[0]] + [2 * r * d for d in widths[2:]])
        return [np.empty((r + 1) * n * d, dtype) for d in widths], np.empty(n * scratch, dtype)

    def block(self, cache, span: slice, buffers) -> np.ndarray:
        """``F_1..F_r`` for the samples ``span``.

        Parameters
        ----------
        cache : ForwardCache
            The forward pass at the weights.
        span : slice
            The block's rows.
        buffers : tuple
            From :meth:`buffers`.

        Returns
        -------
        ndarray, shape (r n, d_L)
            Stacked; a view into ``buffers``.
        """
        outs, scratch = buffers
        series = self.X[span]
        for i, layer in enumerate(self.layers):
            primal = (cache.Z[i][span], cache.H[i + 1][span] if layer.hidden else None)
            rule = _RULES[i] if i < 2 else layer_jet
            series = rule(series, primal, layer, outs[i], scratch)
        return series

    def output(self, cache) -> np.ndarray:
        """Coefficients ``F_0..F_r`` of the network output along the curve.

        Parameters
        ----------
        cache : ForwardCache

        Returns
        -------
        ndarray, shape (r+1, N, d_L)
            ``F_0 = cache.F``; blocks of ``BLOCK`` samples, parts on ``spherenet.rows``.
        """
        F = np.empty((self.order + 1,) + cache.F.shape, cache.F.dtype)
        F[0] = cache.F

        def part(_, span):
            buffers = self.buffers(min(span.stop - span.start, BLOCK))
            for block in rows.blocks(span, BLOCK):
                F[1:, block] = self.block(cache, block, buffers).reshape(self.order, block.stop - block.start, -1)

        rows.map_parts(part, cache.F.shape[0])
        return F

    def loss(self, cache, Y) -> np.ndarray:
        """``J_0..J_r`` of ``φ(t) = J(Γ(t))``.

        Parameters
        ----------
        cache : ForwardCache
        Y : ndarray, shape (N, d_L)

        Returns
        -------
        ndarray, shape (r+1,)
            float64.

        Notes
        -----
        Per block the output jet ``F_1..F_r``, the errors ``E_0 = F_0 - Y``, ``E_k = F_k``, and the Cauchy sums
        ``S_k += sum_{j<=k} <E_j, E_{k-j}>`` (``kernels.loss_cauchy``, float64); then ``J_k = S_k/(2N)``, the parts'
        sums added in row order (docs/method.md §6).
        """
        N = Y.shape[0]

        def part(_, span):
            S = np.zeros(self.order + 1)
            buffers = self.buffers(min(span.stop - span.start, BLOCK))
            E0 = np.empty((min(span.stop - span.start, BLOCK), Y.shape[1]), cache.F.dtype)
            for block in rows.blocks(span, BLOCK):
                e0 = np.subtract(cache.F[block], Y[block], out=E0[:block.stop - block.start])
                kernels.loss_cauchy(e0, self.block(cache, block, buffers), S)
            return S

        return rows.add_in_order(rows.map_parts(part, N)) / (2 * N)


def output_jet_from(cache: ForwardCache, weights, V, radii, X, order: int) -> np.ndarray:
    """Coefficients ``F_0..F_r`` of the network output along Γ(t), from a forward cache (unchecked).

    Parameters
    ----------
    cache : ForwardCache
        The forward pass of ``weights`` on ``X``.
    weights, V, radii, X, order
        As :func:`network_jet`.

    Returns
    -------
    ndarray, shape (r+1, N, d_L)
        ``F_0`` is ``cache.F``: order 0 is the forward pass, reused as is.
    """
    if order == 0:
        return cache.F[None].copy()
    return CurveJet(weights, V, radii, X, paper_coefficients(V, order, X.dtype)).output(cache)


def loss_jet_from(it_or_cache, weights, V, radii, X, Y, order: int) -> np.ndarray:
    """``J_0..J_order`` of ``φ(t) = J(Γ(t))`` from a forward cache at ``weights`` (unchecked fast path).

    Parameters
    ----------
    it_or_cache : steps.Iterate or ForwardCache
        An iterate (its ``cache`` is used) or a forward cache of ``weights`` on ``X``.
    weights, V, radii, X, Y, order
        As :func:`loss_jet`.

    Returns
    -------
    ndarray, shape (order+1,)
        float64 (:meth:`CurveJet.loss`).
    """
    cache = getattr(it_or_cache, "cache", it_or_cache)
    if order == 0:
        S = kernels.loss_cauchy(cache.F - Y, np.empty((0, Y.shape[1]), X.dtype), np.zeros(1))
        return S / (2 * X.shape[0])
    return CurveJet(weights, V, radii, X, paper_coefficients(V, order, X.dtype)).loss(cache, Y)


def loss_jet2_adjoint(cache: ForwardCache, weights, V, radii, X, alpha: float, ws, Y=None) -> np.ndarray:
    """``J_0, J_1, J_2`` of ``φ(t) = J(Γ(t))`` from the first-order jet and the backward pass's adjoints.

    Parameters
    ----------
    cache : ForwardCache
        At ``weights`` on ``X``, with the adjoints ``cache.dZ`` of the backward pass (all it keeps, or only the
        output layer's: then the others are recomputed block by block from it, which needs ``Y``).
    weights, V, radii, X, ws
        As :func:`loss_jet`; ``ws``: a ``network.Workspace``.
    alpha : float
        ``sum_{i moving} <W_i, ∇_i J>`` (``Direction.alpha_moving``).
    Y : ndarray, optional
        The targets (only read when hidden adjoints were not kept).

    Returns
    -------
    ndarray, shape (3,)
        The same numbers as ``loss_jet_from(..., order=2)`` (to rounding), at lower cost. Recomputed adjoints
        are the backward pass's own bits (``network._block_adjoints`` on the same blocks), so the result is too.

    Notes
    -----
    docs/method.md §4. Algorithm 1 needs only ``J_2 = (2<E_0, F_2> + <F_1, F_1>)/(2N)``, and ``F_2`` is linear in
    the second-order sources ``S_i = Z_{i,2} - H_{i-1,2} W_i^T = mu_i H_{i-1,1} V_i^T - Z_{i,0}/2``, so

        <E_0, F_2>/N = sum_i <dZ_i, S_i> = sum_{i>=2} mu_i <dZ_i^T H_{i-1,1}, V_i> - alpha/2,

    using ``<dZ_i, Z_{i,0}> = <∇_i J, W_i>`` (over the moving layers: ``alpha``; a layer with ``V_i = 0`` has no
    source) and ``H_{0,1} = 0``. The first-order jet, ``Z_{1,1} = mu_1 X V_1^T``, ``Z_{i,1} = H_{i-1,1} W_i^T +
    mu_i H_{i-1,0} V_i^T``, ``H_{i,1} = [Z_{i,0} > 0] ⊙ Z_{i,1}``, takes two products per layer, the adjoint term one.
    """
    N, dt = X.shape[0], X.dtype
    # The two shared block buffers of each part (network.ROW_BLOCK rows of the widest layer), whatever the depth
    # and N: this pass needs one layer at a time, and H_{i-1,1} is spent once Z_{i,1} has its first product.
    _block_buffers(ws, weights, N, dt)
    adjoints = _adjoints_of(cache, weights, Y, ws)

    def block(p, r):
        n = r.stop - r.start
        dZ = adjoints(p, r)
        buffers = [f"block.a{p}", f"block.b{p}"]
        Z1 = kernels.matmul_nt(X[r], V[0], ws.scratch(buffers[0], (n, V[0].shape[0]), dt))
        Z1 *= dt.type(radii[0])
        seconds = []
        for i in range(1, len(weights)):
            H1 = kernels.relu_mask(Z1, cache.Z[i - 1][r], Z1)
            T = dZ[i].T @ H1
            seconds.append(float(radii[i]) * float(np.vdot(T, V[i])))
            buffers.reverse()
            Z1 = kernels.matmul_nt(H1, weights[i], ws.scratch(buffers[0], (n, weights[i].shape[0]), dt))
            HV = kernels.matmul_nt(cache.H[i][r], V[i], ws.scratch(buffers[1], Z1.shape, dt))   # where H1 was
            HV *= dt.type(radii[i])
            Z1 += HV
        F1 = Z1.astype(np.float64, copy=False)
        return np.array(seconds + [float(np.vdot(dZ[-1], F1)), float(np.vdot(F1, F1))])

    def part(p, r):                              # the blocks' sums, in row order
        return rows.add_in_order([block(p, b) for b in rows.blocks(r, ROW_BLOCK)])

    total = rows.add_in_order(rows.map_parts(part, N))     # per layer mu_i <dZ_i^T H_{i-1,1}, V_i>, J_1, <F_1, F_1>
    second = -alpha / 2
    for term in total[:-2]:
        second += term
    J0 = float(np.vdot(cache.dZ[-1], cache.dZ[-1])) * N / 2
    return np.array([J0, total[-2], second + total[-1] / (2 * N)])


def _adjoints_of(cache: ForwardCache, weights, Y, ws):
    """``adjoints(p, r) -> [dZ_i of the rows r]``: slices of the kept adjoints, or (when the backward pass kept only
    the output layer's) the hidden ones recomputed from it by ``network._block_adjoints`` into part ``p``'s buffers."""
    if all(D is not None for D in cache.dZ[1:]):
        return lambda p, r: [None if D is None else D[r] for D in cache.dZ]
    if Y is None:
        raise ValueError("the hidden adjoints were not kept: pass Y to recompute them")
    dt, L = cache.F.dtype, len(weights)
    scale = dt.type(1.0 / Y.shape[0])

    def adjoints(p, r):
        out = [None] * L

        def buffer(i):
            return ws.scratch(f"adjoint{i}.{p}", (r.stop - r.start, cache.Z[i].shape[1]), dt)

        for i, D in _block_adjoints(weights, cache, Y, r, scale, buffer):
            out[i] = D
            if i == 1:                           # dZ_1 is read by no pass
                break
        return out

    return adjoints


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
    radii = check_radii(radii, len(weights))
    if Y is None:
        X = as_float_matrix("X", X, weights[0].shape[1], dtype)
    else:
        X, Y = check_data(X, Y, weights[0].shape[1], weights[-1].shape[0], dtype)
    order = positive_int("order", order, minimum=0)
    if order > MAX_ORDER:
        raise ValueError(f"order must be <= {MAX_ORDER} (1/k! is below 1e-32 beyond it), got {order}")
    return weights, V, radii, X, Y, order


def loss_jet(weights, directions, radii, X, Y, order: int) -> np.ndarray:
    """Coefficients ``J_k = φ^(k)(0)/k!``, ``k = 0..order``, of ``φ(t) = J(Γ(t))`` (docs/method.md §6).

    The fast form of :func:`plain_loss_jet`.

    Parameters
    ----------
    weights : list of ndarray
        ``W_i: (d_i, d_{i-1})``, float32 or float64.
    directions : list of ndarray
        ``V_i``, same shapes.
    radii : array_like
        ``mu_i > 0``.
    X : array_like, shape (N, d_0)
    Y : array_like, shape (N, d_L)
    order : int
        ``0 <= order <= MAX_ORDER``.

    Returns
    -------
    ndarray, shape (order+1,)

    Notes
    -----
    ``Γ_i(t) = W_i cos t + mu_i V_i sin t`` (a layer with ``V_i = 0`` stays). Computed in the weights' dtype, the
    loss coefficients accumulated in float64. For the direction of steepest descent ``J_1 = -beta`` and
    ``2 J_2 = kappa``.
    """
    weights, V, radii, X, Y, order = _checked(weights, directions, radii, X, Y, order)
    return loss_jet_from(_forward_cache(weights, X), weights, V, radii, X, Y, order)


def network_jet(weights, directions, radii, X, order: int) -> np.ndarray:
    """Coefficients ``F_k``, ``k = 0..order``, of the output ``f(X; Γ(t))`` (docs/method.md §6).

    The fast form of :func:`plain_network_jet`.

    Parameters
    ----------
    weights, directions, radii, X, order
        As :func:`loss_jet`.

    Returns
    -------
    ndarray, shape (order+1, N, d_L)
    """
    weights, V, radii, X, _, order = _checked(weights, directions, radii, X, None, order)
    return output_jet_from(_forward_cache(weights, X), weights, V, radii, X, order)
