"""`geo-batch` at tight Lipschitz budgets: spectral layers against the Frobenius spheres, steps skipped.

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_tight_budget.py [--steps 1000] [--seed 1] [--budgets 150 474 1500]

The simulator's default data (30,000 samples, random split, the standard scaling at each budget ``K``), batch
1024, float32, one thread. For every budget and norm: halvings per step, the share of steps skipped (``tau =
0``: the step and both halvings failed on the batch), the test RMSE [N] at the end, and how close the top two
singular values of the layers end (the largest ``sigma_2/sigma_1`` over the layers). A tight budget makes
a layer want all its singular values at the top; where the top two meet, ``||W||_2`` has only one-sided
derivatives and the loss along the geodesic is no longer smooth (docs/beyond.md §8).
"""
from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

from spherenet.experiments import fit_scaling, load_problem, network_widths, scaled_arrays, settings_for
from spherenet.network import NormalisedMLP
from spherenet.train import train


def one_run(K: float, norm: str, steps: int, seed: int) -> dict:
    s = settings_for(method="geo-batch", batch_size=1024, lipschitz=K, seed=seed, norm=norm)
    tr, te = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    net = NormalisedMLP(network_widths(s), seed=seed, dtype=np.float32)
    scaling = fit_scaling(s, tr, net)
    (X, Y, Xt, Yt), _ = scaled_arrays(tr, te, net, np.float32, scaling)
    h = train(net, X, Y, "geo-batch", steps, Xt, Yt, batch_size=1024, seed=seed, eval_every=steps, norm=norm)
    top_two = [np.linalg.svd(W.astype(np.float64), compute_uv=False)[:2] for W in net.weights]
    return {"halvings": float(np.mean(h.halvings)), "skipped": float(np.mean(np.array(h.tau) == 0)),
            "rmse": float(scaling.rmse_newtons(h.loss_test[-1])), "gap": max(s2 / s1 for s1, s2 in top_two)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--budgets", type=float, nargs="+", default=[150.0, 474.0, 1500.0])
    args = p.parse_args()
    print(f"{'K':>8} {'norm':10} {'halvings/step':>14} {'skipped':>8} {'test RMSE [N]':>14} {'sigma2/sigma1':>14}   "
          f"({args.steps} steps, seed {args.seed})")
    with threadpool_limits(1):
        for K in args.budgets:
            for norm in ("spectral", "frobenius"):
                r = one_run(K, norm, args.steps, args.seed)
                print(f"{K:8g} {norm:10} {r['halvings']:14.2f} {r['skipped']:8.0%} {r['rmse']:14.3f} {r['gap']:14.5f}",
                      flush=True)


if __name__ == "__main__":
    main()
