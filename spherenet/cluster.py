"""Sweeps on a Dask distributed cluster: a ``concurrent.futures.Executor`` whose calls run on its workers.

``spherenet.experiments.sweep`` needs nothing more than ``submit`` and futures, so its guarantees hold on a
cluster: each finished run comes back to the calling process, which saves it at once in ``OUT/runs``, and a
rerun skips every saved run. A worker that dies takes only the run it was computing with it: the scheduler
runs that task again on another worker (up to ``distributed.scheduler.allowed-failures`` times, then the
sweep raises ``distributed.KilledWorker``). A finished task is released on the cluster as soon as its
result has arrived, so no later death makes the scheduler run it again.

What every worker needs: spherenet (the same version) importable, and the data. The simulator regenerates
its data from the seed in the settings inside each worker; real logs are read from the run's ``data_path``,
which must therefore name the same file on every machine (a shared file system path). The workers never
touch ``OUT``.
"""
from __future__ import annotations

import concurrent.futures as cf
import functools
import logging
import threading

from distributed import Client, KilledWorker, WorkerPlugin
from distributed.comm import resolve_address

CONNECT_TIMEOUT = "10s"          # how long to try to reach the scheduler before giving up
# The exceptions by which a sweep learns that the cluster lost a run: a worker died while running it too
# often, or the scheduler went away and the calls were cancelled.
CLUSTER_FAILURES = (KilledWorker, cf.CancelledError)


class OneBlasThread(WorkerPlugin):
    """Worker plugin: one BLAS thread per worker process, as the local pool has (``threadpoolctl``), so the
    runs' products are computed, and rounded, the same way on the cluster."""

    name = "spherenet-one-blas-thread"

    def setup(self, worker):
        from threadpoolctl import threadpool_limits
        threadpool_limits(1)


class DaskExecutor(cf.Executor):
    """Run callables on the Dask scheduler at ``address`` (e.g. ``"tcp://10.0.0.5:8786"``).

    Like ``distributed.Client(address).get_executor()``, with two differences: a task is released on the
    cluster as soon as its result has reached this process (so a worker that dies later holds nothing that
    the scheduler would recompute: a finished run is never run again), and the executor owns its client:
    shutting it down (or leaving its ``with`` block) closes the connection, after waiting for the calls in
    flight or, with ``cancel_futures=True``, cancelling them. ``client`` is the ``distributed.Client``.
    """

    def __init__(self, address: str, timeout=None):
        try:
            resolve_address(address)         # a malformed address fails here, before a client exists
            self.client = Client(address, timeout=timeout or CONNECT_TIMEOUT, set_as_default=False)
        except (OSError, ValueError, TypeError) as err:
            raise ValueError(f"scheduler {address!r}: cannot connect to a Dask scheduler there "
                             f"({type(err).__name__}: {err})") from None
        self.client.register_plugin(OneBlasThread())
        self._in_flight = {}                 # the cluster's futures not yet handed over (a dropped one is lost)
        self._lock = threading.Lock()

    def submit(self, fn, /, *args, **kwargs) -> cf.Future:
        handle = cf.Future()
        task = self.client.submit(fn, *args, pure=False, **kwargs)     # every call a new task
        with self._lock:
            self._in_flight[task] = handle
        task.add_done_callback(functools.partial(self._hand_over, handle))   # runs in a client thread
        return handle

    def _hand_over(self, handle: cf.Future, task) -> None:
        try:
            if task.status == "cancelled":
                handle.cancel()
                handle.set_running_or_notify_cancel()       # wakes as_completed and wait
            elif task.status == "finished":
                handle.set_result(task.result())
            else:
                handle.set_exception(task.exception())
        except BaseException as err:                         # the result could not be fetched
            if not handle.done():
                handle.set_exception(err)
        finally:
            with self._lock:
                self._in_flight.pop(task, None)
            task.release()

    def shutdown(self, wait=True, *, cancel_futures=False):
        with self._lock:
            in_flight = dict(self._in_flight)
        if in_flight and cancel_futures:
            self.client.cancel(list(in_flight))
        elif wait:
            cf.wait(in_flight.values())
        # If the scheduler has gone, closing cancels the client's attempts to reconnect, which distributed
        # logs as an error with a traceback: the caller has been told already (the futures failed).
        quiet = logging.getLogger("distributed.client")
        level = quiet.level
        quiet.setLevel(logging.CRITICAL)
        try:
            self.client.close()
        finally:
            quiet.setLevel(level)
