"""Search directions on the product of spheres, each a tangent list ``D = (D_1..D_L)`` at the current weights.

Notation: ``g_i = Proj_{W_i}(∇_i J)`` the Riemannian gradient; ``<A, B> = sum_i tr(A_i^T B_i)``; transport of
a tangent ``xi`` from the previous point to ``W`` is by projection, ``T(xi)_i = Proj_{W_i}(xi_i)``
(``sphere.transport``).

* ``paper``:  ``D_i = -mu_i g_i/||g_i||`` — the paper's ``mu_i V_i``: every layer turns at the same rate.
* ``rgrad``:  ``D = -g`` — Riemannian steepest descent: layer ``i`` turns at a rate ``∝ ||g_i||/mu_i``.
* ``cg``:     nonlinear conjugate gradient (Polak–Ribière+, Hestenes–Stiefel-free):
  ``D = -P g + beta_PR T(D_prev)`` with ``beta_PR = max(0, <g - T(g_prev), P g> / <g_prev, P g_prev>)``, and
  ``P`` the (fixed, identity or per-layer ``mu_i/||g_i||``) preconditioner; restart ``D = -P g`` whenever
  ``<g, D> >= 0`` (not a descent direction) or every ``restart`` steps.
* ``adam``:   Adam's direction made tangent, ``D = -Proj_W(m̂/(sqrt(v̂) + delta))`` with the default moments
  (0.9, 0.999), ``m`` transported by projection; only the direction is Adam's — the length comes from the jet.
  Falls back to ``-g`` when it is not a descent direction.

Every class has ``reset()``, ``__call__(weights, grads, radii) -> (D, info)``, and ``state()``/``restore()``:
its memory as named arrays, so a checkpoint can hold it and a resumed run repeats an uninterrupted one.
"""
from __future__ import annotations

import numpy as np

from .. import kernels, sphere


def riemannian_gradient(weights, grads, radii) -> list:
    """``g_i = Proj_{W_i}(∇_i J) = ∇_i J - <W_i, ∇_i J>/mu_i² W_i`` for every layer (docs/method.md §3).

    Parameters
    ----------
    weights, grads : list of ndarray
    radii : array_like

    Returns
    -------
    list of ndarray
    """
    return [sphere.rgrad(W, G, mu) for W, G, mu in zip(weights, grads, radii)]


def inner(A, B) -> float:
    """``<A, B> = sum_i tr(A_i^T B_i)`` on the product of spheres.

    Parameters
    ----------
    A, B : list of ndarray
        One array per layer.

    Returns
    -------
    float
        Accumulated in float64.

    Examples
    --------
    >>> inner([np.eye(2), np.ones((1, 2))], [np.eye(2), np.ones((1, 2))])
    4.0
    """
    return float(sum(np.vdot(a.astype(np.float64), b.astype(np.float64)) for a, b in zip(A, B)))


def transport(weights, xi, radii) -> list:
    """Vector transport by projection onto the tangent spaces at ``weights`` (``sphere.transport`` per layer).

    Parameters
    ----------
    weights, xi : list of ndarray
        The new point and a tangent list at the previous one.
    radii : array_like

    Returns
    -------
    list of ndarray
    """
    return [sphere.transport(W, x, mu) for W, x, mu in zip(weights, xi, radii)]


def layer_normalised(g, radii) -> list:
    """The paper's per-layer normalisation, as a preconditioner.

    Parameters
    ----------
    g : list of ndarray
    radii : array_like

    Returns
    -------
    list of ndarray
        ``mu_i g_i/||g_i||`` (0 for a zero layer).

    Examples
    --------
    >>> layer_normalised([np.array([[3.0, 4.0]]), np.zeros((1, 2))], [10.0, 1.0])
    [array([[6., 8.]]), array([[0., 0.]])]
    """
    out = []
    for gi, mu in zip(g, radii):
        n = sphere.fro(gi)
        out.append(gi * (float(mu) / n) if n > 0 else np.zeros_like(gi))
    return out


class _NoMemory:
    """A direction computed from the current point alone: nothing to reset, save or restore."""

    def reset(self):
        """Nothing to forget."""
        pass

    def state(self) -> dict:
        """No memory: ``{}``."""
        return {}

    def restore(self, state: dict) -> None:
        """Nothing to restore."""
        pass


class PaperDirection(_NoMemory):
    """``D_i = -mu_i g_i/||g_i||``: with the shared angle, Algorithm 1's curve (docs/method.md §7).

    Called as ``(weights, grads, radii) -> (D, {})``; no memory.
    """
    name = "paper"

    def __call__(self, weights, grads, radii):
        return [-d for d in layer_normalised(riemannian_gradient(weights, grads, radii), radii)], {}


class GradientDirection(_NoMemory):
    """``D = -g``: Riemannian steepest descent, per-layer rates ``∝ ||g_i||/mu_i`` (docs/method.md §7).

    Called as ``(weights, grads, radii) -> (D, {})``; no memory.
    """
    name = "rgrad"

    def __call__(self, weights, grads, radii):
        return [-gi for gi in riemannian_gradient(weights, grads, radii)], {}


class ConjugateGradient:
    """Polak–Ribière+ conjugate gradient with transport by projection (module docstring; docs/method.md §7).

    Parameters
    ----------
    precondition : {"none", "layer"}, optional
        ``P = I``, or ``P g = mu_i g_i/||g_i||`` (the paper's normalisation).
    restart : int, optional
        Steps between forced restarts (0: never). With ``beta_PR = 0`` forced (``restart=1``) it is the ``rgrad``
        (``"none"``) or the ``paper`` (``"layer"``) direction exactly.

    Attributes
    ----------
    name : str
        ``"cg"`` or ``"cg-layer"``.
    prev : tuple or None
        ``(g, P g, D)`` at the previous point.
    count : int
        Steps since the last restart.

    Notes
    -----
    Called as ``(weights, grads, radii) -> (D, info)``: ``D = -P g + beta_PR T(D_prev)``,
    ``beta_PR = max(0, <g - T(g_prev), P g> / <g_prev, P g_prev>)``; ``D = -P g`` (a restart) when ``D`` would not
    descend (``<g, D> >= 0``) or every ``restart`` steps. ``info``: ``beta_cg``, ``restart`` (1.0 or 0.0).
    """

    def __init__(self, precondition: str = "none", restart: int = 0):
        if precondition not in ("none", "layer"):
            raise ValueError(f"precondition must be 'none' or 'layer', got {precondition!r}")
        self.precondition, self.restart = precondition, int(restart)
        self.name = "cg" if precondition == "none" else "cg-layer"
        self.reset()

    def reset(self):
        """Forget the previous point (the next call is a restart)."""
        self.prev = None                  # (g, P g, D) at the previous point
        self.count = 0

    def state(self) -> dict:
        """The memory as named arrays (for checkpoints).

        Returns
        -------
        dict
            ``count``, and ``g<i>``, ``Pg<i>``, ``D<i>`` per layer when there is a previous point.
        """
        out = {"count": np.array(self.count)}
        if self.prev is not None:
            for tag, arrays in zip(("g", "Pg", "D"), self.prev):
                out |= {f"{tag}{i}": a for i, a in enumerate(arrays)}
        return out

    def restore(self, state: dict) -> None:
        """Continue from a memory that :meth:`state` returned.

        Parameters
        ----------
        state : dict
        """
        self.count = int(state["count"])
        L = sum(1 for k in state if k.startswith("Pg"))
        self.prev = tuple([state[f"{tag}{i}"] for i in range(L)] for tag in ("g", "Pg", "D")) if L else None

    def _P(self, g, radii):
        return layer_normalised(g, radii) if self.precondition == "layer" else g

    def __call__(self, weights, grads, radii):
        g = riemannian_gradient(weights, grads, radii)
        Pg = self._P(g, radii)
        beta, restarted = 0.0, True
        if self.prev is not None and (self.restart == 0 or self.count % self.restart):
            g_old, Pg_old, D_old = self.prev
            denom = inner(g_old, Pg_old)
            if denom > 0:
                y = [a - b for a, b in zip(g, transport(weights, g_old, radii))]
                beta = max(0.0, inner(y, Pg) / denom)
        D = [-p for p in Pg]
        if beta > 0:
            TD = transport(weights, self.prev[2], radii)
            D_cg = [d + beta * t for d, t in zip(D, TD)]
            if inner(g, D_cg) < 0:                     # keep it only if it descends
                D, restarted = D_cg, False
            else:
                beta = 0.0
        self.count = 1 if restarted else self.count + 1
        self.prev = (g, Pg, D)
        return D, {"beta_cg": beta, "restart": float(restarted)}


class FlatTangents:
    """Lists of per-layer matrices shaped like ``weights`` as one float64 vector, layer ``i`` the segment
    ``bounds[i]:bounds[i+1]`` of it.

    On the product of spheres the tangent projection acts layer by layer; on the flat vector one compiled call
    does it for every layer whatever the depth (``kernels.sphere_adam``), which is what makes
    :class:`AdamDirection` cheap per mini-batch.

    Parameters
    ----------
    weights : list of ndarray
        Gives the layers' shapes.

    Examples
    --------
    >>> flat = FlatTangents([np.ones((1, 2)), np.ones((2, 1))])
    >>> flat.bounds.tolist(), [a.shape for a in flat.split(flat.join([np.ones((1, 2)), np.full((2, 1), 2.0)]))]
    ([0, 2, 4], [(1, 2), (2, 1)])
    """

    def __init__(self, weights):
        self.shapes = [W.shape for W in weights]
        self.bounds = np.concatenate(([0], np.cumsum([W.size for W in weights]))).astype(np.int64)

    def join(self, arrays) -> np.ndarray:
        """The flat float64 vector of ``arrays`` (one per layer, row-major)."""
        return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float64, copy=False)

    def split(self, flat) -> list:
        """The layers of ``flat``, as views of it shaped like the weights."""
        b = self.bounds
        return [flat[b[i]:b[i + 1]].reshape(shape) for i, shape in enumerate(self.shapes)]


class AdamDirection:
    """Adam's direction, made tangent (module docstring; docs/method.md §7).

    Parameters
    ----------
    betas : tuple of float, optional
        The moments' constants (default ``(0.9, 0.999)``).
    delta : float, optional
        Relative to ``sqrt(max v̂)`` (default 1e-8).

    Notes
    -----
    Called as ``(weights, grads, radii) -> (D, info)``: ``m`` transported by projection and updated with ``g``,
    ``v`` with ``g ⊙ g``; ``D = -Proj_W(m̂/(sqrt(v̂) + delta sqrt(max v̂)))``, or ``-g`` when that is not a descent
    direction (``info["fallback"] = 1.0``). The moments are kept in float64, all layers in one vector
    (:class:`FlatTangents`).
    """
    name = "adam"

    def __init__(self, betas=(0.9, 0.999), delta: float = 1e-8):
        self.b1, self.b2 = betas
        self.delta = delta
        self.reset()

    def reset(self):
        """Forget the moments and the step count."""
        self.m = self.v = None
        self.k = 0
        self.flat = None

    def state(self) -> dict:
        """The memory as named arrays (for checkpoints).

        Returns
        -------
        dict
            ``k``, and ``m<i>``, ``v<i>`` per layer once a step was taken: views, not copies, which stay as they
            are (every step makes new moment arrays; none is changed in place).
        """
        out = {"k": np.array(self.k)}
        if self.m is not None:
            out |= {f"m{i}": a for i, a in enumerate(self.flat.split(self.m))}
            out |= {f"v{i}": a for i, a in enumerate(self.flat.split(self.v))}
        return out

    def restore(self, state: dict) -> None:
        """Continue from a memory that :meth:`state` returned.

        Parameters
        ----------
        state : dict
        """
        self.k = int(state["k"])
        L = sum(1 for k in state if k.startswith("m"))
        self.m = self.v = self.flat = None
        if L:
            m, v = [state[f"m{i}"] for i in range(L)], [state[f"v{i}"] for i in range(L)]
            self.flat = FlatTangents(m)
            self.m, self.v = self.flat.join(m), self.flat.join(v)

    def __call__(self, weights, grads, radii):
        if self.flat is None:
            self.flat = FlatTangents(weights)
        flat = self.flat
        w, grad = flat.join(weights), flat.join(grads)
        self.k += 1
        if self.m is None:
            self.m, self.v = np.zeros_like(w), np.zeros_like(w)
        g, m, v, D = (np.empty_like(w) for _ in range(4))     # new moments: state() hands out views of the old
        g_d = kernels.sphere_adam(w, grad, self.m, self.v, flat.bounds, self.b1, self.b2, 1 - self.b1 ** self.k,
                                  1 - self.b2 ** self.k, self.delta, g, m, v, D)
        self.m, self.v = m, v
        if g_d < 0:
            return flat.split(D), {"fallback": 0.0}
        return flat.split(-g), {"fallback": 1.0}


DIRECTIONS = {"paper": PaperDirection, "rgrad": GradientDirection,
              "cg": lambda: ConjugateGradient("none"), "cg-layer": lambda: ConjugateGradient("layer"),
              "adam": AdamDirection}
