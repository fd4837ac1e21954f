"""Result files: atomic writes, checksummed arrays, and clear refusals of damaged files."""
import json

import numpy as np
import pytest

from spherenet import results


def test_arrays_round_trip_exactly(tmp_path):
    rng = np.random.default_rng(0)
    arrays = {"W0": rng.normal(size=(3, 4)), "radii": np.array([1.0, 2.0]), "n": np.arange(5)}
    path = results.save_arrays(tmp_path / "a.npz", **arrays)
    back = results.load_arrays(path)
    assert set(back) == set(arrays)
    for k in arrays:
        np.testing.assert_array_equal(back[k], arrays[k])
        assert back[k].dtype == arrays[k].dtype


def test_weights_round_trip(tmp_path):
    W = [np.eye(2), np.ones((1, 2)) / np.sqrt(2)]
    results.save_weights(tmp_path / "w.npz", W, [np.sqrt(2), 1.0], step=np.array(7))
    weights, radii, extra = results.load_weights(tmp_path / "w.npz")
    np.testing.assert_array_equal(weights[1], W[1])
    np.testing.assert_array_equal(radii, [np.sqrt(2), 1.0])
    assert int(extra["step"]) == 7


def test_tampered_file_is_refused(tmp_path):
    path = results.save_arrays(tmp_path / "a.npz", W0=np.ones((2, 2)))
    with np.load(path) as f:
        arrays = {k: f[k] for k in f.files}
    arrays["W0"][0, 0] = 1.0000001
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match="checksum mismatch"):
        results.load_arrays(path)


def test_truncated_file_is_refused(tmp_path):
    path = results.save_arrays(tmp_path / "a.npz", W0=np.ones((50, 50)))
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError, match="not a readable .npz"):
        results.load_arrays(path)


def test_foreign_and_nonfinite_files_are_refused(tmp_path):
    np.savez(tmp_path / "plain.npz", W0=np.ones(2))
    with pytest.raises(ValueError, match="no checksum"):
        results.load_arrays(tmp_path / "plain.npz")
    results.save_arrays(tmp_path / "nan.npz", W0=np.array([1.0, np.nan]))
    with pytest.raises(ValueError, match="'W0' contains non-finite"):
        results.load_arrays(tmp_path / "nan.npz")
    with pytest.raises(FileNotFoundError, match="no such file"):
        results.load_arrays(tmp_path / "missing.npz")


def test_json_is_atomic_and_strict(tmp_path):
    path = results.write_json(tmp_path / "sub" / "r.json", {"a": [1, 2.5, None]})
    assert json.loads(path.read_text()) == {"a": [1, 2.5, None]}
    with pytest.raises(ValueError):
        results.write_json(path, {"a": float("nan")})
    assert json.loads(path.read_text()) == {"a": [1, 2.5, None]}        # the old file is untouched
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]          # no temporary left behind
    path.write_text("{broken")
    with pytest.raises(ValueError, match="not valid JSON"):
        results.read_json(path)


def test_a_damaged_array_header_is_refused_naming_the_file(tmp_path):
    """NumPy's header parser raises tokenize.TokenError for a damaged header of an array large enough that
    zipfile has not checked the CRC yet (found by hypothesis in tests/test_checkpoint.py): one ValueError
    naming the file instead."""
    path = results.save_arrays(tmp_path / "a.npz", W0=np.ones((100, 100)))
    data = path.read_bytes()
    good = b"'shape': (100, 100), }"
    at = data.index(good)
    for bad in (b"'shape': ((100, 100, }", b"'shape': (100, 100), {"):
        (tmp_path / "b.npz").write_bytes(data[:at] + bad + data[at + len(good):])
        with pytest.raises(ValueError, match="b.npz: not a readable .npz file"):
            results.load_arrays(tmp_path / "b.npz")
