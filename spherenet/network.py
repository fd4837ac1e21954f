"""The normalised bias-free ReLU MLP, its loss, and the hand-written backward pass (docs/method.md §1–3).

    f(x; W) = W_L σ(W_{L-1} σ( ... σ(W_1 x)))        σ(z) = max(0, z),  linear output

Samples are rows: ``X: (N, d_0)``, layer ``i`` computes ``Z_i = H_{i-1} @ W_i.T`` with ``H_0 = X`` and
``H_i = σ(Z_i)``; ``W_i: (d_i, d_{i-1})`` lies on the Frobenius sphere of radius ``mu_i``.

Tie rule (shared with the jets): a unit with pre-activation exactly 0 is inactive, ``σ'(0) = 0``.

Functions without a leading underscore validate their input; the training loop validates once and then
calls the unchecked ``_``-versions on its hot path.
"""
from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np

from . import kernels, rows, sphere
from ._checks import (as_float_matrix, check_choice, check_data, check_radii, check_weights, finite_float,
                      positive_int, rng_from)

RADIUS_RULES = ("unit", "agd", "fan")


def radii_for(widths, radius="unit") -> np.ndarray:
    """Radii ``mu_i`` for layers of ``widths = [d_0, ..., d_L]`` (docs/method.md §1).

    Parameters
    ----------
    widths : sequence of int
        ``[d_0, ..., d_L]``, at least two positive integers.
    radius : float, sequence of float or str, optional
        A positive number (all layers), a sequence of L positive numbers, or a rule: ``"unit"`` (default,
        the paper): ``mu_i = 1``; ``"agd"``: ``mu_i = sqrt(d_i/d_{i-1})``; ``"fan"``: ``mu_i = sqrt(d_i d_{i-1})/3``
        (both seen in the authors' code).

    Returns
    -------
    ndarray, shape (L,)
        ``mu_1..mu_L``.

    Examples
    --------
    >>> radii_for([4, 16, 1], "agd")
    array([2.  , 0.25])
    """
    widths = check_widths(widths)
    L = len(widths) - 1
    d_out, d_in = np.array(widths[1:], float), np.array(widths[:-1], float)
    if isinstance(radius, str):
        rule = check_choice("radius rule", radius, RADIUS_RULES)
        return {"unit": np.ones(L), "agd": np.sqrt(d_out / d_in), "fan": np.sqrt(d_out * d_in) / 3}[rule]
    if np.ndim(radius) == 0:
        return np.full(L, finite_float("radius", radius, positive=True))
    return check_radii(radius, L, name="radius")


def check_widths(widths) -> tuple[int, ...]:
    """Validate ``widths = [d_0, ..., d_L]``.

    Parameters
    ----------
    widths : sequence of int
        At least two positive integers (NumPy integers accepted).

    Returns
    -------
    tuple of int
        The widths; a clear ``TypeError``/``ValueError`` otherwise.
    """
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__len__"):
        raise TypeError(f"widths must be a sequence of positive integers, got {widths!r}")
    if len(widths) < 2:
        raise ValueError(f"widths needs at least 2 entries (input and output), got {list(widths)}")
    return tuple(positive_int(f"widths[{i}]", int(w) if isinstance(w, np.integer) else w)
                 for i, w in enumerate(widths))


def glorot_sphere_init(widths, radii, rng: np.random.Generator) -> list[np.ndarray]:
    """Glorot-uniform weights projected onto their spheres (docs/method.md §2).

    Parameters
    ----------
    widths : sequence of int
        ``[d_0, ..., d_L]``.
    radii : array_like
        ``mu_i``.
    rng : numpy.random.Generator
        The source of the samples (layer by layer, in order).

    Returns
    -------
    list of ndarray
        ``W_i: (d_i, d_{i-1})`` in float64, ``||W_i||_F = mu_i``.

    Notes
    -----
    ``W_i ~ U(-a, a)``, ``a = sqrt(6/(d_i + d_{i-1}))``, then ``W_i <- mu_i W_i/||W_i||_F``.
    """
    weights = []
    for d_in, d_out, mu in zip(widths[:-1], widths[1:], radii):
        a = np.sqrt(6.0 / (d_in + d_out))
        weights.append(sphere.project(rng.uniform(-a, a, size=(d_out, d_in)), mu))
    return weights


# --- forward, loss, backward -----------------------------------------------------------------------------

@dataclass
class ForwardCache:
    """Everything the backward pass and the jets reuse from one forward pass (docs/method.md §1).

    Attributes
    ----------
    H : list of ndarray
        ``H[i]``: the input of layer ``i+1``, ``H[0] = X``.
    Z : list of ndarray
        ``Z[i]``: the pre-activation of layer ``i+1``, ``(N, d_{i+1})``. In the training loop's caches a hidden
        layer's ``Z[i]`` is its ``H[i + 1]``, i.e. ``max(Z, 0)`` (see :meth:`Workspace.cache`).
    dZ : list or None
        ``dZ[i] = ∂J/∂Z_{i+1}``: the backward pass's adjoints at this point once :func:`_backward` has run on the
        cache (``None`` before; ``dZ[0]`` stays ``None`` in a network of several layers, as no pass reads it; with
        ``keep_adjoints="output"`` only ``dZ[-1]`` is kept and Algorithm 1's jet recomputes the others per block).
    """
    H: list
    Z: list
    dZ: list | None = None

    @property
    def F(self) -> np.ndarray:
        """The network output ``F = Z[-1]``, ``(N, d_L)``."""
        return self.Z[-1]


class Workspace:
    """Named scratch arrays, reused from call to call by the training loop's hot path.

    Notes
    -----
    Allocating a fresh multi-megabyte array costs its page faults on first touch — as much as the matrix
    product that fills it (``benchmarks/README.md``). Arrays handed out here are overwritten by the next call
    that asks for the same name, so public functions never use a workspace.
    """

    def __init__(self):
        self._arrays = {}

    def array(self, name, shape, dtype) -> np.ndarray:
        """The array called ``name``, made anew only when its shape or dtype changes.

        Parameters
        ----------
        name : str
        shape : tuple of int
        dtype : numpy dtype

        Returns
        -------
        ndarray
            Uninitialised on first use; otherwise the same array as the last call with this name.
        """
        a = self._arrays.get(name)
        if a is None or a.shape != tuple(shape) or a.dtype != dtype:
            a = self._arrays[name] = np.empty(shape, dtype)
        return a

    def scratch(self, name, shape, dtype) -> np.ndarray:
        """A contiguous ``shape`` array carved from one flat buffer per name, grown when too small.

        For arrays whose shape changes from layer to layer (a pass that needs one layer's at a time).

        Parameters
        ----------
        name : str
        shape : tuple of int
        dtype : numpy dtype

        Returns
        -------
        ndarray
            A view of the first ``prod(shape)`` numbers of the buffer.
        """
        size = math.prod(shape)
        flat = self._arrays.get(name)
        if flat is None or flat.size < size or flat.dtype != dtype:
            flat = self._arrays[name] = np.empty(size, dtype)
        return flat[:size].reshape(shape)

    def reserve(self, names, n_rows: int, width: int, dtype, block: int | None = None) -> None:
        """Make the scratch buffers ``f"{name}{p}"`` of every part ``p`` of ``n_rows`` rows (``rows.parts``).

        Called before the parts' threads start (they then only read this dictionary).

        Parameters
        ----------
        names : iterable of str
        n_rows : int
            The rows of the pass.
        width : int
            Columns of each buffer.
        dtype : numpy dtype
        block : int, optional
            At most this many rows per buffer (default: the part's rows).
        """
        for p, r in enumerate(rows.parts(n_rows)):
            for name in names:
                self.scratch(f"{name}{p}", (min(r.stop - r.start, block or n_rows), width), dtype)

    def cache(self, name, weights, X) -> "ForwardCache":
        """Buffers for a forward pass of ``weights`` on ``X`` (to pass as ``out=``).

        Parameters
        ----------
        name : str
            Prefix of the arrays' names.
        weights : list of ndarray
        X : ndarray, shape (N, d_0)

        Returns
        -------
        ForwardCache
            ``H = [X, Z[0], .., Z[L-2]]``: a hidden layer's ``Z[i]`` and ``H[i + 1]`` are one array.

        Notes
        -----
        That array holds ``H = max(Z, 0)`` after the pass (the ReLU runs in place): the backward pass and the jets read
        a hidden ``Z`` only through its mask, and ``[Z > 0] = [H > 0]`` exactly, so the training loop's caches take half
        the memory. (``forward_cache`` and every public function keep both.)
        """
        N = X.shape[0]
        Z = [self.array(f"{name}.Z{i}", (N, W.shape[0]), X.dtype) for i, W in enumerate(weights)]
        return ForwardCache([X] + Z[:-1], Z)


def _forward_cache(weights, X, out: ForwardCache | None = None) -> ForwardCache:
    """``Z_i = H_{i-1} @ W_i.T``, ``H_i = max(Z_i, 0)``, linear output; keeps every ``Z_i`` and ``H_i``.

    ``out``: buffers to write into (from :meth:`Workspace.cache`); by default new arrays.
    """
    if out is None:
        out = ForwardCache([X] + [np.empty((X.shape[0], W.shape[0]), X.dtype) for W in weights[:-1]],
                           [np.empty((X.shape[0], W.shape[0]), X.dtype) for W in weights])
    if isinstance(out, StreamedCache):
        return out.move_to(weights)
    out.H[0] = X
    out.dZ = None                                  # adjoints of an earlier pass in these buffers are stale
    rows.map_parts(lambda _, r: _forward_rows(weights, out, r), X.shape[0])
    return out


def _forward_rows(weights, out: ForwardCache, r: slice) -> None:
    """The forward pass of the rows ``r`` of ``out.H[0]`` into ``out`` (one thread)."""
    for i, W in enumerate(weights):
        kernels.matmul_nt(out.H[i][r], W, out.Z[i][r])
        if i < len(weights) - 1:
            kernels.relu(out.Z[i][r], out.H[i + 1][r])


def hidden_activation_bound(radii, X) -> float:
    """A bound on every hidden pre-activation while ``||W_j||_F = mu_j``.

    Parameters
    ----------
    radii : array_like
        ``mu_1..mu_L``.
    X : ndarray, shape (N, d_0)

    Returns
    -------
    float
        ``max_n ||x_n||_2 · max_{i<L} Π_{j<=i} mu_j``; ``0`` for ``L = 1`` or no rows. No hidden ``Z_i`` (``i < L``),
        and no partial sum of the products that form it, exceeds it in absolute value.

    Notes
    -----
    ``|(W_i h)_c| <= ||W_i||_2 ||h|| <= mu_i ||h||``, and ``||max(z, 0)|| <= ||z||``.

    Examples
    --------
    >>> hidden_activation_bound([2.0, 3.0, 1.0], np.array([[3.0, 4.0]]))
    30.0
    """
    radii = np.asarray(radii, dtype=np.float64)
    if len(radii) < 2 or X.shape[0] == 0:
        return 0.0
    # max over blocks of rows: a memory-mapped X is read a block at a time (the same per-row sums, the same max)
    squares = max(float(np.einsum("ij,ij->i", X[b], X[b], dtype=np.float64).max())
                  for b in rows.blocks(slice(0, X.shape[0]), 16 * ROW_BLOCK))
    row_norm = float(np.sqrt(squares))
    return row_norm * float(np.max(np.cumprod(radii[:-1])))


# Rows per block of the passes that need one block at a time (the evaluation pass, the first layer's
# gradient, Algorithm 1's jet): they share two buffers of this many rows per part, whatever N and the depth.
ROW_BLOCK = 4096


def _block_buffers(ws: Workspace, weights, n_rows: int, dtype) -> None:
    """Reserve the two shared block buffers ``block.a{p}``, ``block.b{p}`` of every part ``p``: ``ROW_BLOCK``
    rows (at most the part's) of the widest layer."""
    ws.reserve(("block.a", "block.b"), n_rows, max(W.shape[0] for W in weights), dtype, block=ROW_BLOCK)


def _alternating_buffer(part: int, layer: int) -> str:
    """The name of the shared block buffer layer ``layer`` writes in part ``part``: the two buffers take turns,
    so a layer's output never overwrites the input it is computed from."""
    return f"block.{'ab'[layer % 2]}{part}"


def _output(weights, X, ws: Workspace, name: str = "out.F") -> np.ndarray:
    """``f(X)`` without keeping the hidden layers, block by block of rows in the two shared block buffers. The
    result is ``ws``'s array ``name`` and is overwritten by the next call with that name."""
    F = ws.array(name, (X.shape[0], weights[-1].shape[0]), X.dtype)
    _block_buffers(ws, weights, X.shape[0], X.dtype)

    def part(p, r):
        for b in rows.blocks(r, ROW_BLOCK):
            H = X[b]
            for i, W in enumerate(weights[:-1]):
                Z = kernels.matmul_nt(H, W, ws.scratch(_alternating_buffer(p, i), (H.shape[0], W.shape[0]), X.dtype))
                H = kernels.relu(Z, Z)
            kernels.matmul_nt(H, weights[-1], F[b])

    rows.map_parts(part, X.shape[0])
    return F


# A full-batch run keeps its forward pass on all rows while it takes at most this many bytes; above it the
# pass is a StreamedCache (only the output kept, the hidden layers recomputed block by block).
FORWARD_BUDGET = 512 * 2 ** 20


def streams_forward(widths, n_rows: int, dtype) -> bool:
    """Whether a full-batch pass on ``n_rows`` rows is a :class:`StreamedCache`: the training loop's forward cache
    (one array per layer, a hidden layer's ``Z`` and ``H`` in one) would take more than ``FORWARD_BUDGET`` bytes."""
    return np.dtype(dtype).itemsize * n_rows * sum(widths[1:]) > FORWARD_BUDGET


class StreamedCache:
    """A forward pass of ``weights`` on all rows of ``X`` that keeps only its output ``F: (N, d_L)``.

    Passes read it as they read a :class:`ForwardCache`, a block of rows at a time (``Z[i][rows]``,
    ``H[i][rows]``); each block's layers are recomputed from ``X`` when a pass first asks for them (the last
    block asked for is kept, one per thread). Memory then stays flat in ``N`` but for ``d_L`` numbers per row,
    at the price of one forward pass more for every pass that reads the hidden layers (the backward pass, the
    jets). ``_forward_cache(weights, X, out=cache)`` moves it to other weights, as it overwrites a cache.

    Parameters
    ----------
    weights : list of ndarray
    X : ndarray, shape (N, d_0)
        Read a block of rows at a time (a memory-mapped array stays on disk).
    ws : Workspace
        Where ``F`` and the blocks' arrays live.

    Notes
    -----
    ``F`` is computed block by block (``_output``), so in the last bits it can differ from a forward pass over
    all rows at once where BLAS rounds a row differently in a product of another height (seen in float32).
    """

    def __init__(self, weights, X, ws: Workspace):
        self.X, self.ws = X, ws
        widths = [X.shape[1]] + [W.shape[0] for W in weights]
        self.H = [_StreamedRows(self, "H", i, d) for i, d in enumerate(widths[:-1])]
        self.Z = [_StreamedRows(self, "Z", i, d) for i, d in enumerate(widths[1:])]
        self.move_to(weights)

    @property
    def F(self) -> np.ndarray:
        """The output on all rows, ``(N, d_L)``."""
        return self._F

    def move_to(self, weights) -> "StreamedCache":
        """The pass at ``weights`` (``F`` recomputed, blocks forgotten, adjoints stale); returns ``self``."""
        self.weights, self.dZ = weights, None
        self._F = _output(weights, self.X, self.ws, name="streamed.F")
        self._blocks = threading.local()
        return self

    def rows(self, index: slice) -> ForwardCache:
        """The forward pass of the rows ``index`` (a slice, any step): recomputed unless this thread's last.

        Parameters
        ----------
        index : slice

        Returns
        -------
        ForwardCache
            Of those rows only; its arrays are overwritten by this thread's next call for other rows.
        """
        key = index.indices(self.X.shape[0])
        last = self._blocks
        if getattr(last, "key", None) != key:
            X = self.X[index] if key[2] == 1 else np.ascontiguousarray(self.X[index])
            tag, n = threading.get_ident(), X.shape[0]
            Z = [self.ws.scratch(f"streamed.Z{i}.{tag}", (n, W.shape[0]), X.dtype) for i, W in enumerate(self.weights)]
            last.cache = ForwardCache([X] + Z[:-1], Z)
            _forward_rows(self.weights, last.cache, slice(0, n))
            last.key = key
        return last.cache


class _StreamedRows:
    """Layer ``layer``'s ``Z`` or ``H`` of a :class:`StreamedCache`: indexing by rows recomputes those rows."""

    def __init__(self, cache: StreamedCache, kind: str, layer: int, width: int):
        self.cache, self.kind, self.layer = cache, kind, layer
        self.shape, self.dtype = (cache.X.shape[0], width), cache.X.dtype

    def __getitem__(self, index: slice) -> np.ndarray:
        return getattr(self.cache.rows(index), self.kind)[self.layer]


def _loss_from_output(F, Y) -> float:
    """``J = 1/(2N) sum_n ||f(x_n) - y_n||^2`` (accumulated in float64)."""
    E = (F - Y).astype(np.float64, copy=False)
    return float(np.vdot(E, E)) / (2 * F.shape[0])


# The training loop keeps the hidden layers' adjoints for Algorithm 1's jet only while they take at most this
# many bytes; above it the jet recomputes them block by block (``jets.loss_jet2_adjoint``: the same numbers).
ADJOINT_BUDGET = 256 * 2 ** 20


def adjoints_to_keep(widths, n_rows: int, dtype):
    """What the backward pass keeps for Algorithm 1's jet on ``n_rows`` rows: ``True`` (every adjoint it reads)
    while the hidden ones fit ``ADJOINT_BUDGET``, else ``"output"`` (only ``dZ_L``, ``d_L`` numbers per row)."""
    hidden_bytes = np.dtype(dtype).itemsize * n_rows * sum(widths[2:-1])
    return True if hidden_bytes <= ADJOINT_BUDGET else "output"


def _block_adjoints(weights, cache: ForwardCache, Y, b: slice, scale, buffer):
    """The adjoints of the rows ``b``, output layer first: yields ``(i, dZ_i)`` for ``i = L-1..0`` (0-based).

    ``dZ_L = (F - Y) scale``, ``dZ_{i-1} = (dZ_i W_i) ⊙ [Z_{i-1} > 0]``; ``buffer(i)`` is where ``dZ_i`` goes. The one
    form of this recursion: the backward pass and the jet's recomputation (``keep_adjoints="output"``) run it
    alike, so they give the same bits.
    """
    L = len(weights)
    D = np.subtract(cache.F[b], Y[b], out=buffer(L - 1))
    D *= scale
    for i in range(L - 1, -1, -1):
        yield i, D
        if i:
            D = np.matmul(D, weights[i], out=buffer(i - 1))
            kernels.relu_mask(D, cache.Z[i - 1][b], D)


def _backward(weights, cache: ForwardCache, Y, ws: Workspace | None = None,
              keep_adjoints: bool | str = True) -> tuple[float, list]:
    """Loss and Euclidean gradients by reverse accumulation.

    ``dZ_L = (F - Y)/N``; for ``i = L..1``: ``∇_i J = dZ_i^T H_{i-1}``, ``dZ_{i-1} = (dZ_i W_i) ⊙ [Z_{i-1} > 0]``.
    Block by block of ``ROW_BLOCK`` rows (the gradients summed over blocks in row order), so an adjoint that
    is not kept needs only the two shared block buffers. ``keep_adjoints``: ``True`` keeps ``dZ_i`` for
    Algorithm 1's jet in ``cache.dZ`` — all but the first layer's, which no pass reads (``cache.dZ[0]`` is ``None``
    when ``L > 1``); ``"output"`` keeps only ``dZ_L`` (the other entries ``None``: the jet recomputes them per
    block, :func:`adjoints_to_keep`); ``False``: ``cache.dZ`` is ``None``. ``ws``: where the arrays live (by
    default new ones).
    """
    ws = ws or Workspace()
    J = _loss_from_output(cache.F, Y)
    L, dt = len(weights), cache.F.dtype
    kept = [ws.array(f"dZ{i}", Z.shape, dt)
            if keep_adjoints and (i == L - 1 or (keep_adjoints is True and i > 0)) else None
            for i, Z in enumerate(cache.Z)]
    _block_buffers(ws, weights, Y.shape[0], dt)
    scale = dt.type(1.0 / Y.shape[0])

    def block(p, b):
        def adjoint_buffer(i):                       # dZ_i of these rows: kept, or a shared block buffer
            if kept[i] is not None:
                return kept[i][b]
            return ws.scratch(_alternating_buffer(p, L - 1 - i), (b.stop - b.start, cache.Z[i].shape[1]), dt)

        grads = [None] * L
        for i, D in _block_adjoints(weights, cache, Y, b, scale, adjoint_buffer):
            grads[i] = D.T @ cache.H[i][b]
        return grads

    def part(p, r):
        return [rows.add_in_order(layer) for layer in zip(*[block(p, b) for b in rows.blocks(r, ROW_BLOCK)])]

    grads = [rows.add_in_order(layer) for layer in zip(*rows.map_parts(part, Y.shape[0]))]
    cache.dZ = kept if keep_adjoints else None
    return J, grads


def _loss(weights, X, Y) -> float:
    return _loss_from_output(_forward_cache(weights, X).F, Y)


def _checked(weights, X, Y=None, needs_targets=True):
    weights = check_weights(weights)
    dtype = weights[0].dtype
    if not needs_targets:
        return weights, as_float_matrix("X", X, weights[0].shape[1], dtype), None
    if Y is None:
        raise TypeError("Y (the targets) is required, got None")
    X, Y = check_data(X, Y, weights[0].shape[1], weights[-1].shape[0], dtype)
    return weights, X, Y


def forward(weights, X) -> np.ndarray:
    """Network output ``f(X) = W_L σ(... σ(W_1 x))`` (docs/method.md §1), input checked.

    Parameters
    ----------
    weights : list of ndarray
        ``W_i: (d_i, d_{i-1})``, float32 or float64 (one dtype).
    X : array_like, shape (N, d_0)

    Returns
    -------
    ndarray, shape (N, d_L)
        In the weights' dtype.
    """
    weights, X, _ = _checked(weights, X, needs_targets=False)
    return _forward_cache(weights, X).F


def forward_cache(weights, X) -> ForwardCache:
    """Forward pass keeping every layer's pre-activation and input (for the backward pass and the jets).

    Parameters
    ----------
    weights : list of ndarray
    X : array_like, shape (N, d_0)

    Returns
    -------
    ForwardCache
        ``Z_i = H_{i-1} W_i^T``, ``H_i = max(Z_i, 0)`` (docs/method.md §1), every array kept separately.
    """
    weights, X, _ = _checked(weights, X, needs_targets=False)
    return _forward_cache(weights, X)


def loss(weights, X, Y) -> float:
    """The loss ``J(W) = 1/(2N) sum_n ||f(x_n) - y_n||^2`` (docs/method.md §1).

    Parameters
    ----------
    weights : list of ndarray
    X : array_like, shape (N, d_0)
    Y : array_like, shape (N, d_L)

    Returns
    -------
    float
        ``J``, accumulated in float64.
    """
    weights, X, Y = _checked(weights, X, Y)
    return _loss(weights, X, Y)


def loss_and_grad(weights, X, Y) -> tuple[float, list]:
    """Loss and Euclidean gradients by the hand-written backward pass (docs/method.md §1).

    Parameters
    ----------
    weights : list of ndarray
    X : array_like, shape (N, d_0)
    Y : array_like, shape (N, d_L)

    Returns
    -------
    J : float
    grads : list of ndarray
        ``grads[i] = ∇_{W_i} J``, shaped as ``weights[i]``.

    Notes
    -----
    ``dZ_L = (F - Y)/N``; for ``i = L..1``: ``∇_i J = dZ_i^T H_{i-1}``, ``dZ_{i-1} = (dZ_i W_i) ⊙ [Z_{i-1} > 0]``
    (tie rule ``σ'(0) = 0``, ``kernels.relu_mask``).
    """
    weights, X, Y = _checked(weights, X, Y)
    return _backward(weights, _forward_cache(weights, X), Y)


# --- the direction data both algorithms use ----------------------------------------------------------------

@dataclass
class Direction:
    """Per-layer search direction and the scalars built from it (docs/method.md §3, §5).

    Attributes
    ----------
    V : list of ndarray
        ``V_i = -grad_i/||grad_i||_F`` with ``grad_i = Proj_{W_i}(∇_i J)`` (``||V_i||_F = 1``, ``<W_i, V_i> = 0``),
        or 0 for a layer whose Riemannian gradient vanishes — such a layer stays put along the update curve,
        ``Γ_i(t) = W_i`` (not ``W_i cos t``, which would leave its sphere).
    rgrad_norms : ndarray
        ``||grad_i||_F``.
    inner_wg : ndarray
        ``<W_i, ∇_i J>``.
    beta : float
        ``sum_i mu_i ||grad_i||_F = -φ'(0)``.
    alpha : float
        ``sum_i <W_i, ∇_i J>``.
    """
    V: list
    rgrad_norms: np.ndarray
    inner_wg: np.ndarray
    beta: float
    alpha: float

    @property
    def rates(self) -> np.ndarray:
        """The curve's rate per layer, ``sphere.layer_rates(V)``: 1, or 0 for a layer that stays (``V_i = 0``)."""
        return sphere.layer_rates(self.V)

    @property
    def moving(self) -> np.ndarray:
        """``moving[i]``: layer i moves along its great circle; a zero layer stays, ``Γ_i(t) = W_i``."""
        return self.rates > 0

    @property
    def zero_layers(self) -> list[int]:
        """Layers whose Riemannian gradient is zero (their ``V_i = 0``): they stay where they are."""
        return [int(i) for i in np.flatnonzero(~self.moving)]

    @property
    def alpha_moving(self) -> float:
        """``sum_{i moving} <W_i, ∇_i J>``: the ``α`` of the first-order term ``Σ_i <∇_i J, Γ_i(t) - W_i>``.

        Equal to ``alpha`` (bit for bit) when every layer moves.
        """
        return float(self.inner_wg[self.moving].sum())


# A Riemannian gradient within this many rounding units of ∇J's size is rounding noise, not a direction.
_ZERO_RGRAD = 64


def _direction(weights, grads, radii) -> Direction:
    # In float64 whatever the weights' dtype: the matrices are small, and float32 sums of squares
    # lose the tangency (and overflow) that keeps the weights on their spheres.
    # (kernels.tangent_direction: V_i = -grad_i/||grad_i||, grad_i = Proj_{W_i}(∇_i J), as sphere.rgrad.)
    V, norms, wg = [], [], []
    for W, G in zip(weights, grads):
        V_i = np.empty(W.shape, weights[0].dtype)
        w_g, n, g_norm = kernels.tangent_direction(W, G, V_i)
        if not n > _ZERO_RGRAD * np.finfo(G.dtype).eps * g_norm:
            n = 0.0
            V_i[...] = 0.0
        V.append(V_i)
        norms.append(n)
        wg.append(w_g)
    norms, wg = np.array(norms), np.array(wg)
    return Direction(V, norms, wg, float(np.dot(radii, norms)), float(wg.sum()))


def direction(weights, grads, radii) -> Direction:
    """Search direction and scalars from the Euclidean gradients ``grads`` at ``weights`` (docs/method.md §3).

    Parameters
    ----------
    weights : list of ndarray
        ``W_i`` on their spheres.
    grads : list of ndarray
        ``∇_i J``, shaped as ``weights``.
    radii : array_like
        ``mu_i``.

    Returns
    -------
    Direction
        ``V_i = -grad_i/||grad_i||``, ``beta = sum_i mu_i ||grad_i||``, ``alpha = sum_i <W_i, ∇_i J>``.

    Notes
    -----
    A layer's Riemannian gradient counts as zero (``V_i = 0``) when ``||grad_i|| <= 64 eps ||∇_i J||`` (``eps`` of
    the gradients' dtype): below that it is rounding noise and normalising it would give an arbitrary
    direction. Computed in float64 for float32 weights too (then ``V_i`` is cast back).
    """
    weights = check_weights(weights)
    grads = [as_float_matrix(f"grads[{i}]", G, dtype=np.asarray(G).dtype if np.asarray(G).dtype in
                             (np.float32, np.float64) else np.float64) for i, G in enumerate(_as_list("grads", grads))]
    radii = check_radii(radii, len(weights))
    if len(grads) != len(weights):
        raise ValueError(f"weights and grads must have one entry per layer: {len(weights)}, {len(grads)}")
    for i, (W, G) in enumerate(zip(weights, grads)):
        if W.shape != G.shape:
            raise ValueError(f"grads[{i}] has shape {G.shape}, weights[{i}] has {W.shape}")
    return _direction(weights, grads, radii)


def _as_list(name, value) -> list:
    if isinstance(value, np.ndarray) or not hasattr(value, "__len__"):
        raise TypeError(f"{name} must be a list of 2-D arrays, one per layer")
    return list(value)


# --- the network object -----------------------------------------------------------------------------------

class NormalisedMLP:
    """Bias-free ReLU MLP with ``||W_i||_F = radii[i]`` for every layer (docs/method.md §1–2).

    Parameters
    ----------
    widths : sequence of int
        ``[d_0, ..., d_L]``.
    radius : float, sequence or str, optional
        A number, a sequence of L numbers, or ``"unit"`` (default) / ``"agd"`` / ``"fan"`` (:func:`radii_for`).
    seed : int or numpy.random.Generator, optional
        For the Glorot-uniform initialisation (:func:`glorot_sphere_init`, sampled in float64 then cast, so
        float32 nets start from the same point).
    dtype : float32 or float64, optional
        The weights' dtype (default float64); a radius its dtype cannot represent is refused.

    Attributes
    ----------
    weights : list of ndarray
        ``W_i: (d_i, d_{i-1})``.
    radii : ndarray
        ``mu_1..mu_L``.
    widths : tuple of int
    """

    def __init__(self, widths, radius="unit", seed=None, dtype=np.float64):
        self.widths = check_widths(widths)
        self.radii = radii_for(self.widths, radius)
        try:
            dtype = np.dtype(dtype)
        except TypeError:
            raise TypeError(f"dtype must be float32 or float64, got {dtype!r}") from None
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"dtype must be float32 or float64, got {dtype}")
        rng = rng_from("seed", seed)
        # Sample and project in float64, then cast: float32 nets start from the same point.
        with np.errstate(over="ignore", under="ignore"):
            self.weights = [W.astype(dtype) for W in glorot_sphere_init(self.widths, self.radii, rng)]
        for i, (W, mu) in enumerate(zip(self.weights, self.radii)):
            if sphere.check_point(W, mu, rtol=1e-5 if dtype == np.float32 else 1e-12):
                raise ValueError(f"radius {float(mu)!r} of layer {i} cannot be represented in {dtype}: its weights "
                                 f"would not lie on their sphere")

    @property
    def depth(self) -> int:
        """L, the number of weight matrices."""
        return len(self.weights)

    @property
    def dtype(self):
        """The weights' dtype (float32 or float64)."""
        return self.weights[0].dtype

    def forward(self, X) -> np.ndarray:
        """Output ``f(X): (N, d_L)`` for ``X: (N, d_0)`` (:func:`forward`; also ``net(X)``).

        Parameters
        ----------
        X : array_like, shape (N, d_0)

        Returns
        -------
        ndarray, shape (N, d_L)
        """
        return forward(self.weights, X)

    __call__ = forward

    def loss(self, X, Y) -> float:
        """``J = 1/(2N) sum ||f(x_n) - y_n||^2`` (:func:`loss`).

        Parameters
        ----------
        X : array_like, shape (N, d_0)
        Y : array_like, shape (N, d_L)

        Returns
        -------
        float
        """
        return loss(self.weights, X, Y)

    def loss_and_grad(self, X, Y):
        """``(J, [∇_{W_i} J])`` (:func:`loss_and_grad`).

        Parameters
        ----------
        X : array_like, shape (N, d_0)
        Y : array_like, shape (N, d_L)

        Returns
        -------
        tuple of (float, list of ndarray)
        """
        return loss_and_grad(self.weights, X, Y)

    def spectral_norm_product(self) -> float:
        """``P_op = prod_i ||W_i||_2``: a bound on the network's l2 -> l2 Lipschitz constant (docs/method.md §1–2).

        Returns
        -------
        float
            Computed in float64.
        """
        return float(np.prod([np.linalg.norm(W.astype(np.float64), 2) for W in self.weights]))

    def lipschitz_bound(self) -> float:
        """``prod_i mu_i >= prod_i ||W_i||_2 >= Lip(f)`` (docs/method.md §1).

        Returns
        -------
        float
            Holds at every iterate: the updates stay on the spheres.
        """
        return float(np.prod(self.radii))

    def norm_drift(self) -> float:
        """How far the weights have left their spheres.

        Returns
        -------
        float
            ``max_i | ||W_i||_F - mu_i | / mu_i``.
        """
        return max(abs(sphere.fro(W.astype(np.float64)) - mu) / mu for W, mu in zip(self.weights, self.radii))

    def copy(self) -> "NormalisedMLP":
        """An independent copy (weights and radii copied).

        Returns
        -------
        NormalisedMLP
        """
        new = object.__new__(NormalisedMLP)
        new.widths, new.radii = self.widths, self.radii.copy()
        new.weights = [W.copy() for W in self.weights]
        return new

    @classmethod
    def from_weights(cls, weights, radii=None, rtol: float | None = None) -> "NormalisedMLP":
        """A network with the given weights.

        Parameters
        ----------
        weights : list of ndarray
            ``W_i: (d_i, d_{i-1})`` (copied).
        radii : array_like, optional
            Default: the weights' Frobenius norms; else they must match them to ``rtol``.
        rtol : float, optional
            Default 1e-6 for float32, 1e-10 for float64 (a long float32 run may need its recorded drift).

        Returns
        -------
        NormalisedMLP
        """
        weights = check_weights(weights)
        norms = np.array([sphere.fro(W.astype(np.float64)) for W in weights])
        radii = norms if radii is None else check_radii(radii, len(weights))
        if rtol is None:
            rtol = 1e-6 if weights[0].dtype == np.float32 else 1e-10
        for i, W in enumerate(weights):
            reason = sphere.check_point(W.astype(np.float64), radii[i], rtol=rtol)
            if reason:
                raise ValueError(f"weights[{i}] is not on its sphere: {reason}")
        new = object.__new__(cls)
        new.widths = (weights[0].shape[1],) + tuple(W.shape[0] for W in weights)
        new.radii, new.weights = radii, [W.copy() for W in weights]
        return new

    def __repr__(self) -> str:
        return f"NormalisedMLP(widths={list(self.widths)}, radii={self.radii.round(6).tolist()}, dtype={self.dtype})"
