"""The one-joint elbow effector (`elbow`) and its env `ElbowReach-v0`: shapes, the flexor's sign, analytic
adjoint against autograd (float64 gradcheck with an endpoint load), and both env checkers."""

from __future__ import annotations

import math

import gymnasium as gym
import pytest
import torch

import mn_gym
from mn_gym.core.skeleton import SKELETONS, Elbow

F64 = torch.float64


def test_elbow_shapes_and_config_round_trip():
    eff = mn_gym.make_effector("elbow")
    assert (eff.dof, eff.n_muscles) == (1, 2)
    assert SKELETONS["elbow"] is Elbow and isinstance(eff.skeleton, Elbow)
    state = eff.random_initial_state(5)
    assert state.q.shape == (5, 1) and state.qd.shape == (5, 1) and state.activation.shape == (5, 2)
    state = eff.step(state, torch.full((5, 2), 0.3))
    assert eff.cartesian(state).shape == (5, 4)
    hand = eff.cartesian(state)[:, :2]
    assert torch.allclose(hand.norm(dim=-1), torch.full((5,), 0.333), atol=1e-5)  # on the forearm's arc
    lo, hi = eff.skeleton.pos_lower, eff.skeleton.pos_upper
    assert float(lo) == 0.0 and math.isclose(float(hi), math.radians(150), rel_tol=1e-6)
    clone = type(eff).from_config(eff.config())
    assert torch.equal(clone.step(state, torch.full((5, 2), 0.3)).q, eff.step(state, torch.full((5, 2), 0.3)).q)


def test_moment_arms_flexor_positive_extensor_negative():
    eff = mn_gym.make_effector("elbow", dtype=F64)
    q = torch.linspace(0.0, math.radians(150), 7, dtype=F64)[:, None]
    _, _, arm = eff.geometry(eff.skeleton, q, torch.zeros_like(q))  # (B, 1, 2) m
    assert (arm[:, 0, 0] > 0.01).all() and (arm[:, 0, 0] < 0.05).all()  # biceps flexes
    assert (arm[:, 0, 1] < -0.01).all() and (arm[:, 0, 1] > -0.035).all()  # triceps extends


@pytest.mark.parametrize("muscle, sign", [(0, 1.0), (1, -1.0)])
def test_excitation_moves_the_elbow_its_way(muscle, sign):
    eff = mn_gym.make_effector("elbow")
    state = eff.initial_state(torch.tensor([[math.radians(75), 0.0]]))
    q0 = state.q.clone()
    u = torch.zeros(1, 2)
    u[0, muscle] = 1.0
    for _ in range(20):
        state = eff.step(state, u)
    assert sign * float(state.q - q0) > 0.05


def test_fused_adjoint_matches_gradcheck_with_endpoint_load():
    eff = mn_gym.make_effector("elbow", dtype=F64, viscosity=0.2)
    assert eff._fused  # the analytic adjoint step (Elbow.acceleration_vjp) is the one checked
    g = torch.Generator().manual_seed(0)
    exc = (0.58 + 0.04 * torch.rand(4, 2, 2, generator=g, dtype=F64)).requires_grad_(True)
    q = torch.tensor([[1.0], [1.6]], dtype=F64, requires_grad=True)
    qd = torch.tensor([[0.5], [-0.6]], dtype=F64, requires_grad=True)
    load = torch.tensor([[1.5, -2.0], [-1.0, 0.5]], dtype=F64, requires_grad=True)
    base = eff.initial_state(torch.cat((q, qd), -1).detach())

    def rollout(exc, q, qd, load):
        state = base._replace(q=q, qd=qd)
        for t in range(exc.shape[0]):
            state = eff.step(state, exc[t], endpoint_load=load)
        return state.q, state.qd, state.activation, eff.cartesian(state)

    assert torch.autograd.gradcheck(rollout, (exc, q, qd, load), eps=1e-6, atol=1e-5, rtol=1e-4)



def test_elbow_reach_is_registered():
    # Both env checkers run on it through tests/test_gym_checkers.py, parametrised over mn_gym.list_ids().
    assert "ElbowReach-v0" in mn_gym.list_ids()
    env = gym.make("ElbowReach-v0")
    obs, _ = env.reset(seed=0)
    assert env.action_space.shape == (2,) and obs.shape == env.observation_space.shape
    env.close()
