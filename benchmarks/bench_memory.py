"""Benchmark: peak resident memory of a training run, each in a fresh process.

    python benchmarks/bench_memory.py [--samples 36250] [--iterations 50]               # full batch, as before
    python benchmarks/bench_memory.py --million [--iterations 2] [--batch-iterations 10]    # issue 18

Default: the simulator's data (train part: 80 % of ``--samples``, 29,000 by default) is written once to a
temporary ``.npz`` file; then every (dtype, method) pair trains full batch in its own process, which loads
the file (so neither SciPy nor the simulation counts) and reports its peak resident set (``VmHWM``) after
the imports and the data, and after the run. Linux only (``/proc``).

``--million``: 10^6 training samples x 12 features (the simulator's rows at ``--samples``, drawn with
replacement to 10^6 + a 250,000-sample test part: memory does not depend on the values), saved as ``.npy``
files in each dtype and opened memory-mapped (``spherenet.data.load_arrays``): every pass reads them block by
block, and the pages it touched count in the resident set (file pages, which the kernel may drop). Every
method — each of ``spherenet.train.RULES`` and the baselines (sgd, adam, rsgd at lr 1e-3; agd) — full batch
and with ``--batch-size``. The budget is 1024 MB per run (imports and data included); the last column says
whether the run stays within it. ``--methods a,b`` measures only those.
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
from spherenet.train import train, RULES
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the parent that forked this process.
peak = lambda: int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
path, dtype, method, iterations = sys.argv[1], np.dtype(sys.argv[2]), sys.argv[3], int(sys.argv[4])
batch_size = None if sys.argv[5] == "full" else int(sys.argv[5])
if path.endswith(".npz"):
    with np.load(path) as d:
        X, Y, Xt, Yt = (d[k].astype(dtype) for k in ("X", "Y", "Xt", "Yt"))
else:                                  # a folder of .npy files in this dtype, memory-mapped
    X, Y, Xt, Yt = sn.data.load_arrays(path)
widths = (X.shape[1], 25, 30, 15, 3)
before = peak()
if method in RULES:
    train(sn.NormalisedMLP(widths, seed=0, dtype=dtype), X, Y, method, iterations, Xt, Yt, batch_size=batch_size)
else:
    from spherenet.baselines import run_baseline
    run_baseline(method, widths, X, Y, Xt, Yt, iterations=iterations, batch_size=batch_size, dtype=dtype,
                 lr=None if method == "agd" else 1e-3)
print(f"{len(X)} {before:.1f} {peak():.1f}")
"""

BUDGET_MB = 1024
DTYPES = ("float64", "float32")
BASELINES = ("sgd", "adam", "rsgd", "agd")


def simulated_arrays(samples: int, million: bool):
    import numpy as np

    from spherenet import NormalisedMLP
    from spherenet.experiments import load_problem, scaled_arrays
    train_data, test_data = load_problem(n_samples=samples)
    (X, Y, Xt, Yt), _ = scaled_arrays(train_data, test_data, NormalisedMLP((12, 25, 30, 15, 3), seed=0))
    if million:
        rng = np.random.default_rng(0)
        rows, test_rows = rng.integers(0, len(X), 1_000_000), rng.integers(0, len(Xt), 250_000)
        X, Y, Xt, Yt = X[rows], Y[rows], Xt[test_rows], Yt[test_rows]
    return X, Y, Xt, Yt


def write_data(folder: Path, samples: int, million: bool) -> dict:
    """The data file (``.npz``) or, for ``--million``, one folder of ``.npy`` files per dtype."""
    import numpy as np

    from spherenet.data import save_arrays
    X, Y, Xt, Yt = simulated_arrays(samples, million)
    if not million:
        np.savez(folder / "data.npz", X=X, Y=Y, Xt=Xt, Yt=Yt)
        return {dtype: folder / "data.npz" for dtype in DTYPES}
    return {dtype: save_arrays(folder / dtype, *(A.astype(dtype) for A in (X, Y, Xt, Yt))) for dtype in DTYPES}


def measure(path: Path, dtype: str, method: str, iterations: int, batch) -> list[str]:
    return subprocess.run([sys.executable, "-c", CHILD, str(path), dtype, method, str(iterations), str(batch)],
                          capture_output=True, text=True, check=True).stdout.split()


def runs(args) -> list[tuple]:
    """``(method, batch, iterations)`` to measure."""
    from spherenet.train import RULES
    if not args.million:
        methods = args.methods or ["taylor", "geo-cg-layer", "mm"]
        return [(m, "full", args.iterations) for m in methods]
    methods = args.methods or list(RULES) + list(BASELINES)
    return [(m, batch, iterations) for m in methods
            for batch, iterations in (("full", args.iterations), (args.batch_size, args.batch_iterations))]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=36250)
    p.add_argument("--iterations", type=int, default=50, help="full-batch iterations")
    p.add_argument("--million", action="store_true", help="10^6 training samples, full batch and mini-batches")
    p.add_argument("--batch-size", type=int, default=1024)
    p.add_argument("--batch-iterations", type=int, default=20, help="mini-batch steps (--million)")
    p.add_argument("--methods", type=lambda s: s.split(","), help="comma-separated methods (default: all)")
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        paths = write_data(Path(tmp), args.samples, args.million)
        print(f"{'dtype':8s} {'method':14s} {'batch':>6s} {'N':>8s} {'imports+data MB':>16s} {'peak MB':>8s}"
              + (f" {'<= 1 GB':>8s}" if args.million else ""))
        for dtype in DTYPES:
            for method, batch, iterations in runs(args):
                n, before, after = measure(paths[dtype], dtype, method, iterations, batch)
                print(f"{dtype:8s} {method:14s} {batch!s:>6s} {n:>8s} {before:>16s} {after:>8s}"
                      + (f" {'yes' if float(after) <= BUDGET_MB else 'NO':>8s}" if args.million else ""), flush=True)


if __name__ == "__main__":
    main()
