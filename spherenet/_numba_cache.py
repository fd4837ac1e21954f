"""Where Numba keeps the compiled kernels: beside the package if it can, else a private temporary folder.

``spherenet.kernels`` compiles with ``njit(cache=True)``. Numba stores that cache in the package's
``__pycache__`` or in the user's cache folder (``~/.cache/numba``); when neither is writable — the package
installed read-only and ``$HOME`` missing or read-only, as in a container run with ``--user`` — Numba
refuses to compile at all ("no locator available") and ``import spherenet`` fails. :func:`configure`, run
before the kernels are defined, then points Numba's cache (``numba.config.CACHE_DIR``, the setting behind
``NUMBA_CACHE_DIR``) at ``$TMPDIR/spherenet-numba-<uid>``: a folder of this user's only (mode 0700,
checked, since Numba's cache holds code), kept for later commands. If that name is taken by anything else,
a fresh private folder is used by this process alone. The cost is one compilation of the kernels a command
uses, at the first command: `spherenet train --iterations 1 --widths 12-8-3 --samples 600` as ``nobody``
took 7.6 s with an empty fallback folder and 6.4 s with a filled one (medians of 3, shared 2-core machine).
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent


def _writable(folder) -> bool:
    """Numba's own test (``_CacheLocator.ensure_cache_path``): the folder can be made and written to."""
    try:
        os.makedirs(folder, exist_ok=True)
        tempfile.TemporaryFile(dir=folder).close()
        return True
    except OSError:
        return False


def _private_folder(path: Path) -> bool:
    """``path`` is (or has just been made) a real folder owned by this user that no one else can write."""
    try:
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISDIR(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077
            and _writable(path))


def fallback_folder() -> str | None:
    """This user's private temporary cache folder (a new one per process if the shared name is taken)."""
    uid = os.geteuid() if hasattr(os, "geteuid") else "user"
    shared = Path(tempfile.gettempdir()) / f"spherenet-numba-{uid}"
    if _private_folder(shared):
        return str(shared)
    try:
        return tempfile.mkdtemp(prefix="spherenet-numba-")
    except OSError:                        # nowhere to write at all: Numba will say so
        return None


def configure() -> str | None:
    """Give Numba a writable cache folder if it has none; returns the folder chosen here, else ``None``."""
    from numba.core import config
    from numba.misc.appdirs import AppDirs
    if config.CACHE_DIR and _writable(config.CACHE_DIR):          # the user chose one (NUMBA_CACHE_DIR)
        return None
    if _writable(PACKAGE / "__pycache__") or _writable(AppDirs(appname="numba", appauthor=False).user_cache_dir):
        return None
    folder = fallback_folder()
    if folder is not None:
        config.CACHE_DIR = folder
    return folder
