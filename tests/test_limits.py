"""Limits and shutdown (issue 21): a network too large for memory is refused before allocating, in one
line saying how much it needs; SIGTERM ends a sweep and its pool workers as Ctrl-C does."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from spherenet import memory
from spherenet.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_a_network_too_large_for_memory_is_refused_before_allocating(tmp_path, capsys):
    need = memory.training_bytes([12, 1_000_000, 3], 24_000, 6_000)
    streamed = 512 * 2 ** 20 + 256 * 2 ** 20 + 8 * 8 * 1_000_015 * 4096        # the two budgets + one block
    assert need == streamed + 8 * ((4 * 3 + 12 + 3) * 30_000 + 8 * 15_000_000)
    if (memory.available_bytes() or need) >= need:
        pytest.skip("this machine has 1.5 TB of memory available")
    out = tmp_path / "run"
    argv = ["train", "--iterations", "5", "--batch-size", "full", "--widths", "12-1000000-3", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert "network 12-1000000-3 on 24,000 rows in float64 needs about 264.0 GB of buffers" in err
    assert not out.exists()


def test_the_estimate_bounds_the_measured_peak():
    """The estimate is at least the peak that tracemalloc measures for two iterations of each kind of rule."""
    import tracemalloc

    import spherenet as sn
    from spherenet.train import train
    rng = np.random.default_rng(0)
    X = rng.normal(size=(1500, 12))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.1 * rng.normal(size=(1500, 3))
    widths = [12, 200, 100, 3]
    for method, options in (("geo-cg-layer", {}), ("taylor", {"order": 4}), ("mm", {}), ("geo-adam", {})):
        net = sn.NormalisedMLP(widths, seed=0)
        train(net, X[:20], Y[:20], method, 1, **options)                # compile outside the measurement
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        train(net, X, Y, method, 2, X[:500], Y[:500], **options)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        estimate = memory.training_bytes(widths, 1500, 500, "float64", order=options.get("order", 2))
        assert peak <= estimate <= 4 * peak, (method, peak, estimate)


@pytest.mark.parametrize("streamed", [False, True])
def test_the_estimate_bounds_the_peak_beyond_one_block(monkeypatch, streamed):
    """20,000 rows (five blocks): the block-by-block work is counted once, the kept passes per row; with a
    small FORWARD_BUDGET the full-batch pass streams and the kept part is the budgets."""
    import tracemalloc

    import spherenet as sn
    from spherenet import network
    from spherenet.train import train
    if streamed:
        monkeypatch.setattr(network, "FORWARD_BUDGET", 2 ** 20)
        monkeypatch.setattr(network, "ADJOINT_BUDGET", 2 ** 20)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(20_000, 12))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.1 * rng.normal(size=(20_000, 3))
    widths = [12, 25, 30, 15, 3]
    assert network.streams_forward(widths, 20_000, np.float64) == streamed
    for method, batch in (("taylor", None), ("geo-cg-layer", None), ("geo-batch", 1024)):
        net = sn.NormalisedMLP(widths, seed=0)
        train(net, X[:20], Y[:20], method, 1)                          # compile outside the measurement
        tracemalloc.start()
        base = tracemalloc.get_traced_memory()[0]
        train(net, X, Y, method, 2, X[:5000], Y[:5000], batch_size=batch)
        peak = tracemalloc.get_traced_memory()[1] - base
        tracemalloc.stop()
        estimate = memory.training_bytes(widths, 20_000, 5_000, "float64", batch_size=batch)
        assert peak <= estimate, (method, peak)


def test_check_fits_compares_with_what_is_available():
    need = memory.training_bytes([12, 25, 3], 1000, 200)
    assert memory.check_fits([12, 25, 3], 1000, 200, available=need) == need
    with pytest.raises(MemoryError, match=r"needs about \d+ MB of buffers, but only \d+ MB"):
        memory.check_fits([12, 25, 3], 1000, 200, available=need - 1)
    assert memory.training_bytes([12, 25, 3], 1000, 200, "float32") == need // 2
    assert memory.training_bytes([12, 25, 3], 10_000, 0, batch_size=100) < memory.training_bytes([12, 25, 3],
                                                                                                   10_000, 0)
    have = memory.available_bytes()
    assert have is None or have > 0


def _children(pid):
    kids = set()
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids |= {int(k) for k in (task / "children").read_text().split()}
        except OSError:
            pass
    return kids


def _alive(pid):
    try:
        state = [line for line in Path(f"/proc/{pid}/status").read_text().splitlines() if line.startswith("State")]
    except OSError:
        return False
    return bool(state) and "Z" not in state[0]


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find the pool workers")
def test_sigterm_ends_a_sweep_and_its_workers(tmp_path):
    out = tmp_path / "sweep"
    proc = subprocess.Popen([sys.executable, "-m", "spherenet", "reproduce", "exp1", "--seeds", "2", "--samples",
                             "3000", "--workers", "2", "--out", str(out)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        for _ in range(600):                              # until both pool workers have started
            workers = _children(proc.pid)
            if len(workers) >= 2 or proc.poll() is not None:
                break
            time.sleep(0.1)
        assert len(workers) >= 2, "the pool did not start"
        time.sleep(1.0)                                   # the workers are inside their runs
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, err
    assert err.strip().splitlines()[-1] == "spherenet reproduce: terminated (SIGTERM)" and "Traceback" not in err
    for _ in range(100):
        if not any(_alive(w) for w in workers):
            break
        time.sleep(0.1)
    assert not any(_alive(w) for w in workers), "pool workers outlived the sweep"


def test_sigterm_inside_a_callback_from_c_is_not_lost(capfd):
    """A signal handled while Python code runs inside a ctypes callback (as in Numba's cache writes) raises where
    an exception cannot propagate: the command must still stop, and print no "Exception ignored" traceback."""
    import ctypes
    import threading

    from spherenet.cli import Terminated, _sigterm_raises

    def busy():
        end = time.time() + 0.6
        while time.time() < end:
            pass
    callback = ctypes.CFUNCTYPE(None)(busy)
    with pytest.raises(Terminated):
        with _sigterm_raises():
            threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGTERM)).start()
            callback()                                    # the handler runs inside the callback ...
            time.sleep(3.0)                               # ... and the signal, delivered again, lands here
    assert "Exception ignored" not in capfd.readouterr().err
