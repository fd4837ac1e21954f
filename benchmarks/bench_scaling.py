"""Benchmark: how the cost of one Algorithm-1 iteration grows with samples N, hidden width, depth L, and how
the order-r jet grows with r; each with its measured log-log exponent.

    python benchmarks/bench_scaling.py [--dtype float64|float32] [--repeats 5]

One iteration is timed as the training loop times it (backward, direction, order-2 jet by the adjoint
identity, acceptance forward, update; the fastest of ``--repeats`` iterations, one BLAS thread). The
exponent ``p`` is the least-squares slope of log(time) against log(size) over the listed sizes: the
arithmetic grows like N^1, width^2 (the hidden products) and L^1, so these are the exponents to expect once
fixed per-call costs stop mattering. The order sweep times ``jets.loss_jet_from`` (orders 1..r) against
one forward pass; its arithmetic grows like r (two products per layer per order) plus the r^2 Cauchy sums.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
from threadpoolctl import threadpool_limits

from spherenet import jets
from spherenet.network import NormalisedMLP, _backward, _direction, _forward_cache
from spherenet.train import train


def problem(widths, n, dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, widths[0]))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)
    Y = (0.03 * rng.normal(size=(n, widths[-1]))).astype(dtype)
    return NormalisedMLP(widths, seed=seed, dtype=dtype), X, Y


def iteration_seconds(widths, n, dtype, repeats) -> float:
    net, X, Y = problem(widths, n, dtype)
    h = train(net, X, Y, "taylor", repeats + 1)          # the first iteration also touches fresh buffers
    return float(np.diff(h.seconds).min())


def exponent(sizes, seconds) -> float:
    return float(np.polyfit(np.log(sizes), np.log(seconds), 1)[0])


def hidden(width, depth):
    return (12,) + (width,) * (depth - 1) + (3,)


def sweep(title, label, sizes, widths_for, n_for, dtype, repeats) -> None:
    seconds = [iteration_seconds(widths_for(s), n_for(s), dtype, repeats) for s in sizes]
    print(f"\n{title}")
    print(f"{label:>8} {'ms/iteration':>13} {'ratio to first':>15}")
    for s, t in zip(sizes, seconds):
        print(f"{s:>8} {t * 1e3:13.2f} {t / seconds[0]:15.2f}")
    print(f"measured exponent: time ~ {label}^{exponent(sizes, seconds):.2f} over {sizes[0]}..{sizes[-1]}")


def order_sweep(dtype, repeats, n=23_200) -> None:
    net, X, Y = problem((12, 25, 30, 15, 3), n, dtype)
    cache = _forward_cache(net.weights, X)
    _, grads = _backward(net.weights, cache, Y)
    V = _direction(net.weights, grads, net.radii).V

    def best(fn):
        fn()
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    t_fwd = best(lambda: _forward_cache(net.weights, X, cache))
    orders = list(range(1, 7))
    seconds = [best(lambda r=r: jets.loss_jet_from(cache, net.weights, V, net.radii, X, Y, r)) for r in orders]
    print(f"\norder-r jet, 12-25-30-15-3, N = {n} (one forward pass {t_fwd * 1e3:.2f} ms)")
    print(f"{'r':>8} {'ms':>13} {'jet/forward':>15}")
    for r, t in zip(orders, seconds):
        print(f"{r:>8} {t * 1e3:13.2f} {t / t_fwd:15.2f}")
    print(f"measured exponent: time ~ r^{exponent(orders, seconds):.2f} over r = 1..6 "
          f"(r = 3..6: r^{exponent(orders[2:], seconds[2:]):.2f})")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args()
    dtype = np.dtype(args.dtype).type
    print(f"{args.dtype}; fastest of {args.repeats} iterations of the training loop, one BLAS thread")
    sweep("samples N (widths 12-25-30-15-3)", "N", [2900, 5800, 11600, 23200, 46400],
          lambda n: (12, 25, 30, 15, 3), lambda n: n, dtype, args.repeats)
    sweep("hidden width (depth L = 4, N = 23,200)", "width", [15, 25, 35, 50, 70],
          lambda w: hidden(w, 4), lambda w: 23_200, dtype, args.repeats)
    sweep("depth L (hidden width 25, N = 23,200)", "L", [4, 6, 8, 10, 12],
          lambda L: hidden(25, L), lambda L: 23_200, dtype, args.repeats)
    with threadpool_limits(1):
        order_sweep(dtype, args.repeats)


if __name__ == "__main__":
    main()
