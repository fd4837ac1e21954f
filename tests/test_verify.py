"""``spherenet check``'s checks fail when the thing they check is wrong: each is run once on the engine as
it is and once with the checked quantity disturbed (a monkeypatched κ or majorant penalty)."""
import numpy as np
import pytest

from spherenet import majorant, taylor, verify


@pytest.fixture(scope="module")
def problem():
    return verify.random_problem(3, widths=(6, 9, 7, 2), n=60)


def test_kappa_check_passes_on_the_engine_and_watches_the_adjoint_path(problem):
    error, adjoint = verify.check_kappa(*problem, steps=4)
    assert error < verify.TOL["kappa"] and adjoint


def test_kappa_check_fails_when_the_trained_kappa_is_off_by_1e_6(problem, monkeypatch):
    real = taylor.loss_jet2_adjoint

    def off(*args):
        J = real(*args)
        return J * np.array([1.0, 1.0, 1.0 + 1e-6])
    monkeypatch.setattr(taylor, "loss_jet2_adjoint", off)
    error, adjoint = verify.check_kappa(*problem, steps=4)
    assert adjoint and error == pytest.approx(1e-6, rel=1e-3)


def test_majorant_check_passes_on_the_engine(problem):
    m = verify.check_majorant(*problem, steps=8)
    assert m["steps"] == 8 and m["formula"] < verify.TOL["majorant"]
    assert m["held"] == 8 and m["worst_ratio"] >= 1


def test_majorant_check_sees_a_wrong_penalty_in_the_formula_and_in_validity(problem, monkeypatch):
    """Penalty halved: ``m(τ)`` is off the written formula; penalty dropped: the minimiser of the linear part
    alone overshoots and the true change exceeds ``m(τ)``."""
    real = majorant.SpectralMajorant.penalty
    monkeypatch.setattr(majorant.SpectralMajorant, "penalty", lambda self, t: 0.5 * real(self, t))
    assert verify.check_majorant(*problem, steps=3)["formula"] > 1e-3
    monkeypatch.setattr(majorant.SpectralMajorant, "penalty", lambda self, t: 0.0 * real(self, t))
    m = verify.check_majorant(*problem, steps=3)
    assert m["held"] < m["steps"] and m["worst_ratio"] < 1


def test_plain_majorant_lets_a_layer_that_stays_out(problem):
    """A radial gradient on layer 0: the written formula has no term for it, as the engine's majorant."""
    net, X, Y = problem
    _, grads = verify._backward(net.weights, verify._forward_cache(net.weights, X), Y)
    for factor in (3.0, -0.37, 1e-3):
        grads[0] = factor * net.weights[0]
        m = majorant.spectral(net.weights, grads, net.radii, X)
        assert m.direction.zero_layers == [0]
        for t in (0.01, 0.3, 2.0):
            assert majorant.plain_spectral(net.weights, grads, net.radii, X, t) == pytest.approx(m(t), rel=1e-10)
