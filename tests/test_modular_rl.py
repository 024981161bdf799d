"""ModularGRU memories in the RL trainers: rsl-rl's PPO (`RslPPOSettings(modular=...)`, `ModularRNNModel`) and
sb3-contrib's RecurrentPPO (`RecurrentPPOSettings(policy_kwargs={'modular': ...})`, `ModularRecurrentPolicy`):
the networks hold the areas, runs train, evaluate from their folders and resume, Dale's law survives the updates,
and bad settings are refused by name."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("rsl_rl")
pytest.importorskip("sb3_contrib")

from mn_gym import ModularGRU
from mn_gym.train import runs
from mn_gym.train.settings import RecurrentPPOSettings, RslPPOSettings

ID = "PointMassReach-v0"
AREAS = {"areas": [6, 4], "delay_steps": 1, "dale": True, "excitatory_fraction": 0.5, "hidden_noise": 0.01}
SETTINGS = {
    "rsl-ppo": RslPPOSettings(n_envs=16, n_steps=8, hidden_dims=[16], num_mini_batches=2, modular=AREAS),
    "recurrent-ppo": RecurrentPPOSettings(n_envs=8, n_steps=16, batch_size=32, n_epochs=1,
                                          policy_kwargs={"net_arch": [16], "modular": AREAS}),
}


def memories(algo: str, policy: torch.nn.Module) -> list[ModularGRU]:
    """The ModularGRUs of a loaded policy: rsl-rl's actor, or SB3's actor and critic memories."""
    net = policy.actor if algo == "rsl-ppo" else policy.model.policy
    return [m for m in net.modules() if isinstance(m, ModularGRU)]


def check_dale(core: ModularGRU) -> None:
    w = core.effective_weights()["inter"]
    exc = core.excitatory()
    assert (w[:, exc] >= 0).all() and torch.count_nonzero(w[:, ~exc]) == 0
    assert (w[:, exc] > 0).any()


@pytest.mark.parametrize("algo", list(SETTINGS))
def test_modular_memory_trains_evaluates_and_resumes(algo, tmp_path):
    settings = SETTINGS[algo]
    steps = 2 * settings.n_envs * settings.n_steps
    out = tmp_path / algo
    summary = runs.train(ID, algo, out, settings=settings, steps=steps, eval_batch=8, progress=False)
    _, policy = runs.load_policy(out)
    cores = memories(algo, policy)
    assert len(cores) == (1 if algo == "rsl-ppo" else 2), "no ModularGRU in the trained networks"
    actor = cores[0]
    assert (actor.areas, actor.delay_steps, actor.dale) == ((6, 4), 1, True)
    assert actor.n_hidden == 20 and actor.n_out == 4  # the heads read the output area only
    for core in cores:
        check_dale(core)
    # the state carries over steps and None starts an episode
    obs = torch.randn(3, actor.n_in)
    with torch.no_grad():
        first, hidden = policy(obs)
        again, _ = policy(obs, hidden)
        fresh, _ = policy(obs)
    torch.testing.assert_close(fresh, first)
    assert not torch.equal(again, first)  # the state is used (SB3 starts with tiny actions: not allclose)
    result = runs.evaluate_run(out, episodes=8, plot=False)
    assert result["mean_final_distance_m"] == pytest.approx(summary["final_eval_distance_m"], rel=1e-5)
    more = runs.train(ID, algo, out, settings=settings, steps=2 * steps, eval_batch=8, progress=False, resume=True)
    assert more["env_steps"] == 2 * steps


def test_modular_output_only_reaches_the_rsl_head():
    """rsl-rl's head reads the output areas only: the action does not depend on the other areas' states."""
    from mn_gym.faces.rsl_rl import RslRlVecEnv
    from mn_gym.train.rsl import RslPolicy, _ppo

    settings = SETTINGS["rsl-ppo"]
    policy = RslPolicy(_ppo(RslRlVecEnv(ID, 1), settings, torch.device("cpu")).get_policy()).eval()
    core = policy.actor.rnn.rnn
    obs = torch.randn(2, core.n_in)
    _, hidden = policy(obs)
    changed = hidden.clone()
    changed[..., :6] += 1.0  # area 0's current state: read by area 1 only after the delay
    with torch.no_grad():
        a, _ = policy(obs, hidden)
        b, _ = policy(obs, changed)
    torch.testing.assert_close(a, b)


def test_modular_setting_from_command_line_text():
    """`mn-gym train --set "modular={'areas': [8, 8], 'dale': True}"` gives the dict."""
    parse = RslPPOSettings.parse
    assert parse({"modular": "{'areas': [8, 8], 'dale': True}"}).modular == {"areas": [8, 8], "dale": True}
    assert parse({"modular": "None"}).modular is None


def test_bad_modular_settings_are_refused():
    for make in (lambda m: RslPPOSettings(modular=m), lambda m: RecurrentPPOSettings(policy_kwargs={"modular": m})):
        with pytest.raises(ValueError, match=r"unknown key.*'area'"):
            make({"area": [8]})
    with pytest.raises(ValueError, match="modular must be dict"):
        RslPPOSettings(modular=[8, 8])
    with pytest.raises(ValueError, match="modular and rnn_type 'gru'"):
        RslPPOSettings(modular={"areas": [8]}, rnn_type="gru")


def test_bad_modular_values_are_refused_when_built(tmp_path):
    settings = RslPPOSettings(n_envs=4, n_steps=4, hidden_dims=[8], modular={"areas": [4, 0]})
    with pytest.raises(ValueError, match=r"areas\[1\]"):
        runs.train(ID, "rsl-ppo", tmp_path / "bad", settings=settings, steps=16, eval_batch=4, progress=False)
