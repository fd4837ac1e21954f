"""The ``spherenet`` command: train, reproduce the paper's experiments, redraw figures, run checks.

Errors in what the user gave (options, files, data) end the command with one line on stderr and exit
status 2; no traceback, and no partial result under the final file names.
"""
from __future__ import annotations

import argparse
import contextlib
import math
import os
import signal
import sys
import threading
import time
from pathlib import Path

import numpy as np

from . import __version__, _matplotlib_config, progress
from .budget import FIRST_BATCH, first_batch
from .experiments import (BATCH_METHOD, DATA_SOURCES, DEFAULTS, MAIN_BATCH_SIZE, MAIN_BATCH_STEPS, MAIN_EVAL_EVERY,
                          METHODS, SCALING_CHOICES, SPHERE_METHODS, SPLIT_CHOICES, check_problem, default_batch_size,
                          default_eval_every, default_iterations, default_method, load_problem, network_widths,
                          parse_widths, run, settings_for)
from .memory import check_fits
from .results import read_json, save_arrays, write_json
from .runfolder import RunFolder, prepare as prepare_folder
from .spectral import NORMS


DEFAULT_TRAIN_OUT = "results/train"


class UsageError(Exception):
    """A mistake in the command line or the files it names (reported in one line, exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one line on stderr (``--help`` still shows the usage)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _parser() -> argparse.ArgumentParser:
    p = _Parser(prog="spherenet", description=__doc__.splitlines()[0])
    p.add_argument("--version", action="version", version=f"spherenet {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _add_train(sub)
    _add_reproduce(sub)
    _add_lipschitz(sub)
    _add_run_tools(sub)
    return p


def _add_train(sub) -> None:
    """``spherenet train``: the data, the network, the method and its budget, the output and checkpoints."""
    train = sub.add_parser("train", help="train one network and write result.json + weights.npz")
    train.add_argument("--data", choices=DATA_SOURCES, default="sim", help="data source (default: the simulator)")
    train.add_argument("--data-path", help="file or folder of real flight logs (for neural-lander / neural-fly)")
    train.add_argument("--data-seed", type=int, default=0, help="seed of the simulator or of the 80/20 split")
    train.add_argument("--samples", type=int, default=30000, help="simulator samples (train + test)")
    train.add_argument("--widths", default="12-25-30-15-3", help="layer widths, e.g. 12-25-30-15-3")
    train.add_argument("--split", choices=SPLIT_CHOICES, default=DEFAULTS["split"],
                   help="random: a random 80/20 split of samples (the paper's protocol, default); flights: "
                        "whole flights held out (the harder generalisation test)")
    train.add_argument("--scaling", choices=SCALING_CHOICES, default=DEFAULTS["scaling"],
                   help="standard: per-feature standardisation, a bias feature, the Lipschitz budget --lipschitz "
                        "(default); paper: x / ||x|| and targets to the initial gain (the paper's pipeline)")
    train.add_argument("--lipschitz", type=float, default=None, metavar="K",
                   help="certified Lipschitz bound of the learned map, in output units per unit of the raw "
                        "features' euclidean norm (standard scaling; default: chosen on a validation part)")
    train.add_argument("--method", choices=METHODS, default=None, metavar="{" + ",".join(METHODS) + "}",
                   help=f"step rule (default {BATCH_METHOD}: Adam's direction on the spheres with the Newton step "
                        f"of slope and curvature averaged across batches, docs/beyond.md §7; with --batch-size full, "
                        f"{DEFAULTS['method']}: the paper's jet-Newton step along conjugate-gradient geodesics; "
                        f"taylor = the paper's Algorithm 1, mm = its Algorithm 2) or a baseline optimiser")
    train.add_argument("--norm", choices=NORMS, default=None,
                   help="the norm each layer is held at its radius in: frobenius (the paper's spheres) or spectral "
                        f"(spectral normalisation: the whole budget on the layers' spectral norms; {BATCH_METHOD} "
                        f"only, docs/beyond.md §8). Default: spectral for {BATCH_METHOD}, else frobenius")
    train.add_argument("--order", type=int, default=2, help="jet order of the taylor method (2 = the paper)")
    train.add_argument("--iterations", type=int, default=None,
                   help=f"iterations, one per batch (default {MAIN_BATCH_STEPS} with mini-batches, "
                        f"{default_iterations(None)} with full batch)")
    train.add_argument("--batch-size", type=_batch_size, default=None, metavar="B|full|auto",
                   help=f"mini-batch size (default {MAIN_BATCH_SIZE} for {BATCH_METHOD}, the default method, and "
                        "full batch for every other method); full: full batch; auto: a sphere method halves it from "
                        f"{FIRST_BATCH} while the error on the validation part falls (with the standard scaling), sgd "
                        "and adam tune it with the learning rate")
    train.add_argument("--eval-every", type=int, default=None, metavar="N",
                   help="evaluate the test loss every N iterations and at the last (default 1 with full batch, "
                        f"{MAIN_EVAL_EVERY} with mini-batches)")
    train.add_argument("--max-seconds", type=float, default=None, metavar="S",
                   help="stop after S seconds of training (evaluation and tuning excluded)")
    train.add_argument("--lr", type=float, default=None,
                   help="a fixed learning rate for sgd, adam or rsgd (default: sgd and adam tune it)")
    train.add_argument("--lr-grid", type=_rates, default=None, metavar="R1,R2,...",
                   help="the learning rates sgd and adam tune over (default: their half-decade grids)")
    train.add_argument("--quiet", action="store_true", help="no progress bars (also off when stderr is no terminal)")
    train.add_argument("--seed", type=int, default=0, help="seed of the initialisation (and mini-batches)")
    train.add_argument("--dtype", choices=("float64", "float32"), default=None,
                       help="precision (default: float64, or float32 with --batch-size)")
    train.add_argument("--threads", type=int, default=1, metavar="T",
                   help="split the samples of every pass over T threads (sphere methods; default 1)")
    train.add_argument("--out", default=None,
                       help=f"output folder (default: {DEFAULT_TRAIN_OUT}, replaced by each run)")
    train.add_argument("--overwrite", action="store_true",
                   help="replace the result of an earlier run in --out (a folder you name is otherwise kept)")
    train.add_argument("--checkpoint-every", type=int, default=None, metavar="N",
                   help="write OUT/checkpoint.npz every N iterations and at the end (sphere methods)")
    train.add_argument("--resume", action="store_true",
                   help="continue the run in OUT/checkpoint.npz up to --iterations in total (same options)")


def _add_reproduce(sub) -> None:
    """``spherenet reproduce exp1|exp2``: the paper's experiments, as a sweep."""
    reproduce = sub.add_parser("reproduce", help="the paper's Experiment 1 or 2, with figures")
    reproduce.add_argument("experiment", choices=("exp1", "exp2"))
    reproduce.add_argument("--quick", action="store_true", help="small settings (a minute), not the paper's")
    reproduce.add_argument("--seeds", type=int, default=None, help="number of seeds (default: 40, quick: fewer)")
    reproduce.add_argument("--samples", type=int, default=None, help="simulator samples (default: 30000, quick: fewer)")
    _add_executor_options(reproduce)
    reproduce.add_argument("--out", default=None, help="output folder (default: results/<experiment>)")
    reproduce.add_argument("--figures", default=None, help="figure folder (default: <out>/figures)")
    reproduce.add_argument("--quiet", action="store_true", help="no progress bar (also off when stderr is no terminal)")


def _add_lipschitz(sub) -> None:
    """``spherenet lipschitz``: the sweep of test RMSE against the certified Lipschitz budget."""
    sweep = sub.add_parser("lipschitz", help="test RMSE against the certified Lipschitz budget: a sweep, with figure")
    sweep.add_argument("--method", choices=SPHERE_METHODS, default=DEFAULTS["method"], metavar="METHOD",
                   help=f"a sphere method (default {DEFAULTS['method']})")
    sweep.add_argument("--data", choices=DATA_SOURCES, default="sim")
    sweep.add_argument("--data-path", help="file or folder of real flight logs (for neural-lander / neural-fly)")
    sweep.add_argument("--widths", default="12-25-30-15-3")
    sweep.add_argument("--split", choices=SPLIT_CHOICES, default=DEFAULTS["split"])
    sweep.add_argument("--quick", action="store_true", help="small settings (a minute)")
    sweep.add_argument("--points", type=int, default=None, help="budgets on the curve (default 9, quick 5)")
    sweep.add_argument("--seeds", type=int, default=None, help="seeds per budget (default 3, quick 2)")
    sweep.add_argument("--samples", type=int, default=None, help="simulator samples (default 30000, quick 3000)")
    sweep.add_argument("--iterations", type=int, default=None, help="iterations per run (default 200, quick 60)")
    _add_executor_options(sweep)
    sweep.add_argument("--out", default="results/lipschitz", help="output folder (default: results/lipschitz)")
    sweep.add_argument("--figures", default=None, help="figure folder (default: <out>/figures)")


def _add_run_tools(sub) -> None:
    """The commands that use a finished run or none: ``predict``, ``plot`` and ``check``."""
    predict = sub.add_parser("predict", help="apply a trained `spherenet train` run to raw flight logs (newtons)")
    predict.add_argument("folder", help="the run's output folder (result.json, weights.npz)")
    predict.add_argument("--data", choices=DATA_SOURCES[1:], default="neural-lander", help="the logs' format")
    predict.add_argument("--data-path", required=True, help="a CSV file or a folder of them")
    predict.add_argument("--out", default="predictions.csv", help="CSV to write (default: predictions.csv)")

    plot = sub.add_parser("plot", help="redraw the figures of a train or reproduce output folder")
    plot.add_argument("folder")
    plot.add_argument("--figures", default=None, help="figure folder (default: <folder>/figures)")

    check = sub.add_parser("check", help="verify gradients, jets, norms and the majorant on a random problem")
    check.add_argument("--seed", type=int, default=0)


def _rates(text: str) -> list:
    """``--lr-grid``: comma-separated numbers (an empty list is refused later, with the other checks)."""
    try:
        return [float(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated learning rates, got {text!r}") from None


def _add_executor_options(p) -> None:
    """Where a sweep's trainings run: ``--workers`` local processes or the cluster at ``--scheduler``."""
    p.add_argument("--workers", type=int, default=None, help="worker processes (default: one per core)")
    p.add_argument("--scheduler", default=None, metavar="ADDRESS",
                   help="run the trainings on the Dask cluster whose scheduler is at ADDRESS, e.g. "
                        "tcp://10.0.0.5:8786 (default: local processes; docs/cluster.md)")


def _batch_size(text: str):
    """``--batch-size``: a positive integer, ``full`` or ``auto``."""
    if text in ("auto", "full"):
        return text
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, 'full' or 'auto', got {text!r}") from None


def cmd_train(args) -> int:
    if args.eval_every is not None and args.eval_every < 1:
        raise UsageError(f"--eval-every must be >= 1, got {args.eval_every}")
    if args.max_seconds is not None and not args.max_seconds > 0:
        raise UsageError(f"--max-seconds must be > 0, got {args.max_seconds:g}")
    if args.data == "sim" and args.data_path:
        raise UsageError("--data-path only applies to --data neural-lander or neural-fly")
    if args.lipschitz is not None and not (math.isfinite(args.lipschitz) and args.lipschitz > 0):
        raise UsageError(f"--lipschitz must be a finite number > 0, got {args.lipschitz}")
    if args.data_path and not Path(args.data_path).exists():
        raise UsageError(f"--data-path {args.data_path}: no such file or folder")
    if args.batch_size is None:                          # not named: the method's own (the main job: mini-batches)
        args.batch_size = default_batch_size(args.method)
    elif args.batch_size == "full":
        args.batch_size = None
    args.method = args.method or default_method(args.batch_size)
    if args.iterations is None:
        args.iterations = default_iterations(args.batch_size)
    if args.eval_every is None:
        args.eval_every = default_eval_every(args.batch_size)
    settings = settings_for(data=args.data, data_path=args.data_path, data_seed=args.data_seed,
                            n_samples=args.samples, widths=parse_widths(args.widths), method=args.method,
                            order=args.order, iterations=args.iterations, seed=args.seed, dtype=args.dtype,
                            batch_size=args.batch_size, split=args.split, scaling=args.scaling,
                            lipschitz=args.lipschitz, eval_every=args.eval_every,
                            max_seconds=args.max_seconds, lr=args.lr, lr_grid=args.lr_grid, norm=args.norm)
    if args.method != "taylor" and args.order != 2:
        raise UsageError("--order only applies to --method taylor")
    if args.threads < 1:
        raise UsageError(f"--threads must be >= 1, got {args.threads}")
    if args.threads > 1 and args.method not in SPHERE_METHODS:
        raise UsageError(f"--threads applies to the sphere methods ({', '.join(SPHERE_METHODS)}), "
                         f"not to {args.method}")
    with _sigterm_raises(), _run_folder(args) as folder:
        try:
            _train_into(args, settings, folder)
        except (KeyboardInterrupt, Terminated) as stop:      # the last checkpoint is whole: say how to go on
            stop.resume_hint = _resume_hint(args, folder.path)
            raise
    return 0


def _resume_hint(args, out: Path) -> str:
    """What an interrupted run left to resume: its checkpoint and the iterations it holds, or ``""``."""
    path = out / "checkpoint.npz"
    if (args.checkpoint_every is None and not args.resume) or not path.is_file():
        return ""
    from .checkpoint import load_checkpoint
    try:
        done = load_checkpoint(path).iterations
    except (OSError, ValueError):
        return ""
    return f"; {path} holds {done} iterations: rerun with --resume to continue"


def _run_folder(args) -> RunFolder:
    """``--out`` as a :class:`RunFolder`: created, probed and locked before any data are loaded. The default
    folder is replaced by every run (so ``spherenet train`` can be run again and again); a folder the user
    named keeps its earlier result unless ``--overwrite`` (or ``--resume``, which continues that run)."""
    return RunFolder(args.out or DEFAULT_TRAIN_OUT, replace=args.out is None or args.overwrite or args.resume)


def _batches(batch_size) -> str:
    if batch_size == "auto":
        return " (mini-batches, their size chosen on a validation part)"
    return " (full batch)" if batch_size is None else f" (batches of {batch_size})"


def _train_into(args, settings: dict, folder: RunFolder) -> None:
    out = folder.path
    checkpoint = _checkpoint_path(args, out)
    train_data, test_data = load_problem(settings["data"], settings["data_path"], settings["data_seed"],
                                         settings["n_samples"], split=settings["split"])
    check_fits(network_widths(settings), len(train_data), len(test_data), settings["dtype"],
               first_batch(settings["batch_size"]), settings["order"], name=args.widths)   # before the network exists
    check_problem(settings)
    budget = (f"Lipschitz budget {args.lipschitz:g}" if args.lipschitz is not None else
              "Lipschitz budget chosen on a validation part" if args.scaling == "standard" else "the paper's scaling")
    layers = ", spectral layers" if settings["norm"] == "spectral" else ""
    print(f"spherenet train: {args.method}{layers} on {args.data} ({args.split} split), widths {args.widths}, "
          f"{args.iterations} iterations{_batches(settings['batch_size'])}, seed {args.seed}, {settings['dtype']}, "
          f"{budget}"
          + (f"; resuming {checkpoint}" if args.resume else ""), file=sys.stderr)
    # Result files are written only once training has finished, and as a set (RunFolder.publish): an
    # interrupted run leaves the old set (and its last checkpoint, written atomically) intact.
    # The baselines draw their own bars (tuning, then training).
    with progress.bar(args.iterations, f"training {args.method}",
                      args.quiet or args.method not in SPHERE_METHODS) as pbar:
        record, arrays = run(settings, progress=progress.iteration_callback(pbar), checkpoint=checkpoint,
                             checkpoint_every=args.checkpoint_every, resume=args.resume, threads=args.threads,
                             quiet=args.quiet)
    _matplotlib_config.configure(out)                 # before Matplotlib is imported: a folder for its cache
    from .plots.experiments import training_figure
    written = folder.publish({"weights.npz": lambda path: save_arrays(path, **arrays),
                              "figures/training.png": lambda path: training_figure(record, path),
                              "result.json": lambda path: write_json(path, record)})
    _summary(record)
    print("wrote " + ", ".join(map(str, written + ([checkpoint] if checkpoint else []))))


def _checkpoint_path(args, out: Path):
    """``OUT/checkpoint.npz`` if ``--checkpoint-every`` or ``--resume`` was given, else ``None``."""
    if args.checkpoint_every is None and not args.resume:
        return None
    if args.method not in SPHERE_METHODS:
        raise UsageError(f"--checkpoint-every and --resume apply to the sphere methods "
                         f"({', '.join(SPHERE_METHODS)}), not to {args.method}")
    if args.checkpoint_every is not None and args.checkpoint_every < 1:
        raise UsageError(f"--checkpoint-every must be >= 1, got {args.checkpoint_every}")
    path = out / "checkpoint.npz"
    if args.resume and not path.is_file():
        raise UsageError(f"--resume: no checkpoint at {path}")
    if not args.resume and not args.overwrite and path.exists():
        raise UsageError(f"{path} exists: add --resume to continue that run, or choose another --out")
    return path


def _summary(r: dict) -> None:
    layers = "  (spectral layers)" if r.get("norm") == "spectral" else ""
    lines = [f"method {r['method']}{layers}  widths {'-'.join(map(str, r['widths']))}  seed {r['seed']}  "
             f"n_train {r['n_train']}  n_test {r['n_test']}",
             f"loss J: {r['loss_train'][0]:.4g} -> {r['loss_train'][-1]:.4g} (train), "
             f"{r['loss_test'][-1]:.4g} (test)",
             f"RMSE [N]: train {_fmt(r['rmse_train'])}, test {_fmt(r['rmse_test'])}",
             f"  beside it on the same split [N]: linear least squares {_fmt(r.get('rmse_test_linear'))}, "
             f"training mean {_fmt(r.get('rmse_test_mean'))}"
             + (f", label noise {_fmt(r['label_noise_rmse'])}" if r.get("label_noise_rmse") else ""),
             f"time: {r['seconds_train']:.2f} s training ({1e3 * r['seconds_per_iteration']:.2f} ms/iteration), "
             f"{r['seconds_eval']:.2f} s evaluating" + (f", {r['seconds_tuning']:.2f} s tuning"
                                                       if r.get("seconds_tuning") else "")]
    if r.get("batch_selection"):
        tried = ", ".join(f"{t['batch_size']}: {t['rmse_validation']:.3f} N" for t in r["batch_selection"]["tried"])
        lines.append(f"batch size chosen on the validation part: {r['batch_size_used']} ({tried})")
    if r.get("tuning"):
        batch = r["batch_size_used"]
        lines.append(f"tuned on the validation part: lr {r['lr']:.3g}, batch "
                     f"{'full' if batch is None else batch} ({len(r['tuning'])} runs)")
    if r["tau"]:
        lines.append(f"step tau: first {r['tau'][0]:.3g}, last {r['tau'][-1]:.3g}")
    if r.get("average"):
        lines.append(f"model: the average of the iterates (memory {r['average']:g}, the last "
                     f"~{1 / (1 - r['average']):.0f} steps), on the spheres")
    if r["max_norm_drift"] is not None:
        lines.append(f"max norm drift |‖W_i‖ - mu_i|/mu_i: {r['max_norm_drift']:.2g}")
    if r.get("lipschitz_lower") is not None and r.get("lipschitz_bound") is None:
        lines.append(f"Lipschitz [euclidean norm of the raw features]: no certificate; empirical >= "
                     f"{r['lipschitz_lower']:.4g}")
    elif r.get("lipschitz_lower") is not None:
        chosen = r.get("lipschitz_selection")
        lines.append(f"Lipschitz [{r['lipschitz_norm']}]: certified <= {r['lipschitz_bound']:.4g} "
                     f"(budget {r['lipschitz_budget']:.4g}"
                     + (", chosen on a validation part" if chosen else "") + f"), "
                     f"empirical >= {r['lipschitz_lower']:.4g}")
    if r["stop_reason"]:
        lines.append(f"stopped early: {r['stop_reason']}")
    print("\n".join(lines))


def _fmt(x) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def _run_sweep(args, out: Path, sweep):
    """``sweep(executor)`` on the executor that ``--scheduler``/``--workers`` name, shut down after.
    Returns its summary, or ``None`` once one line on stderr has said that the cluster lost a run."""
    from .experiments import executor_for
    executor = executor_for(args.scheduler, args.workers)      # a bad address or a missing dask ends here
    failures = ()
    if args.scheduler is not None:
        from .cluster import CLUSTER_FAILURES as failures
    try:
        with _sigterm_raises():
            return sweep(executor)
    except failures as err:
        reason = " ".join(f"{type(err).__name__}: {err}".split()).rstrip(":")
        print(f"spherenet {args.command}: error: the Dask cluster lost a run ({reason}); the finished runs are "
              f"kept in {out / 'runs'}: rerun the same command to resume", file=sys.stderr)
        return None
    except BaseException:                   # Ctrl-C, SIGTERM, an error: stop the local workers at once
        _stop_workers(executor)
        raise
    finally:
        executor.shutdown(cancel_futures=True)


def cmd_reproduce(args) -> int:
    from .reproduce import reproduce
    out = Path(args.out or f"results/{args.experiment}")
    for name in ("seeds", "samples", "workers"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise UsageError(f"--{name} must be >= 1, got {value}")
    with _sweep_folder(out, args.figures) as folder:
        start = time.perf_counter()
        with progress.bar(None, f"{args.experiment} runs", args.quiet, unit="run") as pbar:
            def report(done, total, _):
                pbar.total = total
                pbar.n = done
                pbar.refresh()
            summary = _run_sweep(args, out, lambda executor: reproduce(
                args.experiment, out, quick=args.quick, seeds=args.seeds, n_samples=args.samples,
                executor=executor, progress=report))
        return _finish_sweep(args, folder, summary, start)


@contextlib.contextmanager
def _sweep_folder(out: Path, figures=None):
    """A sweep's ``--out`` held for the whole sweep as ``spherenet train``'s is (:class:`RunFolder`: created,
    probed and locked, so a second sweep into it is refused in one line; its finished runs are kept, for a
    rerun to resume), and ``--figures`` created and probed, both before any run starts."""
    with RunFolder(out, replace=True) as folder:
        if figures:
            prepare_folder(figures)
        yield folder


def _finish_sweep(args, folder: RunFolder, summary, start: float) -> int:
    """Write a sweep's summary and figures and print it; 1 if the cluster lost a run (already said).

    The summary and the figures drawn into the folder are published as a set (:meth:`RunFolder.publish`), so
    a kill leaves no new summary beside an earlier sweep's figures; ``--figures`` elsewhere is drawn after."""
    if summary is None:
        return 1
    summary["wall_seconds"] = time.perf_counter() - start
    _matplotlib_config.configure(folder.path)
    writers = {"summary.json": lambda path: write_json(path, summary)}
    if not args.figures:
        writers["figures"] = lambda path: _summary_figures(summary, path)
    folder.publish(writers)
    figures = Path(args.figures) if args.figures else folder.path / "figures"
    if args.figures:
        _summary_figures(summary, figures)
    _print_experiment(summary)
    print(f"wrote {folder.path / 'summary.json'} and the figures in {figures}")
    return 0


class Terminated(Exception):
    """SIGTERM arrived (``kill PID``): the command stops as for Ctrl-C, with exit status 143."""


@contextlib.contextmanager
def _sigterm_raises():
    """While inside: SIGTERM raises :class:`Terminated` in the main thread, so ``finally`` blocks run (by
    default SIGTERM ends the process at once, leaving a sweep's pool workers blocked on their pipe).

    A signal that lands while Python code runs inside a callback from C (Numba's compiler writing its cache,
    through llvmlite and ctypes) raises there, where an exception cannot propagate: Python would print it as
    "Exception ignored" and carry on, losing the signal. The unraisable hook delivers the signal again
    instead, a moment later, when the main thread is back in Python code."""
    def handler(signum, frame):
        raise Terminated()

    def unraisable(info):
        if isinstance(info.exc_value, Terminated):
            threading.Timer(0.01, os.kill, (os.getpid(), signal.SIGTERM)).start()
        else:
            previous_hook(info)
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous, previous_hook = signal.signal(signal.SIGTERM, handler), sys.unraisablehook
    sys.unraisablehook = unraisable
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
        sys.unraisablehook = previous_hook


def _stop_workers(executor) -> None:
    """Terminate a process pool's workers without waiting for their runs (finished runs are on disk)."""
    stop = getattr(executor, "terminate_workers", None)           # Python >= 3.14
    if stop is not None:
        stop()
        return
    for process in list((getattr(executor, "_processes", None) or {}).values()):
        process.terminate()


def cmd_lipschitz(args) -> int:
    from .tradeoff import tradeoff
    for name in ("points", "seeds", "samples", "iterations", "workers"):
        value = getattr(args, name)
        if value is not None and value < (2 if name == "points" else 1):
            raise UsageError(f"--{name} must be >= {2 if name == 'points' else 1}, got {value}")
    if args.data == "sim" and args.data_path:
        raise UsageError("--data-path only applies to --data neural-lander or neural-fly")
    if args.data_path and not Path(args.data_path).exists():
        raise UsageError(f"--data-path {args.data_path}: no such file or folder")
    out = Path(args.out)
    with _sweep_folder(out, args.figures) as folder:
        start = time.perf_counter()
        summary = _run_sweep(args, out, lambda executor: tradeoff(
            out, args.method, args.data, args.data_path, parse_widths(args.widths), args.split, args.quick,
            args.points, args.seeds, args.samples, args.iterations, executor,
            progress=lambda done, total, _: print(f"  run {done}/{total}", file=sys.stderr, flush=True)))
        return _finish_sweep(args, folder, summary, start)


def _print_tradeoff(s: dict) -> None:
    print("budget K       test RMSE [N]     certified bound   empirical lower bound")
    for p in s["curve"]:
        print(f"{p['lipschitz']:<12.4g} {p['rmse_test']['mean']:6.3f} ± {p['rmse_test']['std']:<6.3f}  "
              f"{p['lipschitz_bound']['mean']:<16.4g}  {p['lipschitz_lower']['mean']:.4g}")
    ref = s["reference"]
    print(f"chosen on validation: K = {', '.join(f'{k:.4g}' for k in s['auto']['chosen'])}: test RMSE "
          f"{s['auto']['rmse_test']['mean']:.3f} ± {s['auto']['rmse_test']['std']:.3f} N")
    print(f"the paper's pipeline: {s['paper']['rmse_test']['mean']:.3f} ± {s['paper']['rmse_test']['std']:.3f} N; "
          f"its implicit budget K = {s['paper_budget']:.4g} with the standard scaling: "
          f"{s['paper_budget_run']['rmse_test']['mean']:.3f} N")
    print(f"Adam, tuned: {s['adam']['rmse_test']['mean']:.3f} ± {s['adam']['rmse_test']['std']:.3f} N;  linear least "
          f"squares {ref['rmse_test_linear']:.3f} N;  training mean {ref['rmse_test_mean']:.3f} N"
          + (f";  label noise {ref['label_noise_rmse']:.3f} N" if ref.get("label_noise_rmse") else ""))


def _print_experiment(s: dict) -> None:
    if s["experiment"] == "lipschitz":
        return _print_tradeoff(s)
    if s["experiment"] == "exp1":
        for method, name in (("taylor", "Algorithm 1 (taylor)"), ("mm", "Algorithm 2 (mm)")):
            m = s[method]
            J = m["loss_train"]["mean"]
            tau = m["tau"]["mean"]
            marks = [k for k in (1, 10, 50, 100, 200, 1000, 3000) if k < len(J)]
            print(f"{name}, {m['seeds']} seeds: mean train J " + ", ".join(f"{J[k]:.3g} (it {k})" for k in marks))
            print("  mean tau " + ", ".join(f"{tau[k - 1]:.3g} (it {k})" for k in marks)
                  + f";  test RMSE {m['rmse_test']['mean'][0]:.3f} ± {m['rmse_test']['std'][0]:.3f} N")
    else:
        print("mean test RMSE [N] (rows: depth L, columns: hidden width " + " ".join(map(str, s["hidden"])) + ")")
        for L, row in zip(s["depths"], s["rmse_test"]["mean"]):
            print(f"  L={L:<3d}" + " ".join(f"{v:6.3f}" for v in row))
        print(f"total training time {s['total_run_seconds']:.1f} s; wall clock {s['wall_seconds']:.1f} s")
    from .reproduce import stop_lines
    for line in stop_lines(s):
        print(line)


def _draw(folder: Path, figures=None) -> list:
    _matplotlib_config.configure(folder)
    from .plots import experiments as figs
    figures = Path(figures) if figures else folder / "figures"
    if (folder / "summary.json").is_file():
        s = _read_record(folder / "summary.json")
        return _drawn_from(folder / "summary.json", lambda: _summary_figures(s, figures))
    if (folder / "result.json").is_file():
        r = _read_record(folder / "result.json")
        return _drawn_from(folder / "result.json", lambda: [figs.training_figure(r, figures / "training.png"),
                                                          _draw_predictions(folder, r, figures)])
    raise UsageError(f"{folder}: no summary.json or result.json to plot")


def _summary_figures(summary: dict, figures: Path) -> list:
    """The figures of a sweep's summary (``reproduce exp1|exp2``, ``lipschitz``), drawn into ``figures``."""
    from .plots import experiments as figs
    if summary.get("experiment") == "lipschitz":
        from .plots.tradeoff import tradeoff_figure
        return [tradeoff_figure(summary, figures / "lipschitz.png")]
    draw = figs.exp1_figures if summary.get("experiment") == "exp1" else figs.exp2_figures
    return draw(summary, figures)


def _read_record(path: Path) -> dict:
    record = read_json(path)
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object written by spherenet, found a JSON {type(record).__name__}")
    return record


def _drawn_from(path: Path, draw) -> list:
    """``draw()``, with what a record lacking keys or holding values of the wrong kind raises turned into one
    line naming the file (``spherenet plot`` reads files that may have been edited or cut)."""
    try:
        return draw()
    except (KeyError, IndexError, TypeError, AttributeError, ValueError) as err:
        what = f"no key {err.args[0]!r}" if isinstance(err, KeyError) else f"{type(err).__name__}: {err}"
        raise ValueError(f"{path}: not a complete spherenet record ({what})") from None


def _draw_predictions(folder: Path, record: dict, figures: Path) -> Path:
    """Predicted against measured force on the test set, recomputed from the run's weights and data."""
    from .experiments import predict_test
    from .plots.predictions import predictions_figure
    from .results import load_arrays
    weights = folder / "weights.npz"
    if not weights.is_file():
        raise UsageError(f"{weights}: no such file (the test-set predictions need the trained weights)")
    return predictions_figure(record, predict_test(record, load_arrays(weights)), figures / "predictions.png")


def cmd_predict(args) -> int:
    from .data import TARGET_NAMES, load_neural_fly, load_neural_lander
    from .estimator import from_run
    model = from_run(args.folder)
    if not Path(args.data_path).exists():
        raise UsageError(f"--data-path {args.data_path}: no such file or folder")
    data = (load_neural_lander if args.data == "neural-lander" else load_neural_fly)(args.data_path)
    F = model.predict(data.X)
    write_csv(args.out, ["flight", "t", *TARGET_NAMES, *(f"{n}_measured" for n in TARGET_NAMES)],
              np.column_stack([data.flight, data.t, F, data.Y]))
    rmse = float(np.sqrt(np.sum((F - data.Y) ** 2) / len(F)))
    print(f"{len(F)} samples from {args.data_path}: RMSE against the logged force {rmse:.4f} N")
    print(f"Lipschitz [{'raw features' if model.scaling == 'standard' else 'unit-normalised input'}]: "
          f"certified <= {model.lipschitz_bound_:.4g}, empirical on the training data >= {model.lipschitz_lower_:.4g}")
    print(f"wrote {args.out}")
    return 0


def write_csv(path, header, rows) -> None:
    """``rows`` (N, len(header)) as CSV with ``header``, written atomically (17 significant digits)."""
    import io

    from .results import _atomic_write_bytes
    buf = io.StringIO()
    np.savetxt(buf, rows, delimiter=",", header=",".join(header), comments="", fmt="%.17g")
    _atomic_write_bytes(path, buf.getvalue().encode())


def cmd_plot(args) -> int:
    folder = Path(args.folder)
    if not folder.is_dir():
        raise UsageError(f"{folder}: no such folder")
    for path in _draw(folder, args.figures):
        print(f"wrote {path}")
    return 0


def cmd_check(args) -> int:
    from .verify import run_checks
    ok = run_checks(seed=args.seed, out=sys.stdout)
    return 0 if ok else 1


def _error_line(err: Exception) -> str:
    """An OSError naming a path as ``PATH: reason`` (as spherenet's own file errors do), else the text."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"{err.filename}: {err.strerror}"
    return str(err)


COMMANDS = {"train": cmd_train, "reproduce": cmd_reproduce, "lipschitz": cmd_lipschitz, "predict": cmd_predict,
            "plot": cmd_plot, "check": cmd_check}


def main(argv=None) -> int:
    args = _parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except BrokenPipeError:                  # e.g. `spherenet check | head -1`: the reader left
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except (UsageError, ValueError, TypeError, OSError, MemoryError) as err:   # OSError: a path, named
        if os.environ.get("SPHERENET_DEBUG"):
            raise
        print(f"spherenet {args.command}: error: {_error_line(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as stop:
        print(f"spherenet {args.command}: interrupted{getattr(stop, 'resume_hint', '')}", file=sys.stderr)
        return 130
    except Terminated as stop:
        print(f"spherenet {args.command}: terminated (SIGTERM){getattr(stop, 'resume_hint', '')}", file=sys.stderr)
        return 143


if __name__ == "__main__":
    sys.exit(main())
