"""The `spherenet` command: every subcommand in quick mode, checked by the files it writes; bad input
ends with one line on stderr, exit status 2, and no result file."""
import json
import subprocess
import sys

import numpy as np
import pytest

from spherenet import experiments
from spherenet.cli import main
from spherenet.results import load_arrays

SMALL = ["--samples", "1500"]


def _read(path):
    return json.loads(path.read_text())


def test_train_without_options_is_the_main_job_and_a_named_rule_keeps_full_batch(tmp_path, monkeypatch):
    monkeypatch.setattr(experiments, "MAIN_BATCH_STEPS", 60)      # the main job's length, shortened for the test
    monkeypatch.setattr(experiments, "FULL_BATCH_ITERATIONS", 3)
    assert main(["train", *SMALL, "--widths", "12-8-3", "--quiet", "--out", str(tmp_path / "main")]) == 0
    r = _read(tmp_path / "main" / "result.json")
    assert (r["method"], r["batch_size"], r["dtype"], r["norm"], r["iterations"]) == (
        "geo-batch", "auto", "float32", "spectral", 60)
    tried = r["batch_selection"]["tried"]                                # the batch size, chosen on validation
    assert [t["batch_size"] for t in tried][:2] == [1024, 512] and r["batch_size_used"] in (1024, 512, 256)
    assert r["batch_size_used"] == min(tried, key=lambda t: t["rmse_validation"])["batch_size"]
    assert tried[0]["rmse_validation"] == next(g["rmse_validation"] for g in r["lipschitz_selection"]["rungs"]
                                               if g["lipschitz"] == r["lipschitz"])    # the ladder's chosen rung
    assert r["average"] == 0.95                                          # the model reported: the iterates' average
    assert r["eval_iterations"] == [0, 50, 60]                          # every 50 steps and at the last
    assert main(["train", *SMALL, "--widths", "12-8-3", "--method", "taylor", "--quiet",
                 "--out", str(tmp_path / "taylor")]) == 0
    r = _read(tmp_path / "taylor" / "result.json")
    assert (r["method"], r["batch_size"], r["dtype"], r["iterations"]) == ("taylor", None, "float64", 3)
    assert r["eval_iterations"] == [0, 1, 2, 3]


def test_train_writes_result_weights_and_figure(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--iterations", "8", *SMALL, "--batch-size", "full", "--seed", "3", "--out", str(out)]) == 0
    r = _read(out / "result.json")
    for key in ("method", "widths", "seed", "iterations", "dtype", "n_train", "n_test", "rmse_train", "rmse_test",
                "loss_train", "loss_test", "tau", "seconds", "seconds_per_iteration", "max_norm_drift"):
        assert key in r, key
    assert (r["method"], r["widths"], r["seed"], r["iterations"]) == ("geo-cg-layer", [12, 25, 30, 15, 3], 3, 8)
    assert r["n_train"] + r["n_test"] == 1500
    assert len(r["loss_train"]) == 9 and len(r["tau"]) == 8
    assert all(b <= a for a, b in zip(r["loss_train"], r["loss_train"][1:]))      # backtracking: monotone
    assert all(0 <= t <= np.pi / 6 for t in r["tau"])
    assert r["max_norm_drift"] < 1e-12
    assert r["rmse_train"] == pytest.approx(np.sqrt(2 * r["loss_train"][-1]) * r["scaling"]["target_factor"],
                                            rel=1e-12)
    # the default pipeline: standard scaling, budget chosen on a validation part, the certificate reported
    assert (r["scaling"]["kind"], r["split"]) == ("StandardScaling", "random")
    assert r["lipschitz"] == r["lipschitz_selection"]["chosen"] == pytest.approx(r["scaling"]["lipschitz"])
    assert 0 < r["lipschitz_lower"] <= r["lipschitz_bound"] <= r["lipschitz_budget"] * (1 + 1e-12)
    assert r["rmse_test_linear"] > 0 and r["rmse_test_mean"] > r["rmse_test_linear"]
    arrays = load_arrays(out / "weights.npz")
    assert [arrays[f"W{i}"].shape for i in range(4)] == [(25, 13), (30, 25), (15, 30), (3, 15)]   # + bias input
    for i in range(4):
        assert np.linalg.norm(arrays[f"W{i}"]) == pytest.approx(arrays["radii"][i], rel=1e-12)
    assert (out / "figures" / "training.png").stat().st_size > 10_000
    assert "RMSE [N]" in capsys.readouterr().out


def test_train_on_two_threads_records_it_and_tracks_one_thread(tmp_path):
    results = []
    for threads in ("1", "2"):
        out = tmp_path / threads
        assert main(["train", "--method", "taylor", "--iterations", "5", "--samples", "6000", "--threads", threads,
                     "--out", str(out)]) == 0
        results.append(_read(out / "result.json"))
    assert [r["threads"] for r in results] == [1, 2]
    np.testing.assert_allclose(results[1]["loss_train"], results[0]["loss_train"], rtol=1e-10)


def test_train_baseline_has_no_tau_and_reports_its_tuning(tmp_path):
    out = tmp_path / "adam"
    assert main(["train", "--method", "adam", "--iterations", "4", *SMALL, "--out", str(out)]) == 0
    r = _read(out / "result.json")
    assert r["tau"] == [] and r["method"] == "adam"
    assert r["lr"] in [row["lr"] for row in r["tuning"]]
    assert len(r["tuning"]) >= 4 and r["max_norm_drift"] is None
    assert "b0" in load_arrays(out / "weights.npz")


def test_train_mm_and_float32(tmp_path):
    out = tmp_path / "mm"
    assert main(["train", "--method", "mm", "--iterations", "5", "--dtype", "float32", *SMALL, "--out",
                 str(out)]) == 0
    r = _read(out / "result.json")
    assert r["dtype"] == "float32" and len(r["tau"]) == 5 and all(0 <= t <= np.pi for t in r["tau"])
    assert load_arrays(out / "weights.npz")["W0"].dtype == np.float32


def test_reproduce_exp1_quick_and_plot(tmp_path):
    out = tmp_path / "exp1"
    assert main(["reproduce", "exp1", "--quick", "--seeds", "1", "--samples", "1500", "--workers", "1",
                 "--out", str(out)]) == 0
    s = _read(out / "summary.json")
    assert s["experiment"] == "exp1" and s["quick"] is True
    taylor, mm = s["taylor"], s["mm"]
    assert taylor["seeds"] == mm["seeds"] == 1
    assert len(taylor["loss_train"]["mean"]) == s["config"]["taylor_iterations"] + 1
    assert len(mm["tau"]["mean"]) == s["config"]["mm_iterations"]
    # The paper's qualitative finding: Algorithm 2's first steps are far shorter than Algorithm 1's.
    assert mm["tau"]["mean"][0] < taylor["tau"]["mean"][0] / 10
    assert len(list((out / "runs").glob("*.json"))) == 2
    figure = out / "figures" / "exp1.png"
    assert figure.stat().st_size > 10_000
    figure.unlink()
    assert main(["plot", str(out)]) == 0
    assert figure.is_file()


def test_reproduce_exp2_quick(tmp_path):
    out = tmp_path / "exp2"
    assert main(["reproduce", "exp2", "--quick", "--seeds", "1", "--samples", "1500", "--workers", "2",
                 "--out", str(out)]) == 0
    s = _read(out / "summary.json")
    grid = np.array(s["rmse_test"]["mean"])
    assert grid.shape == (len(s["depths"]), len(s["hidden"])) and np.isfinite(grid).all()
    assert s["total_run_seconds"] > 0
    assert (out / "figures" / "exp2.png").is_file()


def test_lipschitz_sweep_quick_and_plot(tmp_path, capsys):
    out = tmp_path / "lip"
    assert main(["lipschitz", "--quick", "--points", "3", "--seeds", "1", "--samples", "1500", "--iterations", "15",
                 "--widths", "12-8-3", "--workers", "1", "--out", str(out)]) == 0
    s = _read(out / "summary.json")
    assert s["experiment"] == "lipschitz" and len(s["curve"]) == 3
    K = [p["lipschitz"] for p in s["curve"]]
    assert K == sorted(K) and K[-1] / K[0] == pytest.approx(10 ** 4, rel=1e-9)        # rho over four decades
    for p in s["curve"]:
        assert p["lipschitz_budget"]["mean"] == pytest.approx(p["lipschitz"], rel=1e-12)
        assert 0 < p["lipschitz_lower"]["mean"] <= p["lipschitz_bound"]["mean"] <= p["lipschitz"] * (1 + 1e-12)
    assert s["paper"]["rmse_test"]["n"] == s["adam"]["rmse_test"]["n"] == 1
    assert s["reference"]["rmse_test_linear"] > 0 and s["paper_budget"] > 0
    assert (out / "figures" / "lipschitz.png").stat().st_size > 10_000
    assert "chosen on validation" in capsys.readouterr().out
    (out / "figures" / "lipschitz.png").unlink()
    assert main(["plot", str(out)]) == 0 and (out / "figures" / "lipschitz.png").is_file()


@pytest.mark.parametrize("argv, match", [
    (["lipschitz", "--points", "1"], "--points must be >= 2"),
    (["lipschitz", "--seeds", "0"], "--seeds must be >= 1"),
    (["lipschitz", "--method", "adam"], "invalid choice"),
    (["train", "--lipschitz", "-2"], "--lipschitz must be a finite number > 0"),
    (["train", "--lipschitz", "inf"], "--lipschitz must be a finite number > 0"),
    (["train", "--scaling", "paper", "--lipschitz", "3"], "lipschitz applies to the standard scaling"),
    (["train", "--split", "wind"], "invalid choice"),
])
def test_budget_mistakes_end_with_one_line(tmp_path, capsys, argv, match):
    out = tmp_path / "never"
    try:
        status = main(argv + ["--out", str(out)])
    except SystemExit as exit_:                       # argparse's own usage errors
        status = exit_.code
    assert status == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and match in err[0]
    assert not out.exists()


def test_a_constant_training_feature_ends_with_one_line(tmp_path, capsys):
    from dataclasses import replace

    from spherenet.data import default_problem, write_neural_lander_csv
    train, _ = default_problem(seed=0, n_samples=600)
    X = train.X.copy()
    X[:, 0] = 1.25                                          # the height never changes
    logs = write_neural_lander_csv(tmp_path / "flat.csv", replace(train, X=X))
    out = tmp_path / "never"
    assert main(["train", "--data", "neural-lander", "--data-path", str(logs), "--iterations", "2",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "column 0 is constant" in err[0] and not out.exists()


@pytest.mark.parametrize("experiment", ["exp1", "exp2"])
def test_the_shipped_full_settings_summaries_redraw(tmp_path, experiment):
    """figures/expN holds the summaries behind figures/expN.png: they stay readable by `spherenet plot`."""
    from pathlib import Path
    folder = Path(__file__).resolve().parent.parent / "figures" / experiment
    s = _read(folder / "summary.json")
    assert s["experiment"] == experiment and not s["quick"] and s["config"]["seeds"] == 40
    assert main(["plot", str(folder), "--figures", str(tmp_path)]) == 0
    assert (tmp_path / f"{experiment}.png").stat().st_size > 10_000


def test_check_passes_and_says_so(capsys):
    assert main(["check", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "verdict: all checks passed" in out and out.count("[ok]") == 6


@pytest.mark.parametrize("argv, message", [
    (["train", "--method", "newton"], "invalid choice: 'newton'"),
    (["train", "--widths", "12-x-3"], "widths '12-x-3': expected integers"),
    (["train", "--widths", "12-0-3"], r"widths[1] must be >= 1"),
    (["train", "--widths", "10-5-3"], "maps 12 inputs to 3 outputs"),
    (["train", "--iterations", "-1"], "iterations must be >= 0"),
    (["train", "--data", "neural-fly"], "needs --data-path"),
    (["train", "--data", "neural-lander", "--data-path", "/no/such/file.csv"], "no such file or folder"),
    (["train", "--order", "4", "--method", "mm"], "--order only applies"),
    (["train", "--threads", "0"], "--threads must be >= 1"),
    (["train", "--threads", "2", "--method", "adam"], "--threads applies to the sphere methods"),
    (["reproduce", "exp3"], "invalid choice: 'exp3'"),
    (["reproduce", "exp1", "--seeds", "0"], "--seeds must be >= 1"),
    (["plot", "/no/such/folder"], "no such folder"),
    (["train", "--eval-every", "0"], "--eval-every must be >= 1, got 0"),
    (["train", "--max-seconds", "0"], "--max-seconds must be > 0"),
    (["train", "--max-seconds", "-2.5"], "--max-seconds must be > 0"),
    (["train", "--batch-size", "0"], "batch_size must be >= 1, got 0"),
    (["train", "--batch-size", "foo"], "expected a positive integer, 'full' or 'auto'"),
    (["train", "--batch-size", "auto", "--method", "agd"], "batch size 'auto' (tuned with the learning rate)"),
    (["train", "--batch-size", "auto", "--method", "adam", "--lr", "0.1"], "without a fixed lr"),
    (["train", "--method", "adam", "--lr-grid", ","], "lr_grid is empty"),
    (["train", "--method", "adam", "--lr-grid", "1e-3,abc"], "expected comma-separated learning rates"),
    (["train", "--method", "adam", "--lr-grid", "1e-3,-1"], "lr_grid[1] must be > 0"),
    (["train", "--method", "agd", "--lr", "0.1"], "lr applies to the baselines with a learning rate"),
    (["train", "--method", "rsgd", "--lr-grid", "1,10"], "lr_grid tunes the rate of sgd or adam"),
])
def test_bad_input_is_one_line_and_exit_2(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) if argv[-1] in ("newton", "exp3", "foo", "1e-3,abc") else _no_raise():
        code = main([*argv, *(["--out", str(out)] if argv[0] in ("train", "reproduce") else [])])
        assert code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (out / "result.json").exists()


class _no_raise:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_malformed_data_file_is_refused_with_file_and_line(tmp_path):
    bad = tmp_path / "log.csv"
    header = "t,z,vx,vy,vz,qx,qy,qz,qw,u1,u2,u3,u4,fax,fay,faz\n"
    bad.write_text(header + "0," + ",".join(["1.0"] * 14) + ",oops\n")
    out = tmp_path / "out"
    proc = subprocess.run([sys.executable, "-m", "spherenet", "train", "--data", "neural-lander", "--data-path",
                           str(bad), "--out", str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert f"{bad}:2: column 'faz': not a number" in err
    assert not out.exists() or not any(out.iterdir())
