"""Adding an effector and a task: registered pieces become env ids usable from every face and the CLI.

`HoldThenReach` below is a whole new task in one class (its own state type, an extra observation term and an
extra loss term), registered and run through both env checkers and every face.
"""

import warnings
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mn_gym
from mn_gym import cli
from mn_gym.core import TwoLinkArm
from mn_gym.faces.sb3 import MnGymVecEnv
from mn_gym.tasks.base import ReachState, Task, at_rest, hand_position, uniform_joints


def two_muscle_arm(*, dt: float = 0.01, dtype: torch.dtype = torch.float32, device=None) -> mn_gym.Effector:
    """A two-link arm with one flexor-extensor pair per joint (via points in each segment's frame)."""
    b = mn_gym.EffectorBuilder(TwoLinkArm.from_segments(dtype=dtype, device=device), muscle="kistemaker")
    common = {"max_isometric_force": 800.0, "tendon_slack_length": 0.1, "optimal_fibre_length": 0.1}
    b.add_muscle("shoulder_flexor", [(0, (0.0, 0.05)), (1, (0.1, 0.02))], **common)
    b.add_muscle("shoulder_extensor", [(0, (0.0, -0.05)), (1, (0.1, -0.02))], **common)
    b.add_muscle("elbow_flexor", [(1, (0.2, 0.03)), (2, (0.08, 0.02))], **common)
    b.add_muscle("elbow_extensor", [(1, (0.2, -0.03)), (2, (0.08, -0.02))], **common)
    return b.build(dt=dt)


class FixedReach(Task):
    """Reach from the arm's middle posture to one fixed target."""

    name = "fixed_reach"
    defaults = {"x": 0.0, "y": 0.45}

    def sample(self, effector, batch, generator, q0=None):
        if q0 is None:
            q0 = ((effector.skeleton.pos_lower + effector.skeleton.pos_upper) / 2).expand(batch, -1)
        target = torch.tensor([self.params["x"], self.params["y"]], dtype=effector.dtype,
                              device=effector.device).expand(batch, 2)
        return at_rest(q0), ReachState(target, hand_position(effector, q0))


class HoldState(NamedTuple):
    """target, origin (B, 2) m; hold_steps (B,) long: how long the hand must stay at the origin first."""

    target: torch.Tensor
    origin: torch.Tensor
    hold_steps: torch.Tensor


class HoldThenReach(Task):
    """Hold at the start for a random time, then reach a random target. Shows the time left to hold
    (`hold_left`, s) and penalises muscle activation while holding (`hold_activation`, mean squared)."""

    name = "hold_then_reach"
    State = HoldState
    observation_terms = (("target", 2), ("hold_left", 1))
    defaults = {"hold_min": 0.1, "hold_max": 0.3}
    weight_defaults = {**Task.weight_defaults, "hold_activation": 0.5}

    def sample(self, effector, batch, generator, q0=None):
        q0 = uniform_joints(effector, batch, generator, 0.1) if q0 is None else q0
        target = hand_position(effector, uniform_joints(effector, batch, generator, 0.1))
        lo, hi = self.params["hold_min"], self.params["hold_max"]
        hold = lo + (hi - lo) * torch.rand(batch, generator=generator, dtype=effector.dtype, device=effector.device)
        return at_rest(q0), HoldState(target, hand_position(effector, q0), torch.round(hold / effector.dt).long())

    def goal(self, ts, t, dt):
        return torch.where((t >= ts.hold_steps)[:, None], ts.target, ts.origin)

    def observe(self, ts, t, dt):
        left = (ts.hold_steps - t).clamp(min=0).to(ts.target.dtype) * dt
        return {"target": ts.target, "hold_left": left[:, None]}

    def still(self, ts, t, dt):
        return t < ts.hold_steps

    def loss_terms(self, ts, step):
        terms = super().loss_terms(ts, step)
        a = step.effector.activation
        terms["hold_activation"] = self.still(ts, step.t, step.dt).to(a.dtype) * (a * a).mean(-1)
        return terms


@pytest.fixture
def restore_registries():
    """Leave the effector, task, catalogue and Gymnasium registries as they were."""
    from mn_gym import catalogue, tasks

    saved = [(d, dict(d)) for d in (mn_gym.EFFECTORS, tasks.TASKS, catalogue.REGISTRY, gym.registry)]
    yield
    for d, before in saved:
        d.clear()
        d.update(before)


def test_custom_effector_and_task_become_an_env(capsys, restore_registries):
    assert mn_gym.register_task(FixedReach) is FixedReach
    mn_gym.register_effector("two_muscle_arm", two_muscle_arm)
    mn_gym.register("TwoMuscleFixedReach-v0", "two_muscle_arm", "fixed_reach", y=0.4,
                    episode_duration=0.5)
    env = mn_gym.make("TwoMuscleFixedReach-v0", batch_size=3)
    state, obs = env.reset(seed=0)
    assert env.action_size == 4 and torch.allclose(obs[:, :2], torch.tensor([0.0, 0.4]).expand(3, 2))
    state, *_ = env.step(state, torch.full((3, 4), 0.2))
    gym_env = gym.make("TwoMuscleFixedReach-v0")
    check_env(gym_env.unwrapped, skip_render_check=True)
    assert gym_env.unwrapped.max_episode_steps == 50
    cli.main(["list"])
    assert "TwoMuscleFixedReach-v0" in capsys.readouterr().out


def test_a_task_with_its_own_state_observation_and_loss_term(restore_registries):
    """One class adds a task: its state type, observation term and loss term reach every face and both checkers."""
    mn_gym.register_task(HoldThenReach)
    mn_gym.register("ArmHoldThenReach-v0", "arm26", "hold_then_reach", episode_duration=0.5)
    env = mn_gym.make("ArmHoldThenReach-v0", batch_size=4, deterministic=True)
    state, obs = env.reset(seed=1)
    assert isinstance(state.task, HoldState) and not env.task.applies_endpoint_load
    names = [name for name, _ in env.observation_terms]
    assert names[:3] == ["target", "hold_left", "hand"] and env.obs_size == 3 + 2 + 2 * 6
    left = obs[:, env.observation_slices()["hold_left"]][:, 0]
    torch.testing.assert_close(left, state.task.hold_steps.float() * env.dt)
    state, obs, reward, _, _, info = env.step(state, torch.full((4, 6), 0.3))
    assert set(info["terms"]) == {"position", "effort", "hold_activation"}
    assert torch.all(info["terms"]["hold_activation"] > 0)  # every trial holds at step 1
    torch.testing.assert_close(reward, -sum(info["terms"][k] * env.task.weights[k] for k in info["terms"]))
    with pytest.raises(ValueError, match=r"hold_then_reach.*hold_activation"):
        mn_gym.make("ArmHoldThenReach-v0", weights={"hold": 1.0})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        single = gym.make("ArmHoldThenReach-v0")
        check_env(single.unwrapped, skip_render_check=False)
        sb3_check_env(single.unwrapped, warn=True)
        _, step_info = single.reset(seed=0)[0], single.step(single.action_space.sample())[-1]
        assert "reward_hold_activation" in step_info
    envs = gym.make_vec("ArmHoldThenReach-v0", num_envs=3)
    envs.reset(seed=0)
    assert "reward_hold_activation" in envs.step(np.zeros((3, 6), np.float32))[-1]
    venv = MnGymVecEnv("ArmHoldThenReach-v0", num_envs=2)
    venv.reset()
    assert "reward_hold_activation" in venv.step(np.zeros((2, 6), np.float32))[-1][0]
    ro = mn_gym.rollout(env, mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=8))
    assert ro.terms["hold_activation"].shape == (env.max_steps, 4)


def test_a_task_that_pushes_applies_its_load(restore_registries):
    """Overriding `endpoint_load` is all it takes: the env applies it (no flag to remember)."""

    class Pushed(FixedReach):
        name = "pushed_reach"

        def endpoint_load(self, ts, t, dt, cartesian):
            return torch.full_like(ts.target, 5.0)

    assert Pushed().applies_endpoint_load and not FixedReach().applies_endpoint_load
    mn_gym.register_effector("two_muscle_arm", two_muscle_arm)
    for task in (FixedReach, Pushed):
        mn_gym.register_task(task)
        mn_gym.register(f"Two-{task.name}-v0", "two_muscle_arm", task.name, episode_duration=0.5)
    plain, pushed = (mn_gym.make(f"Two-{t}-v0", deterministic=True) for t in ("fixed_reach", "pushed_reach"))
    info = [e.step(e.reset(seed=0)[0], torch.zeros(1, 4))[-1] for e in (plain, pushed)]
    assert info[0]["endpoint_load"] is None
    assert torch.equal(info[1]["endpoint_load"], torch.full((1, 2), 5.0))
    assert not torch.equal(info[0]["hand"], info[1]["hand"])


def test_an_undeclared_loss_term_is_named(restore_registries):
    class Sloppy(FixedReach):
        name = "sloppy_reach"

        def loss_terms(self, ts, step):
            return {**super().loss_terms(ts, step), "wobble": step.hand[:, 0]}

    mn_gym.register_effector("two_muscle_arm", two_muscle_arm)
    mn_gym.register_task(Sloppy)
    mn_gym.register("Sloppy-v0", "two_muscle_arm", "sloppy_reach")
    env = mn_gym.make("Sloppy-v0")
    with pytest.raises(KeyError, match=r"'wobble'.*does not declare in weight_defaults"):
        env.step(env.reset(seed=0)[0], torch.zeros(1, 4))


def test_registration_errors(restore_registries):
    with pytest.raises(ValueError, match="already registered"):
        mn_gym.register_effector("arm26", two_muscle_arm)
    with pytest.raises(TypeError, match=r"must accept keyword arguments \['device', 'dtype'\]"):
        mn_gym.register_effector("bad", lambda dt=0.01: None)
    with pytest.raises(TypeError, match="Task subclass"):
        mn_gym.register_task(object)

    class Reach(Task):
        name = "reach"

    with pytest.raises(ValueError, match="task 'reach' is already registered"):
        mn_gym.register_task(Reach)
