"""How far does geo-batch (the mini-batch rule) let the weights drift off their spheres over 100,000 steps?

Every step is the real thing through ``spherenet.train.train``: a mini-batch, forward, backward, Adam's
direction on the spheres, the averaged Newton step (secant curvature), at most two halvings, ``W_i <- Γ_i(tau)`` in
increment form; no re-projection. A small net (5-8-6-3, radii 1, 2, 0.5) on 512 samples in the unit ball,
batches of 8, so 100,000 steps take minutes. Printed per dtype: the drift
``max_i | ||W_i||_F - mu_i | / mu_i`` (maximum over the run so far) after 1e3, 1e4, 1e5 steps, the fraction
of steps that moved, and the last training loss. Targets (issue 18): <= 1e-12 in float64, <= 1e-5 in float32.

    python benchmarks/bench_batch_drift.py [--steps 100000] [--batch-size 8]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import spherenet as sn
from spherenet.train import train

WIDTHS = [5, 8, 6, 3]


def problem(n=512, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, WIDTHS[0]))
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1.0)
    teacher = sn.NormalisedMLP(WIDTHS, radius=[2.0, 2.0, 2.0], seed=seed + 1)
    return X, teacher.forward(X) + 0.01 * rng.normal(size=(n, WIDTHS[-1]))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--batch-size", type=int, default=8)
    args = p.parse_args()
    X, Y = problem()
    marks = [m for m in (1_000, 10_000, 100_000, args.steps) if m <= args.steps]
    marks = sorted(set(marks))
    print(f"{'dtype':8s} " + " ".join(f"{f'drift@{m:g}':>14s}" for m in marks) + f" {'moved':>6s} "
          f"{'loss start':>11s} {'loss end':>10s} {'s':>6s}")
    for dtype in (np.float64, np.float32):
        net = sn.NormalisedMLP(WIDTHS, radius=[1.0, 2.0, 0.5], seed=0, dtype=dtype)
        start = time.perf_counter()
        h = train(net, X.astype(dtype), Y.astype(dtype), "geo-batch", args.steps, batch_size=args.batch_size,
                  seed=0)
        worst = np.maximum.accumulate(h.drift)
        moved = float(np.mean(np.array(h.tau) > 0))
        print(f"{np.dtype(dtype).name:8s} " + " ".join(f"{worst[m - 1]:14.2e}" for m in marks)
              + f" {moved:6.2f} {h.loss_train[0]:11.3e} {h.loss_train[-1]:10.3e} {time.perf_counter() - start:6.0f}",
              flush=True)


if __name__ == "__main__":
    main()
