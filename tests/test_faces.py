"""The Gymnasium, vector and stable-baselines3 faces: the same episodes as the functional env, seeding,
autoreset semantics, wrappers, smoke training and the throughput script."""

import copy
import math
import pickle
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch

import mn_gym
from mn_gym.faces.gym import MnGymEnv
from mn_gym.faces.sb3 import MnGymVecEnv
from mn_gym.faces.vector import MnGymVectorEnv

ID = "ArmReach-v0"
STEPS = 100  # ArmReach-v0: 1 s at 10 ms


def _actions(n: int, m: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (n, m)).astype(np.float32)


def _single(seed, actions, infos=None, **kwargs):
    env = gym.make(ID, **kwargs)
    obs, _ = env.reset(seed=seed)
    observations, rewards = [obs], []
    for a in actions:
        obs, r, term, trunc, info = env.step(a)
        rewards.append(r)
        if infos is not None:
            infos.append(info)
        if term or trunc:
            obs, _ = env.reset()
        observations.append(obs)
    return np.array(observations), np.array(rewards)


def _vector(seed, actions):
    envs = gym.make_vec(ID, num_envs=1)
    assert isinstance(envs.unwrapped, MnGymVectorEnv)
    obs, _ = envs.reset(seed=seed)
    observations, rewards = [obs[0]], []
    done = False
    for a in actions:
        if done:  # NEXT_STEP: this step restarts the env, reward 0
            obs, r, term, trunc, _ = envs.step(a[None])
            assert r[0] == 0 and not term[0] and not trunc[0]
            observations[-1] = obs[0]
        obs, r, term, trunc, _ = envs.step(a[None])
        done = bool(term[0] or trunc[0])
        rewards.append(r[0])
        observations.append(obs[0])
    # the last observation of an episode is followed by the reset one: keep the reset one like the others
    envs.close()
    return observations, np.array(rewards)


def _sb3(seed, actions):
    venv = MnGymVecEnv(ID, num_envs=1)
    venv.seed(seed)
    obs = venv.reset()
    observations, rewards, terminal = [obs[0]], [], []
    for a in actions:
        obs, r, done, infos = venv.step(a[None])
        rewards.append(r[0])
        observations.append(obs[0])
        if done[0]:
            terminal.append(infos[0]["terminal_observation"])
            assert infos[0]["TimeLimit.truncated"] is True
            assert isinstance(infos[0]["is_success"], bool)
    return np.array(observations), np.array(rewards), terminal


def _functional(seed, actions):
    env = mn_gym.make(ID)
    state, obs = env.reset(seed=seed)
    observations, rewards = [obs[0].numpy()], []
    with torch.no_grad():
        for a in actions:
            exc = (torch.from_numpy(a)[None].clamp(-1, 1) + 1) * 0.5
            state, obs, r, term, trunc, _ = env.step(state, exc)
            rewards.append(float(r[0]))
            if bool(trunc[0] or term[0]):
                state, obs = env.reset()
            observations.append(obs[0].numpy())
    return np.array(observations), np.array(rewards)


def test_faces_agree_across_an_episode_boundary():
    actions = _actions(STEPS + 20, 6)
    f_obs, f_rew = _functional(7, actions)
    s_obs, s_rew = _single(7, actions)
    v_obs, v_rew = _vector(7, actions)
    b_obs, b_rew, terminal = _sb3(7, actions)
    for obs, rew in ((s_obs, s_rew), (np.array(v_obs), v_rew), (b_obs, b_rew)):
        np.testing.assert_allclose(obs, f_obs, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(rew, f_rew, rtol=1e-5, atol=1e-7)
    assert len(terminal) == 1 and terminal[0].shape == (mn_gym.make(ID).obs_size,)
    assert not np.allclose(terminal[0], b_obs[STEPS])  # the terminal observation is not the restarted one


def test_compiled_single_env_matches_eager():
    """compile=True (the flat-state compiled step) gives the eager episodes, infos, state, frames and pickles."""
    actions = _actions(STEPS + 20, 6, seed=4)
    eager_infos, compiled_infos = [], []
    e_obs, e_rew = _single(3, actions, eager_infos)
    c_obs, c_rew = _single(3, actions, compiled_infos, compile=True)
    np.testing.assert_allclose(c_obs, e_obs, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c_rew, e_rew, rtol=1e-5, atol=1e-7)
    for ei, ci in zip(eager_infos, compiled_infos, strict=True):
        assert ei.keys() == ci.keys() and ei["is_success"] == ci["is_success"]
        np.testing.assert_allclose(ci["hand"], ei["hand"], rtol=1e-5, atol=1e-6)
        assert ci["reward_position"] == pytest.approx(ei["reward_position"], rel=1e-5, abs=1e-7)

    env = MnGymEnv(ID, compile=True, render_mode="rgb_array")
    env.reset(seed=2)
    for a in _actions(5, 6):
        env.step(a)
    assert isinstance(env.state, mn_gym.EnvState) and int(env.state.t[0]) == 5
    assert env.render().shape[2] == 3
    clone = pickle.loads(pickle.dumps(env))
    for a in _actions(5, 6, seed=9):
        o1, r1, *_ = env.step(a)
        o2, r2, *_ = clone.step(a)
        np.testing.assert_allclose(o1, o2, rtol=1e-6, atol=1e-7)
        assert r1 == pytest.approx(r2, rel=1e-6)
    with pytest.raises(ValueError, match="shape"):
        env.step(np.zeros(5, np.float32))


def test_compiled_step_is_cached_on_disk(tmp_path, monkeypatch):
    """A second env of the same kind loads the compiled step from the cache; deterministic envs (no noise
    input) compile and match eager too."""
    monkeypatch.setenv("MN_GYM_CACHE", str(tmp_path))
    actions = _actions(30, 6, seed=5)
    runs = []
    for compile_ in (True, True, False):
        env = MnGymEnv(ID, compile=compile_, deterministic=True)
        env.reset(seed=1)
        runs.append(np.array([env.step(a)[0] for a in actions]))
        assert len(list(tmp_path.glob("step-*.pt2"))) == 1
    np.testing.assert_array_equal(runs[0], runs[1])
    np.testing.assert_allclose(runs[0], runs[2], rtol=1e-5, atol=1e-6)


def test_seeded_determinism_and_different_seeds():
    actions = _actions(20, 6, seed=1)
    a_obs, a_rew = _single(3, actions)
    b_obs, b_rew = _single(3, actions)
    np.testing.assert_array_equal(a_obs, b_obs)
    np.testing.assert_array_equal(a_rew, b_rew)
    c_obs, _ = _single(4, actions)
    assert not np.allclose(a_obs[0, :2], c_obs[0, :2])  # another seed, another target
    env = gym.make(ID)
    goals = {tuple(env.reset(seed=s)[1]["goal"]) for s in range(5)}
    assert len(goals) == 5
    # seed=None does not reseed: the next episode differs from the seeded one
    first, _ = env.reset(seed=11)
    again, _ = env.reset()
    assert not np.allclose(first, again)
    envs = MnGymVectorEnv(ID, num_envs=8)
    o1, _ = envs.reset(seed=5)
    o2, _ = envs.reset(seed=5)
    np.testing.assert_array_equal(o1, o2)
    assert len({tuple(r) for r in o1[:, :2]}) == 8  # per-env draws


def test_vector_env_next_step_autoreset_and_per_env_truncation():
    envs = MnGymVectorEnv(ID, num_envs=3, max_episode_steps=5)
    assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.NEXT_STEP
    obs, info = envs.reset(seed=0)
    assert obs.shape == (3, envs.single_observation_space.shape[0]) and obs.dtype == np.float32
    assert envs.observation_space.shape == obs.shape and envs.action_space.shape == (3, 6)
    a = np.zeros((3, 6), np.float32)
    for _ in range(2):
        envs.step(a)
    # restart env 0 by hand: it truncates later than the others
    envs.core.state = envs.core.env.reset_where(envs.core.state, torch.tensor([True, False, False]))
    for _k in range(3):
        obs, r, term, trunc, info = envs.step(a)
    assert trunc.tolist() == [False, True, True] and not term.any()
    assert info["_is_success"].all() and info["reward_position"].shape == (3,)
    obs, r, term, trunc, info = envs.step(np.full((3, 6), 0.7, np.float32))  # restart step of envs 1 and 2
    assert r[1] == 0 and r[2] == 0 and r[0] != 0
    assert not trunc.any()
    assert info["_reward_position"].tolist() == [True, False, False]
    assert info["_distance"].all()
    np.testing.assert_allclose(obs[1:, :2], info["goal"][1:], atol=0.02)  # fresh targets observed (noise 1e-3)
    obs, r, term, trunc, info = envs.step(a)
    assert trunc.tolist() == [True, False, False]
    envs.close()
    envs.close()


def test_vector_env_torch_outputs_and_gymnasium_wrappers():
    envs = MnGymVectorEnv("PointMassReach-v0", num_envs=4, as_torch=True)
    obs, info = envs.reset(seed=0)
    assert isinstance(obs, torch.Tensor) and obs.dtype == torch.float32
    obs, r, term, _, info = envs.step(torch.zeros(4, 4))
    assert isinstance(r, torch.Tensor) and term.dtype == torch.bool and isinstance(info["distance"], torch.Tensor)
    wrapped = gym.wrappers.vector.NormalizeObservation(
        gym.wrappers.vector.RecordEpisodeStatistics(gym.make_vec("PointMassReach-v0", num_envs=4,
                                                                 max_episode_steps=10)))
    wrapped.reset(seed=0)
    episodes = 0
    for _ in range(23):
        obs, r, term, _trunc, info = wrapped.step(wrapped.action_space.sample())
        assert obs.dtype == np.float32
        if "episode" in info:
            episodes += int(info["_episode"].sum())
            assert np.all(info["episode"]["l"][info["_episode"]] == 10)
    assert episodes == 8
    wrapped.close()


def test_make_vec_passes_variants_and_max_episode_steps():
    envs = gym.make_vec("ArmReach-v0", num_envs=2, muscle="thelen", integrator="rk4",
                        episode_duration=0.5)
    core = envs.unwrapped.core
    assert core.env.effector.integrator == "rk4" and core.env.max_steps == 50
    envs = gym.make_vec("ArmReach-v0", num_envs=2, dt=0.005)  # registered limit 100 < its 200 steps
    assert envs.unwrapped.max_episode_steps == 100
    envs = mn_gym.registry.make_vec("ArmReach-v0", num_envs=2, dt=0.005)
    assert envs.unwrapped.max_episode_steps == 200
    env = mn_gym.registry.make("ArmReach-v0", dt=0.005)
    assert env.spec.max_episode_steps == 200 and env.unwrapped.max_episode_steps == 200
    with pytest.raises(TypeError, match=r"valid: .*muscle"):
        gym.make_vec("ArmReach-v0", num_envs=2, nonsense=1)


def test_single_env_pickle_and_deepcopy_continue_the_episode():
    env = MnGymEnv(ID)
    env.reset(seed=2)
    for a in _actions(5, 6):
        env.step(a)
    actions = _actions(5, 6, seed=9)
    for clone in (copy.deepcopy(env), pickle.loads(pickle.dumps(env))):
        for a in actions:
            o1, r1, *_ = env.step(a)
            o2, r2, *_ = clone.step(a)
            np.testing.assert_array_equal(o1, o2)
            assert r1 == r2
        env.reset(seed=2)
        for a in _actions(5, 6):
            env.step(a)


def test_async_vector_env_of_single_envs():
    envs = gym.make_vec("PointMassReach-v0", num_envs=2, vectorization_mode="async")
    obs, _ = envs.reset(seed=0)
    obs, _r, _term, _trunc, _info = envs.step(envs.action_space.sample())
    assert obs.shape == (2, envs.single_observation_space.shape[0])
    envs.close()


def test_sb3_vecenv_semantics_and_wrappers():
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize

    venv = MnGymVecEnv("PointMassReach-v0", num_envs=4, max_episode_steps=6)
    assert venv.seed(10) == [10, 11, 12, 13]
    obs = venv.reset()
    assert obs.shape == (4, venv.observation_space.shape[0]) and len(venv.reset_infos) == 4
    assert venv._seeds == [None] * 4
    wrapped = VecNormalize(VecMonitor(venv))
    wrapped.reset()
    ends = 0
    for _ in range(13):
        obs, r, done, infos = wrapped.step(np.zeros((4, 4), np.float32))
        assert r.dtype == np.float32 or r.dtype == np.float64
        for i in np.flatnonzero(done):
            ends += 1
            assert {"terminal_observation", "TimeLimit.truncated", "is_success", "episode"} <= set(infos[i])
            assert infos[i]["episode"]["l"] == 6
    assert ends == 8
    assert venv.get_attr("render_mode") == [None] * 4 and venv.env_is_wrapped(gym.Wrapper) == [False] * 4
    wrapped.close()


def test_sb3_smoke_training_logs_success_rate(tmp_path):
    from stable_baselines3 import PPO, SAC
    from stable_baselines3.common.logger import configure
    from stable_baselines3.common.vec_env import VecMonitor

    torch.manual_seed(0)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small nets: one thread is faster, and lighter on a shared machine
    try:
        _train_smoke(PPO, SAC, configure, VecMonitor, tmp_path)
    finally:
        torch.set_num_threads(threads)


def _train_smoke(PPO, SAC, configure, VecMonitor, tmp_path):
    for algo, kwargs in ((PPO, {"n_steps": 128, "batch_size": 256, "n_epochs": 2}),
                         (SAC, {"learning_starts": 200, "batch_size": 64, "train_freq": 8, "gradient_steps": 1})):
        venv = VecMonitor(MnGymVecEnv("PointMassReach-v0", num_envs=8, max_episode_steps=50))
        model = algo("MlpPolicy", venv, seed=0, policy_kwargs={"net_arch": [32, 32]}, **kwargs)
        logger = configure(str(tmp_path / algo.__name__), ["csv"])
        model.set_logger(logger)
        with warnings.catch_warnings():
            warnings.simplefilter("error", UserWarning)
            model.learn(2048)
        assert len(model.ep_success_buffer) > 0  # is_success arrived at episode ends
        assert model.logger.name_to_value is not None
        logger.close()
        text = (tmp_path / algo.__name__ / "progress.csv").read_text()
        assert "rollout/success_rate" in text
        venv.close()


def test_recurrent_ppo_smoke():
    sb3_contrib = pytest.importorskip("sb3_contrib")
    venv = MnGymVecEnv("PointMassReach-v0", num_envs=4, max_episode_steps=20)
    model = sb3_contrib.RecurrentPPO("MlpLstmPolicy", venv, n_steps=16, batch_size=32, n_epochs=1, seed=0,
                                     policy_kwargs={"lstm_hidden_size": 16, "net_arch": [16]})
    model.learn(64)
    assert model.num_timesteps >= 64
    venv.close()


def test_bench_faces_quick(tmp_path):
    from mn_gym.bench import faces as bench

    results = bench.main(["--quick", "--no-motornet", "--json", str(tmp_path / "b.json")])
    assert results["single"]["mn_gym"] > 0 and math.isfinite(results["single"]["mn_gym"])
    assert all(r["steps_per_s"] > 0 for r in results["vector"])


def test_faces_take_a_functional_env():
    """Every face also takes a built functional env: the same episodes as from the id, clear errors otherwise."""
    actions = _actions(30, 6)
    base = gym.make(ID).unwrapped
    single = MnGymEnv(mn_gym.make(ID))
    vec = MnGymVectorEnv(mn_gym.make(ID, batch_size=1))
    sb3 = MnGymVecEnv(mn_gym.make(ID, batch_size=1))
    sb3.seed(4)
    first = [base.reset(seed=4)[0], single.reset(seed=4)[0], vec.reset(seed=4)[0][0], sb3.reset()[0]]
    for obs in first[1:]:
        np.testing.assert_array_equal(obs, first[0])
    for a in actions:
        ref = base.step(a)[0]
        np.testing.assert_array_equal(single.step(a)[0], ref)
        np.testing.assert_array_equal(vec.step(a[None])[0][0], ref)
        np.testing.assert_array_equal(sb3.step(a[None])[0][0], ref)
    assert MnGymVectorEnv(mn_gym.make(ID, batch_size=5)).num_envs == 5
    assert MnGymEnv(mn_gym.make(ID), max_episode_steps=7).max_episode_steps == 7
    copy_ = pickle.loads(pickle.dumps(single))
    a = actions[0]
    np.testing.assert_array_equal(copy_.step(a)[0], single.step(a)[0])
    with pytest.raises(TypeError, match="apply to env ids only"):
        MnGymEnv(mn_gym.make(ID), muscle="thelen")
    with pytest.raises(ValueError, match="batch 1"):
        MnGymEnv(mn_gym.make(ID, batch_size=2))
    with pytest.raises(TypeError, match="float32"):
        MnGymVectorEnv(mn_gym.make(ID, batch_size=2, dtype=torch.float64))
    with pytest.raises(TypeError, match="env id or a functional"):
        MnGymVecEnv(3)
