"""Runs and sweeps: one training run from data to a result record, and the paper's two experiments.

A *run* is a plain dict of settings (``method, widths, seed, iterations, ...``); :func:`run` turns it into a
result record (a JSON-ready dict) plus the trained weights. A *sweep* maps :func:`run` over many settings on
any ``concurrent.futures.Executor`` — a local process pool by default; a ``dask.distributed.Client``'s
``get_executor()`` or a Ray ``ActorPool``-backed executor runs the same sweep on a cluster — and streams
every finished run to ``out/runs/<key>.json``, so an interrupted sweep resumes without redoing finished runs.
"""
from __future__ import annotations

import functools
import hashlib
import json
import math
import os
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np

from ._checks import check_choice, finite_float, positive_int
from .averaging import MEMORY as AVERAGE_MEMORY
from .network import NormalisedMLP, check_widths
from .results import arrays_digest, read_json, save_arrays, write_json
from .spectral import NORMS
from .train import RULES, train, trained_network

SPHERE_METHODS = tuple(RULES)                       # taylor, mm, mm-frobenius, mm-telescoping, mm-closed
BASELINE_METHODS = ("sgd", "adam", "rsgd", "agd")
METHODS = SPHERE_METHODS + BASELINE_METHODS
DATA_SOURCES = ("sim", "neural-lander", "neural-fly")

SCALING_CHOICES = ("standard", "paper")
RESULT_FORMAT = 2        # result.json: 2 adds the scaling's kind, the Lipschitz certificate and "format"
SPLIT_CHOICES = ("random", "flights")

# The default pipeline: the information-preserving scaling with the Lipschitz budget chosen on a validation
# part (spherenet.budget), a random 80/20 split (the paper's protocol), and the jet-Newton step along a
# layer-normalised conjugate-gradient geodesic (docs/beyond.md). The paper's pipeline is scaling="paper"
# with method="taylor" (Algorithm 1), which `reproduce` runs.
DEFAULTS = dict(data="sim", data_path=None, data_seed=0, n_samples=30000, widths=(12, 25, 30, 15, 3),
                method="geo-cg-layer", order=2, iterations=200, seed=0, dtype=None, batch_size=None,
                scaling="standard", lipschitz=None, split="random", eval_every=1, max_seconds=None, lr=None,
                lr_grid=None, norm=None)
# Settings added after sweeps were first stored: left out of a run's key while at their default, so the
# runs stored before them keep their names.
LATER_SETTINGS = {"eval_every": 1, "max_seconds": None, "lr": None, "lr_grid": None, "norm": "frobenius"}


BATCH_METHOD = "geo-batch"      # the default with mini-batches (docs/beyond.md §7)


# The main job (``spherenet train`` without --method or --batch-size, ``SphereNetRegressor()``): BATCH_METHOD on
# mini-batches for MAIN_BATCH_STEPS steps, their size chosen on the validation part with the budget ("auto":
# halved from budget.FIRST_BATCH = 1024 while the validation error falls). In about the wall clock of the
# full-batch job before it ends far below every full-batch rule (README, "The main job";
# benchmarks/bench_main_job.py).
MAIN_BATCH_SIZE = "auto"
MAIN_BATCH_STEPS = 4000
MAIN_EVAL_EVERY = 50
FULL_BATCH_ITERATIONS = DEFAULTS["iterations"]


def default_batch_size(method: str | None) -> str | None:
    """The batch size a run gets when none is named: ``MAIN_BATCH_SIZE`` (``"auto"``, chosen on the validation
    part: :func:`spherenet.budget.select_batch_size`) for the default rule (``method`` None or ``BATCH_METHOD``),
    full batch (``None``) for every other method (the paper's rules stay full-batch)."""
    return MAIN_BATCH_SIZE if method in (None, BATCH_METHOD) else None


def default_iterations(batch_size) -> int:
    """The iterations a run gets when none are named: ``MAIN_BATCH_STEPS`` mini-batch steps, or
    ``FULL_BATCH_ITERATIONS`` (200, the paper's) full-batch iterations."""
    return FULL_BATCH_ITERATIONS if batch_size is None else MAIN_BATCH_STEPS


def default_eval_every(batch_size) -> int:
    """How often a run evaluates its test loss when not told: every full-batch iteration, or every
    ``MAIN_EVAL_EVERY`` mini-batch steps (each evaluation of a mini-batch run also passes the whole training set,
    which at every step would cost more than the step)."""
    return 1 if batch_size is None else MAIN_EVAL_EVERY


def default_method(batch_size) -> str:
    """The method a run gets when none is named: ``geo-batch`` with mini-batches, else ``DEFAULTS["method"]``."""
    return DEFAULTS["method"] if batch_size is None else BATCH_METHOD


def default_dtype(batch_size) -> str:
    """The precision a run gets when none is named: ``"float32"`` with mini-batches, else ``"float64"``.

    A mini-batch gradient carries sampling noise of ~``1/sqrt(B)`` of its size, 10^4 times float32's rounding
    at any batch size used in practice, and float32 halves the cost of the products (it is PyTorch's
    precision too). Full batch keeps float64: there the method's properties are verified to rounding.
    """
    return "float64" if batch_size is None else "float32"


def default_norm(method: str, scaling: str = "standard") -> str:
    """The norm a run's layers get when none is named: ``"spectral"`` for ``geo-batch`` with the standard scaling,
    else ``"frobenius"`` (the paper's spheres; the rules with jets need them).

    With the whole budget on the layers' spectral norms (:mod:`spherenet.spectral`) ``geo-batch`` reaches tuned
    Adam's 10-epoch error sooner on the larger data sets and keeps improving where the Frobenius spheres stall
    (``benchmarks/bench_time_to_accuracy.py``, ``benchmarks/bench_batch_gap.py``; docs/beyond.md §8).
    """
    return "spectral" if method == BATCH_METHOD and scaling == "standard" else "frobenius"


def parse_widths(text: str) -> tuple[int, ...]:
    """``"12-25-30-15-3"`` -> ``(12, 25, 30, 15, 3)``."""
    try:
        widths = [int(part) for part in str(text).split("-")]
    except ValueError:
        raise ValueError(f"widths {text!r}: expected integers joined by '-', e.g. 12-25-30-15-3") from None
    return check_widths(widths)


@functools.lru_cache(maxsize=4)
def load_problem(data="sim", data_path=None, data_seed=0, n_samples=30000, test_fraction=0.2, split="random"):
    """``(train, test)`` FlightData, split as ``split`` says: ``"random"`` (the paper's protocol, a seeded
    random 80/20 split of samples) or ``"flights"`` (whole flights held out: the simulator's figure-8
    flights, or a seeded fifth of a real log's flights)."""
    from . import data as sd
    check_choice("data source", data, DATA_SOURCES)
    check_choice("split", split, SPLIT_CHOICES)
    if data == "sim":
        if data_path is not None:
            raise ValueError("--data-path only applies to --data neural-lander or neural-fly")
        return sd.default_problem(seed=data_seed, n_samples=n_samples, test_fraction=test_fraction, split=split)
    if data_path is None:
        raise ValueError(f"--data {data} needs --data-path (the file or folder you downloaded)")
    loader = sd.load_neural_lander if data == "neural-lander" else sd.load_neural_fly
    logs = loader(data_path)
    if split == "random":
        return sd.random_split(logs, test_fraction=test_fraction, seed=data_seed)
    return sd.split_by_flight(logs, held_out_flights(logs.flight_ids, test_fraction, data_seed))


def held_out_flights(flight_ids, test_fraction: float, seed) -> list:
    """A seeded choice of ``round(f n)`` of the ``n`` flights (at least one, never all)."""
    ids = np.asarray(flight_ids)
    if ids.size < 2:
        raise ValueError(f"split='flights' needs at least 2 flights; the data have {ids.size}")
    n_test = min(max(int(round(test_fraction * ids.size)), 1), ids.size - 1)
    return sorted(np.random.default_rng(seed).choice(ids, n_test, replace=False).tolist())


def check_problem(s: dict) -> None:
    """Load run ``s``'s data and fit its scaling once, so that data faults (a constant feature, zero-norm
    rows for the paper's scaling, too small a budget) are reported before any work starts."""
    train, _ = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    net = NormalisedMLP(network_widths(s), seed=s["seed"])
    fit_scaling(dict(s, lipschitz=s["lipschitz"] or 1.0) if s["scaling"] == "standard" else s, train, net)


def network_widths(s: dict) -> tuple[int, ...]:
    """The network's widths for run settings ``s``: the standard scaling adds the bias feature's input."""
    return (s["widths"][0] + (s["scaling"] == "standard"),) + tuple(s["widths"][1:])


def fit_scaling(s: dict, train, net: NormalisedMLP):
    """The scaling of run ``s`` fitted on ``train``: the paper's (with ``P_op`` of ``net`` at
    initialisation) or the standard one at the budget ``s["lipschitz"]`` for ``net``'s radii."""
    from .data import PaperScaling, StandardScaling
    if s["scaling"] == "paper":
        return PaperScaling.fit(train.X, train.Y, net.spectral_norm_product())
    return StandardScaling.fit(train.X, train.Y, s["lipschitz"], float(np.prod(net.radii)))


def scaled_arrays(train, test, net: NormalisedMLP, dtype=np.float64, scaling=None):
    """A problem's four arrays, scaled for a network.

    Parameters
    ----------
    train, test : FlightData
        The raw training and test data.
    net : NormalisedMLP
        The network at initialisation (its ``P_op`` sets the paper's scaling).
    dtype : numpy dtype
        The arrays' precision.
    scaling : StandardScaling or PaperScaling, optional
        A fitted scaling; ``None`` fits the paper's on ``train`` (docs/method.md §2).

    Returns
    -------
    arrays : list of ndarray
        ``[X, Y, X_test, Y_test]`` scaled, in ``dtype``.
    scaling : StandardScaling or PaperScaling
        The scaling used.
    """
    from .data import PaperScaling
    if scaling is None:
        scaling = PaperScaling.fit(train.X, train.Y, net.spectral_norm_product())
    arrays = [scaling.transform_inputs(train.X), scaling.transform_targets(train.Y),
              scaling.transform_inputs(test.X), scaling.transform_targets(test.Y)]
    return [a.astype(dtype) for a in arrays], scaling


def settings_for(**overrides) -> dict:
    """A complete, validated run description (``DEFAULTS`` updated by ``overrides``)."""
    unknown = set(overrides) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"unknown run setting(s): {', '.join(sorted(unknown))}")
    s = {**DEFAULTS, **overrides}
    if overrides.get("method") is None:                 # not chosen: the best automatic rule for the batches
        s["method"] = default_method(s["batch_size"])
    if overrides.get("dtype") is None:
        s["dtype"] = default_dtype(s["batch_size"])
    if overrides.get("norm") is None:
        s["norm"] = default_norm(s["method"], s["scaling"])
    s["widths"] = list(check_widths(s["widths"]))
    check_choice("method", s["method"], METHODS)
    check_choice("data source", s["data"], DATA_SOURCES)
    check_choice("dtype", s["dtype"], ("float64", "float32"))
    check_choice("scaling", s["scaling"], SCALING_CHOICES)
    check_choice("split", s["split"], SPLIT_CHOICES)
    _check_norm(s)
    if s["lipschitz"] is not None:
        if s["scaling"] == "paper":
            raise ValueError("lipschitz applies to the standard scaling; the paper's scaling fixes the budget "
                             "itself (y_max / P_op)")
        s["lipschitz"] = finite_float("lipschitz", s["lipschitz"], positive=True)
    positive_int("iterations", s["iterations"], minimum=0)
    positive_int("order", s["order"], minimum=1)
    positive_int("n_samples", s["n_samples"], minimum=2)
    positive_int("seed", s["seed"], minimum=0)
    positive_int("data_seed", s["data_seed"], minimum=0)
    if s["batch_size"] == "auto":
        if s["method"] in BASELINE_METHODS and s["method"] not in ("sgd", "adam"):
            raise ValueError(f"batch size 'auto' (tuned with the learning rate) applies to sgd and adam, "
                             f"not to {s['method']}")
    elif s["batch_size"] is not None:
        positive_int("batch_size", s["batch_size"])
    positive_int("eval_every", s["eval_every"])
    _check_baseline_options(s)
    if s["max_seconds"] is not None:
        finite_float("max_seconds", s["max_seconds"], positive=True)
    if s["widths"][0] != 12 or s["widths"][-1] != 3:
        raise ValueError(f"widths {s['widths']}: the quadrotor problem maps 12 inputs to 3 outputs")
    return s


def _check_norm(s) -> None:
    """``norm="spectral"`` (:mod:`spherenet.spectral`) needs a rule without jets and a budget to spend."""
    check_choice("norm", s["norm"], NORMS)
    if s["norm"] == "spectral":
        if s["method"] != BATCH_METHOD:
            raise ValueError(f"norm 'spectral' applies to {BATCH_METHOD} (a rule that reads only losses and "
                             f"gradients), not to {s['method']}")
        if s["scaling"] != "standard":
            raise ValueError("norm 'spectral' spends the budget of the standard scaling; the paper's scaling fixes "
                             "its own (give --scaling standard)")


def _check_baseline_options(s) -> None:
    """``lr`` (a fixed rate) and ``lr_grid`` (the rates to tune over) apply to the baselines that have a rate."""
    for key in ("lr", "lr_grid"):
        if s[key] is not None and s["method"] not in ("sgd", "adam", "rsgd"):
            raise ValueError(f"{key} applies to the baselines with a learning rate (sgd, adam, rsgd), "
                             f"not to {s['method']}")
    if s["lr"] is not None:
        finite_float("lr", s["lr"], positive=True)
        if s["batch_size"] == "auto":
            raise ValueError("batch size 'auto' is tuned with the learning rate: give it without a fixed lr")
    if s["lr_grid"] is not None:
        if s["method"] == "rsgd" or s["lr"] is not None:
            raise ValueError("lr_grid tunes the rate of sgd or adam: give it without lr")
        if len(s["lr_grid"]) == 0:
            raise ValueError("lr_grid is empty: give at least one learning rate")
        s["lr_grid"] = [finite_float(f"lr_grid[{i}]", v, positive=True) for i, v in enumerate(s["lr_grid"])]


def run(settings: dict, progress=None, checkpoint=None, checkpoint_every: int | None = None,
        resume: bool = False, threads: int = 1, quiet: bool = True) -> tuple[dict, dict]:
    """Train once as ``settings`` say: from the data to a result record and the trained parameters.

    Parameters
    ----------
    settings : dict
        The run's settings, any subset of ``DEFAULTS`` (completed and checked by :func:`settings_for`):
        ``method, widths, seed, iterations, data, scaling, lipschitz, batch_size, ...``.
    progress : callable, optional
        ``progress(k, history)`` after every iteration (sphere methods).
    checkpoint, checkpoint_every : path and int, optional
        Sphere methods: write a checkpoint there every ``checkpoint_every`` iterations (``None``: never)
        and at the end (:mod:`spherenet.checkpoint`).
    resume : bool
        Continue the run saved in ``checkpoint``, which must have the same settings except ``iterations``
        (the total to reach). The numbers equal those of an uninterrupted run.
    threads : int
        The sphere methods split their samples over this many threads (:mod:`spherenet.rows`); the numbers
        are the same for the same count and differ by rounding for another (recorded as ``threads``).
    quiet : bool
        ``False`` shows the budget's selection and the baselines' tuning and training progress.

    Returns
    -------
    record : dict
        The JSON-ready result: settings, loss and step histories, RMSE in newtons, times, the scaling, the
        Lipschitz certificate and the reference errors (:func:`reference_errors`).
    arrays : dict
        The trained parameters: ``W0, W1, ..., radii`` (sphere methods), a baseline's own names otherwise.

    Notes
    -----
    Sphere methods: the standard scaling without ``lipschitz`` first chooses the budget on a validation part
    (:func:`spherenet.budget.select_lipschitz`); the data are scaled (:func:`fit_scaling`, docs/method.md §2
    and §7), the network trained and its Lipschitz bound certified (:func:`certificate`). Baselines get the
    raw data and prepare them as their users do (``_run_baseline``).
    """
    threads = positive_int("threads", threads)
    s = settings_for(**settings)
    _check_checkpoint_options(s, checkpoint, resume)
    train_data, test_data = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"],
                                         split=s["split"])
    if s["method"] in BASELINE_METHODS:
        return _run_baseline(s, train_data, test_data, quiet)
    from .checkpoint import load_checkpoint
    resumed = load_checkpoint(checkpoint) if resume else None          # read once: its budget and its state
    net, scaling, (X, Y, Xt, Yt), choices = _prepared(s, train_data, test_data, threads, quiet, resumed)
    batch, selection = choices["batch_size_used"], choices["lipschitz_selection"]
    if checkpoint is None:
        options = {"order": s["order"]} if s["method"] == "taylor" else {}
        history = train(net, X, Y, s["method"], s["iterations"], Xt, Yt, batch_size=batch,
                        seed=s["seed"], callback=progress, threads=threads, eval_every=s["eval_every"],
                        max_seconds=s["max_seconds"], norm=s["norm"], **options)
    else:
        history = _train_checkpointed(s, net, (X, Y, Xt, Yt), scaling, progress, checkpoint, checkpoint_every,
                                      resumed, threads, choices)
    record = _record(s, history, scaling, len(X), len(Xt), net)
    net = trained_network(net, history, s["norm"])       # the iterates' average, normalised as trained
    record.update(certificate(net.weights, scaling, (X, Xt)), threads=threads, **choices,
                  seconds_tuning=sum(c["seconds"] for c in (selection, choices["batch_selection"]) if c),
                  **reference_errors(train_data, test_data))
    return record, {**{f"W{i}": W for i, W in enumerate(net.weights)}, "radii": net.radii}


def _check_checkpoint_options(s: dict, checkpoint, resume: bool) -> None:
    """Checkpoints are for sphere methods without a time budget (where the clock stops a run, a resumed one
    could not repeat it)."""
    if (checkpoint is not None or resume) and s["method"] in BASELINE_METHODS:
        raise ValueError(f"checkpoints apply to the sphere methods ({', '.join(SPHERE_METHODS)}), "
                         f"not to the baseline {s['method']!r}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs the checkpoint path to resume from")
    if checkpoint is not None and s["max_seconds"] is not None:
        raise ValueError("checkpointed runs have no time budget (a run the clock stops could not be resumed to "
                         "the same numbers): leave out max_seconds")


def _prepared(s: dict, train_data, test_data, threads: int, quiet: bool, resumed=None):
    """A sphere method's starting point: ``(net, scaling, [X, Y, X_test, Y_test], choices)``, the network
    initialised, the scaling fitted at the budget (chosen first if none was given, or the one the checkpoint
    being ``resumed`` kept: :func:`_saved_budget`) and the data scaled. ``choices``: what was chosen on the
    validation part, ``{"lipschitz_selection", "batch_size_used", "batch_selection"}`` (:func:`_with_chosen_batch`)."""
    dtype = np.dtype(s["dtype"]).type
    fitted, selection = _with_chosen_budget(s, train_data, dtype, threads, quiet,
                                            _saved_budget(resumed) if resumed else None)
    batch, batch_selection = _with_chosen_batch(fitted, train_data, dtype, threads, quiet, selection,
                                                resumed.settings if resumed else None)
    net = NormalisedMLP(network_widths(s), seed=s["seed"], dtype=dtype)
    scaling = fit_scaling(fitted, train_data, net)
    arrays, _ = scaled_arrays(train_data, test_data, net, dtype, scaling)
    return net, scaling, arrays, {"lipschitz_selection": selection, "batch_size_used": batch,
                                  "batch_selection": batch_selection}


def _with_chosen_budget(s: dict, train_data, dtype, threads: int, quiet: bool,
                        saved: dict | None = None) -> tuple[dict, dict | None]:
    """``s`` with its Lipschitz budget, and how it was chosen: the standard scaling without a ``lipschitz``
    gets the one :func:`spherenet.budget.select_lipschitz` picks on a validation part, every rung trained as
    long as the run (selection: its record), or the one ``saved`` with a checkpoint being resumed (the run
    may have been extended: its budget stays); otherwise ``s`` as it is (selection ``None``)."""
    from . import progress as bars
    from .budget import LADDER, RUNG_ITERATIONS, first_batch, select_lipschitz, validation_rows
    if s["scaling"] != "standard" or s["lipschitz"] is not None:
        return s, None
    if saved is not None and not saved.get("legacy"):
        return dict(s, lipschitz=saved["lipschitz"]), saved["selection"]
    length = ({"iterations": RUNG_ITERATIONS, "max_seconds": None} if saved is not None else
              {"iterations": s["iterations"], "max_seconds": s["max_seconds"]})
    with bars.bar(len(LADDER), "choosing the Lipschitz budget", quiet, unit="rung") as pbar:
        K, selection = select_lipschitz(
            train_data.X, train_data.Y, validation_rows(train_data, s["split"], s["data_seed"]),
            network_widths(s), s["method"], s["seed"], dtype, batch_size=first_batch(s["batch_size"]),
            threads=threads, norm=s["norm"], **length,
            rule_options={"order": s["order"]} if s["method"] == "taylor" else None,
            progress=lambda n, rung: pbar.update(1))
    return dict(s, lipschitz=K), selection


def _with_chosen_batch(s: dict, train_data, dtype, threads: int, quiet: bool, selection: dict | None,
                       saved: dict | None = None) -> tuple[int | None, dict | None]:
    """The batch size to train with, and how it was chosen: ``s["batch_size"]`` unless it is ``"auto"``; then the
    one :func:`spherenet.budget.select_batch_size` picks on the validation part at the budget ``s["lipschitz"]``
    (the ladder's chosen rung, trained at the walk's first size, gives its first error), or the one kept in the
    ``saved`` settings of a checkpoint being resumed. The paper's scaling has no validation part and no budget
    to train at: there ``"auto"`` is the walk's first size, ``budget.FIRST_BATCH``."""
    from . import progress as bars
    from .budget import chosen_error, first_batch, select_batch_size, validation_rows
    if s["batch_size"] != "auto" or s["scaling"] != "standard":
        return first_batch(s["batch_size"]), None
    if isinstance(saved, dict) and saved.get("batch_selection"):
        return saved["batch_selection"]["chosen"], saved["batch_selection"]
    with bars.bar(None, "choosing the batch size", quiet, unit="run") as pbar:
        return select_batch_size(
            train_data.X, train_data.Y, validation_rows(train_data, s["split"], s["data_seed"]), s["lipschitz"],
            network_widths(s), s["method"], s["seed"], dtype, threads=threads, norm=s["norm"],
            iterations=s["iterations"], max_seconds=s["max_seconds"],
            rule_options={"order": s["order"]} if s["method"] == "taylor" else None,
            first_error=chosen_error(selection) if selection else None, progress=lambda n, tried: pbar.update(1))


def reference_errors(train, test) -> dict:
    """What a run's errors mean, on the same split and raw features: linear least squares with a bias
    (``rmse_*_linear``), predicting the training mean (``rmse_test_mean``) and, for simulated data, the
    labels' own noise (``label_noise_rmse``, :func:`spherenet.data.label_noise_rmse`)."""
    from .baselines import fit_linear
    from .data import label_noise_rmse
    linear, mean = fit_linear(train.X, train.Y), train.Y.mean(axis=0)

    def rmse(F, Y):
        return float(np.sqrt(np.sum((F - Y) ** 2) / len(Y)))
    return {"rmse_train_linear": rmse(linear(train.X), train.Y), "rmse_test_linear": rmse(linear(test.X), test.Y),
            "rmse_test_mean": rmse(mean, test.Y), "label_noise_rmse": label_noise_rmse(test)}


def predict_test(record: dict, arrays: dict) -> dict:
    """The test-set forces [N] of a finished run, recomputed from its record and trained parameters:
    ``{"measured": Y, "network": F, "linear": L}``, each ``(n_test, 3)``.

    The data come back as the run had them (``record``'s data source, ``data_path``, seeds, samples and
    split: the simulator regenerates them, real logs are read again); ``F`` is the trained network on the raw
    test features (:func:`trained_predictor`) and ``L`` linear least squares with a bias fitted on the raw
    training features (the model behind ``rmse_test_linear``).
    """
    from .baselines import fit_linear
    if record["data"] != "sim" and not record.get("data_path"):
        raise ValueError(f"the run read {record['data']} logs but its record names no data_path "
                         f"(written by an older spherenet): its test set cannot be read again")
    train_data, test_data = load_problem(
        record["data"], record.get("data_path"), record["data_seed"],
        record.get("n_samples", record["n_train"] + record["n_test"]), split=record.get("split", "random"))
    if len(test_data) != record["n_test"]:
        raise ValueError(f"the data have {len(test_data)} test samples, the run had {record['n_test']}: "
                         f"they are not the data it was trained on")
    return {"measured": test_data.Y, "network": trained_predictor(record, arrays)(test_data.X),
            "linear": fit_linear(train_data.X, train_data.Y)(test_data.X)}


def trained_predictor(record: dict, arrays: dict):
    """``X_raw (N, d_0) -> forces (N, 3) [N]`` of a finished run: its parameters between the data preparation
    saved in the record. Sphere methods and retracted SGD: ``scaling.inverse_targets(f(scaling.transform_inputs
    (X)))`` in the run's dtype; SGD, Adam and AGD: their ``Standardiser`` (inside ``baselines.Predictor``)."""
    from .baselines import Predictor, Standardiser
    from .baselines.optimisers import AGD_RELU_GAIN
    from .data import scaling_from_dict
    biased = "b0" in arrays                    # SGD and Adam keep biases; every other method is bias-free
    names = [f"{kind}{i}" for i in range(len(record["widths"]) - 1) for kind in ("Wb" if biased else "W")]
    missing = [name for name in names if name not in arrays]
    if missing:
        raise ValueError(f"the trained parameters lack {', '.join(missing)} for widths {record['widths']}")
    params, saved = [arrays[name] for name in names], record["scaling"]
    if saved.get("kind") == "Standardiser":
        stand = Standardiser(*(np.asarray(saved[k], np.float64) for k in ("x_mean", "x_std", "y_mean", "y_std")))
        return Predictor(record["method"], params, biased, standardiser=stand,
                         relu_gain=AGD_RELU_GAIN if record["method"] == "agd" else 1.0)
    network, scaling = Predictor(record["method"], params, biased), scaling_from_dict(saved)
    return lambda X: scaling.inverse_targets(network(scaling.transform_inputs(X).astype(record["dtype"])))


def certificate(weights, scaling, scaled_inputs) -> dict:
    """The Lipschitz certificate of the trained network in physical units (:mod:`spherenet.lipschitz`)."""
    from .lipschitz import certificate as lipschitz_certificate
    return lipschitz_certificate([np.asarray(W, np.float64) for W in weights], scaling, scaled_inputs)


def _saved_budget(saved) -> dict | None:
    """How the budget of a checkpoint's run was chosen, for the run that resumes it: ``{"lipschitz",
    "selection"}`` (the ladder's record, kept with the checkpoint), ``{"legacy": True}`` for a checkpoint
    written before it was kept (its ladder trained 200-iteration rungs whatever the run's length), or ``None``
    (not chosen: given, the paper's scaling, or no `train` checkpoint, which the later checks refuse). A
    resumed run keeps its budget, so extending a run (more ``iterations``, which a new ladder would train its
    rungs for) does not change its scaling."""
    settings = saved.settings
    if not isinstance(settings, dict) or "scaling" not in settings:
        return None
    if "lipschitz_selection" not in settings:
        return {"legacy": True}
    selection = settings["lipschitz_selection"]
    return None if selection is None else {"lipschitz": selection["chosen"], "selection": selection}


def _train_checkpointed(s, net, data, scaling, progress, path, every, saved, threads, choices):
    """``train`` in pieces, checkpointing to ``path`` (continuing ``saved``, the checkpoint read from there, if
    given); what was chosen on the validation part (``choices``: the budget's selection, the batch size and its
    selection) is kept with the checkpoint, for a resumed run and its record."""
    from .checkpoint import train_with_checkpoints
    X, Y, Xt, Yt = data
    options = {"order": s["order"]} if s["method"] == "taylor" else {}
    stored = {"run": {k: v for k, v in s.items() if k != "iterations"}, "scaling": scaling.to_dict(),
              "data_sha256": arrays_digest(X, Y, Xt, Yt), "threads": threads,
              "lipschitz_selection": choices["lipschitz_selection"], "batch_selection": choices["batch_selection"]}
    history, rule = None, None
    if saved is not None:
        rule = saved.rule()
        _check_same_run(path, saved.settings, stored)
        history = saved.history
        if history.iterations > s["iterations"]:
            raise ValueError(f"iterations {s['iterations']} is fewer than the {history.iterations} already "
                             f"done in {path}")
        net.weights = saved.net.weights
        if history.stop_reason:                  # nothing to continue: the run ended early
            return history
    done = history.iterations if history else 0
    return train_with_checkpoints(path, net, X, Y, s["method"], s["iterations"] - done, every, Xt, Yt,
                                  batch_size=choices["batch_size_used"], seed=s["seed"], rule_options=options,
                                  settings=stored, history=history, callback=progress, rule=rule,
                                  threads=threads, eval_every=s["eval_every"], norm=s["norm"])


def _check_same_run(path, saved, expected) -> None:
    # "data_sha256" and "threads" are absent from checkpoints written before they were recorded
    if not isinstance(saved, dict) or not {"run", "scaling"} <= set(saved) <= set(expected):
        raise ValueError(f"{path}: not a checkpoint of a `spherenet train` run")
    run_saved, run_now = saved["run"], expected["run"]
    differ = [f"{k}={run_saved.get(k, LATER_SETTINGS.get(k))!r} there, {run_now.get(k)!r} here" for k in run_now
              if run_saved.get(k, LATER_SETTINGS.get(k)) != run_now[k]]
    if differ:
        raise ValueError(f"{path} is a run with other settings ({'; '.join(differ)}): resume with the same "
                         f"options (only --iterations may change)")
    _check_same_data_and_threads(path, saved, expected)
    if saved["scaling"] != expected["scaling"]:
        raise ValueError(f"{path}: the data's scaling differs from the checkpoint's (the data changed?)")


def _check_same_data_and_threads(path, saved, expected) -> None:
    """A resume must see the same training and test data (by hash) and split them over as many threads."""
    if saved.get("data_sha256", expected["data_sha256"]) != expected["data_sha256"]:
        raise ValueError(f"{path}: the data differ from those the run was trained on (SHA-256 of the scaled "
                         f"train and test arrays); resume only on the same data, or start a new run")
    if saved.get("threads", expected["threads"]) != expected["threads"]:
        raise ValueError(f"{path}: the run used --threads {saved['threads']}, not {expected['threads']}; resume "
                         f"with --threads {saved['threads']} (another count changes the numbers by rounding)")


def _run_baseline(s, train_data, test_data, quiet=True) -> tuple[dict, dict]:
    """A baseline on the RAW data, prepared as its users do (``spherenet.baselines.run_baseline``): SGD/Adam
    and AGD standardise inputs and targets themselves; retracted SGD, a sphere method, gets the paper's
    scaling. Errors in newtons either way."""
    from . import baselines
    net, dtype = None, np.dtype(s["dtype"]).type
    if s["method"] == "rsgd":
        net = NormalisedMLP(s["widths"], seed=s["seed"], dtype=dtype)
        (X, Y, Xt, Yt), scaling = scaled_arrays(train_data, test_data, net, dtype)
    else:
        X, Y, Xt, Yt = train_data.X, train_data.Y, test_data.X, test_data.Y
    predictor, history, table = baselines.run_baseline(
        s["method"], s["widths"], X, Y, Xt, Yt, iterations=s["iterations"], seed=s["seed"],
        batch_size=s["batch_size"], max_seconds=s["max_seconds"], eval_every=s["eval_every"], lr=s["lr"],
        grid=s["lr_grid"], quiet=quiet, dtype=dtype)
    if s["method"] != "rsgd":
        scaling = predictor.standardiser
    record = _record(s, history, scaling, len(X), len(Xt), net)
    record.update(lr=predictor.lr, batch_size_used=predictor.batch_size, seconds_tuning=predictor.seconds_tuning,
                  threads=1, **({"tuning": table} if table is not None else {}),
                  lipschitz_lower=_baseline_lipschitz_lower(predictor, (train_data.X, test_data.X)),
                  **reference_errors(train_data, test_data))
    names = [f"{kind}{i}" for i in range(len(s["widths"]) - 1) for kind in ("Wb" if predictor.biased else "W")]
    return record, dict(zip(names, predictor.params))


def _baseline_lipschitz_lower(predictor, raw_inputs) -> float | None:
    """The largest local Lipschitz constant of an SGD/Adam network over the raw inputs, in newtons per unit
    of the raw features' norm: ``max_n ||diag(std_y) J(x~_n) diag(1/std_x)||_2`` (it certifies nothing: no
    upper bound exists for it). ``None`` for the other baselines."""
    from .lipschitz import empirical_lower_bound
    standardiser = getattr(predictor, "standardiser", None)
    if not predictor.biased or standardiser is None:
        return None
    weights, biases = predictor.params[0::2], predictor.params[1::2]
    return max(empirical_lower_bound(weights, standardiser.transform_inputs(X), np.diag(1 / standardiser.x_std),
                                     standardiser.y_std, biases) for X in raw_inputs)


def _record(s, history, scaling, n_train, n_test, net) -> dict:
    h = history.as_dict()
    seconds = history.seconds[-1] if history.seconds else 0.0
    loss_train, loss_test = history.loss_train[-1], history.loss_test[-1]
    return {
        "format": RESULT_FORMAT,
        **{k: s[k] for k in ("method", "widths", "seed", "iterations", "dtype", "order", "data", "data_seed",
                             "batch_size", "split", "eval_every", "max_seconds", "n_samples", "data_path", "norm")},
        "lipschitz": scaling.lipschitz if hasattr(scaling, "lipschitz") else None,
        "n_train": n_train, "n_test": n_test,
        "rmse_train": _finite_or_none(scaling.rmse_newtons(loss_train)),
        "rmse_test": _finite_or_none(scaling.rmse_newtons(loss_test)),
        "loss_train": h["loss_train"], "loss_test": h["loss_test"],
        "tau": h["tau"] if s["method"] in SPHERE_METHODS else [],           # optimisers without an angle
        "beta": h["beta"],
        "halvings": h["halvings"], "flags": h["flags"], "info": h["info"], "stop_reason": history.stop_reason,
        "iterations_done": history.iterations,
        "seconds": seconds, "seconds_per_iteration": seconds / max(history.iterations, 1),
        "seconds_train": seconds, "seconds_eval": history.seconds_eval, "eval_iterations": history.test_iterations(),
        "max_norm_drift": max(h["drift"], default=0.0) if s["method"] in SPHERE_METHODS + ("rsgd",) else None,
        "average": AVERAGE_MEMORY if "average" in history.batch_state else None,     # the model reported
        "scaling": scaling.to_dict(),
    }


def _finite_or_none(x):
    return float(x) if x is not None and math.isfinite(x) else None


# --- sweeps ---------------------------------------------------------------------------------------------

def run_key(settings: dict) -> str:
    """A stable file name for a run: readable fields plus a hash of the full settings."""
    s = settings_for(**settings)
    s = {k: v for k, v in s.items() if k not in LATER_SETTINGS or v != LATER_SETTINGS[k]}
    digest = hashlib.sha256(json.dumps(s, sort_keys=True).encode()).hexdigest()[:10]
    return f"{s['method']}_{'-'.join(map(str, s['widths']))}_seed{s['seed']}_{digest}"


def _save_run(runs_dir: Path, key: str, record: dict, arrays: dict) -> None:
    save_arrays(runs_dir / f"{key}.npz", **arrays)
    write_json(runs_dir / f"{key}.json", record)    # written last: marks the run finished


def _expected_cost(s: dict) -> float:
    """Relative cost of a run: products per iteration scale with the weights' size (plus a per-layer cost)."""
    widths = s["widths"]
    return s["iterations"] * sum(a * b + 64 for a, b in zip(widths[:-1], widths[1:]))


def _limit_threads() -> None:
    """In a pool worker: one BLAS thread, so workers x threads does not oversubscribe the cores."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)


def default_executor(max_workers: int | None = None) -> Executor:
    """A local process pool, one single-threaded worker per core."""
    return ProcessPoolExecutor(max_workers=max_workers or os.cpu_count() or 1, initializer=_limit_threads)


def executor_for(scheduler: str | None = None, workers: int | None = None) -> Executor:
    """Where a sweep's runs execute.

    Parameters
    ----------
    scheduler : str, optional
        The address of a Dask scheduler, e.g. ``"tcp://10.0.0.5:8786"`` (:mod:`spherenet.cluster`).
    workers : int, optional
        Local worker processes (default: one per core); not with ``scheduler``.

    Returns
    -------
    concurrent.futures.Executor
        The cluster's executor, else a :func:`default_executor`. The caller shuts it down
        (``with executor_for(...) as pool: sweep(..., executor=pool)``).
    """
    if scheduler is None:
        return default_executor(workers)
    if workers is not None:
        raise ValueError("--workers sizes the local process pool; on a Dask cluster its workers run the "
                         "trainings (start more with `dask worker`)")
    try:
        from .cluster import DaskExecutor
    except ImportError as err:
        raise ValueError(f"running on a Dask scheduler needs dask.distributed ({err}): "
                         f"pip install 'spherenet[dask]'") from None
    return DaskExecutor(scheduler)


def sweep(settings_list, out_dir, executor: Executor | None = None, progress=None) -> list[dict]:
    """Run every settings dict not already finished in ``out_dir/runs``.

    Parameters
    ----------
    settings_list : sequence of dict
        Run settings (:func:`settings_for`).
    out_dir : str or path-like
        The sweep's folder: each run is saved to ``out_dir/runs/<key>.json`` and ``.npz`` (:func:`run_key`)
        as soon as it comes back from the executor.
    executor : concurrent.futures.Executor, optional
        Where the runs execute; ``None`` makes a :func:`default_executor` and shuts it down here.
    progress : callable, optional
        ``progress(done, total, record)`` as runs finish.

    Returns
    -------
    list of dict
        Every run's record, in the order of ``settings_list``.

    Notes
    -----
    Finished runs are recognised by their result file and never redone, so an interrupted sweep resumes.
    The largest runs are submitted first, so that none is left alone at the end.
    """
    settings_list = [settings_for(**s) for s in settings_list]
    keys = [run_key(s) for s in settings_list]
    runs_dir = Path(out_dir) / "runs"
    records = {k: read_json(runs_dir / f"{k}.json") for k in keys if (runs_dir / f"{k}.json").is_file()}
    todo = [(k, s) for k, s in zip(keys, settings_list) if k not in records]
    todo.sort(key=lambda ks: -_expected_cost(ks[1]))    # largest first: no big run left alone at the end
    if todo:
        own = executor is None
        executor = executor or default_executor()
        try:
            # The workers return the results and this process writes them: on a cluster the workers need
            # no access to out_dir.
            futures = {executor.submit(run, s): k for k, s in todo}
            for future in as_completed(futures):
                key = futures[future]
                records[key], arrays = future.result()
                _save_run(runs_dir, key, records[key], arrays)
                if progress:
                    progress(len(records), len(keys), records[futures[future]])
        finally:
            if own:
                executor.shutdown(cancel_futures=True)
    return [records[k] for k in keys]

