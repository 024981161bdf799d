"""Tasks with a go cue beyond centre-out: instructed-delay reaching (`ArmDelayedReach-v0`) and reach sequences
(`ArmSequence-v0`). Both env checkers run on the two ids through tests/test_gym_checkers.py (every id)."""

import pytest
import torch

import mn_gym
from mn_gym.faces.rollout import rollout


def _still(env):
    return lambda obs, h: (torch.full((obs.shape[0], env.action_size), 0.05), h)


def test_delayed_reach_holds_the_start_until_the_cue_then_shows_the_target():
    env = mn_gym.make("ArmDelayedReach-v0", batch_size=256, deterministic=True, seed=0)
    state, obs = env.reset()
    ts = state.task
    cue_s = ts.cue_step.double() * env.dt
    assert cue_s.min() >= 0.2 - 1e-9 and cue_s.max() <= 0.6 + 1e-9 and cue_s.std() > 0.05
    hand = env.effector.cartesian(state.effector)[:, :2]
    torch.testing.assert_close(ts.origin, hand)
    cols = env.observation_slices()
    torch.testing.assert_close(obs[:, cols["target"]], ts.target)   # the target is shown from the start
    for k in (0, 30, 70):
        t = torch.full((256,), k)
        go = t >= ts.cue_step
        assert torch.equal(env.task.goal(ts, t, env.dt), torch.where(go[:, None], ts.target, ts.origin))
        assert torch.equal(env.task.still(ts, t, env.dt), ~go)
        assert torch.equal(env.task.observe(ts, t, env.dt)["go_cue"][:, 0], go.float())


def test_sequence_goals_step_through_the_targets_in_order():
    env = mn_gym.make("ArmSequence-v0", batch_size=6, deterministic=True, n_targets=3, interval=0.2,
                      episode_duration=1.2, seed=1)
    state, obs = env.reset()
    ts = state.task
    assert ts.targets.shape == (6, 3, 2) and torch.equal(ts.target, ts.targets[:, 2])
    assert env.observation_terms[:2] == (("targets", 6), ("go_cue", 1)) and env.obs_size == 6 + 1 + 2 + 12
    torch.testing.assert_close(obs[:, env.observation_slices()["targets"]], ts.targets.flatten(1))
    cue = ts.cue_step
    for offset, index in ((-1, None), (0, 0), (19, 0), (20, 1), (39, 1), (40, 2), (90, 2)):
        t = cue + offset
        goal = env.task.goal(ts, t, env.dt)
        expected = ts.origin if index is None else ts.targets[:, index]
        assert torch.equal(goal, expected), (offset, index)
    ro = rollout(env, _still(env), seed=1)
    torch.testing.assert_close(ro.goals[-1], ts.target)  # success is scored on the last target


def test_cued_task_parameters_are_checked():
    with pytest.raises(ValueError, match="cue_min must be <= cue_max"):
        mn_gym.make("ArmDelayedReach-v0", cue_min=0.5, cue_max=0.2)
    with pytest.raises(ValueError, match=r"n_targets must be a number"):
        mn_gym.make("ArmSequence-v0", n_targets=0)
    with pytest.raises(ValueError, match=r"interval must be a number > 0"):
        mn_gym.make("ArmSequence-v0", interval=0.0)


@pytest.mark.parametrize("env_id", ["ArmDelayedReach-v0", "ArmSequence-v0"])
def test_cued_losses_have_gradients(env_id):
    env = mn_gym.make(env_id, batch_size=3, deterministic=True, dtype=torch.float64, seed=0)
    exc = torch.full((env.max_steps, 3, env.action_size), 0.2, dtype=torch.float64, requires_grad=True)
    ro = rollout(env, lambda obs, h: (exc[h], h + 1), seed=0, hidden=0)
    assert ro.rewards.shape == (env.max_steps, 3) and "velocity" in ro.terms
    (grad,) = torch.autograd.grad(ro.rewards.sum(), exc)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
