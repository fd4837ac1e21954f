"""The experiments' summaries are honest about runs that stopped early: per method how many and why, and
every mean is over the runs that reached that iteration (with the count beside it)."""
import json
from pathlib import Path

import numpy as np
import pytest

from spherenet.reproduce import _mean_std, exp2_widths, stop_lines, summarise_exp1, summarise_exp2

REASON = "iteration 2: the loss became non-finite (nan) at tau = 0.5; stopped and kept the last good weights"


def record(method, seed, losses, stop_reason="", widths=(12, 25, 30, 15, 3), rmse=1.0):
    return {"method": method, "seed": seed, "widths": list(widths), "loss_train": losses,
            "loss_test": [2 * v if v is not None else None for v in losses], "tau": [0.1 * seed] * (len(losses) - 1),
            "rmse_test": rmse, "rmse_train": rmse, "seconds": 1.0 + seed, "seconds_per_iteration": 0.1,
            "iterations_done": len(losses) - 1, "stop_reason": stop_reason}


def test_mean_is_over_the_runs_that_reached_each_entry():
    stats = _mean_std([[1.0, 2.0, 3.0, 4.0], [3.0, 4.0], [5.0, None, 7.0]])
    assert stats["n"] == [3, 2, 2, 1]
    np.testing.assert_allclose(stats["mean"], [3.0, 3.0, 5.0, 4.0])
    np.testing.assert_allclose(stats["std"], [np.std([1, 3, 5]), 1.0, 2.0, 0.0])
    assert _mean_std([[None], [None]]) == {"mean": [None], "std": [None], "n": [0]}


def test_exp1_summary_counts_early_stops_and_averages_the_runs_that_went_on():
    records = [record("taylor", 0, [4.0, 3.0, 2.0, 1.0]), record("taylor", 1, [6.0, 5.0], REASON),
               record("mm", 0, [4.0, 3.5, 3.0, 2.5]), record("mm", 1, [4.0, 3.0, 2.0, 1.5])]
    s = summarise_exp1(records)
    taylor = s["taylor"]
    assert taylor["stopped_early"] == {"count": 1, "runs": [
        {"seed": 1, "widths": [12, 25, 30, 15, 3], "iterations_done": 1, "reason": REASON}]}
    assert taylor["loss_train"]["n"] == [2, 2, 1, 1]
    np.testing.assert_allclose(taylor["loss_train"]["mean"], [5.0, 4.0, 2.0, 1.0])   # not cut at the shortest
    assert len(taylor["tau"]["mean"]) == 3 and s["mm"]["stopped_early"]["count"] == 0
    lines = stop_lines({"experiment": "exp1", **s})
    assert lines == ["taylor: 1 of 2 runs stopped early (1 x the loss became non-finite (nan) at tau = 0.5; "
                     "stopped and kept the last good weights)", "mm: 0 of 2 runs stopped early"]
    json.dumps(s, allow_nan=False)                           # writable by results.write_json


def test_exp2_summary_grids_count_early_stops_per_cell():
    hidden, depths = (15, 25), (4,)
    records = [record("taylor", s, [1.0, 0.5], REASON if (w, s) == (25, 1) else "", widths=exp2_widths(w, 4),
                      rmse=None if (w, s) == (25, 1) else float(w + s)) for w in hidden for s in range(2)]
    s = summarise_exp2(records, hidden, depths)
    assert s["stopped_early"] == [[0, 1]] and s["runs"] == 4 and len(s["stopped_runs"]) == 1
    assert s["rmse_test"]["n"] == [[2, 1]]
    np.testing.assert_allclose(s["rmse_test"]["mean"], [[15.5, 25.0]])
    assert stop_lines({"experiment": "exp2", **s})[0].startswith("taylor: 1 of 4 runs stopped early (1 x the loss")


@pytest.mark.parametrize("experiment", ["exp1", "exp2"])
def test_shipped_summaries_without_the_new_fields_print_no_stop_lines(experiment):
    folder = Path(__file__).resolve().parent.parent / "figures" / experiment
    assert stop_lines(json.loads((folder / "summary.json").read_text())) == []
