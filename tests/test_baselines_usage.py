"""Baselines as their users run them: standardised data owned by the baseline (errors in the raw units), the
batch size tuned with the rate, evaluation every N iterations and time budgets — for the baselines and for
the sphere rules' loop."""
import math

import numpy as np
import pytest

import spherenet as sn
from spherenet import baselines as bl
from spherenet import experiments as ex
from spherenet.train import train

WIDTHS = [5, 7, 6, 3]


def problem(N=60, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((N, WIDTHS[0]))
    Y = np.tanh(X[:, :3]) * X[:, 3:4] + 0.05 * rng.standard_normal((N, 3))
    return X, Y


@pytest.mark.parametrize("name", ["sgd", "adam", "agd"])
def test_standardised_baselines_do_not_depend_on_the_units(name):
    """x -> a ⊙ x + c and y -> 1000 y + d (other units, offsets) leave a standardising baseline's trajectory
    unchanged: predictions scale by 1000 and shift by d, recorded losses scale by 1000²."""
    X, Y = problem()
    Xt, Yt = problem(N=20, seed=1)
    a, c = np.array([1e-3, 2.0, 50.0, 0.5, 7.0]), np.array([3.0, -1.0, 100.0, 0.0, 2.0])
    d = np.array([10.0, -5.0, 1.0])
    lr = None if name == "agd" else 0.05
    p1, h1, _ = bl.run_baseline(name, WIDTHS, X, Y, Xt, Yt, iterations=15, lr=lr)
    p2, h2, _ = bl.run_baseline(name, WIDTHS, a * X + c, 1000 * Y + d, a * Xt + c, 1000 * Yt + d,
                                iterations=15, lr=lr)
    np.testing.assert_allclose(p2(a * Xt + c), 1000 * p1(Xt) + d, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(h2.loss_test, 1e6 * np.array(h1.loss_test), rtol=1e-9)
    # the recorded loss is in the raw units: 1/(2N) Σ ||prediction - y||²
    assert h1.loss_test[-1] == pytest.approx(0.5 * np.sum((p1(Xt) - Yt) ** 2) / len(Yt), rel=1e-12)
    assert h1.loss_train[-1] == pytest.approx(0.5 * np.sum((p1(X) - Y) ** 2) / len(Y), rel=1e-12)
    # and it is not what the unstandardised network would give
    raw, h_raw, _ = bl.run_baseline(name, WIDTHS, X, Y, Xt, Yt, iterations=15, lr=lr, standardise=False)
    assert h_raw.loss_test[-1] != pytest.approx(h1.loss_test[-1], rel=1e-6)


def test_standardiser_maps_back_and_forth():
    X, Y = problem()
    X[:, 2] = 4.0                                                     # a constant feature: centred only
    s = bl.Standardiser.fit(X, Y)
    Xs, Ys = s.transform_inputs(X), s.transform_targets(Y)
    np.testing.assert_allclose(Xs.mean(0), 0, atol=1e-14)
    np.testing.assert_allclose(Xs.std(0), [1, 1, 0, 1, 1], atol=1e-14)
    np.testing.assert_allclose(s.inverse_targets(Ys), Y, rtol=1e-14, atol=1e-14)
    F = Ys + 0.1
    J_phys = bl.weighted_loss(F, Ys, s.loss_weights)
    assert J_phys == pytest.approx(0.5 * np.sum((s.inverse_targets(F) - Y) ** 2) / len(Y), rel=1e-13)
    assert s.rmse_newtons(J_phys) == pytest.approx(math.sqrt(2 * J_phys))


def test_batch_size_auto_is_tuned_with_the_rate_on_validation():
    X, Y = problem(N=400)
    pred, h, table = bl.run_baseline("adam", WIDTHS, X, Y, iterations=30, batch_size="auto",
                                     grid=[1e-3, 1e-2, 1e-1])
    n_fit = 400 - 80
    batches = [b for b in bl.AUTO_BATCH_SIZES if b is None or b < n_fit]
    assert {r["batch_size"] for r in table} == set(batches) == {None, 256}
    best = [r for r in table if r.get("best")]
    assert len(best) == 1 and best[0] == min((r for r in table if r["status"] == "ok"),
                                             key=lambda r: r["val_loss"])
    assert (pred.lr, pred.batch_size) == (best[0]["lr"], best[0]["batch_size"]) and pred.seconds_tuning > 0
    assert "batch" in bl.format_tuning(table)
    with pytest.raises(ValueError, match="auto"):
        bl.run_baseline("agd", WIDTHS, X, Y, batch_size="auto")
    with pytest.raises(ValueError, match="batch_size"):
        bl.run_baseline("adam", WIDTHS, X, Y, batch_size="big")


@pytest.mark.parametrize("batch_size", [None, 16])
def test_eval_every_records_less_and_changes_no_step(batch_size):
    X, Y = problem()
    Xt, Yt = problem(N=20, seed=1)
    run = dict(iterations=11, X_test=Xt, Y_test=Yt, batch_size=batch_size, seed=2)
    p1, h1 = bl.train_adam(WIDTHS, X, Y, 0.01, **run)
    p4, h4 = bl.train_adam(WIDTHS, X, Y, 0.01, eval_every=4, **run)
    assert all(np.array_equal(a, b) for a, b in zip(p1, p4)) and h1.actual == h4.actual
    assert h4.eval_iterations == [0, 4, 8, 11] and h1.eval_iterations == list(range(12))
    assert h4.loss_test == [h1.loss_test[k] for k in h4.eval_iterations]
    expected_train = h1.loss_train if batch_size is None else [h1.loss_train[k] for k in h4.eval_iterations]
    assert h4.loss_train == expected_train
    assert h4.seconds_eval > 0 and h4.test_iterations() == [0, 4, 8, 11]


@pytest.mark.parametrize("batch_size", [None, 30])
def test_sphere_rules_evaluate_every_n_and_stop_on_a_time_budget(batch_size):
    X, Y = problem()
    Xt, Yt = problem(N=20, seed=1)
    X, Xt = X / np.linalg.norm(X, axis=1, keepdims=True), Xt / np.linalg.norm(Xt, axis=1, keepdims=True)
    nets = [sn.NormalisedMLP(WIDTHS, seed=1) for _ in range(2)]
    h1 = train(nets[0], X, 0.1 * Y, "taylor", 7, Xt, 0.1 * Yt, batch_size=batch_size)
    h3 = train(nets[1], X, 0.1 * Y, "taylor", 7, Xt, 0.1 * Yt, batch_size=batch_size, eval_every=3)
    assert all(np.array_equal(a, b) for a, b in zip(nets[0].weights, nets[1].weights)) and h1.tau == h3.tau
    assert h3.eval_iterations == [0, 3, 6, 7] and h3.loss_test == [h1.loss_test[k] for k in (0, 3, 6, 7)]
    assert len(h3.loss_train) == (8 if batch_size is None else 4)
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    h = train(net, X, 0.1 * Y, "geo-cg-layer", 10**6, Xt, 0.1 * Yt, batch_size=batch_size, max_seconds=0.05)
    assert "time budget of 0.05 s" in h.stop_reason and 0 < h.iterations < 10**6
    assert h.seconds[-1] >= 0.05 and (h.iterations == 1 or h.seconds[-2] < 0.05)
    assert h.eval_iterations[-1] == h.iterations                       # the last iteration is evaluated
    for bad, match in ((dict(eval_every=0), "eval_every"), (dict(max_seconds=0.0), "max_seconds"),
                       (dict(max_seconds=float("nan")), "max_seconds")):
        with pytest.raises(ValueError, match=match):
            train(sn.NormalisedMLP(WIDTHS), X, 0.1 * Y, "taylor", 2, **bad)


def test_experiment_runs_give_baselines_the_raw_data():
    """The record's RMSE is that of the saved parameters on the RAW test flights, in newtons."""
    settings = dict(n_samples=1500, iterations=6, method="adam", lr=0.01, eval_every=4)
    record, arrays = ex.run(settings)
    train_data, test_data = ex.load_problem("sim", None, 0, 1500)
    s = bl.Standardiser.fit(train_data.X, train_data.Y)
    assert record["scaling"] == s.to_dict() and record["eval_iterations"] == [0, 4, 6]
    assert list(arrays) == ["W0", "b0", "W1", "b1", "W2", "b2", "W3", "b3"]
    pred = bl.Predictor("adam", list(arrays.values()), True,
                        standardiser=s)
    rmse = math.sqrt(np.mean(np.sum((pred(test_data.X) - test_data.Y) ** 2, axis=1)))
    assert record["rmse_test"] == pytest.approx(rmse, rel=1e-10)
    assert record["lr"] == 0.01 and "tuning" not in record and record["seconds_train"] == record["seconds"]
    agd, _ = ex.run(dict(n_samples=1500, iterations=6, method="agd"))
    assert agd["scaling"]["kind"] == "Standardiser" and agd["info"]["eta"][0] > 0


class _Terminal:
    """A stand-in stderr that says it is a terminal and keeps what is written."""

    def __init__(self):
        self.text = ""

    def isatty(self):
        return True

    def write(self, s):
        self.text += s

    def flush(self):
        pass


@pytest.mark.parametrize("quiet", [False, True])
def test_progress_bars_show_on_a_terminal_unless_quiet(monkeypatch, quiet):
    from spherenet import progress
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    X, Y = problem(N=100)
    bl.run_baseline("adam", WIDTHS, X, Y, iterations=20, grid=[1e-2, 1e-1], quiet=quiet)
    assert progress.enabled(quiet) is (not quiet)
    assert ("tuning adam" in term.text and "training adam" in term.text) is (not quiet)
    assert (term.text == "") is quiet


def test_progress_is_off_when_stderr_is_not_a_terminal(capsys):
    X, Y = problem(N=100)
    bl.run_baseline("agd", WIDTHS, X, Y, iterations=5, quiet=False)
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", ["adam", "agd", "rsgd"])
def test_run_baseline_trains_in_the_dtype_asked_for(name):
    X, Y = problem()
    pred, h, _ = bl.run_baseline(name, WIDTHS, X, Y, iterations=4, lr=None if name == "agd" else 0.01,
                                 dtype=np.float32)
    assert all(p.dtype == np.float32 for p in pred.params) and h.loss_train[-1] < h.loss_train[0]


def test_histories_from_before_eval_every_still_read_and_resume():
    X, Y = problem()
    X = X / np.linalg.norm(X, axis=1, keepdims=True)
    net = sn.NormalisedMLP(WIDTHS, seed=0)
    h = train(net, X, 0.1 * Y, "geo-cg-layer", 3, X, 0.1 * Y)
    old = {k: v for k, v in h.as_dict().items() if k not in ("eval_iterations", "seconds_eval")}
    back = type(h).from_dict(old)
    assert back.eval_iterations == [] and back.test_iterations() == [0, 1, 2, 3]
    more = train(net, X, 0.1 * Y, "geo-cg-layer", 2, X, 0.1 * Y, resume=back)
    assert more.eval_iterations == [0, 1, 2, 3, 4, 5] and len(more.loss_test) == 6
