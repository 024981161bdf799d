"""Task definitions: what each task samples, shows and pushes with (independent of any trained policy)."""

import math
import warnings

import pytest
import torch

import mn_gym
from mn_gym.core import AccuracyWarning


def test_tracking_path_starts_at_the_hand_and_moves_smoothly():
    env = mn_gym.make("ArmTrack-v0", batch_size=16, deterministic=True)
    s, _ = env.reset(seed=3)
    goals = torch.stack([env.task.goal(s.task, torch.full((16,), k), env.dt) for k in range(env.max_steps)])
    hand = env.effector.cartesian(s.effector)[:, :2]
    assert torch.allclose(goals[0], hand, atol=1e-6)
    step = torch.linalg.vector_norm(goals[1:] - goals[:-1], dim=-1)
    assert step.max() < 2 * math.pi * 1.2 * 0.06 * env.dt + 1e-6  # bounded by amplitude x max frequency
    assert (goals - hand).abs().max() > 1e-3  # it does move


def test_posture_pulse_acts_only_in_its_window():
    env = mn_gym.make("ArmPosture-v0", batch_size=64, deterministic=True, max_force=8.0, duration=0.1)
    s, _ = env.reset(seed=1)
    onset, offset, force = s.task.onset_step, s.task.offset_step, s.task.force
    assert torch.equal(offset - onset, torch.full_like(onset, 10))
    assert (torch.linalg.vector_norm(force, dim=-1) <= 8.0 + 1e-5).all()
    cart = env.effector.cartesian(s.effector)
    for k in (0, 20, 40, 70):
        t = torch.full((64,), k)
        load = env.task.endpoint_load(s.task, t, env.dt, cart)
        on = (k >= onset) & (k < offset)
        assert torch.equal(load[on], force[on]) and (load[~on] == 0).all()


def test_reach_targets_are_reachable_and_differ_from_the_start():
    env = mn_gym.make("ArmReach-v0", batch_size=256, deterministic=True)
    s, obs = env.reset(seed=0)
    target = s.task.target
    reach = env.effector.skeleton.l1 + env.effector.skeleton.l2
    assert (torch.linalg.vector_norm(target, dim=-1) <= reach + 1e-6).all()
    assert torch.equal(obs[:, :2], target)
    assert torch.linalg.vector_norm(target - s.task.origin, dim=-1).mean() > 0.1


def test_v1_reaching_adds_the_precision_well_and_v0_is_unchanged():
    """-v1 = -v0 plus 0.1 x precision, 1 - exp(-(d / 2r)^2): ~1 far from the goal, 0 on it; -v0 has no such term."""
    for name in ("PointMassReach", "ArmReach"):
        v0, v1 = (mn_gym.make(f"{name}-{v}", batch_size=4, deterministic=True) for v in ("v0", "v1"))
        s0, _ = v0.reset(seed=3)
        s1, _ = v1.reset(seed=3)
        action = torch.full((4, v0.action_size), 0.2)
        *_, r0, _, _, i0 = v0.step(s0, action)
        *_, r1, _, _, i1 = v1.step(s1, action)
        assert "precision" not in i0["terms"]
        precision = 1 - torch.exp(-(i1["distance"] / (2 * v1.task.success_radius)) ** 2)
        torch.testing.assert_close(i1["terms"]["precision"], precision)
        torch.testing.assert_close(r1, r0 - 0.1 * precision)
    assert mn_gym.make("PointMassReach-v1").task.weights["precision"] == 0.1
    assert mn_gym.make("PointMassReach-v0").task.weights["precision"] == 0.0


@pytest.mark.parametrize(("env_id", "task_kwargs", "message"), [
    ("ArmCurlField-v0", {"k": float("nan")}, r"k must be a number in \[-1000.0, 1000.0\]"),
    ("ArmCurlField-v0", {"k": -4.9e35}, r"k must be a number in \[-1000.0, 1000.0\]"),
    ("ArmCurlField-v0", {"catch_probability": 1.5}, r"catch_probability must be a number in \[0.0, 1.0\]"),
    ("ArmCentreOut-v0", {"radius": -0.1}, r"radius must be a number > 0"),
    ("ArmCentreOut-v0", {"n_targets": 2.5}, r"n_targets must be a number integer >= 1"),
    ("ArmCentreOut-v0", {"cue_min": 0.4, "cue_max": 0.2}, r"cue_min must be <= cue_max"),
    ("ArmPosture-v0", {"max_force": -3.0}, r"max_force must be a number >= 0"),
    ("ArmPosture-v0", {"duration": 0.0}, r"duration must be a number > 0"),
    ("ArmPosture-v0", {"duration": float("inf")}, r"duration must be a number > 0"),  # found by hypothesis
    ("ArmCurlField-v0", {"radius": float("inf")}, r"radius must be a number > 0"),
    ("ArmTrack-v0", {"amplitude": "big"}, r"amplitude must be a number >= 0"),
    ("ArmTrack-v0", {"f_min": 2.0, "f_max": 1.0}, r"f_min must be <= f_max"),
    ("ArmReach-v0", {"margin": 0.7}, r"margin must be a number in \[0.0, 0.5\)"),
])
def test_task_parameter_domains_are_checked_at_construction(env_id, task_kwargs, message):
    """A task's parameters are checked when the env is made (declared once per task: `arg_constraints`,
    `ordered`), not when the first episode is drawn or as NaN later."""
    with pytest.raises(ValueError, match=message):
        mn_gym.make(env_id, batch_size=2, **task_kwargs)


def test_settings_outside_the_accurate_range_warn_with_what_to_use():
    with pytest.warns(AccuracyWarning, match=r"curl field gain k = 200.0 N s/m.*10-20 N s/m"):
        mn_gym.make("ArmCurlField-v0", k=200.0)
    with pytest.warns(AccuracyWarning, match=r"steps 1 ms at a time.*use dt=0.0002, or n_substeps"):
        mn_gym.make_effector("compliant_arm26", dt=0.001)
    with warnings.catch_warnings():
        warnings.simplefilter("error", AccuracyWarning)
        mn_gym.make_effector("compliant_arm26", dt=0.001, n_substeps=5)  # 0.2 ms sub-steps: accurate
        mn_gym.make("ArmCurlField-v0", k=-20.0)
