"""One training iteration of this checkout against another checkout of spherenet, timed side by side.

    python benchmarks/bench_against.py BASELINE_DIR [--rounds 15] [--iterations 20] [--methods taylor geo-cg-layer]

For refactors that must not slow the loop down (``git worktree add /tmp/base <rev>`` gives ``BASELINE_DIR``).
The workload is ``bench_iteration.py``'s (23,200 x 12 unit rows, 12-25-30-15-3, full batch, one BLAS thread).
Each round runs one fresh process per checkout, in alternating order, and each process times ``--iterations``
iterations of ``spherenet.train.train`` after one warm-up call; the table shows the best (and the median) over
rounds of the time per iteration, and the ratio this / baseline. Both processes also print a hash of the
run's numbers, so the table says whether the two checkouts compute the same bits.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parents[1]

CHILD = r"""
import hashlib, json, sys, time
import numpy as np
sys.path.insert(0, sys.argv[1])
from spherenet import NormalisedMLP
from spherenet.train import train
N, WIDTHS = 23_200, (12, 25, 30, 15, 3)
rng = np.random.default_rng(0)
X = rng.normal(size=(N, WIDTHS[0])); X /= np.linalg.norm(X, axis=1, keepdims=True)
Y = 0.03 * rng.normal(size=(N, WIDTHS[-1]))
out = {}
for method in sys.argv[3:]:
    train(NormalisedMLP(WIDTHS, seed=0), X, Y, method, iterations=2)          # compile, warm the caches
    net = NormalisedMLP(WIDTHS, seed=0)
    start = time.perf_counter()
    h = train(net, X, Y, method, iterations=int(sys.argv[2]))
    seconds = (time.perf_counter() - start) / max(h.iterations, 1)
    bits = hashlib.sha1(np.array(h.loss_train + h.tau).tobytes()).hexdigest()[:12]
    out[method] = [seconds, bits]
print(json.dumps(out))
"""


def run(tree: Path, iterations: int, methods) -> dict:
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", PYTHONPATH=str(tree))
    done = subprocess.run([sys.executable, "-c", CHILD, str(tree), str(iterations), *methods],
                          capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("baseline", type=Path)
    p.add_argument("--rounds", type=int, default=15)
    p.add_argument("--iterations", type=int, default=20)
    p.add_argument("--methods", nargs="+", default=["taylor", "geo-cg-layer", "mm"])
    args = p.parse_args()
    if not (args.baseline / "spherenet" / "__init__.py").is_file():
        sys.exit(f"bench_against.py: {args.baseline} is not a spherenet checkout (no spherenet/__init__.py)")
    times = {tree: {m: [] for m in args.methods} for tree in ("this", "baseline")}
    bits = {}
    for k in range(args.rounds):
        order = [("this", HERE), ("baseline", args.baseline)][::1 if k % 2 == 0 else -1]
        for label, tree in order:
            for method, (seconds, digest) in run(tree, args.iterations, args.methods).items():
                times[label][method].append(seconds)
                bits[label, method] = digest
    print(f"{'method':14s} {'this ms':>9s} {'baseline ms':>12s} {'ratio':>7s} {'median ratio':>13s}  same bits")
    for m in args.methods:
        this, base = times["this"][m], times["baseline"][m]
        print(f"{m:14s} {1e3 * min(this):9.2f} {1e3 * min(base):12.2f} {min(this) / min(base):7.3f} "
              f"{statistics.median(this) / statistics.median(base):13.3f}  {bits['this', m] == bits['baseline', m]}")


if __name__ == "__main__":
    main()
