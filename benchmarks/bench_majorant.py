"""Where an Algorithm-2 iteration spends its time, and Algorithm 2's step next to Algorithm 1's.

Problem: 23,200 unit-norm inputs of dimension 12 through 12-25-30-15-3 (the paper's sizes): the simulator's
training flights scaled as in METHOD.md §2 (or random data). One iteration = forward + backward + direction
+ majorant build + search + update (Γ(τ)). Prints, per variant, the median time of each part over the
repeats and the share of the iteration spent in the search (target <= 20 %), then the spectral-norm methods
side by side, τ per method (Algorithm 1 vs Algorithm 2 vs the closed form), and how often each majorant
really bounds the loss change (on this problem and in a survey of random small nets).

    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_majorant.py [--repeats 15] [--iterations 100] [--late 200]
        [--data sim|random] [--figures DIR] [--survey 3]

(Single-threaded BLAS keeps the forward/backward timings stable when other work shares the cores.)
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

import spherenet as sn
import spherenet.train
from spherenet import kernels, majorant as mj
from spherenet.mm import ClosedFormStep, MajorantStep
from spherenet.network import _backward, _direction, _forward_cache
from spherenet.steps import Iterate, weights_along

WIDTHS = [12, 25, 30, 15, 3]


def problem(data="sim", seed=0):
    """The simulator's flights (29,000 samples, 80 % = 23,200 to train) scaled as the paper does, or random
    unit-norm inputs with random targets (``data="random"``)."""
    net = sn.NormalisedMLP(WIDTHS, seed=seed)
    if data == "sim":
        from spherenet.experiments import load_problem
        X, Y = (np.asarray(a, dtype=float) for a in (lambda d: (d.X, d.Y))(load_problem(n_samples=29_000)[0]))
    else:
        rng = np.random.default_rng(seed)
        X, Y = rng.normal(size=(23_200, WIDTHS[0])), rng.normal(size=(23_200, WIDTHS[-1]))
    # METHOD.md §2: unit-norm inputs, targets scaled to max norm P_op.
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    Y = Y * (net.spectral_norm_product() / np.linalg.norm(Y, axis=1).max())
    return net, X, Y


def timed_iteration(weights, radii, X, Y, variant):
    """One Algorithm-2 iteration, timed part by part; returns (seconds per part, new weights, evals)."""
    t = [time.perf_counter()]
    cache = _forward_cache(weights, X)
    t.append(time.perf_counter())
    J, grads = _backward(weights, cache, Y)
    t.append(time.perf_counter())
    d = _direction(weights, grads, radii)
    t.append(time.perf_counter())
    m = mj._build(variant, weights, d, radii, mj.input_energy(X))
    t.append(time.perf_counter())
    tau, _, evals, _ = mj.golden_section(m)
    t.append(time.perf_counter())
    it = Iterate(weights, radii, X, Y, cache, J, grads, d, J)
    new = weights_along(it, tau)
    t.append(time.perf_counter())
    return np.diff(t), new, evals


def parts_table(net, X, Y, repeats):
    names = ["forward", "backward", "direction", "build", "search", "update"]
    print(f"{'variant':12s} " + " ".join(f"{n:>9s}" for n in names) + f" {'total':>9s} {'evals':>6s} {'search %':>9s}")
    for variant in mj.VARIANTS:
        weights, rows, evals = [W.copy() for W in net.weights], [], 0
        for _ in range(repeats):
            secs, weights, evals = timed_iteration(weights, net.radii, X, Y, variant)
            rows.append(secs)
        med = np.median(rows, axis=0) * 1e3
        share = 100 * med[4] / med.sum()
        print(f"{variant:12s} " + " ".join(f"{v:9.3f}" for v in med) + f" {med.sum():9.3f} {evals:6d} {share:8.1f}%")
    print("(milliseconds, median over repeats)")


def norms_table(net, X, Y, repeats):
    J, grads = _backward(net.weights, _forward_cache(net.weights, X), Y)
    m = mj._build("spectral", net.weights, _direction(net.weights, grads, net.radii), net.radii, 1.0)
    t = 1e-3
    a, b = np.array([-2 * np.sin(t / 2) ** 2]), np.array([np.sin(t)])

    def best(fn):
        times = []
        for _ in range(repeats):
            s = time.perf_counter()
            fn()
            times.append(time.perf_counter() - s)
        return min(times) * 1e6

    p = m.pencils
    svd = best(lambda: mj.spectral_norms_svd(m.weights, m.U, a, b))
    ref = best(lambda: kernels.lambda_max_reference(p.A, p.B, p.C, p.sizes, a[0], b[0], np.empty(p.sizes.size)))
    gram = best(lambda: p.norms(a, b))
    build = best(lambda: mj.SpectralPencils(m.weights, m.U))
    err = np.max(np.abs(p.norms(a, b) / mj.spectral_norms_svd(m.weights, m.U, a, b) - 1))
    print(f"\nspectral norms of all {len(m.weights)} layers at one t (best of {repeats}):")
    print(f"  full SVD per layer          {svd:8.1f} us")
    print(f"  Gram + eigvalsh, NumPy      {ref:8.1f} us  ({svd / ref:.2f}x faster than SVD)")
    print(f"  Gram + eigvalsh, Numba      {gram:8.1f} us  ({svd / gram:.2f}x faster than SVD)")
    print(f"  Gram build (once per iter.) {build:8.1f} us;  max relative difference to SVD {err:.1e}")


def tau_table(net, X, Y, iterations):
    rules = [MajorantStep("spectral"), MajorantStep("frobenius"), MajorantStep("telescoping"), ClosedFormStep()]
    try:                                    # Algorithm 1 is written elsewhere; compare when it is there
        from spherenet.taylor import TaylorStep
        rules.insert(0, TaylorStep())
    except ImportError as exc:
        print(f"\n(Algorithm 1 not available: {exc})")
    print(f"\ntau per method, full batch, {iterations} iterations from the same start:")
    print(f"{'method':16s} {'tau[0]':>10s} {'median tau':>11s} {'loss[0]':>10s} {'loss[end]':>10s} "
          f"{'max drift':>10s}  flags")
    taus = {}
    for rule in rules:
        h = sn.train.train(net.copy(), X, Y, rule, iterations)
        taus[rule.name] = np.array(h.tau)
        counts = {}
        for flags in h.flags:
            for flag in flags:
                counts[flag] = counts.get(flag, 0) + 1
        print(f"{rule.name:16s} {h.tau[0]:10.3e} {np.median(h.tau):11.3e} {h.loss_train[0]:10.3e} "
              f"{h.loss_train[-1]:10.3e} {max(h.drift):10.1e}  {counts or ''}")
    alg1 = [k for k in taus if k.startswith("taylor")]
    if alg1:
        first, median = taus[alg1[0]][0] / taus["mm"][0], np.median(taus[alg1[0]]) / np.median(taus["mm"])
        print(f"tau ratio Algorithm 1 / Algorithm 2 (spectral): first iteration {first:.1f}x, median {median:.1f}x")
    return taus


def validity_table(net, X, Y, late):
    """Does each majorant bound φ(t) - φ(0)? At the first iterate and after ``late`` steps of Algorithm 2."""
    grid = np.geomspace(1e-6, np.pi, 200)
    trained = net.copy()
    sn.train.train(trained, X, Y, "mm", late)
    print(f"\nvalidity on {grid.size} angles log-spaced in [1e-6, pi] (bound: m(t) >= phi(t) - phi(0)):")
    print(f"{'iterate':>8s} {'variant':12s} {'bound %':>8s} {'first fail t':>13s} {'tau':>10s} {'looseness':>10s}")
    snapshots = {"iteration 1": net.weights, f"iteration {late + 1} (Alg. 2)": trained.weights}
    for label, weights in snapshots.items():
        J, grads = _backward(weights, _forward_cache(weights, X), Y)
        d = _direction(weights, grads, net.radii)
        for variant in mj.VARIANTS:
            report = mj.validity(mj._build(variant, weights, d, net.radii, mj.input_energy(X)), X, Y, grid)
            fail = f"{report['fails_at'].min():.2e}" if report["fails_at"].size else "-"
            print(f"{label.split()[1]:>8s} {variant:12s} {100 * report['bound_fraction']:7.1f}% {fail:>13s} "
                  f"{report['tau']:10.3e} {report['looseness']:10.3f}")
    print("(looseness = m(tau) / (phi(tau) - phi(0)): predicted over true decrease at the majorant's minimiser)")
    return snapshots


def survey_table(n_seeds, n=400, steps=(0, 50, 300)):
    """Bound fraction on random small nets: widths x target kind x seed x iterate (after k Algorithm-2 steps)."""
    grid = np.geomspace(1e-6, np.pi, 200)
    rows = []
    for seed in range(n_seeds):
        rng = np.random.default_rng(seed)
        for widths in ([12, 25, 30, 15, 3], [5, 8, 8, 2], [4, 6, 1]):
            for kind in ("random", "smooth"):
                net = sn.NormalisedMLP(widths, seed=seed)
                X = rng.normal(size=(n, widths[0]))
                X /= np.linalg.norm(X, axis=1, keepdims=True)
                Y = rng.normal(size=(n, widths[-1])) if kind == "random" else np.tanh(
                    2 * X @ rng.normal(size=(widths[-1], widths[0])).T)
                Y *= net.spectral_norm_product() / np.linalg.norm(Y, axis=1).max()
                for k in steps:
                    trained = net.copy()
                    if k:
                        sn.train.train(trained, X, Y, "mm", k)
                    w = trained.weights
                    J, grads = _backward(w, _forward_cache(w, X), Y)
                    d = _direction(w, grads, net.radii)
                    for variant in mj.VARIANTS:
                        m = mj._build(variant, w, d, net.radii, mj.input_energy(X))
                        report = mj.validity(m, X, Y, grid)
                        restarted = mj.minimise(m)[4]
                        rows.append((variant, f"{widths}", kind, k, report["bound_fraction"], report["looseness"],
                                     report["fails_at"].min() if report["fails_at"].size else np.nan, restarted))
    print(f"\nsurvey: {n_seeds} seeds x 3 widths x 2 target kinds x iterates {steps} (N = {n}), "
          f"{grid.size} angles in [1e-6, pi]:")
    print(f"{'variant':12s} {'mean bound %':>12s} {'min bound %':>11s} {'fully bounded':>13s} "
          f"{'median looseness':>16s} {'max looseness':>13s} {'search redone':>13s}")
    for variant in mj.VARIANTS:
        r = [row for row in rows if row[0] == variant]
        frac, loose = np.array([row[4] for row in r]), np.array([row[5] for row in r])
        print(f"{variant:12s} {100 * frac.mean():11.2f}% {100 * frac.min():10.1f}% "
              f"{np.sum(frac == 1):6d} of {len(r):3d} {np.nanmedian(loose):16.3f} {np.nanmax(loose):13.2f} "
              f"{sum(row[7] for row in r):6d} of {len(r):3d}")
    for row in rows:
        if row[4] < 1:
            print(f"  fails: {row[0]:12s} widths {row[1]:18s} {row[2]:6s} after {row[3]:3d} steps: bound on "
                  f"{100 * row[4]:.1f}% of the grid, first failure at t = {row[6]:.1e}, looseness {row[5]:.2f}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--late", type=int, default=200, help="Algorithm-2 steps before the late validity check")
    parser.add_argument("--data", choices=["sim", "random"], default="sim")
    parser.add_argument("--figures", default=None, help="folder: also draw the majorant and tau figures there")
    parser.add_argument("--survey", type=int, default=3, help="seeds for the random-net validity survey (0: skip)")
    args = parser.parse_args()
    net, X, Y = problem(args.data)
    print(f"data: {args.data}, X {X.shape}, widths {WIDTHS}, float64, "
          f"OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    parts_table(net, X, Y, args.repeats)
    norms_table(net, X, Y, 200)
    taus = tau_table(net, X, Y, args.iterations)
    snapshots = validity_table(net, X, Y, args.late)
    if args.figures:
        from spherenet.plots import majorant as plots
        print(plots.majorant_figure(snapshots, net.radii, X, Y, os.path.join(args.figures, "majorants.png")))
        print(plots.tau_figure(taus, os.path.join(args.figures, "tau_per_iteration.png")))
    if args.survey:
        survey_table(args.survey)


if __name__ == "__main__":
    main()
