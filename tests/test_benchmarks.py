"""The benchmark scripts still run: each once with the smallest settings (a smoke test, not a timing —
timings live in benchmarks/README.md). ``bench_beyond.py`` is left out: it redraws the shipped figures."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

CASES = {
    "bench_kernels.py": (["--repeats", "1"], "relu_mask"),
    "bench_jets.py": (["--repeats", "1", "--dtype", "float32"], "jet/forward"),
    "bench_iteration.py": (["--repeats", "1", "--dtype", "float64"], "floor: the products alone"),
    "bench_iteration.py --stages": (["--stages", "--repeats", "1", "--dtype", "float32"], "acceptance forward"),
    "bench_scaling.py": (["--repeats", "1"], "measured exponent"),
    "bench_majorant.py": (["--repeats", "1", "--iterations", "2", "--late", "2", "--survey", "0", "--data",
                           "random"], "search %"),
    "bench_long_run.py": (["--updates", "1000"], "mm-closed"),
    "bench_memory.py": (["--samples", "2500", "--iterations", "1"], "peak MB"),
    "bench_checkpoint.py": (["--iterations", "3", "--repeats", "1", "--samples", "2000", "--inline"],
                            "checkpoint every 1"),
    "bench_batch_drift.py": (["--steps", "300"], "float32"),
    "bench_batch_gap.py": (["--steps", "20", "--samples", "2000"], "geo-batch, spectral layers"),
    "bench_time_to_accuracy.py": (["--samples", "1500", "--seeds", "1", "--epochs", "2", "--iterations", "3",
                                   "--rho", "1e-3", "--workers", "1", "--targets", "5", "--methods", "geo-cg-layer",
                                   "geo-batch", "geo-batch spectral", "torch Adam lr 1e-3", "--out", "o"],
                                  "| geo-batch spectral | 1 |"),
    "bench_tight_budget.py": (["--steps", "20", "--budgets", "474"], "frobenius"),
    "bench_batch_momentum.py": (["--seeds", "1", "--epochs", "1", "--only", "30,000", "--workers", "1"],
                                "(0.95, 0.999)"),
    "bench_averaging.py": (["--seeds", "1", "--steps", "16", "--only", "30,000", "--workers", "1"],
                           "| 0 (the last iterate) |"),
    "bench_agd.py": (["--seeds", "1", "--iterations", "2", "--samples", "1500"], "the authors' conventions"),
    "bench_main_job.py": (["--seeds", "1", "--steps", "3", "--samples", "1500", "--workers", "1", "--out", "o"],
                          "Adam, batch and lr tuned, same seconds"),
    "bench_baselines.py": (["--seeds", "1", "--seconds", "0.1", "--samples", "1500", "--iterations", "2",
                            "--workers", "1", "--only", "Adam", "--out", "bb"], "least squares with a bias"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_benchmark_script_runs(case, tmp_path):
    if case == "bench_memory.py" and not Path("/proc/self/status").exists():
        pytest.skip("bench_memory.py reads /proc (Linux)")
    args, expected = CASES[case]
    script = ROOT / "benchmarks" / case.split()[0]
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(script), *args], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert expected in done.stdout


def test_torch_parity_script_passes_when_torch_is_installed(tmp_path):
    """spherenet's Adam and SGD equal torch.optim's step for step (relative 1e-10); torch is optional."""
    pytest.importorskip("torch")
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_torch_parity.py"), "--steps", "50"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "verdict: spherenet's Adam and SGD equal PyTorch's" in done.stdout
    assert done.stdout.count(": ok") == 2


def test_step_cost_script_runs_when_torch_is_installed(tmp_path):
    pytest.importorskip("torch")
    env = os.environ | {"OPENBLAS_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_step_cost.py"), "--steps", "30",
                           "--rounds", "1"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ms/step, PyTorch Adam" in done.stdout


def test_a_checkout_against_itself_computes_the_same_bits(tmp_path):
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_against.py"), str(ROOT), "--rounds", "1",
                           "--iterations", "2", "--methods", "taylor"], cwd=tmp_path, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines()[-1].split()[-1] == "True"
    bad = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_against.py"), str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode != 0 and "is not a spherenet checkout" in bad.stderr
