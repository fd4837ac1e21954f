"""Checkpoints: a network, its step rule and its training history, written so that a run can be resumed.

A checkpoint is the ``.npz`` SNAPSHOT a caller names, written by :func:`spherenet.results.save_arrays` (to a
temporary name, then renamed, so an interrupted write never leaves a half-written file under the final name;
a SHA-256 of all its arrays, the JSON included, is stored beside them)::

    W0, W1, ..., W{L-1}   the weights, in their own dtype (float32 or float64), bit for bit
    radii                 (L,) float64, the sphere radii mu_i
    rule.<name>           the step rule's memory across iterations (``rule.state()``), if it keeps one
    batch.order           format 3: the epoch's mini-batch order, if the history's draw state has one (in
                          the smallest unsigned integer type that holds it)
    meta                  0-d string: JSON {"kind", "format", "rule", "rule_options", "batch_size",
                          "settings", "norm", "history"} (norm: ``train``'s, absent before session 7 and
                          then "frobenius"; history = ``History.as_dict()``, which keeps the
                          mini-batch draw state, so a resumed run draws the batches an uninterrupted one
                          would; format 3 keeps its ``order`` in ``batch.order``, writes a non-finite
                          number as Python's json does, ``NaN``, and adds "journal")

Format 1 (:func:`save_checkpoint`) is the snapshot alone. Format 3 (:func:`train_with_checkpoints`) adds a
JOURNAL: ``meta["journal"]`` names a file beside the snapshot, ``<stem>.<random hex>.journal``, to which each
write after the snapshot appends ONE record, so a write costs what its iterations added, not what the
run holds::

    record   = head (16 bytes) + payload
    head     = b"SNJ3", the payload's length, CRC-32 of the payload, CRC-32 of the 12 bytes before it
               (each uint32, little-endian)
    payload  = n (uint32, little-endian) + n bytes of JSON + the arrays' bytes, one after another
    JSON     = {"iterations": the history's iterations after this write,
                "history": what each of the history's lists gained since the previous write, the info
                           lists under "info" (non-finite numbers as Python's json writes them: NaN),
                "scalars": the history's other fields ("stop_reason", "seconds_eval"),
                "batch": the mini-batch draw state's values that changed ("rng", "pos"),
                "arrays": [[name, dtype, shape], ...] of the arrays that follow}
    arrays   = W0..W{L-1} and rule.<name> (the whole state after the write's iterations), and batch.order
               only when an epoch has drawn a new order (once per epoch, not at every write; uint16 or
               uint32 as in the snapshot)

:func:`load_checkpoint` reads the snapshot and replays the journal's records in order: the history's lists
are extended, the draw state updated, and the last record's weights and rule memory taken. The journal ends
at its first record that is cut short, by the end of the file or by the zero bytes it ends with (which a
crash mid-write can leave): a write a kill or a crash interrupted, ignored, so the checkpoint is the state
of the last whole record. Any other record whose head or payload fails its CRC, or whose iterations do not
follow the previous ones, is refused, naming the journal, the record and its byte offset (``truncate -s
OFFSET JOURNAL`` keeps the records before it): a damaged record with data after it is not a torn write but
a damaged disk or an edit, and neither its numbers nor, silently, the loss of the records after it are
accepted.

The snapshot is rewritten, naming a new journal (created empty first), at a process's first write, when the
journal has grown past ``max(JOURNAL_BYTES, the snapshot's size)`` (so rewriting the whole history costs
O(1) per write, amortised) and at the end of the run (naming no journal). The journals it no longer names
(and format-2 logs) are then deleted, also those a killed process left. A snapshot is synced to disk
before it replaces an earlier checkpoint (format 1: always); a record is one ``writev`` on a file kept open,
without a rename or an ``.npz``, and the journal is synced at most every ``SYNC_SECONDS`` and when it is
closed (a killed process loses nothing written, a power cut at most the last seconds).

Format 2 (written before format 3; still read): the history in an append-only log beside the snapshot,
``<stem>.<generation>.history.jsonl``, one JSON line per write with what each list gained; ``meta`` holds
``"history_log": {"log", "bytes", "sha256", "scalars"}``, the log's name, the byte length and SHA-256 of
its prefix that belongs to this checkpoint, and the history's other fields. Lines past the prefix are ignored.

:func:`load_checkpoint` refuses, naming the file: a missing, truncated, edited or non-finite snapshot or
journal record; weights off their spheres; a history whose lengths disagree with each other or with the
rule. A resumed run (:func:`resume`) gives the numbers an uninterrupted run gives, bit for bit (only the
wall-clock ``seconds`` differ).
"""
from __future__ import annotations

import glob
import hashlib
import json
import math
import os
import secrets
import struct
import time
import zlib
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ._checks import check_choice
from .network import NormalisedMLP
from .results import load_arrays, save_arrays
from .spectral import NORMS
from .train import MEMORYLESS, RULES, History, _drift, make_rule, train

KIND = "spherenet-checkpoint"
FORMAT = 1                 # the snapshot alone, the history inline in meta (save_checkpoint)
FORMAT_LOGGED = 2          # the history in an append-only log (read, no longer written)
FORMAT_JOURNAL = 3         # a snapshot and the journal of the writes after it (train_with_checkpoints)
SYNC_SECONDS = 5.0
JOURNAL_BYTES = 4 << 20
_MAGIC = b"SNJ3"
_HEAD = struct.Struct("<4sII")            # magic, payload length, CRC-32 of the payload
_U32 = struct.Struct("<I")
_RECORD_HEAD = _HEAD.size + _U32.size     # ... and the CRC-32 of those 12 bytes
_PER_STEP = ("tau", "beta", "predicted", "actual", "halvings", "drift", "seconds", "flags")
_LISTS = tuple(f.name for f in fields(History) if f.default_factory is list)
_SCALARS = tuple(f.name for f in fields(History) if f.name not in (*_LISTS, "method", "info", "batch_state"))


@dataclass
class Checkpoint:
    """What a checkpoint file holds: the network, how far it was trained and with what.

    ``rule_name``: a name from ``spherenet.train.RULES``; ``rule_options``: its options (e.g. ``{"order": 4}``);
    ``batch_size``: ``None`` (full batch) or the mini-batch size; ``settings``: free JSON the caller stored
    (the CLI keeps the run's settings there); ``norm``: what the network computed with (``train``'s ``norm``;
    ``"frobenius"`` in checkpoints written before it was recorded).
    """
    net: NormalisedMLP
    history: History
    rule_name: str
    rule_options: dict = field(default_factory=dict)
    batch_size: int | None = None
    settings: dict | None = None
    rule_state: dict = field(default_factory=dict)
    norm: str = "frobenius"

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
                    norm: str = "frobenius") -> Path:
    """Write ``net``, ``history`` and the rule that produced them to ``path`` (atomically); returns the path.

    ``history`` must be the one ``train`` returned for ``net`` (the weights are the state AFTER it).
    ``settings``: any JSON-ready dict, stored and returned as is. ``rule``: the step-rule object, whose
    memory (``rule.state()``) is stored; needed for the rules that keep one. Refuses (before writing
    anything) what :func:`load_checkpoint` would refuse, so a checkpoint that was written can be read back.
    ``norm``: as in ``train``.
    """
    if not isinstance(net, NormalisedMLP):
        raise TypeError(f"net must be a NormalisedMLP, got {type(net).__name__}")
    if not isinstance(history, History):
        raise TypeError(f"history must be a spherenet.train.History, got {type(history).__name__}")
    meta = _meta(rule_name, rule_options, settings, batch_size, rule, norm)
    return _write_snapshot(path, net.weights, net.radii, history, meta, rule)


def _meta(rule_name: str, rule_options, settings, batch_size, rule, norm: str = "frobenius") -> dict:
    """The snapshot's ``meta`` (format 1), checked: the rule, its options and memory, JSON-ready settings."""
    if rule_name in RULES and rule_name not in MEMORYLESS and not hasattr(rule, "state"):
        raise ValueError(f"{rule_name!r} keeps a memory across iterations (its conjugate-gradient or moment "
                         f"state): pass the rule object (rule=...) so the checkpoint holds it; without it a "
                         f"resumed run would not repeat an uninterrupted one")
    meta = {"kind": KIND, "format": FORMAT, "rule": rule_name, "rule_options": dict(rule_options or {}),
            "batch_size": batch_size, "settings": settings, "norm": check_choice("norm", norm, NORMS)}
    _check_rule(meta, None, "save_checkpoint")
    try:
        json.dumps(meta, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise TypeError(f"rule_options and settings must be JSON-ready (numbers, strings, lists, dicts): "
                        f"{err}") from None
    return meta


def _rule_state(rule) -> dict:
    return {f"rule.{k}": v for k, v in (rule.state() if hasattr(rule, "state") else {}).items()}


def _write_snapshot(path, weights, radii, history: History, meta: dict, rule, journal: str | None = None,
                    sync: bool = True) -> Path:
    """The snapshot of the state after ``history``: format 1 as ``meta`` says, or format 3 naming ``journal``
    (the draw state's order as the array ``batch.order``)."""
    _check_rule(meta, history, "save_checkpoint")
    _check_history("save_checkpoint", history)
    _check_on_spheres("save_checkpoint: net", weights, radii, history)
    arrays = {f"W{i}": W for i, W in enumerate(weights)} | _rule_state(rule)
    if meta["format"] == FORMAT:
        meta = {**meta, "history": history.as_dict()}
    else:
        batch = dict(history.batch_state)
        if "order" in batch:
            arrays["batch.order"] = _compact(np.asarray(batch.pop("order"), dtype=np.intp))
        record = {name: getattr(history, name) for name in (*_LISTS, *_SCALARS, "method", "info")}
        meta = {**meta, "history": {**record, "batch_state": batch}, "journal": journal}
    return save_arrays(path, radii=np.asarray(radii, dtype=np.float64),
                       meta=np.array(json.dumps(meta, default=_plain)), sync=sync, **arrays)


class _Journal:
    """The checkpoints one process writes to ``path``: a snapshot, then one journal record per write (format 3,
    the module docstring). :meth:`save` keeps the state after an iteration; :meth:`close` syncs at the end."""

    def __init__(self, path, meta: dict, rule):
        self.path, self.meta, self.rule = Path(path), {**meta, "format": FORMAT_JOURNAL}, rule
        self.fd, self.journal, self.size, self.limit = None, None, 0, JOURNAL_BYTES
        self.written: dict[str, int] = {}          # list name (info lists as "info.<key>") -> entries kept
        self.batch: dict = {}                      # the draw state as last kept
        self.last_sync = -math.inf

    def save(self, weights, radii, history: History, final: bool = False) -> None:
        """Keep the state after ``history`` (``weights``: the weights after it): a journal record, or a new
        snapshot at the first write, when the journal is full, and when ``final``."""
        if final or self.fd is None or self.size >= self.limit:
            self._snapshot(weights, radii, history, final)
        else:
            self._append(weights, history)

    def close(self, sync: bool = True) -> None:
        """Close the journal, synced (the last records reach the disk) unless a snapshot superseded it."""
        if self.fd is not None:
            fd, self.fd = self.fd, None
            try:
                if sync:
                    os.fsync(fd)
            finally:
                os.close(fd)

    def _snapshot(self, weights, radii, history: History, final: bool) -> None:
        journal = None if final else f"{self.path.stem}.{secrets.token_hex(6)}.journal"
        fd = None if final else _create(self.path.with_name(journal))
        sync = final or self.path.exists()               # a first checkpoint has nothing to protect
        try:
            _write_snapshot(self.path, weights, radii, history, self.meta, self.rule, journal, sync)
        except BaseException:
            if fd is not None:
                os.close(fd)
                self.path.with_name(journal).unlink(missing_ok=True)
            raise
        self.close(sync=False)
        self.fd, self.journal, self.size = fd, journal, 0
        self.limit = max(JOURNAL_BYTES, self.path.stat().st_size)
        self.written = {name: len(getattr(history, name)) for name in _LISTS}
        self.written |= {f"info.{key}": len(values) for key, values in history.info.items()}
        self.batch, self.last_sync = dict(history.batch_state), time.monotonic()
        stem = glob.escape(self.path.stem)
        for old in (*self.path.parent.glob(f"{stem}.*.journal"), *self.path.parent.glob(f"{stem}.*.history.jsonl")):
            if old.name != journal:
                old.unlink(missing_ok=True)

    def _append(self, weights, history: History) -> None:
        _check_history(self.path, history, checked=self.written["loss_train"])
        header = {"iterations": history.iterations, "history": self._gained(history),
                  "scalars": {name: getattr(history, name) for name in _SCALARS}, "batch": {}}
        arrays = {f"W{i}": W for i, W in enumerate(weights)} | _rule_state(self.rule)
        for key, value in history.batch_state.items():
            old = self.batch.get(key)
            if isinstance(value, np.ndarray) or isinstance(old, np.ndarray):
                if value is not old:                   # a new epoch's order: a new array, never changed in place
                    arrays[f"batch.{key}"] = _compact(value)
            elif value is not old and value != old:
                header["batch"][key] = value
        self.batch = dict(history.batch_state)
        self._write(_record(header, arrays))

    def _gained(self, history: History) -> dict:
        """What each of the history's lists gained since the last write (and note their new lengths)."""
        def new(name, values):
            done, self.written[name] = self.written.get(name, 0), len(values)
            return values[done:]
        gained = {name: new(name, getattr(history, name)) for name in _LISTS}
        gained["info"] = {key: new(f"info.{key}", values) for key, values in history.info.items()}
        return gained

    def _write(self, record: list) -> None:
        """Append ``record``'s buffers with one ``writev`` (all of them, or none: a failed write is cut off)."""
        size = sum(map(len, record))
        try:
            done = os.writev(self.fd, record) if hasattr(os, "writev") else 0      # (not on Windows)
            rest = memoryview(b"".join(record))[done:] if done < size else b""
            while rest:                                  # a short write (rare on a regular file): the rest
                rest = rest[os.write(self.fd, rest):]
            if time.monotonic() - self.last_sync >= SYNC_SECONDS:
                os.fsync(self.fd)
                self.last_sync = time.monotonic()
        except OSError as err:
            try:
                os.ftruncate(self.fd, self.size)
            except OSError:
                pass
            raise OSError(err.errno, err.strerror or str(err), str(self.path.with_name(self.journal))) from None
        self.size += size


def _compact(indices: np.ndarray) -> np.ndarray:
    """Row indices in the smallest unsigned type that holds them (uint16 up to 65,536 rows: a quarter of the
    bytes of an epoch's order)."""
    if indices.dtype.kind in "iu" and (indices.size == 0 or indices.min() >= 0):
        top = indices.max(initial=0)
        for dtype in (np.uint16, np.uint32):
            if top <= np.iinfo(dtype).max:
                return indices.astype(dtype)
    return indices


def _create(path: Path) -> int:
    """A new, empty journal file opened for appending (its folder created), with umask permissions."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o666)
    except OSError as err:
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None


def _record(header: dict, arrays: dict) -> list:
    """One journal record (the module docstring's layout) as a list of buffers: ``header`` as JSON (NaN as
    ``NaN``), then ``arrays``' bytes."""
    arrays = {name: np.asarray(a) for name, a in arrays.items()}
    header["arrays"] = [[name, a.dtype.str, list(a.shape)] for name, a in arrays.items()]
    head = json.dumps(header, separators=(",", ":"), default=_plain).encode()
    parts = [_U32.pack(len(head)), head, *(a.tobytes() for a in arrays.values())]
    crc = 0
    for part in parts:
        crc = zlib.crc32(part, crc)
    start = _HEAD.pack(_MAGIC, sum(map(len, parts)), crc)
    return [start, _U32.pack(zlib.crc32(start)), *parts]


def _plain(value):
    """NumPy scalars and arrays as JSON values (``json.dumps``' ``default``)."""
    if isinstance(value, (np.generic, np.ndarray)):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON-ready")


def _records(journal: Path, data: bytes):
    """``(number, offset, header, arrays)`` of every whole record of ``data`` (the journal's bytes), in order.
    A record cut short (a kill or a crash mid-write) ends them; a damaged one is refused (ValueError)."""
    pos, number, view = 0, 0, memoryview(data)
    while pos < len(data):
        if len(data) - pos < _RECORD_HEAD:
            return
        magic, length, crc = _HEAD.unpack_from(data, pos)
        (head_crc,) = _U32.unpack_from(data, _HEAD.size + pos)
        if magic != _MAGIC or zlib.crc32(view[pos:pos + _HEAD.size]) != head_crc:
            if _cut_short(data, pos + _RECORD_HEAD):
                return
            raise _damaged(journal, number, pos, "its head is not a record's (checksum mismatch)")
        end = pos + _RECORD_HEAD + length
        if end > len(data):
            return
        if zlib.crc32(view[pos + _RECORD_HEAD:end]) != crc:
            if _cut_short(data, end):
                return
            raise _damaged(journal, number, pos, "checksum mismatch")
        try:
            header, arrays = _decode(view[pos + _RECORD_HEAD:end])
        except (ValueError, TypeError, KeyError, AttributeError) as err:
            raise _damaged(journal, number, pos, f"malformed ({err})") from None
        yield number, pos, header, arrays
        pos, number = end, number + 1


def _cut_short(data: bytes, end: int) -> bool:
    """A record that fails its checksum and ends at ``end`` was cut short if the zero bytes the file ends with
    begin inside it (a crash mid-write can leave the rest of the file zero-filled)."""
    return len(data.rstrip(b"\0")) < end


def _decode(payload: memoryview) -> tuple[dict, dict]:
    """A record's JSON header and its arrays (read-only views of ``payload``)."""
    (n,) = _U32.unpack_from(payload, 0)
    header = json.loads(bytes(payload[_U32.size:_U32.size + n]))
    offset, arrays = _U32.size + n, {}
    for name, dtype, shape in header.pop("arrays"):
        dtype = np.dtype(dtype)
        if dtype.kind not in "biuf":
            raise ValueError(f"array {name!r} of dtype {dtype}")
        count = math.prod(shape)
        arrays[name] = np.frombuffer(payload, dtype, count, offset).reshape(shape)
        offset += count * dtype.itemsize
    if offset != len(payload):
        raise ValueError(f"{len(payload) - offset} bytes past its arrays")
    return header, arrays


def _damaged(journal: Path, number: int, pos: int, why: str) -> ValueError:
    return ValueError(f"{journal}: record {number} (byte {pos}) is damaged: {why}; the records before it are "
                      f"whole (`truncate -s {pos} {journal}` resumes from them)")


def _replay(path: Path, meta: dict, arrays: dict) -> None:
    """Apply the journal a format-3 snapshot names to its history (``meta["history"]``) and ``arrays``, in
    place: the lists extended, the draw state updated, the last record's weights and rule memory taken."""
    history, name = meta.get("history"), meta.get("journal")
    if not isinstance(history, dict) or not isinstance(history.get("batch_state", {}), dict):
        raise ValueError(f"{path}: the checkpoint's history is damaged")
    batch = history.setdefault("batch_state", {})
    if "batch.order" in arrays:
        batch["order"] = arrays.pop("batch.order")
    if name is not None:
        if not isinstance(name, str) or not name or Path(name).name != name:
            raise ValueError(f"{path}: the checkpoint's journal reference is damaged")
        journal = path.with_name(name)
        try:
            data = journal.read_bytes()
        except OSError as err:
            raise ValueError(f"{path}: cannot read its journal {journal} ({err.strerror or err})") from None
        last = None
        for number, pos, header, state in _records(journal, data):
            try:
                before = len(history["tau"])
                _apply(history, header, state)
                in_sequence = len(history["tau"]) == header["iterations"]
            except (AttributeError, TypeError, KeyError, ValueError) as err:
                raise _damaged(journal, number, pos, f"malformed ({err})") from None
            if not in_sequence:
                raise _damaged(journal, number, pos, f"it claims {header['iterations']} iterations, after "
                                                     f"{before} (out of sequence)")
            last = state
        if last is not None:
            _take_state(journal, arrays, last)
    if "order" in batch:
        batch["order"] = np.asarray(batch["order"]).tolist()


def _apply(history: dict, header: dict, state: dict) -> None:
    """One record's history, scalars and draw state, applied to ``history`` (a ``History.as_dict()``)."""
    gained = header["history"]
    for key, values in gained.pop("info").items():
        history["info"].setdefault(key, []).extend(values)
    for key, values in gained.items():
        history[key].extend(values)
    history.update(header["scalars"])
    history["batch_state"].update(header["batch"])
    history["batch_state"].update({k[len("batch."):]: v for k, v in state.items() if k.startswith("batch.")})


def _take_state(journal: Path, arrays: dict, state: dict) -> None:
    """The last record's weights and rule memory replace the snapshot's (copied: the views are read-only)."""
    for key in [k for k in arrays if k.startswith("rule.") or (k.startswith("W") and k[1:].isdigit())]:
        del arrays[key]
    for key, a in state.items():
        if not key.startswith("batch."):
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ValueError(f"{journal}: array {key!r} contains non-finite values")
            arrays[key] = a.copy()


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
    if meta.get("format") not in (FORMAT, FORMAT_LOGGED, FORMAT_JOURNAL):
        raise ValueError(f"{path}: checkpoint format {meta.get('format')!r}; this version reads formats "
                         f"{FORMAT}, {FORMAT_LOGGED} and {FORMAT_JOURNAL}")
    if meta["format"] == FORMAT_LOGGED:
        meta["history"] = _logged_history(Path(path), meta.get("history_log"))
    elif meta["format"] == FORMAT_JOURNAL:
        _replay(Path(path), meta, arrays)
    try:
        history = History.from_dict(meta["history"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: the checkpoint's history is damaged ({err})") from None
    _check_history(path, history)
    _check_rule(meta, history, str(path))
    state = {k[len("rule."):]: arrays.pop(k) for k in list(arrays) if k.startswith("rule.")}
    net = _network(path, arrays, history)
    return Checkpoint(net, history, meta["rule"], meta["rule_options"], meta["batch_size"], meta["settings"],
                      state, meta.get("norm", "frobenius"))


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
    evals = history.eval_iterations or range(n + 1)       # (records from before eval_every: every iteration)
    if evals[0] != 0 or evals[-1] > n or any(a >= b for a, b in zip(evals, evals[1:])):
        raise ValueError(f"{path}: the history is inconsistent: evaluations at iterations {_abridged(evals)} "
                         f"of {n} steps")
    # the training loss: every iteration in full batch, at the evaluations with mini-batches
    if len(history.loss_train) not in (n + 1, len(evals)) or len(history.loss_test) not in (0, len(evals)):
        raise ValueError(f"{path}: the history is inconsistent: {n} steps and {len(evals)} evaluations but "
                         f"{len(history.loss_train)} training and {len(history.loss_test)} test losses")
    if not all(math.isfinite(J) for losses in (history.loss_train, history.loss_test) for J in losses[checked:]):
        raise ValueError(f"{path}: the history holds a non-finite loss")


def _abridged(values) -> str:
    values = list(values)
    return str(values) if len(values) <= 6 else f"[{', '.join(map(str, values[:3]))}, ..., {values[-1]}]"


def _check_rule(meta: dict, history: History | None, where: str) -> None:
    """The method and its options exist, the history (if given) was recorded by them, the batch size is valid."""
    name, options = meta["rule"], meta["rule_options"]
    if name not in RULES:
        raise ValueError(f"{where}: unknown method {name!r}; choose one of: {', '.join(RULES)}")
    if not isinstance(options, dict):
        raise ValueError(f"{where}: rule_options must be a dict, got {options!r}")
    try:
        rule = make_rule(name, **options)
    except TypeError as err:
        raise ValueError(f"{where}: bad rule_options for {name!r} ({err})") from None
    if history is not None and rule.name != history.method:
        raise ValueError(f"{where}: the history was recorded by method {history.method!r}, not by "
                         f"{name!r} with options {options}")
    size = meta["batch_size"]
    if size is not None and (isinstance(size, bool) or not isinstance(size, int) or size < 1):
        raise ValueError(f"{where}: batch_size must be None or an integer >= 1, got {size!r}")
    if meta.get("norm", "frobenius") not in NORMS:
        raise ValueError(f"{where}: unknown norm {meta['norm']!r}; choose one of: {', '.join(NORMS)}")


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
                 batch_size=checkpoint.batch_size, callback=callback, resume=checkpoint.history,
                 norm=checkpoint.norm)


def train_with_checkpoints(path, net: NormalisedMLP, X, Y, rule_name: str, iterations: int, every: int | None,
                           X_test=None, Y_test=None, *, batch_size: int | None = None, seed=0,
                           rule_options: dict | None = None, settings: dict | None = None,
                           history: History | None = None, callback=None, rule=None, threads: int = 1,
                           eval_every: int = 1, norm: str = "frobenius") -> History:
    """``train`` for ``iterations`` steps, writing a checkpoint to ``path`` every ``every`` steps and at the end.

    ``history``: continue that run (as ``train(..., resume=history)``); ``every=None``: only at the end.
    The numbers are those of one uninterrupted ``train`` call (``rule``: the step-rule object to continue
    with, e.g. ``Checkpoint.rule()``, else a new one is made). ONE ``train`` call, the checkpoints written by
    :class:`_SavingRule` as each ``every``-th iteration begins (with mini-batches, the history the loop last
    reported carries where the draw stood then, ``History.batch_state``), in format 3 (:class:`_Journal`:
    a snapshot at the first write and at the end, a journal record at the others). If the run stops early
    (``history.stop_reason``) the checkpoint is written and the loop ends. An exception
    (e.g. KeyboardInterrupt) leaves the last checkpoint as it was, its journal synced. ``threads``: as in
    ``train`` (resume with the same count to get the same bits). ``eval_every``: as in ``train``; a run resumed
    with the same one records the evaluations an uninterrupted run does (a finished run that is extended keeps
    the evaluation of its last iteration as well, when that is not a multiple of ``eval_every``). ``norm``: as in
    ``train`` (the checkpoint holds the optimiser's weights either way).
    """
    if every is not None and (isinstance(every, bool) or not isinstance(every, int) or every < 1):
        raise ValueError(f"checkpoint every must be an integer >= 1, got {every!r}")
    options = dict(rule_options or {})
    rule = rule if rule is not None else make_rule(rule_name, **options)
    journal = _Journal(path, _meta(rule_name, options, settings, batch_size, rule, norm), rule)
    saving = _SavingRule(rule, every, journal.save, callback)
    try:
        history = train(net, X, Y, saving, iterations, X_test, Y_test, callback=saving.after_iteration,
                        resume=history, batch_size=batch_size, seed=seed, threads=threads, eval_every=eval_every,
                        norm=norm)
        journal.save(net.weights, net.radii, history, final=True)
    finally:
        journal.close()
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
