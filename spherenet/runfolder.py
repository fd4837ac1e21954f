"""A run's output folder: checked before any work, held by one run at a time, its files replaced as a set.

``spherenet train`` opens its ``--out`` folder with :class:`RunFolder` before it loads data:

* **checked first**: the folder is created and proved writable (a probe file written, synced, removed), so a
  read-only mount, a full disk or ``--out`` naming a regular file end the command before training starts;
  every ``OSError`` is raised naming the path.
* **one run at a time**: an exclusive ``flock`` on ``FOLDER/.lock``. The kernel releases it when the
  process ends in any way (``kill -9`` included), so a stale lock never blocks; a second run into a folder
  while the first holds it is refused. The lock file is removed when the folder is closed.
* **written as a set**: :meth:`RunFolder.publish` first writes every file completely (synced) under
  ``FOLDER/.pending/``, then writes the marker ``.pending/COMPLETE``; only then does it remove the old
  ``result.json``, rename the other files into place and rename ``result.json`` last (a sweep's marker is
  its ``summary.json``, published with its figures). So a ``result.json``
  always sits beside the files of its own run: a failure while writing (a full disk) leaves the old set
  untouched, and a kill during the renames leaves ``.pending/COMPLETE`` (and no ``result.json``), which the
  next :meth:`RunFolder.open` of the folder finishes moving before anything else. A ``.pending`` without the
  marker is the debris of an interrupted write and is deleted, as are the temporary files (``.*.tmp``) of
  atomic writes (a checkpoint's, a figure's, a sweep's run in ``runs/``) that a killed run left.
"""
from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

try:
    import fcntl
except ImportError:                      # not POSIX: no lock (the folder is still checked and written as a set)
    fcntl = None

LOCK = ".lock"
PENDING = ".pending"
COMPLETE = "COMPLETE"
RESULT = "result.json"                   # the set's marker: renamed last, removed first
MARKERS = (RESULT, "summary.json")       # a run's marker, and a sweep's


def _fail(err: OSError, path) -> OSError:
    """``err`` re-raised naming ``path`` (the folder or file the user gave)."""
    return OSError(err.errno, err.strerror or str(err), str(path))


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def prepare(path) -> bool:
    """Create the folder ``path`` (and its parents) and prove it writable: a probe file is written, synced and
    removed. Returns whether the folder was created here. Raises an ``OSError`` naming ``path``."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FileExistsError(errno.EEXIST, "exists and is not a folder", str(path))
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=".probe.", dir=path)
        try:
            os.write(fd, b"spherenet")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as err:
        if created:
            shutil.rmtree(path, ignore_errors=True)
        raise _fail(err, path) from None
    return created


class RunFolder:
    """The output folder of one run (see the module docstring). Use as ``with RunFolder(path) as folder:``.

    ``replace``: a folder that already holds a finished run (a ``result.json``) is refused unless True.
    """

    def __init__(self, path, replace: bool = False):
        self.path = Path(path)
        self.replace = replace
        self.created = False
        self._lock_fd = None

    def open(self) -> "RunFolder":
        """Create, probe and lock the folder; finish or discard an interrupted publish; refuse an old result."""
        self.created = prepare(self.path)
        try:
            self._lock()
            self._recover()
        except OSError as err:
            self.close()
            raise _fail(err, self.path) from None
        except BaseException:
            self.close()
            raise
        if not self.replace and (self.path / RESULT).exists():
            self.close()
            raise FileExistsError(errno.EEXIST, "holds the result of an earlier run: add --overwrite to "
                                  "replace it, or choose another --out", str(self.path))
        return self

    def _lock(self) -> None:
        if fcntl is None:
            return
        lock = self.path / LOCK
        while True:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o666)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise BlockingIOError(errno.EWOULDBLOCK, "another spherenet run is writing to this folder "
                                      f"(it holds {LOCK}); wait for it or choose another --out",
                                      str(self.path)) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(lock).st_ino
            except FileNotFoundError:
                same = False
            if same:                       # else the holder removed the file as we opened it: retry
                self._lock_fd = fd
                return
            os.close(fd)

    def _recover(self) -> None:
        """Finish (or discard) an interrupted publish, and delete the temporary files of writes a killed run
        left (``.NAME.XXXX.tmp``, ``spherenet.results``' temporary names: no other run holds the folder)."""
        pending = self.path / PENDING
        if (pending / COMPLETE).is_file():
            self._move_into_place(pending)
        elif pending.exists():
            shutil.rmtree(pending)
        for folder in (self.path, self.path / "figures", self.path / "runs"):
            for tmp in folder.glob(".*.tmp"):
                if tmp.is_file():
                    tmp.unlink()

    def publish(self, writers: dict) -> list[Path]:
        """Write the run's files as a set. ``writers``: relative path -> ``write(path)`` (writes one file).

        Returns the final paths. An ``OSError`` is raised naming the file; the old set is then untouched.
        """
        pending = self.path / PENDING
        if pending.exists():
            shutil.rmtree(pending)
        name = COMPLETE
        try:
            for name, write in writers.items():
                write(pending / name)
            (pending / COMPLETE).write_bytes(b"")
            _fsync_dir(pending)
        except OSError as err:
            shutil.rmtree(pending, ignore_errors=True)
            raise OSError(err.errno, f"{err.strerror or err} (no file of the run replaced)",
                          str(self.path / name)) from None
        except BaseException:
            shutil.rmtree(pending, ignore_errors=True)
            raise
        self._move_into_place(pending)
        return [self.path / name for name in writers]

    def _move_into_place(self, pending: Path) -> None:
        """Rename every pending file into place, ``result.json`` last; the marker goes when all have moved
        (so a kill at any point here leaves it, and the next open resumes the move)."""
        names = sorted(str(p.relative_to(pending)) for p in pending.rglob("*") if p.is_file())
        markers = [n for n in MARKERS if n in names]
        names = [n for n in names if n != COMPLETE and n not in markers] + markers
        for marker in markers:
            (self.path / marker).unlink(missing_ok=True)       # the old set's marker goes first
        for name in names:
            (self.path / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(pending / name, self.path / name)
        _fsync_dir(self.path)
        shutil.rmtree(pending)

    def close(self) -> None:
        """Release the lock (removing the lock file) and, if this run created the folder and left it empty,
        remove the folder."""
        if self._lock_fd is not None:
            (self.path / LOCK).unlink(missing_ok=True)           # while still held: see _lock's inode check
            os.close(self._lock_fd)
            self._lock_fd = None
        if self.created and self.path.is_dir() and not any(self.path.iterdir()):
            self.path.rmdir()
            self.created = False

    def __enter__(self) -> "RunFolder":
        return self.open()

    def __exit__(self, *exc) -> None:
        self.close()
