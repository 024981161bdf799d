"""Energy conservation of a passive arm (no muscle force, loads, damping or viscosity), float64, through the
real effector path (`Effector.step`): rk4 conserves kinetic + potential energy to a tight tolerance over
1 s at dt = 0.01, explicit euler drifts by orders of magnitude more.

Muscles are silenced by zeroing the reacher's max isometric forces (`make_effector(..., max_isometric_force=0)`
is rejected: it must be > 0) and by zero excitation. Measured drifts (max |E(t) - E0| / E0 over 100 steps;
run with -s to print): horizontal rk4 ~2e-12, euler ~5e-4; with gravity rk4 ~7e-6, euler ~0.23.
"""

from __future__ import annotations

import pytest
import torch

import mn_gym
from mn_gym.core.prebuilt import arm26_skeleton

F64 = torch.float64
DT, N_STEPS = 0.01, 100  # 1 s

# (gravity (m/s^2), initial [q1, q2, qd1, qd2], widen the joint limits?, rk4 drift bound)
CASES = {
    # Horizontal plane: stays inside arm26's joint limits for 1 s (checked below).
    "horizontal": (0.0, [0.8, 1.2, 0.5, -0.6], False, 3e-11),
    # Vertical plane, released from rest: the arm falls and swings through its joint limits, so they are widened.
    "gravity": (9.81, [0.8, 1.2, 0.0, 0.0], True, 1e-4),
}
WIDE = 50.0  # rad


def _passive_arm(integrator, g, wide):
    eff = mn_gym.make_effector("reacher", integrator=integrator, dtype=F64, dt=DT)
    assert eff.damping == 0.0 and float(eff.skeleton.viscosity.abs().max()) == 0.0
    eff = eff.replace(muscle=eff.muscle.replace(max_isometric_force=torch.zeros(eff.n_muscles, dtype=F64)))
    sk = arm26_skeleton(g=g, dtype=F64)
    if wide:
        sk = sk.replace(pos_lower=[-WIDE, -WIDE], pos_upper=[WIDE, WIDE])
    return eff.replace(skeleton=sk)


def _energy(eff, state):
    return eff.skeleton.kinetic_energy(state.q, state.qd) + eff.skeleton.potential_energy(state.q)


def _run(eff, joint_state, excitation=0.0):
    state = eff.initial_state(torch.tensor([joint_state], dtype=F64))
    u = torch.full((1, eff.n_muscles), excitation, dtype=F64)
    e0 = _energy(eff, state)
    energies, qs = [], []
    for _ in range(N_STEPS):
        state = eff.step(state, u)
        energies.append(_energy(eff, state))
        qs.append(state.q)
    energies, qs = torch.cat(energies), torch.cat(qs)
    drift = float(((energies - e0).abs() / e0.abs()).max())
    return drift, qs, e0, state


def _assert_limits_inactive(eff, qs):
    sk = eff.skeleton
    assert ((qs > sk.pos_lower + 0.05) & (qs < sk.pos_upper - 0.05)).all(), "a joint limit was reached"


@pytest.mark.parametrize("case", list(CASES))
def test_rk4_conserves_energy_and_euler_drifts(case):
    g, joint_state, wide, bound = CASES[case]
    rk4 = _passive_arm("rk4", g, wide)
    euler = _passive_arm("euler", g, wide)
    drift_rk4, qs, e0, _ = _run(rk4, joint_state)
    drift_euler, qs_euler, _, _ = _run(euler, joint_state)
    print(f"\n[energy] {case}: E0={float(e0):.6g} J, relative drift over 1 s at dt={DT}: "
          f"rk4 {drift_rk4:.3e}, euler {drift_euler:.3e}")
    _assert_limits_inactive(rk4, qs)
    _assert_limits_inactive(euler, qs_euler)
    # The arm really moves (a resting arm conserves energy trivially).
    assert float((qs - qs[0]).abs().max()) > 0.3
    assert float(e0) > 0.0
    assert drift_rk4 < bound
    assert drift_euler > 1e-5
    assert drift_euler > 1e3 * drift_rk4


def test_gravity_exchanges_kinetic_and_potential_energy():
    """Non-trivial energy bookkeeping: under gravity kinetic energy grows from 0 while the total stays put."""
    g, joint_state, wide, bound = CASES["gravity"]
    eff = _passive_arm("rk4", g, wide)
    drift, _, e0, final = _run(eff, joint_state)
    ke = float(eff.skeleton.kinetic_energy(final.q, final.qd))
    assert ke > 0.1 * float(e0)
    assert drift < bound


def test_muscle_force_changes_energy():
    """The drift measurement detects work: with the reacher's actuators on, energy is not conserved."""
    eff = mn_gym.make_effector("reacher", integrator="rk4", dtype=F64, dt=DT, max_isometric_force=2.0)
    u = torch.tensor([[0.6, 0.1, 0.6, 0.1]], dtype=F64)  # net shoulder and elbow flexion torques
    state = eff.initial_state(torch.tensor([[0.8, 1.2, 0.5, -0.6]], dtype=F64))
    e0 = _energy(eff, state)
    for _ in range(20):
        state = eff.step(state, u)
    _assert_limits_inactive(eff, state.q)
    assert float((_energy(eff, state) - e0).abs() / e0) > 0.1
