"""batch_size="auto" of a sphere method: halved from 1024 while the validation error falls (budget.select_batch_size)."""
import numpy as np
import pytest

import spherenet as sn
from spherenet import budget
from spherenet.experiments import load_problem, network_widths, run, settings_for

SMALL = dict(n_samples=3000, widths=(12, 8, 3), iterations=40, eval_every=40, method="geo-batch", batch_size="auto")


def scripted(monkeypatch, errors: dict):
    """``validation_error`` replaced by a table ``batch size -> error``; returns the sizes it was asked for."""
    asked = []

    def fake(X, Y, held_out, lipschitz, batch_size=None, **run):
        asked.append(batch_size)
        return errors[batch_size]
    monkeypatch.setattr(budget, "validation_error", fake)
    return asked


def walk(n_fit=10_000, first_error=None):
    held_out = np.zeros(n_fit + 100, dtype=bool)
    held_out[n_fit:] = True
    return budget.select_batch_size(np.zeros((n_fit + 100, 2)), np.zeros((n_fit + 100, 1)), held_out, 1.0,
                                    (3, 4, 1), "geo-batch", first_error=first_error)


@pytest.mark.parametrize("errors, chosen, asked", [
    ({1024: 1.0, 512: 1.1}, 1024, [1024, 512]),                   # 512 worse: stay
    ({1024: 1.0, 512: 0.9, 256: 0.95}, 512, [1024, 512, 256]),    # 512 better, 256 worse
    ({1024: 1.0, 512: 0.9, 256: 0.8}, 256, [1024, 512, 256]),     # down to the smallest size, no further
    ({1024: 1.0, 512: 1.0}, 1024, [1024, 512]),                   # a tie keeps the larger (and stops)
])
def test_the_walk_halves_while_the_error_falls(monkeypatch, errors, chosen, asked):
    seen = scripted(monkeypatch, errors)
    size, table = walk()
    assert size == chosen == table["chosen"] and seen == asked
    assert [t["batch_size"] for t in table["tried"]] == asked
    assert [t["rmse_validation"] for t in table["tried"]] == [errors[b] for b in asked]


def test_a_known_first_error_is_not_trained_again_and_full_batch_sizes_are_not_repeated(monkeypatch):
    seen = scripted(monkeypatch, {1024: 9.0, 512: 0.9, 256: 0.8})
    assert walk(first_error=1.0)[0] == 256 and seen == [512, 256]
    seen.clear()
    size, table = walk(n_fit=400)                                  # 1024 and 512 are both full batch here
    assert size == 1024 and seen == [1024] and len(table["tried"]) == 1


def test_the_ladders_chosen_rung_is_the_walks_first_error_and_auto_equals_the_explicit_run():
    """The first error reused from the ladder is the one ``validation_error`` computes at 1024 (same run, same
    bits), and a run with batch "auto" equals one given its chosen budget and batch size."""
    auto, arrays_auto = run(dict(SMALL, seed=2))
    assert auto["batch_size"] == "auto" and auto["batch_size_used"] in (1024, 512, 256)
    K = auto["lipschitz_selection"]["chosen"]
    s = settings_for(**SMALL, seed=2)
    train_part, _ = load_problem(s["data"], s["data_path"], s["data_seed"], s["n_samples"], split=s["split"])
    held_out = budget.validation_rows(train_part, s["split"], s["data_seed"])
    first = budget.validation_error(np.asarray(train_part.X), np.asarray(train_part.Y), held_out, K,
                                    network_widths(s), "geo-batch", seed=2, dtype=np.float32, batch_size=1024,
                                    norm="spectral", iterations=budget.RUNG_ITERATIONS)
    assert first == auto["batch_selection"]["tried"][0]["rmse_validation"]
    explicit, arrays = run(dict(SMALL, seed=2, lipschitz=K, batch_size=auto["batch_size_used"]))
    assert explicit["loss_test"] == auto["loss_test"] and explicit["tau"] == auto["tau"]
    assert all(np.array_equal(arrays[k], arrays_auto[k]) for k in arrays)
    assert auto["seconds_tuning"] == pytest.approx(auto["lipschitz_selection"]["seconds"]
                                                   + auto["batch_selection"]["seconds"])


def test_auto_with_a_given_budget_walks_from_a_run_of_its_own_and_the_paper_scaling_takes_1024():
    given, _ = run(dict(SMALL, lipschitz=2000.0))
    assert given["lipschitz_selection"] is None and len(given["batch_selection"]["tried"]) >= 2
    paper, _ = run(dict(SMALL, scaling="paper", norm="frobenius"))
    assert paper["batch_size_used"] == 1024 and paper["batch_selection"] is None


def test_the_estimator_chooses_the_batch_size_and_keeps_the_table():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2400, 4))
    y = np.sin(X[:, 0]) + 0.1 * rng.standard_normal(2400)
    model = sn.SphereNetRegressor(hidden=(8,), iterations=40).fit(X, y)
    assert model.batch_size_ == model.batch_selection_["chosen"] in (1024, 512, 256)
    assert model.batch_selection_["tried"][0]["rmse_validation"] == next(
        g["rmse_validation"] for g in model.lipschitz_selection_["rungs"]
        if g["lipschitz"] == model.lipschitz_selection_["chosen"])
    fixed = sn.SphereNetRegressor(hidden=(8,), iterations=5, batch_size=64).fit(X, y)
    assert fixed.batch_size_ == 64 and fixed.batch_selection_ is None


def test_the_ladder_and_the_walk_take_the_validation_rows_as_a_list(monkeypatch):
    scripted(monkeypatch, {None: 1.0, 1024: 1.0, 512: 2.0})
    mask = [False] * 900 + [True] * 100
    X, Y = np.random.default_rng(0).standard_normal((1000, 2)), np.random.default_rng(1).standard_normal((1000, 1))
    _, table = budget.select_lipschitz(X, Y, mask, (3, 4, 1))
    assert (table["n_fit"], table["n_validation"]) == (900, 100)
    assert budget.select_batch_size(X, Y, mask, 1.0, (3, 4, 1), "geo-batch")[0] == 1024
