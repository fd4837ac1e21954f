"""Row-parallel passes: samples are independent, so a pass over N rows can run as contiguous parts on
several threads. NumPy's matrix products and spherenet's Numba kernels (``nogil``) release the GIL, so the
parts run side by side; the Python between the calls is a few microseconds per layer.

    with spherenet.rows.threads(2):
        ...                               # forward, backward and Algorithm 1's jet split their rows in two

Reductions over rows (the gradients, the jet's sums) are added part by part, in row order, so a given
number of threads always gives the same bits; different thread counts differ by rounding, as a different
BLAS would. With one thread (the default) every pass runs exactly as before, in one part.
"""
from __future__ import annotations

import contextlib
import threading
from concurrent.futures import ThreadPoolExecutor

from ._checks import positive_int

# Below this many rows per part, starting a thread costs more than the part's work.
MIN_ROWS = 2048

# Per calling thread: two trainings in two threads of a program each keep their own setting.
_setting = threading.local()


def _current() -> tuple[ThreadPoolExecutor | None, int]:
    return getattr(_setting, "pool", None), getattr(_setting, "count", 1)


@contextlib.contextmanager
def threads(count: int):
    """Run the passes inside the block on ``count`` threads (one pool, made here and shut down on exit).

    Parameters
    ----------
    count : int
        Positive; 1 runs every pass in one part, as without the block.

    Yields
    ------
    None
        The setting holds for the calling thread until the block ends (then the previous one is restored).
    """
    count = positive_int("threads", count)
    saved = _current()
    pool = ThreadPoolExecutor(count, thread_name_prefix="spherenet-rows") if count > 1 else None
    _setting.pool, _setting.count = pool, count
    try:
        yield
    finally:
        _setting.pool, _setting.count = saved
        if pool is not None:
            pool.shutdown()


def parts(n_rows: int) -> list[slice]:
    """The contiguous row ranges a pass over ``n_rows`` rows is split into (one unless threads are on).

    Parameters
    ----------
    n_rows : int

    Returns
    -------
    list of slice
        At most the thread count, and at least ``MIN_ROWS`` rows each (a single part otherwise).

    Examples
    --------
    >>> parts(10)
    [slice(0, 10, None)]
    """
    count = min(_current()[1], max(n_rows // MIN_ROWS, 1))
    bounds = [n_rows * p // count for p in range(count + 1)]
    return [slice(a, b) for a, b in zip(bounds[:-1], bounds[1:])]


def blocks(part: slice, size: int) -> list[slice]:
    """The consecutive blocks of at most ``size`` rows that cover the rows ``part``.

    Parameters
    ----------
    part : slice
        With ``start`` and ``stop`` set.
    size : int

    Returns
    -------
    list of slice

    Examples
    --------
    >>> blocks(slice(0, 5), 2)
    [slice(0, 2, None), slice(2, 4, None), slice(4, 5, None)]
    """
    return [slice(s, min(s + size, part.stop)) for s in range(part.start, part.stop, size)]


def map_parts(fn, n_rows: int) -> list:
    """``[fn(p, rows) for p, rows in enumerate(parts(n_rows))]``, the parts on the pool when there are several.

    Parameters
    ----------
    fn : callable
        ``fn(p, rows)``; must only write to its own rows (or to buffers named by its part ``p``).
    n_rows : int

    Returns
    -------
    list
        The parts' results, in row order.
    """
    ranges, pool = parts(n_rows), _current()[0]
    if len(ranges) == 1 or pool is None:
        return [fn(p, rows) for p, rows in enumerate(ranges)]
    return list(pool.map(fn, range(len(ranges)), ranges))


def add_in_order(values):
    """``values[0] + values[1] + ...``, left to right.

    Parameters
    ----------
    values : sequence
        Per-part results, in row order (non-empty).

    Returns
    -------
    object
        The sum, so a given thread count always gives the same bits (one part: ``values[0]`` itself).

    Examples
    --------
    >>> add_in_order([1.0, 2.0, 3.0])
    6.0
    """
    total = values[0]
    for value in values[1:]:
        total = total + value
    return total
