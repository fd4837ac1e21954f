"""Beyond the paper: test RMSE on the simulator's held-out flights, at 200 full-batch iterations and at equal
wall-clock, mean ± std over seeds, for the paper's algorithms, the new automatic rules and tuned baselines.

    python benchmarks/bench_beyond.py --seeds 10 --seconds 10 --out out/bench_beyond     # runs (resumable)
    python benchmarks/bench_beyond.py --table --out out/bench_beyond                     # table + figures

Protocol. Data: ``spherenet.data.default_problem(seed=0)`` (train: 48 random-waypoint flights, test: 12
figure-8 flights), the paper's scaling fitted with each seed's network. Network 12-25-30-15-3.
Sphere rules run 200 iterations, continued (``train(resume=...)``) until ``--seconds`` of training time if
200 iterations took less; "equal wall-clock" reads each run's test loss at the last iteration finished within
``--seconds``. Baselines (biased MLP, NumPy, one BLAS thread like spherenet's loop): full-batch Adam and SGD
with the learning rate tuned ONCE (seed 0) by ``baselines.tune_lr`` on a validation part of the training data
at 200 iterations, mini-batch Adam (batch 256) tuned the same way with the time budget; then every seed
trains with that rate. Linear least squares with bias on the same scaled inputs.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from functools import partial
from pathlib import Path

import numpy as np

WIDTHS = (12, 25, 30, 15, 3)
SPHERE = ("taylor", "geo-cg-layer", "geo-adam", "geo-cg", "geo-rgrad", "mm")
BASE = ("adam", "sgd", "adam-mb")
BATCH = 256


def _data(seed):
    from spherenet import NormalisedMLP
    from spherenet.experiments import load_problem, scaled_arrays
    train, test = load_problem()
    net = NormalisedMLP(WIDTHS, seed=seed)
    arrays, scaling = scaled_arrays(train, test, net)
    return net, arrays, scaling


def _curve(scaling, h):
    return {"rmse_test": [float(scaling.rmse_newtons(J)) for J in h.loss_test],
            "rmse_train": [float(scaling.rmse_newtons(J)) for J in h.loss_train],
            "seconds": [0.0] + [float(s) for s in h.seconds]}


def run_sphere(method, seed, seconds):
    from spherenet.train import make_rule, train
    net, (X, Y, Xt, Yt), scaling = _data(seed)
    rule = make_rule(method)
    h = train(net, X, Y, rule, 200, Xt, Yt)
    while not h.stop_reason and h.seconds[-1] < seconds:
        h = train(net, X, Y, rule, 50, Xt, Yt, resume=h)
    lip = {"bound": net.lipschitz_bound(), "spectral_product": net.spectral_norm_product(),
           "max_drift": max(h.drift)}
    return {"method": method, "seed": seed, **_curve(scaling, h), **lip}


MB_ITERATIONS, MB_EVERY = 15000, 250


def minibatch_adam(X, Y, Xe, Ye, lr, seed, iterations=MB_ITERATIONS, every=MB_EVERY):
    """Mini-batch Adam (batch ``BATCH``, the baselines' biased MLP, init and batch draw) for ``iterations``
    steps; the loss on ``(Xe, Ye)`` every ``every`` steps (outside the timed part). A lean loop: the
    baselines' trainer evaluates the full training and test loss after every mini-batch step, which costs
    ~25x the step itself here. Returns ``(its, losses)``, or ``None`` if it diverged."""
    from spherenet.baselines import Adam, init_mlp, mlp
    from spherenet.train import _Batches
    params = init_mlp(WIDTHS, init="pytorch", seed=seed)
    opt, batches = Adam(lr), _Batches(X, Y, BATCH, np.random.default_rng(seed))
    its, losses = [0], [mlp.mlp_loss(params, Xe, Ye)]
    for k in range(1, iterations + 1):
        Xb, Yb = batches.next()
        params = opt(params, mlp.mlp_loss_and_grad(params, Xb, Yb)[1]).params
        if k % every == 0:
            J = mlp.mlp_loss(params, Xe, Ye)
            if not math.isfinite(J):
                return None
            its.append(k)
            losses.append(J)
    return its, losses


def tune(method, seconds):
    from threadpoolctl import threadpool_limits
    from spherenet.baselines import GRIDS, train_adam, train_sgd, tune_lr, validation_split
    _, (X, Y, _, _), _ = _data(0)
    with threadpool_limits(1):
        if method == "adam-mb":
            fit, val = validation_split(len(X), 0.2, 0)
            table = []
            for lr in GRIDS["adam"]:
                r = minibatch_adam(X[fit], Y[fit], X[val], Y[val], lr, 0)
                table.append({"lr": lr, "val_loss": None if r is None else float(r[1][-1])})
            lr = min((row for row in table if row["val_loss"] is not None), key=lambda row: row["val_loss"])["lr"]
            return {"method": method, "lr": lr, "table": table}
        trainer = partial(train_sgd if method == "sgd" else train_adam, WIDTHS)
        lr, table = tune_lr(trainer, GRIDS["sgd" if method == "sgd" else "adam"], X, Y, seed=0, iterations=200)
    return {"method": method, "lr": lr, "table": table}


def run_base(method, seed, lr, seconds):
    from threadpoolctl import threadpool_limits
    from spherenet.baselines import train_adam, train_sgd
    _, (X, Y, Xt, Yt), scaling = _data(seed)
    with threadpool_limits(1):
        if method == "adam-mb":
            its, losses = minibatch_adam(X, Y, Xt, Yt, lr, seed)
            rmse = [float(scaling.rmse_newtons(J)) for J in losses]
            return {"method": method, "seed": seed, "lr": lr, "its": its, "rmse_test": rmse,
                    "rmse_train": [math.nan] * len(rmse), "seconds": [math.nan] * len(rmse)}
        _, h = (train_sgd if method == "sgd" else train_adam)(WIDTHS, X, Y, lr, iterations=400, X_test=Xt,
                                                              Y_test=Yt, seed=seed)
    return {"method": method, "seed": seed, "lr": lr, **_curve(scaling, h)}


def run_linear(seed):
    from spherenet.baselines import fit_linear
    _, (X, Y, Xt, Yt), scaling = _data(seed)
    p = fit_linear(X, Y)
    J = lambda A, B: 0.5 * float(np.mean(np.sum((p(A) - B) ** 2, axis=1)))
    return {"method": "linear", "seed": seed, "rmse_test": [scaling.rmse_newtons(J(Xt, Yt))],
            "rmse_train": [scaling.rmse_newtons(J(X, Y))], "seconds": [0.0]}


def _limit():
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def _save(out, key, record):
    path = out / "runs" / f"{key}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(record))
    os.replace(tmp, path)


def _load(out, key):
    path = out / "runs" / f"{key}.json"
    return json.loads(path.read_text()) if path.is_file() else None


def _pool_map(out, jobs, workers):
    """``jobs``: {key: (fn, args)}; runs those without a saved result, saving each as it finishes."""
    todo = {k: v for k, v in jobs.items() if _load(out, k) is None}
    with ProcessPoolExecutor(workers, initializer=_limit) as pool:
        futures = {pool.submit(fn, *args): k for k, (fn, args) in todo.items()}
        for f in as_completed(futures):
            _save(out, futures[f], f.result())
            print(f"done {futures[f]}", flush=True)
    return {k: _load(out, k) for k in jobs}


def run_all(out, seeds, seconds, workers, methods, baselines=True):
    jobs = {f"{m}_s{s}": (run_sphere, (m, s, seconds)) for m in methods for s in range(seeds)}
    jobs.update({f"linear_s{s}": (run_linear, (s,)) for s in range(seeds)})
    _pool_map(out, jobs, workers)
    if not baselines:
        return
    done = _pool_map(out, {f"tune_{m}": (tune, (m, seconds)) for m in BASE}, workers)
    lrs = {m: done[f"tune_{m}"]["lr"] for m in BASE}
    _pool_map(out, {f"{m}_s{s}": (run_base, (m, s, lrs[m], seconds)) for m in BASE for s in range(seeds)},
              workers)


# --- diagnosis: the data scaling (inputs, output gain), seeds 0..2 ----------------------------------------

def scaled_variant(seed, inputs, gain):
    """The paper's arrays, then ``inputs``: ``"unit"`` (paper: x/||x|| per sample), ``"global"``
    (x / max_train ||x||: keeps each sample's magnitude), ``"std"`` (standardise with the training mean/std,
    then divide by the largest training row norm); ``gain``: targets divided by it (``"match"``: the ratio
    rms(y_s)/rms(f_0(X)) of the scaled targets to the network's output at initialisation)."""
    from spherenet.experiments import load_problem
    from spherenet.network import _forward_cache
    net, (X, Y, Xt, Yt), scaling = _data(seed)
    train, test = load_problem()
    if inputs == "global":
        s = np.sqrt((train.X ** 2).sum(1)).max()
        X, Xt = train.X / s, test.X / s
    elif inputs == "std":
        mean, std = train.X.mean(0), train.X.std(0)
        Z = (train.X - mean) / std
        s = np.sqrt((Z ** 2).sum(1)).max()
        X, Xt = Z / s, (test.X - mean) / std / s
    if gain == "match":
        F = _forward_cache(net.weights, X).F
        gain = float(np.sqrt((Y ** 2).sum(1).mean() / (F ** 2).sum(1).mean()))
    return net, (X, Y / gain, Xt, Yt / gain), scaling, float(gain)


def run_variant(method, seed, inputs, gain):
    from spherenet.train import train
    net, (X, Y, Xt, Yt), scaling, g = scaled_variant(seed, inputs, gain)
    h = train(net, X, Y, method, 200, Xt, Yt)
    return {"method": method, "seed": seed, "inputs": inputs, "gain": g,
            "rmse_test": g * scaling.rmse_newtons(h.loss_test[-1]),
            "rmse_train": g * scaling.rmse_newtons(h.loss_train[-1])}


VARIANTS = [("unit", 1.0), ("global", 1.0), ("std", 1.0), ("unit", 4.0), ("unit", "match")]


def diagnose(out, workers, seeds=3):
    jobs = {f"diag_{m}_{i}_{g}_s{s}": (run_variant, (m, s, i, g))
            for m in ("taylor", "geo-cg-layer") for i, g in VARIANTS for s in range(seeds)}
    done = _pool_map(out, jobs, workers)
    rows = ["| method | inputs | output gain | train RMSE [N] | test RMSE [N] |", "|---|---|---|---|---|"]
    for m in ("taylor", "geo-cg-layer"):
        for i, g in VARIANTS:
            recs = [done[f"diag_{m}_{i}_{g}_s{s}"] for s in range(seeds)]
            label = "matched at init (" + _fmt([r["gain"] for r in recs]) + ")" if g == "match" else f"{g:g}"
            rows.append(f"| {m} | {i} | {label} | {_fmt([r['rmse_train'] for r in recs])} | "
                        f"{_fmt([r['rmse_test'] for r in recs])} |")
    _diagnosis_figure(done, seeds)
    return "\n".join(rows)


def _diagnosis_figure(done, seeds):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(9, 4))
    labels = [f"{i}\ngain {g if g == 'match' else f'{g:g}'}" for i, g in VARIANTS]
    x = np.arange(len(VARIANTS))
    for k, m in enumerate(("taylor", "geo-cg-layer")):
        for j, kind in enumerate(("rmse_train", "rmse_test")):
            vals = [np.mean([done[f"diag_{m}_{i}_{g}_s{s}"][kind] for s in range(seeds)]) for i, g in VARIANTS]
            ax.bar(x + (2 * k + j - 1.5) * 0.2, vals, 0.2, label=f"{m} {kind[5:]}", alpha=0.5 + 0.5 * j)
    ax.set_xticks(x, labels)
    ax.set(ylabel="RMSE [N], 200 iterations", title="data scaling: inputs and output gain")
    ax.legend(fontsize=8)
    fig.tight_layout()
    path = Path(__file__).resolve().parents[1] / "figures" / "beyond_scaling.png"
    fig.savefig(path, dpi=110)
    print(f"wrote {path}")


# --- seconds per iteration, measured side by side -------------------------------------------------------

def measure_timing(out, rounds=3, its=10):
    """Training seconds per iteration of every method on seed 0, measured in interleaved rounds (the
    minimum over rounds: the machine is shared, so the least-disturbed round is the fairest estimate).
    The equal-wall-clock column reads each run at iteration ``floor(budget / seconds_per_iteration)``."""
    from threadpoolctl import threadpool_limits
    from spherenet.baselines import train_adam, train_sgd
    from spherenet.train import train
    net0, (X, Y, _, _), _ = _data(0)
    best = {}
    for _ in range(rounds):
        for m in SPHERE:
            h = train(net0.copy(), X, Y, m, its)
            best[m] = min(best.get(m, math.inf), h.seconds[-1] / its)
        with threadpool_limits(1):
            for m, fn, bs in (("adam", train_adam, None), ("sgd", train_sgd, None), ("adam-mb", train_adam, BATCH)):
                _, h = fn(WIDTHS, X, Y, 1e-3, iterations=its if bs is None else 20 * its, batch_size=bs)
                best[m] = min(best.get(m, math.inf), h.seconds[-1] / h.iterations)
    _save(out, "timing", best)
    return best


# --- the table and the figures ---------------------------------------------------------------------------

def _at_seconds(record, seconds, per_it=None):
    """Test RMSE after the last iteration finished within ``seconds`` of training time: iteration
    ``floor(seconds / per_it)`` with the side-by-side timing ``per_it``, else as the run recorded it."""
    if "its" in record:                                   # evaluated every MB_EVERY steps
        j = int(np.searchsorted(record["its"], int(seconds / per_it), side="right")) - 1
        return record["rmse_test"][max(j, 0)], record["its"][max(j, 0)]
    if per_it is None:
        k = int(np.searchsorted(record["seconds"], seconds, side="right")) - 1
    else:
        k = min(int(seconds / per_it), len(record["rmse_test"]) - 1)
    return record["rmse_test"][max(k, 0)], k


def _fmt(values):
    v = np.asarray(values, float)
    return f"{v.mean():.3f} ± {v.std(ddof=1) if len(v) > 1 else 0.0:.3f}"


LABELS = {"taylor": "Algorithm 1 (paper)", "mm": "Algorithm 2 (paper)", "geo-rgrad": "geo-rgrad (new)",
          "geo-cg": "geo-cg (new)", "geo-cg-layer": "geo-cg-layer (new)", "geo-adam": "geo-adam (new)",
          "adam": "Adam, full batch (tuned)", "sgd": "SGD, full batch (tuned)",
          "adam-mb": f"Adam, batch {BATCH} (tuned)", "linear": "linear least squares"}


def table(out, seeds, seconds):
    rows = ["| method | seeds | lr | test RMSE [N] @200 it | train @200 | test @ equal time | its in budget | s/it |",
            "|---|---|---|---|---|---|---|---|"]
    records = {}
    timing = _load(out, "timing") or {}
    for m in SPHERE + BASE + ("linear",):
        recs = [r for s in range(seeds) if (r := _load(out, f"{m}_s{s}")) is not None]
        if not recs:
            continue
        records[m] = recs
        lr = f"{recs[0]['lr']:.3g}" if "lr" in recs[0] else "—"
        if m == "linear":
            rows.append(f"| {LABELS[m]} | {len(recs)} | — | {_fmt([r['rmse_test'][0] for r in recs])} | "
                        f"{_fmt([r['rmse_train'][0] for r in recs])} | (same) | — | — |")
            continue
        at200 = [r["rmse_test"][min(200, len(r["rmse_test"]) - 1)] for r in recs] if m != "adam-mb" else None
        tr200 = [r["rmse_train"][min(200, len(r["rmse_train"]) - 1)] for r in recs] if m != "adam-mb" else None
        per_it = timing.get(m)
        timed = [_at_seconds(r, seconds, per_it) for r in recs]
        per_it = per_it or np.mean([r["seconds"][-1] / (len(r["seconds"]) - 1) for r in recs])
        if m == "adam-mb" and any(k >= r["its"][-1] for r, (_, k) in zip(recs, timed)):
            print(f"warning: {MB_ITERATIONS} mini-batch steps are fewer than the budget allows")
        rows.append(f"| {LABELS[m]} | {len(recs)} | {lr} | {_fmt(at200) if at200 else '—'} | {_fmt(tr200) if tr200 else '—'} | "
                    f"{_fmt([t[0] for t in timed])} | {np.mean([t[1] for t in timed]):.0f} | {per_it:.2g} |")
    lip = [f"{m}: max_i drift {max(r['max_drift'] for r in records[m]):.1e}, prod ||W_i||_2 ≤ "
           f"{max(r['spectral_product'] for r in records[m]):.3f} ≤ prod mu_i = {records[m][0]['bound']:g}"
           for m in SPHERE if m in records]
    return "\n".join(rows), lip, records, timing


def figures(records, seconds, fig_dir, timing):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5))
    for m, recs in records.items():
        if m == "linear":
            for ax in axes:
                ax.axhline(np.mean([r["rmse_test"][0] for r in recs]), color="k", ls=":", label=LABELS[m])
            continue
        if m != "adam-mb":
            n = min(201, min(len(r["rmse_test"]) for r in recs))
            curves = np.array([r["rmse_test"][:n] for r in recs])
            axes[0].plot(curves.mean(0), label=LABELS[m], ls="--" if m in BASE else "-")
        grid = np.linspace(0, seconds, 101)
        curves = np.array([[_at_seconds(r, t, timing.get(m))[0] for t in grid] for r in recs])
        axes[1].plot(grid, curves.mean(0), label=LABELS[m], ls="--" if m in BASE else "-")
    axes[0].set(xlabel="full-batch iteration", ylabel="test RMSE [N] (mean over seeds)", ylim=(1.8, 6),
                title="held-out figure-8 flights, by iteration")
    axes[1].set(xlabel="training time [s]", ylim=(1.8, 6), title="by wall-clock (one BLAS thread)")
    axes[1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(fig_dir / "beyond_comparison.png", dpi=110)
    print(f"wrote {fig_dir / 'beyond_comparison.png'}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--methods", default=",".join(SPHERE))
    p.add_argument("--out", default="out/bench_beyond")
    p.add_argument("--no-baselines", action="store_true", help="only the sphere rules given by --methods")
    p.add_argument("--table", action="store_true", help="only print the table from saved runs")
    p.add_argument("--timing", action="store_true", help="measure seconds/iteration side by side first")
    p.add_argument("--diagnose", action="store_true", help="the data-scaling diagnosis (3 seeds) instead")
    a = p.parse_args(argv)
    out = Path(a.out)
    if a.diagnose:
        print(diagnose(out, a.workers, a.seeds))
        return
    if not a.table:
        t0 = time.time()
        run_all(out, a.seeds, a.seconds, a.workers, a.methods.split(","), not a.no_baselines)
        print(f"runs finished in {time.time() - t0:.0f} s")
    if a.timing:
        print(measure_timing(out))
    text, lip, records, timing = table(out, a.seeds, a.seconds)
    print(f"seeds: {a.seeds}, equal wall-clock budget: {a.seconds:g} s of training time\n")
    print(text)
    print("\nLipschitz bound kept (float64):")
    print("\n".join(lip))
    figures(records, a.seconds, Path(__file__).resolve().parents[1] / "figures", timing)


if __name__ == "__main__":
    main(sys.argv[1:])
