"""The motor-control loss terms of the base task: force, force_rate, speed and hand_jerk.

Each term against its formula on a hand-built step, no effect at weight 0 (the default), gradients back to
the action, and the reward of an env made with the weight.
"""

import pytest
import torch

import mn_gym
from mn_gym.tasks.base import StepOutcome

NEW = ("force", "force_rate", "speed", "hand_jerk")
DT = 0.01


def _env(weights=None, batch=3):
    return mn_gym.make("PointMassReach-v0", batch_size=batch, weights=weights or {}, deterministic=True)


def _outcome(env, a_now, a_before, hand, hand_velocity):
    """A hand-built step of the point mass (linear muscles: force / max isometric force = activation)."""
    state, _ = env.reset(seed=0)
    eff = state.effector
    b, m = a_now.shape
    zeros = torch.zeros(b, m)
    return StepOutcome(torch.ones(b, dtype=torch.long), env.dt, hand, torch.zeros(b, 2), zeros, zeros,
                       eff._replace(activation=a_now), eff._replace(activation=a_before), env.effector,
                       hand_velocity)


def test_defaults_are_zero_and_terms_absent():
    env = _env()
    assert all(env.task.weights[k] == 0.0 for k in NEW)
    state, _ = env.reset(seed=0)
    *_, info = env.step(state, torch.full((3, env.action_size), 0.3))
    assert not set(NEW) & set(info["terms"]) and set(info["terms"]) == {"position", "effort"}


def test_terms_match_hand_formulas():
    env = _env(dict.fromkeys(NEW, 1.0), batch=2)
    assert type(env.effector.muscle).__name__ == "LinearMuscle" and env.dt == DT
    a_now = torch.tensor([[0.2, 0.4, 0.6, 0.8], [1.0, 0.0, 0.5, 0.5]])
    a_before = torch.tensor([[0.1, 0.4, 0.7, 0.8], [0.0, 0.0, 0.5, 0.25]])
    hand = torch.tensor([[0.0, 0.0, 3.0, 4.0], [1.0, 1.0, 0.0, -2.0]])
    hist = torch.tensor([[[1.0, 1.0], [2.0, 2.0]], [[0.0, 0.0], [0.0, -1.0]]])  # v_{t-2}, v_{t-1}
    terms = env.task.loss_terms(env.reset(seed=0)[0].task, _outcome(env, a_now, a_before, hand, hist))
    # force: mean (F / Fmax)^2 = mean a^2
    assert torch.allclose(terms["force"], torch.tensor([(0.04 + 0.16 + 0.36 + 0.64) / 4, (1.0 + 0.25 + 0.25) / 4]))
    # force_rate: mean ((a_t - a_{t-1}) / dt)^2, 1/s^2
    want_rate = torch.tensor([(10.0**2 + 0 + 10.0**2 + 0) / 4, (100.0**2 + 0 + 0 + 25.0**2) / 4])
    assert torch.allclose(terms["force_rate"], want_rate)
    assert torch.allclose(terms["speed"], torch.tensor([5.0, 2.0]))
    # hand_jerk: |(v_t - 2 v_{t-1} + v_{t-2}) / dt^2|^2; row 0: (3-4+1, 4-4+1) = (0, 1); row 1: (0, -2+2) = (0, 0)
    assert torch.allclose(terms["hand_jerk"], torch.tensor([1.0 / DT**4, 0.0]))


def test_hand_built_outcome_without_model_raises_only_when_weighted():
    env = _env({"force": 1.0}, batch=1)
    eff = env.reset(seed=0)[0].effector
    bare = StepOutcome(torch.ones(1, dtype=torch.long), DT, torch.zeros(1, 4), torch.zeros(1, 2),
                       torch.zeros(1, 4), torch.zeros(1, 4), eff)
    with pytest.raises(ValueError, match="force"):
        env.task.loss_terms(None, bare)
    assert set(_env(batch=1).task.loss_terms(None, bare)) == {"position", "effort"}


@pytest.mark.parametrize("term", NEW)
def test_gradients_flow_to_the_action(term):
    env = _env({term: 1.0}, batch=2)
    state, _ = env.reset(seed=0)
    actions = torch.full((3, 2, env.action_size), 0.3, requires_grad=True)
    for k in range(3):  # hand_jerk and speed are 0 at rest after the first step: run a few
        state, _, _, _, _, info = env.transition(state, actions[k], None)
    info["terms"][term].sum().backward()
    assert actions.grad is not None and torch.isfinite(actions.grad).all() and actions.grad.abs().sum() > 0


def test_env_reward_differs_by_the_weighted_term():
    torch.manual_seed(0)
    action = torch.rand(3, 4)
    plain, weighted = _env(), _env({"speed": 0.1})
    outs = []
    for env in (plain, weighted):
        state, _ = env.reset(seed=0)
        for _ in range(3):
            state, _, reward, _, _, info = env.step(state, action)
        outs.append((reward, info))
    (r0, _), (r1, info) = outs
    speed = torch.linalg.vector_norm(info["hand"][:, 2:], dim=-1)
    assert (speed > 0).all()
    assert torch.allclose(r1, r0 - 0.1 * speed, atol=1e-6)
    assert torch.allclose(info["reward_terms"]["reward_speed"], -0.1 * speed)


def test_arm_make_passes_weights():
    env = mn_gym.make("ArmReach-v0", weights={"speed": 0.1, "force": 0.01})
    assert env.task.weights["speed"] == 0.1 and env.task.weights["force"] == 0.01
    state, _ = env.reset(seed=0)
    *_, info = env.step(state, torch.full((1, env.action_size), 0.2))
    assert {"speed", "force"} <= set(info["terms"]) and torch.isfinite(info["terms"]["force"]).all()


def test_hand_velocity_history_in_the_state():
    env = _env({"hand_jerk": 1e-6}, batch=2)  # the history is kept only where hand_jerk is weighted
    state, _ = env.reset(seed=0)
    assert torch.equal(state.hand_velocity[:, 0], state.hand_velocity[:, 1])
    vs = []
    for _ in range(3):
        state, *_, info = env.step(state, torch.full((2, 4), 0.5))
        vs.append(info["hand"][:, 2:])
    assert torch.equal(state.hand_velocity, torch.stack(vs[-2:], dim=1))


def test_compiled_step_with_the_new_terms_matches_eager():
    env = _env(dict.fromkeys(NEW, 1e-6), batch=2)
    step = torch.compile(env.transition, fullgraph=True)  # no graph break: no Python branch on tensor values
    action = torch.full((2, 4), 0.3)
    eager = compiled = env.reset(seed=0)[0]
    for _ in range(3):
        eager, _, r_eager, *_ = env.transition(eager, action, None)
        compiled, _, r_compiled, *_ = step(compiled, action, None)
    assert torch.allclose(r_eager, r_compiled, rtol=1e-4)


@pytest.mark.parametrize("env_id", ["ArmCentreOut-v0", "ArmPosture-v0"])
def test_tasks_with_own_weights_accept_the_new_terms(env_id):
    if env_id not in mn_gym.list_ids():
        pytest.skip(f"{env_id} not in the catalogue")
    env = mn_gym.make(env_id, weights={"speed": 0.1})
    assert all(env.task.weights[k] == (0.1 if k == "speed" else 0.0) for k in NEW)
