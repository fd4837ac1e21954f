"""From true sampled states to what a flight log holds: noisy sensors, features X, and the label F_a.

Sensors (white noise, one draw per sample at ``sample_rate``)::

    z_m = z + sigma_z n        v_m = v + sigma_v n        q_m = q (x) (delta/2, 1)/|.|, delta ~ sigma_att n
    Om_m = Om (1 + sigma_rotor n)

The label is computed the way real logs compute it, from the measurements only::

    f_T = R(q_m) e3 k_T sum_i Om_m,i^2                       nominal rotor thrust, world frame [N]
    F_a = m D[LP(v_m)] - m g - LP(f_T)                        g = (0, 0, -g0)

with ``LP`` a zero-phase Butterworth low-pass (``filter_order``, ``filter_cutoff``; scipy ``sosfiltfilt``)
and ``D`` second-order central differences (``np.gradient``). Filtering the thrust with the same filter
as the velocity keeps the label consistent: ``LP`` commutes with ``d/dt``, so ``F_a ~ LP(true F_a) +
noise`` instead of a lagged mixture. Features are the raw measurements (not filtered), with the
quaternion sign fixed so that ``q_w >= 0`` and rotor speeds as RPM / ``rpm_scale``.
"""
from __future__ import annotations

import numpy as np

from .quadrotor import OM, P, Q, V, RPM_PER_RAD_S, QuadrotorParams, quat_multiply, quat_to_rotmat


def canonical_quaternion(q: np.ndarray) -> np.ndarray:
    """q or -q (same rotation), whichever has q_w >= 0; shape (..., 4) scalar last."""
    return np.where(q[..., 3:4] < 0, -q, q)


def measure(states: np.ndarray, params: QuadrotorParams, rng: np.random.Generator):
    """Noisy z (n, S), v (n, S, 3), q (n, S, 4), Om (n, S, 4) from true states (n, S, 17)."""
    shape = states.shape[:-1]
    z = states[..., P][..., 2] + params.sigma_z * rng.standard_normal(shape)
    v = states[..., V] + params.sigma_v * rng.standard_normal(shape + (3,))
    half = 0.5 * params.sigma_att * rng.standard_normal(shape + (3,))
    dq = np.concatenate([half, np.ones(shape + (1,))], axis=-1)
    dq /= np.linalg.norm(dq, axis=-1, keepdims=True)
    q = quat_multiply(states[..., Q], dq)
    q /= np.linalg.norm(q, axis=-1, keepdims=True)
    om = states[..., OM] * (1.0 + params.sigma_rotor * rng.standard_normal(shape + (4,)))
    return z, v, q, om


def lowpass(x: np.ndarray, params: QuadrotorParams, axis: int = 1) -> np.ndarray:
    """Zero-phase Butterworth low-pass along ``axis`` (time)."""
    from scipy.signal import butter, sosfiltfilt      # imported here: it costs 0.7 s at start-up
    sos = butter(params.filter_order, params.filter_cutoff, fs=params.sample_rate, output="sos")
    return sosfiltfilt(sos, x, axis=axis)


def nominal_thrust_vector(q: np.ndarray, om: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """f_T = R(q) e3 k_T sum_i Om_i^2, shapes q (..., 4), om (..., 4) -> (..., 3) [N]."""
    return quat_to_rotmat(q)[..., :, 2] * (params.k_thrust * np.sum(om ** 2, axis=-1))[..., None]


def residual_force(v: np.ndarray, q: np.ndarray, om: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """F_a = m D[LP(v)] - m g - LP(f_T), shapes v (n, S, 3), q (n, S, 4), om (n, S, 4) -> (n, S, 3) [N]."""
    acc = np.gradient(lowpass(v, params), 1.0 / params.sample_rate, axis=1)
    F = params.mass * acc - lowpass(nominal_thrust_vector(q, om, params), params)
    F[..., 2] += params.mass * params.gravity
    return F


def features(z: np.ndarray, v: np.ndarray, q: np.ndarray, om: np.ndarray,
             params: QuadrotorParams) -> np.ndarray:
    """X (n, S, 12) = [z, v, canonical q, Om * 60/(2 pi) / rpm_scale]."""
    u = om * (RPM_PER_RAD_S / params.rpm_scale)
    return np.concatenate([z[..., None], v, canonical_quaternion(q), u], axis=-1)
