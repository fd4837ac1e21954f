"""Benchmark: training seconds (evaluation excluded) to reach stated test-RMSE targets.

    python benchmarks/bench_time_to_accuracy.py --data sim --samples 300000 --seeds 3 --out out/bench_tta
    python benchmarks/bench_time_to_accuracy.py --data neural-fly --samples 75000 --seeds 3 --out out/bench_tta
    python benchmarks/bench_time_to_accuracy.py --figure figures/time_to_accuracy.png --out out/bench_tta

Data: ``sim`` is the simulator's default problem at ``--samples`` (random 80/20 split); ``neural-fly``
simulates the same flights, writes one Neural-Fly CSV per flight (``spherenet.data.write_neural_fly_csv``) and
reads the folder back with ``load_neural_fly`` (``experiments.load_problem``), as a user's logs would be.
Methods (every one on the same split; ``--seeds`` seeds, one run per process, one process per core):

* ``geo-cg-layer``: spherenet's default, full batch, ``--iterations`` iterations;
* ``geo-batch``: ``--batch-size 1024 --norm frobenius`` (the paper's spheres), ``--epochs`` epochs, nothing
  tuned (float32, the default precision with mini-batches, PyTorch's too);
* ``geo-batch float64``: the same in float64 (``--dtype float64``);
* ``geo-batch spectral``: the default with ``--batch-size 1024``: the same (float32) with spectrally
  normalised layers (docs/beyond.md §8), at the budget its own ladder chooses for a run of ``--epochs``
  epochs (always run; every rung trained that long);
* ``adam (spherenet)``: the project's tuned Adam baseline (``experiments.run(method="adam")``, batch 1024,
  float32: the same updates as ``torch.optim.Adam``, ``benchmarks/bench_torch_parity.py``, in NumPy; its lr
  tuned on the validation part, the tuning seconds reported, not counted);
* ``torch Adam tuned`` / ``torch Adam lr 1e-3`` (when PyTorch is importable): ``torch.optim.Adam`` on a
  biased 12-25-30-15-3 MLP in float32 (PyTorch's defaults), inputs and targets standardised, batch 1024; the
  tuned one picks its lr from ``TORCH_GRID`` on a validation fifth of the training part (10 epochs each;
  the tuning seconds are reported, not counted in the time to accuracy).

Both spherenet rules use the Lipschitz budget the default pipeline chooses (``experiments.run`` with the
budget ladder, once per data set; its seconds are reported like Adam's tuning). Targets: tuned PyTorch Adam's
test RMSE after 10 epochs (mean over seeds, "Adam@10ep", the goal of issue 18) and ``--targets``. A run
that never reaches a target counts as not reaching it ("—"). Runs are resumable: one JSON per run in
``OUT/<data>-<samples>/runs``. The machine's load changes timings: rerun on a quiet machine for claims.
"""
from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

TORCH_GRID = (1e-3, 3e-3, 1e-2, 3e-2)
BATCH = 1024
EVALS_PER_EPOCH = 4          # test RMSE points per epoch of every mini-batch run (the time to a target is read there)


def settings(data: str, samples: int, path: str | None) -> dict:
    return {"data": "sim", "n_samples": samples} if data == "sim" else {"data": "neural-fly", "data_path": path}


def write_flights(samples: int, folder: Path) -> str:
    """The simulator's flights (``samples`` rows) as one Neural-Fly CSV per flight in ``folder``."""
    from spherenet.data import concat, default_problem, write_neural_fly_csv
    folder.mkdir(parents=True, exist_ok=True)
    if not any(folder.glob("*.csv")):
        flights = concat(default_problem(seed=0, n_samples=samples, split="flights"))
        for fid in flights.flight_ids:
            write_neural_fly_csv(folder / f"flight_{fid:03d}.csv", flights.flights([fid]))
    return str(folder)


def chosen_budget(base: dict, rho: float | None = None, steps: int = 0) -> dict:
    """The Lipschitz budget the default (full-batch) pipeline chooses, and the seconds the ladder took; or,
    with ``rho``, the ladder's rung ``K(rho)`` (``spherenet.budget.budget_for``) without training. ``base`` with
    ``norm="spectral"``: the budget ``geo-batch`` with spectral layers chooses for a run of ``steps`` steps
    (its ladder, every rung trained that long, as ``spherenet train --batch-size 1024 --iterations steps``)."""
    from spherenet.budget import budget_for, select_lipschitz, validation_rows
    from spherenet.experiments import load_problem, network_widths, run, settings_for
    from spherenet.network import NormalisedMLP
    start = time.perf_counter()
    if base.get("norm") == "spectral":
        s = settings_for(**dict(base, batch_size=BATCH, dtype="float32"))
        tr, _ = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
        K, table = select_lipschitz(tr.X, tr.Y, validation_rows(tr, s["split"], s["data_seed"]), network_widths(s),
                                    s["method"], s["seed"], np.float32, batch_size=BATCH, norm="spectral",
                                    iterations=steps)
        return {"lipschitz": K, "seconds": table["seconds"], "rung_steps": table["iterations"]}
    if rho is None:
        record, _ = run(dict(base, iterations=0))
        return {"lipschitz": record["lipschitz"], "seconds": time.perf_counter() - start}
    s = settings_for(**base)
    tr, _ = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    radii = NormalisedMLP(network_widths(s), seed=0).radii
    return {"lipschitz": budget_for(rho, tr.X, tr.Y, float(np.prod(radii))), "seconds": 0.0, "rho": rho}


def sphere_curve(base: dict, method: str, seed: int, K: float, batch_size, iterations: int, evals: int = 60,
                 dtype=np.float64, norm: str = "frobenius"):
    """``[(training seconds, test RMSE [N])]`` of a spherenet run, ~``evals`` points."""
    from spherenet.experiments import fit_scaling, load_problem, network_widths, scaled_arrays, settings_for
    from spherenet.network import NormalisedMLP
    from spherenet.train import train
    s = settings_for(**base, method=method, seed=seed, lipschitz=K, batch_size=batch_size, norm=norm)
    tr, te = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    net = NormalisedMLP(network_widths(s), seed=seed, dtype=dtype)
    scaling = fit_scaling(s, tr, net)
    (X, Y, Xt, Yt), _ = scaled_arrays(tr, te, net, dtype, scaling)
    # Evaluating every iteration costs a full pass per mini-batch step (wall clock, not training time);
    # the loop's eval_every (issue 16) avoids it where it exists.
    has_every = "eval_every" in inspect.signature(train).parameters
    every = {"eval_every": max(-(-iterations // evals), 1)} if has_every else {}
    h = train(net, X, Y, method, iterations, Xt, Yt, batch_size=batch_size, seed=seed, norm=norm, **every)
    its = h.eval_iterations if every else range(len(h.loss_test))
    seconds = [0.0] + list(h.seconds)
    return [(seconds[i], float(scaling.rmse_newtons(h.loss_test[j]))) for j, i in enumerate(its)], {}


def baseline_curve(base: dict, seed: int, iterations: int):
    """The project's tuned Adam baseline (batch 1024) through ``experiments.run``."""
    from spherenet.baselines.standardise import Standardiser
    from spherenet.data import scaling_from_dict
    from spherenet.experiments import run
    start = time.perf_counter()
    record, _ = run(dict(base, method="adam", seed=seed, batch_size=BATCH, iterations=iterations))
    # the baselines record their loss in newtons (their Standardiser), the sphere methods in scaled units
    scaling = Standardiser if record["scaling"]["kind"] == "Standardiser" else scaling_from_dict(record["scaling"])
    its = record.get("eval_iterations") or range(len(record["loss_test"]))
    step = record["seconds_per_iteration"]
    curve = [(i * step, float(scaling.rmse_newtons(loss))) for i, loss in zip(its, record["loss_test"])
             if loss is not None]
    wall = time.perf_counter() - start
    return curve, {"lr": record.get("lr"), "wall_seconds": wall, "train_seconds": record["seconds"],
                   "tuning_seconds": record.get("seconds_tuning")}


def torch_curve(base: dict, seed: int, epochs: int, lr=None, evals_per_epoch: int = EVALS_PER_EPOCH):
    """``torch.optim.Adam`` as a PyTorch user runs it (module docstring); ``lr=None``: tuned on validation."""
    import torch

    from spherenet.budget import validation_rows
    from spherenet.experiments import load_problem, settings_for
    torch.set_num_threads(1)
    s = settings_for(**base)
    tr, te = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    info = {}
    if lr is None:
        val = validation_rows(tr, s["split"], s["data_seed"])
        start = time.perf_counter()
        scores = {g: _torch_adam(tr.X[~val], tr.Y[~val], tr.X[val], tr.Y[val], g, 10, seed, 1)[-1][1]
                  for g in TORCH_GRID}
        lr = min(scores, key=scores.get)
        info = {"tuning_seconds": time.perf_counter() - start, "validation_rmse": scores}
    info["lr"] = lr
    return _torch_adam(tr.X, tr.Y, te.X, te.Y, lr, epochs, seed, evals_per_epoch), info


def _torch_adam(X, Y, Xt, Yt, lr, epochs, seed, evals_per_epoch):
    import torch
    from torch import nn
    torch.manual_seed(seed)
    mx, sx, my, sy = X.mean(0), X.std(0) + 1e-12, Y.mean(0), Y.std(0) + 1e-12
    Xs, Ys = (torch.tensor((A - m) / s, dtype=torch.float32) for A, m, s in ((X, mx, sx), (Y, my, sy)))
    Xts = torch.tensor((Xt - mx) / sx, dtype=torch.float32)
    widths = (12, 25, 30, 15, 3)
    layers = [m for a, b in zip(widths[:-1], widths[1:]) for m in (nn.Linear(a, b), nn.ReLU())][:-1]
    model, gen = nn.Sequential(*layers), torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)

    def rmse():
        with torch.no_grad():
            F = model(Xts).numpy().astype(np.float64) * sy + my
        return float(np.sqrt(np.sum((F - Yt) ** 2) / len(Yt)))
    n, elapsed, curve = len(Xs), 0.0, [(0.0, rmse())]
    steps = -(-n // BATCH)
    marks = set(np.linspace(0, steps, evals_per_epoch + 1).astype(int)[1:]) if evals_per_epoch else {steps}
    for _ in range(epochs):
        start = time.perf_counter()
        order = torch.randperm(n, generator=gen)
        for b in range(steps):
            idx = order[b * BATCH:(b + 1) * BATCH]
            loss = nn.functional.mse_loss(model(Xs[idx]), Ys[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            if b + 1 in marks:
                elapsed += time.perf_counter() - start
                curve.append((elapsed, rmse()))
                start = time.perf_counter()
    return curve


def one_run(job: dict) -> dict:
    """Run one (method, seed) job; its curve and side information as a JSON-ready dict."""
    from threadpoolctl import threadpool_limits
    base, kind, seed = job["base"], job["kind"], job["seed"]
    with threadpool_limits(1):
        if kind == "geo-cg-layer":
            curve, info = sphere_curve(base, "geo-cg-layer", seed, job["K"], None, job["iterations"])
        elif kind == "geo-batch":
            curve, info = sphere_curve(base, "geo-batch", seed, job["K"], BATCH, job["batch_steps"],
                                       evals=EVALS_PER_EPOCH * job["epochs"], dtype=np.float32)
        elif kind == "geo-batch spectral":
            curve, info = sphere_curve(base, "geo-batch", seed, job["K_spectral"], BATCH, job["batch_steps"],
                                       evals=EVALS_PER_EPOCH * job["epochs"], dtype=np.float32, norm="spectral")
        elif kind == "geo-batch float64":
            curve, info = sphere_curve(base, "geo-batch", seed, job["K"], BATCH, job["batch_steps"],
                                       evals=EVALS_PER_EPOCH * job["epochs"])
        elif kind == "adam (spherenet)":
            curve, info = baseline_curve(base, seed, job["batch_steps"])
        elif kind == "torch Adam tuned":
            curve, info = torch_curve(base, seed, job["epochs"])
        else:
            curve, info = torch_curve(base, seed, job["epochs"], lr=1e-3)
    return {"method": kind, "seed": seed, "curve": curve, **info}


def time_to(curve, target: float) -> float:
    """The first training second at which the test RMSE is ``<= target`` (NaN if never)."""
    hits = [t for t, e in curve if e <= target]
    return min(hits) if hits else float("nan")


def at_epochs(curve, epochs_total: int, epochs: int) -> float:
    """The test RMSE at ``epochs`` of a curve spread evenly over ``epochs_total`` (torch curves)."""
    index = round(len(curve[1:]) * epochs / epochs_total)
    return curve[index][1]


METHODS = ("geo-cg-layer", "geo-batch", "geo-batch float64", "geo-batch spectral", "adam (spherenet)",
           "torch Adam tuned", "torch Adam lr 1e-3")


def steps_to(curve, target: float, steps: int) -> float:
    """The step at which the test RMSE is first ``<= target``, for a curve spread evenly over ``steps`` steps
    (NaN if never)."""
    hits = [k for k, (_, e) in enumerate(curve) if e <= target]
    return hits[0] * steps / (len(curve) - 1) if hits else float("nan")


def summarise(runs: list, targets: dict, epochs: int, steps: dict) -> tuple[dict, str]:
    """The targets (with tuned PyTorch Adam's 10-epoch RMSE when it ran) and the table, as markdown.
    ``steps``: method -> the steps (full-batch iterations for ``geo-cg-layer``) every run of it takes."""
    by = {}
    for r in runs:
        by.setdefault(r["method"], []).append(r)
    targets = dict(targets)
    if "torch Adam tuned" in by and epochs >= 10:
        targets = {"Adam@10ep": float(np.mean([at_epochs(r["curve"], epochs, 10) for r in by["torch Adam tuned"]])),
                   **targets}
    head = ["method", "seeds", "final test RMSE [N]", *[f"s to {k} ({v:.3f} N)" for k, v in targets.items()],
            "steps to the first", "ms per step", "tuning s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for method in METHODS:
        if method not in by:
            continue
        rs = by[method]
        finals = [r["curve"][-1][1] for r in rs]
        cells = [method, str(len(rs)), f"{np.mean(finals):.3f} ± {np.std(finals):.3f}"]
        for target in targets.values():
            times = np.array([time_to(r["curve"], target) for r in rs])
            hit = times[np.isfinite(times)]
            cells.append(f"{np.mean(hit):.2f} ({len(hit)}/{len(rs)})" if len(hit) else "—")
        target = next(iter(targets.values()), math.nan)
        first = np.array([steps_to(r["curve"], target, steps[method]) for r in rs])
        cells.append(f"{np.mean(first[np.isfinite(first)]):.0f}" if np.isfinite(first).any() else "—")
        cells.append(f"{1e3 * np.mean([r['curve'][-1][0] for r in rs]) / steps[method]:.3f}")
        tuning = [r.get("tuning_seconds") for r in rs if r.get("tuning_seconds")]
        cells.append(f"{np.mean(tuning):.1f}" if tuning else "—")
        lines.append("| " + " | ".join(cells) + " |")
    return targets, "\n".join(lines)


def run_all(args, folder: Path) -> None:
    from spherenet.experiments import load_problem, settings_for
    runs_dir = folder / "runs"
    runs_dir.mkdir(parents=True, exist_ok=True)
    path = write_flights(args.samples, folder / "flights") if args.data == "neural-fly" else None
    base = settings(args.data, args.samples, path)
    budget_file = folder / "budget.json"
    if not budget_file.is_file():
        budget_file.write_text(json.dumps(chosen_budget(base, args.rho)))
    budget = json.loads(budget_file.read_text())
    s = settings_for(**base)
    n_train = len(load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])[0].X)
    batch_steps = args.epochs * -(-n_train // BATCH)
    spectral_file = folder / "budget_spectral.json"
    if "geo-batch spectral" in args.methods and not spectral_file.is_file():
        spectral_file.write_text(json.dumps(chosen_budget(dict(base, norm="spectral"), steps=batch_steps)))
    spectral = json.loads(spectral_file.read_text()) if spectral_file.is_file() else {"lipschitz": None}
    common = {"base": base, "K": budget["lipschitz"], "K_spectral": spectral["lipschitz"],
              "iterations": args.iterations, "epochs": args.epochs,
              "batch_steps": batch_steps}
    methods = [m for m in METHODS if m in args.methods and (not m.startswith("torch") or _has_torch())]
    jobs = [dict(common, kind=m, seed=seed) for seed in range(1, args.seeds + 1) for m in methods
            if not (runs_dir / _name(m, seed)).is_file()]
    with ProcessPoolExecutor(max_workers=args.workers) as pool:
        for result in pool.map(one_run, jobs):
            (runs_dir / _name(result["method"], result["seed"])).write_text(json.dumps(result))
            print(f"done: {result['method']} seed {result['seed']}: {result['curve'][-1][1]:.3f} N after "
                  f"{result['curve'][-1][0]:.2f} s", flush=True)
    runs = [json.loads(p.read_text()) for p in sorted(runs_dir.glob("*.json"))]
    for r in runs:                                # the spectral ladder is that method's tuning
        if r["method"] == "geo-batch spectral" and spectral["lipschitz"] is not None:
            r["tuning_seconds"] = spectral["seconds"]
    steps = {m: common["iterations"] if m == "geo-cg-layer" else common["batch_steps"] for m in METHODS}
    targets, table = summarise(runs, dict(zip(map(str, args.targets), args.targets)), args.epochs, steps)
    how = f"rung rho = {budget['rho']:g}, no ladder" if "rho" in budget else f"ladder: {budget['seconds']:.0f} s"
    text = (f"{args.data}, {args.samples} samples ({n_train} training), seeds 1-{args.seeds}; Lipschitz budget "
            f"{budget['lipschitz']:.4g} ({how})")
    if spectral["lipschitz"] is not None:
        text += (f"; spectral layers: {spectral['lipschitz']:.4g} (their ladder, rungs of "
                 f"{spectral.get('rung_steps', 200)} steps: {spectral['seconds']:.0f} s)")
    text += f"\n\n{table}\n"
    (folder / "summary.md").write_text(text)
    (folder / "targets.json").write_text(json.dumps(targets))
    print(text)


def draw(out: Path, figure: str) -> None:
    from spherenet.plots.time_to_accuracy import time_to_accuracy_figure
    panels = {}
    for folder in sorted((p for p in out.iterdir() if (p / "runs").is_dir()), key=lambda p: p.name != "sim-30000"):
        curves = {}
        for p in sorted((folder / "runs").glob("*.json")):
            r = json.loads(p.read_text())
            curves.setdefault(r["method"], []).append(r["curve"])
        targets = json.loads((folder / "targets.json").read_text()) if (folder / "targets.json").is_file() else {}
        panels[folder.name] = {"curves": {LABELS.get(m, m): curves[m] for m in METHODS if m in curves},
                               "targets": targets}
    print(f"wrote {time_to_accuracy_figure(panels, figure)}")


LABELS = {"geo-batch spectral": "geo-batch, spectral layers (the default)", "geo-batch": "geo-batch, Frobenius spheres",
          "geo-batch float64": "geo-batch, Frobenius spheres, float64", "adam (spherenet)": "Adam (spherenet's), tuned",
          "torch Adam tuned": "PyTorch Adam, tuned", "torch Adam lr 1e-3": "PyTorch Adam, lr 1e-3",
          "geo-cg-layer": "geo-cg-layer (full batch)"}


def _name(method: str, seed: int) -> str:
    return f"{method.replace(' ', '_').replace('(', '').replace(')', '')}_seed{seed}.json"


def _has_torch() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", choices=("sim", "neural-fly"), default="sim")
    p.add_argument("--samples", type=int, default=300000)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--iterations", type=int, default=200, help="full-batch iterations (geo-cg-layer)")
    p.add_argument("--epochs", type=int, default=20, help="epochs of the mini-batch methods")
    p.add_argument("--targets", type=float, nargs="*", default=[], help="test RMSE targets [N] besides Adam@10ep")
    p.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    p.add_argument("--rho", type=float, default=None,
                   help="use the budget ladder's rung K(rho) instead of running the ladder (large data)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--out", default="out/bench_tta")
    p.add_argument("--figure", default=None, help="draw RMSE against seconds from every data set in --out")
    args = p.parse_args()
    out = Path(args.out)
    if args.figure:
        draw(out, args.figure)
        return
    run_all(args, out / f"{args.data}-{args.samples}")


if __name__ == "__main__":
    main()
