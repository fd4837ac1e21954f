"""CSV loaders for the two public real-data formats, both returning the 12 -> 3 :class:`FlightData` layout.

The real data sets are not redistributable: users download them and point these loaders at them.

**Neural-Lander style** (one header line, one row per sample; extra columns are ignored)::

    t, z, vx, vy, vz, qx, qy, qz, qw, u1, u2, u3, u4, fax, fay, faz      [s, m, m/s, -, -, N]

Optional column ``flight`` (any label) splits a file into flights. ``u`` is taken as ``u / u_scale``.

**Neural-Fly style** (O'Connell et al. 2022; one file per flight, a pandas index column first)::

    ,t,p,p_d,v,v_d,q,R,w,T_sp,q_sp,hover_throttle,fa,pwm

with vectors as quoted lists, e.g. ``"[0.33, -0.07, 2.17]"``. Used: ``t``, ``p`` (z = p[2], world z up),
``v``, ``q`` (scalar last), ``fa`` [N], ``pwm`` (four motor commands, u = pwm / ``pwm_scale``; 1000 as in
the Neural-Fly authors' own code). The file name ``{vehicle}_{trajectory}_{method}_{condition}.csv``
is parsed into the flight's metadata, with ``wind_percent`` from conditions like ``35wind`` / ``nowind``.

Both loaders take a file or a folder (every ``*.csv`` in it, sorted by name; macOS ``._*.csv`` resource
files skipped). Files are UTF-8 (a byte-order mark is accepted). Quaternions are returned with
``q_w >= 0`` unless ``canonical_quaternion=False`` (q and -q are the same attitude). Bad input raises:
FileNotFoundError (missing path); ValueError naming the file, the line and the column (by name, or by
position for bytes) for a missing or twice-named column, a file that is not UTF-8 text (binary, zip,
UTF-16, latin-1), a cell over csv's field limit or an unterminated quote (named at the line where it
opens), a non-numeric, non-decimal (``1_0``) or malformed list cell, NaN/Inf, a target whose squared
norm overflows or underflows (beyond ~1e154 or below ~1e-154 N), a wrong cell count, an empty file, a
zero-norm input row, or a file whose targets are all zero; ValueError naming the folder if it holds no
CSV file.
"""
from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import numpy as np

from .._checks import finite_float
from .container import FEATURE_NAMES, FlightData, concat
from .quadrotor import quat_to_rotmat

NEURAL_LANDER_COLUMNS = ("t", "z", "vx", "vy", "vz", "qx", "qy", "qz", "qw", "u1", "u2", "u3", "u4",
                         "fax", "fay", "faz")
NEURAL_FLY_COLUMNS = ("t", "p", "p_d", "v", "v_d", "q", "R", "w", "T_sp", "q_sp", "hover_throttle", "fa",
                      "pwm")
_NEURAL_FLY_USED = {"t": 0, "p": 3, "v": 3, "q": 4, "fa": 3, "pwm": 4}


def _files(path) -> list[Path]:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"no such file or folder: {path}")
    if path.is_dir():
        # "._x.csv": the resource forks macOS writes beside files on foreign disks, not data
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".csv" and p.is_file()
                       and not p.name.startswith("._"))
        if not files:
            raise ValueError(f"folder {path} contains no .csv data files")
        return files
    return [path]


# Leading bytes of files that are not CSV text, and what they are.
_NOT_TEXT = ((b"PK\x03\x04", "a zip archive (unpack it first)"),
             (b"\x00\x05\x16\x07", "a macOS resource file (the '._' twin of a data file), not data"),
             (b"\xff\xfe", "UTF-16 text (save it as UTF-8)"), (b"\xfe\xff", "UTF-16 text (save it as UTF-8)"))


def _text(path: Path) -> str:
    """The file decoded as UTF-8 (a leading byte-order mark, as Excel writes, dropped); anything else is
    refused naming the line and column of the first byte that is not text."""
    data = path.read_bytes()
    for magic, what in _NOT_TEXT:
        if data.startswith(magic):
            raise ValueError(f"{path}:1: {what}, not a CSV text file")
    data = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
    nul = data.find(b"\x00")
    try:
        if nul >= 0:
            raise UnicodeDecodeError("utf-8", data, nul, nul + 1, "NUL byte")
        return data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data.count(b"\n", 0, err.start) + 1
        column = err.start - data.rfind(b"\n", 0, err.start)
        kind = "binary data (a NUL byte)" if err.reason == "NUL byte" else "not UTF-8 text"
        raise ValueError(f"{path}:{line}: column {column}: byte 0x{data[err.start]:02x}: {kind}; "
                         f"expected a CSV file saved as UTF-8") from None


def _records(path: Path, text: str):
    """``(line number, cells)`` of every CSV record. A record must stay on its line (no cell of these
    formats holds a line break), so an unterminated quote is named at the line where it opens."""
    reader = csv.reader(io.StringIO(text, newline=""))
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as err:
            raise ValueError(f"{path}:{start}: {err} (a cell starting on this line runs on: an unterminated "
                             f"quote?)") from None
        if reader.line_num > start:
            raise ValueError(f"{path}:{start}: a quoted cell runs over {reader.line_num - start + 1} lines "
                             f"(an unterminated quote?)")
        yield start, cells
        start = reader.line_num + 1


def _read_csv(path: Path, required) -> tuple[dict[str, int], list[tuple[int, list[str]]]]:
    """Header name -> column index, and (line number, cells) of every non-blank data row."""
    records = _records(path, _text(path))
    _, header = next(records, (1, None))
    if header is None:
        raise ValueError(f"{path}: empty file (no header line)")
    rows = [(line, cells) for line, cells in records if any(c.strip() for c in cells)]
    cols = _columns(path, header)
    missing = [c for c in required if c not in cols]
    if missing:
        raise ValueError(f"{path}:1: missing column(s) {', '.join(missing)}; header is {header}")
    if not rows:
        raise ValueError(f"{path}: empty file (header only, no data rows)")
    width = len(header)
    for line, cells in rows:
        if len(cells) != width:
            raise ValueError(f"{path}:{line}: {len(cells)} cells, the header has {width}")
    return cols, rows


def _columns(path: Path, header) -> dict[str, int]:
    """Header name -> column index; a name given twice is refused (which one would be meant?)."""
    cols = {}
    for i, name in enumerate(header):
        name = name.strip()
        if name in cols:
            raise ValueError(f"{path}:1: column {name!r} appears twice (columns {cols[name] + 1} and {i + 1})")
        cols[name] = i
    return cols


# A plain decimal number: what float() reads, less its extras ("1_0", "infinity", non-ASCII digits).
_DECIMAL = re.compile(r"[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?")


def _number(text: str, path, line, column) -> float:
    try:
        x = float(text)
    except ValueError:
        raise ValueError(f"{path}:{line}: column {column!r}: not a number: {text!r}") from None
    if not math.isfinite(x):
        raise ValueError(f"{path}:{line}: column {column!r}: non-finite value {text!r}")
    if not _DECIMAL.fullmatch(text.strip()):
        raise ValueError(f"{path}:{line}: column {column!r}: not a plain decimal number: {text!r}")
    return x


def _list_cell(text: str, size: int, path, line, column) -> list[float]:
    s = text.strip()
    if not (s.startswith("[") and s.endswith("]")):
        raise ValueError(f"{path}:{line}: column {column!r}: malformed list cell {text!r} "
                         f"(expected [x, y, ...])")
    parts = s[1:-1].split(",")
    if len(parts) != size:
        raise ValueError(f"{path}:{line}: column {column!r}: list cell {text!r} has {len(parts)} "
                         f"entries, expected {size}")
    return [_number(p.strip(), path, line, column) for p in parts]


def _check_target_range(path: Path, Y: np.ndarray, lines, columns) -> None:
    """The scaling divides by max_n ||y_n||: refuse a target whose squared norm overflows (|y| above ~1e154 N)
    or underflows to below the smallest normal double (a non-zero y below ~1e-154 N), naming its place."""
    with np.errstate(over="ignore", under="ignore"):
        squares = np.einsum("ij,ij->i", Y, Y)
    bad = np.flatnonzero(~np.isfinite(squares) | ((squares < np.finfo(np.float64).tiny) & np.any(Y != 0, axis=1)))
    if bad.size:
        i = bad[0]
        j = int(np.argmax(np.abs(Y[i])))
        how = "overflows" if not np.isfinite(squares[i]) else "underflows"
        raise ValueError(f"{path}:{lines[i]}: column {columns[j]!r}: target {Y[i, j]!r}: its squared norm {how} "
                         f"in double precision (the scaling needs forces between 1e-154 and 1e154 N)")


def _finish(path: Path, X, Y, t, lines, flight_labels, canonical_quaternion, source, meta_base, target_columns):
    """Shared checks and assembly for one file: returns FlightData with flights numbered from 0."""
    X, Y, t = np.array(X, dtype=np.float64), np.array(Y, dtype=np.float64), np.array(t, dtype=np.float64)
    zero = np.flatnonzero(~np.any(X != 0.0, axis=1))
    if zero.size:
        raise ValueError(f"{path}:{lines[zero[0]]}: zero-norm input row (all 12 features are 0)")
    if not np.any(Y != 0.0):
        raise ValueError(f"{path}: all targets are zero (the residual force columns hold only 0)")
    _check_target_range(path, Y, lines, target_columns)
    if canonical_quaternion:
        X[:, 4:8] *= np.where(X[:, 7:8] < 0, -1.0, 1.0)
    labels = list(dict.fromkeys(flight_labels))
    ids = np.array([labels.index(x) for x in flight_labels]) if len(labels) > 1 else np.zeros(len(t), int)
    meta = {i: {**meta_base, "source_file": str(path), **({"flight_label": label} if len(labels) > 1 else {})}
            for i, label in enumerate(labels)}
    return FlightData(X, Y, ids, t, source=source, meta=meta)


def _load_lander_file(path: Path, u_scale: float, canonical_quaternion: bool) -> FlightData:
    cols, rows = _read_csv(path, NEURAL_LANDER_COLUMNS)
    idx = [cols[c] for c in NEURAL_LANDER_COLUMNS]
    X, Y, t, lines, flights = [], [], [], [], []
    for line, cells in rows:
        vals = [_number(cells[i], path, line, c) for i, c in zip(idx, NEURAL_LANDER_COLUMNS)]
        t.append(vals[0])
        X.append(vals[1:9] + [u / u_scale for u in vals[9:13]])
        Y.append(vals[13:16])
        lines.append(line)
        flights.append(cells[cols["flight"]].strip() if "flight" in cols else "")
    return _finish(path, X, Y, t, lines, flights, canonical_quaternion, "neural-lander", {},
                   NEURAL_LANDER_COLUMNS[13:16])


def _neural_fly_meta(path: Path) -> dict:
    parts = path.stem.split("_")
    if len(parts) < 4:
        return {}
    meta = dict(zip(("vehicle", "trajectory", "method"), parts[:3]), condition="_".join(parts[3:]))
    m = re.fullmatch(r"(\d+)wind", meta["condition"])
    if m or meta["condition"] == "nowind":
        meta["wind_percent"] = float(m.group(1)) if m else 0.0
    return meta


def _load_fly_file(path: Path, pwm_scale: float, canonical_quaternion: bool) -> FlightData:
    cols, rows = _read_csv(path, tuple(_NEURAL_FLY_USED))
    X, Y, t, lines = [], [], [], []
    for line, cells in rows:
        get = {c: (_number(cells[cols[c]], path, line, c) if n == 0 else
                   _list_cell(cells[cols[c]], n, path, line, c)) for c, n in _NEURAL_FLY_USED.items()}
        t.append(get["t"])
        X.append([get["p"][2], *get["v"], *get["q"], *(u / pwm_scale for u in get["pwm"])])
        Y.append(get["fa"])
        lines.append(line)
    return _finish(path, X, Y, t, lines, [""] * len(t), canonical_quaternion, "neural-fly",
                   _neural_fly_meta(path), ("fa",) * 3)


def load_neural_lander(path, *, u_scale: float = 1.0, canonical_quaternion: bool = True) -> FlightData:
    """Neural-Lander-style CSV file, or every ``*.csv`` of a folder -> FlightData (flights renumbered 0..)."""
    u_scale = finite_float("u_scale", u_scale, positive=True)
    parts = [_load_lander_file(f, u_scale, canonical_quaternion) for f in _files(path)]
    return concat(parts, renumber=True)


def load_neural_fly(path, *, pwm_scale: float = 1000.0, canonical_quaternion: bool = True) -> FlightData:
    """Neural-Fly-style CSV file (one flight) or folder of them -> FlightData, one flight id per file."""
    pwm_scale = finite_float("pwm_scale", pwm_scale, positive=True)
    parts = [_load_fly_file(f, pwm_scale, canonical_quaternion) for f in _files(path)]
    return concat(parts, renumber=True)


def _fmt_list(values) -> str:
    return "[" + ", ".join(repr(float(x)) for x in values) + "]"


def write_neural_lander_csv(path, data: FlightData, *, u_scale: float = 1.0) -> Path:
    """Write ``data`` (12 -> 3 layout) as a Neural-Lander-style CSV; a ``flight`` column if >1 flight."""
    _check_layout(data)
    path = Path(path)
    multi = len(data.flight_ids) > 1
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(NEURAL_LANDER_COLUMNS + (("flight",) if multi else ()))
        for i in range(len(data)):
            x = data.X[i]
            row = [data.t[i], *x[:8], *(x[8:12] * u_scale), *data.Y[i]]
            w.writerow([repr(float(v)) for v in row] + ([int(data.flight[i])] if multi else []))
    return path


def write_neural_fly_csv(path, data: FlightData, *, pwm_scale: float = 1000.0) -> Path:
    """Write a single flight as a Neural-Fly-style CSV (all 13 columns; x = y = 0, setpoints = state)."""
    _check_layout(data)
    if len(data.flight_ids) != 1:
        raise ValueError(f"data holds {len(data.flight_ids)} flights; the Neural-Fly format has one "
                         f"flight per file: write data.flights([i]) for each flight")
    path = Path(path)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(("",) + NEURAL_FLY_COLUMNS)
        for i in range(len(data)):
            x = data.X[i]
            p, v, q = [0.0, 0.0, x[0]], x[1:4], x[4:8]
            R = quat_to_rotmat(q)
            w.writerow([i, repr(float(data.t[i])), _fmt_list(p), _fmt_list(p), _fmt_list(v), _fmt_list(v),
                        _fmt_list(q), "[" + ", ".join(_fmt_list(r) for r in R) + "]", _fmt_list([0, 0, 0]),
                        "[0.5]", _fmt_list(q), "[0.5]", _fmt_list(data.Y[i]), _fmt_list(x[8:12] * pwm_scale)])
    return path


def _check_layout(data) -> None:
    if not isinstance(data, FlightData):
        raise TypeError(f"data must be FlightData, got {type(data).__name__}")
    if data.feature_names != FEATURE_NAMES or data.Y.shape[1] != 3:
        raise ValueError("data must have the 12 -> 3 layout (FEATURE_NAMES inputs, 3 targets)")
