"""The rsl-rl face and the rsl-ppo trainer: same physics and rewards as the functional env, rsl-rl's own runner
served unmodified, run folders with weights-only checkpoints, resume."""

from __future__ import annotations

import json

import pytest
import torch

pytest.importorskip("rsl_rl")

import mn_gym
from mn_gym.faces.common import action_to_excitation
from mn_gym.faces.rsl_rl import OBS_GROUP, RslRlVecEnv
from mn_gym.train import runs
from mn_gym.train.rsl import CHECKPOINT, rsl_config
from mn_gym.train.settings import RslPPOSettings

ID = "PointMassReach-v0"
TINY = RslPPOSettings(n_envs=16, n_steps=8, hidden_dims=[16], num_mini_batches=2, num_learning_epochs=1)


def test_same_transitions_as_the_functional_env_and_same_step_restarts():
    steps = 5
    envs = RslRlVecEnv(ID, 3, seed=4, max_episode_steps=steps)
    env = mn_gym.make(ID, batch_size=3, max_episode_steps=steps)
    state, obs = env.reset(seed=4)
    first = envs.get_observations()
    assert set(first.keys()) == {OBS_GROUP} and first[OBS_GROUP].dtype == torch.float32
    torch.testing.assert_close(first[OBS_GROUP], obs)
    gen = torch.Generator().manual_seed(0)
    for t in range(steps):
        action = torch.rand(3, envs.num_actions, generator=gen) * 2 - 1
        out, reward, dones, extras = envs.step(action)
        state, obs, ref_reward, _, truncated, _ = env.step(state, action_to_excitation(action))
        torch.testing.assert_close(reward, ref_reward)
        assert dones.dtype == torch.long and dones.shape == (3,)
        if t < steps - 1:
            torch.testing.assert_close(out[OBS_GROUP], obs)
            assert not dones.any() and extras["log"] == {}
    assert dones.all() and extras["time_outs"].all() and truncated.all()  # cut by the time limit: bootstrapped
    assert set(extras["log"]) == {"/success", "/final_distance"}
    assert (envs.episode_length_buf == 0).all()
    assert not torch.allclose(out[OBS_GROUP], obs)  # the new episodes' first observations, returned at once


def test_bad_actions_are_refused():
    envs = RslRlVecEnv(ID, 2)
    with pytest.raises(ValueError, match="shape"):
        envs.step(torch.zeros(3, envs.num_actions))
    with pytest.raises(ValueError, match="finite"):
        envs.step(torch.full((2, envs.num_actions), float("nan")))


def test_rsl_rls_own_runner_trains_on_the_face(tmp_path):
    from rsl_rl.runners import OnPolicyRunner

    envs = RslRlVecEnv(ID, 16, seed=0)
    cfg = {**rsl_config(TINY), "save_interval": 100, "check_for_nan": True, "logger": "tensorboard"}
    runner = OnPolicyRunner(envs, cfg, log_dir=None, device="cpu")
    before = [p.clone() for p in runner.alg.get_policy().parameters()]
    runner.learn(num_learning_iterations=2)
    after = list(runner.alg.get_policy().parameters())
    assert any(not torch.equal(a, b) for a, b in zip(after, before, strict=True))


def test_rsl_ppo_run_folder_eval_and_resume(tmp_path):
    out = tmp_path / "run"
    steps = 2 * TINY.n_envs * TINY.n_steps
    summary = runs.train(ID, "rsl-ppo", out, settings=TINY, steps=steps, eval_batch=8, progress=False)
    assert summary["env_steps"] == steps and summary["algo"] == "rsl-ppo"
    checkpoint = torch.load(out / CHECKPOINT, weights_only=True)  # loads without unpickling code
    assert checkpoint["env_steps"] == steps
    assert json.loads((out / "run.json").read_text())["settings"]["hidden_dims"] == [16]
    result = runs.evaluate_run(out, episodes=8, plot=False)
    assert result["mean_final_distance_m"] == pytest.approx(summary["final_eval_distance_m"], rel=1e-5)
    more = runs.train(ID, "rsl-ppo", out, settings=TINY, steps=2 * steps, eval_batch=8, progress=False, resume=True)
    assert more["env_steps"] == 2 * steps and more["evaluations"] > summary["evaluations"]


def test_a_run_whose_rewards_stop_being_finite_stops_clearly(monkeypatch):
    """rsl-rl does not check its distributions' arguments: a NaN must not train on silently (NaN actions are
    refused by the face itself, test_bad_actions_are_refused; a NaN reward stops the run at the update)."""
    from mn_gym.train.common import DivergedError
    from mn_gym.train.rsl import train_rsl_ppo

    step = RslRlVecEnv.step

    def nan_step(self, actions):
        obs, rewards, dones, extras = step(self, actions)
        return obs, rewards * float("nan"), dones, extras

    monkeypatch.setattr(RslRlVecEnv, "step", nan_step)
    with pytest.raises(DivergedError, match="training diverged at iteration 0"):
        train_rsl_ppo(ID, TINY, steps=4 * TINY.n_envs * TINY.n_steps, progress=False, tensorboard=False,
                      held_out=mn_gym.train.HeldOut.make(ID, 8))


@pytest.mark.parametrize("rnn_type", ["gru", "lstm"])
def test_recurrent_rsl_ppo_trains_evaluates_and_resumes(tmp_path, rnn_type):
    """A GRU or LSTM actor (the LSTM is the arm reaching ids' tuned one): its state carries over steps in the
    policy, and the run folder evaluates (the same held-out figure as the run's last) and resumes like an MLP
    one's."""
    from mn_gym.train.rsl import RslPolicy, _ppo

    rnn = RslPPOSettings(**{**TINY.__dict__, "rnn_type": rnn_type, "rnn_hidden_dim": 8})
    assert rsl_config(rnn)["actor"]["class_name"] == "RNNModel"
    policy = RslPolicy(_ppo(RslRlVecEnv(ID, 1), rnn, torch.device("cpu")).get_policy()).eval()
    obs = torch.randn(3, RslRlVecEnv(ID, 1).get_observations()[OBS_GROUP].shape[1])
    with torch.no_grad():
        first, hidden = policy(obs)
        again, _ = policy(obs, hidden)
        fresh, _ = policy(obs)
    states = hidden if rnn_type == "lstm" else (hidden,)  # an LSTM's is (h, c)
    assert [h.shape for h in states] == [(1, 3, 8)] * len(states)
    torch.testing.assert_close(fresh, first)  # None: an episode's start
    assert not torch.allclose(again, first)  # the state is used

    out = tmp_path / rnn_type
    steps = 2 * rnn.n_envs * rnn.n_steps
    summary = runs.train(ID, "rsl-ppo", out, settings=rnn, steps=steps, eval_batch=8, progress=False)
    result = runs.evaluate_run(out, episodes=8, plot=False)
    assert result["mean_final_distance_m"] == pytest.approx(summary["final_eval_distance_m"], rel=1e-5)
    more = runs.train(ID, "rsl-ppo", out, settings=rnn, steps=2 * steps, eval_batch=8, progress=False, resume=True)
    assert more["env_steps"] == 2 * steps


def test_a_run_recorded_before_a_setting_existed_had_its_default():
    run = {"seed": 0, "settings": {k: v for k, v in runs._jsonable(TINY.__dict__).items() if k != "rnn_type"},
           "env_kwargs": {}}
    assert runs.differences(run, 0, TINY, {}) == []
    assert runs.differences(run, 0, RslPPOSettings(**{**TINY.__dict__, "rnn_type": "gru"}), {}) == [
        "rnn_type 'none' (asked 'gru')"]
