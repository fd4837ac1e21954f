"""Benchmark: peak resident memory of a full-batch training run, each in a fresh process.

    python benchmarks/bench_memory.py [--samples 36250] [--iterations 50]

The simulator's data (train part: 80 % of ``--samples``, 29,000 by default) is written once to a temporary
``.npz`` file; then every (dtype, method) pair trains in its own process, which loads the file (so neither
SciPy nor the simulation counts) and reports its peak resident set (``VmHWM``) after the imports and the
data, and after the run. Linux only (``/proc``).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

CHILD = """
import sys
import numpy as np
import spherenet as sn
from spherenet.train import train
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent that forked this process.
peak = lambda: int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
path, dtype, method, iterations = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with np.load(path) as d:
    X, Y, Xt, Yt = (d[k].astype(dtype) for k in ("X", "Y", "Xt", "Yt"))
before = peak()
train(sn.NormalisedMLP((12, 25, 30, 15, 3), seed=0, dtype=dtype), X, Y, method, iterations, Xt, Yt)
print(f"{len(X)} {before:.1f} {peak():.1f}")
"""


def write_data(path: Path, samples: int) -> None:
    import numpy as np

    from spherenet import NormalisedMLP
    from spherenet.experiments import load_problem, scaled_arrays
    train_data, test_data = load_problem(n_samples=samples)
    (X, Y, Xt, Yt), _ = scaled_arrays(train_data, test_data, NormalisedMLP((12, 25, 30, 15, 3), seed=0))
    np.savez(path, X=X, Y=Y, Xt=Xt, Yt=Yt)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=36250)
    p.add_argument("--iterations", type=int, default=50)
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.npz"
        write_data(path, args.samples)
        print(f"{'dtype':8s} {'method':14s} {'N':>6s} {'imports+data MB':>16s} {'peak MB':>8s}")
        for dtype in ("float64", "float32"):
            for method in ("taylor", "geo-cg-layer", "mm"):
                out = subprocess.run([sys.executable, "-c", CHILD, str(path), dtype, method, str(args.iterations)],
                                     capture_output=True, text=True, check=True).stdout.split()
                print(f"{dtype:8s} {method:14s} {out[0]:>6s} {out[1]:>16s} {out[2]:>8s}")


if __name__ == "__main__":
    main()
