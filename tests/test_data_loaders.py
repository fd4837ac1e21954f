"""CSV loaders: round trips of files the tests write themselves, and clear errors for bad files."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from spherenet.data import (FlightData, load_neural_fly, load_neural_lander, write_neural_fly_csv,
                            write_neural_lander_csv)
from spherenet.data.loaders import NEURAL_FLY_COLUMNS, NEURAL_LANDER_COLUMNS


def make_data(n=40, n_flights=1, seed=0):
    rng = np.random.default_rng(seed)
    q = rng.standard_normal((n, 4))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    q *= np.sign(q[:, 3:4])
    X = np.column_stack([rng.uniform(0.1, 3, n), rng.normal(0, 1, (n, 3)), q, rng.uniform(0.3, 0.9, (n, 4))])
    flight = np.repeat(np.arange(n_flights), -(-n // n_flights))[:n]
    return FlightData(X, rng.normal(0, 3, (n, 3)), flight, np.arange(n) * 0.01, source="test")


def lander_text(rows, header=NEURAL_LANDER_COLUMNS):
    return ",".join(header) + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n"


GOOD_ROW = [0.0, 1.0, 0.1, 0.2, 0.3, 0.0, 0.0, 0.0, 1.0, 0.6, 0.6, 0.6, 0.6, 1.0, -2.0, 0.5]


def fly_line(i, p="[0.0, 0.0, 1.5]", v="[0.1, 0.2, 0.3]", q="[0.0, 0.0, 0.0, 1.0]", fa="[1.0, -2.0, 0.5]",
             pwm="[1300.0, 1310.0, 1290.0, 1305.0]", t=None):
    R = "[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]"
    cells = [str(i), str(0.02 * i if t is None else t), p, p, v, v, q, R, "[0.0, 0.0, 0.0]", "[0.6]", q,
             "[0.5]", fa, pwm]
    return ",".join(f'"{c}"' if "," in c else c for c in cells)


def write_fly(path, lines):
    path.write_text(",".join(("",) + NEURAL_FLY_COLUMNS) + "\n" + "\n".join(lines) + "\n")
    return path


def test_neural_lander_round_trip_single_and_multi_flight(tmp_path):
    for n_flights in (1, 3):
        d = make_data(n_flights=n_flights)
        loaded = load_neural_lander(write_neural_lander_csv(tmp_path / f"f{n_flights}.csv", d))
        assert np.array_equal(loaded.X, d.X) and np.array_equal(loaded.Y, d.Y) and np.array_equal(loaded.t, d.t)
        assert np.array_equal(loaded.flight, d.flight) and loaded.source == "neural-lander"


def test_neural_lander_folder_renumbers_flights(tmp_path):
    write_neural_lander_csv(tmp_path / "b.csv", make_data(10, seed=1))
    write_neural_lander_csv(tmp_path / "a.csv", make_data(20, n_flights=2, seed=2))
    (tmp_path / "notes.txt").write_text("not data")
    d = load_neural_lander(tmp_path)
    assert len(d) == 30 and list(d.flight_ids) == [0, 1, 2]
    assert d.meta[2]["source_file"].endswith("b.csv") and d.meta[0]["source_file"].endswith("a.csv")


def test_neural_fly_round_trip_and_metadata(tmp_path):
    d = make_data(30)
    path = write_neural_fly_csv(tmp_path / "custom_figure8_baseline_35wind.csv", d, pwm_scale=1000.0)
    loaded = load_neural_fly(path)
    np.testing.assert_allclose(loaded.X, d.X, rtol=1e-15, atol=1e-15)
    assert np.array_equal(loaded.Y, d.Y) and np.array_equal(loaded.t, d.t)
    m = loaded.meta[0]
    assert (m["vehicle"], m["trajectory"], m["method"], m["condition"], m["wind_percent"]) == \
        ("custom", "figure8", "baseline", "35wind", 35.0)


def test_neural_fly_folder_one_flight_per_file_and_pwm_scale(tmp_path):
    for name in ("x_figure8_nf_nowind", "x_figure8_nf_70wind", "x_random_nf_70p20sint"):
        write_fly(tmp_path / f"{name}.csv", [fly_line(i) for i in range(5)])
    d = load_neural_fly(tmp_path, pwm_scale=2000.0)
    assert len(d) == 15 and list(d.flight_ids) == [0, 1, 2]
    assert [d.meta[i].get("wind_percent") for i in range(3)] == [70.0, 0.0, None]
    np.testing.assert_allclose(d.X[0, 8:], np.array([1300.0, 1310.0, 1290.0, 1305.0]) / 2000.0)
    np.testing.assert_allclose(d.X[0, :4], [1.5, 0.1, 0.2, 0.3])
    np.testing.assert_allclose(d.Y[0], [1.0, -2.0, 0.5])


def test_quaternion_made_canonical_unless_asked(tmp_path):
    path = write_fly(tmp_path / "f.csv", [fly_line(0, q="[0.1, -0.2, 0.0, -0.9746794344808963]")])
    assert load_neural_fly(path).X[0, 7] > 0
    np.testing.assert_allclose(load_neural_fly(path, canonical_quaternion=False).X[0, 4:8],
                               [0.1, -0.2, 0.0, -0.9746794344808963])


@settings(deadline=None, max_examples=20, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(-1e6, 1e6, allow_nan=False, allow_subnormal=False), min_size=16, max_size=16))
def test_lander_round_trip_any_finite_numbers(tmp_path, values):
    values[1] = 1.0 if values[1] == 0 else values[1]
    values[13] = 1.0
    path = tmp_path / "h.csv"
    path.write_text(lander_text([[repr(v) for v in values]]))
    d = load_neural_lander(path, canonical_quaternion=False)
    assert np.array_equal(d.X[0], values[1:13]) and np.array_equal(d.Y[0], values[13:16])


@pytest.mark.parametrize("rows,match", [
    ([[*GOOD_ROW[:3], "abc", *GOOD_ROW[4:]]], r"\.csv:2: column 'vy': not a number"),
    ([GOOD_ROW, [*GOOD_ROW[:3], "nan", *GOOD_ROW[4:]]], r"\.csv:3: column 'vy': non-finite"),
    ([[*GOOD_ROW[:14], "inf", GOOD_ROW[15]]], r"\.csv:2: column 'fay': non-finite"),
    ([GOOD_ROW, [GOOD_ROW[0]] + [0.0] * 12 + GOOD_ROW[13:]], r"\.csv:3: zero-norm input row"),
    ([GOOD_ROW[:13] + [0.0, 0.0, 0.0]] * 2, r"\.csv: all targets are zero"),
    ([GOOD_ROW, GOOD_ROW[:10]], r"\.csv:3: 10 cells, the header has 16"),
])
def test_lander_bad_cells_name_file_and_line(tmp_path, rows, match):
    path = tmp_path / "bad.csv"
    path.write_text(lander_text(rows))
    with pytest.raises(ValueError, match=match):
        load_neural_lander(path)


def test_lander_missing_column_and_empty_files(tmp_path):
    path = tmp_path / "missing.csv"
    path.write_text(lander_text([GOOD_ROW[:-1]], NEURAL_LANDER_COLUMNS[:-1]))
    with pytest.raises(ValueError, match=r"missing\.csv:1: missing column\(s\) faz"):
        load_neural_lander(path)
    (tmp_path / "empty.csv").write_text("")
    with pytest.raises(ValueError, match=r"empty\.csv: empty file"):
        load_neural_lander(tmp_path / "empty.csv")
    (tmp_path / "header.csv").write_text(",".join(NEURAL_LANDER_COLUMNS) + "\n\n")
    with pytest.raises(ValueError, match=r"header\.csv: empty file \(header only"):
        load_neural_lander(tmp_path / "header.csv")


def test_missing_path_and_empty_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        load_neural_fly(tmp_path / "nope.csv")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"folder .*sub contains no \.csv"):
        load_neural_fly(tmp_path / "sub")
    with pytest.raises(ValueError, match="pwm_scale"):
        load_neural_fly(tmp_path, pwm_scale=0.0)


@pytest.mark.parametrize("kwargs,match", [
    (dict(v="[1, 2"), r"f\.csv:3: column 'v': malformed list cell"),
    (dict(v="[a,b,c]"), r"f\.csv:3: column 'v': not a number"),
    (dict(q="[0.0, 0.0, 1.0]"), r"f\.csv:3: column 'q': list cell .* has 3 entries, expected 4"),
    (dict(fa="[1.0, NaN, 0.0]"), r"f\.csv:3: column 'fa': non-finite"),
    (dict(pwm="1300"), r"f\.csv:3: column 'pwm': malformed list cell"),
    (dict(t="x"), r"f\.csv:3: column 't': not a number"),
    (dict(p="[0.0, 0.0, 0.0]", v="[0.0, 0.0, 0.0]", q="[0.0, 0.0, 0.0, 0.0]", pwm="[0.0, 0.0, 0.0, 0.0]"),
     r"f\.csv:3: zero-norm input row"),
])
def test_neural_fly_bad_cells_name_file_and_line(tmp_path, kwargs, match):
    path = write_fly(tmp_path / "f.csv", [fly_line(0), fly_line(1, **kwargs), fly_line(2)])
    with pytest.raises(ValueError, match=match):
        load_neural_fly(path)


def test_neural_fly_missing_column_and_zero_targets(tmp_path):
    path = tmp_path / "f.csv"
    path.write_text(",t,p,v,q,fa\n0,0.0,\"[0, 0, 1]\",\"[0, 0, 0]\",\"[0, 0, 0, 1]\",\"[1, 1, 1]\"\n")
    with pytest.raises(ValueError, match=r"f\.csv:1: missing column\(s\) pwm"):
        load_neural_fly(path)
    path = write_fly(tmp_path / "z.csv", [fly_line(i, fa="[0.0, 0.0, 0.0]") for i in range(3)])
    with pytest.raises(ValueError, match=r"z\.csv: all targets are zero"):
        load_neural_fly(path)


def test_writers_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="one flight per file"):
        write_neural_fly_csv(tmp_path / "x.csv", make_data(n_flights=2))
    with pytest.raises(TypeError, match="FlightData"):
        write_neural_lander_csv(tmp_path / "x.csv", np.zeros((3, 15)))


# --- data faults named (issue 21): every refusal names the file, the line and the column ----------------

def _lander_file(path, rows, header=NEURAL_LANDER_COLUMNS, encoding="utf-8", bom=b""):
    path.write_bytes(bom + lander_text(rows, header).encode(encoding))
    return path


def test_duplicate_column_names_are_refused(tmp_path):
    header = NEURAL_LANDER_COLUMNS[:13] + ("fax", "fay", "faz", "fax")
    path = _lander_file(tmp_path / "dup.csv", [GOOD_ROW + [999.0]], header)
    with pytest.raises(ValueError, match=r"dup\.csv:1: column 'fax' appears twice \(columns 14 and 17\)"):
        load_neural_lander(path)
    fly = tmp_path / "f.csv"
    fly.write_text(",".join(("",) + NEURAL_FLY_COLUMNS + ("fa",)) + "\n" + fly_line(0) + ",1\n")
    with pytest.raises(ValueError, match=r"f\.csv:1: column 'fa' appears twice"):
        load_neural_fly(fly)


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    plain = load_neural_lander(_lander_file(tmp_path / "a.csv", [GOOD_ROW]))
    marked = load_neural_lander(_lander_file(tmp_path / "b.csv", [GOOD_ROW], bom=b"\xef\xbb\xbf"))
    assert np.array_equal(plain.X, marked.X) and np.array_equal(plain.Y, marked.Y)


@pytest.mark.parametrize("content, match", [
    (b"PK\x03\x04\x14\x00\x00\x00", r"x\.csv:1: a zip archive"),
    (b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X", r"x\.csv:1: a macOS resource file"),
    ("t,z\n".encode("utf-16"), r"x\.csv:1: UTF-16 text \(save it as UTF-8\)"),
    ("t,z\n".encode("utf-16-le"), r"x\.csv:1: column 2: byte 0x00: binary data"),
    (b"t,z\n0,1\n0,\xe9t\xe9\n", r"x\.csv:3: column 3: byte 0xe9: not UTF-8 text"),
    (bytes(range(256)) * 4, r"x\.csv:1: column 1: byte 0x00: binary data"),
])
def test_files_that_are_not_utf8_text_are_named_at_their_line(tmp_path, content, match):
    (tmp_path / "x.csv").write_bytes(content)
    with pytest.raises(ValueError, match=match):
        load_neural_lander(tmp_path / "x.csv")


def test_macos_resource_twins_in_a_folder_are_skipped(tmp_path):
    _lander_file(tmp_path / "log.csv", [GOOD_ROW])
    (tmp_path / "._log.csv").write_bytes(b"\x00\x05\x16\x07\x00\x02\x00\x00Mac OS X        ")
    assert len(load_neural_lander(tmp_path)) == 1


def test_an_oversized_cell_is_named_at_its_line(tmp_path):
    rows = [GOOD_ROW] * 3 + [[*GOOD_ROW[:15], "1" * 200_000]] + [GOOD_ROW]
    with pytest.raises(ValueError, match=r"big\.csv:5: field larger than field limit"):
        load_neural_lander(_lander_file(tmp_path / "big.csv", rows))


def test_an_unterminated_quote_is_named_where_it_opens(tmp_path):
    lines = [fly_line(i) for i in range(300)]
    lines[39] = lines[39][:-1]                    # file line 41: the last cell's closing quote is missing
    with pytest.raises(ValueError, match=r"f\.csv:41: a quoted cell runs over \d+ lines \(an unterminated quote"):
        load_neural_fly(write_fly(tmp_path / "f.csv", lines))


@pytest.mark.parametrize("cell", ["1_0", "١٠", "infinity", "0x10", "1e5_0"])
def test_numbers_python_reads_but_a_csv_does_not_mean_are_refused(tmp_path, cell):
    path = _lander_file(tmp_path / "n.csv", [GOOD_ROW, [*GOOD_ROW[:2], cell, *GOOD_ROW[3:]]])
    with pytest.raises(ValueError, match=r"n\.csv:3: column 'vx': (not a plain decimal|not a number|non-finite)"):
        load_neural_lander(path)
    fly = write_fly(tmp_path / "f.csv", [fly_line(0), fly_line(1, fa="[1_0, 2, 3]")])
    with pytest.raises(ValueError, match=r"f\.csv:3: column 'fa': not a plain decimal number: '1_0'"):
        load_neural_fly(fly)


@pytest.mark.parametrize("target, how", [(1e200, "overflows"), (-1e300, "overflows"), (1e-300, "underflows"),
                                         (2e-170, "underflows")])
def test_targets_whose_squares_leave_double_range_are_refused_at_load(tmp_path, target, how):
    rows = [GOOD_ROW, GOOD_ROW[:13] + [0.0, target, 0.0]]
    with pytest.raises(ValueError, match=rf"r\.csv:3: column 'fay': target .*squared norm {how}"):
        load_neural_lander(_lander_file(tmp_path / "r.csv", rows))
    fly = write_fly(tmp_path / "f.csv", [fly_line(0, fa=f"[0.0, {target!r}, 0.0]")] * 2)
    with pytest.raises(ValueError, match=rf"f\.csv:2: column 'fa': target .*squared norm {how}"):
        load_neural_fly(fly)


def test_targets_near_the_range_limits_train(tmp_path):
    """The bound is the scaling's: targets of 1e150 N and of 1e-150 N still give a finite fit."""
    from spherenet.data import PaperScaling
    for scale in (1e150, 1e-150):
        rows = [GOOD_ROW[:13] + [scale * v for v in (1.0, -2.0, 0.5)]] * 2
        d = load_neural_lander(_lander_file(tmp_path / "ok.csv", rows))
        s = PaperScaling.fit(d.X, d.Y, 1.0)
        assert np.isfinite(s.y_max) and s.y_max > 0 and np.all(np.isfinite(s.transform_targets(d.Y)))
