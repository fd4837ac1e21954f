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

When no folder at all can be written (no temporary folder either: ``tempfile.gettempdir`` finds none, or
the private folder cannot be made there), the kernels are compiled without a cache (:func:`njit`, which
``spherenet.kernels`` uses in place of ``numba.njit``): ``import spherenet`` and the commands still work
(Matplotlib, which draws the figures, gets a folder of its own: ``spherenet._matplotlib_config``), and each
process compiles the kernels it calls once, at their first call. The same command as ``nobody`` with /tmp and
/var/tmp read-only (a mount namespace; ``--out`` and ``MPLCONFIGDIR`` on a tmpfs) took 6.9 s without a
cache, against 7.1 s with an empty cache folder and 5.1 s with a filled one (medians of 3, loaded 2-core
machine): about 2 s more per command than a filled cache.
"""
from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent
caching = True                           # False once configure() has found no folder for Numba's cache


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


def fallback_folder(tool: str = "numba") -> str | None:
    """This user's private temporary cache folder for ``tool`` (``spherenet-<tool>-<uid>``; a new one per
    process if that name is taken), or ``None`` if no temporary folder can be written."""
    uid = os.geteuid() if hasattr(os, "geteuid") else "user"
    try:
        shared = Path(tempfile.gettempdir()) / f"spherenet-{tool}-{uid}"
    except FileNotFoundError:              # no writable temporary folder (TMPDIR, /tmp, /var/tmp, the cwd)
        return None
    if _private_folder(shared):
        return str(shared)
    try:
        return tempfile.mkdtemp(prefix=f"spherenet-{tool}-")
    except OSError:                        # nowhere to write at all
        return None


def configure() -> str | None:
    """Give Numba a writable cache folder if it has none, or turn the cache off if there is none at all.

    Returns
    -------
    str or None
        The fallback folder chosen here; ``None`` if Numba's own choice stands (a writable package folder,
        user cache folder or ``NUMBA_CACHE_DIR``) or if no folder could be found (then :data:`caching` is
        False and :func:`njit` compiles without a cache).
    """
    global caching
    from numba.core import config
    from numba.misc.appdirs import AppDirs
    if config.CACHE_DIR and _writable(config.CACHE_DIR):          # the user chose one (NUMBA_CACHE_DIR)
        return None
    if _writable(PACKAGE / "__pycache__") or _writable(AppDirs(appname="numba", appauthor=False).user_cache_dir):
        return None
    folder = fallback_folder()
    if folder is None:
        caching = False
    else:
        config.CACHE_DIR = folder
    return folder


def njit(*, cache: bool = False, **options):
    """``numba.njit(cache=cache, **options)``, with the cache off when :func:`configure` found no folder for
    it (Numba would otherwise refuse to compile: "no locator available")."""
    import numba
    return numba.njit(cache=cache and caching, **options)
