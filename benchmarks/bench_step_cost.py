"""One mini-batch step of spherenet's ``geo-batch`` against one step of PyTorch Adam, side by side.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_step_cost.py [--steps 500] [--rounds 3]

The same 24,000 x 12 data and batch 1024: ``geo-batch`` on the bias-free 12-25-30-15-3 sphere net, its inputs in
the unit ball and its targets scaled to a largest norm of ``rho = 10^-1.5`` (the budget ladder's first rung,
which it picks for spectral layers on every data set measured; a tighter budget makes the spectral rule skip
steps, ``bench_tight_budget.py``) (float32, the
default with mini-batches, and float64; with spectral layers, its default, and on the paper's Frobenius
spheres; ``spherenet.train.train``'s training seconds), the project's Adam baseline on the biased
12-25-30-15-3 MLP (``spherenet.baselines.train_adam``, float32: ``torch.optim.Adam``'s updates in NumPy) and
``torch.optim.Adam`` on the same MLP (float32, one thread, a random permutation per epoch, as its users write
the loop). Best over ``--rounds`` of the mean time per step, alternated; needs PyTorch.
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


RHO = 10 ** -1.5


def spherenet_step(X, Y, steps: int, dtype=np.float32, norm="spectral") -> tuple[float, float]:
    """Seconds per step and halvings per step."""
    net = sn.NormalisedMLP(WIDTHS, seed=1, dtype=dtype)
    X = (X / np.linalg.norm(X, axis=1).max()).astype(dtype)
    Y = (Y * (RHO / np.linalg.norm(Y, axis=1).max())).astype(dtype)
    history = train(net, X, Y, "geo-batch", iterations=steps, batch_size=BATCH, eval_every=10**9, norm=norm)
    return history.seconds[-1] / history.iterations, float(np.mean(history.halvings))


def numpy_adam_step(X, Y, steps: int) -> float:
    from spherenet.baselines import train_adam
    _, history = train_adam(WIDTHS, X.astype(np.float32), Y.astype(np.float32), 1e-2, iterations=steps,
                            batch_size=BATCH, eval_every=10**9, dtype=np.float32)
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
    cases = [(dtype, norm) for norm in ("spectral", "frobenius") for dtype in (np.float32, np.float64)]
    for dtype, norm in cases:
        spherenet_step(X, Y, 20, dtype, norm)                           # compile, warm up
    torch_step(X, Y, 20)
    numpy_adam_step(X, Y, 20)
    ours, theirs, adam = {case: [] for case in cases}, [], []
    for _ in range(args.rounds):
        for case in cases:
            ours[case].append(spherenet_step(X, Y, args.steps, *case))
        theirs.append(torch_step(X, Y, args.steps))
        adam.append(numpy_adam_step(X, Y, args.steps))
    print(f"spherenet's Adam baseline (NumPy, float32) {1e3 * min(adam):.3f} ms/step, PyTorch Adam (float32) "
          f"{1e3 * min(theirs):.3f} ms/step, ratio {min(adam) / min(theirs):.2f}")
    for (dtype, norm), runs in ours.items():
        best = min(t for t, _ in runs)
        print(f"geo-batch {norm:9s} {np.dtype(dtype).name} {1e3 * best:.3f} ms/step ({runs[0][1]:.2f} halvings/step), "
              f"PyTorch Adam (float32) {1e3 * min(theirs):.3f} ms/step, ratio {best / min(theirs):.2f}; against "
              f"spherenet's Adam {best / min(adam):.2f}")


if __name__ == "__main__":
    main()
