"""Sweeps on a real Dask cluster (a LocalCluster of two worker processes): the workers run the trainings,
the results equal the local process pool's bit for bit, and a worker killed mid-sweep loses no finished run."""
import os
import signal
import time
from concurrent.futures import CancelledError, ThreadPoolExecutor

import numpy as np
import pytest

distributed = pytest.importorskip("distributed")

from spherenet import cluster as sc                     # noqa: E402
from spherenet import experiments as ex                 # noqa: E402
from spherenet.cli import main                          # noqa: E402
from spherenet.results import load_arrays, read_json    # noqa: E402

TIMEOUT = 180                       # seconds: a sweep that takes longer has hung
QUICK_SWEEP = [dict(n_samples=800, iterations=4, seed=s, **kind) for s in range(2)
               for kind in (dict(method="taylor", scaling="paper"), dict(lipschitz=2.0, dtype="float32"))]
SLOW_SWEEP = [dict(n_samples=800, iterations=400, seed=s, lipschitz=2.0) for s in range(4)]   # ~0.6 s per run


@pytest.fixture(scope="module")
def cluster():
    with distributed.LocalCluster(n_workers=2, processes=True, threads_per_worker=1, dashboard_address=None,
                                  silence_logs=50) as local:
        yield local


@pytest.fixture
def pool(cluster):
    """A DaskExecutor on the cluster, once both workers are up (a test before may have killed one)."""
    with ex.executor_for(cluster.scheduler_address) as executor:
        executor.client.wait_for_workers(2, timeout=TIMEOUT)
        yield executor


def within_timeout(fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, failing the test instead of hanging if it takes longer than TIMEOUT."""
    with ThreadPoolExecutor(1) as thread:
        return thread.submit(fn, *args, **kwargs).result(timeout=TIMEOUT)


def without_timings(record):
    """The record without the clock's readings (``seconds...``), at any depth."""
    if isinstance(record, dict):
        return {k: without_timings(v) for k, v in record.items() if not k.startswith("seconds")}
    return [without_timings(v) for v in record] if isinstance(record, list) else record


def assert_same_runs(folder_a, folder_b, settings):
    """Every run's record (but its timings) and weights are equal bit for bit in the two sweep folders."""
    for s in settings:
        key = ex.run_key(s)
        a, b = (read_json(f / "runs" / f"{key}.json") for f in (folder_a, folder_b))
        assert without_timings(a) == without_timings(b), key
        wa, wb = (load_arrays(f / "runs" / f"{key}.npz") for f in (folder_a, folder_b))
        assert wa.keys() == wb.keys()
        for name in wa:
            assert wa[name].dtype == wb[name].dtype and np.array_equal(wa[name], wb[name]), (key, name)


@pytest.fixture(scope="module")
def slow_sweep_in_process():
    """SLOW_SWEEP run here, one run after the other: ``{run key: (record, arrays)}``."""
    return {ex.run_key(s): ex.run(s) for s in SLOW_SWEEP}


def assert_same_as_in_process(folder, records, expected):
    for s, record in zip(SLOW_SWEEP, records):
        key = ex.run_key(s)
        record_here, arrays_here = expected[key]
        assert without_timings(record) == without_timings(record_here), key
        saved = load_arrays(folder / "runs" / f"{key}.npz")
        assert saved.keys() == arrays_here.keys()
        assert all(np.array_equal(saved[k], arrays_here[k]) for k in saved), key


def run_tasks(task_stream) -> list:
    return [t for t in task_stream.data if t["key"].startswith("run-")]


def test_sweep_on_the_cluster_equals_the_local_pool(pool, tmp_path, monkeypatch):
    workers = set(pool.client.scheduler_info()["workers"])
    monkeypatch.chdir(tmp_path)               # the workers run elsewhere: "dask" is a folder only we see
    with distributed.get_task_stream(client=pool.client) as stream:
        records = within_timeout(ex.sweep, QUICK_SWEEP, "dask", pool)
    ran = run_tasks(stream)
    assert len(ran) == len(QUICK_SWEEP)
    assert {t["worker"] for t in ran} == workers, "both workers should have run trainings"
    assert [r["seed"] for r in records] == [s["seed"] for s in QUICK_SWEEP]
    assert [r["method"] for r in records] == [ex.settings_for(**s)["method"] for s in QUICK_SWEEP]
    with ex.executor_for(workers=2) as local:
        within_timeout(ex.sweep, QUICK_SWEEP, tmp_path / "local", local)
    assert_same_runs(tmp_path / "dask", tmp_path / "local", QUICK_SWEEP)


def kill_a_busy_worker(client, runs_dir, note):
    """A progress callback: at the first finished run, SIGKILL a worker process that is running one."""
    pids = client.run(os.getpid)

    def progress(done, total, record):
        if note:
            return
        busy = [w for w, keys in client.processing().items() if keys]
        assert busy, "no worker was running a training when the kill was due"
        note["finished"] = {p.name: (p.read_bytes(), p.stat().st_mtime_ns) for p in runs_dir.glob("*.json")}
        note["victim"] = busy[0]
        os.kill(pids[busy[0]], signal.SIGKILL)
    return progress


def test_a_worker_killed_mid_sweep_loses_no_finished_run(pool, tmp_path, slow_sweep_in_process):
    note = {}
    records = within_timeout(ex.sweep, SLOW_SWEEP, tmp_path, pool,
                             progress=kill_a_busy_worker(pool.client, tmp_path / "runs", note))
    assert note["victim"] and note["finished"], "the worker was not killed mid-sweep"
    assert len(records) == len(SLOW_SWEEP) == len(list((tmp_path / "runs").glob("*.json")))
    for name, (data, mtime) in note["finished"].items():       # finished before the kill: kept, not redone
        path = tmp_path / "runs" / name
        assert path.read_bytes() == data and path.stat().st_mtime_ns == mtime, name
    assert_same_as_in_process(tmp_path, records, slow_sweep_in_process)    # the retried runs too


@pytest.fixture
def no_retries(pool, cluster):
    """The scheduler gives up on a task at the first worker death (KilledWorker), as after repeated ones."""
    def set_allowed(value, dask_scheduler=None):
        old, dask_scheduler.allowed_failures = dask_scheduler.allowed_failures, value
        return old
    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        old = client.run_on_scheduler(set_allowed, 0)
        yield pool
        client.run_on_scheduler(set_allowed, old)


def test_a_sweep_that_lost_a_run_resumes_without_redoing_finished_ones(no_retries, cluster, tmp_path,
                                                                      slow_sweep_in_process):
    note = {}
    with pytest.raises(sc.KilledWorker):
        within_timeout(ex.sweep, SLOW_SWEEP, tmp_path, no_retries,
                       progress=kill_a_busy_worker(no_retries.client, tmp_path / "runs", note))
    no_retries.shutdown(wait=True)                # the runs still in flight finish and are saved
    before = {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json")}
    assert set(note["finished"]) <= set(before) and len(before) < len(SLOW_SWEEP)
    with ex.executor_for(cluster.scheduler_address) as pool, \
            distributed.get_task_stream(client=pool.client) as stream:
        records = within_timeout(ex.sweep, SLOW_SWEEP, tmp_path, pool)
    assert len(run_tasks(stream)) == len(SLOW_SWEEP) - len(before)
    assert_same_as_in_process(tmp_path, records, slow_sweep_in_process)
    assert {p.name: p.stat().st_mtime_ns for p in (tmp_path / "runs").glob("*.json") if p.name in before} \
        == before


def test_reproduce_on_the_cluster(cluster, tmp_path, capsys):
    argv = ["reproduce", "exp1", "--quick", "--seeds", "1", "--samples", "800", "--out", str(tmp_path),
            "--scheduler", cluster.scheduler_address]
    assert within_timeout(main, argv) == 0
    summary = read_json(tmp_path / "summary.json")
    assert summary["taylor"]["seeds"] == summary["mm"]["seeds"] == 1
    assert len(list((tmp_path / "runs").glob("*.json"))) == 2
    assert (tmp_path / "figures" / "exp1.png").is_file()


def test_the_lipschitz_sweep_on_the_cluster(cluster, tmp_path, capsys):
    argv = ["lipschitz", "--quick", "--points", "2", "--seeds", "1", "--samples", "800", "--iterations", "3",
            "--out", str(tmp_path), "--scheduler", cluster.scheduler_address]
    assert within_timeout(main, argv) == 0
    summary = read_json(tmp_path / "summary.json")
    assert summary["experiment"] == "lipschitz" and len(summary["curve"]) == 2
    runs = list((tmp_path / "runs").glob("*.json"))
    assert len(runs) == len(list((tmp_path / "runs").glob("*.npz"))) >= 2
    assert (tmp_path / "figures" / "lipschitz.png").is_file()


COMMANDS = {"reproduce": ["reproduce", "exp1", "--quick"], "lipschitz": ["lipschitz", "--quick"]}


@pytest.mark.parametrize("extra, message", [
    (["--scheduler", "no-port-here"], "scheduler 'no-port-here': cannot connect to a Dask scheduler there"),
    (["--scheduler", "tcp://127.0.0.1:1"], "Timed out trying to connect"),
    (["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"], "--workers sizes the local process pool"),
])
@pytest.mark.parametrize("command", COMMANDS)
def test_a_bad_scheduler_is_one_line(command, extra, message, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sc, "CONNECT_TIMEOUT", "1s")
    start = time.perf_counter()
    assert main(COMMANDS[command] + ["--out", str(tmp_path)] + extra) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
    assert time.perf_counter() - start < 30
    assert not (tmp_path / "runs").exists()


class _Worker:
    address = "tcp://10.0.0.7:40000"


@pytest.mark.parametrize("failure", [sc.KilledWorker("run-1", _Worker(), 3), CancelledError()],
                         ids=["killed-worker", "scheduler-gone"])
@pytest.mark.parametrize("command, sweep", [("reproduce", "spherenet.reproduce.reproduce"),
                                            ("lipschitz", "spherenet.tradeoff.tradeoff")])
def test_a_lost_run_is_one_line_naming_the_folder_to_resume(command, sweep, failure, cluster, tmp_path, capsys,
                                                             monkeypatch):
    def lose_a_run(*args, **kwargs):
        raise failure
    monkeypatch.setattr(sweep, lose_a_run)
    argv = COMMANDS[command] + ["--out", str(tmp_path), "--scheduler", cluster.scheduler_address]
    assert within_timeout(main, argv) == 1
    err = capsys.readouterr().err
    assert err.startswith(f"spherenet {command}: error: the Dask cluster lost a run ({type(failure).__name__}")
    assert err.count("\n") == 1, err
    assert f"kept in {tmp_path / 'runs'}: rerun the same command to resume" in err
