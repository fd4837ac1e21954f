"""Runs and sweeps: records, resumable sweeps on any executor, deterministic results."""
from concurrent.futures import ThreadPoolExecutor

import pytest

from spherenet import experiments as ex
from spherenet.reproduce import exp2_widths

TINY = dict(n_samples=800, iterations=3)


class CountingExecutor(ThreadPoolExecutor):
    """Any Executor works; this one counts what it is asked to run."""

    def __init__(self):
        super().__init__(max_workers=2)
        self.submitted = 0

    def submit(self, fn, *args, **kwargs):
        self.submitted += 1
        return super().submit(fn, *args, **kwargs)


def test_sweep_streams_runs_and_resumes_without_redoing_them(tmp_path):
    settings = [dict(TINY, seed=s) for s in range(3)]
    with CountingExecutor() as pool:
        first = ex.sweep(settings, tmp_path, pool)
        assert pool.submitted == 3
    assert [r["seed"] for r in first] == [0, 1, 2]
    files = sorted((tmp_path / "runs").glob("*.json"))
    assert len(files) == 3 and len(list((tmp_path / "runs").glob("*.npz"))) == 3
    files[1].unlink()                                      # as if the sweep had been interrupted
    with CountingExecutor() as pool:
        again = ex.sweep(settings, tmp_path, pool)
        assert pool.submitted == 1
    assert [r["loss_train"] for r in again] == [r["loss_train"] for r in first]
    assert not list((tmp_path / "runs").glob(".*.tmp"))


def test_runs_are_deterministic_and_seeds_differ():
    a, _ = ex.run(dict(TINY, seed=1))
    b, _ = ex.run(dict(TINY, seed=1))
    c, _ = ex.run(dict(TINY, seed=2))
    assert a["loss_train"] == b["loss_train"] and a["tau"] == b["tau"]
    assert a["loss_train"] != c["loss_train"]


def test_run_key_depends_on_every_setting():
    base = ex.run_key(dict(TINY))
    assert base == ex.run_key(dict(TINY))
    assert base != ex.run_key(dict(TINY, order=3)) != ex.run_key(dict(TINY, seed=1))


@pytest.mark.parametrize("overrides, match", [
    (dict(method="lbfgs"), "unknown method 'lbfgs'"),
    (dict(data="mnist"), "unknown data source"),
    (dict(dtype="float16"), "unknown dtype"),
    (dict(momentum=0.9), "unknown run setting"),
    (dict(eval_every=0), "eval_every must be >= 1"),
    (dict(max_seconds=0.0), "max_seconds must be > 0"),
    (dict(method="adam", lr_grid=[]), "lr_grid is empty"),
    (dict(method="agd", batch_size="auto"), "applies to sgd and adam"),
    (dict(iterations=-2), "iterations must be >= 0"),
    (dict(widths=(12, 3, 2)), "maps 12 inputs to 3 outputs"),
])
def test_bad_settings(overrides, match):
    with pytest.raises(ValueError, match=match):
        ex.settings_for(**overrides)


def test_exp2_widths():
    assert exp2_widths(15, 4) == (12, 15, 15, 15, 3)
    assert len(exp2_widths(20, 12)) == 13
