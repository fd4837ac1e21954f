"""A trained run, ready to use: ``spherenet.load`` and ``spherenet predict`` give newtons from raw features,
with the run's scaling and certificate, and refuse what they cannot read exactly."""
import json

import numpy as np
import pytest

import spherenet as sn
from spherenet.cli import main
from spherenet.data import write_neural_lander_csv
from spherenet.experiments import load_problem

SETTINGS = ["--samples", "1500", "--iterations", "8", "--widths", "12-10-8-3", "--batch-size", "full"]  # float64


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    assert main(["train", *SETTINGS, "--seed", "2", "--out", str(out)]) == 0
    return out, json.loads((out / "result.json").read_text())


def test_load_predicts_newtons_with_the_runs_numbers(trained):
    out, record = trained
    _, test = load_problem("sim", None, 0, 1500)
    model = sn.load(out)
    F = model.predict(test.X)
    assert F.shape == (len(test.X), 3)
    assert np.sqrt(np.sum((F - test.Y) ** 2) / len(F)) == pytest.approx(record["rmse_test"], rel=1e-10)
    assert model.lipschitz_bound_ == pytest.approx(record["lipschitz_bound"], rel=1e-12)
    assert model.lipschitz_lower_ == record["lipschitz_lower"] and model.scaling_.to_dict() == record["scaling"]


def test_load_predicts_the_main_jobs_numbers_to_float32_rounding(tmp_path):
    """The default run (mini-batches, spectral layers, float32): its model predicts in float64 from the stored
    float32 weights, so it repeats the run's test error to float32's rounding, and its certificate exactly."""
    out = tmp_path / "run"
    assert main(["train", "--samples", "1500", "--iterations", "8", "--widths", "12-10-8-3", "--seed", "2",
                 "--out", str(out)]) == 0
    record = json.loads((out / "result.json").read_text())
    assert (record["method"], record["dtype"], record["norm"]) == ("geo-batch", "float32", "spectral")
    _, test = load_problem("sim", None, 0, 1500)
    model = sn.load(out)
    F = model.predict(test.X)
    assert F.dtype == np.float64
    assert np.sqrt(np.sum((F - test.Y) ** 2) / len(F)) == pytest.approx(record["rmse_test"], rel=1e-5)
    assert model.lipschitz_bound_ == pytest.approx(record["lipschitz_bound"], rel=1e-12)


def test_predict_command_writes_the_same_numbers(trained, tmp_path, capsys):
    out, _ = trained
    _, test = load_problem("sim", None, 0, 1500)
    logs = write_neural_lander_csv(tmp_path / "logs.csv", test)
    assert main(["predict", str(out), "--data-path", str(logs), "--out", str(tmp_path / "p.csv")]) == 0
    table = np.loadtxt(tmp_path / "p.csv", delimiter=",", skiprows=1)
    header = (tmp_path / "p.csv").read_text().splitlines()[0].split(",")
    assert header == ["flight", "t", "fa_x", "fa_y", "fa_z", "fa_x_measured", "fa_y_measured", "fa_z_measured"]
    from spherenet.data import load_neural_lander
    np.testing.assert_allclose(table[:, 2:5], sn.load(out).predict(load_neural_lander(logs).X), rtol=1e-15)
    assert "certified <=" in capsys.readouterr().out


def test_estimator_files_load_the_same_way(tmp_path):
    train, test = load_problem("sim", None, 0, 1500)
    est = sn.SphereNetRegressor(hidden=(6,), iterations=4, lipschitz=300.0).fit(train.X, train.Y)
    path = est.save(tmp_path / "model.npz")
    np.testing.assert_array_equal(sn.load(path).predict(test.X), sn.SphereNetRegressor.load(path).predict(test.X))


@pytest.mark.parametrize("edit, match", [
    (lambda r: r.update(format=1), "result format 1"),
    (lambda r: r.pop("format"), "result format None"),
    (lambda r: r.update(method="adam"), "baseline"),
    (lambda r: r.pop("scaling"), "not a readable"),
])
def test_foreign_results_are_refused(trained, tmp_path, edit, match):
    out, record = trained
    folder = tmp_path / "edited"
    folder.mkdir()
    (folder / "weights.npz").write_bytes((out / "weights.npz").read_bytes())
    changed = dict(record)
    edit(changed)
    (folder / "result.json").write_text(json.dumps(changed))
    with pytest.raises(ValueError, match=match):
        sn.load(folder)


@pytest.mark.parametrize("make, match", [
    (lambda X: X[:, :11], "X has 11 features"),
    (lambda X: np.where(np.arange(X.size).reshape(X.shape) == 7, np.nan, X), "NaN or inf"),
])
def test_bad_inputs_get_one_clear_error(trained, make, match):
    out, _ = trained
    _, test = load_problem("sim", None, 0, 1500)
    with pytest.raises(ValueError, match=match):
        sn.load(out).predict(make(test.X))


def test_predict_command_mistakes_end_with_one_line(trained, tmp_path, capsys):
    out, _ = trained
    assert main(["predict", str(tmp_path / "none"), "--data-path", str(tmp_path)]) == 2
    assert main(["predict", str(out), "--data-path", str(tmp_path / "missing.csv")]) == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 2 and "no such folder" in errors[0] and "no such file or folder" in errors[1]
