"""Force-channel probe trials of the curl-field task (`channel_probability`, `ArmCurlFieldChannel-v0`): which
trials are probes, the channel's force, that it holds the hand on the straight line, and gradients through it.
Both env checkers run on `ArmCurlFieldChannel-v0` through tests/test_gym_checkers.py (every catalogue id)."""

import pytest
import torch

import mn_gym
from mn_gym.faces.rollout import rollout


def _pushing_policy(env, scale=0.05):
    """A fixed excitation pattern that moves the hand (different per muscle, constant in time)."""
    pattern = scale * torch.linspace(0.1, 1.0, env.action_size)
    return lambda obs, h: (pattern.expand(obs.shape[0], -1), h)


def test_trial_types_are_drawn_apart_at_their_rates():
    env = mn_gym.make("ArmCurlField-v0", batch_size=20000, catch_probability=0.3, channel_probability=0.2, seed=0)
    state, _ = env.reset()
    ts = state.task
    assert ts.field.shape == ts.channel.shape == (20000,) and ts.channel.dtype == torch.bool
    assert (ts.field[ts.channel] == 0).all()  # no field on a probe
    catch = ~ts.channel & (ts.field == 0)
    assert abs(ts.channel.float().mean().item() - 0.2) < 0.015
    assert abs(catch.float().mean().item() - 0.3) < 0.015
    assert (ts.field[~ts.channel & ~catch] == 15.0).all()


def test_catch_and_channel_probabilities_must_fit_in_one():
    with pytest.raises(ValueError, match=r"catch_probability \+ channel_probability must be <= 1"):
        mn_gym.make("ArmCurlField-v0", catch_probability=0.6, channel_probability=0.5)
    with pytest.raises(ValueError, match=r"channel_stiffness must be a number in \[0.0, 10000.0\]"):
        mn_gym.make("ArmCurlField-v0", channel_stiffness=-1.0)


def test_the_channel_holds_the_hand_on_the_line_and_reports_its_force():
    env = mn_gym.make("ArmCurlFieldChannel-v0", batch_size=8, channel_probability=1.0, deterministic=True, seed=0)
    free = mn_gym.make("ArmCurlField-v0", batch_size=8, k=0.0, deterministic=True, seed=0)
    policy = _pushing_policy(env)
    ro, ro_free = rollout(env, policy, seed=0), rollout(free, policy, seed=0)
    ts = ro.final_state.task
    n = env.task.channel_normal(ts)
    torch.testing.assert_close((n * (ts.target - ts.origin)).sum(-1), torch.zeros(8), atol=1e-6, rtol=0)
    offset = ((ro.hand[:, :, :2] - ts.origin) * n).sum(-1)
    offset_free = ((ro_free.hand[:, :, :2] - ts.origin) * n).sum(-1)
    assert offset_free.abs().max() > 0.1   # unconstrained, this pattern leaves the line by > 10 cm
    assert offset.abs().max() < 0.005      # the channel holds it within 5 mm against a ~10 N push
    # the env's endpoint load is the channel force: along the normal, equal to `compensation`
    state, _ = env.reset(seed=0)
    for _ in range(30):
        cart = env.effector.cartesian(state.effector)
        state, _, _, _, _, info = env.step(state, policy(torch.zeros(8, 1), None)[0])
        expected = env.task.compensation(ts, cart)[:, None] * n
        torch.testing.assert_close(info["endpoint_load"], expected)
    assert info["endpoint_load"].abs().max() > 1.0  # the pattern pushes into the wall, the wall pushes back


def test_compensation_is_zero_off_channel_trials():
    env = mn_gym.make("ArmCurlField-v0", batch_size=4, channel_probability=0.0, seed=0)
    state, _ = env.reset()
    cart = torch.tensor([[0.05, 0.4, 0.3, -0.2]]).expand(4, -1)
    assert torch.equal(env.task.compensation(state.task, cart), torch.zeros(4))


def test_gradients_flow_through_the_channel_force():
    env = mn_gym.make("ArmCurlFieldChannel-v0", batch_size=4, channel_probability=1.0, deterministic=True,
                      dtype=torch.float64, seed=0)
    exc = torch.full((20, 4, env.action_size), 0.3, dtype=torch.float64, requires_grad=True)
    state, _ = env.reset(seed=0)
    force = []
    for t in range(20):
        cart = env.effector.cartesian(state.effector)
        force.append(env.task.compensation(state.task, cart))
        state, *_ = env.step(state, exc[t])
    (grad,) = torch.autograd.grad(torch.stack(force).pow(2).sum(), exc)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
