"""Will a training run fit in memory? An estimate of its buffers, checked before anything is allocated.

A training step keeps, on the rows it works on (the batch, or every training row in full batch), the forward
pass and, for Algorithm 1, the backward pass's adjoints; everything else (the backward pass, the jets along
the update curve, the evaluations) goes block by block, ``network.ROW_BLOCK`` rows at a time. Measured with
``tracemalloc`` over two iterations on 4,000 rows, about one block (12-400-200-3 and 12-800-400-3, float64):
2.7 (mm), 2.9 (taylor) and 5.7-6.1 (geo-cg-layer) values per row and hidden unit. The estimate takes ::

    bytes ~= itemsize * (2 rows sum(widths[1:]) + (8 + 2 (r - 2)^+) min(ROW_BLOCK, rows) sum(widths)
                         + (4 d_L + d_0 + d_L)(N + N_test) + 8 sum_i w_i w_{i+1})

with ``rows`` the rows of a step (the adjoints' share capped at ``network.ADJOINT_BUDGET``), ``r`` the jet order
(order 6 measured 7.9), a few output-sized arrays and a standardised copy of the data over all rows: an
upper bound for every method, so a run it refuses would not have fitted (a run it lets through can still be
pushed out by other processes). A full-batch pass larger than ``network.FORWARD_BUDGET`` is streamed
(``network.StreamedCache``: only the output kept, the rest recomputed block by block), and the kept part is
then at most the two budgets. The memory available is the kernel's ``MemAvailable``, lowered to the room
left under a cgroup (container) limit when there is one; where neither can be read, nothing is refused.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from . import network

_ROW_VALUES = 8            # per row and unit of a block (measured at most 6.1, see the docstring)
_OUTPUT_VALUES = 4         # per row and output unit: output, error, adjoint, trial output
_WEIGHT_COPIES = 8         # weights, gradients, directions, rule memory, trial points, ...


def training_bytes(widths, n_train: int, n_test: int = 0, dtype="float64", batch_size=None, order: int = 2) -> int:
    """The estimated peak of a training run's buffers, in bytes (see the module docstring).

    ``kept + blocks + outputs + data + weights``: the forward pass and the adjoints kept on the rows of a step
    (the batch, or every training row: at most ``FORWARD_BUDGET + ADJOINT_BUDGET`` when the pass streams),
    the block-by-block work of the backward pass, the jets and the evaluations (``_ROW_VALUES`` per unit on
    at most ``ROW_BLOCK`` rows), a few output-sized arrays over all rows, a standardised copy of the data
    (the baselines), and copies of the weights.
    """
    itemsize = np.dtype(dtype).itemsize
    mini = batch_size is not None and batch_size < n_train
    step_rows = batch_size if mini else n_train
    units = sum(widths[1:])
    if not mini and network.streams_forward(widths, n_train, dtype):
        kept = network.FORWARD_BUDGET + network.ADJOINT_BUDGET
    else:
        kept = itemsize * step_rows * units + min(itemsize * step_rows * units, network.ADJOINT_BUDGET)
    per_row = (_ROW_VALUES + 2 * max(order - 2, 0)) * sum(widths)
    blocks = itemsize * per_row * min(network.ROW_BLOCK, max(step_rows, n_test))
    all_rows = n_train + n_test
    outputs = itemsize * _OUTPUT_VALUES * widths[-1] * all_rows
    data = itemsize * (widths[0] + widths[-1]) * all_rows
    weights = itemsize * _WEIGHT_COPIES * sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    return kept + blocks + outputs + data + weights


def _read_int(path) -> int | None:
    try:
        text = Path(path).read_text().split()[0]
    except (OSError, IndexError):
        return None
    return int(text) if text.isdigit() else None


def _cgroup_headroom() -> int | None:
    """Bytes left under this process's cgroup memory limit (v2 or v1), or None if there is no limit."""
    for limit, usage in (("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
                         ("/sys/fs/cgroup/memory/memory.limit_in_bytes",
                          "/sys/fs/cgroup/memory/memory.usage_in_bytes")):
        limit_bytes, used_bytes = _read_int(limit), _read_int(usage)
        if limit_bytes is not None and used_bytes is not None and limit_bytes < 2 ** 60:
            return max(limit_bytes - used_bytes, 0)
    return None


def available_bytes() -> int | None:
    """Memory a new allocation can use now: ``MemAvailable`` (or free pages), capped by a cgroup limit."""
    available = None
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    available = int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    if available is None and hasattr(os, "sysconf"):
        try:
            available = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError):
            available = None
    headroom = _cgroup_headroom()
    return headroom if available is None else (available if headroom is None else min(available, headroom))


def _gb(n: int) -> str:
    return f"{n / 1e9:,.1f} GB" if n >= 1e9 else f"{n / 1e6:,.0f} MB"


def check_fits(widths, n_train: int, n_test: int = 0, dtype="float64", batch_size=None, order: int = 2,
               available: int | None = None, name: str | None = None) -> int:
    """Raise MemoryError (one line: how much is needed, how much there is) if the run cannot fit; else
    return the estimate in bytes. ``available``: bytes to compare with (default: :func:`available_bytes`);
    ``name``: the network as the user gave it (default: the widths joined by '-')."""
    need = training_bytes(widths, n_train, n_test, dtype, batch_size, order)
    have = available_bytes() if available is None else available
    if have is not None and need > have:
        name = name or "-".join(map(str, widths))
        raise MemoryError(f"network {name} on {max(n_train, n_test):,} rows in {dtype} needs "
                          f"about {_gb(need)} of buffers, but only {_gb(have)} of memory is available: use "
                          f"narrower layers, --batch-size, fewer samples or float32")
    return need
