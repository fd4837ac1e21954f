"""Faults, injected (issue 19): ``kill -9`` at several moments of a checkpointed ``spherenet train`` and of a
sweep (``spherenet lipschitz``), each moment chosen while the command writes (a checkpoint's temporary file, the
pending set, a run's temporary file) or at a random time after its first write.

After every kill: each file under a final name is whole (every JSON parses, every ``.npz`` loads with its
checksum, every PNG is complete), a ``result.json`` or a sweep's ``runs/KEY.json`` is beside its own run's files
only, and the earlier result of the folder is never lost before the new one is complete. After resuming (``--resume``;
the same sweep command again) the numbers equal an uninterrupted run's bit for bit.

tests/test_checkpoint.py kills a run twice at random checkpoints (full batch and mini-batch) and cuts or damages
its journal; tests/test_runfolder.py simulates the states a kill leaves inside :meth:`RunFolder.publish`; here real
kills land anywhere, the writes included.
"""
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from spherenet import checkpoint as ck
from spherenet.cli import main
from spherenet.results import load_arrays
from spherenet.runfolder import COMPLETE, PENDING

from .test_checkpoint import SAME

REPO = Path(__file__).resolve().parent.parent
TRAIN = ["train", "--samples", "300", "--widths", "12-6-3", "--scaling", "paper", "--seed", "2", "--quiet"]
ITERATIONS = ["--iterations", "12", "--checkpoint-every", "1"]
SWEEP = ["lipschitz", "--quick", "--points", "2", "--seeds", "1", "--samples", "600", "--iterations", "3",
         "--widths", "12-6-3", "--workers", "1"]
TRAIN_SET = ("result.json", "weights.npz", "figures/training.png")


# --- killing ----------------------------------------------------------------------------------------------

def _start(argv, out) -> subprocess.Popen:
    """The command in a new process group (a sweep's pool workers die with it)."""
    return subprocess.Popen([sys.executable, "-m", "spherenet", *argv, "--out", str(out)],
                            env={**os.environ, "PYTHONPATH": str(REPO)}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def _kill_when(proc, ready, delay=0.0) -> bool:
    """``kill -9`` the process group once ``ready()`` holds (polled every millisecond), ``delay`` seconds later.
    Returns whether the kill ended the command (False: it had finished first)."""
    deadline = time.monotonic() + 300
    while proc.poll() is None and not ready() and time.monotonic() < deadline:
        time.sleep(0.001)
    time.sleep(delay)
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait(timeout=60)
    return proc.returncode == -signal.SIGKILL


def _exists(folder, pattern):
    return lambda: any(Path(folder).glob(pattern))


def _rewritten(path):
    """True once ``path`` is a file other than the one it is now (a new write renamed into place)."""
    def stamp():
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return None
        return st.st_ino, st.st_mtime_ns
    before = stamp()
    return lambda: stamp() not in (None, before)


def _more(folder, pattern):
    """True once ``folder`` holds more files matching ``pattern`` than now."""
    before = len(list(Path(folder).glob(pattern)))
    return lambda: len(list(Path(folder).glob(pattern))) > before


# --- what a kill may leave --------------------------------------------------------------------------------

def _final_files(out: Path) -> list[Path]:
    """Files under their final names: not in ``.pending``, not a temporary ``.NAME.XXXX.tmp``, not the lock."""
    return [p for p in out.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(out).parts)]


def _assert_whole(out: Path) -> None:
    for path in _final_files(out):
        if path.suffix == ".json":
            json.loads(path.read_text())
        elif path.name == "checkpoint.npz":
            ck.load_checkpoint(path)                   # its arrays, checksum and the journal it names
        elif path.suffix == ".npz":
            load_arrays(path)
        elif path.suffix == ".png":
            with Image.open(path) as image:
                image.verify()                         # every chunk's CRC, up to IEND
        else:
            assert path.suffix == ".journal", path     # a checkpoint's journal (read by load_checkpoint)


def _without_times(obj):
    """``obj`` without the entries that measure time (the only ones that differ between equal runs)."""
    if isinstance(obj, dict):
        return {k: _without_times(v) for k, v in obj.items() if "seconds" not in k}
    if isinstance(obj, list):
        return [_without_times(v) for v in obj]
    return obj


def _same_arrays(a: Path, b: Path) -> bool:
    x, y = load_arrays(a), load_arrays(b)
    return x.keys() == y.keys() and all(x[k].dtype == y[k].dtype and np.array_equal(x[k], y[k]) for k in x)


def _read(out: Path, names) -> dict:
    return {name: (out / name).read_bytes() for name in names if (out / name).is_file()}


# --- spherenet train --checkpoint-every 1 ----------------------------------------------------------------

def _assert_train_set(out: Path, old: dict, plain: Path) -> None:
    """``result.json`` is beside its own run's files: the earlier run's set, or the new run's (as ``plain``'s);
    with no ``result.json``, the new set is complete in ``.pending`` (the next open moves it into place)."""
    if not (out / "result.json").is_file():
        assert (out / PENDING / COMPLETE).is_file(), sorted(map(str, out.rglob("*")))
        return
    files = _read(out, TRAIN_SET)
    if files["result.json"] == old["result.json"]:
        assert files == old
        return
    record, reference = json.loads(files["result.json"]), json.loads((plain / "result.json").read_text())
    assert {k: record[k] for k in SAME} == {k: reference[k] for k in SAME}
    assert _same_arrays(out / "weights.npz", plain / "weights.npz")
    assert files["figures/training.png"] != old["figures/training.png"]


def test_train_killed_while_writing_resumes_bit_for_bit(tmp_path):
    """One run killed five times (in a checkpoint's snapshot write, at a random time after a new snapshot or
    while records are appended to its journal, in the publication of the result set, in its renames),
    resumed after each: each kill leaves whole files and
    the folder's earlier result or the new one complete; the end equals an uninterrupted run bit for bit."""
    plain, out = tmp_path / "plain", tmp_path / "run"
    assert main([*TRAIN, *ITERATIONS, "--out", str(plain)]) == 0
    assert main([*TRAIN, "--iterations", "3", "--out", str(out)]) == 0       # the folder's earlier result
    old = _read(out, TRAIN_SET)
    delay = random.Random(19).uniform(0.0, 0.2)
    moments = [lambda: (_exists(out, ".checkpoint.npz.*.tmp"), 0.0),
               lambda: (_rewritten(out / "checkpoint.npz"), delay),
               lambda: (_exists(out, "checkpoint.*.journal"), delay / 4),
               lambda: (_exists(out, PENDING), 0.0),
               lambda: (_exists(out, f"{PENDING}/{COMPLETE}"), 0.0)]
    killed = 0
    for moment in moments:
        again = "--resume" if (out / "checkpoint.npz").is_file() else "--overwrite"
        ready, wait = moment()
        killed += _kill_when(_start([*TRAIN, *ITERATIONS, again], out), ready, wait)
        _assert_whole(out)
        _assert_train_set(out, old, plain)
    assert killed >= 1                             # (a kill may come after the command has finished)
    assert main([*TRAIN, *ITERATIONS, "--resume", "--out", str(out)]) == 0
    _assert_train_set(out, old, plain)
    assert json.loads((out / "result.json").read_text()) != json.loads(old["result.json"])
    assert _names(out) == _names(plain)          # no debris (a finished run's snapshot names no journal)


def _names(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir())


# --- a sweep: spherenet lipschitz ----------------------------------------------------------------------

def _assert_runs_paired(out: Path, plain: Path) -> None:
    """Every finished run (``runs/KEY.json``) has its arrays beside it, and both are the uninterrupted sweep's."""
    for record in (out / "runs").glob("*.json"):
        arrays = record.with_suffix(".npz")
        assert arrays.is_file(), arrays
        assert _without_times(json.loads(record.read_text())) == _without_times(
            json.loads((plain / "runs" / record.name).read_text())), record.name
        assert _same_arrays(arrays, plain / "runs" / arrays.name), arrays.name


def test_sweep_killed_while_writing_runs_resumes_bit_for_bit(tmp_path):
    """A sweep killed three times (in a run's write, at a random time after a run it finished, while it draws
    the figure of the summary it wrote), run again after each: whole files, each run's record beside its own arrays; the
    finished sweep equals an uninterrupted one (all but the times) bit for bit."""
    plain, out = tmp_path / "plain", tmp_path / "sweep"
    assert main([*SWEEP, "--out", str(plain)]) == 0
    delay = random.Random(19).uniform(0.0, 0.5)
    moments = [lambda: (_exists(out / "runs", ".*.tmp"), 0.0),
               lambda: (_more(out / "runs", "*.json"), delay),
               lambda: (_exists(out, "summary.json"), 0.0)]          # killed while it draws the figure
    killed = 0
    for moment in moments:
        ready, wait = moment()
        killed += _kill_when(_start(SWEEP, out), ready, wait)
        _assert_whole(out)
        _assert_runs_paired(out, plain)
    assert killed >= 1                             # (a kill may come after the command has finished)
    assert main([*SWEEP, "--out", str(out)]) == 0
    _assert_runs_paired(out, plain)
    for folder in ("runs", "figures", "."):      # no debris of the killed writes
        assert sorted(p.name for p in (out / folder).iterdir()) == sorted(p.name for p in (plain / folder).iterdir())
    summary, reference = (json.loads((f / "summary.json").read_text()) for f in (out, plain))
    assert _without_times(summary) == _without_times(reference)
    _assert_whole(out)

