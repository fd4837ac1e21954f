"""Spectrally normalised layers (spherenet/spectral.py, docs/beyond.md §8): the top singular pair against an SVD,
the normalised weights' spectral norms, the pulled-back gradient against central differences of the
normalised network's loss, and training with ``norm="spectral"``: on the spheres, the certificate at the budget
at every step, the same bits for the same seed, a resumed run equal to an uninterrupted one, the estimator and
the command line; refused where it cannot apply."""
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet import cli
from spherenet.network import loss, loss_and_grad
from spherenet.spectral import SpectralNormalisation, normalisation_for, top_singular
from spherenet.train import train

WIDTHS = [5, 9, 7, 3]


def problem(seed, n=300):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, WIDTHS[0]))
    X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1.0)
    teacher = sn.NormalisedMLP(WIDTHS, radius=[3.0, 3.0, 3.0], seed=seed + 100)
    return X, teacher.forward(X) + 0.01 * rng.normal(size=(n, WIDTHS[-1]))


@settings(deadline=None, max_examples=40)
@given(m=st.integers(1, 12), n=st.integers(1, 12), seed=st.integers(0, 2 ** 16))
def test_top_singular_is_the_svds(m, n, seed):
    W = np.random.default_rng(seed).normal(size=(m, n))
    s, u, v = top_singular(W)
    S = np.linalg.svd(W, compute_uv=False)
    assert s == pytest.approx(S[0], rel=1e-13)
    assert np.allclose(W @ v, s * u, atol=1e-12 * S[0]) and np.linalg.norm(u) == pytest.approx(1, abs=1e-13)
    if len(S) > 1 and S[1] < 0.9 * S[0]:                      # a separated top value: the pair is determined
        assert np.allclose(W.T @ u, s * v, atol=1e-10 * S[0])


@settings(deadline=None, max_examples=40)
@given(m=st.integers(1, 12), n=st.integers(1, 12), seed=st.integers(0, 2 ** 16), step=st.floats(0.0, 0.3))
def test_top_singular_from_a_nearby_start_is_the_svds(m, n, seed, step):
    """Warm-started (the pair of a matrix one step away): the same pair, sigma_1 never above the SVD's."""
    rng = np.random.default_rng(seed)
    W0 = rng.normal(size=(m, n))
    W = W0 + step * np.linalg.norm(W0) / np.sqrt(W0.size) * rng.normal(size=(m, n))
    _, u0, v0 = top_singular(W0)
    s, u, v = top_singular(W, start=u0 if m <= n else v0)
    S = np.linalg.svd(W, compute_uv=False)
    assert S[0] * (1 - 1e-12) <= s <= S[0] * (1 + 1e-13)
    assert np.allclose(W @ v, s * u, atol=1e-10 * S[0]) and np.linalg.norm(u) == pytest.approx(1, abs=1e-13)
    if len(S) > 1 and S[1] < 0.9 * S[0]:
        assert np.allclose(W.T @ u, s * v, atol=1e-8 * S[0])


def test_zero_matrix_is_refused():
    with pytest.raises(ValueError, match="zero matrix"):
        top_singular(np.zeros((2, 3)))


@settings(deadline=None, max_examples=20)
@given(seed=st.integers(0, 2 ** 16), scale=st.floats(0.1, 10.0))
def test_normalised_weights_have_the_radii_as_spectral_norms_and_ignore_scale(seed, scale):
    net = sn.NormalisedMLP(WIDTHS, radius=[0.5, 2.0, 1.5], seed=seed)
    norm = SpectralNormalisation(net.radii)
    E = norm.effective(net.weights)
    assert np.allclose([np.linalg.norm(Ei, 2) for Ei in E], net.radii, rtol=1e-13, atol=0)
    scaled = norm.effective([scale * W for W in net.weights])
    assert all(np.allclose(a, b, rtol=1e-12, atol=0) for a, b in zip(scaled, E))
    assert norm.network(net).spectral_norm_product() == pytest.approx(np.prod(net.radii), rel=1e-12)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_pulled_back_gradient_matches_central_differences(seed):
    X, Y = problem(seed, n=50)
    net = sn.NormalisedMLP(WIDTHS, radius=[1.0, 2.0, 0.5], seed=seed)
    norm = SpectralNormalisation(net.radii)
    _, G = loss_and_grad(norm.effective(net.weights), X, Y)
    grads = norm.pullback(net.weights, G)
    rng = np.random.default_rng(seed + 7)
    for i, W in enumerate(net.weights):
        assert abs(np.vdot(grads[i], W)) <= 1e-13 * np.linalg.norm(grads[i]) * np.linalg.norm(W)   # tangent
        D = rng.normal(size=W.shape)
        h = 1e-5

        def J(t, i=i, D=D):
            moved = [Wj + t * D if j == i else Wj for j, Wj in enumerate(net.weights)]
            return loss(SpectralNormalisation(net.radii).effective(moved), X, Y)
        fd = (J(h) - J(-h)) / (2 * h)
        assert np.vdot(grads[i], D) == pytest.approx(fd, rel=1e-7, abs=1e-12)


class Watched:
    """geo-batch, keeping every point it steps from."""

    def __init__(self):
        self.rule, self.points = sn.train.make_rule("geo-batch"), []

    def __getattr__(self, name):
        return getattr(self.rule, name)

    def __call__(self, it):
        self.points.append([W.copy() for W in it.weights])
        return self.rule(it)


def test_training_keeps_the_spheres_and_the_certificate_at_every_step():
    X, Y = problem(3)
    net = sn.NormalisedMLP(WIDTHS, radius=[1.0, 2.0, 0.5], seed=3)
    rule = Watched()
    history = train(net, X, Y, rule, 60, batch_size=32, seed=4, norm="spectral")
    assert history.iterations == 60 and max(history.drift) < 1e-13
    for weights in rule.points + [net.weights]:
        E = SpectralNormalisation(net.radii).effective(weights)
        assert np.prod([np.linalg.norm(Ei, 2) for Ei in E]) == pytest.approx(1.0, rel=1e-12)
    assert history.loss_train[-1] < 0.5 * history.loss_train[0]


def test_same_seed_same_bits_and_it_differs_from_frobenius():
    X, Y = problem(5)
    runs = []
    for norm in ("spectral", "spectral", "frobenius"):
        net = sn.NormalisedMLP(WIDTHS, seed=5)
        h = train(net, X, Y, "geo-batch", 30, batch_size=50, seed=6, norm=norm)
        runs.append((h.loss_train, [W.copy() for W in net.weights]))
    assert runs[0][0] == runs[1][0] and all(np.array_equal(a, b) for a, b in zip(runs[0][1], runs[1][1]))
    assert runs[0][0] != runs[2][0]


def test_rules_with_jets_and_unknown_norms_are_refused():
    X, Y = problem(0, n=40)
    net = sn.NormalisedMLP(WIDTHS, seed=0)
    with pytest.raises(ValueError, match="needs a rule that reads only losses and gradients"):
        train(net, X, Y, "geo-cg-layer", 2, norm="spectral")
    with pytest.raises(ValueError, match="unknown norm 'nuclear'"):
        train(net, X, Y, "geo-batch", 2, norm="nuclear")
    assert normalisation_for("frobenius", net.radii) is None


def test_estimator_with_spectral_layers_certifies_its_budget_and_round_trips(tmp_path):
    X, Y = problem(8, n=400)
    est = sn.SphereNetRegressor(hidden=(9, 7), batch_size=64, iterations=80, lipschitz=5.0, norm="spectral",
                                random_state=1).fit(X, Y)
    assert est.lipschitz_bound_ == pytest.approx(5.0, rel=1e-6)          # float32 weights
    assert 0 < est.lipschitz_lower_ <= est.lipschitz_bound_
    path = tmp_path / "est.npz"
    est.save(path)
    again = sn.SphereNetRegressor.load(path)
    assert np.array_equal(again.predict(X), est.predict(X)) and again.norm == "spectral"
    with pytest.raises(ValueError, match="norm='spectral' applies to method 'geo-batch'"):
        sn.SphereNetRegressor(norm="spectral", batch_size=None).fit(X, Y)       # full batch: geo-cg-layer


SMALL = ["--samples", "600", "--widths", "12-8-3", "--batch-size", "100", "--norm", "spectral", "--lipschitz",
         "3000", "--quiet", "--seed", "2"]


@pytest.fixture(autouse=True)
def _no_figures(monkeypatch):
    import spherenet.plots.experiments as figures
    monkeypatch.setattr(figures, "training_figure", lambda record, path: path)


def test_cli_spectral_run_reports_its_norm_and_certificate_and_resumes_exactly(tmp_path):
    def run(name, *extra):
        return cli.main(["train", *SMALL, "--out", str(tmp_path / name), *extra])
    assert run("plain", "--iterations", "12") == 0
    assert run("split", "--iterations", "7", "--checkpoint-every", "3") == 0
    assert run("split", "--iterations", "12", "--resume") == 0
    plain = json.loads((tmp_path / "plain" / "result.json").read_text())
    split = json.loads((tmp_path / "split" / "result.json").read_text())
    assert plain["norm"] == "spectral" and plain["lipschitz_bound"] == pytest.approx(3000, rel=1e-6)
    assert 0 < plain["lipschitz_lower"] <= plain["lipschitz_bound"]
    for key in ("loss_train", "loss_test", "tau", "rmse_test", "max_norm_drift"):
        assert split[key] == plain[key], key
    model = sn.load(tmp_path / "plain")
    assert model.lipschitz_bound_ == pytest.approx(3000, rel=1e-6)


@pytest.mark.parametrize("extra, message", [
    (["--method", "taylor"], "norm 'spectral' applies to geo-batch"),
    (["--scaling", "paper"], "norm 'spectral' applies to geo-batch"),
])
def test_cli_refuses_spectral_where_it_cannot_apply(tmp_path, capsys, extra, message):
    options = [o for o in SMALL if o not in ("--lipschitz", "3000")] if "--scaling" in extra else SMALL
    assert cli.main(["train", *options, *extra, "--out", str(tmp_path / "x"), "--iterations", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and ("norm 'spectral'" in err), err
    assert not (tmp_path / "x" / "result.json").exists()


def test_full_batch_and_streamed_passes_agree(monkeypatch):
    from spherenet import network
    X, Y = problem(9, n=500)
    cached = train(sn.NormalisedMLP(WIDTHS, seed=9), X, Y, "geo-batch", 15, X[:50], Y[:50], norm="spectral")
    monkeypatch.setattr(network, "FORWARD_BUDGET", 0)
    streamed = train(sn.NormalisedMLP(WIDTHS, seed=9), X, Y, "geo-batch", 15, X[:50], Y[:50], norm="spectral")
    assert streamed.iterations == cached.iterations == 15
    np.testing.assert_allclose(streamed.loss_train, cached.loss_train, rtol=1e-12)
    np.testing.assert_allclose(streamed.tau, cached.tau, rtol=1e-12)
    np.testing.assert_allclose(streamed.loss_test, cached.loss_test, rtol=1e-12)


@pytest.mark.parametrize("overrides, norm", [
    ({"batch_size": 256}, "spectral"),                                   # the mini-batch default: geo-batch
    ({"method": "geo-batch"}, "spectral"),
    ({}, "frobenius"),                                                   # full batch: geo-cg-layer
    ({"batch_size": 256, "method": "geo-cg-layer"}, "frobenius"),
    ({"batch_size": 256, "scaling": "paper"}, "frobenius"),
    ({"batch_size": 256, "norm": "frobenius"}, "frobenius"),
])
def test_the_default_norm(overrides, norm):
    from spherenet.experiments import settings_for
    assert settings_for(**overrides)["norm"] == norm
    est = sn.SphereNetRegressor(batch_size=overrides.get("batch_size"), method=overrides.get("method"),
                                scaling=overrides.get("scaling", "standard"), norm=overrides.get("norm"))
    assert est._checked_params()["norm"] == norm


def test_an_extended_resumed_run_keeps_its_budget_without_a_new_ladder(tmp_path, monkeypatch):
    """The ladder trains its rungs as long as the run: a resumed run that goes further would choose anew, so
    it keeps the budget (and the ladder's record) its checkpoint was trained at."""
    from spherenet import budget
    options = [o for o in SMALL if o not in ("--lipschitz", "3000")]
    out = tmp_path / "run"
    assert cli.main(["train", *options, "--out", str(out), "--iterations", "8", "--checkpoint-every", "4"]) == 0
    first = json.loads((out / "result.json").read_text())

    def no_ladder(*args, **kwargs):
        raise AssertionError("a resumed run chose its budget again")
    monkeypatch.setattr(budget, "select_lipschitz", no_ladder)
    assert cli.main(["train", *options, "--out", str(out), "--iterations", "260", "--resume"]) == 0
    resumed = json.loads((out / "result.json").read_text())
    assert resumed["iterations_done"] == 260 and resumed["lipschitz"] == first["lipschitz"]
    assert resumed["lipschitz_selection"] == first["lipschitz_selection"]
    assert resumed["lipschitz_selection"]["iterations"] == 200


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_resuming_from_any_iteration_repeats_the_run_bit_for_bit(tmp_path, dtype):
    """The singular pairs start from the current point's (warm starts): the checkpoint's journal keeps them, and a
    resume from each of these iterations (halvings among them) gives the uninterrupted run's bits."""
    from spherenet import checkpoint as ck
    X, Y = problem(3)
    X, Y = X.astype(dtype), (5 * Y).astype(dtype)
    expected = train(sn.NormalisedMLP(WIDTHS, seed=2, dtype=dtype), X, Y, "geo-batch", 30, batch_size=32, seed=7,
                     norm="spectral")
    assert sum(expected.halvings) > 0
    for k in (1, 6, 17, 23):
        path = tmp_path / f"{k}.npz"
        ck.train_with_checkpoints(path, sn.NormalisedMLP(WIDTHS, seed=2, dtype=dtype), X, Y, "geo-batch", k, 1,
                                  batch_size=32, seed=7, rule=sn.train.make_rule("geo-batch"), norm="spectral")
        resumed = ck.resume(ck.load_checkpoint(path), X, Y, 30 - k)
        assert resumed.loss_train == expected.loss_train and resumed.tau == expected.tau, k


def test_a_checkpoint_keeps_the_norm_and_resume_continues_with_it(tmp_path):
    from spherenet import checkpoint as ck
    X, Y = problem(10, n=200)
    uninterrupted = sn.NormalisedMLP(WIDTHS, seed=1)
    expected = train(uninterrupted, X, Y, "geo-batch", 20, batch_size=16, seed=4, norm="spectral")
    path = tmp_path / "c.npz"
    ck.train_with_checkpoints(path, sn.NormalisedMLP(WIDTHS, seed=1), X, Y, "geo-batch", 9, 4, batch_size=16, seed=4,
                              rule=sn.train.make_rule("geo-batch"), norm="spectral")
    saved = ck.load_checkpoint(path)
    assert saved.norm == "spectral"
    resumed = ck.resume(saved, X, Y, 11)
    assert resumed.loss_train == expected.loss_train and resumed.tau == expected.tau
    assert all(np.array_equal(a, b) for a, b in zip(saved.net.weights, uninterrupted.weights))
    with pytest.raises(ValueError, match="unknown norm 'l1'"):
        ck.save_checkpoint(tmp_path / "d.npz", saved.net, saved.history, "geo-batch", norm="l1",
                           rule=saved.rule())


def test_a_damaged_warm_start_is_refused_in_one_line():
    X, Y = problem(1, n=64)
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    history = train(net, X, Y, "geo-batch", 3, batch_size=16, norm="spectral")
    assert set(history.batch_state) >= {"spectral0", "spectral1", "spectral2"}
    history.batch_state["spectral1"] = [0.5, float("nan")]
    with pytest.raises(ValueError, match="'spectral1' .* not a vector of finite numbers"):
        train(net, X, Y, "geo-batch", 2, batch_size=16, norm="spectral", resume=history)
