"""Writing and reading results safely: atomic writes, and checksummed weight files.

Every file is written to a temporary name in the same folder and then renamed, so an interrupted run
never leaves a half-written file under the final name. Weight files carry a SHA-256 of their arrays;
a truncated or edited file is refused with an error that names it.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import tempfile
import tokenize
import zipfile
from pathlib import Path

import numpy as np


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _atomic_write_bytes(path, data: bytes, sync: bool = True) -> Path:
    """Write ``data`` to a temporary name beside ``path``, sync it (unless ``sync=False``), rename it to ``path``.

    The file gets the ordinary permissions ``0o666 & ~umask`` (``mkstemp`` alone would make it 0600). An
    ``OSError`` (full disk, read-only folder, ...) is re-raised naming ``path``; no temporary file is left.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o666 & ~_umask())
            f.write(data)
            f.flush()
            if sync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise OSError(err.errno, err.strerror or str(err), str(path)) from None
    except BaseException:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary name, sync, rename), with umask permissions."""
    return _atomic_write_bytes(path, data)


def write_json(path, obj) -> Path:
    """Write ``obj`` as JSON (non-finite floats refused: convert them to ``None`` first), atomically."""
    return _atomic_write_bytes(path, (json.dumps(obj, indent=1, allow_nan=False) + "\n").encode())


def read_json(path) -> dict:
    """Read a JSON file, with an error naming the file if it is missing or not valid JSON."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None


def _digest(arrays: dict) -> str:
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def arrays_digest(*arrays) -> str:
    """SHA-256 (hex) of arrays in order: their dtypes, shapes and bytes (e.g. to recognise a training set)."""
    return _digest({f"{i:06d}": a for i, a in enumerate(arrays)})


def save_arrays(path, *, sync: bool = True, **arrays) -> Path:
    """Save named arrays to ``.npz`` with a SHA-256 of their contents, atomically. ``sync=False``: rename
    without waiting for the disk (still whole or absent after a killed process, not after a power cut)."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if "_sha256" in arrays:
        raise ValueError("'_sha256' is reserved for the checksum")
    buf = io.BytesIO()
    np.savez(buf, _sha256=np.array(_digest(arrays)), **arrays)
    return _atomic_write_bytes(path, buf.getvalue(), sync)


def load_arrays(path) -> dict:
    """Load arrays saved by :func:`save_arrays`; refuse missing, truncated, tampered or non-finite files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    # zipfile raises NotImplementedError/RuntimeError for damaged flag bits (it reads "encrypted"); NumPy's
    # header parser raises SyntaxError or tokenize.TokenError for a damaged array header.
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, NotImplementedError, RuntimeError, SyntaxError,
            tokenize.TokenError) as err:
        raise ValueError(f"{path}: not a readable .npz file ({err})") from None
    stored = arrays.pop("_sha256", None)
    if stored is None:
        raise ValueError(f"{path}: no checksum; not written by spherenet")
    if str(stored) != _digest(arrays):
        raise ValueError(f"{path}: checksum mismatch; the file was changed or damaged")
    for name, a in arrays.items():
        if a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{path}: array {name!r} contains non-finite values")
    return arrays


def save_weights(path, weights, radii, **extra) -> Path:
    """Weights ``W_0..W_{L-1}`` and radii as one checksummed ``.npz`` (keys ``W0``, ``W1``, ..., ``radii``)."""
    arrays = {f"W{i}": W for i, W in enumerate(weights)}
    return save_arrays(path, radii=np.asarray(radii, float), **arrays, **extra)


def load_weights(path) -> tuple[list, np.ndarray, dict]:
    """``(weights, radii, extra)`` from :func:`save_weights`'s file, checked for integrity."""
    arrays = load_arrays(path)
    L = sum(1 for k in arrays if k.startswith("W") and k[1:].isdigit())
    if "radii" not in arrays or L == 0:
        raise ValueError(f"{path}: no weights/radii in the file")
    weights = [arrays.pop(f"W{i}") for i in range(L)]
    return weights, arrays.pop("radii"), arrays
