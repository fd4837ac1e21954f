"""FlightData container and the splits."""
import numpy as np
import pytest

from spherenet.data import FlightData, concat, random_split, split_by_condition, split_by_flight


def make(n=100, n_flights=5, seed=0):
    rng = np.random.default_rng(seed)
    flight = np.repeat(np.arange(n_flights), n // n_flights)
    meta = {f: {"wind_speed": float(2 * f), "condition": f"{10 * f}wind"} for f in range(n_flights)}
    return FlightData(rng.normal(size=(n, 12)), rng.normal(size=(n, 3)), flight, np.arange(n) * 0.01,
                      source="test", meta=meta)


def rows(d):
    return {tuple(r) for r in d.X}


def test_random_split_sizes_disjoint_and_seeded():
    d = make()
    train, test = random_split(d, 0.2, seed=3)
    assert (len(train), len(test)) == (80, 20)
    assert rows(train).isdisjoint(rows(test)) and rows(train) | rows(test) == rows(d)
    again = random_split(d, 0.2, seed=3)[1]
    other = random_split(d, 0.2, seed=4)[1]
    assert np.array_equal(again.X, test.X) and not np.array_equal(other.X, test.X)
    with pytest.raises(ValueError, match="test_fraction"):
        random_split(d, 1.0)
    with pytest.raises(ValueError, match="empty"):
        random_split(make(2, 1), 0.1)


def test_split_by_flight_keeps_flights_whole():
    train, test = split_by_flight(make(), [1, 3])
    assert set(test.flight_ids) == {1, 3} and set(train.flight_ids) == {0, 2, 4}
    assert len(test) == 40 and set(test.meta) == {1, 3}
    with pytest.raises(ValueError, match=r"unknown flight id\(s\) \[9\]"):
        split_by_flight(make(), [9])
    with pytest.raises(ValueError, match="train part empty"):
        split_by_flight(make(), [0, 1, 2, 3, 4])


def test_split_by_condition_range_and_predicate():
    train, test = split_by_condition(make(), key="wind_speed", test_range=(5.0, 8.0))
    assert set(test.flight_ids) == {3, 4}
    train, test = split_by_condition(make(), lambda m: m["condition"] == "20wind")
    assert set(test.flight_ids) == {2}
    with pytest.raises(ValueError, match="no key 'gust'"):
        split_by_condition(make(), key="gust", test_range=(0, 1))
    with pytest.raises(ValueError, match="either predicate or key"):
        split_by_condition(make())
    with pytest.raises(ValueError, match="test part empty"):
        split_by_condition(make(), key="wind_speed", test_range=(100, 200))


def test_flightdata_is_validated_and_immutable():
    d = make()
    with pytest.raises(ValueError):
        d.X[0, 0] = 1.0
    with pytest.raises(ValueError, match="X has 12 columns, expected 13"):
        FlightData(d.X, d.Y, d.flight, d.t, feature_names=d.feature_names + ("extra",))
    with pytest.raises(ValueError, match="flight must have shape"):
        FlightData(d.X, d.Y, d.flight[:5], d.t)
    with pytest.raises(ValueError, match="non-finite"):
        FlightData(np.full((2, 12), np.inf), np.zeros((2, 3)), [0, 0], [0.0, 1.0])
    with pytest.raises(TypeError, match="flight must hold integers"):
        FlightData(d.X, d.Y, d.flight + 0.5, d.t)


def test_subset_and_concat():
    d = make()
    sub = d.subset([5, 1, 99])
    assert np.array_equal(sub.X, d.X[[5, 1, 99]]) and set(sub.meta) == {0, 4}
    mask = d.flight == 2
    assert np.array_equal(d.subset(mask).X, d.X[mask])
    with pytest.raises(ValueError, match="out of range"):
        d.subset([100])
    a, b = split_by_flight(d, [0])
    both = concat([a, b])
    assert len(both) == 100 and set(both.meta) == set(d.meta)
    other = make(seed=1)
    with pytest.raises(ValueError, match="renumber=True"):
        concat([d, FlightData(other.X, other.Y, other.flight, other.t, meta={0: {"wind_speed": -1}})])
    ren = concat([d, other], renumber=True)
    assert list(ren.flight_ids) == list(range(10)) and ren.meta[7]["wind_speed"] == 4.0
