"""Test-set predictions recomputed from a finished run (result.json + weights.npz) and their figure:
they reproduce the errors the run recorded while training, for every kind of run, and `spherenet plot`
draws them."""
import os

import numpy as np
import pytest

from spherenet import experiments as ex
from spherenet.baselines import fit_linear
from spherenet.cli import main
from spherenet.data import simulate_dataset, write_neural_lander_csv
from spherenet.plots.predictions import axis_rmse
from spherenet.results import load_arrays, read_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
TINY = dict(n_samples=800, iterations=4)


def rmse(F, Y) -> float:
    """RMS over samples of the 3-vector error norm [N], as the records' ``rmse_*``."""
    return float(np.sqrt(np.sum((F - Y) ** 2) / len(Y)))


@pytest.mark.parametrize("overrides, rtol", [
    (dict(), 1e-12),                                          # the default: geo-cg-layer, standard scaling
    (dict(method="taylor", scaling="paper"), 1e-12),          # the paper's pipeline
    (dict(lipschitz=3.0, dtype="float32"), 1e-6),
    (dict(split="flights", method="mm"), 1e-12),
    (dict(method="agd"), 1e-12),                              # bias-free baseline, the paper's scaling
    (dict(method="adam"), 1e-12),                             # a baseline with biases
])
def test_predictions_reproduce_the_recorded_errors(overrides, rtol):
    record, arrays = ex.run(dict(TINY, **overrides))
    p = ex.predict_test(record, arrays)
    train, test = ex.load_problem("sim", None, 0, TINY["n_samples"], split=record["split"])
    assert np.array_equal(p["measured"], test.Y)
    assert p["network"].shape == p["linear"].shape == test.Y.shape == (record["n_test"], 3)
    # the record's test RMSE comes from the training loop's loss, a separate code path
    assert rmse(p["network"], p["measured"]) == pytest.approx(record["rmse_test"], rel=rtol)
    assert rmse(p["linear"], p["measured"]) == pytest.approx(record["rmse_test_linear"], rel=1e-12)
    assert np.allclose(p["linear"], fit_linear(train.X, train.Y)(test.X), rtol=0, atol=1e-12)


def test_axis_rmse_splits_the_error_norm():
    rng = np.random.default_rng(0)
    F, Y = rng.normal(size=(50, 3)), rng.normal(size=(50, 3))
    per_axis = axis_rmse(F, Y)
    assert np.allclose(per_axis, [rmse(F[:, [k]], Y[:, [k]]) for k in range(3)], rtol=1e-14)
    assert np.sum(per_axis ** 2) == pytest.approx(rmse(F, Y) ** 2, rel=1e-14)


def test_predictions_refuse_other_data_or_parameters():
    record, arrays = ex.run(dict(TINY))
    with pytest.raises(ValueError, match="not the data it was trained on"):
        ex.predict_test(dict(record, n_test=record["n_test"] + 1), arrays)
    with pytest.raises(ValueError, match="lack W3 for widths"):
        ex.predict_test(record, {k: v for k, v in arrays.items() if k != "W3"})
    with pytest.raises(ValueError, match="names no data_path"):
        ex.predict_test(dict(record, data="neural-lander", data_path=None), arrays)


def test_plot_draws_the_predictions_of_a_training_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--samples", "800", "--iterations", "3", "--out", str(out)]) == 0
    capsys.readouterr()
    assert main(["plot", str(out), "--figures", str(tmp_path / "figs")]) == 0
    written = capsys.readouterr().out
    for name in ("training.png", "predictions.png"):
        assert str(tmp_path / "figs" / name) in written
        data = (tmp_path / "figs" / name).read_bytes()
        assert data[:8] == PNG_SIGNATURE and len(data) > 20_000, name
    (out / "weights.npz").unlink()
    assert main(["plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "weights.npz: no such file" in err, err


def test_plot_reads_real_logs_again_from_the_recorded_path(tmp_path, capsys):
    logs = write_neural_lander_csv(tmp_path / "log.csv", simulate_dataset(800, seed=3, flight_duration=2.0))
    out = tmp_path / "run"
    assert main(["train", "--data", "neural-lander", "--data-path", str(logs), "--iterations", "3",
                 "--batch-size", "full", "--out", str(out)]) == 0                 # float64: the same bits again
    record = read_json(out / "result.json")
    assert record["data_path"] == str(logs)
    p = ex.predict_test(record, load_arrays(out / "weights.npz"))
    assert rmse(p["network"], p["measured"]) == pytest.approx(record["rmse_test"], rel=1e-12)
    assert main(["plot", str(out)]) == 0
    os.rename(logs, tmp_path / "moved.csv")
    ex.load_problem.cache_clear()                   # as in a new process: the file is read again
    capsys.readouterr()
    assert main(["plot", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "log.csv" in err, err
