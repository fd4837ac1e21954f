"""The model a mini-batch run reports: an exponential average of its iterates, back on the spheres
(docs/beyond.md §9).

On mini-batches the iterates ``W^(k)`` do not settle: each step follows its own batch, so they jitter around
the minimiser of the expected loss. Their average removes most of that jitter (Polyak–Ruppert averaging):

    S_k = rho S_{k-1} + (1 - rho) W^(k),   S_0 = 0
    A_k = S_k / (1 - rho^k)                      the bias-corrected average of W^(1), ..., W^(k)
    M_k,i = mu_i A_k,i / ||A_k,i||_F             layer by layer back onto the sphere ||M_i||_F = mu_i

``M_k`` is the model the run reports: its evaluations, and the network :func:`spherenet.train.trained_network`
returns. It is on the spheres, so the Lipschitz certificate covers it exactly as it covers an iterate; the
optimiser never steps from it (it continues from ``W^(k)``), so the average changes what a run reports, not
how it trains. ``rho = 0.95`` averages over about 1/(1 - rho) = 20 steps, the memory of geo-batch's direction.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import finite_float

# The memory of the reported average on mini-batches (``train(average="auto")``).
MEMORY = 0.95
# An average this much shorter than the radius has cancelled: it has no direction to project onto the sphere.
_CANCELLED = 1e-6


def check_memory(memory) -> float:
    """``memory`` as a float in ``[0, 1)`` (0: no average, the last iterate is reported).

    Parameters
    ----------
    memory : float

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Outside ``[0, 1)`` or not finite.
    """
    memory = finite_float("average", memory, nonnegative=True)
    if not memory < 1:
        raise ValueError(f"average must be in [0, 1), got {memory!r}")
    return memory


class IterateAverage:
    """The running average ``S_k``, ``1 - rho^k`` of the module docstring, and the model ``M_k`` from it.

    Parameters
    ----------
    memory : float
        ``rho`` in ``(0, 1)``.
    radii : array_like
        ``mu_i``.

    Notes
    -----
    Kept in float64 whatever the weights' dtype. Every fold makes a new array (never changes one in place), so
    a checkpoint can tell by identity whether the state changed since it last wrote it.
    """

    def __init__(self, memory: float, radii):
        self.rho = check_memory(memory)
        self.radii = np.asarray(radii, dtype=np.float64)
        self.sum: np.ndarray | None = None
        self.weight = 0.0                      # 1 - rho^k

    def fold(self, weights) -> None:
        """``S <- rho S + (1 - rho) W``, ``weight <- rho weight + (1 - rho)``.

        Parameters
        ----------
        weights : list of ndarray
            The iterate after a step.
        """
        flat = np.concatenate([np.ravel(W) for W in weights]).astype(np.float64)
        self.sum = (1 - self.rho) * flat if self.sum is None else self.rho * self.sum + (1 - self.rho) * flat
        self.weight = self.rho * self.weight + (1 - self.rho)

    def model(self, like) -> list | None:
        """``M`` (module docstring) shaped and typed as the list ``like``, or ``None`` before the first fold.

        Parameters
        ----------
        like : list of ndarray
            The current iterate; a layer whose average has (nearly) cancelled, ``||A_i|| <= 1e-6 mu_i``, which
            has no direction to project, is reported as this iterate's.

        Returns
        -------
        list of ndarray or None
        """
        if self.sum is None:
            return None
        model, start = [], 0
        for W, mu in zip(like, self.radii):
            A = self.sum[start:start + W.size].reshape(W.shape) / self.weight
            start += W.size
            size = np.linalg.norm(A)
            model.append((A * (mu / size)).astype(W.dtype) if size > _CANCELLED * mu else W.copy())
        return model

    def state(self) -> dict:
        """``{"average": S, "average_weight": 1 - rho^k}``, empty before the first fold.

        Returns
        -------
        dict
        """
        return {} if self.sum is None else {"average": self.sum, "average_weight": self.weight}

    def restore(self, state: dict, sizes: int) -> None:
        """Continue from what :meth:`state` returned (other keys of ``state`` are ignored; none: start afresh).

        Parameters
        ----------
        state : dict
        sizes : int
            The number of weights, ``sum_i W_i.size``.

        Raises
        ------
        ValueError
            For a sum that is not ``sizes`` finite numbers, or a weight outside ``(0, 1]``.
        """
        if "average" not in state:
            self.sum, self.weight = None, 0.0
            return
        try:
            total, weight = np.asarray(state["average"], dtype=np.float64), float(state["average_weight"])
        except (KeyError, TypeError, ValueError):
            total, weight = np.array([np.nan]), math.nan
        if total.shape != (sizes,) or not np.isfinite(total).all() or not 0 < weight <= 1:
            raise ValueError(f"the run's state 'average' (the average of its iterates) is not {sizes} finite "
                             f"numbers with a weight in (0, 1]: {str(state.get('average'))[:80]}, weight "
                             f"{state.get('average_weight')!r}")
        self.sum, self.weight = total, weight


def averaged_weights(history, weights, radii) -> list:
    """The model a run reports: ``M`` from the average in ``history.batch_state``, or ``weights`` (the last
    iterate) when the run kept none.

    Parameters
    ----------
    history : spherenet.train.History
    weights : list of ndarray
        The run's last iterate (``net.weights`` after ``train``).
    radii : array_like

    Returns
    -------
    list of ndarray
    """
    average = IterateAverage(MEMORY, radii)            # not stored: the model needs only the sum and its weight
    average.restore(history.batch_state, sum(W.size for W in weights))
    return average.model(weights) or list(weights)
