"""Closed-loop flight simulation in wind: the embedded default data of spherenet.

All flights of a call are integrated at once (state arrays ``(n_flights, 17)``), so one RK4 step costs
the same NumPy calls for 1 or 40 flights. Per flight: a reference (:mod:`.trajectories`), a constant
wind ``w_0`` (:class:`WindModel`: speed uniform in 0-12 m/s by default, horizontal direction uniform in [0, 2 pi)) plus
turbulence, an Ornstein-Uhlenbeck process per axis (exact discretisation at the step ``dt``)::

    w(t) = w_0 + g(t),   g_{k+1} = a g_k + sigma_g sqrt(1 - a^2) xi_k,   a = exp(-dt / tau_g),
    sigma_g = turbulence_base + turbulence_fraction |w_0|

Each flight starts in the trimmed equilibrium at rest in ``w_0`` at its reference start (tilted into
the wind, controller integral preloaded: :func:`.controller.trim_state`), as if it had been hovering in
that wind before the log starts. The first ``warmup`` seconds and the last ``tail`` seconds are simulated
but discarded (transient and filter edge effects). Sensing and labelling: :mod:`.measurement`.

Speed (measured, 2 slow cores): the default 30,000 samples (20 flights x 15 s, RK4 at 200 Hz) take 2-4 s.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from .._checks import check_choice, finite_float, positive_int
from .container import FlightData, concat
from .controller import ControllerGains, control, position_gains, trim_state, update_integral
from .measurement import features, measure, residual_force
from .quadrotor import Q, QuadrotorParams, aerodynamic_force, rk4_step
from .trajectories import TRAJECTORIES, Reference
from .splits import random_split


@dataclass(frozen=True)
class WindModel:
    """Constant wind speed [m/s]: a range (lo, hi) sampled uniformly per flight, or one value; turbulence
    std sigma_g = turbulence_base + turbulence_fraction |w_0| [m/s], correlation time turbulence_time [s]."""

    speed: tuple | float = (0.0, 12.0)
    turbulence_base: float = 0.1
    turbulence_fraction: float = 0.08
    turbulence_time: float = 0.5

    def __post_init__(self):
        lo, hi = self.speed_range
        if not (np.isfinite(lo) and np.isfinite(hi) and 0 <= lo <= hi):
            raise ValueError(f"wind speed range must satisfy 0 <= lo <= hi, got {self.speed}")
        finite_float("turbulence_base", self.turbulence_base, nonnegative=True)
        finite_float("turbulence_fraction", self.turbulence_fraction, nonnegative=True)
        finite_float("turbulence_time", self.turbulence_time, positive=True)

    @property
    def speed_range(self) -> tuple[float, float]:
        if np.isscalar(self.speed):
            return float(self.speed), float(self.speed)
        if len(self.speed) != 2:
            raise ValueError(f"wind speed must be a number or a pair (lo, hi), got {self.speed}")
        return float(self.speed[0]), float(self.speed[1])

    def sample(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Mean winds w_0 (n, 3) [m/s], horizontal with uniform direction, and sigma_g (n,) [m/s]."""
        speed = rng.uniform(*self.speed_range, n)
        angle = rng.uniform(0.0, 2 * np.pi, n)
        w0 = np.stack([speed * np.cos(angle), speed * np.sin(angle), np.zeros(n)], axis=1)
        return w0, self.turbulence_base + self.turbulence_fraction * speed


def _as_wind(wind) -> WindModel:
    """None -> default WindModel; a number or (lo, hi) -> WindModel(speed=wind)."""
    if wind is None:
        return WindModel()
    if isinstance(wind, WindModel):
        return wind
    if isinstance(wind, (int, float, tuple, list)) and not isinstance(wind, bool):
        return WindModel(speed=tuple(wind) if isinstance(wind, list) else wind)
    raise TypeError(f"wind must be a WindModel, a speed [m/s] or a (lo, hi) range, got {wind!r}")


@dataclass(frozen=True)
class SimulationResult:
    """The data set plus the ground truth behind it, at the kept samples.

    data: FlightData; states: (n_flights, S, 17) true states; wind: (n_flights, S, 3) air velocity [m/s];
    true_force: (n_flights, S, 3) true residual F_a [N] (unfiltered, noise-free).
    """

    data: FlightData
    states: np.ndarray
    wind: np.ndarray
    true_force: np.ndarray


def _integrate(refs, w0, sigma_g, wind_model, params, gains, rng, n_samples_total):
    """Run all flights; returns sampled states, winds, true forces, each (n, n_samples_total, ...)."""
    n, steps_per_sample, dt = len(refs), params.steps_per_sample, params.dt
    P_d, V_d, A_d = (np.stack([getattr(r, k) for r in refs]) for k in ("p", "v", "a"))
    yaw = np.array([r.yaw for r in refs])
    state, F_trim = trim_state(P_d[:, 0], yaw, w0, params)
    k_i = position_gains(params, gains)[2]
    weight = np.array([0.0, 0.0, params.mass * params.gravity])
    integral = np.clip((weight - F_trim) / k_i, -gains.i_max, gains.i_max)
    a = np.exp(-dt / wind_model.turbulence_time)
    gust = sigma_g[:, None] * rng.standard_normal((n, 3))
    out_s = np.empty((n, n_samples_total, state.shape[1]))
    out_w = np.empty((n, n_samples_total, 3))
    for k in range((n_samples_total - 1) * steps_per_sample + 1):
        wind = w0 + gust
        if k % steps_per_sample == 0:
            out_s[:, k // steps_per_sample], out_w[:, k // steps_per_sample] = state, wind
            if k // steps_per_sample == n_samples_total - 1:
                break
        cmd = control(state, P_d[:, k], V_d[:, k], A_d[:, k], yaw, integral, params, gains)
        integral = update_integral(integral, state, P_d[:, k], dt, gains)
        state = rk4_step(state, cmd, wind, dt, params)
        # RK4 does not preserve |q| = 1: project back after every step
        state[:, Q] /= np.linalg.norm(state[:, Q], axis=1, keepdims=True)
        gust = a * gust + sigma_g[:, None] * np.sqrt(1 - a * a) * rng.standard_normal((n, 3))
    true_f = aerodynamic_force(out_s.reshape(-1, out_s.shape[-1]), out_w.reshape(-1, 3), params)
    return out_s, out_w, true_f.reshape(n, n_samples_total, 3)


def _check_flights(refs, states, keep, sps, max_error: float = 2.0):
    """Max tracking error [m] and min true height [m] per flight; a crash is an error, not data.

    The model has no ground contact: a flight whose true height reaches 0 m, or whose tracking error
    exceeds ``max_error``, raises RuntimeError naming it (never seen with the defaults).
    """
    p_d = np.stack([r.p[::sps][keep] for r in refs])
    err = np.sqrt(np.sum((states[..., :3] - p_d) ** 2, axis=-1)).max(axis=1)
    min_z = states[..., 2].min(axis=1)
    for i in range(len(refs)):
        if min_z[i] <= 0.0 or err[i] > max_error:
            raise RuntimeError(f"flight {i} ({refs[i].kind}) crashed: min height {min_z[i]:.3f} m, max "
                               f"tracking error {err[i]:.2f} m; change the seed, wind or gains")
    return err, min_z


def _flight_meta(ref: Reference, w0, sigma_g, err, min_z, label_noise_ms) -> dict:
    return {"kind": ref.kind, "label_noise_ms": float(label_noise_ms), "wind": w0.tolist(), "wind_speed": float(np.linalg.norm(w0)),
            "wind_direction": float(np.arctan2(w0[1], w0[0])), "turbulence_std": float(sigma_g),
            "yaw": ref.yaw, "max_tracking_error": float(err), "min_height": float(min_z), **ref.info}


def simulate_references(refs: list[Reference], *, seed=0, params: QuadrotorParams | None = None,
                        gains: ControllerGains | None = None, wind=None, n_samples: int,
                        warmup: float = 1.5, tail: float = 0.3,
                        first_flight_id: int = 0, source: str = "simulator") -> SimulationResult:
    """Fly the references (each sampled on the integration grid starting at ``-warmup``) and log them.

    Returns ``n_samples`` kept samples per flight at ``params.sample_rate``: data.X (n S, 12),
    data.Y (n S, 3) [N], flight ids ``first_flight_id + i``, plus the ground truth.
    """
    if not refs:
        raise ValueError("refs must hold at least one Reference")
    n_samples = positive_int("n_samples", n_samples)
    params, gains, wind = params or QuadrotorParams(), gains or ControllerGains(), _as_wind(wind)
    rng_wind, rng_turb, rng_noise = np.random.default_rng(seed).spawn(3)
    fs, sps = params.sample_rate, params.steps_per_sample
    n_warm, n_tail = int(round(warmup * fs)), int(round(tail * fs))
    total = n_warm + n_samples + n_tail
    for i, r in enumerate(refs):
        if r.p.shape[0] < (total - 1) * sps + 1:
            raise ValueError(f"refs[{i}] has {r.p.shape[0]} steps, need {(total - 1) * sps + 1}")
    w0, sigma_g = wind.sample(len(refs), rng_wind)
    states, winds, true_f = _integrate(refs, w0, sigma_g, wind, params, gains, rng_turb, total)
    z, v, q, om = measure(states, params, rng_noise)
    keep = slice(n_warm, n_warm + n_samples)
    X = features(z, v, q, om, params)[:, keep]
    Y = residual_force(v, q, om, params)[:, keep]
    err, min_z = _check_flights(refs, states[:, keep], keep, sps)
    n = len(refs)
    ids = first_flight_id + np.arange(n)
    noise_ms = np.mean(np.sum((Y - true_f[:, keep]) ** 2, axis=-1), axis=1)       # per flight [N^2]
    meta = {int(ids[i]): _flight_meta(refs[i], w0[i], sigma_g[i], err[i], min_z[i], noise_ms[i])
            for i in range(n)}
    data = FlightData(X.reshape(-1, X.shape[-1]), Y.reshape(-1, 3), np.repeat(ids, n_samples),
                      np.tile(np.arange(n_samples) / fs, n), source=source, meta=meta)
    return SimulationResult(data, states[:, keep], winds[:, keep], true_f[:, keep])


def make_references(kinds: list[str], duration: float, params: QuadrotorParams, seed=0,
                    warmup: float = 1.5, tail: float = 0.3, **traj_kwargs) -> list[Reference]:
    """One reference per entry of ``kinds`` ("waypoints" | "figure8"), covering warm-up + duration + tail."""
    for kind in kinds:
        check_choice("kind", kind, tuple(TRAJECTORIES))
    fs, sps = params.sample_rate, params.steps_per_sample
    total = int(round(warmup * fs)) + int(round(duration * fs)) + int(round(tail * fs))
    t = -warmup + params.dt * np.arange((total - 1) * sps + 1)
    rngs = np.random.default_rng(seed).spawn(len(kinds))
    return [TRAJECTORIES[kind](t, rng, **traj_kwargs) for kind, rng in zip(kinds, rngs)]


def simulate_flights(kind: str = "waypoints", n_flights: int = 4, duration: float = 15.0, seed=0, *,
                     params: QuadrotorParams | None = None, wind=None,
                     gains: ControllerGains | None = None, **traj_kwargs) -> FlightData:
    """``n_flights`` flights of ``duration`` seconds of one trajectory ``kind`` ("waypoints" | "figure8").

    Returns FlightData with n_flights * round(duration * sample_rate) samples, flight ids 0..n_flights-1.
    ``wind``: a WindModel, a constant speed [m/s] or a (lo, hi) range (default 0-12 m/s); ``traj_kwargs``
    go to the trajectory generator (:mod:`.trajectories`). Deterministic for a seed (int or Generator).
    """
    positive_int("n_flights", n_flights)
    params = params or QuadrotorParams()
    n_samples = int(round(finite_float("duration", duration, positive=True) * params.sample_rate))
    return _run([kind] * n_flights, n_samples, seed, params, wind, gains, traj_kwargs).data


def _run(kinds, n_samples, seed, params, wind, gains, traj_kwargs, source=None) -> SimulationResult:
    params = params or QuadrotorParams()
    rng_ref, rng_sim = np.random.default_rng(seed).spawn(2)
    refs = make_references(kinds, n_samples / params.sample_rate, params, rng_ref, **traj_kwargs)
    source = source or f"simulator:{kinds[0]}"
    return simulate_references(refs, seed=rng_sim, params=params, gains=gains, wind=wind,
                               n_samples=n_samples, source=source)


def _flights_for(n_samples: int, per_flight: int) -> int:
    return -(-n_samples // per_flight)


def simulate_dataset(n_samples: int = 30000, seed=0, params: QuadrotorParams | None = None, *,
                     kind: str = "waypoints", flight_duration: float = 15.0, wind=None) -> FlightData:
    """Exactly ``n_samples`` samples from ceil(n_samples / per-flight) flights of ``kind`` (last one cut)."""
    positive_int("n_samples", n_samples)
    params = params or QuadrotorParams()
    per = int(round(finite_float("flight_duration", flight_duration, positive=True) * params.sample_rate))
    kinds = [kind] * _flights_for(n_samples, per)
    return _run(kinds, per, seed, params, wind, None, {}).data.subset(np.arange(n_samples))


SPLITS = ("random", "flights")


def default_problem(seed=0, n_samples: int = 30000, *, test_fraction: float = 0.2,
                    params: QuadrotorParams | None = None, flight_duration: float = 5.0,
                    wind=None, split: str = "random") -> tuple[FlightData, FlightData]:
    """The embedded default train/test problem: simulated quadrotor flights, split into train and test.

    Parameters
    ----------
    seed : int
        Seed of the flights, their winds and the random split.
    n_samples : int
        Samples in both parts together (>= 2).
    test_fraction : float
        ``f``, the test part's share.
    params, flight_duration, wind
        The quadrotor's parameters, each flight's length in seconds, and the wind model.
    split : {"random", "flights"}
        How the test part is held out (below).

    Returns
    -------
    train, test : FlightData
        Of ``n - round(f n)`` and ``round(f n)`` samples.

    Notes
    -----
    The flights: random-waypoint flights (as many as the train part needs) and figure-8 flights (as many
    as the test part needs). ``split="random"`` (the default, the paper's protocol): a seeded random 80/20
    split of all their samples (:func:`random_split` with ``seed``), so the test error measures
    interpolation between neighbouring samples. ``split="flights"`` (the harder generalisation test):
    train = the random-waypoint flights, test = the held-out figure-8 flights (a different trajectory
    family). Each flight has its own constant wind of
    0-12 m/s in a random horizontal direction plus turbulence. Flights last ``flight_duration`` seconds
    (500 samples at 100 Hz); the last flight of each part is cut to hit the sizes exactly. The wind, which
    the inputs do not contain, sets most of the residual force: 5-s flights give 48 training winds and 12
    test winds at the default size, enough that the held-out flights measure generalisation (with 15-s
    flights, 4 test winds made predicting zero beat a linear fit on the test set). Train flight
    ids come first, test ids follow, so ``concat([train, test])`` is valid.
    """
    n_samples = positive_int("n_samples", n_samples, minimum=2)
    check_choice("split", split, SPLITS)
    f = finite_float("test_fraction", test_fraction)
    n_test = int(round(f * n_samples))
    if not 0 < n_test < n_samples:
        raise ValueError(f"test_fraction={test_fraction} leaves an empty train or test part")
    n_train = n_samples - n_test
    params = params or QuadrotorParams()
    seconds = finite_float("flight_duration", flight_duration, positive=True)
    samples_per_flight = int(round(seconds * params.sample_rate))
    n_tr, n_te = _flights_for(n_train, samples_per_flight), _flights_for(n_test, samples_per_flight)
    simulation = _run(["waypoints"] * n_tr + ["figure8"] * n_te, samples_per_flight, seed, params, wind, None,
                      {}, source="simulator")
    data = simulation.data
    train = data.subset(np.flatnonzero(data.flight < n_tr)[:n_train])
    test = data.subset(np.flatnonzero(data.flight >= n_tr)[:n_test])
    if split == "random":
        return random_split(concat([train, test]), test_fraction=f, seed=seed)
    return replace(train, source="simulator:waypoints"), replace(test, source="simulator:figure8")


def label_noise_rmse(data: FlightData) -> float | None:
    """The error [N] of the exact (noise-free, unfiltered) residual force as a predictor of the labels:
    ``sqrt(mean ||F_a,label - F_a,true||^2)`` from each flight's recorded mean, weighted by its samples in
    ``data``. No model of the features can be expected to beat it by much (it does not see the sensor
    noise, and the wind is not among the features). ``None`` for data without that record (real logs)."""
    ids, counts = np.unique(data.flight, return_counts=True)
    values = [data.meta[int(i)].get("label_noise_ms") for i in ids]
    if any(v is None for v in values):
        return None
    return float(np.sqrt(np.dot(values, counts) / counts.sum()))


__all__ = ["SimulationResult", "label_noise_rmse", "WindModel", "default_problem", "make_references",
           "simulate_dataset", "simulate_flights", "simulate_references"]
