"""Benchmark: the order-r loss jet along Γ(t) against one forward pass (METHOD.md §6).

    python benchmarks/bench_jets.py [--dtype float64|float32] [--repeats 30] [--blocks]

Problem: N = 23,200 inputs of dimension 12 through a 12-25-30-15-3 network (the paper's quadrotor size).
``jet / forward`` is the time of ``jets.loss_jet_from`` (orders 1..r; order 0 is the forward cache, reused)
divided by one forward pass ``network._forward_cache``. The target is ``<= 2r + 1``: the W/V split costs
two products per layer per order where the forward pass costs one.

Timings are interleaved (forward, r = 1, ..., r = 6, forward, ...) and the best of ``--repeats`` rounds is
kept, so a busy machine slows every column alike; the forward pass is also timed back to back (its arrays
then stay in the caches, as they do not in the training loop, where it follows other passes), and the
ratio to that is printed too. ``--blocks`` also times the sample-block size
``jets.BLOCK``; the kernel table compares each jet kernel's reference and numba versions.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from spherenet import jets, kernels
from spherenet.network import NormalisedMLP, Workspace, _backward, _direction, _forward_cache

WIDTHS = [12, 25, 30, 15, 3]
N = 23_200
ORDERS = range(1, 7)


def interleaved_best(fns: dict, repeats: int) -> dict:
    """Best wall time of each callable over ``repeats`` rounds, one call of each per round."""
    for fn in fns.values():
        fn()                                              # warm-up: JIT compile, first-touch page faults
    best = dict.fromkeys(fns, np.inf)
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            best[name] = min(best[name], time.perf_counter() - start)
    return best


def problem(dtype):
    rng = np.random.default_rng(0)
    net = NormalisedMLP(WIDTHS, seed=0, dtype=dtype)
    X = rng.normal(size=(N, WIDTHS[0]))
    X = (X / np.linalg.norm(X, axis=1, keepdims=True)).astype(dtype)
    Y = rng.normal(size=(N, WIDTHS[-1])).astype(dtype)
    cache = _forward_cache(net.weights, X)
    _, grads = _backward(net.weights, cache, Y)
    return net, X, Y, cache, _direction(net.weights, grads, net.radii).V


def jet_table(net, X, Y, cache, V, repeats: int) -> None:
    W, radii = net.weights, net.radii
    out = Workspace().cache("forward", W, X)         # preallocated, as the training loop runs it
    fns = {"forward": lambda: _forward_cache(W, X, out)}
    fns |= {r: (lambda r=r: jets.loss_jet_from(cache, W, V, radii, X, Y, r)) for r in ORDERS}
    best = interleaved_best(fns, repeats)
    t_fwd = best["forward"]
    t_warm = min(interleaved_best({"forward": fns["forward"]}, 1)["forward"] for _ in range(repeats))
    print(f"N = {N}, widths {WIDTHS}, {X.dtype}, jets.BLOCK = {jets.BLOCK}; one forward pass: {t_fwd * 1e3:.2f} ms "
          f"interleaved with the jets, {t_warm * 1e3:.2f} ms back to back (best of {repeats})")
    print(f"{'r':>2} {'jet ms':>8} {'jet/forward':>12} {'(back to back)':>15} {'target 2r+1':>12}")
    for r in ORDERS:
        print(f"{r:>2} {best[r] * 1e3:8.2f} {best[r] / t_fwd:12.2f} {best[r] / t_warm:15.2f} {2 * r + 1:12d}")


def block_table(net, X, Y, cache, V, repeats: int) -> None:
    W, radii = net.weights, net.radii
    sizes = (256, 512, 1024, 2048, 4096, N)
    print(f"\njet ms by sample-block size jets.BLOCK (best of {repeats}):")
    print(f"{'r':>2} " + " ".join(f"{b:>8}" for b in sizes))
    default = jets.BLOCK
    for r in (1, 3, 6):
        def at(size, r=r):
            def run():
                jets.BLOCK = size
                jets.loss_jet_from(cache, W, V, radii, X, Y, r)
            return run
        best = interleaved_best({b: at(b) for b in sizes}, repeats)
        print(f"{r:>2} " + " ".join(f"{best[b] * 1e3:8.2f}" for b in sizes))
    jets.BLOCK = default


def kernel_table(cache, Y, dtype, repeats: int) -> None:
    n = jets.BLOCK
    print(f"\njet kernels on one block of {n} samples (layer 2 -> 3: 30 units; loss: 3 outputs), ms:")
    print(f"{'kernel':>14} {'r':>2} {'reference':>10} {'numba':>8} {'speed-up':>9}")
    Z0, F0 = cache.Z[1][:n], cache.F[:n]
    for r in (2, 6):
        cos, sin = jets.curve_coefficients(r, dtype)
        args = {"output_cauchy": (Z0, np.tile(Z0, (r, 1)), np.tile(Z0[::-1], (r, 1)), cos, sin,
                                  np.empty((r * n, Z0.shape[1]), dtype)),
                "loss_cauchy": (F0 - Y[:n], np.tile(F0, (r, 1)), np.zeros(r + 1))}
        for name, a in args.items():
            ref, fast = kernels.KERNELS[name]
            best = interleaved_best({"ref": lambda: ref(*a), "numba": lambda: fast(*a)}, repeats)
            print(f"{name:>14} {r:>2} {best['ref'] * 1e3:10.3f} {best['numba'] * 1e3:8.3f} "
                  f"{best['ref'] / best['numba']:9.1f}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--blocks", action="store_true", help="also time jets.BLOCK sizes")
    args = parser.parse_args(argv)
    dtype = np.dtype(args.dtype)
    net, X, Y, cache, V = problem(dtype)
    jet_table(net, X, Y, cache, V, args.repeats)
    if args.blocks:
        block_table(net, X, Y, cache, V, args.repeats)
    kernel_table(cache, Y, dtype, args.repeats)


if __name__ == "__main__":
    main()
