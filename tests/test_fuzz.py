"""Fuzzing the public API and the CLI boundary with random shapes, scales and adversarial values.

Property of every call: EITHER a ValueError/TypeError raised by spherenet's own code (the traceback's last
frame is in the spherenet package, not in NumPy) whose message names the argument at fault, OR a result
that is entirely finite (and meets the function's contract). Input that must be refused (NaN, ±Inf, wrong
shape, empty, non-numeric, ...) must not be accepted. pytest turns every RuntimeWarning into an error
(setup.cfg), so a NumPy overflow/invalid warning anywhere fails the case.

Domain: data scales 1e-8..1e8, radii 1e-3..1e3, up to 4 layers of width <= 7. The gaps the fuzzing found
(inside the domain or just beside it) are pinned by the tests at the end.

``CASES`` counts the calls made; run ``pytest tests/test_fuzz.py -s`` to print the counts.
``SPHERENET_FUZZ_SCALE=20`` multiplies every test's number of examples (a longer hunt).
"""
import math
import os
import re
import traceback
from collections import Counter

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import spherenet as sn
from spherenet import cli, jets, majorant, sphere
from spherenet.data import PaperScaling
from spherenet.steps import FLAGS
from spherenet.train import RULES, History, train

PACKAGE = os.path.dirname(sn.__file__)
SCALE = int(os.environ.get("SPHERENET_FUZZ_SCALE", "1"))
CASES = Counter()
ARGUMENT = re.compile(r"\b(X|Y|y|Ys|X_test|Y_test|widths|radius|radii|weights|directions|grads|order|"
                      r"iterations|batch_size|dtype|method|hidden|seed|random_state|rule|p_op|J|t_grid|"
                      r"options|standardize|net|resume|keyword argument)\b")


@pytest.fixture(scope="module", autouse=True)
def report_counts():
    yield
    print(f"\nfuzz calls: {sum(CASES.values())} in total; " + ", ".join(f"{k} {v}" for k, v in sorted(CASES.items())))


def call(label, fn, *args, **kwargs):
    """``fn(*args, **kwargs)``, or ``None`` if it raised a clear error (checked here); counts the call."""
    CASES[label] += 1
    try:
        return fn(*args, **kwargs)
    except (ValueError, TypeError) as err:
        last = traceback.extract_tb(err.__traceback__)[-1].filename
        assert os.path.commonpath([PACKAGE, os.path.abspath(last)]) == PACKAGE, f"raised in {last}: {err!r}"
        assert ARGUMENT.search(str(err)), f"the message names no argument: {err!r}"
        return None


def finite(*values) -> bool:
    return all(np.isfinite(np.asarray(v, dtype=float)).all() for v in values)


# --- adversarial data ---------------------------------------------------------------------------------------

INVALID = {"nan", "inf", "-inf", "float16-overflow", "wrong-columns", "rows-mismatch", "empty", "ndim-1",
           "ndim-3", "complex", "strings", "objects", "none"}
DEFECTS = sorted((INVALID - {"float16-overflow"})
                 | {"clean", "-0.0", "denormals", "mixed-scales", "zero-row", "zero-targets", "constant-column",
                    "one-sample", "int", "bool", "float16", "float32", "lists"})


@st.composite
def datasets(draw, d_in, d_out, max_n=12, valid_only=False):
    """``(X, Y, defect)``: random data of scale 10^[-8, 8] with one defect (or ``"clean"``)."""
    defect = draw(st.sampled_from([d for d in DEFECTS if not (valid_only and d in INVALID)]))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = 1 if defect == "one-sample" else draw(st.integers(2, max_n))
    X = 10.0 ** draw(st.floats(-8, 8)) * rng.normal(size=(n, d_in))
    Y = 10.0 ** draw(st.floats(-8, 8)) * rng.normal(size=(n, d_out))
    which = draw(st.sampled_from(["X", "Y"]))
    A = X if which == "X" else Y
    spot = (rng.integers(A.shape[0]), rng.integers(A.shape[1]))
    if defect in ("nan", "inf", "-inf"):
        A[spot] = float(defect)
    elif defect == "-0.0":
        A[rng.random(A.shape) < 0.5] = -0.0
    elif defect == "denormals":
        A[rng.random(A.shape) < 0.5] = 5e-324
    elif defect == "mixed-scales":
        A[spot] = 1e8
    elif defect == "zero-row":
        X[rng.integers(n)] = 0.0
    elif defect == "zero-targets":
        Y[:] = 0.0
    elif defect == "constant-column":
        X[:, rng.integers(d_in)] = 1.5
    elif defect == "wrong-columns":
        A = np.hstack([A, A[:, :1]])
    elif defect == "rows-mismatch":
        A = A[:-1]
    elif defect == "empty":
        X, Y = X[:0], Y[:0]
    elif defect == "ndim-1":
        A = A[:, 0]
    elif defect == "ndim-3":
        A = A[:, :, None]
    elif defect in ("complex", "int", "bool", "float16", "float32"):
        with np.errstate(over="ignore"):        # float16 tops out at 65504: larger values become inf
            A = A.astype({"complex": complex, "int": int, "bool": bool, "float16": np.float16,
                          "float32": np.float32}[defect])
        if defect == "float16" and not np.isfinite(A).all():
            defect = "float16-overflow"
    elif defect == "strings":
        A = A.astype(str)
    elif defect == "objects":
        A = A.astype(object)
    elif defect == "none":            # (Y = None: see test_missing_targets_are_refused_naming_Y)
        which, A = "X", None
    elif defect == "lists":
        A = A.tolist()
    if defect in ("wrong-columns", "rows-mismatch", "ndim-1", "ndim-3", "complex", "int", "bool", "float16",
                  "float16-overflow", "float32", "strings", "objects", "none", "lists"):
        X, Y = (A, Y) if which == "X" else (X, A)
    return X, Y, defect


@st.composite
def networks(draw, dtypes=(np.float64, np.float32)):
    widths = draw(st.lists(st.integers(1, 7), min_size=2, max_size=5))
    radius = draw(st.one_of(st.sampled_from(["unit", "agd", "fan"]), st.floats(1e-3, 1e3)))
    return sn.NormalisedMLP(widths, radius, seed=draw(st.integers(0, 2**32 - 1)),
                            dtype=draw(st.sampled_from(dtypes)))


def assert_refused_if_invalid(result, defect):
    if defect in INVALID:
        assert result is None, f"accepted data with defect {defect!r}"


# --- the network: forward, loss, gradient, direction -----------------------------------------------------

@settings(max_examples=150 * SCALE)
@given(st.data())
def test_network_functions(data):
    net = data.draw(networks())
    X, Y, defect = data.draw(datasets(net.widths[0], net.widths[-1]))
    F = call("forward", net.forward, X)
    out = call("loss_and_grad", net.loss_and_grad, X, Y)
    assert_refused_if_invalid(out, defect)
    if F is not None:
        assert F.shape == (np.asarray(X).shape[0], net.widths[-1]) and finite(F)
    if out is None:
        return
    J, grads = out
    assert finite(J, *grads) and J >= 0
    assert call("loss", net.loss, X, Y) == J
    d = call("direction", sn.direction, net.weights, grads, net.radii)
    assert d is not None and finite(d.beta, d.alpha, d.rgrad_norms, *d.V) and d.beta >= 0
    for V, W, n in zip(d.V, net.weights, d.rgrad_norms):
        assert (n == 0 and not V.any()) or abs(sphere.fro(V) - 1) < 1e-5
        assert abs(sphere.inner(W, V)) <= (1e-6 if net.dtype == np.float32 else 1e-12) * sphere.fro(W)


# --- jets and majorants -----------------------------------------------------------------------------------

ORDERS = st.one_of(st.integers(0, 8), st.sampled_from([-1, 2.5, "3", True, None]))


@settings(max_examples=80 * SCALE)
@given(st.data())
def test_jets_and_majorants(data):
    net = data.draw(networks())
    X, Y, defect = data.draw(datasets(net.widths[0], net.widths[-1], valid_only=True))
    assume(defect != "float16-overflow")
    out = call("loss_and_grad", net.loss_and_grad, X, Y)
    assert out is not None
    J, grads = out
    d = sn.direction(net.weights, grads, net.radii)
    order = data.draw(ORDERS)
    coeffs = call("loss_jet", jets.loss_jet, net.weights, d.V, net.radii, X, Y, order)
    if isinstance(order, int) and not isinstance(order, bool) and order >= 0:
        assert coeffs is not None and coeffs.shape == (order + 1,) and finite(coeffs)
        assert coeffs[0] == pytest.approx(J, rel=1e-5 if net.dtype == np.float32 else 1e-12, abs=1e-300)
    else:
        assert coeffs is None
    Fs = call("network_jet", jets.network_jet, net.weights, d.V, net.radii, X, 3)
    assert Fs is not None and finite(Fs)
    zero_inputs = majorant.input_energy(np.asarray(X, dtype=float)) == 0  # Q = 0 (or denormal): refused
    for build in (majorant.spectral, majorant.frobenius, majorant.telescoping):
        m = call(build.__name__, build, net.weights, grads, net.radii, X)
        if m is None:
            assert net.dtype == np.float32 or zero_inputs
            continue
        t = np.linspace(0, math.pi, 7)
        values = m(t)
        assert finite(values) and values[0] == 0.0
    tau = call("closed_form_step", majorant.closed_form_step, net.weights, grads, net.radii, X)
    if tau is None:
        assert net.dtype == np.float32 or zero_inputs
    else:
        assert finite(tau) and tau >= 0


# --- training ---------------------------------------------------------------------------------------------

@settings(max_examples=80 * SCALE)
@given(st.data())
def test_train_few_iterations(data):
    net = data.draw(networks())
    X, Y, defect = data.draw(datasets(net.widths[0], net.widths[-1], max_n=10))
    rule = data.draw(st.sampled_from([*RULES, "newton", ""]))
    options = data.draw(st.sampled_from([{}, {"order": 3}, {"order": 0}, {"ordr": 2}])) if rule == "taylor" else {}
    iterations = data.draw(st.one_of(st.integers(0, 3), st.sampled_from([-1, 2.0, None])))
    batch_size = data.draw(st.one_of(st.none(), st.integers(-1, 12), st.just(2.5)))
    start = [W.copy() for W in net.weights]
    h = call("train", train, net, X, Y, rule, iterations, batch_size=batch_size, seed=1, **options)
    assert_refused_if_invalid(h, defect)
    if h is None:
        assert all(np.array_equal(a, b) for a, b in zip(net.weights, start))        # untouched on refusal
        return
    assert rule in RULES and isinstance(iterations, int) and iterations >= 0
    assert isinstance(h, History) and h.iterations <= iterations and len(h.loss_train) == h.iterations + 1
    assert finite(h.loss_train, h.tau, h.beta, h.actual, h.drift, *net.weights)
    assert all(t >= 0 for t in h.tau) and all(set(f) <= set(FLAGS) for f in h.flags)
    assert max(h.drift, default=0.0) <= (1e-6 if net.dtype == np.float32 else 1e-12)
    if h.iterations < iterations:
        assert h.stop_reason


# --- the paper's scaling and the estimator ----------------------------------------------------------------

MUST_REFUSE_SCALING = (INVALID - {"wrong-columns"}) | {"zero-row", "zero-targets"}    # any widths fit


@settings(max_examples=120 * SCALE)
@given(st.data())
def test_paper_scaling(data):
    d_in, d_out = data.draw(st.integers(1, 6)), data.draw(st.integers(1, 4))
    X, Y, defect = data.draw(datasets(d_in, d_out))
    standardize = data.draw(st.booleans())
    p_op = data.draw(st.one_of(st.floats(1e-3, 1e3), st.sampled_from([0.0, -1.0, math.nan, math.inf, "1"])))
    s = call("PaperScaling.fit", PaperScaling.fit, X, Y, p_op, standardize=standardize)
    must_refuse = MUST_REFUSE_SCALING - ({"zero-row"} if standardize else set())   # standardised: not zero
    if defect in must_refuse or not (isinstance(p_op, float) and 0 < p_op < math.inf):
        assert s is None, defect
    if s is None:
        return
    U = call("transform_inputs", s.transform_inputs, X)
    if U is not None:               # with standardize a sample equal to the mean is a zero row: refused
        assert finite(U)
        if defect != "denormals":   # an all-denormal row: see test_scaling_of_denormal_rows_gives_unit_rows
            assert np.allclose(np.linalg.norm(U, axis=1), 1.0, rtol=1e-12)
    V = s.transform_targets(Y)
    assert finite(V) and np.max(np.linalg.norm(V, axis=1)) == pytest.approx(p_op, rel=1e-12)
    assert np.allclose(s.inverse_targets(V), np.asarray(Y, float), rtol=1e-12, atol=1e-300)
    assert s.rmse_newtons(0.5) == pytest.approx(s.y_max / s.p_op, rel=1e-12)
    assert PaperScaling.from_dict(s.to_dict()) == s


@settings(max_examples=40 * SCALE)
@given(st.data())
def test_estimator_fit_predict_score(data):
    d_in, d_out = data.draw(st.integers(1, 5)), data.draw(st.integers(1, 3))
    X, Y, defect = data.draw(datasets(d_in, d_out, max_n=10))
    scaling = data.draw(st.sampled_from(["standard", "paper"]))
    est = sn.SphereNetRegressor(hidden=tuple(data.draw(st.lists(st.integers(1, 5), max_size=2))),
                                method=data.draw(st.sampled_from(list(RULES))), iterations=2,
                                dtype=data.draw(st.sampled_from(["float64", "float32"])), scaling=scaling)
    fitted = call("SphereNetRegressor.fit", est.fit, X, Y)
    # the standard scaling keeps a zero row (it standardises it); it refuses constant targets only when it
    # has to choose the budget from their spread, as here
    must_refuse = MUST_REFUSE_SCALING - ({"zero-row"} if scaling == "standard" else set())
    if defect in must_refuse - {"ndim-1", "objects"} or (defect == "ndim-1" and np.ndim(X) != 2):
        assert fitted is None, defect
    if fitted is None:
        return
    P = call("predict", est.predict, X)
    assert P is not None and finite(P) and P.shape[0] == np.asarray(X).shape[0]
    assert finite(est.score(X, Y), est.rmse(X, Y), est.lipschitz_bound_)


# --- the network's constructor ------------------------------------------------------------------------------

WIDTH_ENTRIES = st.one_of(st.integers(-2, 7), st.sampled_from([2.0, "3", None, True, np.int64(4)]))
RADII = st.one_of(st.sampled_from(["unit", "agd", "fan", "wide", math.nan, math.inf, -1.0, 0.0, -0.0, None, "2"]),
                  st.floats(1e-8, 1e8),
                  st.lists(st.floats(1e-3, 1e3), min_size=1, max_size=5))


@settings(max_examples=200 * SCALE)
@given(widths=st.one_of(st.lists(WIDTH_ENTRIES, max_size=5), st.sampled_from(["12-3", 7, None])),
       radius=RADII, dtype=st.sampled_from([np.float64, np.float32, "float32", int, complex]))
def test_network_constructor(widths, radius, dtype):
    net = call("NormalisedMLP", sn.NormalisedMLP, widths, radius, seed=0, dtype=dtype)
    if net is None:
        return
    assert all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 1 for w in widths)
    assert finite(net.radii, *net.weights) and np.all(net.radii > 0)
    assert net.norm_drift() <= (1e-6 if net.dtype == np.float32 else 1e-12)


# --- the CLI boundary: one line on stderr, exit status 2, nothing written ---------------------------------------

HEADER = "t,z,vx,vy,vz,qx,qy,qz,qw,u1,u2,u3,u4,fax,fay,faz"
ROW = "0.0,1.0,0.1,0.2,0.3,0.0,0.0,0.0,1.0,0.5,0.5,0.5,0.5,0.1,0.2,0.3"


def _row(**cells):
    values = dict(zip(HEADER.split(","), ROW.split(",")))
    values.update(cells)
    return ",".join(values.values())


@pytest.mark.parametrize("files, message", [
    ({}, "contains no .csv data files"),
    ({"a.csv": HEADER.replace(",faz", "") + "\n" + ROW.rsplit(",", 1)[0] + "\n"}, "a.csv:1: missing column(s) faz"),
    ({"a.csv": f"{HEADER}\n{ROW}\n{_row(vx='fast')}\n"}, "a.csv:3: column 'vx': not a number: 'fast'"),
    ({"a.csv": f"{HEADER}\n{ROW}\n{_row(qz='nan')}\n"}, "a.csv:3: column 'qz': non-finite value 'nan'"),
    ({"a.csv": f"{HEADER}\n{ROW}\n{_row(fay='-inf')}\n"}, "a.csv:3: column 'fay': non-finite value '-inf'"),
    ({"a.csv": f"{HEADER}\n{ROW}\n" + _row(**{k: "0" for k in HEADER.split(",")[1:13]}) + "\n"},
     "a.csv:3: zero-norm input row"),
    ({"a.csv": f"{HEADER}\n" + _row(fax="0", fay="0", faz="0") + "\n"}, "a.csv: all targets are zero"),
    ({"a.csv": f"{HEADER}\n"}, "a.csv: empty file (header only"),
    ({"a.csv": f"{HEADER}\n{ROW},7\n"}, "a.csv:2: 17 cells, the header has 16"),
])
def test_cli_refuses_bad_flight_logs(tmp_path, capsys, files, message):
    logs = tmp_path / "logs"
    logs.mkdir()
    for name, text in files.items():
        (logs / name).write_text(text)
    out = tmp_path / "out"
    CASES["cli"] += 1
    code = cli.main(["train", "--data", "neural-lander", "--data-path", str(logs), "--out", str(out)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert message in err
    assert not out.exists()


@pytest.mark.parametrize("argv, message", [
    (["--order", "0"], "order must be >= 1"),
    (["--samples", "1"], "n_samples must be >= 2"),
    (["--widths", "12-25-3-"], "widths '12-25-3-': expected integers"),
    (["--batch-size", "0"], "batch_size must be >= 1"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--data-seed", "-2"], "data_seed must be >= 0"),
    (["--method", "taylor", "--iterations", "x"], "invalid int value: 'x'"),
])
def test_cli_refuses_bad_options(tmp_path, capsys, argv, message):
    out = tmp_path / "out"
    CASES["cli"] += 1
    try:
        code = cli.main(["train", *argv, "--out", str(out)])
    except SystemExit as exit_:                          # argparse's own refusals
        code = exit_.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not out.exists()


# --- gaps the fuzzing found (now fixed): each pinned by its exact case --------------------------------------------

def _raises_clearly(fn, *args, match, **kwargs):
    with pytest.raises((ValueError, TypeError), match=match) as info:
        fn(*args, **kwargs)
    last = traceback.extract_tb(info.value.__traceback__)[-1].filename
    assert os.path.commonpath([PACKAGE, os.path.abspath(last)]) == PACKAGE


def test_ragged_rows_are_refused_naming_the_argument():
    _raises_clearly(sn.forward, sn.NormalisedMLP([3, 2], seed=0).weights, [[1, 2, 3], [1, 2]], match=r"\bX\b")


@pytest.mark.parametrize("fn", [sn.loss, sn.loss_and_grad])
def test_missing_targets_are_refused_naming_Y(fn):
    _raises_clearly(fn, sn.NormalisedMLP([3, 2], seed=0).weights, np.eye(3), None, match=r"\bY\b")


@pytest.mark.parametrize("seed", [-1, 1.5, "a"])
def test_bad_seed_is_refused_naming_it(seed):
    _raises_clearly(sn.NormalisedMLP, [3, 2], seed=seed, match="seed")


def test_unknown_dtype_name_is_refused_naming_it():
    _raises_clearly(sn.NormalisedMLP, [3, 2], dtype="foo", match="dtype")


@pytest.mark.parametrize("radius, dtype", [(1e39, np.float32), (1e-46, np.float32), (5e-324, np.float64)])
def test_radius_beyond_the_dtype_is_refused(radius, dtype):
    _raises_clearly(sn.NormalisedMLP, [3, 2], radius, dtype=dtype, match="radius")


@pytest.mark.parametrize("radii", [[0.0, 1.0], [math.nan, 1.0], "ab"])
def test_direction_refuses_bad_radii(radii):
    net = sn.NormalisedMLP([3, 4, 2], seed=0)
    grads = net.loss_and_grad(np.eye(3), np.ones((3, 2)))[1]
    _raises_clearly(sn.direction, net.weights, grads, radii, match="radii")


def test_float32_gradient_parallel_to_W_is_a_zero_layer():
    """Found by this fuzzing (a 1 x 1 float32 layer, whose sphere is two points, got a RADIAL V); fixed by
    computing the direction in float64 with the zero threshold at the weights' own eps."""
    for seed in range(10):
        W = sphere.project(np.random.default_rng(seed).normal(size=(3, 4)), 0.5).astype(np.float32)
        for c in (2.0, -3.7):
            d = sn.direction([W], [np.float32(c) * W], [0.5])
            assert d.zero_layers == [0] and not d.V[0].any(), (seed, c)


def test_absurd_jet_order_is_refused():
    net = sn.NormalisedMLP([3, 2], seed=0)
    V = [np.zeros((2, 3))]
    _raises_clearly(jets.loss_jet, net.weights, V, net.radii, np.eye(3), np.ones((3, 2)), 400, match="order")


def test_closed_form_step_with_zero_inputs():
    net = sn.NormalisedMLP([3, 2], seed=0)
    grads = [np.ones((2, 3))]
    _raises_clearly(majorant.closed_form_step, net.weights, grads, net.radii, np.zeros((4, 3)), match=r"\bX\b")


def test_majorant_refuses_nonfinite_angle():
    net = sn.NormalisedMLP([3, 4, 2], seed=0)
    X = np.eye(3)
    m = majorant.spectral(net.weights, net.loss_and_grad(X, np.ones((3, 2)))[1], net.radii, X)
    _raises_clearly(m, math.nan, match=r"\bt\b")


@pytest.mark.parametrize("kwargs, match", [({"net": "net"}, r"\bnet\b"), ({"rule": 42}, r"\brule\b"),
                                           ({"callback": 3}, "callback")])
def test_train_refuses_bad_objects(kwargs, match):
    args = dict(net=sn.NormalisedMLP([3, 2], seed=0), X=np.eye(3), Y=np.ones((3, 2)), rule="taylor",
                iterations=2, **{})
    args.update(kwargs)
    _raises_clearly(train, **args, match=match)


def test_scaling_of_huge_rows_is_not_silently_zero():
    X = np.full((3, 2), 1e200)
    U = PaperScaling.fit(X, np.ones((3, 1)), 1.0).transform_inputs(X)
    assert np.allclose(np.linalg.norm(U, axis=1), 1.0)


def test_scaling_of_denormal_rows_gives_unit_rows():
    X = np.array([[5e-324, 5e-324], [1.0, 2.0]])
    U = PaperScaling.fit(X, np.ones((2, 1)), 1.0).transform_inputs(X)
    assert np.allclose(np.linalg.norm(U, axis=1), 1.0, rtol=1e-12)
