"""Finite-difference gradient checks (float64) through 5 steps of every pre-built effector.

Inputs: excitations (5, B, M) and the initial q, qd, activation (and fibre length for the compliant
tendon); the musculotendon path of the initial state is recomputed from the grad-requiring q, qd.
Outputs: final q, qd, activation, endpoint (x, y, vx, vy) and muscle forces / Fmax (plus fibre length).

States are mid-range and excitations / activations strictly inside (min_activation, 1), well above
Kistemaker's b_rel switch (0.3), so no clamp or branch switch is active; the preconditions are asserted.
"""

from __future__ import annotations

import pytest
import torch

import mn_gym

F64 = torch.float64
B = 2
N_STEPS = 5

# (effector, kwargs, q0, qd0): q0 / qd0 per batch row
ARM_Q = ([0.8, 1.2], [1.0, 1.5])
ARM_QD = ([0.5, -0.8], [-0.6, 0.7])
PM_Q = ([0.1, -0.2], [-0.15, 0.05])
PM_QD = ([0.3, -0.2], [-0.1, 0.4])
CASES = {
    "arm26-kistemaker": ("arm26", dict(muscle="kistemaker"), ARM_Q, ARM_QD),
    "arm26-thelen": ("arm26", dict(muscle="thelen"), ARM_Q, ARM_QD),
    "arm26-mujoco": ("arm26", dict(muscle="mujoco"), ARM_Q, ARM_QD),
    "compliant_arm26": ("compliant_arm26", {}, ARM_Q, ARM_QD),
    "pointmass24": ("pointmass24", {}, PM_Q, PM_QD),
    "free_pointmass24": ("free_pointmass24", {}, PM_Q, PM_QD),
    "reacher": ("reacher", {}, ARM_Q, ARM_QD),
    "elbow": ("elbow", {}, ([1.0], [1.6]), ([0.5], [-0.6])),
}


def test_every_prebuilt_effector_is_covered():
    assert {spec[0] for spec in CASES.values()} == set(mn_gym.EFFECTORS)


def _inputs(eff, q0, qd0, seed):
    g = torch.Generator().manual_seed(seed)
    m = eff.n_muscles
    exc = 0.58 + 0.04 * torch.rand(N_STEPS, B, m, generator=g, dtype=F64)
    act = 0.38 + 0.04 * torch.rand(B, m, generator=g, dtype=F64)
    q = torch.tensor(q0, dtype=F64)
    qd = torch.tensor(qd0, dtype=F64)
    base = eff.initial_state(torch.cat((q, qd), -1))
    inputs = [exc, q, qd, act]
    if eff.muscle.compliant:
        # Tendon strain 2.5 % (force ~0.4 Fmax, near isometric balance at activation 0.4), so every tendon stays
        # taut and below saturation (strain 4 %); initial_state's passive equilibrium can leave it exactly slack,
        # on the strain clamp.
        inputs.append(base.mt_length - 1.025 * eff.muscle.tendon_slack_length)
    return base, [x.clone().requires_grad_(True) for x in inputs]


def _rollout(eff, base, exc, q, qd, act, l_m=None):
    state = base._replace(q=q, qd=qd, activation=act, fibre_length=l_m)
    l_mt, v_mt, _ = eff.path_geometry(state)
    state = state._replace(mt_length=l_mt, mt_velocity=v_mt)
    for t in range(N_STEPS):
        state = eff.step(state, exc[t])
    return state


def _outputs(eff, base, *inputs):
    state = _rollout(eff, base, *inputs)
    # Forces in units of max isometric force: O(1) like the other outputs, so that finite-difference round-off
    # (~|F| 1e-16 / eps, amplified by the stiff compliant tendon) stays far below atol.
    force = eff.muscle_force(state) / eff.muscle.max_isometric_force
    out = [state.q, state.qd, state.activation, eff.cartesian(state), force]
    if state.fibre_length is not None:
        out.append(state.fibre_length)
    return tuple(out)


@pytest.mark.parametrize("integrator", ["euler", "rk4"])
@pytest.mark.parametrize("case", list(CASES))
def test_gradcheck(case, integrator):
    name, kwargs, q0, qd0 = CASES[case]
    eff = mn_gym.make_effector(name, integrator=integrator, dtype=F64, **kwargs)
    # Full Jacobian check under each effector's default integrator; the other one (a few times slower under
    # rk4) is checked in gradcheck's fast mode (random projections u^T J v) to keep the suite quick.
    fast = integrator != mn_gym.make_effector(name).integrator
    base, inputs = _inputs(eff, q0, qd0, seed=len(case))

    # Preconditions: no joint or activation clamp is active along the rollout, and the tendon is taut.
    with torch.no_grad():
        state = base._replace(q=inputs[1], qd=inputs[2], activation=inputs[3],
                              fibre_length=inputs[4] if len(inputs) > 4 else None)
        sk = eff.skeleton
        for t in range(N_STEPS):
            state = eff.step(state, inputs[0][t])
            span = sk.pos_upper - sk.pos_lower
            assert ((state.q - sk.pos_lower) > 0.05 * span).all() and ((sk.pos_upper - state.q) > 0.05 * span).all()
            assert (state.activation > eff.muscle.min_activation + 0.05).all() and (state.activation < 0.95).all()
            if eff.muscle.compliant:
                rows = eff.muscle_state(state)  # activation, l_m, v_m, flpe, flse, active, force
                assert ((rows[:, 4] > 1e-3) & (rows[:, 4] < 1.0 - 1e-3)).all(), "tendon slack or saturated"

    # The outputs depend on every input (a gradcheck of a constant function would pass trivially).
    outs = _outputs(eff, base, *inputs)
    grads = torch.autograd.grad(sum(o.sum() for o in outs), inputs)
    for i, gr in enumerate(grads):
        assert gr.abs().sum() > 0, f"no gradient reaches input {i}"

    assert torch.autograd.gradcheck(lambda *x: _outputs(eff, base, *x), tuple(inputs), eps=1e-6, atol=1e-5,
                                    rtol=1e-4, fast_mode=fast)
