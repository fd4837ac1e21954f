"""The baseline update rules, one class per optimiser: ``update(params, grads) -> Update``.

* :class:`SGD` and :class:`Adam`: Euclidean, on any list of arrays (the biased MLP's ``[W_1, b_1, ...]``);
* :class:`RetractedSGD`: Riemannian SGD on the product of Frobenius spheres (a fixed learning rate);
* :class:`AGD`: automatic gradient descent (Bernstein et al. 2023, docs/method.md §8), bias-free, no learning rate.

An update never modifies ``params`` in place: it returns new arrays, so the loop can keep the last good
parameters when a step turns out non-finite. Each :class:`Update` also carries what the history records:
``beta`` and ``drift`` (NaN where the optimiser has no such thing), ``flags`` (names from
``spherenet.steps.FLAGS``) and per-step ``info`` scalars.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .. import sphere
from .._checks import finite_float
from ..network import _ZERO_RGRAD, check_widths

NAN = float("nan")


@dataclass
class Update:
    """One optimiser step: the new parameters and what the history records about it."""
    params: list
    beta: float = NAN
    drift: float = NAN
    flags: tuple = ()
    info: dict = field(default_factory=dict)


def _global_norm(grads) -> float:
    return math.sqrt(sum(float(np.vdot(g, g)) for g in grads))


class SGD:
    """Plain gradient descent, ``p <- p - lr ∇_p J`` for every parameter array ``p``."""
    name = "sgd"

    def __init__(self, lr: float):
        self.lr = finite_float("lr", lr, positive=True)

    def __call__(self, params, grads) -> Update:
        new = [p - self.lr * g for p, g in zip(params, grads)]
        return Update(new, info={"lr": self.lr, "grad_norm": _global_norm(grads)})


class Adam:
    """Adam (Kingma & Ba 2015, Algorithm 1), elementwise for every parameter array, step ``t = 1, 2, ...``::

        m <- b1 m + (1 - b1) g          v <- b2 v + (1 - b2) g²
        m̂ = m/(1 - b1^t)                 v̂ = v/(1 - b2^t)
        p <- p - lr m̂/(sqrt(v̂) + eps)

    At ``t = 1``: ``m̂ = g``, ``v̂ = g²``, so the first step is ``-lr g/(|g| + eps)``.
    """
    name = "adam"

    def __init__(self, lr: float, betas=(0.9, 0.999), eps: float = 1e-8):
        self.lr = finite_float("lr", lr, positive=True)
        if np.ndim(betas) != 1 or len(betas) != 2:
            raise ValueError(f"betas must be a pair (b1, b2), got {betas!r}")
        self.b1, self.b2 = (finite_float(f"betas[{i}]", b, nonnegative=True) for i, b in enumerate(betas))
        if not (self.b1 < 1 and self.b2 < 1):
            raise ValueError(f"betas must lie in [0, 1), got {betas!r}")
        self.eps = finite_float("eps", eps, positive=True)
        self.t, self.m, self.v = 0, None, None

    def __call__(self, params, grads) -> Update:
        if self.m is None:
            self.m = [np.zeros_like(g) for g in grads]
            self.v = [np.zeros_like(g) for g in grads]
        self.t += 1
        c1, c2 = 1 - self.b1**self.t, 1 - self.b2**self.t
        new = []
        for i, (p, g) in enumerate(zip(params, grads)):
            self.m[i] = self.b1 * self.m[i] + (1 - self.b1) * g
            self.v[i] = self.b2 * self.v[i] + (1 - self.b2) * (g * g)
            new.append(p - self.lr * (self.m[i] / c1) / (np.sqrt(self.v[i] / c2) + self.eps))
        return Update(new, info={"lr": self.lr, "grad_norm": _global_norm(grads)})


def drift(weights, radii) -> float:
    """``max_i | ||W_i||_F - mu_i | / mu_i``: how far the weights are from their spheres."""
    return max(abs(sphere.fro(W.astype(np.float64)) - mu) / mu for W, mu in zip(weights, radii))


class RetractedSGD:
    """Riemannian SGD on the product of spheres with a fixed learning rate (retraction, not the exp map)::

        grad_i = Proj_{W_i}(∇_i J) = ∇_i J - <W_i, ∇_i J>/mu_i² W_i
        W_i <- R_{W_i}(-lr grad_i) = mu_i (W_i - lr grad_i)/||W_i - lr grad_i||_F

    The weights stay on their spheres (``drift`` records how well). ``beta = Σ_i mu_i ||grad_i||_F`` as for
    spherenet's rules. A layer whose ``grad_i`` is rounding noise (``<= 64 eps ||∇_i J||``, the rule of
    ``spherenet.network.direction``) gets the flag ``"zero-layer"`` (its step is negligible anyway).
    """
    name = "rsgd"

    def __init__(self, lr: float, radii):
        self.lr = finite_float("lr", lr, positive=True)
        # Python floats, not np.float64: a NumPy scalar would promote float32 weights to float64.
        self.radii = [float(mu) for mu in radii]

    def __call__(self, weights, grads) -> Update:
        new, beta, zero = [], 0.0, False
        for W, G, mu in zip(weights, grads, self.radii):
            grad = sphere.rgrad(W, G, mu)
            n = sphere.fro(grad)
            zero |= not n > _ZERO_RGRAD * sphere.fro(G)
            beta += mu * n
            new.append(sphere.retract(W, -self.lr * grad, mu))
        return Update(new, beta=beta, drift=drift(new, self.radii), flags=("zero-layer",) if zero else (),
                      info={"lr": self.lr})


def agd_init(widths, seed=0, dtype=np.float64) -> list[np.ndarray]:
    """AGD's initialisation: ``W_k = sqrt(d_k/d_{k-1}) Q_k`` with ``Q_k: (d_k, d_{k-1})`` semi-orthogonal.

    ``Q_k`` has orthonormal columns (``Q^T Q = I``) when ``d_k >= d_{k-1}``, orthonormal rows (``Q Q^T = I``)
    otherwise; it is Haar-distributed: the Q factor of a Gaussian matrix, with the signs of R's diagonal
    moved into Q. So every singular value of ``W_k`` equals ``sqrt(d_k/d_{k-1})``.
    """
    widths = check_widths(widths)
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    weights = []
    for d_in, d_out in zip(widths[:-1], widths[1:]):
        Q, R = np.linalg.qr(rng.standard_normal((max(d_out, d_in), min(d_out, d_in))))
        Q = Q * np.where(np.diag(R) < 0, -1.0, 1.0)
        Q = Q if d_out >= d_in else Q.T
        weights.append((np.sqrt(d_out / d_in) * Q).astype(dtype))
    return weights


# The reference code's network multiplies every hidden ReLU by sqrt(2) (jxbz/agd, architecture/fcn.py): with
# weights of singular values sqrt(d_k/d_(k-1)) the signal then keeps its size through the layers.
AGD_RELU_GAIN = math.sqrt(2.0)


class AGD:
    """Automatic gradient descent (docs/method.md §8), for the bias-free network, with ``W_k: (d_k, d_{k-1})``::

        G = (1/L) Σ_k sqrt(d_k/d_{k-1}) ||∇_k J||_F
        η = log((1 + sqrt(1 + 4G))/2)
        W_k <- W_k - gain (η/L) sqrt(d_k/d_{k-1}) ∇_k J/||∇_k J||_F

    No learning rate and no manifold. ``gain`` multiplies the step (the reference code's option; its default
    1 is the paper's rule). A layer with ``∇_k J = 0`` does not move (flag ``"zero-layer"``); when every
    gradient is zero, ``G = 0``, ``η = 0`` (flag ``"stationary"``).
    """
    name = "agd"

    def __init__(self, gain: float = 1.0):
        self.gain = finite_float("gain", gain, positive=True)

    def __call__(self, weights, grads) -> Update:
        L = len(weights)
        scales = [math.sqrt(W.shape[0] / W.shape[1]) for W in weights]
        norms = [sphere.fro(G) for G in grads]
        G_sum = sum(s * n for s, n in zip(scales, norms)) / L
        eta = math.log((1 + math.sqrt(1 + 4 * G_sum)) / 2)
        new = [W - (self.gain * eta / L) * s * (G / n) if n > 0 else W.copy()
               for W, G, s, n in zip(weights, grads, scales, norms)]
        flags = ("stationary",) if G_sum == 0 else ("zero-layer",) if min(norms) == 0 else ()
        return Update(new, flags=flags, info={"eta": eta, "G": G_sum})
