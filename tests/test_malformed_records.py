"""Malformed files given back to spherenet (issue 21): `spherenet plot` on a result.json or summary.json that
is a JSON list, lacks keys or holds values of the wrong kind, and estimator files edited with their checksum
recomputed, each end in one line (or one ValueError) naming the file."""
import json

import numpy as np
import pytest

from spherenet.cli import main
from spherenet.estimator import SphereNetRegressor
from spherenet.results import load_weights, save_weights

GOOD_RESULT = {"method": "taylor", "widths": [12, 8, 3], "seed": 0, "loss_train": [1.0, 0.5], "loss_test": [1.2, 0.6],
               "tau": [0.1]}


@pytest.mark.parametrize("name, content, message", [
    ("result.json", [1, 2, 3], "expected a JSON object written by spherenet, found a JSON list"),
    ("result.json", "just a string", "found a JSON str"),
    ("result.json", {k: v for k, v in GOOD_RESULT.items() if k != "loss_train"}, "no key 'loss_train'"),
    ("result.json", {**GOOD_RESULT, "widths": 12}, "not a complete spherenet record (TypeError"),
    ("result.json", {**GOOD_RESULT, "loss_train": [[1.0], "x"]}, "not a complete spherenet record"),
    ("summary.json", {"experiment": "exp1"}, "no key 'taylor'"),
    ("summary.json", {"experiment": "exp2", "hidden": [15], "depths": [4]}, "no key 'rmse_train'"),
    ("summary.json", [], "found a JSON list"),
])
def test_plot_of_a_malformed_record_is_one_line_naming_the_file(tmp_path, capsys, name, content, message):
    (tmp_path / name).write_text(json.dumps(content))
    assert main(["plot", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert f"{tmp_path / name}: " in err and message in err, err
    assert not (tmp_path / "figures").exists() or not any((tmp_path / "figures").iterdir())


def test_plot_of_a_good_record_still_draws(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--iterations", "3", "--samples", "600", "--widths", "12-8-3", "--lipschitz", "500",
                 "--out", str(out), "--quiet"]) == 0
    (out / "figures" / "training.png").unlink()
    assert main(["plot", str(out)]) == 0
    for figure in ("training.png", "predictions.png"):
        assert (out / "figures" / figure).stat().st_size > 10_000


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), rng.normal(size=(60, 2))
    path = SphereNetRegressor(hidden=(5,), iterations=3).fit(X, y).save(tmp_path_factory.mktemp("est") / "m.npz")
    return path, X


def _edited(path, tmp_path, **entries):
    """The file with some JSON entries replaced by raw text, saved with a valid checksum."""
    weights, radii, extra = load_weights(path)
    extra = {**extra, **{k: np.array(v) for k, v in entries.items()}}
    return save_weights(tmp_path / "edited.npz", weights, radii, **extra)


@pytest.mark.parametrize("entries, message", [
    ({"state": "{not json"}, "JSONDecodeError"),
    ({"params": "[1, 2]"}, "not a valid SphereNetRegressor file"),
    ({"history": json.dumps({"method": "taylor"})}, "'loss_train'"),
    ({"history": "42"}, "not a valid SphereNetRegressor file"),
    ({"scaling": json.dumps({"kind": "PaperScaling"})}, "missing the key 'p_op'"),
    ({"scaling": "[]"}, "PaperScaling"),
    ({"state": json.dumps({"kind": "SphereNetRegressor", "format": 1})}, "'y_1d'"),
    ({"params": json.dumps({"hidden": "many"})}, "hidden must be a sequence of positive integers"),
])
def test_an_edited_estimator_file_is_refused_naming_it(saved, tmp_path, entries, message):
    path, X = saved
    state = json.loads(str(load_weights(path)[2]["state"]))
    if "state" in entries and entries["state"].startswith("{\"kind\""):
        entries = {"state": json.dumps({k: v for k, v in state.items() if k != "y_1d"})}
    edited = _edited(path, tmp_path, **entries)
    with pytest.raises(ValueError) as info:
        SphereNetRegressor.load(edited).predict(X)
    assert str(edited) in str(info.value) and message in str(info.value), str(info.value)
