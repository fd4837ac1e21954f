"""Checkpoints: a network, its step rule and its training history in one checksummed file, and resuming.

A checkpoint is ONE ``.npz`` written by :func:`spherenet.results.save_arrays` (to a temporary name, then
renamed, so an interrupted write never leaves a half-written file under the final name)::

    W0, W1, ..., W{L-1}   the weights, in their own dtype (float32 or float64), bit for bit
    radii                 (L,) float64, the sphere radii mu_i
    meta                  0-d string: JSON {"kind", "format", "rule", "rule_options", "batch_size",
                          "settings", "history"}  (history = ``History.as_dict()``, which keeps the
                          mini-batch draw state, so a resumed run draws the batches an uninterrupted one would)

:func:`train_with_checkpoints` writes format 2, whose cost per write does not grow with the run: the
history is not in ``meta`` but in an append-only log beside the file, ``<stem>.<generation>.history.jsonl``,
one JSON line per write holding what each of the history's lists gained since the last (``_HistoryLog``);
``meta`` names the log and holds the byte length and SHA-256 of the log's prefix that belongs to this
checkpoint, and the history's other fields (method, stop reason, mini-batch state, ...). Lines past that prefix (a
process killed between appending and renaming the ``.npz``) are ignored. Each process starts a new log
generation (with the whole history) and, once its first checkpoint is renamed into place, deletes older
generations, so the file a checkpoint names is never rewritten. Format-2 writes are synced to disk at most
every ``SYNC_SECONDS`` and at the end (an atomic rename keeps them whole against a killed process; only
a power cut can lose the last few seconds).

The SHA-256 stored beside the arrays covers all of them, the JSON included. :func:`load_checkpoint` refuses,
naming the file: a missing, truncated, edited or non-finite file; weights off their spheres; a history
whose lengths disagree with each other or with the rule. A resumed run (:func:`resume`) gives the numbers
an uninterrupted run gives, bit for bit (only the wall-clock ``seconds`` differ).
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import secrets
import time
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from .network import NormalisedMLP
from .results import load_arrays, save_arrays
from .train import MEMORYLESS, RULES, History, _drift, _json_safe, make_rule, train

KIND = "spherenet-checkpoint"
FORMAT = 1                 # the history inline in meta (save_checkpoint)
FORMAT_LOGGED = 2          # the history in an append-only log (train_with_checkpoints)
SYNC_SECONDS = 5.0
_PER_STEP = ("tau", "beta", "predicted", "actual", "halvings", "drift", "seconds", "flags")


@dataclass
class Checkpoint:
    """What a checkpoint file holds: the network, how far it was trained and with what.

    ``rule_name``: a name from ``spherenet.train.RULES``; ``rule_options``: its options (e.g. ``{"order": 4}``);
    ``batch_size``: ``None`` (full batch) or the mini-batch size; ``settings``: free JSON the caller stored
    (the CLI keeps the run's settings there).
    """
    net: NormalisedMLP
    history: History
    rule_name: str
    rule_options: dict = field(default_factory=dict)
    batch_size: int | None = None
    settings: dict | None = None
    rule_state: dict = field(default_factory=dict)

    @property
    def iterations(self) -> int:
        """Training iterations done so far."""
        return self.history.iterations

    def rule(self):
        """The step-rule object as the run left it: rebuilt, with its memory (``rule_state``) restored."""
        rule = make_rule(self.rule_name, **self.rule_options)
        if self.rule_state:
            rule.restore(self.rule_state)
        return rule


def save_checkpoint(path, net: NormalisedMLP, history: History, rule_name: str, rule_options: dict | None = None,
                    settings: dict | None = None, *, batch_size: int | None = None, rule=None,
                    log: "_HistoryLog | None" = None, final: bool = True) -> Path:
    """Write ``net``, ``history`` and the rule that produced them to ``path`` (atomically); returns the path.

    ``history`` must be the one ``train`` returned for ``net`` (the weights are the state AFTER it).
    ``settings``: any JSON-ready dict, stored and returned as is. Refuses (before writing anything) what
    :func:`load_checkpoint` would refuse, so a checkpoint that was written can be read back.
    """
    if not isinstance(net, NormalisedMLP):
        raise TypeError(f"net must be a NormalisedMLP, got {type(net).__name__}")
    if not isinstance(history, History):
        raise TypeError(f"history must be a spherenet.train.History, got {type(history).__name__}")
    return _write(path, net.weights, net.radii, history, rule_name, rule_options, settings, batch_size, rule,
                  log, final)


def _write(path, weights, radii, history: History, rule_name: str, rule_options, settings, batch_size, rule,
           log, final) -> Path:
    """:func:`save_checkpoint` for given ``weights`` and ``radii`` (the state after ``history``)."""
    if rule_name in RULES and rule_name not in MEMORYLESS and not hasattr(rule, "state"):
        raise ValueError(f"{rule_name!r} keeps a memory across iterations (its conjugate-gradient or moment "
                         f"state): pass the rule object (rule=...) so the checkpoint holds it; without it a "
                         f"resumed run would not repeat an uninterrupted one")
    state = {f"rule.{k}": v for k, v in (rule.state() if hasattr(rule, "state") else {}).items()}
    meta = {"kind": KIND, "format": FORMAT, "rule": rule_name, "rule_options": dict(rule_options or {}),
            "batch_size": batch_size, "settings": settings}
    _check_rule(meta, history, "save_checkpoint")
    _check_history("save_checkpoint", history, checked=log.written.get("loss_train", 0) if log else 0)
    _check_on_spheres("save_checkpoint: net", weights, radii, history)
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"rule_options and settings must be JSON-ready (numbers, strings, lists, dicts): "
                        f"{err}") from None
    sync = True
    if log is None:
        meta["history"] = history.as_dict()
    else:
        meta["format"] = FORMAT_LOGGED
        meta["history_log"], sync = log.append(history, final)
    arrays = {f"W{i}": W for i, W in enumerate(weights)}
    return save_arrays(path, radii=np.asarray(radii, dtype=np.float64), meta=np.array(json.dumps(meta)),
                       sync=sync, **arrays, **state)


class _HistoryLog:
    """A run's history as an append-only file beside its checkpoint (see the module docstring): each
    :meth:`append` writes one line with what every list gained since the last, so it costs what the new
    steps cost, and returns the reference ``meta`` keeps (log name, prefix length and SHA-256)."""

    def __init__(self, checkpoint):
        self.checkpoint = Path(checkpoint)
        self.path = self.checkpoint.with_name(f"{self.checkpoint.stem}.{secrets.token_hex(6)}.history.jsonl")
        self.written: dict[str, int] = {}           # list name (info lists as "info.<key>") -> entries logged
        self.hash, self.size, self.last_sync = hashlib.sha256(), 0, -math.inf

    def _new(self, name: str, values: list) -> list:
        done, self.written[name] = self.written.get(name, 0), len(values)
        return values[done:]

    def append(self, history: History, final: bool) -> tuple[dict, bool]:
        lists = {f.name: getattr(history, f.name) for f in fields(History)
                 if isinstance(getattr(history, f.name), list)}
        chunk = {name: self._new(name, values) for name, values in lists.items()}
        chunk["info"] = {key: self._new(f"info.{key}", values) for key, values in history.info.items()}
        line = (json.dumps(_json_safe(chunk), allow_nan=False) + "\n").encode()
        sync = final or time.monotonic() - self.last_sync >= SYNC_SECONDS
        try:
            with open(self.path, "ab") as f:
                f.write(line)
                f.flush()
                if sync:
                    os.fsync(f.fileno())
        except OSError as err:
            raise OSError(err.errno, err.strerror or str(err), str(self.path)) from None
        if sync:
            self.last_sync = time.monotonic()
        self.hash.update(line)
        self.size += len(line)
        scalars = {f.name: getattr(history, f.name) for f in fields(History)
                   if f.name not in lists and f.name not in ("info", "batch_state")}
        return {"log": self.path.name, "bytes": self.size, "sha256": self.hash.hexdigest(),
                "scalars": {**_json_safe(scalars), "batch_state": _batch_state_json(history.batch_state)}}, sync

    def remove_older(self) -> None:
        """Delete the logs of earlier generations (once a checkpoint naming this one is in place)."""
        for old in self.checkpoint.parent.glob(f"{self.checkpoint.stem}.*.history.jsonl"):
            if old.name != self.path.name:
                old.unlink(missing_ok=True)


def _batch_state_json(state: dict) -> dict:
    """The mini-batch draw state, JSON-ready. Its ``order`` (one index per training row, already a list of
    Python ints) goes to the JSON encoder as it is: walking it value by value (``_json_safe``) made a
    mini-batch checkpoint write cost ~70 ms on 24,000 rows."""
    return {key: (value.tolist() if isinstance(value, np.ndarray) else value) if key == "order" else _json_safe(value)
            for key, value in state.items()}


def _logged_history(path: Path, ref) -> dict:
    """The history dict (as ``History.as_dict`` gives it) from the log prefix ``ref`` names, checked."""
    if not isinstance(ref, dict) or not {"log", "bytes", "sha256", "scalars"} <= set(ref) \
            or not isinstance(ref["scalars"], dict):
        raise ValueError(f"{path}: the checkpoint's history reference is damaged")
    name = ref["log"]
    if not isinstance(name, str) or Path(name).name != name or not isinstance(ref["bytes"], int):
        raise ValueError(f"{path}: the checkpoint's history reference is damaged")
    log = path.with_name(name)
    try:
        with open(log, "rb") as f:
            data = f.read(ref["bytes"])
    except OSError as err:
        raise ValueError(f"{path}: cannot read its history log {log} ({err.strerror or err})") from None
    if len(data) != ref["bytes"] or hashlib.sha256(data).hexdigest() != ref["sha256"]:
        raise ValueError(f"{path}: its history log {log} is truncated or was changed (checksum mismatch)")
    d: dict = {}
    info: dict = {}
    for line in data.splitlines():
        chunk = json.loads(line)
        for key, values in chunk.pop("info").items():
            info.setdefault(key, []).extend(values)
        for key, values in chunk.items():
            d.setdefault(key, []).extend(values)
    return {**d, "info": info, **ref["scalars"]}


def load_checkpoint(path) -> Checkpoint:
    """Read a checkpoint written by :func:`save_checkpoint`; refuse, naming ``path``, anything else.

    Refused: missing, truncated, edited (checksum) or non-finite files (``results.load_arrays``); a file
    that is not a spherenet checkpoint of this format; weights that do not chain or are not on their
    spheres (or off them by other than the drift the history recorded last); a history whose per-step
    lists disagree in length, or whose method is not the rule's.
    """
    arrays = load_arrays(path)
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except KeyError:
        raise ValueError(f"{path}: not a spherenet checkpoint (no 'meta' entry)") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: the checkpoint's 'meta' entry is not valid JSON ({err.msg})") from None
    if not isinstance(meta, dict) or meta.get("kind") != KIND:
        raise ValueError(f"{path}: not a spherenet checkpoint")
    if meta.get("format") not in (FORMAT, FORMAT_LOGGED):
        raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}; this version reads formats "
                         f"{FORMAT} and {FORMAT_LOGGED}")
    if meta["format"] == FORMAT_LOGGED:
        meta["history"] = _logged_history(Path(path), meta.get("history_log"))
    try:
        history = History.from_dict(meta["history"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: the checkpoint's history is damaged ({err})") from None
    _check_history(path, history)
    _check_rule(meta, history, str(path))
    state = {k[len("rule."):]: arrays.pop(k) for k in list(arrays) if k.startswith("rule.")}
    net = _network(path, arrays, history)
    return Checkpoint(net, history, meta["rule"], meta["rule_options"], meta["batch_size"], meta["settings"],
                      state)


def _network(path, arrays: dict, history: History) -> NormalisedMLP:
    L = sum(1 for k in arrays if k.startswith("W") and k[1:].isdigit())
    names = [f"W{i}" for i in range(L)]
    if L == 0 or "radii" not in arrays or set(arrays) != {*names, "radii"}:
        raise ValueError(f"{path}: expected arrays W0..W{{L-1}} and radii, found {sorted(arrays)}")
    radii = arrays["radii"]
    if radii.shape != (L,) or not np.all(radii > 0):
        raise ValueError(f"{path}: radii must be {L} positive numbers (one per weight matrix), got {radii}")
    try:
        net = NormalisedMLP.from_weights([arrays[n] for n in names])        # chained and finite
    except (TypeError, ValueError) as err:
        raise ValueError(f"{path}: {err}") from None
    net.radii = radii.astype(np.float64)
    _check_on_spheres(path, net.weights, net.radii, history)
    return net


def _check_on_spheres(where, weights, radii, history: History) -> None:
    """The weights must be on their spheres as the history says: before any step to the tolerance of
    ``NormalisedMLP.from_weights``; after steps, off them by exactly the drift the history recorded last
    (float32 runs drift by more than that tolerance over long runs: such a run must still be saved)."""
    if not history.drift:
        try:
            NormalisedMLP.from_weights(weights, radii)
        except (TypeError, ValueError) as err:
            raise ValueError(f"{where}: {err}") from None
        return
    drift, recorded = _drift(weights, radii), history.drift[-1]
    if not abs(drift - recorded) <= 1e-9 * max(drift, recorded) + 1e-15:
        raise ValueError(f"{where}: the weights are off their spheres by {drift:.3g} (relative), but the "
                         f"history recorded {recorded:.3g} after its last step: they are not its weights")


def _check_history(path, history: History, checked: int = 0) -> None:
    """The history's lists agree in length and its losses are finite (past the first ``checked`` entries of
    each, which an earlier write of the same log has checked: so a write costs what the new steps cost)."""
    n = history.iterations
    lengths = {name: len(getattr(history, name)) for name in _PER_STEP}
    bad = {name: m for name, m in lengths.items() if m != n}
    if bad:
        raise ValueError(f"{path}: the history is inconsistent: {n} steps of tau but {bad}")
    if len(history.loss_train) != n + 1 or len(history.loss_test) not in (0, n + 1):
        raise ValueError(f"{path}: the history is inconsistent: {n} steps but {len(history.loss_train)} "
                         f"training and {len(history.loss_test)} test losses (expected {n + 1})")
    if not all(math.isfinite(J) for losses in (history.loss_train, history.loss_test) for J in losses[checked:]):
        raise ValueError(f"{path}: the history holds a non-finite loss")


def _check_rule(meta: dict, history: History, where: str) -> None:
    name, options = meta["rule"], meta["rule_options"]
    if name not in RULES:
        raise ValueError(f"{where}: unknown method {name!r}; choose one of: {', '.join(RULES)}")
    if not isinstance(options, dict):
        raise ValueError(f"{where}: rule_options must be a dict, got {options!r}")
    try:
        rule = make_rule(name, **options)
    except TypeError as err:
        raise ValueError(f"{where}: bad rule_options for {name!r} ({err})") from None
    if rule.name != history.method:
        raise ValueError(f"{where}: the history was recorded by method {history.method!r}, not by "
                         f"{name!r} with options {options}")
    size = meta["batch_size"]
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{where}: batch_size must be None or an integer >= 1, got {size!r}")


def resume(checkpoint: Checkpoint, X, Y, iterations: int, X_test=None, Y_test=None, callback=None) -> History:
    """Continue the run in ``checkpoint`` by ``iterations`` more steps on the same data; returns the history.

    ``checkpoint.net`` is trained in place and ``checkpoint.history`` extended (it is the object returned).
    ``X, Y`` (and ``X_test, Y_test`` if the run had them) must be the data the run was trained on: the
    loop cannot tell, and other data gives other numbers. A run that stopped (``history.stop_reason``)
    cannot be continued (ValueError).
    """
    if not isinstance(checkpoint, Checkpoint):
        raise TypeError(f"checkpoint must be a Checkpoint (from load_checkpoint), got {type(checkpoint).__name__}")
    return train(checkpoint.net, X, Y, checkpoint.rule(), iterations, X_test, Y_test,
                 batch_size=checkpoint.batch_size, callback=callback, resume=checkpoint.history)


def train_with_checkpoints(path, net: NormalisedMLP, X, Y, rule_name: str, iterations: int, every: int | None,
                           X_test=None, Y_test=None, *, batch_size: int | None = None, seed=0,
                           rule_options: dict | None = None, settings: dict | None = None,
                           history: History | None = None, callback=None, rule=None, threads: int = 1) -> History:
    """``train`` for ``iterations`` steps, writing a checkpoint to ``path`` every ``every`` steps and at the end.

    ``history``: continue that run (as ``train(..., resume=history)``); ``every=None``: only at the end.
    The numbers are those of one uninterrupted ``train`` call (``rule``: the step-rule object to continue
    with, e.g. ``Checkpoint.rule()``, else a new one is made). ONE ``train`` call, the checkpoints written by
    :class:`_SavingRule` as each ``every``-th iteration begins (with mini-batches, the history the loop last
    reported carries where the draw stood then, ``History.batch_state``). If the run stops early
    (``history.stop_reason``) the checkpoint is written and the loop ends. An exception
    (e.g. KeyboardInterrupt) leaves the last checkpoint as it was. ``threads``: as in ``train`` (resume
    with the same count to get the same bits).
    """
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"checkpoint every must be an integer >= 1, got {every!r}")
    options = dict(rule_options or {})
    rule = rule if rule is not None else make_rule(rule_name, **options)
    log = _HistoryLog(path)

    def save(weights, radii, history, final):
        first = log.size == 0
        _write(path, weights, radii, history, rule_name, options, settings, batch_size, rule, log, final)
        if first:
            log.remove_older()

    saving = _SavingRule(rule, every, save, callback)
    history = train(net, X, Y, saving, iterations, X_test, Y_test, callback=saving.after_iteration,
                    resume=history, batch_size=batch_size, seed=seed, threads=threads)
    save(net.weights, net.radii, history, final=True)
    return history


class _SavingRule:
    """A step rule that writes a checkpoint before every ``every``-th step it takes, then takes it.

    As a full-batch step begins, ``it.weights``, the rule's memory and the history (as the loop last
    reported it, :meth:`after_iteration`) are exactly the state after the previous iteration: what a
    ``train`` call that ended there would leave. Everything else is the wrapped rule's.
    """

    def __init__(self, rule, every, save, callback):
        self.rule, self.every, self.save, self.callback = rule, every, save, callback
        self.history = None

    def __getattr__(self, name):
        return getattr(self.rule, name)

    def __call__(self, it):
        h = self.history
        if self.every and h is not None and h.iterations % self.every == 0:
            self.save(it.weights, it.radii, h, final=False)
        return self.rule(it)

    def after_iteration(self, k, history) -> None:
        self.history = history
        if self.callback is not None:
            self.callback(k, history)
