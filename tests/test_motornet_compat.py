"""MotorNet 0.3.0's compatible mode: its first-order "rk4" and its compliant muscle, never the default."""

import torch

from mn_gym.compat.motornet import motornet_compatible
from mn_gym.core.effector import Effector
from mn_gym.core.prebuilt import arm26, compliant_arm26, pointmass24

Q0 = torch.tensor([[0.8, 1.5, 0.5, -0.8]])


def test_the_correct_physics_stays_the_default():
    eff = compliant_arm26()
    assert (eff.integrator, eff.muscle.kind) == ("rk4", "compliant_kistemaker")
    compat = motornet_compatible(eff)
    assert (compat.integrator, compat.muscle.kind) == ("motornet_rk4", "compliant_kistemaker_motornet")
    back = motornet_compatible(compat, compatible=False)
    assert (back.integrator, back.muscle.kind) == ("rk4", "compliant_kistemaker")
    assert Effector.from_config(compat.config()).config() == compat.config()


def test_motornet_rk4_advances_position_with_the_old_velocity():
    # model.md 1.9: every stage is an Euler update, so the final position is q0 + dt qd0 (first order)
    for eff in (motornet_compatible(arm26(integrator="rk4")), motornet_compatible(pointmass24(integrator="rk4"))):
        state = eff.initial_state(Q0 if eff.dof == 2 and eff.name == "arm26" else torch.tensor([[0.1, -0.2, 0.3, 0.1]]))
        new = eff.step(state, torch.full((1, eff.n_muscles), 0.6))
        torch.testing.assert_close(new.q, state.q + eff.dt * state.qd)
        assert not torch.allclose(new.qd, state.qd)


def test_motornet_rk4_is_first_order_and_rk4_fourth():
    def final_q(eff: Effector, dt: float) -> torch.Tensor:
        eff = eff.replace(dt=dt).to(dtype=torch.float64)
        state = eff.initial_state(Q0.double())
        for _ in range(round(0.1 / dt)):
            state = eff.step(state, torch.full((1, 6), 0.2, dtype=torch.float64))
        return state.q

    def ratio(eff: Effector) -> float:
        ref, coarse, fine = final_q(eff, 0.00025), final_q(eff, 0.004), final_q(eff, 0.002)
        return float((coarse - ref).abs().max() / (fine - ref).abs().max())

    assert 1.5 < ratio(motornet_compatible(arm26(integrator="rk4"))) < 2.6  # error halves with dt
    assert ratio(arm26(integrator="rk4")) > 2.6  # well above first order (its muscle path lags no step)


def test_motornet_compliant_reports_ten_times_its_length_rate():
    eff = motornet_compatible(compliant_arm26()).to(dtype=torch.float64)
    state = eff.initial_state(Q0.double())
    new = eff.step(state, torch.full((1, 6), 0.4, dtype=torch.float64))
    rate = (new.fibre_length - state.fibre_length) / eff.dt
    velocity = eff.muscle_state(new)[:, 2]
    torch.testing.assert_close(velocity, 10.0 * rate)
    # the correct muscle's reported velocity is the rate of its length
    right = compliant_arm26()
    s0 = right.initial_state(Q0)
    s1 = right.step(s0, torch.full((1, 6), 0.4))
    assert s1.fibre_velocity is None and s1.force_fibre_length is None


def test_gradients_flow_through_the_compatible_mode():
    eff = motornet_compatible(compliant_arm26())
    u = torch.full((2, 6), 0.3, requires_grad=True)
    state = eff.initial_state(Q0.expand(2, -1))
    for _ in range(20):
        state = eff.step(state, u)
    loss = eff.cartesian(state)[:, :2].sum() + eff.muscle_force(state).sum()
    (grad,) = torch.autograd.grad(loss, u)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
