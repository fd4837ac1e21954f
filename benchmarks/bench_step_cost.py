"""One mini-batch step of spherenet's ``geo-batch`` against one step of PyTorch Adam, side by side.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step_cost.py [--steps 500] [--rounds 3]

The same 24,000 x 12 data and batch 1024: ``geo-batch`` on the bias-free 12-25-30-15-3 sphere net (float32, the
default with mini-batches, and float64; ``spherenet.train.train``'s training seconds), ``torch.optim.Adam`` on
the biased 12-25-30-15-3 MLP (float32,
one thread, a random permutation per epoch, as its users write the loop). Best over ``--rounds`` of the mean
time per step, alternated; needs PyTorch.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

import spherenet as sn
from spherenet.train import train

N, WIDTHS, BATCH = 24_000, (12, 25, 30, 15, 3), 1024


def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, WIDTHS[0]))
    Y = np.tanh(X[:, :3]) + 0.1 * rng.normal(size=(N, WIDTHS[-1]))
    return X, Y


def spherenet_step(X, Y, steps: int, dtype=np.float32) -> float:
    net = sn.NormalisedMLP(WIDTHS, seed=1, dtype=dtype)
    X = (X / np.linalg.norm(X, axis=1).max()).astype(dtype)
    history = train(net, X, Y.astype(dtype), "geo-batch", iterations=steps, batch_size=BATCH, eval_every=10**9)
    return history.seconds[-1] / history.iterations


def torch_step(X, Y, steps: int) -> float:
    import torch
    torch.set_num_threads(1)
    layers = []
    for d_in, d_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        layers += [torch.nn.Linear(d_in, d_out), torch.nn.ReLU()]
    model = torch.nn.Sequential(*layers[:-1])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    Xt, Yt = torch.tensor(X, dtype=torch.float32), torch.tensor(Y, dtype=torch.float32)
    generator = torch.Generator().manual_seed(0)
    start, k = time.perf_counter(), 0
    while k < steps:
        order = torch.randperm(N, generator=generator)
        for b in range(0, N - BATCH + 1, BATCH):
            idx = order[b:b + BATCH]
            opt.zero_grad()
            ((model(Xt[idx]) - Yt[idx]) ** 2).mean().backward()
            opt.step()
            k += 1
            if k == steps:
                break
    return (time.perf_counter() - start) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=500)
    p.add_argument("--rounds", type=int, default=3)
    args = p.parse_args()
    X, Y = data()
    dtypes = (np.float32, np.float64)
    for dtype in dtypes:
        spherenet_step(X, Y, 20, dtype)                                 # compile, warm up
    torch_step(X, Y, 20)
    ours, theirs = {d: [] for d in dtypes}, []
    for _ in range(args.rounds):
        for dtype in dtypes:
            ours[dtype].append(spherenet_step(X, Y, args.steps, dtype))
        theirs.append(torch_step(X, Y, args.steps))
    for dtype in dtypes:
        print(f"geo-batch {np.dtype(dtype).name} {1e3 * min(ours[dtype]):.3f} ms/step, PyTorch Adam (float32) "
              f"{1e3 * min(theirs):.3f} ms/step, ratio {min(ours[dtype]) / min(theirs):.2f}")


if __name__ == "__main__":
    main()
