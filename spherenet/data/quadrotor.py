"""Rigid-body quadrotor with first-order motors and four aerodynamic effects; fixed-step RK4.

Frames: world ``z`` up, gravity ``g = (0, 0, -g0)``. Body frame ``x`` forward, ``z`` along the thrust.
Quaternions are scalar last, ``q = (q_x, q_y, q_z, q_w)``, and rotate body vectors into the world frame.

State of one vehicle, 17 numbers (``n`` vehicles: shape ``(n, 17)``)::

    p (0:3) [m]   v (3:6) [m/s]   q (6:10)   w (10:13) body rates [rad/s]   Om (13:17) rotor speeds [rad/s]

Equations (``R = R(q)``, ``e3 = (0,0,1)``, ``v_rel = v - wind``, ``P = I - (R e3)(R e3)^T``)::

    T_i  = k_T Om_i^2 * ge(z) * tl(v_rel)                 rotor thrusts [N]
    m dv/dt = m g + R e3 sum_i T_i + F_rotor_drag + F_body_drag
    dq/dt = 1/2 q (x) (w, 0)                               (x) = quaternion product
    J dw/dt = M - w x J w,   M = sum_i r_i x (T_i e3) + sum_i s_i k_Q Om_i^2 e3
    dOm_i/dt = (Om_cmd,i - Om_i) / tau_m                   first-order motor lag

    ge(z)  = 1 / (1 - rho^2),  rho = min(R_rotor / (4 z), rho_max)     Cheeseman-Bennett ground effect
    tl     = 1 + k_tl |P v_rel|^2 / (|P v_rel|^2 + v_h^2)              translational lift
    F_rotor_drag = -k_d (sum_i Om_i) P v_rel                            rotor induced drag (blade flapping)
    F_body_drag  = -1/2 rho_air C_d A |v_rel| v_rel                      quadratic body drag

The clip ``rho <= rho_max`` (default 0.5, so ``ge <= 4/3``) keeps ``ge`` finite for tiny or negative ``z``
(the formula is singular at ``z = R_rotor/4``); ``v_h = sqrt(m g0 / (8 rho_air pi R_rotor^2))`` is the
hover induced velocity of one rotor (momentum theory). The residual force the data sets label is
``F_a = m dv/dt - m g - R e3 k_T sum_i Om_i^2`` (see :func:`aerodynamic_force`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from functools import cached_property

import numpy as np

from .._checks import finite_float

STATE_DIM = 17
P, V, Q, W, OM = slice(0, 3), slice(3, 6), slice(6, 10), slice(10, 13), slice(13, 17)
RPM_PER_RAD_S = 60.0 / (2.0 * np.pi)


@dataclass(frozen=True)
class QuadrotorParams:
    """Physical, sensing and integration parameters (SI units). Defaults: a 2 kg, 10-inch-prop quadrotor.

    Vehicle: ``mass`` [kg]; ``inertia`` diagonal (J_xx, J_yy, J_zz) [kg m^2]; ``arm_length`` [m] (X layout,
    rotors at 45, 135, 225, 315 deg, spin signs ``(+1, -1, +1, -1)`` for the yaw torque); ``k_thrust`` k_T
    [N s^2]; ``k_torque`` k_Q [N m s^2]; ``motor_tau`` tau_m [s]; ``omega_min``/``omega_max`` rotor speed
    limits [rad/s] (hover ~522 rad/s = 4985 RPM); ``gravity`` g0 [m/s^2].
    Aerodynamics: ``rotor_radius`` [m]; ``ground_rho_max`` (clip of R/(4z)); ``k_rotor_drag`` k_d
    [N s^2/m]; ``k_trans_lift`` k_tl; ``air_density`` [kg/m^3]; ``body_cd_area`` C_d A [m^2]; switches
    ``ground_effect``, ``translational_lift``, ``rotor_drag``, ``body_drag``.
    Sensing: ``sample_rate`` [Hz]; ``sigma_z`` [m], ``sigma_v`` [m/s], ``sigma_att`` [rad, per axis],
    ``sigma_rotor`` (relative) white measurement noise; ``filter_cutoff`` [Hz], ``filter_order`` of the
    zero-phase Butterworth applied before differentiating; ``rpm_scale`` (feature u = RPM / rpm_scale).
    Integration: ``dt`` [s] RK4 step (= control period; 5 ms: 200 Hz control, 2 steps per 100 Hz sample);
    must divide 1/sample_rate.
    """

    mass: float = 2.0
    inertia: tuple = (0.021, 0.021, 0.037)
    arm_length: float = 0.25
    k_thrust: float = 1.8e-5
    k_torque: float = 2.9e-7
    motor_tau: float = 0.03
    omega_min: float = 100.0
    omega_max: float = 950.0
    gravity: float = 9.81
    rotor_radius: float = 0.127
    ground_rho_max: float = 0.5
    k_rotor_drag: float = 2.4e-4
    k_trans_lift: float = 0.12
    air_density: float = 1.225
    body_cd_area: float = 0.06
    ground_effect: bool = True
    translational_lift: bool = True
    rotor_drag: bool = True
    body_drag: bool = True
    sample_rate: float = 100.0
    sigma_z: float = 0.005
    sigma_v: float = 0.02
    sigma_att: float = 0.003
    sigma_rotor: float = 0.005
    filter_cutoff: float = 5.0
    filter_order: int = 2
    rpm_scale: float = 8000.0
    dt: float = 0.005

    def __post_init__(self):
        for name in ("mass", "arm_length", "k_thrust", "k_torque", "motor_tau", "omega_max", "gravity",
                     "rotor_radius", "air_density", "sample_rate", "filter_cutoff", "rpm_scale", "dt"):
            finite_float(name, getattr(self, name), positive=True)
        for name in ("omega_min", "k_rotor_drag", "k_trans_lift", "body_cd_area", "sigma_z", "sigma_v",
                     "sigma_att", "sigma_rotor"):
            finite_float(name, getattr(self, name), nonnegative=True)
        if not 0 < self.ground_rho_max < 1:
            raise ValueError(f"ground_rho_max must be in (0, 1), got {self.ground_rho_max}")
        if np.ndim(self.inertia) != 1 or len(self.inertia) != 3 or min(self.inertia) <= 0:
            raise ValueError(f"inertia must be 3 positive numbers (J_xx, J_yy, J_zz), got {self.inertia}")
        object.__setattr__(self, "inertia", tuple(float(j) for j in self.inertia))
        if isinstance(self.filter_order, bool) or not isinstance(self.filter_order, int) or self.filter_order < 1:
            raise ValueError(f"filter_order must be a positive integer, got {self.filter_order!r}")
        if self.omega_min >= self.omega_max:
            raise ValueError("omega_min must be < omega_max")
        if not 2 * self.filter_cutoff < self.sample_rate:
            raise ValueError("filter_cutoff must be below the Nyquist frequency sample_rate/2")
        if abs(self.steps_per_sample - 1.0 / (self.sample_rate * self.dt)) > 1e-9:
            raise ValueError(f"dt={self.dt} must divide the sample period 1/sample_rate={1/self.sample_rate}")

    @property
    def steps_per_sample(self) -> int:
        return max(1, int(round(1.0 / (self.sample_rate * self.dt))))

    @property
    def hover_omega(self) -> float:
        """Rotor speed [rad/s] at which the nominal thrust equals the weight."""
        return float(np.sqrt(self.mass * self.gravity / (4.0 * self.k_thrust)))

    @property
    def hover_induced_velocity(self) -> float:
        """v_h = sqrt(T_hover,i / (2 rho_air A_disk)) [m/s] of one rotor."""
        disk = np.pi * self.rotor_radius ** 2
        return float(np.sqrt(self.mass * self.gravity / 4.0 / (2.0 * self.air_density * disk)))

    @property
    def rotor_positions(self) -> np.ndarray:
        """(4, 3) rotor centres in the body frame [m]."""
        ang = np.deg2rad([45.0, 135.0, 225.0, 315.0])
        return self.arm_length * np.stack([np.cos(ang), np.sin(ang), np.zeros(4)], axis=1)

    @property
    def spin(self) -> np.ndarray:
        """(4,) signs of each rotor's yaw reaction torque."""
        return np.array([1.0, -1.0, 1.0, -1.0])

    @cached_property
    def thrust_moment_arms(self) -> np.ndarray:
        """(4, 3): row i maps rotor thrust T_i to the body moment r_i x (T_i e3) = T_i (y_i, -x_i, 0)."""
        r = self.rotor_positions
        return np.stack([r[:, 1], -r[:, 0], np.zeros(4)], axis=1)

    @cached_property
    def yaw_moment_arms(self) -> np.ndarray:
        """(4, 3): row i maps Om_i^2 to the reaction torque (0, 0, s_i k_Q)."""
        return np.stack([np.zeros(4), np.zeros(4), self.k_torque * self.spin], axis=1)

    def without_aero(self) -> "QuadrotorParams":
        """A copy with all four aerodynamic effects switched off."""
        return replace(self, ground_effect=False, translational_lift=False, rotor_drag=False,
                       body_drag=False)

    def without_noise(self) -> "QuadrotorParams":
        """A copy with every measurement noise set to zero."""
        return replace(self, sigma_z=0.0, sigma_v=0.0, sigma_att=0.0, sigma_rotor=0.0)


def quat_to_rotmat(q: np.ndarray) -> np.ndarray:
    """R(q): (..., 4) scalar-last unit quaternions -> (..., 3, 3) body-to-world rotations."""
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    R = np.empty(q.shape[:-1] + (3, 3))
    R[..., 0, 0], R[..., 0, 1], R[..., 0, 2] = 1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)
    R[..., 1, 0], R[..., 1, 1], R[..., 1, 2] = 2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)
    R[..., 2, 0], R[..., 2, 1], R[..., 2, 2] = 2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)
    return R


def quat_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Hamilton product a (x) b of scalar-last quaternions, shapes (..., 4)."""
    av, aw, bv, bw = a[..., :3], a[..., 3:], b[..., :3], b[..., 3:]
    vec = aw * bv + bw * av + np.cross(av, bv)
    return np.concatenate([vec, aw * bw - np.sum(av * bv, -1, keepdims=True)], -1)


def rotmat_to_quat(R: np.ndarray) -> np.ndarray:
    """Inverse of :func:`quat_to_rotmat` for (n, 3, 3) rotations -> (n, 4), q_w >= 0.

    Shepperd's method: of the four algebraically equal formulas, use per row the one whose square root
    argument is largest (no cancellation, any rotation angle).
    """
    tr = np.trace(R, axis1=1, axis2=2)
    # 4 x^2, 4 y^2, 4 z^2, 4 w^2 each minus 1
    arg = np.stack([2 * R[:, 0, 0] - tr, 2 * R[:, 1, 1] - tr, 2 * R[:, 2, 2] - tr, tr], axis=1)
    k = np.argmax(arg, axis=1)
    s = np.sqrt(1.0 + arg[np.arange(R.shape[0]), k])
    a, b, c = R[:, 2, 1] - R[:, 1, 2], R[:, 0, 2] - R[:, 2, 0], R[:, 1, 0] - R[:, 0, 1]
    d, e, f = R[:, 0, 1] + R[:, 1, 0], R[:, 0, 2] + R[:, 2, 0], R[:, 1, 2] + R[:, 2, 1]
    ss = s * s
    cand = np.stack([np.stack([ss, d, e, a], 1), np.stack([d, ss, f, b], 1),
                     np.stack([e, f, ss, c], 1), np.stack([a, b, c, ss], 1)], 1)
    q = cand[np.arange(R.shape[0]), k] / (2 * s)[:, None]
    return np.where(q[:, 3:4] < 0, -q, q)


def ground_effect_ratio(z, params: QuadrotorParams) -> np.ndarray:
    """T_IGE / T_OGE = 1 / (1 - rho^2), rho = R_rotor / (4 max(z, z_c)), z_c = R_rotor / (4 rho_max).

    The clip at ``z_c`` (rho <= rho_max) also covers z <= 0 and never divides by a tiny z.
    """
    z_c = params.rotor_radius / (4.0 * params.ground_rho_max)
    rho = params.rotor_radius / (4.0 * np.maximum(np.asarray(z, dtype=np.float64), z_c))
    return 1.0 / (1.0 - rho * rho)


def _thrust_factor(z, v_inplane_sq, params: QuadrotorParams) -> np.ndarray:
    factor = ground_effect_ratio(z, params) if params.ground_effect else np.ones_like(z)
    if params.translational_lift:
        vh2 = params.hover_induced_velocity ** 2
        factor = factor * (1.0 + params.k_trans_lift * v_inplane_sq / (v_inplane_sq + vh2))
    return factor


def thrust_axis(q: np.ndarray) -> np.ndarray:
    """b3 = R(q) e3, shape (n, 4) -> (n, 3): the third column of :func:`quat_to_rotmat`."""
    x, y, z, w = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    return np.column_stack([2 * (x * z + y * w), 2 * (y * z - x * w), 1 - 2 * (x * x + y * y)])


def _aero_terms(state: np.ndarray, wind: np.ndarray, params: QuadrotorParams):
    """Shared pieces: thrust axis b3 (n,3), per-rotor thrust T_i (n,4), drag force (n,3)."""
    b3 = thrust_axis(state[:, Q])
    om = state[:, OM]
    v_rel = state[:, V] - wind
    v_inplane = v_rel - np.einsum("ij,ij->i", v_rel, b3)[:, None] * b3
    factor = _thrust_factor(state[:, 2], np.einsum("ij,ij->i", v_inplane, v_inplane), params)
    thrust = params.k_thrust * om * om * factor[:, None]
    drag = np.zeros_like(v_rel)
    if params.rotor_drag:
        drag -= params.k_rotor_drag * om.sum(axis=1)[:, None] * v_inplane
    if params.body_drag:
        speed = np.sqrt(np.einsum("ij,ij->i", v_rel, v_rel))
        drag -= (0.5 * params.air_density * params.body_cd_area) * speed[:, None] * v_rel
    return b3, thrust, drag


def aerodynamic_force(state: np.ndarray, wind: np.ndarray, params: QuadrotorParams) -> np.ndarray:
    """True residual F_a = R e3 (sum T_i - k_T sum Om_i^2) + F_rotor_drag + F_body_drag, (n, 3) [N].

    This is exactly ``m dv/dt - m g - R e3 k_T sum Om_i^2`` of :func:`state_derivative`.
    """
    b3, thrust, drag = _aero_terms(state, wind, params)
    nominal = params.k_thrust * np.sum(state[:, OM] ** 2, axis=1)
    return b3 * (np.sum(thrust, axis=1) - nominal)[:, None] + drag


def _quat_rate(q: np.ndarray, w: np.ndarray) -> np.ndarray:
    """dq/dt = 1/2 q (x) (w, 0), written out: q (n, 4) scalar last, w (n, 3) body rates."""
    x, y, z, s = q[:, 0], q[:, 1], q[:, 2], q[:, 3]
    p, r, u = w[:, 0], w[:, 1], w[:, 2]
    return 0.5 * np.column_stack([s * p + y * u - z * r, s * r + z * p - x * u, s * u + x * r - y * p,
                                  -(x * p + y * r + z * u)])


def state_derivative(state: np.ndarray, omega_cmd: np.ndarray, wind: np.ndarray,
                     params: QuadrotorParams) -> np.ndarray:
    """d(state)/dt, shapes state (n, 17), omega_cmd (n, 4) [rad/s], wind (n, 3) [m/s] -> (n, 17)."""
    b3, thrust, drag = _aero_terms(state, wind, params)
    out = np.empty_like(state)
    out[:, P] = state[:, V]
    out[:, V] = (b3 * thrust.sum(axis=1)[:, None] + drag) * (1.0 / params.mass)
    out[:, 5] -= params.gravity
    w = state[:, W]
    out[:, Q] = _quat_rate(state[:, Q], w)
    moment = thrust @ params.thrust_moment_arms + (state[:, OM] ** 2) @ params.yaw_moment_arms
    J = np.asarray(params.inertia)
    Jw = w * J
    gyro = np.column_stack([w[:, 1] * Jw[:, 2] - w[:, 2] * Jw[:, 1], w[:, 2] * Jw[:, 0] - w[:, 0] * Jw[:, 2],
                            w[:, 0] * Jw[:, 1] - w[:, 1] * Jw[:, 0]])
    out[:, W] = (moment - gyro) / J
    out[:, OM] = (omega_cmd - state[:, OM]) * (1.0 / params.motor_tau)
    return out


def rk4_step(state: np.ndarray, omega_cmd: np.ndarray, wind: np.ndarray, dt: float,
             params: QuadrotorParams) -> np.ndarray:
    """One classical Runge-Kutta step of :func:`state_derivative`, inputs held over the step (zero-order hold).

    x_{k+1} = x_k + dt/6 (k1 + 2 k2 + 2 k3 + k4). Does not renormalise the quaternion (the simulator does,
    after each step), so the integrator's order can be measured on its own.
    """
    k1 = state_derivative(state, omega_cmd, wind, params)
    k2 = state_derivative(state + 0.5 * dt * k1, omega_cmd, wind, params)
    k3 = state_derivative(state + 0.5 * dt * k2, omega_cmd, wind, params)
    k4 = state_derivative(state + dt * k3, omega_cmd, wind, params)
    return state + (dt / 6.0) * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


def hover_state(params: QuadrotorParams, position=(0.0, 0.0, 1.0), n: int = 1) -> np.ndarray:
    """(n, 17) states at rest at ``position``, level, rotors at :attr:`QuadrotorParams.hover_omega`."""
    state = np.zeros((n, STATE_DIM))
    state[:, P] = np.asarray(position, dtype=np.float64)
    state[:, 9] = 1.0
    state[:, OM] = params.hover_omega
    return state
