"""Property-based fuzzing (hypothesis) of the functional env, its settings and the Gymnasium face: whatever goes
in, either a clear error at the door (ValueError / TypeError naming the problem) or finite numbers out, joints
inside their limits. Never NaN out, never an internal error."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mn_gym

IDS = mn_gym.list_ids()
FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
ANY_FLOAT = st.floats(allow_nan=True, allow_infinity=True, width=32)
NUMBERS = st.one_of(ANY_FLOAT, st.integers(-10**6, 10**6), st.just(0.0), st.booleans(), st.text(max_size=3),
                    st.none())


def _finite_rollout(env: mn_gym.Env, actions: torch.Tensor) -> None:
    """Step `env` through `actions` (T, B, M): every output finite, every joint inside its limits."""
    state, obs = env.reset(seed=0)
    sk = env.effector.skeleton
    for action in actions:
        state, obs, reward, *_ = env.step(state, action)
        assert torch.isfinite(obs).all() and torch.isfinite(reward).all()
        q = state.effector.q
        assert ((q >= sk.pos_lower - 1e-6) & (q <= sk.pos_upper + 1e-6)).all()


@FAST
@given(env_id=st.sampled_from(IDS), batch=st.integers(1, 3), data=st.data())
def test_any_action_is_refused_clearly_or_stepped_finitely(env_id, batch, data):
    env = mn_gym.make(env_id, batch_size=batch, seed=0)
    if env.dt < 0.005:  # the 1 ms compliant arm: a few steps suffice
        env = env.replace(max_episode_steps=5)
    values = data.draw(st.lists(ANY_FLOAT, min_size=batch * env.action_size, max_size=batch * env.action_size))
    action = torch.tensor(values, dtype=torch.float32).reshape(batch, env.action_size)
    actions = action.expand(3, -1, -1)
    if not torch.isfinite(action).all():
        with pytest.raises(ValueError, match="action contains NaN or inf"):
            _finite_rollout(env, actions)
    else:
        _finite_rollout(env, actions)


@FAST
@given(env_id=st.sampled_from(IDS), shape=st.lists(st.integers(0, 7), min_size=0, max_size=3))
def test_actions_of_the_wrong_shape_name_the_shape(env_id, shape):
    env = mn_gym.make(env_id, batch_size=2, seed=0)
    state, _ = env.reset()
    if tuple(shape) == (2, env.action_size):
        return
    with pytest.raises(ValueError, match=r"action must have shape \(2, \d+\)"):
        env.step(state, torch.zeros(shape))


SENSING = ("proprioception_delay", "vision_delay", "action_noise", "proprioception_noise", "vision_noise",
           "observation_noise", "action_frame_stacking", "episode_duration", "dt")


@FAST
@given(env_id=st.sampled_from(IDS), key=st.sampled_from(SENSING), value=NUMBERS)
def test_env_settings_are_refused_clearly_or_work(env_id, key, value):
    try:
        env = mn_gym.make(env_id, batch_size=2, seed=0, **{key: value})
    except (ValueError, TypeError) as exc:
        assert key in str(exc) or "dt" in str(exc) or "delay" in str(exc) or "episode" in str(exc), str(exc)
        return
    if env.max_steps * env.dt > 2.0 or env.dt < 0.005:
        env = env.replace(max_episode_steps=min(env.max_steps, 5))
    _finite_rollout(env, torch.full((min(env.max_steps, 5), 2, env.action_size), 0.2))


TASK_PARAMS = {"ArmCurlField-v0": ("k", "catch_probability", "radius", "n_targets", "cue_min", "cue_max"),
               "ArmPosture-v0": ("margin", "max_force", "onset_min", "onset_max", "duration"),
               "ArmTrack-v0": ("margin", "amplitude", "n_components", "f_min", "f_max"),
               "ArmReach-v0": ("margin", "success_radius")}


@FAST
@given(pair=st.sampled_from([(env_id, key) for env_id, keys in TASK_PARAMS.items() for key in keys]),
       value=st.one_of(NUMBERS, st.floats(-1e3, 1e3)))
def test_task_parameters_are_refused_clearly_or_work(pair, value):
    env_id, key = pair
    try:
        env = mn_gym.make(env_id, batch_size=2, seed=0, **{key: value})
    except (ValueError, TypeError) as exc:
        assert key in str(exc), str(exc)
        return
    _finite_rollout(env, torch.full((5, 2, env.action_size), 0.2))


MUSCLE_PARAMS = ("max_isometric_force", "tendon_slack_length", "optimal_fibre_length", "max_velocity",
                 "min_activation", "tau_activation", "tau_deactivation")


@FAST
@given(muscle=st.sampled_from(["kistemaker", "thelen", "mujoco"]), key=st.sampled_from(MUSCLE_PARAMS),
       value=st.one_of(ANY_FLOAT, st.floats(-1.0, 2.0)))
def test_muscle_parameters_are_refused_clearly_or_give_finite_forces(muscle, key, value):
    try:
        eff = mn_gym.make_effector("arm26", muscle=muscle, muscle_params={key: value})
    except (ValueError, TypeError) as exc:
        assert key in str(exc), str(exc)
        return
    state = eff.initial_state(torch.tensor([[0.8, 1.2]]))
    for _ in range(5):
        state = eff.step(state, torch.full((1, 6), 0.3))
    assert all(torch.isfinite(t).all() for t in state if t is not None)


@settings(max_examples=25, deadline=None)
@given(env_id=st.sampled_from(["ArmReach-v0", "PointMassReach-v0", "ArmCurlField-v0"]),
       actions=st.lists(st.lists(st.floats(-1e6, 1e6, width=32), min_size=6, max_size=6), min_size=1, max_size=4))
def test_gymnasium_face_keeps_its_spaces_for_any_finite_action(env_id, actions):
    env = gym.make(env_id)
    obs, _ = env.reset(seed=0)
    n = env.action_space.shape[0]
    for a in actions:
        obs, reward, *_ = env.step(np.asarray(a[:n] + [0.0] * (n - len(a[:n])), np.float32))
        assert env.observation_space.contains(obs) and math.isfinite(reward)
    env.close()
