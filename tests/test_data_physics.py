"""Physics of the quadrotor model: equilibria, free fall, conservation laws, aerodynamics, RK4 order."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from spherenet.data import QuadrotorParams, aerodynamic_force, ground_effect_ratio, hover_state, rk4_step
from spherenet.data import state_derivative
from spherenet.data.controller import ControllerGains, control, mixer_matrix, trim_state, update_integral
from spherenet.data.quadrotor import OM, P, Q, V, W, quat_to_rotmat, rotmat_to_quat

PARAMS = QuadrotorParams()
OFF = PARAMS.without_aero()
NO_WIND = np.zeros((1, 3))


def integrate(state, cmd, wind, dt, T, params):
    for _ in range(int(round(T / dt))):
        state = rk4_step(state, cmd, wind, dt, params)
    return state


def random_unit_quat(rng, n):
    q = rng.standard_normal((n, 4))
    return q / np.linalg.norm(q, axis=1, keepdims=True)


def test_hover_equilibrium_without_aero_is_exact():
    s = hover_state(OFF, position=(0.3, -0.2, 1.0))
    cmd = s[:, OM].copy()
    assert PARAMS.k_thrust * np.sum(cmd ** 2) == pytest.approx(PARAMS.mass * PARAMS.gravity, rel=1e-14)
    assert np.abs(state_derivative(s, cmd, NO_WIND, OFF)).max() < 1e-12
    end = integrate(s, cmd, NO_WIND, 0.01, 5.0, OFF)
    assert np.abs(end - s).max() < 1e-10


def test_hover_is_not_equilibrium_with_ground_effect_near_ground():
    params = QuadrotorParams(rotor_drag=False, body_drag=False, translational_lift=False)
    s = hover_state(params, position=(0.0, 0.0, 0.15))
    acc = state_derivative(s, s[:, OM], NO_WIND, params)[0, 5]
    expected = PARAMS.gravity * (ground_effect_ratio(0.15, params) - 1.0)
    assert acc == pytest.approx(expected, rel=1e-12) and acc > 0.1


def test_free_fall_with_rotors_off_is_exact_parabola():
    s = hover_state(OFF, position=(1.0, 2.0, 50.0))
    s[:, OM] = 0.0
    s[:, V] = [1.5, -0.5, 2.0]
    T = 2.0
    end = integrate(s, np.zeros((1, 4)), NO_WIND, 0.01, T, OFF)
    g = np.array([0.0, 0.0, -PARAMS.gravity])
    np.testing.assert_allclose(end[0, P], s[0, P] + s[0, V] * T + 0.5 * g * T ** 2, atol=1e-10)
    np.testing.assert_allclose(end[0, V], s[0, V] + g * T, atol=1e-10)


def test_free_fall_with_body_drag_reaches_terminal_velocity():
    params = QuadrotorParams(ground_effect=False, translational_lift=False, rotor_drag=False)
    s = hover_state(params, position=(0.0, 0.0, 1000.0))
    s[:, OM] = 0.0
    end = integrate(s, np.zeros((1, 4)), NO_WIND, 0.02, 20.0, params)
    v_term = np.sqrt(params.mass * params.gravity / (0.5 * params.air_density * params.body_cd_area))
    assert end[0, 5] == pytest.approx(-v_term, rel=1e-4)


def test_torque_free_tumbling_conserves_energy_and_angular_momentum():
    rng = np.random.default_rng(3)
    s = hover_state(OFF, position=(0.0, 0.0, 10.0))
    s[:, OM] = 0.0
    s[:, Q] = random_unit_quat(rng, 1)
    s[:, W] = [2.0, -1.0, 3.0]
    s[:, V] = [1.0, 0.5, 3.0]
    J = np.asarray(PARAMS.inertia)

    def invariants(x):
        energy = 0.5 * PARAMS.mass * np.sum(x[0, V] ** 2) + PARAMS.mass * PARAMS.gravity * x[0, 2]
        rot = 0.5 * np.sum(J * x[0, W] ** 2)
        L_world = quat_to_rotmat(x[0, Q] / np.linalg.norm(x[0, Q])) @ (J * x[0, W])
        return energy, rot, L_world

    e0, r0, L0 = invariants(s)
    e1, r1, L1 = invariants(integrate(s, np.zeros((1, 4)), NO_WIND, 0.002, 1.0, OFF))
    assert e1 == pytest.approx(e0, rel=1e-10)
    assert r1 == pytest.approx(r0, rel=1e-8)
    np.testing.assert_allclose(L1, L0, rtol=1e-7, atol=1e-10)


def test_drag_only_dissipates_mechanical_energy():
    params = QuadrotorParams(ground_effect=False, translational_lift=False)
    s = hover_state(params, position=(0.0, 0.0, 100.0))
    s[:, OM] = 0.0
    s[:, V] = [4.0, -3.0, 1.0]
    energies = []
    for _ in range(100):
        energies.append(0.5 * params.mass * np.sum(s[0, V] ** 2) + params.mass * params.gravity * s[0, 2])
        s = rk4_step(s, np.zeros((1, 4)), NO_WIND, 0.01, params)
    assert np.all(np.diff(energies) < 0)


def test_ground_effect_ratio_limits_and_clip():
    R, rho_max = PARAMS.rotor_radius, PARAMS.ground_rho_max
    assert abs(ground_effect_ratio(100.0, PARAMS) - 1.0) < 1e-5
    z = np.array([0.2, 0.5, 1.0, 3.0])
    np.testing.assert_allclose(ground_effect_ratio(z, PARAMS), 1 / (1 - (R / (4 * z)) ** 2), rtol=1e-14)
    cap = 1 / (1 - rho_max ** 2)
    tiny = np.array([-1.0, 0.0, 1e-9, R / (4 * rho_max)])
    np.testing.assert_allclose(ground_effect_ratio(tiny, PARAMS), cap, rtol=1e-14)
    zs = np.linspace(R / (4 * rho_max), 5.0, 200)
    assert np.all(np.diff(ground_effect_ratio(zs, PARAMS)) < 0)


@settings(deadline=None, max_examples=50)
@given(st.floats(-10.0, 1e4, allow_nan=False))
def test_ground_effect_ratio_bounded(z):
    r = ground_effect_ratio(z, PARAMS)
    assert 1.0 <= r <= 1 / (1 - PARAMS.ground_rho_max ** 2)


def random_states(rng, n, params):
    s = hover_state(params, n=n)
    s[:, P] = rng.uniform([-2, -2, 0.05], [2, 2, 3], (n, 3))
    s[:, V] = rng.normal(0, 2, (n, 3))
    s[:, Q] = random_unit_quat(rng, n)
    s[:, W] = rng.normal(0, 1, (n, 3))
    s[:, OM] = rng.uniform(100, 900, (n, 4))
    return s


@settings(deadline=None, max_examples=25)
@given(st.integers(0, 10 ** 6))
def test_aerodynamic_force_is_the_residual_of_the_dynamics(seed):
    rng = np.random.default_rng(seed)
    s = random_states(rng, 8, PARAMS)
    wind = rng.normal(0, 5, (8, 3))
    acc = state_derivative(s, s[:, OM], wind, PARAMS)[:, V]
    b3 = quat_to_rotmat(s[:, Q])[:, :, 2]
    nominal = b3 * PARAMS.k_thrust * np.sum(s[:, OM] ** 2, axis=1)[:, None]
    residual = PARAMS.mass * acc + PARAMS.mass * PARAMS.gravity * np.array([0, 0, 1.0]) - nominal
    np.testing.assert_allclose(residual, aerodynamic_force(s, wind, PARAMS), atol=1e-10)
    assert np.abs(aerodynamic_force(s, wind, OFF)).max() < 1e-12


def test_each_effect_pushes_the_right_way():
    rng = np.random.default_rng(0)
    s = random_states(rng, 50, PARAMS)
    wind = rng.normal(0, 5, (50, 3))
    v_rel = s[:, V] - wind
    b3 = quat_to_rotmat(s[:, Q])[:, :, 2]
    only = {k: QuadrotorParams(**{e: e == k for e in ("ground_effect", "translational_lift", "rotor_drag",
                                                       "body_drag")})
            for k in ("ground_effect", "translational_lift", "rotor_drag", "body_drag")}
    body = aerodynamic_force(s, wind, only["body_drag"])
    speed = np.linalg.norm(v_rel, axis=1, keepdims=True)
    np.testing.assert_allclose(body, -0.5 * PARAMS.air_density * PARAMS.body_cd_area * speed * v_rel)
    rotor = aerodynamic_force(s, wind, only["rotor_drag"])
    assert np.all(np.sum(rotor * v_rel, axis=1) <= 0)
    assert np.abs(np.sum(rotor * b3, axis=1)).max() < 1e-12
    for k in ("ground_effect", "translational_lift"):
        lift = aerodynamic_force(s, wind, only[k])
        along = np.sum(lift * b3, axis=1)
        assert np.all(along >= 0) and along.max() > 0
        np.testing.assert_allclose(lift, b3 * along[:, None], atol=1e-12)


def test_rk4_global_error_shrinks_16x_when_step_halves():
    s0 = hover_state(PARAMS, position=(0.0, 0.0, 2.0))
    s0[:, V] = [0.5, -0.3, 0.2]
    s0[:, W] = [0.3, -0.2, 0.5]
    cmd = np.array([[600.0, 450.0, 520.0, 480.0]])
    wind = np.array([[3.0, -1.0, 0.0]])
    ref = integrate(s0, cmd, wind, 0.0003125, 0.5, PARAMS)
    errs = [np.abs(integrate(s0, cmd, wind, dt, 0.5, PARAMS) - ref).max() for dt in (0.005, 0.0025, 0.00125)]
    ratios = np.array(errs[:-1]) / np.array(errs[1:])
    assert np.all((ratios > 14) & (ratios < 19)), ratios


def test_quaternion_rotation_roundtrip():
    q = random_unit_quat(np.random.default_rng(1), 500)
    R = quat_to_rotmat(q)
    np.testing.assert_allclose(R @ R.transpose(0, 2, 1), np.broadcast_to(np.eye(3), R.shape), atol=1e-14)
    np.testing.assert_allclose(np.linalg.det(R), 1.0, atol=1e-14)
    q_back = rotmat_to_quat(R)
    np.testing.assert_allclose(q_back, q * np.sign(q[:, 3:4]), atol=1e-13)


def test_mixer_maps_hover_speeds_to_weight_and_zero_moment():
    tm = mixer_matrix(PARAMS) @ np.full(4, PARAMS.hover_omega ** 2)
    np.testing.assert_allclose(tm, [PARAMS.mass * PARAMS.gravity, 0, 0, 0], atol=1e-12)


def test_trim_state_is_an_equilibrium_in_wind():
    wind = np.array([[8.0, -3.0, 0.0], [0.0, 0.0, 0.0]])
    s, _ = trim_state(np.array([[0, 0, 0.3], [1, 1, 2.0]]), np.array([0.3, -0.2]), wind, PARAMS)
    d = state_derivative(s, s[:, OM], wind, PARAMS)
    assert np.abs(d[:, V]).max() < 1e-9 and np.abs(d[:, W]).max() < 1e-9
    tilt = np.degrees(np.arccos(quat_to_rotmat(s[:, Q])[:, 2, 2]))
    assert tilt[0] > 10 and tilt[1] < 1e-6


def test_closed_loop_converges_to_setpoint_without_aero():
    gains = ControllerGains()
    s = hover_state(OFF, position=(0.3, -0.2, 1.3))
    target = np.array([[0.0, 0.0, 1.0]])
    zero, integral = np.zeros((1, 3)), np.zeros((1, 3))
    for _ in range(1400):
        cmd = control(s, target, zero, zero, np.zeros(1), integral, OFF, gains)
        integral = update_integral(integral, s, target, 0.005, gains)
        s = rk4_step(s, cmd, NO_WIND, 0.005, OFF)
    assert np.linalg.norm(s[0, P] - target[0]) < 0.005
    assert np.linalg.norm(s[0, V]) < 0.005


def test_params_validation():
    with pytest.raises(ValueError, match="mass"):
        QuadrotorParams(mass=-1.0)
    with pytest.raises(ValueError, match="dt"):
        QuadrotorParams(dt=0.003)
    with pytest.raises(ValueError, match="filter_cutoff"):
        QuadrotorParams(filter_cutoff=60.0)
    with pytest.raises(ValueError, match="inertia"):
        QuadrotorParams(inertia=(0.1, 0.1))
