"""geo-batch, the automatic step on mini-batches (spherenet/beyond/stochastic.py, docs/beyond.md §7): the
averaged Newton step and the secant curvature against independent recomputations, the steps it takes, never
diverging and never leaving the spheres on several problems and dtypes, the same bits for the same seed and
thread count, a resumed run equal to an uninterrupted one, and the default method and precision with
mini-batches."""
import json
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet import sphere
from spherenet import checkpoint as ck
from spherenet.beyond.stochastic import BatchGeodesicStep, secant_curvature
from spherenet.experiments import DEFAULTS, settings_for
from spherenet.taylor import EPS, newton_safeguard
from spherenet.train import train

WIDTHS = [5, 9, 7, 3]


def problem(seed, n=300, target_scale=1.0):
    """Inputs in the unit ball, targets from a random teacher network plus noise, times ``target_scale``."""
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, WIDTHS[0]))
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1.0)
    teacher = sn.NormalisedMLP(WIDTHS, radius=[2.0, 2.0, 2.0], seed=seed + 100)
    Y = target_scale * (teacher.forward(X) + 0.01 * rng.normal(size=(n, WIDTHS[-1])))
    return X, Y


@settings(deadline=None, max_examples=30)
@given(rho=st.floats(0.0, 0.999),
       slopes=st.lists(st.floats(-1.0, 1.0), min_size=1, max_size=20),
       curvatures=st.lists(st.floats(-5.0, 5.0), min_size=1, max_size=20))
def test_model_step_is_the_newton_step_of_the_weighted_averages(rho, slopes, curvatures):
    rule = BatchGeodesicStep(memory=rho)
    for beta in slopes:
        rule.fold_slope(beta)
    for kappa in curvatures:
        rule.fold_curvature(kappa)

    def average(values):                                           # value j weighs (1 - rho) rho^(n - 1 - j)
        w = (1 - rho) * rho ** np.arange(len(values) - 1, -1, -1.0)
        return float(np.dot(w, values) / w.sum())
    B, K = average(slopes), average(curvatures)
    assert rule.averages() == pytest.approx((B, K), rel=1e-9, abs=1e-12)
    expected = 0.0 if B <= 0 else (min(B / K, EPS) if K > 0 else EPS)
    assert rule.model_step() == pytest.approx(expected, rel=1e-9, abs=1e-15)
    if rho == 0 and slopes[-1] > 0:                                # no memory: Algorithm 1's safeguarded step
        assert rule.model_step() == pytest.approx(newton_safeguard(slopes[-1], curvatures[-1]), rel=1e-12)


@settings(deadline=None, max_examples=50)
@given(J0=st.floats(-10.0, 10.0), beta=st.floats(-10.0, 10.0), kappa=st.floats(-10.0, 10.0),
       t=st.floats(1e-3, 1.0))
def test_the_secant_of_a_parabola_is_its_curvature(J0, beta, kappa, t):
    Jt = J0 - beta * t + kappa * t * t / 2
    assert secant_curvature(J0, beta, t, Jt) == pytest.approx(kappa, abs=1e-9 * (1 + abs(J0) + abs(beta)) / t ** 2)


def test_nothing_known_no_step_and_slope_without_curvature_is_eps():
    rule = BatchGeodesicStep()
    assert rule.model_step() == 0.0 and all(np.isnan(rule.averages()))
    rule.fold_slope(0.3)
    assert rule.model_step() == EPS
    rule.fold_slope(math.nan), rule.fold_curvature(math.inf)       # non-finite values are left out
    assert rule.averages()[0] == pytest.approx(0.3) and np.isnan(rule.averages()[1])


def test_a_secant_below_the_rounding_of_the_losses_is_not_folded():
    rule = BatchGeodesicStep()
    assert rule.resolvable(1.0, 1e-12, np.float32)                 # no K yet: nothing to compare with
    rule.fold_curvature(2.0)                          # K t²/2 = t² against 64 eps |J0|, J0 = 1
    assert rule.resolvable(1.0, 1e-6, np.float64) and not rule.resolvable(1.0, 1e-6, np.float32)
    assert rule.resolvable(1.0, 1e-2, np.float32)


def test_steps_are_the_averaged_newton_steps_halved_on_the_batch():
    X, Y = problem(0)
    h = train(sn.NormalisedMLP(WIDTHS, seed=1), X, Y, BatchGeodesicStep(), 60, batch_size=32, seed=2)
    check = BatchGeodesicStep()
    check.fold_curvature(h.info["kappa_model"][0])                  # the first step's: the jet's
    for k in range(h.iterations):
        check.fold_slope(h.info["beta_batch"][k])
        assert h.info["kappa_model"][k] == check.averages()[1]
        assert h.info["t_model"][k] == check.model_step()
        assert h.tau[k] in (0.0, h.info["t_model"][k] / 2 ** h.halvings[k])
        assert h.tau[k] == 0.0 or h.actual[k] <= 0                  # a step decreases its own batch's loss
        check.fold_curvature(h.info["kappa"][k])                    # the secant (NaN: none, left out)
    assert np.mean(np.isfinite(h.info["kappa"])) > 0.9
    assert np.mean(np.array(h.tau) > 0) > 0.8
    assert min(h.info["fallback"]) == 0                             # Adam's direction, not the gradient


def test_first_curvature_from_every_kth_row_then_the_secant_of_the_trial():
    """Batch 1000, curvature_rows 256: the first curvature is the jet of rows 0, 4, 8, .. (an independent forward
    pass on them), the slope that of the whole batch, and the secant curvature that of the first trial point,
    evaluated here by an independent forward pass on the whole batch."""
    from spherenet.beyond import Geodesic
    from spherenet.beyond.directions import inner
    from spherenet.network import _backward, _direction, _forward_cache
    from spherenet.steps import Iterate
    X, Y = problem(9, n=1000)
    net = sn.NormalisedMLP(WIDTHS, seed=2)
    cache = _forward_cache(net.weights, X)
    J, grads = _backward(net.weights, cache, Y)
    it = Iterate(net.weights, net.radii, X, Y, cache, J, grads, _direction(net.weights, grads, net.radii), J)
    rule = BatchGeodesicStep(curvature_rows=256)
    step = rule(it)
    D = rule.direction.state()                           # the first direction: -Proj(m̂/(sqrt(v̂)+δ))
    m = [D[f"m{i}"] / 0.1 for i in range(3)]
    v = [D[f"v{i}"] / 0.001 for i in range(3)]
    scale = np.sqrt(max(float(a.max()) for a in v))
    direction = [sphere.project_tangent(W, -(a / (np.sqrt(b) + 1e-8 * scale)), mu)
                 for W, a, b, mu in zip(net.weights, m, v, net.radii)]
    curve = Geodesic(net.weights, direction, net.radii)
    jet = curve.loss_jet(_forward_cache(net.weights, X[::4]), X[::4], Y[::4], 2)
    beta = -inner(grads, direction) / curve.speed
    assert step.info["kappa_model"] == pytest.approx(2 * jet[2], rel=1e-9)
    assert step.info["beta_batch"] == pytest.approx(beta, rel=1e-9)
    assert 2 * jet[2] != pytest.approx(2 * curve.loss_jet(cache, X, Y, 2)[2], rel=1e-6)   # not the whole batch
    t = step.info["t_model"]
    F = X
    for i, W in enumerate(curve.point(t)):                          # a plain forward pass at the trial point
        F = F @ W.T if i == 2 else np.maximum(F @ W.T, 0)
    J_t = 0.5 * np.sum((F - Y) ** 2) / len(X)
    assert 0 < t <= EPS and step.info["kappa"] == pytest.approx(2 * (J_t - J + beta * t) / t ** 2, rel=1e-7)


def test_memory_of_the_earlier_rule_is_refused():
    rule = BatchGeodesicStep()
    with pytest.raises(ValueError, match="holds 3 numbers, expected 4: written by an earlier version"):
        rule.restore({"model": np.zeros(3), "k": np.array(0)})


@pytest.mark.parametrize("seed, batch_size, target_scale, dtype", [
    (0, 1, 1.0, np.float64), (1, 7, 1.0, np.float64), (2, 64, 100.0, np.float64), (3, 32, 1e-4, np.float64),
    (4, 16, 1.0, np.float32), (5, 128, 50.0, np.float32),
])
def test_never_diverges_and_never_leaves_the_spheres(seed, batch_size, target_scale, dtype):
    X, Y = problem(seed, target_scale=target_scale)
    net = sn.NormalisedMLP(WIDTHS, radius=[1.0, 3.0, 0.5], seed=seed, dtype=dtype)
    h = train(net, X.astype(dtype), Y.astype(dtype), "geo-batch", 400, batch_size=batch_size, seed=seed)
    assert h.iterations == 400 and not h.stop_reason
    assert np.all(np.isfinite(h.loss_train)) and np.all(np.isfinite(h.tau))
    assert max(h.drift) <= (1e-13 if dtype == np.float64 else 1e-5)
    for W, mu in zip(net.weights, net.radii):
        assert abs(np.linalg.norm(W.astype(np.float64)) - mu) <= (1e-13 if dtype == np.float64 else 1e-5) * mu


def test_it_learns_without_a_learning_rate():
    X, Y = problem(6, n=600)
    net = sn.NormalisedMLP(WIDTHS, radius=[2.0, 2.0, 2.0], seed=0)
    h = train(net, X, Y, "geo-batch", 400, batch_size=32, seed=0)
    assert h.loss_train[-1] < 0.3 * h.loss_train[0]


@pytest.mark.parametrize("threads", [1, 2])
def test_same_seed_and_threads_give_the_same_bits(threads):
    X, Y = problem(7)
    nets = [sn.NormalisedMLP(WIDTHS, seed=3) for _ in range(3)]
    runs = [train(net, X, Y, "geo-batch", 40, batch_size=50, seed=seed, threads=threads)
            for net, seed in zip(nets, (5, 5, 6))]
    a, b = ({k: v for k, v in h.as_dict().items() if k not in ("seconds", "seconds_eval")} for h in runs[:2])
    assert a == b and a["info"]["t_model"] and a["drift"]
    for Wa, Wb in zip(nets[0].weights, nets[1].weights):
        assert np.array_equal(Wa, Wb)
    assert runs[0].loss_train != runs[2].loss_train                # the seed draws other batches


def test_resumed_in_a_new_process_equals_an_uninterrupted_run(tmp_path):
    X, Y = problem(8, n=200)
    expected = train(sn.NormalisedMLP(WIDTHS, seed=1), X, Y, "geo-batch", 25, batch_size=16, seed=4)
    path = tmp_path / "c.npz"
    ck.train_with_checkpoints(path, sn.NormalisedMLP(WIDTHS, seed=1), X, Y, "geo-batch", 11, 4, batch_size=16,
                              seed=4)
    assert "rule.model" in np.load(path).files                      # the averaged model is in the checkpoint
    np.savez(tmp_path / "data.npz", X=X, Y=Y)
    script = textwrap.dedent(f"""
        import json, numpy as np
        from spherenet import checkpoint as ck
        d = np.load({str(tmp_path / 'data.npz')!r})
        h = ck.resume(ck.load_checkpoint({str(path)!r}), d["X"], d["Y"], 14)
        print(json.dumps(h.as_dict()))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
    resumed = json.loads(out.stdout)
    assert resumed["loss_train"] == expected.as_dict()["loss_train"]
    assert resumed["tau"] == expected.as_dict()["tau"] and resumed["info"] == expected.as_dict()["info"]


def test_default_method_is_geo_batch_with_mini_batches_only():
    assert settings_for()["method"] == DEFAULTS["method"] == "geo-cg-layer"
    assert settings_for(batch_size=256)["method"] == "geo-batch"
    assert settings_for(batch_size=256, method=None)["method"] == "geo-batch"
    assert settings_for(batch_size=256, method="geo-cg-layer")["method"] == "geo-cg-layer"
    s = settings_for(batch_size=256)
    assert settings_for(**s) == s                                   # resolved once, kept


def test_bad_options_are_refused():
    with pytest.raises(ValueError, match="memory"):
        BatchGeodesicStep(memory=1.0)
    with pytest.raises(ValueError, match="max_halvings"):
        BatchGeodesicStep(max_halvings=-1)
    with pytest.raises(ValueError, match="curvature_rows"):
        BatchGeodesicStep(curvature_rows=0)


@pytest.mark.parametrize("method, expected", [(None, "geo-batch"), ("geo-cg-layer", "geo-cg-layer")])
def test_cli_batch_size_runs_geo_batch_unless_a_method_is_named(tmp_path, method, expected):
    from spherenet.cli import main
    out = tmp_path / "run"
    args = ["train", "--batch-size", "64", "--iterations", "30", "--samples", "1500", "--lipschitz", "3e4",
            "--out", str(out)] + (["--method", method] if method else [])
    assert main(args) == 0
    record = json.loads((out / "result.json").read_text())
    assert record["method"] == expected and record["batch_size"] == 64
    assert record["dtype"] == "float32"                             # the default with mini-batches
    assert record["max_norm_drift"] <= 1e-6 and record["rmse_test"] < record["rmse_test_mean"]


def test_default_precision_is_float64_for_full_batch_and_float32_with_mini_batches():
    assert settings_for()["dtype"] == "float64" and settings_for(batch_size=64)["dtype"] == "float32"
    assert settings_for(batch_size=64, dtype="float64")["dtype"] == "float64"
    assert sn.SphereNetRegressor(batch_size=64)._checked_params()["dtype"] == np.float32
    assert sn.SphereNetRegressor(batch_size=None)._checked_params()["dtype"] == np.float64


@pytest.mark.parametrize("options, expected", [
    ({}, ("geo-batch", "auto", 4000, np.float32, "spectral")),           # the main job: the batch chosen on validation
    ({"method": "geo-batch"}, ("geo-batch", "auto", 4000, np.float32, "spectral")),
    ({"batch_size": None}, ("geo-cg-layer", None, 200, np.float64, "frobenius")),  # full batch
    ({"method": "taylor"}, ("taylor", None, 200, np.float64, "frobenius")),        # the paper's rules stay full batch
    ({"method": "taylor", "batch_size": 64}, ("taylor", 64, 4000, np.float32, "frobenius")),
    ({"batch_size": 256, "iterations": 7}, ("geo-batch", 256, 7, np.float32, "spectral")),
])
def test_the_estimator_defaults_to_the_main_job_and_keeps_full_batch_for_named_rules(options, expected):
    p = sn.SphereNetRegressor(**options)._checked_params()
    assert (p["method"], p["batch_size"], p["iterations"], p["dtype"], p["norm"]) == expected


def test_time_to_accuracy_figure_draws_every_panel(tmp_path):
    from spherenet.plots.time_to_accuracy import time_to_accuracy_figure
    curve = [(0.0, 3.0), (0.1, 2.0), (0.5, 1.5), (2.0, 1.2)]
    panels = {name: {"curves": {"geo-batch": [curve, curve[:3]], "Adam": [[(0.0, 3.0), (1.0, 1.4)]]},
                     "targets": {"Adam@10ep": 1.4}} for name in ("sim", "neural-fly")}
    path = time_to_accuracy_figure(panels, tmp_path / "f" / "tta.png")
    assert path.stat().st_size > 10_000
