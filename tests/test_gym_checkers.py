"""Gymnasium registration, both env checkers on every id (warnings are errors), rendering, video, bad input."""

import subprocess
import sys
import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.error import ResetNeeded
from gymnasium.utils.env_checker import check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import mn_gym
from mn_gym.core import AccuracyWarning
from mn_gym.faces.gym import MnGymEnv
from mn_gym.faces.sb3 import MnGymVecEnv
from mn_gym.faces.vector import MnGymVectorEnv
from mn_gym.registry import ENTRY_POINT, VECTOR_ENTRY_POINT, gym_ids

INACCURATE_IDS = {"CompliantArmReach-v0"}


@pytest.mark.parametrize("env_id", mn_gym.list_ids())
def test_checkers_pass_without_warnings(env_id):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # Gymnasium flags any id with a newer version (ArmReach-v0 -> v1): v0 stays supported, as it is
        warnings.filterwarnings("ignore", ".*The environment .* is out of date", DeprecationWarning)
        if env_id in INACCURATE_IDS:  # they say so on purpose (test_inaccurate_ids_say_so); the checkers are silent
            warnings.filterwarnings("ignore", category=AccuracyWarning)
        env = gym.make(env_id)
        check_env(env.unwrapped, skip_render_check=False)
        sb3_check_env(env.unwrapped, warn=True)
        env.close()


def test_inaccurate_ids_say_so():
    """CompliantArmReach-v0 keeps its catalogued 1 ms steps (ids are stable), and warns that they are too long for
    its stiff tendons; every other id is built without an accuracy warning."""
    for env_id in mn_gym.list_ids():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            mn_gym.make(env_id)
        said = [w for w in caught if issubclass(w.category, AccuracyWarning)]
        assert bool(said) == (env_id in INACCURATE_IDS), env_id
        assert all("dt=0.0002" in str(w.message) for w in said)


def test_registration_of_every_id():
    assert gym_ids() == mn_gym.list_ids() == mn_gym.gym_ids()
    for env_id in gym_ids():
        spec = gym.spec(env_id)
        assert spec.entry_point == ENTRY_POINT and spec.vector_entry_point == VECTOR_ENTRY_POINT
        assert spec.max_episode_steps == mn_gym.make(env_id).max_steps


def test_make_without_prior_import_and_episode_length():
    code = ("import gymnasium as gym, numpy as np\n"
            "env = gym.make('mn_gym:PointMassReach-v0', mass=2.0, integrator='rk4')\n"
            "env.reset(seed=0)\n"
            "n = 0\n"
            "while True:\n"
            "    n += 1\n"
            "    _, r, term, trunc, info = env.step(np.zeros(4, np.float32))\n"
            "    if term or trunc: break\n"
            "assert n == 100 and env.unwrapped.functional.effector.integrator == 'rk4', n\n"
            "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr


def test_step_types_and_info():
    env = gym.make("ArmCentreOut-v0")
    obs, info = env.reset(seed=0)
    assert obs.dtype == np.float32 and obs.shape == env.observation_space.shape
    assert set(info) == {"distance", "goal", "hand"}
    obs2, r, term, trunc, info = env.step(env.action_space.sample())
    assert obs2.dtype == np.float32 and obs2 is not obs
    assert type(r) is float and type(term) is bool and type(trunc) is bool
    terms = {k: v for k, v in info.items() if k.startswith("reward_")}
    assert {"reward_position", "reward_effort", "reward_velocity"} <= set(terms)
    assert all(type(v) is float for v in terms.values())
    assert abs(sum(terms.values()) - r) < 1e-6
    assert type(info["distance"]) is float and type(info["is_success"]) is bool


def test_bad_input():
    env = MnGymEnv("ArmReach-v0")
    with pytest.raises(ResetNeeded):
        env.step(np.zeros(6, np.float32))
    with pytest.raises(ResetNeeded):
        gym.make("ArmReach-v0").step(np.zeros(6, np.float32))  # OrderEnforcing too
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros(5, np.float32))
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        env.step(np.zeros((1, 6), np.float32))
    with pytest.raises(TypeError, match="real-valued"):
        env.step(np.array(["a"] * 6))
    with pytest.raises(TypeError, match="real-valued"):
        env.step(np.zeros(6, bool))
    with pytest.raises(ValueError, match="finite"):
        env.step(np.full(6, np.nan, np.float32))
    env.step(np.zeros(6, np.float64))  # other real dtypes are cast to float32
    env.step(np.full(6, 5.0, np.float32))  # out of range: clipped to [-1, 1]
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['musle'\]; valid: .*'muscle'"):
        gym.make("ArmReach-v0", musle="thelen")
    with pytest.raises(TypeError, match="face arguments"):
        MnGymEnv("ArmReach-v0", bogus=1)
    with pytest.raises(ValueError, match="unknown reset option"):
        env.reset(options={"nope": 1})
    env.close()
    env.close()  # twice is fine
    with pytest.raises(RuntimeError, match="closed"):
        env.step(np.zeros(6, np.float32))

    envs = MnGymVectorEnv("ArmReach-v0", num_envs=2)
    with pytest.raises(ResetNeeded):
        envs.step(np.zeros((2, 6), np.float32))
    envs.reset(seed=0)
    with pytest.raises(ValueError, match=r"shape \(2, 6\)"):
        envs.step(np.zeros(6, np.float32))
    with pytest.raises(ValueError, match="finite"):
        envs.step(np.full((2, 6), np.inf, np.float32))
    with pytest.raises(TypeError, match="real-valued"):
        envs.step(np.zeros((2, 6), complex))
    envs.close()
    envs.close()

    venv = MnGymVecEnv("ArmReach-v0", num_envs=2)
    with pytest.raises(ResetNeeded):
        venv.step(np.zeros((2, 6), np.float32))
    venv.reset()
    with pytest.raises(ValueError, match="finite"):
        venv.step(np.full((2, 6), np.nan, np.float32))
    with pytest.raises(TypeError, match="valid"):
        MnGymVecEnv("ArmReach-v0", num_envs=2, foo=3)
    venv.close()
    venv.close()


@pytest.mark.parametrize("env_id", ["PointMassReach-v0", "ArmReach-v0", "CompliantArmReach-v0"])
def test_rgb_array_frames(env_id):
    env = gym.make(env_id, render_mode="rgb_array", render_width=160)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    assert frame.dtype == np.uint8 and frame.ndim == 3 and frame.shape[1:] == (160, 3)
    assert frame.std() > 0 and frame is not env.render()
    env.close()
    envs = gym.make_vec(env_id, num_envs=2, render_mode="rgb_array", render_width=160)
    envs.reset(seed=0)
    frames = envs.render()
    assert len(frames) == 2 and frames[0].shape == frame.shape
    envs.close()


def test_human_mode_headless():
    env = gym.make("ArmReach-v0", render_mode="human")
    env.reset(seed=0)
    env.step(env.action_space.sample())
    assert env.render() is None
    env.close()
    env.close()


def test_record_video(tmp_path):
    pytest.importorskip("moviepy")
    env = gym.make("PointMassReach-v0", render_mode="rgb_array", render_width=96, max_episode_steps=12)
    env = gym.wrappers.RecordVideo(env, str(tmp_path / "videos"), episode_trigger=lambda e: True, name_prefix="pm")
    env.reset(seed=0)
    done = False
    while not done:
        _, _, term, trunc, _ = env.step(env.action_space.sample())
        done = term or trunc
    env.close()
    videos = list((tmp_path / "videos").glob("pm*.mp4"))
    assert videos and videos[0].stat().st_size > 0
