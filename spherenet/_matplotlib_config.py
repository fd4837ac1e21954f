"""Where Matplotlib keeps its settings and font cache when the user has no writable folder for them.

Matplotlib wants a writable configuration folder (``MPLCONFIGDIR``, else ``~/.config/matplotlib`` and
``~/.cache/matplotlib``). Without one it makes a temporary folder per process, with a long warning; with no
writable temporary folder either (``$HOME`` missing, ``$TMPDIR``, /tmp and /var/tmp read-only, as in a
container with a read-only root file system), ``import matplotlib`` raises and a command that draws fails.
:func:`configure`, called by the commands before they draw, leaves a working setting alone; otherwise it
sets ``MPLCONFIGDIR`` to this user's private temporary folder ``$TMPDIR/spherenet-matplotlib-<uid>`` (mode
0700, checked as Numba's is in ``spherenet._numba_cache``, and kept: the font cache is built once), or, with
no temporary folder at all, to a new folder in the folder the command writes to (its ``--out``, proved
writable), removed when the process ends, saying so in one line.
"""
from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path

from ._numba_cache import _writable, fallback_folder


def _default_folders() -> list:
    """Matplotlib's own folders on Linux when ``MPLCONFIGDIR`` is unset (``[]`` without a home)."""
    try:
        home = Path.home()
    except RuntimeError:
        return []
    config = os.environ.get("XDG_CONFIG_HOME") or home / ".config"
    cache = os.environ.get("XDG_CACHE_HOME") or home / ".cache"
    return [Path(config) / "matplotlib", Path(cache) / "matplotlib"]


def configure(writable=None) -> str | None:
    """Give Matplotlib a writable folder if it has none (before it is imported).

    Parameters
    ----------
    writable : str or Path, optional
        A folder the command writes to, for the last resort.

    Returns
    -------
    str or None
        The folder chosen here (also set as ``MPLCONFIGDIR``); ``None`` if Matplotlib's own choice stands
        (``MPLCONFIGDIR`` set, a writable home, Matplotlib already imported, a system other than Linux) or
        nothing could be found (then importing Matplotlib raises its own error).
    """
    if "matplotlib" in sys.modules or os.environ.get("MPLCONFIGDIR") or not sys.platform.startswith("linux"):
        return None
    defaults = _default_folders()
    if defaults and all(_writable(folder) for folder in defaults):
        return None
    folder = fallback_folder("matplotlib")
    if folder is None and writable is not None:
        try:
            folder = tempfile.mkdtemp(prefix=".matplotlib-", dir=writable)
        except OSError:
            return None
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
        print(f"spherenet: no writable home or temporary folder for Matplotlib's font cache; building it in "
              f"{folder} (removed at exit; set MPLCONFIGDIR to keep one)", file=sys.stderr)
    if folder is not None:
        os.environ["MPLCONFIGDIR"] = folder
    return folder
