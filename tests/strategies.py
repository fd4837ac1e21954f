"""Hypothesis strategies shared by the tests: widths, points on spheres, tangent vectors, data sets.

Hypothesis draws every array entry itself (``hypothesis.extra.numpy.arrays``), so a failing example shrinks
to a small shape with simple entries. A drawn array may be degenerate (all zeros, one entry, tiny); each
strategy maps it to a valid object deterministically: it adds a small fixed Gaussian offset before
normalising, so zeros shrink to that offset and never to a division by zero or an exact ReLU tie.
"""
import functools
import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import spherenet as sn

seeds = st.integers(0, 2**32 - 1)
radii = st.floats(1e-3, 1e3)
angles = st.floats(-10.0, 10.0)
# An entry below 1e-30 becomes a zero of its sign: squares of ~1e-160 underflow, and norms of such arrays are
# not what the properties are about (tests/test_fuzz.py covers data scales).
entries = st.floats(-1.0, 1.0, allow_nan=False, allow_infinity=False).map(
    lambda x: x if abs(x) >= 1e-30 else math.copysign(0.0, x))

# Offsets are 1/64 of an entry's range: negligible next to a typical drawn array, decisive for a zero one.
OFFSET_SCALE = 1 / 64


@functools.lru_cache(maxsize=None)
def offset(shape, salt=0) -> np.ndarray:
    """A fixed Gaussian matrix of the given shape, entries of size ~``OFFSET_SCALE`` (read-only): no structure,
    so a network of offsets alone has live ReLUs on inputs of offsets alone."""
    fixed = OFFSET_SCALE * np.random.default_rng([salt, *shape]).standard_normal(shape)
    fixed.setflags(write=False)
    return fixed


@functools.lru_cache(maxsize=None)          # one strategy per shape: Hypothesis validates each new one
def matrices(shape):
    """Arrays of the given shape with entries in [-1, 1], drawn and shrunk entry by entry (a drawn fill value
    with some entries drawn apart, Hypothesis' default for floats: ``entries`` is mapped, so it is named)."""
    return hnp.arrays(np.float64, shape, elements=entries, fill=entries)


def shapes(max_side=9, min_size=1):
    """``(rows, cols)`` with ``rows * cols >= min_size`` (a 1-column shape too small gets a second column)."""
    return hnp.array_shapes(min_dims=2, max_dims=2, max_side=max_side).map(
        lambda s: s if s[0] * s[1] >= min_size else (s[0], 2))


@st.composite
def widths(draw, min_layers=1, max_layers=4, max_width=9):
    L = draw(st.integers(min_layers, max_layers))
    return [draw(st.integers(1, max_width)) for _ in range(L + 1)]


def _on_sphere(A, mu, salt=0):
    """``mu (A + offset) / ||A + offset||_F``; the offset alone if the sum cancels."""
    B = A + offset(A.shape, salt)
    if not np.linalg.norm(B) > OFFSET_SCALE / 4:
        B = offset(A.shape, salt)
    return mu * B / np.linalg.norm(B)


@st.composite
def sphere_points(draw, shape=None):
    """``(W, mu)`` with ``||W||_F = mu`` (to rounding)."""
    shape = shape or draw(shapes())
    mu = draw(radii)
    return _on_sphere(draw(matrices(shape)), mu), mu


def _rotation_tangent(W) -> np.ndarray:
    """A tangent at ``W`` with ``<W, T> = 0`` exactly: the rotation of W's largest entry into another one."""
    w, T = W.ravel(), np.zeros(W.size)
    i = int(np.argmax(np.abs(w)))
    j = (i + 1) % W.size
    T[i], T[j] = -w[j], w[i]
    return T.reshape(W.shape)


@st.composite
def unit_tangents(draw):
    """``(W, V, mu)``: ``W`` on the sphere of radius mu, ``V`` a unit tangent at ``W`` (size >= 2)."""
    W, mu = draw(sphere_points(shape=draw(shapes(min_size=2))))
    xi = sn.sphere.project_tangent(W, _on_sphere(draw(matrices(W.shape)), 1.0, salt=1), mu)
    if not np.linalg.norm(xi) > 1e-3:          # the drawn direction was (nearly) radial
        xi = _rotation_tangent(W)
    return W, xi / np.linalg.norm(xi), mu


def unit_rows(rng, n, d):
    """``n`` samples of dimension ``d`` with unit norm (the paper's input scaling)."""
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


def drawn_unit_rows(A) -> np.ndarray:
    """The rows of ``A + offset`` scaled to unit norm (a zero drawn row becomes its offset's direction)."""
    X = A + offset(A.shape, salt=2)
    cancelled = ~(np.linalg.norm(X, axis=1) > OFFSET_SCALE / 4)
    X[cancelled] = offset(A.shape, salt=2)[cancelled]
    return X / np.linalg.norm(X, axis=1, keepdims=True)


class Problem(NamedTuple):
    """What :func:`problems` draws: unpacks as ``net, X, Y``; its repr shows the weights, so a failing example
    is printed whole."""
    net: sn.NormalisedMLP
    X: np.ndarray
    Y: np.ndarray

    def __repr__(self) -> str:
        return (f"Problem(weights={self.net.weights!r}, radii={self.net.radii!r},\n        X={self.X!r},\n"
                f"        Y={self.Y!r})")

    def _repr_pretty_(self, printer, cycle) -> None:       # Hypothesis prints examples with this
        printer.text(repr(self))


@st.composite
def problems(draw, max_layers=4, max_width=8, max_n=40, fixed_widths=None, n=None):
    """``(net, X, Y)``: a normalised network, unit input rows and targets in [-1, 1], all drawn entry by entry.

    ``fixed_widths``, ``n``: the network's widths and the number of samples, instead of drawn ones.
    """
    ws = list(fixed_widths or draw(widths(min_layers=1, max_layers=max_layers, max_width=max_width)))
    mus = sn.network.radii_for(ws, draw(st.sampled_from(["unit", "agd", 2.0])))
    weights = [_on_sphere(draw(matrices((d_out, d_in))), mu, salt=3 + i)
               for i, (d_in, d_out, mu) in enumerate(zip(ws[:-1], ws[1:], mus))]
    n = n or draw(st.integers(1, max_n))
    X = drawn_unit_rows(draw(matrices((n, ws[0]))))
    return Problem(sn.NormalisedMLP.from_weights(weights, mus), X, draw(matrices((n, ws[-1]))))
