"""Generated data: shapes, units, magnitudes, determinism, and the label pipeline's physics."""
import time

import numpy as np
import pytest

from spherenet.data import (FEATURE_NAMES, QuadrotorParams, WindModel, default_problem, ground_effect_ratio,
                            make_references, simulate_dataset, simulate_flights, simulate_references)
from spherenet.data.measurement import lowpass
from spherenet.data.trajectories import Reference

SMALL = dict(n_samples=2000, flight_duration=5.0)
CALM = WindModel(speed=0.0, turbulence_base=0.0, turbulence_fraction=0.0)


@pytest.fixture(scope="module")
def problem():
    return default_problem(seed=0, split="flights", **SMALL)


def test_default_problem_random_split_shares_the_flights_samples(problem):
    """The default split is the paper's: the same flights as split="flights", their samples split at random."""
    train, test = default_problem(seed=0, **SMALL)
    flights_train, flights_test = problem
    assert (len(train), len(test)) == (1600, 400)
    assert set(train.flight_ids) & set(test.flight_ids)                 # flights on both sides
    both = np.vstack([train.X, test.X])
    same = np.vstack([flights_train.X, flights_test.X])
    assert np.array_equal(np.sort(both, axis=0), np.sort(same, axis=0))  # the same samples, re-split
    with pytest.raises(ValueError, match="split"):
        default_problem(seed=0, split="by-wind", **SMALL)


def hover_refs(heights, params, n_samples, warmup=1.5, tail=0.3):
    total = int(round(warmup * params.sample_rate)) + n_samples + int(round(tail * params.sample_rate))
    n_steps = (total - 1) * params.steps_per_sample + 1
    return [Reference(np.tile([0.0, 0.0, h], (n_steps, 1)), np.zeros((n_steps, 3)), np.zeros((n_steps, 3)),
                      0.0, "hover") for h in heights]


def test_default_problem_shapes_and_layout(problem):
    train, test = problem
    assert (len(train), len(test)) == (1600, 400)
    for d in (train, test):
        assert d.X.dtype == np.float64 and d.Y.dtype == np.float64 and d.X.shape[1] == 12 and d.Y.shape[1] == 3
        assert d.feature_names == FEATURE_NAMES
        assert np.all(np.isfinite(d.X)) and np.all(np.isfinite(d.Y))
        np.testing.assert_allclose(np.linalg.norm(d.X[:, 4:8], axis=1), 1.0, atol=1e-12)
        assert np.all(d.X[:, 7] >= 0)
        for f in d.flight_ids:
            np.testing.assert_allclose(np.diff(d.t[d.flight == f]), 0.01, atol=1e-12)
    assert set(train.flight_ids).isdisjoint(test.flight_ids)
    assert {m["kind"] for m in train.meta.values()} == {"waypoints"}
    assert {m["kind"] for m in test.meta.values()} == {"figure8"}


def test_magnitudes_match_the_real_data_ranges(problem):
    train, test = problem
    for d in (train, test):
        speed = np.linalg.norm(d.X[:, 1:4], axis=1)
        assert speed.max() < 2.6
        assert 0.1 < d.X[:, 0].min() and d.X[:, 0].max() < 3.0
        u = d.X[:, 8:]
        assert 0.1 < u.min() and u.max() < 1.2
        assert np.all(d.Y.std(axis=0) > 0.1) and np.linalg.norm(d.Y, axis=1).max() < 30.0
    assert np.mean(train.X[:, 0] < 1.5) > 0.3
    winds = [m["wind_speed"] for m in train.meta.values()]
    assert 0.0 <= min(winds) and max(winds) <= 12.0


def test_residual_points_along_the_wind(problem):
    train, _ = problem
    for fid, m in train.meta.items():
        if m["wind_speed"] > 4.0:
            mean_f = train.Y[train.flight == fid].mean(axis=0)
            wind_dir = np.asarray(m["wind"]) / m["wind_speed"]
            assert mean_f @ wind_dir > 0.4 * m["wind_speed"], (fid, mean_f, m["wind"])


def test_same_seed_identical_different_seed_differs():
    a = simulate_flights("waypoints", 2, 2.0, seed=5)
    b = simulate_flights("waypoints", 2, 2.0, seed=5)
    c = simulate_flights("waypoints", 2, 2.0, seed=6)
    assert np.array_equal(a.X, b.X) and np.array_equal(a.Y, b.Y) and np.array_equal(a.t, b.t)
    assert not np.allclose(a.X, c.X) and not np.allclose(a.Y, c.Y)


def test_without_aero_the_residual_is_only_noise():
    params = QuadrotorParams().without_aero()
    wind = WindModel(speed=(6.0, 10.0))
    noisy = simulate_flights("waypoints", 2, 4.0, seed=1, params=params, wind=wind)
    assert np.abs(noisy.Y.mean(axis=0)).max() < 0.05
    assert noisy.Y.std(axis=0).max() < 0.4
    clean = simulate_flights("waypoints", 2, 4.0, seed=1, params=params.without_noise(), wind=wind)
    assert np.abs(clean.Y).max() < 0.03
    with_aero = simulate_flights("waypoints", 2, 4.0, seed=1, wind=wind)
    assert with_aero.Y.std(axis=0).min() > 3 * noisy.Y.std(axis=0).max()


def test_noise_free_label_equals_low_passed_true_force():
    params = QuadrotorParams().without_noise()
    refs = make_references(["figure8", "waypoints"], 4.0, params, seed=2)
    res = simulate_references(refs, seed=2, params=params, n_samples=400)
    label = res.data.Y.reshape(2, 400, 3)
    truth = lowpass(res.true_force, params)[:, 20:-20]
    assert np.sqrt(np.mean((label[:, 20:-20] - truth) ** 2)) < 0.03
    assert res.true_force.std() > 1.0


def test_hover_in_ground_effect_label_matches_cheeseman_bennett():
    params = QuadrotorParams(rotor_drag=False, body_drag=False, translational_lift=False).without_noise()
    res = simulate_references(hover_refs([0.2, 2.0], params, 200), seed=0, params=params, wind=CALM,
                              n_samples=200)
    fz = res.data.Y.reshape(2, 200, 3)[:, :, 2].mean(axis=1)
    weight = params.mass * params.gravity
    expected = weight * (1 - 1 / ground_effect_ratio(np.array([0.2, 2.0]), params))
    np.testing.assert_allclose(fz, expected, atol=0.01)
    assert fz[0] > 0.4 and abs(fz[1]) < 0.02


def test_simulate_dataset_exact_size():
    d = simulate_dataset(n_samples=450, seed=3, flight_duration=2.0)
    assert len(d) == 450 and list(d.flight_ids) == [0, 1, 2]
    assert np.sum(d.flight == 2) == 50


def test_bad_arguments_raise():
    with pytest.raises(ValueError, match="n_samples"):
        simulate_dataset(n_samples=0)
    with pytest.raises(TypeError, match="n_samples"):
        simulate_dataset(n_samples=10.5)
    with pytest.raises(ValueError, match="kind"):
        simulate_flights("circle", 1, 1.0)
    with pytest.raises(ValueError, match="test_fraction"):
        default_problem(n_samples=100, test_fraction=1.0)
    with pytest.raises(ValueError, match="wind speed"):
        simulate_flights("waypoints", 1, 1.0, wind=WindModel(speed=(5.0, 1.0)))
    with pytest.raises(TypeError, match="wind"):
        simulate_flights("waypoints", 1, 1.0, wind="strong")


def test_wind_shorthand_sets_the_speed():
    d = simulate_flights("figure8", 2, 1.0, seed=0, wind=3.0)
    assert [m["wind_speed"] for m in d.meta.values()] == pytest.approx([3.0, 3.0])


def test_default_size_generation(capsys):
    t0 = time.perf_counter()
    train, test = default_problem(seed=0)
    elapsed = time.perf_counter() - t0
    assert (len(train), len(test)) == (24000, 6000)
    assert np.all(np.isfinite(train.Y)) and np.all(np.isfinite(test.Y))
    for d in (train, test):
        std = d.Y.std(axis=0)
        assert np.all(std > 0.5) and np.all(std < 8.0), std
        assert np.linalg.norm(d.X[:, 1:4], axis=1).max() < 2.6
    low = np.mean(train.X[:, 0] < 1.5)
    assert low > 0.3
    with capsys.disabled():
        print(f"\n[default_problem: 30000 samples in {elapsed:.2f} s; train F_a mean "
              f"{np.round(train.Y.mean(0), 2)} std {np.round(train.Y.std(0), 2)}; z < 1.5 m: {low:.0%}]")
