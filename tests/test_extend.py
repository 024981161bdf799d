"""Adding an effector and a task: registered pieces become env ids usable from every face and the CLI."""

import gymnasium as gym
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import mn_gym
from mn_gym import cli
from mn_gym.core import TwoLinkArm
from mn_gym.tasks.base import Task, at_rest, hand_position, plain_state


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
        return at_rest(q0), plain_state(effector, target, hand_position(effector, q0))


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
