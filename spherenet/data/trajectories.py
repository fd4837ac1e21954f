"""Reference trajectories p_d(t), v_d(t), a_d(t) on a time grid: random waypoints (training), figure-8 (test).

Both start at rest and hold their start point for ``t < 0`` (the simulator's warm-up). Speeds relative to
the ground stay below ``v_max`` (2 m/s by default, like the real data sets).

* Random waypoints: horizontal positions uniform in ``[-box, box]^2``; heights drawn from a mixture, a
  fraction ``low_fraction`` uniform in ``[height[0], low_height]`` (low passes, near-ground flight where
  the ground effect acts, as in the Neural-Lander logs) and the rest in ``[low_height, height[1]]``; the
  first waypoint is a low take-off height. Segment durations = distance / (random cruise speed). x and y
  are clamped cubic splines through the waypoints; the height follows minimum-jerk quintics between
  waypoint heights (vertical speed and acceleration zero at each waypoint), so it is C^2 and stays within
  the waypoint heights: no spline overshoot into the ground or far above ``height[1]``.
  If the splines overshoot ``v_max`` the time axis is stretched.
* Figure-8 (lemniscate of Gerono), rotated by a random angle ``theta`` in the horizontal plane::

      p(phi) = c + Rot(theta) (A sin phi, B sin 2 phi) + (0, 0, h + a_z sin phi),   B = A / 2

  with the phase ramped smoothly to its final rate ``omega`` over ``ramp`` seconds
  (d phi/dt = omega (3u^2 - 2u^3), u = t/ramp), ``omega`` set so the peak speed is the drawn speed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class Reference:
    """p, v, a: (n_steps, 3) desired position [m], velocity [m/s], acceleration [m/s^2]; yaw [rad]."""

    p: np.ndarray
    v: np.ndarray
    a: np.ndarray
    yaw: float
    kind: str
    info: dict = field(default_factory=dict)


def _yaw(rng: np.random.Generator, yaw_max: float) -> float:
    return float(rng.uniform(-yaw_max, yaw_max))


def _waypoints(rng, t_end, box, height, low_height, low_fraction, speed):
    pts = [np.array([*rng.uniform(-box, box, 2), rng.uniform(height[0], min(0.3, low_height))])]
    times = [0.0]
    while times[-1] < t_end:
        low = rng.random() < low_fraction
        z = rng.uniform(height[0], low_height) if low else rng.uniform(low_height, height[1])
        nxt = np.array([*rng.uniform(-box, box, 2), z])
        dist = float(np.linalg.norm(nxt - pts[-1]))
        times.append(times[-1] + max(dist / rng.uniform(*speed), 1.0))
        pts.append(nxt)
    return np.array(times), np.array(pts)


def _min_jerk_height(times, z, t):
    """Piecewise quintic z = z_k + (z_{k+1} - z_k)(10 s^3 - 15 s^4 + 6 s^5), s = (t - t_k)/T_k; z, z', z''."""
    k = np.clip(np.searchsorted(times, t, side="right") - 1, 0, len(times) - 2)
    T = times[k + 1] - times[k]
    s = np.clip((t - times[k]) / T, 0.0, 1.0)
    dz = z[k + 1] - z[k]
    return (z[k] + dz * s ** 3 * (10 - 15 * s + 6 * s * s),
            dz / T * 30 * s * s * (1 - s) ** 2,
            dz / T ** 2 * 60 * s * (1 - s) * (1 - 2 * s))


def _eval_waypoints(times, pts, t):
    from scipy.interpolate import CubicSpline      # imported here: scipy costs ~0.6 s at start-up
    xy = CubicSpline(times, pts[:, :2], bc_type="clamped")
    tc = np.clip(t, 0.0, times[-1])
    hold = ((t >= 0.0) & (t <= times[-1]))[:, None]
    z, dz, ddz = _min_jerk_height(times, pts[:, 2], tc)
    p = np.column_stack([xy(tc), z])
    v = np.column_stack([xy(tc, 1), dz]) * hold
    a = np.column_stack([xy(tc, 2), ddz]) * hold
    return p, v, a


def random_waypoint_reference(t: np.ndarray, rng: np.random.Generator, *, box: float = 2.5,
                              height=(0.2, 2.5), low_height: float = 0.6, low_fraction: float = 0.5,
                              speed=(0.6, 1.6), v_max: float = 2.0,
                              yaw_max: float = np.pi / 6) -> Reference:
    """Smooth random-waypoint reference sampled at times ``t`` (n_steps,) [s]; see the module docstring."""
    if not 0 < height[0] < low_height < height[1]:
        raise ValueError("need 0 < height[0] < low_height < height[1]")
    times, pts = _waypoints(rng, float(t[-1]), box, height, low_height, low_fraction, speed)
    p, v, a = _eval_waypoints(times, pts, t)
    peak = float(np.sqrt(np.max(np.sum(v * v, axis=1))))
    if peak > v_max:
        times = times * (peak / v_max) * 1.01
        p, v, a = _eval_waypoints(times, pts, t)
    return Reference(p, v, a, _yaw(rng, yaw_max), "waypoints", {"n_waypoints": len(pts)})


def _ramped_phase(t: np.ndarray, omega: float, ramp: float):
    """phi, dphi/dt, d2phi/dt2 for a rate ramped from 0 to omega by u^2 (3 - 2u), u = t/ramp."""
    u = np.clip(t / ramp, 0.0, 1.0)
    phi = np.where(t < ramp, omega * ramp * (u ** 3 - 0.5 * u ** 4), omega * (0.5 * ramp + t - ramp))
    dphi = omega * (3 * u ** 2 - 2 * u ** 3)
    ddphi = np.where(t < ramp, omega / ramp * (6 * u - 6 * u ** 2), 0.0)
    return phi, dphi, ddphi


def figure8_reference(t: np.ndarray, rng: np.random.Generator, *, center_box: float = 1.0,
                      height=(0.3, 2.0), amplitude=(1.0, 2.0), speed=(1.0, 2.0), z_amplitude=(0.0, 0.2),
                      ramp: float = 2.0, yaw_max: float = np.pi / 6) -> Reference:
    """Figure-8 reference sampled at times ``t`` (n_steps,) [s]; see the module docstring."""
    c = np.array([*rng.uniform(-center_box, center_box, 2), 0.0])
    h = rng.uniform(*height)
    A = rng.uniform(*amplitude)
    B = A / 2.0
    az = min(rng.uniform(*z_amplitude), 0.5 * (h - 0.1))
    theta = rng.uniform(0.0, np.pi)
    v_peak = rng.uniform(*speed)
    omega = v_peak / np.sqrt(A * A + 4 * B * B + az * az)
    phi, dphi, ddphi = _ramped_phase(t, omega, ramp)
    s, c1, s2, c2 = np.sin(phi), np.cos(phi), np.sin(2 * phi), np.cos(2 * phi)
    rot = np.array([[np.cos(theta), -np.sin(theta), 0.0], [np.sin(theta), np.cos(theta), 0.0], [0, 0, 1]])
    shape = np.column_stack([A * s, B * s2, h + az * s]) @ rot.T
    d1 = np.column_stack([A * c1, 2 * B * c2, az * c1]) @ rot.T
    d2 = np.column_stack([-A * s, -4 * B * s2, -az * s]) @ rot.T
    p = c + shape
    v = d1 * dphi[:, None]
    a = d2 * (dphi ** 2)[:, None] + d1 * ddphi[:, None]
    info = {"height": float(h), "amplitude": float(A), "period": float(2 * np.pi / omega)}
    return Reference(p, v, a, _yaw(rng, yaw_max), "figure8", info)


TRAJECTORIES = {"waypoints": random_waypoint_reference, "figure8": figure8_reference}
