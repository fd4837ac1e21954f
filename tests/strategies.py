"""Hypothesis strategies shared by the tests: widths, points on spheres, tangent vectors, data sets."""
import numpy as np
from hypothesis import strategies as st

import spherenet as sn

seeds = st.integers(0, 2**32 - 1)
radii = st.floats(1e-3, 1e3)
angles = st.floats(-10.0, 10.0)


@st.composite
def widths(draw, min_layers=1, max_layers=4, max_width=9):
    L = draw(st.integers(min_layers, max_layers))
    return [draw(st.integers(1, max_width)) for _ in range(L + 1)]


@st.composite
def shapes(draw, max_side=9):
    return draw(st.integers(1, max_side)), draw(st.integers(1, max_side))


@st.composite
def sphere_points(draw, shape=None):
    """``(W, mu)`` with ``||W||_F = mu`` (to rounding)."""
    shape = shape or draw(shapes())
    rng = np.random.default_rng(draw(seeds))
    mu = draw(radii)
    A = rng.normal(size=shape)
    return mu * A / np.linalg.norm(A), mu


@st.composite
def unit_tangents(draw):
    """``(W, V, mu)``: ``W`` on the sphere of radius mu, ``V`` a unit tangent at ``W`` (needs size >= 2)."""
    r, c = draw(shapes())
    if r * c < 2:
        c = 2
    rng = np.random.default_rng(draw(seeds))
    mu = draw(radii)
    W = sn.sphere.project(rng.normal(size=(r, c)), mu)
    xi = sn.sphere.project_tangent(W, rng.normal(size=W.shape), mu)
    return W, xi / np.linalg.norm(xi), mu


def unit_rows(rng, n, d):
    """``n`` samples of dimension ``d`` with unit norm (the paper's input scaling)."""
    X = rng.normal(size=(n, d))
    return X / np.linalg.norm(X, axis=1, keepdims=True)


@st.composite
def problems(draw, max_layers=4, max_width=8, max_n=40):
    """``(net, X, Y)``: a random normalised network and a data set that fits it."""
    ws = draw(widths(min_layers=1, max_layers=max_layers, max_width=max_width))
    seed = draw(seeds)
    rng = np.random.default_rng(seed)
    net = sn.NormalisedMLP(ws, radius=draw(st.sampled_from(["unit", "agd", 2.0])), seed=seed)
    n = draw(st.integers(1, max_n))
    return net, unit_rows(rng, n, ws[0]), rng.normal(size=(n, ws[-1]))
