"""What every step-size rule shares: the iterate it sees, the step it returns, and the 1-D loss along
the update curve.

A step rule is a callable ``rule(it: Iterate) -> Step`` with a ``name``. It looks at the 1-D function

    φ(t) = J(Γ(t)),   Γ_i(t) = W_i cos t + mu_i V_i sin t   (one angle t for every layer)

and picks the angle ``tau``; the training loop then moves every layer to ``Γ_i(tau)``. Rules live in
``spherenet.taylor`` (Algorithm 1 and its order-r extension) and ``spherenet.mm`` (Algorithm 2). A rule
whose ``uses_adjoints`` attribute is false never reads the backward pass's adjoints (``it.cache.dZ``), so
the training loop does not keep them (less memory); without the attribute they are kept.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from . import sphere
from .network import (Direction, ForwardCache, Workspace, _backward, _direction, _forward_cache,
                      _loss_from_output)
from .spectral import network_weights


@dataclass
class Iterate:
    """The state a step rule sees at one iteration (nothing in it may be modified by the rule).

    Attributes
    ----------
    weights : list of ndarray
        ``W_i: (d_i, d_{i-1})`` on the sphere of radius ``radii[i]``.
    radii : ndarray
    X, Y : ndarray
        ``(N, d_0)``, ``(N, d_L)``: the batch this step is taken on.
    cache : network.ForwardCache
        The forward pass at ``weights``.
    loss : float
        ``J(weights)``.
    grads : list of ndarray
        ``∇_{W_i} J``.
    direction : network.Direction
        ``V_i``, ``beta``, ``alpha``.
    loss_prev : float
        The loss accepted at the previous iteration (``J(W^(0))`` at the first), which Algorithm 1's
        backtracking compares against.
    trial_buffers : network.ForwardCache or None
        Where trial passes go: the training loop's business (in a full-batch run they are ``cache``'s own, and a
        step of ``tau = 0`` gets the pass at ``weights`` recomputed by the loop). So a rule reads ``cache`` (the
        jet, the adjoints) before it evaluates a trial point with :meth:`loss_at`.
    workspace : network.Workspace or None
        Scratch arrays a rule may reuse from iteration to iteration.
    normalisation : spectral.SpectralNormalisation or None
        ``None``: the network computes with ``weights``; else with their spectral normalisation, and ``cache``
        and ``grads`` are those of the normalised network (``grads`` pulled back to ``weights``).
    """
    weights: list
    radii: np.ndarray
    X: np.ndarray
    Y: np.ndarray
    cache: ForwardCache
    loss: float
    grads: list
    direction: Direction
    loss_prev: float
    trial_buffers: ForwardCache | None = None
    workspace: Workspace | None = None
    normalisation: object | None = None

    def loss_at(self, weights: list) -> tuple[float, list, ForwardCache]:
        """The loss at ``weights`` on this iterate's batch.

        Parameters
        ----------
        weights : list of ndarray

        Returns
        -------
        tuple
            ``(J(weights), weights, forward pass)``; each call's forward pass may overwrite the previous call's
            (it goes into ``trial_buffers`` when they are set).
        """
        cache = _forward_cache(network_weights(weights, self.normalisation), self.X, out=self.trial_buffers)
        return _loss_from_output(cache.F, self.Y), weights, cache


@dataclass
class Step:
    """A rule's decision.

    Attributes
    ----------
    tau : float
        The angle taken (0 = stay).
    weights_new, cache_new, loss_new : optional
        ``Γ(tau)``, the forward pass there and ``J(Γ(tau))`` when the rule evaluated them (the loop reuses them as
        the next iteration's forward pass), else ``None``.
    predicted : float
        The rule's model of ``φ(tau) - φ(0)`` (NaN by default).
    halvings : int
        Backtracking halvings.
    flags : tuple of str
        Degenerate cases met, by name (see ``FLAGS``).
    info : dict
        Rule-specific scalars or arrays (e.g. ``kappa``, model coefficients), recorded in the history.
    """
    tau: float
    weights_new: list | None = None
    cache_new: ForwardCache | None = None
    loss_new: float | None = None
    predicted: float = float("nan")
    halvings: int = 0
    flags: tuple = ()
    info: dict = field(default_factory=dict)


FLAGS = {
    "stationary": "beta = 0: every Riemannian gradient vanishes; the step is tau = 0",
    "zero-layer": "some layer's Riemannian gradient is zero; that layer does not move (V_i = 0, Γ_i(t) = W_i); "
                  "set by the training loop from Direction.zero_layers",
    "clipped": "the model's step was longer than eps (or curvature <= 0); tau = eps before backtracking",
    "kappa-nonpositive": "the model's curvature kappa <= 0 (no Newton step)",
    "kappa-nonfinite": "the model's curvature is not finite; tau = eps before backtracking",
    "backtracking-cap": "backtracking hit its cap of halvings without decrease; tau = 0 for this iteration",
    "interval-end": "the 1-D minimiser ended at an end of its search interval",
    "not-unimodal": "the majorant search on [0, pi] ended with m(tau) > m(0) = 0 (m is not unimodal there); "
                    "it was redone by bracketing from a small angle, which finds the local minimum nearest 0",
}


def iterate_at(weights, radii, X, Y, loss_prev: float | None = None) -> Iterate:
    """The :class:`Iterate` a rule sees at ``weights`` on ``(X, Y)`` (unchecked: for tutorials and tests).

    Parameters
    ----------
    weights : list of ndarray
    radii : array_like
    X, Y : ndarray
    loss_prev : float, optional
        Default: the loss at ``weights`` (full batch).

    Returns
    -------
    Iterate
        One forward pass, the backward pass (its adjoints kept in the cache), the direction.
    """
    cache = _forward_cache(weights, X)
    J, grads = _backward(weights, cache, Y)
    return Iterate(weights, np.asarray(radii, dtype=float), X, Y, cache, J, grads,
                   _direction(weights, grads, radii), J if loss_prev is None else loss_prev)


def weights_along(it: Iterate, t: float) -> list:
    """The point at angle ``t`` on the update curve (docs/method.md §3).

    Parameters
    ----------
    it : Iterate
    t : float

    Returns
    -------
    list of ndarray
        ``[Γ_i(t)] = [W_i cos t + mu_i V_i sin t]``; a layer with a zero Riemannian gradient (``V_i = 0``) stays,
        ``Γ_i(t) = W_i``.
    """
    return sphere.curve_layers(it.weights, it.direction.V, it.radii, t, it.direction.rates)


def loss_along(it: Iterate, t: float) -> tuple[float, list, ForwardCache]:
    """``φ(t) = J(Γ(t))`` with the weights and the forward pass it was computed from.

    Parameters
    ----------
    it : Iterate
    t : float

    Returns
    -------
    tuple
        ``(φ(t), weights, cache)`` (:meth:`Iterate.loss_at`: a call's forward pass may overwrite the last one's).
    """
    return it.loss_at(weights_along(it, t))


def backtracking(phi, tau: float, J_prev: float, max_halvings: int = 30) -> tuple[float, int]:
    """Algorithm 1, step 5, on a function of one variable: while ``phi(tau) > J_prev``: ``tau <- tau/2``.

    Parameters
    ----------
    phi : callable
        ``phi(t) -> float``, the loss along the update curve, ``φ(t) = J(Γ(t))``.
    tau : float
        The first angle to try (the model's step); ``0`` returns at once without evaluating ``phi``.
    J_prev : float
        The loss to compare against (the previous accepted loss).
    max_halvings : int, optional
        The cap on halvings (the authors' loop has none; ``2^-30 ≈ 1e-9`` of the first angle is plenty).

    Returns
    -------
    tau : float
        The first ``tau / 2^h`` with ``phi <= J_prev``, or ``0`` (stay) when the cap is reached.
    halvings : int
        ``h``, the number of halvings made.

    Notes
    -----
    A non-finite ``phi(tau)`` counts as no decrease (``nan <= J_prev`` is false).

    Examples
    --------
    >>> backtracking(lambda t: (t - 1.0) ** 2, 4.0, J_prev=1.0)
    (2.0, 1)
    >>> backtracking(lambda t: 1.0 + t, 0.5, J_prev=1.0, max_halvings=3)
    (0.0, 3)
    """
    if tau == 0:
        return 0.0, 0
    for halvings in range(max_halvings + 1):
        if phi(tau) <= J_prev:
            return tau, halvings
        tau /= 2
    return 0.0, max_halvings


def backtrack(it: Iterate, tau: float, max_halvings: int = 30, loss_at=None) -> Step:
    """:func:`backtracking` along a rule's curve, keeping the weights and forward pass of the angle taken (§4).

    Parameters
    ----------
    it : Iterate
        Its ``loss_prev`` is compared against.
    tau : float
        The model's step.
    max_halvings : int, optional
    loss_at : callable, optional
        ``loss_at(t) -> (J, weights, cache)``: the curve to backtrack along (default :func:`loss_along`, the
        shared-angle update curve; ``spherenet.beyond`` passes its per-layer geodesics).

    Returns
    -------
    Step
        With ``weights_new``, ``cache_new``, ``loss_new`` of the accepted angle; reaching the cap gives
        ``tau = 0`` (stay) and the flag ``"backtracking-cap"``.
    """
    loss_at = loss_at or (lambda t: loss_along(it, t))
    last = []                                    # the latest trial: the accepted one, when one is

    def phi(t):
        last[:] = loss_at(t)
        return last[0]

    tau_taken, halvings = backtracking(phi, tau, it.loss_prev, max_halvings)
    if tau_taken == 0:
        return Step(0.0, it.weights, it.cache, it.loss, halvings=halvings,
                    flags=("backtracking-cap",) if tau != 0 else ())
    J, weights, cache = last
    return Step(tau_taken, weights, cache, J, halvings=halvings)
