"""Checkpoints: exact round trip, a resumed run (in a new process) equal to an uninterrupted one bit for bit,
damaged or inconsistent files refused with the file named, and the CLI's --checkpoint-every / --resume."""
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet import checkpoint as ck
from spherenet import cli
from spherenet.results import load_arrays, save_arrays
from spherenet.train import History, train, trained_network

from .strategies import unit_rows

WIDTHS = [5, 7, 6, 3]


def data(seed=0, n=60):
    rng = np.random.default_rng(seed)
    return unit_rows(rng, n, WIDTHS[0]), 0.3 * rng.normal(size=(n, WIDTHS[-1]))


def trained(rule="taylor", iterations=8, batch_size=None, dtype=np.float64, **options):
    X, Y = data()
    net = sn.NormalisedMLP(WIDTHS, seed=1, dtype=dtype)
    history = train(net, X.astype(dtype), Y.astype(dtype), rule, iterations, batch_size=batch_size, seed=4,
                    **options)
    return net, history


def assert_same_net(a, b):
    assert len(a.weights) == len(b.weights)
    for Wa, Wb in zip(a.weights, b.weights):
        assert Wa.dtype == Wb.dtype and np.array_equal(Wa, Wb)
    assert np.array_equal(a.radii, b.radii)


# --- round trip ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("rule, options, batch_size, dtype", [
    ("taylor", {}, None, np.float64),
    ("taylor", {"order": 1}, 16, np.float64),          # order 1: kappa is NaN in every info entry
    ("mm-telescoping", {}, None, np.float32),
])
def test_round_trip_is_exact(tmp_path, rule, options, batch_size, dtype):
    net, history = trained(rule, 6, batch_size, dtype, **options)
    settings_ = {"note": "anything JSON", "widths": WIDTHS}
    path = ck.save_checkpoint(tmp_path / "c.npz", net, history, rule, options, settings_, batch_size=batch_size)
    back = ck.load_checkpoint(path)
    assert_same_net(back.net, net)
    assert back.history.as_dict() == history.as_dict()           # NaN <-> None both ways
    assert (back.rule_name, back.rule_options, back.batch_size, back.settings) == (rule, options, batch_size,
                                                                                   settings_)
    assert back.iterations == 6 and back.rule().name == history.method
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]       # written atomically: no temporary left


def test_a_long_float32_run_can_be_saved_and_loaded(tmp_path):
    """float32 updates drift off the spheres over long runs (1.2e-7 after 1000 closed-form steps here;
    3.4e-6 before the update curve was written in increment form): such a net is saved and loaded, its
    drift matching the history's."""
    net, history = trained("mm-closed", 1000, dtype=np.float32)
    assert net.norm_drift() > 1e-8
    back = ck.load_checkpoint(ck.save_checkpoint(tmp_path / "c.npz", net, history, "mm-closed"))
    assert_same_net(back.net, net) and back.net.norm_drift() == history.drift[-1]


def test_a_long_float32_estimator_can_be_loaded(tmp_path):
    """load accepts what save wrote, up to the drift the fit recorded (float32 drifts ~1e-7 and more)."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(8, 5)), rng.normal(size=(8, 3))
    est = sn.SphereNetRegressor(hidden=(7, 6), method="mm-closed", iterations=1000, dtype="float32").fit(X, Y)
    assert est.net_.norm_drift() > 1e-8
    back = sn.SphereNetRegressor.load(est.save(tmp_path / "est.npz"))
    assert np.array_equal(back.predict(X), est.predict(X))


# --- a resumed run equals an uninterrupted one, across processes -------------------------------------------

CASES = [("taylor", None), ("taylor", 16), ("mm", None), ("mm", 16)]

RESUME_SCRIPT = textwrap.dedent("""
    import sys
    from spherenet import checkpoint as ck
    from spherenet.results import load_arrays
    folder, n = sys.argv[1], int(sys.argv[2])
    d = load_arrays(folder + "/data.npz")
    for name in sys.argv[3:]:
        c = ck.load_checkpoint(f"{folder}/{name}.npz")
        history = ck.resume(c, d["X"], d["Y"], n, d["Xt"], d["Yt"])
        ck.save_checkpoint(f"{folder}/{name}-resumed.npz", c.net, history, c.rule_name, c.rule_options,
                           batch_size=c.batch_size)
""")


@pytest.fixture(scope="module")
def resumed_elsewhere(tmp_path_factory):
    """For every case: 20 iterations uninterrupted here; 8 here + checkpoint + 12 in a NEW process."""
    folder = tmp_path_factory.mktemp("resume")
    X, Y = data()
    Xt, Yt = data(seed=9, n=20)
    save_arrays(folder / "data.npz", X=X, Y=Y, Xt=Xt, Yt=Yt)
    straight = {}
    for rule, batch_size in CASES:
        name = f"{rule}-{batch_size}"
        net = sn.NormalisedMLP(WIDTHS, seed=1)
        straight[name] = (net, train(net, X, Y, rule, 20, Xt, Yt, batch_size=batch_size, seed=4))
        net = sn.NormalisedMLP(WIDTHS, seed=1)
        history = train(net, X, Y, rule, 8, Xt, Yt, batch_size=batch_size, seed=4)
        ck.save_checkpoint(folder / f"{name}.npz", net, history, rule, batch_size=batch_size)
    names = list(straight)
    proc = subprocess.run([sys.executable, "-c", RESUME_SCRIPT, str(folder), "12", *names],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return {name: (straight[name], ck.load_checkpoint(folder / f"{name}-resumed.npz")) for name in names}


@pytest.mark.parametrize("rule, batch_size", CASES)
def test_resumed_in_a_new_process_equals_uninterrupted(resumed_elsewhere, rule, batch_size):
    (net, history), resumed = resumed_elsewhere[f"{rule}-{batch_size}"]
    h = resumed.history
    assert h.iterations == 20
    for key in ("loss_train", "loss_test", "tau", "beta", "predicted", "actual", "halvings", "drift", "flags"):
        assert getattr(h, key) == getattr(history, key), key             # bit for bit (floats compared ==)
    assert h.info == history.info
    if batch_size:     # the draw state and the iterates' average (unused, so not restored, in full batch)
        assert h.as_dict()["batch_state"] == history.as_dict()["batch_state"]
        assert "average" in h.batch_state
    assert_same_net(resumed.net, net)
    assert_same_net(trained_network(resumed.net, h), trained_network(net, history))      # the reported model


def test_stopped_run_cannot_be_resumed(tmp_path):
    X, _ = data()
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    Y = net.forward(X)                                         # stationary: the run stops at once
    history = train(net, X, Y, "taylor", 5)
    assert history.stop_reason
    c = ck.load_checkpoint(ck.save_checkpoint(tmp_path / "c.npz", net, history, "taylor"))
    with pytest.raises(ValueError, match="cannot resume a run that stopped"):
        ck.resume(c, X, Y, 3)


def test_train_with_checkpoints_in_pieces_equals_one_call(tmp_path):
    X, Y = data()
    net, history = trained("taylor", 11)
    pieces = sn.NormalisedMLP(WIDTHS, seed=1)
    seen = []
    h = ck.train_with_checkpoints(tmp_path / "c.npz", pieces, X, Y, "taylor", 11, 4, seed=4,
                                  callback=lambda k, hist: seen.append(k))
    assert seen == list(range(1, 12))
    assert h.loss_train == history.loss_train and h.tau == history.tau
    assert_same_net(pieces, net)
    assert ck.load_checkpoint(tmp_path / "c.npz").iterations == 11


# --- damaged and inconsistent files ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def good_file(tmp_path_factory):
    net, history = trained("taylor", 4)
    path = ck.save_checkpoint(tmp_path_factory.mktemp("good") / "c.npz", net, history, "taylor")
    return path, path.read_bytes(), net, history


@settings(max_examples=60)
@given(position=st.floats(0, 1, exclude_max=True), byte=st.integers(1, 255), cut=st.booleans())
def test_a_damaged_file_is_refused_or_loads_unchanged(good_file, tmp_path_factory, position, byte, cut):
    """Truncate the file, or XOR one byte anywhere: the load either fails naming the file, or (a byte that
    holds no data, e.g. a zip timestamp) gives back exactly the original network and history."""
    path, raw, net, history = good_file
    k = int(position * len(raw))
    damaged = raw[:k] if cut else raw[:k] + bytes([raw[k] ^ byte]) + raw[k + 1:]
    bad = tmp_path_factory.mktemp("bad") / "c.npz"
    bad.write_bytes(damaged)
    try:
        back = ck.load_checkpoint(bad)
    except ValueError as err:
        assert str(bad) in str(err)
        return
    assert_same_net(back.net, net)
    assert back.history.as_dict() == history.as_dict()


def _rewrite(path, **changes):
    """Rewrite a checkpoint with some arrays or meta fields changed, with a VALID checksum (as a bug or a
    hand edit followed by a re-save would): the checks behind the checksum must catch it."""
    arrays = load_arrays(path)
    meta = json.loads(str(arrays["meta"]))
    for key, value in changes.items():
        if key in meta:
            meta[key] = value
        elif value is None:
            arrays.pop(key)
        else:
            arrays[key] = value
    if "meta" in arrays:
        arrays["meta"] = np.array(json.dumps(meta))
    return save_arrays(path, **arrays)


def _history_with(history, **fields):
    d = history.as_dict()
    d.update(fields)
    return d


@pytest.mark.parametrize("changes, match", [
    (lambda n, h: {"W1": np.full_like(n.weights[1], np.nan)}, "array 'W1' contains non-finite values"),
    (lambda n, h: {"W0": 1.01 * n.weights[0]}, "off their spheres by 0.01 .* the history recorded"),
    (lambda n, h: {"W1": n.weights[1][:, :3]}, r"weights\[1\] has shape"),
    (lambda n, h: {"radii": np.ones(2)}, "radii must be 3 positive numbers"),
    (lambda n, h: {"radii": -np.ones(3)}, "radii must be 3 positive numbers"),
    (lambda n, h: {"W1": None}, "expected arrays W0"),
    (lambda n, h: {"W2": None}, "radii must be 2 positive numbers"),
    (lambda n, h: {"meta": None}, "no 'meta' entry"),
    (lambda n, h: {"kind": "something else"}, "not a spherenet checkpoint"),
    (lambda n, h: {"format": 99}, "format 99"),
    (lambda n, h: {"rule": "newton"}, "unknown method 'newton'"),
    (lambda n, h: {"rule_options": {"order": 4}}, "recorded by method 'taylor', not by 'taylor'"),
    (lambda n, h: {"rule_options": {"ordr": 4}}, "bad rule_options"),
    (lambda n, h: {"batch_size": 0}, "batch_size must be None or an integer >= 1"),
    (lambda n, h: {"history": _history_with(h, tau=h.tau[:-1])}, "history is inconsistent"),
    (lambda n, h: {"history": _history_with(h, loss_train=h.loss_train[:-1])}, "history is inconsistent"),
    (lambda n, h: {"history": _history_with(h, loss_train=[None] * len(h.loss_train))}, "non-finite loss"),
    (lambda n, h: {"history": {"method": "taylor", "colour": "red"}}, "history is damaged"),
])
def test_inconsistent_files_are_refused_naming_the_file(good_file, tmp_path, changes, match):
    path, raw, net, history = good_file
    bad = tmp_path / "c.npz"
    bad.write_bytes(raw)
    _rewrite(bad, **changes(net, history))
    with pytest.raises(ValueError, match=match) as info:
        ck.load_checkpoint(bad)
    assert str(bad) in str(info.value)


def test_missing_file_and_save_refusals(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        ck.load_checkpoint(tmp_path / "none.npz")
    net, history = trained("taylor", 2)
    target = tmp_path / "c.npz"
    cases = [
        (dict(net="net"), TypeError, "net must be a NormalisedMLP"),
        (dict(history={}), TypeError, "history must be a spherenet.train.History"),
        (dict(rule_name="sgd"), ValueError, "unknown method 'sgd'"),
        (dict(rule_name="mm"), ValueError, "recorded by method 'taylor'"),
        (dict(settings={"x": object()}), TypeError, "settings must be JSON-ready"),
        (dict(settings={"x": float("nan")}), TypeError, "settings must be JSON-ready"),
    ]
    for change, error, match in cases:
        args = dict(path=target, net=net, history=history, rule_name="taylor", **{})
        args.update(change)
        with pytest.raises(error, match=match):
            ck.save_checkpoint(**args)
    drifted = net.copy()
    drifted.weights[0] = 2 * drifted.weights[0]
    with pytest.raises(ValueError, match="net: the weights are off their spheres by 1 "):
        ck.save_checkpoint(target, drifted, history, "taylor")
    fresh = History("taylor", loss_train=[1.0])                           # before any step: from_weights' rule
    with pytest.raises(ValueError, match=r"net: weights\[0\] is not on its sphere"):
        ck.save_checkpoint(target, drifted, fresh, "taylor")
    assert not list(tmp_path.iterdir())                          # nothing written by a refused save
    with pytest.raises(TypeError, match="checkpoint must be a Checkpoint"):
        ck.resume(history, *data(), 1)


# --- the CLI: --checkpoint-every and --resume ----------------------------------------------------------------

SMALL = ["--samples", "800"]


@pytest.fixture(autouse=True)
def no_figures(request, monkeypatch):
    """The CLI tests here are about numbers and files: skip drawing the training figure (tested elsewhere)."""
    if request.node.name.startswith("test_cli"):
        import spherenet.plots.experiments as figures
        monkeypatch.setattr(figures, "training_figure", lambda record, path: path)


def _train(out, *extra):
    return cli.main(["train", *SMALL, "--seed", "2", "--out", str(out), *extra])


def _result(out):
    return json.loads((out / "result.json").read_text())


SAME = ("loss_train", "loss_test", "tau", "beta", "halvings", "flags", "rmse_train", "rmse_test", "iterations",
        "iterations_done", "max_norm_drift", "stop_reason", "batch_size_used", "average")


@pytest.mark.parametrize("options", [["--method", "taylor"], ["--method", "mm", "--batch-size", "200"],
                                     ["--batch-size", "200", "--eval-every", "3"],
                                     # the first part ends at 6, not a multiple of 4: its closing evaluation is
                                     # not one an uninterrupted run makes (train._drop_closing_evaluation)
                                     ["--batch-size", "200", "--eval-every", "4"],
                                     ["--method", "taylor", "--eval-every", "4"],
                                     # the main job: the batch size chosen on validation (kept, not chosen
                                     # again, by the resumed run), the iterates' average reported
                                     ["--eval-every", "4", "--samples", "3000"]])
def test_cli_resumed_run_equals_uninterrupted(tmp_path, options):
    assert _train(tmp_path / "plain", "--iterations", "10", *options) == 0
    assert _train(tmp_path / "ckpt", "--iterations", "10", "--checkpoint-every", "4", *options) == 0
    assert _train(tmp_path / "split", "--iterations", "6", "--checkpoint-every", "4", *options) == 0
    assert ck.load_checkpoint(tmp_path / "split" / "checkpoint.npz").iterations == 6
    assert _train(tmp_path / "split", "--iterations", "10", "--resume", *options) == 0
    plain = _result(tmp_path / "plain")
    for name in ("ckpt", "split"):
        r = _result(tmp_path / name)
        assert {k: r[k] for k in SAME} == {k: plain[k] for k in SAME}, name
        assert (r["batch_selection"] or {}).get("tried") == (plain["batch_selection"] or {}).get("tried"), name
        weights = load_arrays(tmp_path / name / "weights.npz")
        for k, W in load_arrays(tmp_path / "plain" / "weights.npz").items():
            assert np.array_equal(weights[k], W), (name, k)
    assert ck.load_checkpoint(tmp_path / "split" / "checkpoint.npz").iterations == 10


def test_cli_interrupted_run_leaves_no_results_and_its_last_checkpoint(tmp_path, monkeypatch, capsys):
    def interrupt_at_7(pbar):
        def callback(k, history):
            if k == 7:
                raise KeyboardInterrupt
        return callback

    out = tmp_path / "run"
    with monkeypatch.context() as m:
        m.setattr(cli.progress, "iteration_callback", interrupt_at_7)
        assert _train(out, "--iterations", "10", "--checkpoint-every", "3") == 130
    assert "interrupted" in capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())                           # no result, no temporary
    assert len(names) == 2 and names[1] == "checkpoint.npz", names
    assert names[0].startswith("checkpoint.") and names[0].endswith(".journal")
    saved = ck.load_checkpoint(out / "checkpoint.npz")
    assert saved.iterations == 6 and not saved.history.stop_reason
    assert _train(out, "--iterations", "10", "--resume") == 0
    assert _train(tmp_path / "plain", "--iterations", "10") == 0
    r, plain = _result(out), _result(tmp_path / "plain")
    assert {k: r[k] for k in SAME} == {k: plain[k] for k in SAME}


def test_cli_checkpoint_errors_are_one_line(tmp_path, capsys):
    out = tmp_path / "run"
    assert _train(out, "--iterations", "3", "--checkpoint-every", "2") == 0
    (out / "result.json").unlink()
    capsys.readouterr()
    cases = [
        ([str(tmp_path / "none"), "--resume"], "--resume: no checkpoint at"),
        ([str(tmp_path / "x"), "--checkpoint-every", "0"], "--checkpoint-every must be >= 1, got 0"),
        ([str(tmp_path / "x"), "--checkpoint-every", "2", "--method", "adam"], "apply to the sphere methods"),
        ([str(out), "--checkpoint-every", "2"], "exists: add --resume"),
        ([str(out), "--resume", "--seed", "5"], "other settings (seed=2 there, 5 here)"),
        ([str(out), "--resume", "--method", "mm"], "method='geo-batch' there, 'mm' here"),
        ([str(out), "--resume", "--iterations", "2"], "iterations 2 is fewer than the 3 already done"),
        ([str(out), "--resume", "--eval-every", "2"], "eval_every=50 there, 2 here"),
        ([str(tmp_path / "x"), "--checkpoint-every", "2", "--max-seconds", "9"], "checkpointed runs have no time budget"),
    ]
    for argv, message in cases:
        folder, *rest = argv
        code = cli.main(["train", *SMALL, "--seed", "2", "--iterations", "3", "--out", folder, *rest])
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and message in err[-1] and "Traceback" not in "\n".join(err), (argv, err)
        assert not (tmp_path / folder / "result.json").exists()
    raw = (out / "checkpoint.npz").read_bytes()
    (out / "checkpoint.npz").write_bytes(raw[: len(raw) // 2])
    assert _train(out, "--iterations", "5", "--resume") == 2
    assert "checkpoint.npz: not a readable .npz file" in capsys.readouterr().err
    assert not (out / "result.json").exists()


def test_rules_with_memory_carry_it_in_the_checkpoint(tmp_path):
    """geo-* rules keep conjugate-gradient or moment state: a checkpoint needs the rule object to hold it
    (refused without), and with it a resumed run in a new process repeats an uninterrupted one bit for bit."""
    net, X, Y = sn.NormalisedMLP([3, 4, 2], seed=0), np.eye(3), np.ones((3, 2))
    history = train(net, X, Y, "geo-cg-layer", 2)
    with pytest.raises(ValueError, match="keeps a memory across iterations"):
        ck.save_checkpoint(tmp_path / "c.npz", net, history, "geo-cg-layer")
    assert not list(tmp_path.iterdir())
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 5))
    X /= np.linalg.norm(X, axis=1, keepdims=True)
    Y = 0.05 * rng.normal(size=(200, 2))
    for name in ("geo-cg-layer", "geo-adam"):
        whole = sn.NormalisedMLP([5, 8, 6, 2], seed=1)
        expected = train(whole, X, Y, name, 15)
        part = sn.NormalisedMLP([5, 8, 6, 2], seed=1)
        path = tmp_path / f"{name}.npz"
        ck.train_with_checkpoints(path, part, X, Y, name, 6, None)
        np.savez(tmp_path / "data.npz", X=X, Y=Y)
        script = textwrap.dedent(f"""
            import json, numpy as np
            from spherenet import checkpoint as ck
            d = np.load({str(tmp_path / 'data.npz')!r})
            c = ck.load_checkpoint({str(path)!r})
            h = ck.resume(c, d["X"], d["Y"], 9)
            print(json.dumps(h.as_dict()["loss_train"]))
        """)
        out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=True)
        assert json.loads(out.stdout) == expected.as_dict()["loss_train"], name


def test_cli_resume_on_other_data_or_threads_is_refused(tmp_path, capsys):
    """The checkpoint records a SHA-256 of the training data and the thread count (issue 21): a resume after
    the data file changed at the same path, or with another --threads, is refused; the same ones continue."""
    from spherenet.data import simulate_dataset, write_neural_lander_csv
    from spherenet.experiments import load_problem
    data = tmp_path / "log.csv"
    write_neural_lander_csv(data, simulate_dataset(n_samples=400, seed=1))
    real = ["--data", "neural-lander", "--data-path", str(data)]
    out = tmp_path / "run"
    assert cli.main(["train", *real, "--iterations", "3", "--checkpoint-every", "2", "--out", str(out)]) == 0
    capsys.readouterr()
    assert cli.main(["train", *real, "--iterations", "5", "--resume", "--threads", "2", "--out", str(out)]) == 2
    assert "the run used --threads 1, not 2; resume with --threads 1" in capsys.readouterr().err
    lines = data.read_text().splitlines()
    cells = lines[7].split(",")
    cells[14] = repr(float(cells[14]) + 0.25)                     # one force value changed
    data.write_text("\n".join(lines[:7] + [",".join(cells)] + lines[8:]) + "\n")
    load_problem.cache_clear()                                    # a new process would read the file again
    assert cli.main(["train", *real, "--iterations", "5", "--resume", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"{out / 'checkpoint.npz'}: the data differ from those the run was trained on" in err
    assert ck.load_checkpoint(out / "checkpoint.npz").iterations == 3 and _result(out)["iterations"] == 3


# --- checkpoints that cost O(1) per write (issue 21): a snapshot and a journal of records (format 3) ----------

def _journals(folder):
    return sorted(folder.glob("c.*.journal"))


def _journaled(tmp_path, rule="taylor", iterations=12, batch_size=None, stop_at=None, dtype=np.float64, **options):
    """A run checkpointed at every iteration; ``stop_at``: interrupted there (KeyboardInterrupt from the
    callback), so its snapshot and journal stay as a killed run leaves them. Returns the path."""
    X, Y = (a.astype(dtype) for a in data())
    net = sn.NormalisedMLP(WIDTHS, seed=1, dtype=dtype)

    def interrupt(k, history):
        if k == stop_at:
            raise KeyboardInterrupt
    path = tmp_path / "c.npz"
    try:
        ck.train_with_checkpoints(path, net, X, Y, rule, iterations, 1, batch_size=batch_size, seed=4,
                                  rule_options=options, callback=interrupt)
    except KeyboardInterrupt:
        pass
    return path


def _straight(rule="taylor", iterations=12, batch_size=None, dtype=np.float64, **options):
    """(net, history) of an uninterrupted run of the same problem."""
    X, Y = (a.astype(dtype) for a in data())
    net = sn.NormalisedMLP(WIDTHS, seed=1, dtype=dtype)
    return net, train(net, X, Y, rule, iterations, batch_size=batch_size, seed=4, **options)


def _same_run(back, net, history):
    """``back`` (a loaded checkpoint) holds ``net`` and ``history`` but for the clock (and, in full batch,
    the unused draw state, which checkpoints taken during a run leave empty)."""
    kept = {k: back.history.as_dict()[k] for k in ("seconds", "seconds_eval")}
    if back.batch_size is None:
        kept["batch_state"] = back.history.batch_state
    assert back.history.as_dict() == history.as_dict() | kept
    assert_same_net(back.net, net)


@pytest.mark.parametrize("rule, batch_size, options", [("taylor", None, {"order": 1}), ("geo-cg-layer", 16, {}),
                                                       ("geo-batch", 16, {})])
def test_journaled_checkpoints_resume_exactly_and_do_not_grow(tmp_path, rule, batch_size, options):
    """A second process continues a run: its first write is a new snapshot (the first journal deleted), then
    one record per write whose size does not grow; the replayed history equals the run's (NaN included),
    and a resume continues bit for bit. A finished run leaves the snapshot alone."""
    X, Y = data()
    whole, expected = _straight(rule, 40, batch_size, **options)
    path = _journaled(tmp_path, rule, 40, batch_size, stop_at=5, **options)
    (first,) = _journals(tmp_path)
    c = ck.load_checkpoint(path)
    assert c.iterations == 4
    seen = {}

    def look(k, history):
        if k == 40:                            # the saves after iterations 5..39: a snapshot, then records
            (journal,) = _journals(tmp_path)
            seen["records"] = list(ck._records(journal, journal.read_bytes()))
            seen["sizes"] = [len(r) for r in journal.read_bytes().split(ck._MAGIC)[1:]]
            seen["loaded"] = ck.load_checkpoint(path)
    ck.train_with_checkpoints(path, c.net, X, Y, rule, 36, 1, batch_size=batch_size, seed=4, rule_options=options,
                              history=c.history, rule=c.rule(), callback=look)
    assert not first.exists() and not _journals(tmp_path)
    assert [header["iterations"] for _, _, header, _ in seen["records"]] == list(range(6, 40))
    assert seen["loaded"].iterations == 39
    assert seen["loaded"].history.loss_train == expected.loss_train[:40]
    sizes = seen["sizes"]
    assert max(sizes[-10:]) <= max(sizes[:10]) + 8 * len(X)          # (+ an epoch's order, if one was drawn)
    _same_run(ck.load_checkpoint(path), whole, expected)


def test_a_float32_run_is_journaled_bit_for_bit(tmp_path):
    path = _journaled(tmp_path, "geo-adam", 20, stop_at=9, dtype=np.float32)
    back = ck.load_checkpoint(path)
    assert back.iterations == 8 and back.net.dtype == np.float32
    _same_run(back, *_straight("geo-adam", 8, dtype=np.float32))


def test_the_order_of_a_mini_batch_epoch_is_written_once(tmp_path):
    """200 rows in batches of 16: 12 batches per epoch, so epochs begin at iterations 1, 13 and 25. The writes
    after iterations 2..29 are records (after 1, the snapshot): two of them carry a new order (and every one
    the iterates' average, which every step changes)."""
    X, Y = data(n=200)
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    seen = []

    def look(k, history):
        if k == 30:
            (journal,) = _journals(tmp_path)
            seen.extend(ck._records(journal, journal.read_bytes()))
    ck.train_with_checkpoints(tmp_path / "c.npz", net, X, Y, "geo-batch", 30, 1, batch_size=16, seed=4,
                              callback=look)
    assert [h["iterations"] for _, _, h, arrays in seen if "batch.order" in arrays] == [13, 25]
    assert all(set(h["batch"]) <= {"rng", "pos", "average_weight"} for _, _, h, _ in seen)
    assert all("batch.average" in arrays for _, _, _, arrays in seen)       # the iterates' average: every step
    whole = sn.NormalisedMLP(WIDTHS, seed=1)
    assert ck.load_checkpoint(tmp_path / "c.npz").history.loss_train == train(
        whole, X, Y, "geo-batch", 30, batch_size=16, seed=4).loss_train


@settings(max_examples=25, deadline=None)
@given(position=st.floats(0, 1), zeros=st.integers(0, 64))
def test_a_torn_journal_gives_the_state_of_its_last_whole_record(tmp_path_factory, position, zeros):
    """Cut the journal anywhere (a kill or a crash mid-write), maybe followed by zero bytes (what some file
    systems leave after a crash): the checkpoint is the run after the last whole record, bit for bit."""
    folder = tmp_path_factory.mktemp("torn")
    path = _journaled(folder, "geo-batch", 30, 16, stop_at=20)
    (journal,) = _journals(folder)
    raw = journal.read_bytes()
    journal.write_bytes(raw[:int(position * len(raw))] + bytes(zeros))
    back = ck.load_checkpoint(path)
    assert 1 <= back.iterations <= 19
    _same_run(back, *_straight("geo-batch", back.iterations, 16))


def test_a_damaged_record_is_refused_naming_the_journal_and_how_to_keep_the_rest(tmp_path):
    """A flipped byte in a whole record (in its head, its JSON or its arrays; in the middle or at the end) is
    refused: the bytes after it cannot be trusted. ``truncate -s`` as the message says keeps the records
    before it, which give the run at that record, bit for bit."""
    path = _journaled(tmp_path, "geo-cg-layer", 20, stop_at=12)
    (journal,) = _journals(tmp_path)
    raw = journal.read_bytes()
    starts = [pos for _, pos, _, _ in ck._records(journal, raw)]
    assert len(starts) == 10                                         # after iterations 2..11
    ends = starts[1:] + [len(raw)]
    for record, at in [(3, starts[3] + 2), (3, starts[3] + 40), (3, ends[3] - 9), (9, ends[9] - 1),
                       (0, starts[0] + 14)]:                          # head, JSON, arrays; middle, last, first
        journal.write_bytes(raw[:at] + bytes([raw[at] ^ 0x10]) + raw[at + 1:])
        with pytest.raises(ValueError, match=rf"record {record} \(byte {starts[record]}\) is damaged") as info:
            ck.load_checkpoint(path)
        assert str(journal) in str(info.value) and f"truncate -s {starts[record]} {journal}" in str(info.value)
    journal.write_bytes(raw[:starts[3]])                             # as the message says
    back = ck.load_checkpoint(path)
    assert back.iterations == 4
    _same_run(back, *_straight("geo-cg-layer", 4))


def test_a_record_out_of_sequence_is_refused(tmp_path):
    path = _journaled(tmp_path, stop_at=8)
    (journal,) = _journals(tmp_path)
    raw = journal.read_bytes()
    starts = [pos for _, pos, _, _ in ck._records(journal, raw)]
    journal.write_bytes(raw[:starts[1]] + raw[starts[2]:])           # a record left out: whole, but out of order
    with pytest.raises(ValueError, match=r"record 1 .* damaged: it claims 4 iterations, after 2 \(out of sequence"):
        ck.load_checkpoint(path)


def test_a_record_with_non_finite_numbers_is_refused(tmp_path):
    """A record whose checksums hold (as a bug in a writer would make one) but whose rule memory is NaN."""
    path = _journaled(tmp_path, "geo-cg-layer", 12, stop_at=6)
    (journal,) = _journals(tmp_path)
    raw = journal.read_bytes()
    *_, (_, pos, header, arrays) = ck._records(journal, raw)
    arrays = {name: a.copy() for name, a in arrays.items()}
    arrays["rule.g0"][0, 0] = np.nan
    journal.write_bytes(raw[:pos] + b"".join(ck._record(header, arrays)))
    with pytest.raises(ValueError, match="array 'rule.g0' contains non-finite values") as info:
        ck.load_checkpoint(path)
    assert str(journal) in str(info.value)


@pytest.mark.parametrize("damage, match", [
    (lambda journal: journal.unlink(), "cannot read its journal"),
    (lambda journal: journal.unlink() or journal.mkdir(), "cannot read its journal"),
])
def test_a_missing_journal_is_refused_naming_it(tmp_path, damage, match):
    path = _journaled(tmp_path, stop_at=6)
    (journal,) = _journals(tmp_path)
    damage(journal)
    with pytest.raises(ValueError, match=match) as info:
        ck.load_checkpoint(path)
    assert str(path) in str(info.value) and str(journal) in str(info.value)


def test_a_journal_reference_pointing_elsewhere_is_refused(tmp_path):
    path = _journaled(tmp_path, stop_at=6)
    arrays = load_arrays(path)
    meta = json.loads(str(arrays["meta"]))
    meta["journal"] = "../" + meta["journal"]
    arrays["meta"] = np.array(json.dumps(meta))
    save_arrays(path, **arrays)
    with pytest.raises(ValueError, match="journal reference is damaged"):
        ck.load_checkpoint(path)


def test_the_journal_rolls_over_to_a_new_snapshot_when_full(tmp_path, monkeypatch):
    """Past JOURNAL_BYTES (or the snapshot's size) the next write is a new snapshot naming a new journal, and
    the old journal is deleted: the files stay bounded, the numbers the same."""
    monkeypatch.setattr(ck, "JOURNAL_BYTES", 4000)
    names = set()
    path = tmp_path / "c.npz"
    X, Y = data()
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    ck.train_with_checkpoints(path, net, X, Y, "geo-cg-layer", 30, 1, seed=4,
                              callback=lambda k, h: names.update(p.name for p in _journals(tmp_path)))
    assert len(names) >= 3 and not _journals(tmp_path)
    _same_run(ck.load_checkpoint(path), *_straight("geo-cg-layer", 30))


def test_a_failed_append_leaves_the_journal_whole(tmp_path, monkeypatch):
    """A write that fails (a full disk) raises naming the journal and cuts off what it wrote: the checkpoint
    is still the state of the last whole record."""
    import errno
    import os
    X, Y = data()
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    real = os.writev

    def full_at_6(fd, buffers):
        if calls.append(1) or len(calls) == 6:
            real(fd, [bytes(buffers[0])[:10]])
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(fd, buffers)
    calls = []
    monkeypatch.setattr(os, "writev", full_at_6)
    with pytest.raises(OSError, match="No space left on device") as info:
        ck.train_with_checkpoints(tmp_path / "c.npz", net, X, Y, "taylor", 20, 1, seed=4)
    (journal,) = _journals(tmp_path)
    assert info.value.filename == str(journal)
    back = ck.load_checkpoint(tmp_path / "c.npz")
    assert back.iterations == 6 and len(list(ck._records(journal, journal.read_bytes()))) == 5
    _same_run(back, *_straight("taylor", 6))


def _format2(tmp_path, iterations=6):
    """A format-2 checkpoint (the history in an append-only log), as its writer (until format 3) wrote one:
    two log lines, each with what every list gained."""
    import hashlib
    net, history = trained("taylor", iterations)
    d = history.as_dict()
    lists = [k for k, v in d.items() if isinstance(v, list)]
    chunks = [{**{k: d[k][a:b] for k in lists}, "info": {k: v[a:b] for k, v in d["info"].items()}}
              for a, b in ((0, 3), (3, None))]
    lines = b"".join(json.dumps(c).encode() + b"\n" for c in chunks)
    log = tmp_path / "c.0123456789ab.history.jsonl"
    log.write_bytes(lines)
    scalars = {k: v for k, v in d.items() if k not in lists and k != "info"}
    meta = {"kind": ck.KIND, "format": 2, "rule": "taylor", "rule_options": {}, "batch_size": None,
            "settings": None, "history_log": {"log": log.name, "bytes": len(lines),
                                              "sha256": hashlib.sha256(lines).hexdigest(), "scalars": scalars}}
    path = save_arrays(tmp_path / "c.npz", radii=net.radii, meta=np.array(json.dumps(meta)),
                       **{f"W{i}": W for i, W in enumerate(net.weights)})
    return path, log, net, history


def test_a_format_2_checkpoint_still_loads_and_resumes(tmp_path):
    path, log, net, history = _format2(tmp_path)
    back = ck.load_checkpoint(path)
    assert back.history.as_dict() == history.as_dict()
    assert_same_net(back.net, net)
    with open(log, "ab") as f:                       # a line past the checkpoint's prefix: ignored
        f.write(b'{"loss_train": [0.5], "half a line')
    assert ck.load_checkpoint(path).history.as_dict() == history.as_dict()
    X, Y = data()
    ck.train_with_checkpoints(path, back.net, X, Y, "taylor", 4, 1, seed=4, history=back.history)
    assert not log.exists()                          # continued in format 3
    _same_run(ck.load_checkpoint(path), *_straight("taylor", 10))


@pytest.mark.parametrize("damage, match", [
    (lambda log: log.unlink(), "cannot read its history log"),
    (lambda log: log.write_bytes(log.read_bytes()[:-10]), "is truncated or was changed"),
    (lambda log: log.write_bytes(log.read_bytes().replace(b"0.", b"1.", 1)), "is truncated or was changed"),
])
def test_a_damaged_or_missing_format_2_log_is_refused_naming_it(tmp_path, damage, match):
    path, log, _, _ = _format2(tmp_path)
    damage(log)
    with pytest.raises(ValueError, match=match) as info:
        ck.load_checkpoint(path)
    assert str(path) in str(info.value)


def test_cli_cleans_temporary_files_a_kill_left(tmp_path):
    out = tmp_path / "run"
    assert _train(out, "--iterations", "3", "--checkpoint-every", "1") == 0
    debris = [out / ".checkpoint.npz.k1ll3d.tmp", out / "figures" / ".training.png.x7.tmp",
              out / "checkpoint.0123456789ab.journal", out / "checkpoint.ba9876543210.history.jsonl"]
    for f in debris:
        f.parent.mkdir(exist_ok=True)
        f.write_bytes(b"half")
    assert _train(out, "--iterations", "5", "--resume", "--checkpoint-every", "1") == 0
    assert not any(f.exists() for f in debris)
    assert not list(out.glob("checkpoint.*"))[1:]                 # a finished run: the snapshot alone


def _kill_at_random(argv, env, out, rng, low, high):
    """Start ``argv`` into ``out``, ``kill -9`` it once its checkpoint holds a random number of iterations in
    [low, high) and a random fraction of an iteration later; returns the iterations the checkpoint holds."""
    import signal
    import time
    target = int(rng.integers(low, max(high, low + 1)))
    proc = subprocess.Popen([*argv, "--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        for _ in range(2400):
            try:
                if ck.load_checkpoint(out / "checkpoint.npz").iterations >= target:
                    break
            except (OSError, ValueError):          # not written yet, or its journal just replaced
                pass
            time.sleep(0.005)
        time.sleep(float(rng.uniform(0, 0.01)))
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    return ck.load_checkpoint(out / "checkpoint.npz").iterations


@pytest.mark.parametrize("iterations, options", [(1500, ["--method", "geo-cg-layer"]),
                                                 (3000, ["--method", "geo-batch", "--batch-size", "256"])])
def test_a_run_killed_at_random_moments_resumes_bit_for_bit(tmp_path, iterations, options):
    """kill -9 while checkpointing every iteration (one train call, a checkpoint as each step begins; full
    batch and mini-batch), --resume, kill -9 again, --resume to the end: the same numbers and weights as a
    run never interrupted."""
    import os
    from pathlib import Path
    repo = str(Path(__file__).resolve().parent.parent)
    argv = [sys.executable, "-m", "spherenet", "train", "--samples", "2000", "--widths", "12-8-3", "--iterations",
            str(iterations), *options]
    env = {**os.environ, "PYTHONPATH": repo}
    killed, rng, n = tmp_path / "killed", np.random.default_rng(iterations), iterations
    first = _kill_at_random([*argv, "--checkpoint-every", "1"], env, killed, rng, n // 30, n // 3)
    assert n // 30 <= first < n
    second = _kill_at_random([*argv, "--checkpoint-every", "1", "--resume"], env, killed, rng, first + n // 30,
                             2 * n // 3)
    assert first < second < n, (first, second)
    subprocess.run([*argv, "--resume", "--out", str(killed)], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([*argv, "--out", str(tmp_path / "plain")], env=env, check=True, capture_output=True, timeout=300)
    r, plain = _result(killed), _result(tmp_path / "plain")
    assert {k: r[k] for k in SAME} == {k: plain[k] for k in SAME}
    w, wp = load_arrays(killed / "weights.npz"), load_arrays(tmp_path / "plain" / "weights.npz")
    assert all(np.array_equal(w[k], wp[k]) for k in wp)
    assert sorted(p.name for p in killed.glob("checkpoint.*")) == ["checkpoint.npz"]


def _iterations_saved(path) -> int:
    """The iterations a running run's checkpoint holds (0 while there is none, or while a new snapshot replaces
    the journal the old one named: a reader can meet the old snapshot without its journal)."""
    try:
        return ck.load_checkpoint(path).iterations
    except (OSError, ValueError):
        return 0


def test_sigterm_stops_a_run_cleanly_leaving_a_resumable_checkpoint(tmp_path):
    """``kill PID`` (SIGTERM) while checkpointing every iteration ends the run as Ctrl-C does: exit status
    143, one line naming the checkpoint, no result and no lock left; --resume then gives the numbers of a
    run never interrupted."""
    import os
    import signal
    import time
    from pathlib import Path
    repo = str(Path(__file__).resolve().parent.parent)
    argv = [sys.executable, "-m", "spherenet", "train", "--samples", "2000", "--widths", "12-8-3", "--iterations",
            "150", "--method", "geo-cg-layer", "--quiet"]
    env = {**os.environ, "PYTHONPATH": repo}
    out = tmp_path / "terminated"
    proc = subprocess.Popen([*argv, "--checkpoint-every", "1", "--out", str(out)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(1200):
            if _iterations_saved(out / "checkpoint.npz") >= 20:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)
        err = proc.communicate(timeout=60)[1]
    finally:
        proc.kill()
    done = ck.load_checkpoint(out / "checkpoint.npz").iterations
    assert proc.returncode == 143 and 20 <= done < 150, err
    assert "Traceback" not in err and err.strip().splitlines()[-1] == (
        f"spherenet train: terminated (SIGTERM); {out / 'checkpoint.npz'} holds {done} iterations: rerun with "
        f"--resume to continue")
    assert not (out / "result.json").exists() and not (out / ".lock").exists() and not list(out.glob(".*.tmp"))
    subprocess.run([*argv, "--resume", "--out", str(out)], env=env, check=True, capture_output=True, timeout=300)
    subprocess.run([*argv, "--out", str(tmp_path / "plain")], env=env, check=True, capture_output=True, timeout=300)
    r, plain = _result(out), _result(tmp_path / "plain")
    assert {k: r[k] for k in SAME} == {k: plain[k] for k in SAME}


def test_a_journal_write_checks_only_the_losses_it_adds(tmp_path, monkeypatch):
    """A record's checks cost what the new steps cost, not the whole run (issue 21: the history is not
    re-checked at every write of --checkpoint-every 1)."""
    import math
    from types import SimpleNamespace
    X, Y = data()
    net = sn.NormalisedMLP(WIDTHS, seed=1)
    history = train(net, X, Y, "taylor", 30, X, Y)
    path = tmp_path / "c.npz"
    journal = ck._Journal(path, ck._meta("taylor", {}, None, None, None), None)
    journal.save(net.weights, net.radii, history)                         # the snapshot
    checked = []
    monkeypatch.setattr(ck, "math", SimpleNamespace(isfinite=lambda x: checked.append(x) or math.isfinite(x),
                                                    inf=math.inf, prod=math.prod))
    history = train(net, X, Y, "taylor", 2, X, Y, resume=history)
    journal.save(net.weights, net.radii, history)                         # a record
    journal.close()
    assert len(checked) == 4                          # 2 training and 2 test losses, of 33 each
    assert ck.load_checkpoint(path).history.as_dict() == history.as_dict()
