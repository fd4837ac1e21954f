"""Geometric tracking controller on SE(3) (Lee, Leok & McClamroch 2010) with integral action, and the mixer.

The controller knows only the nominal model (mass, inertia, k_T, k_Q): every aerodynamic effect is a
disturbance it rejects through feedback and the integral term, as on a real vehicle. With
``e_p = p - p_d``, ``e_v = v - v_d`` and the integral ``I = int e_p dt``::

    F_des = m (a_d + g0 e3) - k_p e_p - k_v e_v - k_i I                 desired force, world frame [N]
    b3_d = F_des / |F_des|,  b2_d = b3_d x b1_c / |.|,  b1_d = b2_d x b3_d,  b1_c = (cos psi, sin psi, 0)
    e_R = 1/2 vee(R_d^T R - R^T R_d),   M = -k_R e_R - k_w w + w x J w    moment (M_z clipped), body frame [N m]
    T = F_des . R e3                                                     collective thrust [N]

and the mixer solves ``[T, M] = A Om^2`` for the rotor speed commands, clipped to the motor limits.
``F_des`` keeps a vertical component >= ``min_lift`` m g0 and a tilt <= ``max_tilt`` (safety limits).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from .quadrotor import OM, P, Q, V, W, QuadrotorParams, _aero_terms, hover_state, quat_to_rotmat, rotmat_to_quat


@dataclass(frozen=True)
class ControllerGains:
    """Gains as natural frequencies [rad/s] and damping ratios, scaled by mass or inertia internally.

    Position (pole placement for the nominal double integrator with integral action, closed-loop poles
    -a_int and -zeta_pos w_pos +- i w_pos sqrt(1 - zeta_pos^2)), see :func:`position_gains`; integral
    anti-windup: |I| <= i_max [m s].
    Attitude: k_R = J w^2, k_w = 2 zeta_att w J per axis, w = w_att for roll/pitch and w_yaw for yaw
    (the rotors' yaw reaction torque is weak: a stiff yaw loop would saturate the motors); |M_z| <= max_yaw_moment
    [N m] so roll and pitch keep their authority.
    """

    w_pos: float = 2.5
    zeta_pos: float = 0.9
    a_int: float = 1.0
    i_max: float = 5.0
    w_att: float = 16.0
    zeta_att: float = 0.8
    w_yaw: float = 4.0
    max_yaw_moment: float = 0.15
    min_lift: float = 0.3
    max_tilt: float = np.deg2rad(50.0)


def mixer_matrix(params: QuadrotorParams) -> np.ndarray:
    """A (4, 4) with [T, M_x, M_y, M_z] = A Om^2 (rotor speeds squared)."""
    r = params.rotor_positions
    kt = params.k_thrust
    return np.stack([kt * np.ones(4), kt * r[:, 1], -kt * r[:, 0], params.k_torque * params.spin])


def _vee_skew_part(E: np.ndarray) -> np.ndarray:
    """vee(1/2 (E - E^T)) for (n, 3, 3) E."""
    return 0.5 * np.stack([E[:, 2, 1] - E[:, 1, 2], E[:, 0, 2] - E[:, 2, 0], E[:, 1, 0] - E[:, 0, 1]], 1)


def _normalise(a: np.ndarray) -> np.ndarray:
    return a / np.sqrt(np.einsum("ij,ij->i", a, a))[:, None]


def _cross(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise a x b for (n, 3) arrays (np.cross is slow on small arrays)."""
    return np.column_stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1], a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                            a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]])


@lru_cache(maxsize=32)
def _mixer_inverse(params: QuadrotorParams) -> np.ndarray:
    return np.linalg.inv(mixer_matrix(params))


def desired_attitude(F: np.ndarray, yaw: np.ndarray) -> np.ndarray:
    """R_d = [b2_d x b3_d, b2_d, b3_d] (n, 3, 3) from the thrust direction F (n, 3) and yaw (n,) [rad]."""
    b3d = _normalise(F)
    b1c = np.stack([np.cos(yaw), np.sin(yaw), np.zeros_like(yaw)], axis=1)
    b2d = _normalise(_cross(b3d, b1c))
    return np.stack([_cross(b2d, b3d), b2d, b3d], axis=2)


def position_gains(params: QuadrotorParams, gains: ControllerGains) -> tuple[float, float, float]:
    """(k_p, k_v, k_i) from m (s + a)(s^2 + 2 zeta w s + w^2) = m s^3 + k_v s^2 + k_p s + k_i."""
    m, w, z, a = params.mass, gains.w_pos, gains.zeta_pos, gains.a_int
    return m * (w * w + 2 * z * w * a), m * (2 * z * w + a), m * a * w * w


def desired_force(state, p_d, v_d, a_d, integral, params: QuadrotorParams, gains: ControllerGains):
    """F_des (n, 3) [N] with the safety limits applied."""
    m, g0 = params.mass, params.gravity
    k_p, k_v, k_i = position_gains(params, gains)
    F = m * a_d - k_p * (state[:, P] - p_d) - k_v * (state[:, V] - v_d) - k_i * integral
    F[:, 2] = np.maximum(F[:, 2] + m * g0, gains.min_lift * m * g0)
    horiz = np.sqrt(F[:, 0] ** 2 + F[:, 1] ** 2)
    limit = F[:, 2] * np.tan(gains.max_tilt)
    shrink = np.where(horiz > limit, limit / np.maximum(horiz, 1e-12), 1.0)
    F[:, :2] *= shrink[:, None]
    return F


def control(state: np.ndarray, p_d: np.ndarray, v_d: np.ndarray, a_d: np.ndarray, yaw: np.ndarray,
            integral: np.ndarray, params: QuadrotorParams, gains: ControllerGains) -> np.ndarray:
    """Rotor speed commands Om_cmd (n, 4) [rad/s] for states (n, 17) and references (n, 3), yaw (n,)."""
    F = desired_force(state, p_d, v_d, a_d, integral, params, gains)
    R = quat_to_rotmat(state[:, Q])
    Rd = desired_attitude(F, yaw)
    e_R = _vee_skew_part(np.einsum("nji,njk->nik", Rd, R))
    J = np.asarray(params.inertia)
    w = state[:, W]
    wn = np.array([gains.w_att, gains.w_att, gains.w_yaw])
    M = -J * wn ** 2 * e_R - 2 * gains.zeta_att * wn * J * w + _cross(w, J * w)
    M[:, 2] = np.clip(M[:, 2], -gains.max_yaw_moment, gains.max_yaw_moment)
    T = np.sum(F * R[:, :, 2], axis=1)
    om2 = np.column_stack([T, M]) @ _mixer_inverse(params).T
    return np.sqrt(np.clip(om2, params.omega_min ** 2, params.omega_max ** 2))


def update_integral(integral: np.ndarray, state: np.ndarray, p_d: np.ndarray, dt: float,
                    gains: ControllerGains) -> np.ndarray:
    """I <- clip(I + dt e_p, -i_max, i_max) (forward Euler at the control rate, anti-windup clip)."""
    return np.clip(integral + dt * (state[:, P] - p_d), -gains.i_max, gains.i_max)



def trim_state(position: np.ndarray, yaw: np.ndarray, wind: np.ndarray, params: QuadrotorParams,
               iters: int = 12) -> tuple[np.ndarray, np.ndarray]:
    """Equilibrium at rest in a constant wind: states (n, 17) and the nominal force F_des (n, 3) [N].

    Fixed-point iteration on ``ge tl k_T sum Om^2 b3 + F_drag(b3, Om) = m g0 e3`` with equal rotor speeds
    (zero moment): b3 = F_req / |F_req|, F_req = m g0 e3 - F_drag; F_des = F_req / (ge tl) is what the
    nominal-model controller must ask for, so its integral is preloaded with (m g0 e3 - F_des) / k_i.
    """
    state = hover_state(params, n=len(yaw))
    state[:, P] = position
    weight = np.array([0.0, 0.0, params.mass * params.gravity])
    for _ in range(iters):
        _, thrust, drag = _aero_terms(state, wind, params)
        factor = np.sum(thrust, axis=1) / (params.k_thrust * np.sum(state[:, OM] ** 2, axis=1))
        F_req = weight - drag
        state[:, Q] = rotmat_to_quat(desired_attitude(F_req, yaw))
        T = np.sqrt(np.sum(F_req ** 2, axis=1))
        state[:, OM] = np.sqrt(T / (4 * params.k_thrust * factor))[:, None]
    return state, F_req / factor[:, None]
