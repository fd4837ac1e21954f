"""Every Numba kernel against its NumPy reference, on the paper's shapes (N = 23,200 samples; the tangent-space
kernels at one mini-batch step's sizes: a 30x25 layer, all 1,545 weights of 12-25-30-15-3; the warm top
eigenpair of a 30x25 layer's 25x25 Gram matrix).

    python benchmarks/bench_kernels.py [--repeats 50]

Timings are interleaved (reference, numba, reference, ...) and the best of --repeats is kept, with one
BLAS thread (as the training loop runs). ``kernels.<name>`` uses the faster of the two; the table says which.
"""
from __future__ import annotations

import argparse
import math
import time

import numpy as np
from threadpoolctl import threadpool_limits

from spherenet import jets, kernels

N = 23_200


def _in_place(G, Z):
    g = G.copy()
    return g[:], Z, g[:]                                      # out = G, as the backward pass calls it (two views)


def _views(Z):
    z = Z.copy()
    return z[:], z[:]                                         # Z and out: two views of one array


def cases(rng):
    """``row -> (kernel, args factory, size label)`` for each kernel pair, at sizes the training loop meets."""
    Z = rng.normal(size=(N, 30))
    G = rng.normal(size=(N, 30))
    W = rng.normal(size=(30, 25))
    H = rng.normal(size=(N, 25))
    cos, sin = jets.curve_coefficients(2)
    Z0b, Zsb, Qsb = rng.normal(size=(2048, 25)), rng.normal(size=(2 * 2048, 25)), rng.normal(size=(2 * 2048, 25))
    E0, Es = rng.normal(size=(2048, 3)), rng.normal(size=(2 * 2048, 3))
    # one mini-batch step's tangent-space work: a 30x25 layer, and all layers of 12-25-30-15-3 as one vector
    W32, G32 = W.astype(np.float32), rng.normal(size=(30, 25)).astype(np.float32)
    u, v1 = rng.normal(size=30), rng.normal(size=25)
    sizes = [25 * 12, 30 * 25, 15 * 30, 3 * 15]
    bounds = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
    w, grad, m = (rng.normal(size=bounds[-1]) for _ in range(3))
    v = rng.random(bounds[-1])
    Z32, G32b = (rng.normal(size=(1024, 30)).astype(np.float32) for _ in range(2))
    gram = W.T @ W                                  # a 30x25 layer's smaller Gram matrix, from a nearby top vector
    start = np.linalg.eigh(gram)[1][:, -1] + 0.01 * rng.normal(size=25)
    return {
        "matmul_nt": ("matmul_nt", lambda: (H, W, np.empty((N, 30))), "(23200x25) @ (30x25)^T"),
        "relu": ("relu", lambda: (Z, np.empty_like(Z)), "23200x30"),
        "relu_mask": ("relu_mask", lambda: (G, Z, np.empty_like(G)), "23200x30"),
        "relu_mask, in place": ("relu_mask", lambda: _in_place(G, Z), "23200x30"),
        # a mini-batch step's hidden layer in float32, in place as the training loop calls both (two views of
        # one array: the loop's Z and H share it, the backward pass overwrites its adjoint)
        "relu, in place, float32": ("relu", lambda: _views(Z32), "1024x30, float32"),
        "relu_mask, in place, float32": ("relu_mask", lambda: _in_place(G32b, Z32), "1024x30, float32"),
        "output_cauchy": ("output_cauchy", lambda: (Z0b, Zsb, Qsb, cos, sin, np.empty((2 * 2048, 25))),
                          "block 2048x25, order 2"),
        "loss_cauchy": ("loss_cauchy", lambda: (E0, Es, np.zeros(3)), "block 2048x3, order 2"),
        "tangent_direction": ("tangent_direction", lambda: (W32, G32, np.empty_like(W32)), "30x25, float32"),
        "sphere_adam": ("sphere_adam", lambda: (w, grad, m, v, bounds, 0.9, 0.999, 0.1, 0.001, 1e-8,
                                                *(np.empty_like(w) for _ in range(4))), "1,545 (12-25-30-15-3)"),
        "spectral_pullback": ("spectral_pullback", lambda: (W32, G32, u, v1, 3.0, 2.0, np.empty_like(G32)),
                              "30x25, float32"),
        "top_eigen_warm": ("top_eigen_warm", lambda: (gram, start, 6, np.empty(25)), "25x25, start 0.01 off"),
    }


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--repeats", type=int, default=50)
    args = p.parse_args()
    rng = np.random.default_rng(0)
    print(f"{'kernel':20s} {'size':26s} {'reference':>11s} {'numba':>11s} {'numba speed-up':>15s}  used")
    with threadpool_limits(1):
        for row, (name, make, label) in cases(rng).items():
            ref, fast = kernels.KERNELS[name]
            best = {ref: math.inf, fast: math.inf}
            for fn in best:
                fn(*make())                                   # compile, first touch
            for _ in range(args.repeats):
                for fn in best:
                    a = make()
                    start = time.perf_counter()
                    fn(*a)
                    best[fn] = min(best[fn], time.perf_counter() - start)
            used = "numba" if getattr(kernels, name) is fast else "reference"
            print(f"{row:20s} {label:26s} {1e6 * best[ref]:9.1f}us {1e6 * best[fast]:9.1f}us "
                  f"{best[ref] / best[fast]:14.2f}x  {used}")


if __name__ == "__main__":
    main()
