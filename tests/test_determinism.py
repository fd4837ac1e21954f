"""Determinism: equal seeds give bit-identical results across processes.

The same ``spherenet train`` command, on a flight log in the Neural-Lander CSV format (a user's own data;
also quicker than the simulator), is run in separate Python processes, two at a time with one BLAS thread
each, and the recorded numbers are compared with ``==``:
JSON keeps every float64 exactly (shortest round-trip repr), so equality of the records is equality of the
bits. Variants with the Numba JIT switched off (``NUMBA_DISABLE_JIT=1``: every kernel runs as the plain
Python loop it is compiled from) and with the default number of BLAS threads give the same bits as well:
the kernels are serial loops in a fixed order, compiled without fastmath (LLVM may not reorder their sums),
and OpenBLAS splits a matrix product by output blocks, not along its sums.
"""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from spherenet.results import load_arrays

# A given budget: the determinism of the budget ladder itself is tested in-process (tests/test_lipschitz.py),
# and its 1,200 iterations would dominate the run with the JIT off.
RUN = ["--iterations", "6", "--data", "neural-lander", "--lipschitz", "50"]
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
KEYS = ("loss_train", "loss_test", "tau", "beta", "halvings", "flags", "info", "rmse_train", "rmse_test",
        "max_norm_drift", "scaling", "stop_reason")
CONFIGS = {
    "taylor": ["--method", "taylor", "--seed", "3"],
    "taylor4-float32": ["--method", "taylor", "--order", "4", "--dtype", "float32", "--seed", "3"],
    "mm-minibatch": ["--method", "mm", "--batch-size", "100", "--seed", "3"],
    "taylor-seed4": ["--method", "taylor", "--seed", "4"],
}


def flight_log(path, n=400, seed=0):
    """A Neural-Lander-style CSV of ``n`` made-up samples (columns t, z, v, q, u, fa)."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(n, 4))
    cols = [np.arange(n) * 0.01, rng.uniform(0.1, 2, n), *rng.normal(size=(3, n)),
            *(q / np.linalg.norm(q, axis=1, keepdims=True)).T, *rng.uniform(0.3, 0.9, (4, n)),
            *rng.normal(size=(3, n))]
    rows = np.column_stack(cols)
    header = "t,z,vx,vy,vz,qx,qy,qz,qw,u1,u2,u3,u4,fax,fay,faz"
    path.write_text(header + "\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in rows) + "\n")
    return path


def _launch(out, args, log, env):
    return subprocess.Popen([sys.executable, "-m", "spherenet", "train", *RUN, "--data-path", str(log), *args,
                             "--out", str(out)], env={**os.environ, **env}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def _runs(tmp, jobs):
    """Run ``{name: (args, env)}`` two processes at a time; return ``{name: (record, weights)}``."""
    log = flight_log(tmp / "log.csv")
    done = {}
    names = list(jobs)
    for pair in (names[i:i + 2] for i in range(0, len(names), 2)):
        procs = {name: _launch(tmp / name, jobs[name][0], log, jobs[name][1]) for name in pair}
        for name, proc in procs.items():
            _, err = proc.communicate(timeout=300)
            assert proc.returncode == 0, err
            done[name] = (json.loads((tmp / name / "result.json").read_text()),
                          load_arrays(tmp / name / "weights.npz"))
    return done


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("det")
    jobs = {}
    for name, args in CONFIGS.items():
        jobs[f"{name}/a"] = (args, ONE_THREAD)
        if name != "taylor-seed4":
            jobs[f"{name}/b"] = (args, ONE_THREAD)
    jobs["taylor/nojit"] = (CONFIGS["taylor"], {**ONE_THREAD, "NUMBA_DISABLE_JIT": "1"})
    jobs["mm-minibatch/nojit"] = (CONFIGS["mm-minibatch"], {**ONE_THREAD, "NUMBA_DISABLE_JIT": "1"})
    jobs["taylor/blas-default"] = (CONFIGS["taylor"], {})
    return _runs(tmp, jobs)


def _same(a, b) -> bool:
    (ra, wa), (rb, wb) = a, b
    return ({k: ra[k] for k in KEYS} == {k: rb[k] for k in KEYS} and set(wa) == set(wb)
            and all(wa[k].dtype == wb[k].dtype and np.array_equal(wa[k], wb[k]) for k in wa))


@pytest.mark.parametrize("config", ["taylor", "taylor4-float32", "mm-minibatch"])
def test_equal_seeds_give_identical_bits_in_separate_processes(runs, config):
    a, b = runs[f"{config}/a"], runs[f"{config}/b"]
    assert len(a[0]["tau"]) == 6 and a[0]["loss_train"][-1] < a[0]["loss_train"][0]
    assert _same(a, b)


def test_another_seed_gives_other_numbers(runs):
    """The comparison is not vacuous: one seed apart, the records differ."""
    assert not _same(runs["taylor/a"], runs["taylor-seed4/a"])
    assert runs["taylor/a"][0]["loss_train"][-1] != runs["taylor-seed4/a"][0]["loss_train"][-1]


@pytest.mark.parametrize("variant", ["taylor/nojit", "mm-minibatch/nojit", "taylor/blas-default"])
def test_jit_off_and_blas_threads_give_the_same_bits(runs, variant):
    config = variant.split("/")[0]
    assert _same(runs[f"{config}/a"], runs[variant])
