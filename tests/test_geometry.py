"""Via-point path geometry (float64): lengths against an independent implementation of the point
kinematics, velocities against finite differences of the length along q(t) = q0 + t qd, and moment arms
against -d l_mt / d q (autograd and finite differences), for a custom arm and for pointmass24.
"""

from __future__ import annotations

import math

import pytest
import torch

import mn_gym
from mn_gym.core.skeleton import TwoLinkArm

F64 = torch.float64
PARAMS = dict(max_isometric_force=500.0, tendon_slack_length=0.1, optimal_fibre_length=0.1)

# name -> via points (body, (x, y)); body 0 = world, 1 = upper arm, 2 = forearm
ARM_MUSCLES = {
    "shoulder_mono": [(0, (-0.05, 0.03)), (1, (0.12, 0.02))],
    "elbow_mono": [(1, (0.15, 0.025)), (2, (0.04, 0.012))],  # spans the elbow only
    "forearm_only": [(2, (0.02, -0.01)), (2, (0.12, 0.015))],  # spans no joint: constant length
    "biarticular": [(0, (0.03, 0.04)), (2, (0.05, 0.015))],  # world -> forearm, spans both joints
    "three_point": [(1, (0.05, -0.02)), (1, (0.28, -0.03)), (2, (0.06, -0.015))],  # wraps the elbow
    "four_point": [(0, (0.02, -0.04)), (1, (0.1, -0.025)), (1, (0.25, -0.02)), (2, (0.07, -0.01))],
}
ELBOW_ONLY = ["elbow_mono", "three_point"]  # muscles whose length depends on q2 only


@pytest.fixture(scope="module")
def arm():
    builder = mn_gym.EffectorBuilder(TwoLinkArm.from_segments(dtype=F64), muscle="thelen")
    for name, points in ARM_MUSCLES.items():
        builder.add_muscle(name, points, **PARAMS)
    return builder.build(dt=0.01, integrator="rk4")


@pytest.fixture(scope="module")
def pointmass():
    return mn_gym.make_effector("pointmass24", dtype=F64)


def _q_batch(eff, n=6, seed=0):
    g = torch.Generator().manual_seed(seed)
    sk = eff.skeleton
    lo, hi = sk.pos_lower, sk.pos_upper
    return lo + (0.1 + 0.8 * torch.rand(n, eff.dof, generator=g, dtype=F64)) * (hi - lo)


def _geometry(eff, q, qd=None):
    qd = torch.zeros_like(q) if qd is None else qd
    return eff.geometry(eff.skeleton, q, qd)


def _manual_arm_lengths(q, l1):
    """l_mt from model.md 1.10's fixation-point formulas, written out independently."""
    out = []
    for points in ARM_MUSCLES.values():
        pos = []
        for body, (x, y) in points:
            c = torch.tensor([x, y], dtype=F64)
            if body == 0:
                pos.append(c.expand(q.shape[0], 2))
                continue
            ang = q[:, 0] if body == 1 else q[:, 0] + q[:, 1]
            rot = torch.stack((torch.cos(ang) * c[0] - torch.sin(ang) * c[1],
                               torch.sin(ang) * c[0] + torch.cos(ang) * c[1]), -1)
            if body == 2:
                rot = rot + l1 * torch.stack((torch.cos(q[:, 0]), torch.sin(q[:, 0])), -1)
            pos.append(rot)
        out.append(sum((pos[i + 1] - pos[i]).norm(dim=-1) for i in range(len(pos) - 1)))
    return torch.stack(out, -1)


def test_arm_lengths_match_independent_kinematics(arm):
    q = _q_batch(arm)
    l_mt, _, _ = _geometry(arm, q)
    expected = _manual_arm_lengths(q, float(arm.skeleton.l1))
    torch.testing.assert_close(l_mt, expected, rtol=0, atol=1e-14)


def _check_velocity_and_moment_arms(eff, q, qd, h=1e-6):
    l_mt, v_mt, moment_arm = _geometry(eff, q, qd)
    # (a) v_mt = d/dt l_mt(q0 + t qd) at t = 0, central differences (truncation ~h^2, round-off ~1e-16 / h).
    fd_v = (_geometry(eff, q + h * qd)[0] - _geometry(eff, q - h * qd)[0]) / (2 * h)
    torch.testing.assert_close(v_mt, fd_v, rtol=0, atol=1e-8)
    # (b) moment arm = -d l_mt / d q: autograd Jacobian ...
    qg = q.clone().requires_grad_(True)
    lg = _geometry(eff, qg)[0]
    jac = torch.stack([torch.autograd.grad(lg[:, m].sum(), qg, retain_graph=True)[0] for m in range(lg.shape[1])],
                      -1)  # (B, dof, M)
    torch.testing.assert_close(moment_arm, -jac, rtol=0, atol=1e-12)
    # ... and central finite differences per joint.
    for j in range(eff.dof):
        e = torch.zeros_like(q)
        e[:, j] = h
        fd = (_geometry(eff, q + e)[0] - _geometry(eff, q - e)[0]) / (2 * h)
        torch.testing.assert_close(moment_arm[:, j], -fd, rtol=0, atol=1e-8)
    # v_mt = -sum_j moment_arm_j qd_j (consistency of the three outputs)
    torch.testing.assert_close(v_mt, -(moment_arm * qd[:, :, None]).sum(1), rtol=0, atol=1e-13)
    return l_mt, v_mt, moment_arm


@pytest.mark.parametrize("qd", [[1.3, 0.0], [0.0, -2.1], [0.8, 1.7], [-1.5, 0.6]])
def test_arm_velocity_and_moment_arms(arm, qd):
    q = _q_batch(arm)
    qd_t = torch.tensor(qd, dtype=F64).expand_as(q).clone()
    _, _, moment_arm = _check_velocity_and_moment_arms(arm, q, qd_t)
    names = arm.muscle_names
    # Non-trivial: every joint-spanning muscle has a non-zero moment arm about the joints it spans.
    for name in names:
        ma = moment_arm[:, :, names.index(name)]
        if name == "forearm_only":
            assert ma.abs().max() < 1e-15
        elif name in ELBOW_ONLY:
            assert ma[:, 0].abs().max() < 1e-15 and ma[:, 1].abs().max() > 1e-2
        elif name == "shoulder_mono":
            assert ma[:, 0].abs().max() > 1e-2 and ma[:, 1].abs().max() < 1e-15
        else:  # spans both joints (a moment arm may cross zero at some posture, not at all)
            assert (ma.abs().amax(0) > 1e-2).all(), name


def test_shoulder_motion_leaves_elbow_muscles_unchanged(arm):
    """Only the shoulder moves: muscles spanning only the elbow keep their length, so v_mt == 0
    (MotorNet 0.3.0 reports a non-zero velocity here, model.md 1.10); the others do move."""
    q = _q_batch(arm)
    qd = torch.zeros_like(q)
    qd[:, 0] = 2.0
    l_mt, v_mt, _ = _geometry(arm, q, qd)
    l_later = _geometry(arm, q + 0.1 * qd)[0]
    for name in arm.muscle_names:
        m = arm.muscle_names.index(name)
        if name in [*ELBOW_ONLY, "forearm_only"]:
            assert v_mt[:, m].abs().max() < 1e-14, (name, v_mt[:, m])
            torch.testing.assert_close(l_later[:, m], l_mt[:, m], rtol=0, atol=1e-14)
        else:
            assert v_mt[:, m].abs().max() > 1e-2, name
    # The elbow muscles do lengthen or shorten when the elbow moves.
    qd2 = torch.zeros_like(q)
    qd2[:, 1] = 2.0
    _, v2, _ = _geometry(arm, q, qd2)
    for name in ELBOW_ONLY:
        assert v2[:, arm.muscle_names.index(name)].abs().max() > 1e-2


def test_arm_state_path_matches_geometry(arm):
    """path_geometry(state) and a step's stored path use the same geometry (rk4: the new state's)."""
    q = _q_batch(arm, n=3, seed=1)
    qd = torch.tensor([[0.5, -0.7]], dtype=F64).expand_as(q).clone()
    state = arm.initial_state(torch.cat((q, qd), -1))
    nxt = arm.step(state, torch.full((3, arm.n_muscles), 0.2, dtype=F64))
    l_mt, v_mt, _ = arm.path_geometry(nxt)
    torch.testing.assert_close(nxt.mt_length, l_mt, rtol=0, atol=1e-15)
    torch.testing.assert_close(nxt.mt_velocity, v_mt, rtol=0, atol=1e-15)


@pytest.mark.parametrize("qd", [[0.4, 0.0], [0.0, -0.9], [0.7, 0.5]])
def test_pointmass_velocity_and_moment_arms(pointmass, qd):
    q = _q_batch(pointmass)
    qd_t = torch.tensor(qd, dtype=F64).expand_as(q).clone()
    l_mt, _, moment_arm = _check_velocity_and_moment_arms(pointmass, q, qd_t)
    # Independent: straight line from the anchor (+-2, +-2) to the mass; moment arm = unit vector to the anchor.
    anchors = torch.tensor([[2.0, 2.0], [-2.0, 2.0], [2.0, -2.0], [-2.0, -2.0]], dtype=F64)
    d = anchors[None] - q[:, None, :]  # (B, M, 2)
    torch.testing.assert_close(l_mt, d.norm(dim=-1), rtol=0, atol=1e-14)
    torch.testing.assert_close(moment_arm, (d / d.norm(dim=-1, keepdim=True)).transpose(1, 2), rtol=0, atol=1e-14)
    assert math.isclose(float(moment_arm.norm(dim=1).min()), 1.0, rel_tol=1e-12)
