"""MnGymVectorEnv keeps Gymnasium 1.x's VectorEnv contract: the three autoreset modes (against SyncVectorEnv
over MnGymEnv), reset masks, the same episodes in every mode, call / get_attr / set_attr, and clear errors."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import mn_gym
from mn_gym.faces.vector import MnGymVectorEnv

ID = "PointMassReach-v0"
T = 5  # max_episode_steps: episodes end at steps 5, 10, ...
MODES = list(AutoresetMode)


def _actions(steps: int, n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, (steps, n, 4)).astype(np.float32)


def _run(envs, mode: AutoresetMode, actions: np.ndarray, seed: int = 3) -> list[tuple]:
    """(obs, reward, terminated, truncated, info) of each step call; DISABLED resets ended envs by mask."""
    obs, _ = envs.reset(seed=seed)
    out = [(obs, None, None, None, None)]
    for a in actions:
        step = envs.step(a)
        out.append(step)
        done = step[2] | step[3]
        if mode == AutoresetMode.DISABLED and done.any():
            out.append((envs.reset(options={"reset_mask": done})[0], None, None, None, None))
    return out


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_matches_sync_vector_env_of_single_envs(mode):
    """One env: the same observations, rewards, flags and info keys / masks as Gymnasium's SyncVectorEnv over
    MnGymEnv in that mode, across two episode ends (SAME_STEP: final_obs / final_info too)."""
    actions = _actions(2 * T + 2, 1)
    ours = _run(MnGymVectorEnv(ID, 1, max_episode_steps=T, autoreset_mode=mode.value), mode, actions)
    sync = gym.make_vec(ID, 1, vectorization_mode="sync", vector_kwargs={"autoreset_mode": mode},
                        max_episode_steps=T)
    assert isinstance(sync, SyncVectorEnv)
    theirs = _run(sync, mode, actions)
    assert len(ours) == len(theirs)
    for (o1, r1, te1, tr1, i1), (o2, r2, te2, tr2, i2) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o1, o2, rtol=1e-5, atol=1e-6)
        if r1 is None:
            continue
        np.testing.assert_allclose(r1, r2, rtol=1e-5, atol=1e-7)
        assert te1.tolist() == te2.tolist() and tr1.tolist() == tr2.tolist()
        assert set(i1) == set(i2)
        for k in (k for k in i2 if k.startswith("_")):
            assert i1[k].tolist() == i2[k].tolist(), k
        if "final_obs" in i2:
            assert i1["final_obs"].dtype == object and i1["final_obs"].shape == (1,)
            np.testing.assert_allclose(i1["final_obs"][0], i2["final_obs"][0], rtol=1e-5, atol=1e-6)
            assert set(i1["final_info"]) == set(i2["final_info"])
            np.testing.assert_allclose(i1["final_info"]["distance"], i2["final_info"]["distance"], rtol=1e-5)
    dones = [bool(s[3][0]) for s in ours if s[3] is not None]
    assert sum(dones) == 2


def test_metadata_and_make_vec_take_the_mode():
    assert MnGymVectorEnv.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP  # the class default stays
    for mode in MODES:
        for given in (mode, mode.value):
            envs = MnGymVectorEnv(ID, 2, autoreset_mode=given)
            assert envs.metadata["autoreset_mode"] is mode and envs.autoreset_mode is mode
    assert MnGymVectorEnv(ID, 2).metadata["autoreset_mode"] is AutoresetMode.NEXT_STEP
    envs = gym.make_vec(ID, num_envs=2, autoreset_mode="SameStep")
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert gym.make_vec(envs.spec).metadata["autoreset_mode"] is AutoresetMode.SAME_STEP  # the spec remakes it
    # Gymnasium refuses vector_kwargs for a vector entry point; mn_gym's make_vec passes them on
    envs = mn_gym.registry.make_vec(ID, 2, vector_kwargs={"autoreset_mode": AutoresetMode.DISABLED})
    assert isinstance(envs, MnGymVectorEnv) and envs.metadata["autoreset_mode"] is AutoresetMode.DISABLED
    envs = mn_gym.registry.make_vec(ID, 2, vectorization_mode="sync", vector_kwargs={"autoreset_mode": "SameStep"})
    assert isinstance(envs, SyncVectorEnv) and envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP


def test_same_step_final_obs_and_info():
    envs = MnGymVectorEnv(ID, 3, max_episode_steps=T, autoreset_mode="SameStep")
    envs.reset(seed=0)
    a = np.zeros((3, 4), np.float32)
    envs.step(a)
    obs, _ = envs.reset(options={"reset_mask": np.array([True, False, False])})  # env 0 ends a step later
    for _ in range(T - 2):
        obs, *_, info = envs.step(a)
        assert "final_obs" not in info and "final_info" not in info
    before = obs
    obs, r, _, trunc, info = envs.step(a)
    assert trunc.tolist() == [False, True, True] and (r != 0).all()
    assert info["_final_obs"].tolist() == info["_final_info"].tolist() == [False, True, True]
    final = info["final_obs"]
    assert final.dtype == object and final[0] is None and final[1].shape == (envs.single_observation_space.shape[0],)
    assert not np.allclose(final[1], obs[1])  # the returned observation is the new episode's first
    assert envs.core.state.t.tolist() == [T - 1, 0, 0]  # env 0 kept stepping
    assert info["final_info"]["_distance"].tolist() == [False, True, True]
    assert info["final_info"]["distance"][0] == 0 and info["final_info"]["distance"][1] > 0
    assert info["_reward_position"].tolist() == [True, False, False]  # restarted envs: reset info only
    assert info["_distance"].all()
    np.testing.assert_allclose(obs[1:, :2], info["goal"][1:], atol=0.02)  # fresh targets observed
    assert not np.allclose(before[1:], obs[1:])
    torch_envs = MnGymVectorEnv(ID, 2, max_episode_steps=1, autoreset_mode="SameStep", as_torch=True)
    torch_envs.reset(seed=0)
    obs, *_, info = torch_envs.step(torch.zeros(2, 4))
    assert isinstance(info["final_obs"], torch.Tensor) and info["final_obs"].shape == obs.shape
    assert info["_final_obs"].dtype == torch.bool and isinstance(info["final_info"]["distance"], torch.Tensor)


def test_disabled_mode_and_reset_mask():
    envs = MnGymVectorEnv(ID, 3, max_episode_steps=T, autoreset_mode=AutoresetMode.DISABLED)
    envs.reset(seed=1)
    a = np.zeros((3, 4), np.float32)
    for _ in range(T):
        obs, _, _, trunc, _ = envs.step(a)
    assert trunc.all()
    with pytest.raises(ResetNeeded, match=r"envs \[0, 1, 2\] ended .*reset_mask"):
        envs.step(a)
    options = {"reset_mask": np.array([True, False, False])}
    new, info = envs.reset(options=options)
    assert "reset_mask" in options  # the caller's options are left as given
    np.testing.assert_array_equal(new[1:], obs[1:])  # the other envs' observations, unchanged
    assert not np.allclose(new[0], obs[0]) and info["_distance"].tolist() == [True, False, False]
    assert envs.core.state.t.tolist() == [0, T, T]
    with pytest.raises(ResetNeeded, match=r"envs \[1, 2\] ended"):
        envs.step(a)
    envs.reset(options={"reset_mask": torch.tensor([False, True, True])})
    envs.step(a)
    assert envs.core.state.t.tolist() == [1, 1, 1]
    # a full mask with a seed is a seeded full reset
    full, _ = envs.reset(seed=4, options={"reset_mask": np.ones(3, bool)})
    np.testing.assert_array_equal(full, envs.reset(seed=4)[0])


def _episodes(mode: AutoresetMode, actions: np.ndarray, restart_env0_at: int | None = None) -> list[list[dict]]:
    """Each env's episodes that took a step, as applied: {"obs": [first, ...], "reward": [...]}; `actions` are the
    applied ones (NEXT_STEP's whole-batch restart step takes none); env 0 restarts by mask before step
    `restart_env0_at`."""
    envs = MnGymVectorEnv(ID, 3, max_episode_steps=T, autoreset_mode=mode)
    obs, _ = envs.reset(seed=7)
    episodes = [[{"obs": [obs[i]], "reward": []}] for i in range(3)]
    ended = np.zeros(3, bool)

    def start(lanes, obs):
        for i in lanes:
            episodes[i].append({"obs": [obs[i]], "reward": []})

    for k, a in enumerate(actions):
        if k == restart_env0_at:
            start([0], envs.reset(options={"reset_mask": np.array([True, False, False])})[0])
        if mode == AutoresetMode.DISABLED and ended.any():
            start(np.flatnonzero(ended), envs.reset(options={"reset_mask": ended})[0])
            ended[:] = False
        if mode == AutoresetMode.NEXT_STEP and ended.all():  # the whole-batch restart step: no action applied
            start(range(3), envs.step(a)[0])
            ended[:] = False
        obs, r, term, trunc, info = envs.step(a)
        final = info.get("_final_obs", np.zeros(3, bool))
        for i in range(3):
            if ended[i]:  # NEXT_STEP: this step restarted env i
                start([i], obs)
                continue
            episodes[i][-1]["obs"].append(info["final_obs"][i] if final[i] else obs[i])
            episodes[i][-1]["reward"].append(r[i])
            if final[i]:
                start([i], obs)
        ended = (term | trunc) if mode != AutoresetMode.SAME_STEP else ended
    return [[e for e in env if e["reward"]] for env in episodes]  # episodes that took a step


def _same(a: dict, b: dict) -> None:
    np.testing.assert_array_equal(np.array(a["obs"]), np.array(b["obs"]))
    np.testing.assert_array_equal(np.array(a["reward"]), np.array(b["reward"]))


def test_the_same_episodes_in_every_mode():
    """One seed and the applied actions give the same episodes in every mode: restarts draw from the generator
    at the same point (after the ended step, before the next)."""
    actions = _actions(2 * T + 2, 3, seed=5)
    runs = {mode: _episodes(mode, actions) for mode in MODES}
    for mode in MODES:
        assert [len(e) for e in runs[mode]] == [3, 3, 3]
        for env in range(3):
            for ep_a, ep_b in zip(runs[mode][env], runs[AutoresetMode.SAME_STEP][env], strict=True):
                _same(ep_a, ep_b)
    # envs out of step (env 0 restarted by mask): SAME_STEP and DISABLED alike throughout; NEXT_STEP spends a step
    # on its restarts, yet env 0 runs through its neighbours' restart unchanged and their new episodes start alike
    desync = {mode: _episodes(mode, actions[:T + 2], restart_env0_at=2) for mode in MODES}
    same, nxt = desync[AutoresetMode.SAME_STEP], desync[AutoresetMode.NEXT_STEP]
    for env in range(3):
        for ep_a, ep_b in zip(desync[AutoresetMode.DISABLED][env], same[env], strict=True):
            _same(ep_a, ep_b)
        _same(nxt[env][0], same[env][0])
    _same(nxt[0][1], same[0][1])
    assert len(nxt[0][1]["reward"]) == T  # env 0's second episode spans the others' restart
    for env in (1, 2):
        np.testing.assert_array_equal(nxt[env][1]["obs"][0], same[env][1]["obs"][0])


def test_call_get_attr_set_attr_and_render():
    envs = MnGymVectorEnv(ID, 3)
    envs.reset(seed=0)
    assert envs.call("render") == (None, None, None) and envs.render() is None
    assert envs.get_attr("render_mode") == (None,) * 3
    assert envs.get_attr("observation_space") == (envs.single_observation_space,) * 3  # a sub-env's space
    assert envs.get_attr("dt") == (envs.functional.dt,) * 3  # the functional env's
    assert envs.call("max_episode_steps") == (100,) * 3
    slices = envs.call("observation_slices")
    assert len(slices) == 3 and slices[0] == envs.functional.observation_slices()
    with pytest.raises(AttributeError, match=r"'bogus'.*valid names include .*'render_mode'"):
        envs.get_attr("bogus")
    with pytest.raises(AttributeError, match="'bogus'"):
        envs.call("bogus")
    envs.set_attr("render_mode", "rgb_array")
    envs.set_attr("render_width", [64] * 3)
    frames = envs.call("render")
    assert len(frames) == 3 and frames[0].dtype == np.uint8 and frames[0].shape[1:] == (64, 3)
    assert envs.render()[0].shape == frames[0].shape
    with pytest.raises(ValueError, match="cannot differ per env"):
        envs.set_attr("render_width", [64, 96, 64])
    with pytest.raises(ValueError, match="length equal to the number of environments"):
        envs.set_attr("render_width", [64, 64])
    with pytest.raises(ValueError, match="render_mode must be None or one of"):
        envs.set_attr("render_mode", "human")
    with pytest.raises(AttributeError, match=r"'dt' cannot be set.*immutable.*make_vec"):
        envs.set_attr("dt", 0.005)
    with pytest.raises(AttributeError, match="'num_envs' cannot be set"):
        envs.set_attr("num_envs", 4)
    with pytest.raises(AttributeError, match=r"'bogus'.*valid names include"):
        envs.set_attr("bogus", 1)
    envs.close()


def test_bad_input():
    with pytest.raises(ValueError, match=r"autoreset_mode must be .*'NextStep', 'SameStep', 'Disabled'.*'Sometimes'"):
        MnGymVectorEnv(ID, 2, autoreset_mode="Sometimes")
    with pytest.raises(ValueError, match="autoreset_mode must be"):
        gym.make_vec(ID, 2, autoreset_mode="next_step")
    envs = MnGymVectorEnv(ID, 2, autoreset_mode="Disabled")
    with pytest.raises(ResetNeeded, match=r"call envs\.reset"):
        envs.reset(options={"reset_mask": np.array([True, False])})
    envs.reset(seed=0)
    for mask, error, match in ((np.array([True]), ValueError, r"shape `\(2,\)`"),
                               (np.array([1, 0]), TypeError, "bool dtype"),
                               (torch.tensor([1, 0]), TypeError, "bool dtype"),
                               ([True, False], TypeError, "numpy array or torch tensor"),
                               (np.zeros(2, bool), ValueError, "at least one True")):
        with pytest.raises(error, match=match):
            envs.reset(options={"reset_mask": mask})
    with pytest.raises(ValueError, match=r"\['joint_state'\] apply to whole-batch resets only"):
        envs.reset(options={"reset_mask": np.array([True, False]), "joint_state": np.zeros((2, 2))})
    with pytest.raises(TypeError, match="unexpected keyword argument 'frameskip'"):
        gym.make_vec(ID, 2, frameskip=1)
