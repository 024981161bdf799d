"""Off-the-shelf RL libraries drive the faces unmodified: TorchRL (GymEnv on an id, GymWrapper on the native
vector env) and skrl (wrap_env on make_vec, a short PPO run). Each test skips when its library is missing.
The Gymnasium and stable-baselines3 checkers are in test_gym_checkers.py."""

import gymnasium as gym
import pytest
import torch

import mn_gym  # noqa: F401  (registers the ids)

ID = "ArmReach-v0"


def _replay(actions: torch.Tensor):
    """A TorchRL policy playing `actions` (steps, n, M) one step at a time."""
    steps = iter(actions)
    return lambda td: td.set("action", next(steps))


def test_torchrl_gym_env_passes_check_env_specs():
    """`GymEnv(id)` builds MnGymEnv through gymnasium.make (it first tries `frameskip=`, which must fail with
    Python's "unexpected keyword argument" wording); `GymEnv(id, num_envs=n)` runs n of them in an
    AsyncVectorEnv whose spawned workers re-import the main module: from a script that imports mn_gym the plain id
    works (checked by hand with num_envs=8); here, under pytest, the workers need the "mn_gym:" prefix."""
    pytest.importorskip("torchrl")
    from torchrl.envs import GymEnv
    from torchrl.envs.utils import check_env_specs

    env = GymEnv(ID)
    check_env_specs(env)
    td = env.rollout(20)
    assert td["next", "observation"].shape == (20, env.observation_spec["observation"].shape[-1])
    env.close()
    envs = GymEnv(f"mn_gym:{ID}", num_envs=2)  # a process each (~5 s to start one on two cores)
    check_env_specs(envs)
    assert envs.rollout(20).batch_size == (2, 20)
    envs.close()


def test_torchrl_wraps_the_native_vector_env():
    """`GymWrapper(gymnasium.make_vec(id, n, autoreset_mode=...))` in the two modes TorchRL accepts (it refuses
    NEXT_STEP): DISABLED (TorchRL resets ended envs with `reset_mask`) and SAME_STEP (it reads `final_obs`); the
    same seed and actions give the same first episodes, ended ones included."""
    pytest.importorskip("torchrl")
    from torchrl.envs import GymWrapper
    from torchrl.envs.utils import check_env_specs

    n, steps, t = 8, 20, 5
    actions = torch.linspace(-1, 1, steps * n * 6).reshape(steps, n, 6)
    rollouts = []
    for mode in ("Disabled", "SameStep"):
        env = GymWrapper(gym.make_vec(ID, n, autoreset_mode=mode, max_episode_steps=t))
        check_env_specs(env)
        env.set_seed(0)
        td = env.rollout(steps, policy=_replay(actions), break_when_any_done=False)
        assert td.batch_size == (n, steps)
        truncated = td["next", "truncated"].squeeze(-1)
        assert truncated.sum() == n * steps // t and truncated[:, t - 1].all()
        # the step after an end starts a new episode
        assert not torch.allclose(td["next", "observation"][:, t - 1], td["observation"][:, t])
        rollouts.append(td)
        env.close()
    disabled, same = rollouts
    for key in ("observation", ("next", "observation"), ("next", "reward")):
        torch.testing.assert_close(disabled[key][:, :t], same[key][:, :t])


def test_skrl_wraps_make_vec_and_trains_ppo(tmp_path):
    """skrl's `wrap_env` on `make_vec` with defaults: reset, random steps and `render()` (skrl calls
    `envs.call("render")`; its trainers render every step unless headless). Then a short PPO run in SAME_STEP
    mode, the one skrl's loop assumes (it takes the returned observation as the next one and never reads
    `final_obs`; under NEXT_STEP each restart step would enter its memory as a transition)."""
    pytest.importorskip("skrl")
    from skrl.agents.torch import ExperimentCfg
    from skrl.agents.torch.ppo import PPO, PPO_CFG
    from skrl.envs.wrappers.torch import wrap_env
    from skrl.memories.torch import RandomMemory
    from skrl.trainers.torch import SequentialTrainer
    from skrl.utils.model_instantiators.torch import deterministic_model, gaussian_model

    env = wrap_env(gym.make_vec(ID, 4))
    assert env.num_envs == 4 and env.observation_space.shape == (16,) and env.action_space.shape == (6,)
    obs, _ = env.reset()
    assert obs.shape == (4, 16)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(torch.rand(4, 6) * 2 - 1)
        assert obs.shape == (4, 16) and reward.shape == terminated.shape == truncated.shape == (4, 1)
    assert env.render() == (None,) * 4
    env.close()

    torch.manual_seed(0)
    env = wrap_env(gym.make_vec(ID, 4, autoreset_mode="SameStep", max_episode_steps=10))
    spaces = {"observation_space": env.observation_space, "action_space": env.action_space, "device": env.device}
    net = [{"name": "net", "input": "OBSERVATIONS", "layers": [16], "activations": "tanh"}]
    models = {"policy": gaussian_model(**spaces, network=net, output="ACTIONS"),
              "value": deterministic_model(**spaces, network=net, output="ONE")}
    cfg = PPO_CFG(rollouts=16, learning_epochs=1, mini_batches=1,
                  experiment=ExperimentCfg(directory=str(tmp_path), write_interval=0, checkpoint_interval=0))
    agent = PPO(models=models, memory=RandomMemory(memory_size=16, num_envs=4, device=env.device), cfg=cfg, **spaces)
    trainer = SequentialTrainer(env=env, agents=agent, cfg={"timesteps": 50, "disable_progressbar": True,
                                                            "close_environment_at_exit": False})
    trainer.train()  # not headless: it renders (envs.call("render")) every step
    assert agent.optimizer.state  # the policy was updated
    env.close()
