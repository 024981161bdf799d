"""Massively parallel PPO on the batched torch env, with rsl-rl-lib's PPO (Rudin et al. 2022, "Learning to walk in
minutes using massively parallel deep reinforcement learning"; Schulman et al. 2017).

    from mn_gym.train.rsl import train_rsl_ppo
    from mn_gym.train.settings import RslPPOSettings
    result = train_rsl_ppo("ArmReach-v0", RslPPOSettings(), time_budget=600, out_dir="runs/arm-rsl")

The agent trains on `RslRlVecEnv(env_id, n_envs)`: one functional step for every lane, observations, actions,
rewards and dones torch tensors on the env's device from end to end (CPU or CUDA, no numpy). Each iteration
collects `n_steps` steps of every lane, then runs rsl-rl's PPO update (clipped surrogate, GAE, an adaptive
learning rate that keeps the KL near `desired_kl`, time-outs bootstrapped). Actor and critic are MLPs with
observation normalisation (running statistics, part of their weights), or with `rnn_type="gru"` / `"lstm"` a
recurrent layer before the MLP (rsl-rl's `RNNModel`, trained on whole rollouts; its state is zeroed where an
episode ends), or with `modular={...}` a `mn_gym.ModularGRU` of GRU areas in that place (`ModularRNNModel`: the
normalised observation enters the input areas, the output areas' states feed the MLP; its hidden noise acts in
rollouts and updates, where rsl-rl puts the model in training mode); the actor's Gaussian mean, clipped to
[-1, 1], maps to excitations (a + 1) / 2 as in every face.

Evaluation runs every 1/`n_evals` of the budget on the same held-out episodes as BPTT's and SB3's (`HeldOut`),
with the actor's mean action. Budgets: `steps` (env steps, summed over the lanes) and/or `time_budget` (training
seconds: acting, env steps and updates), see `Budget`.

Files in `out_dir`: `metrics.csv` (the learning curve) and `checkpoint.pt` (weights only: actor, critic and
optimiser state dicts, env steps, clocks, curve, random states), written at every evaluation. A resumed run
restores the networks, optimiser, learning rate and clocks; its training env starts fresh episodes.
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from rsl_rl.algorithms import PPO
from rsl_rl.models import MLPModel, RNNModel
from rsl_rl.modules import RNN, HiddenState
from tensordict import TensorDict
from torch import Tensor, nn

from mn_gym.faces.common import action_to_excitation
from mn_gym.faces.rsl_rl import OBS_GROUP, RslRlVecEnv
from mn_gym.files import BadFileError, load_tensors, save_tensors
from mn_gym.modular import ModularGRU
from mn_gym.train.common import (
    Clock,
    DivergedError,
    HeldOut,
    LearningCurve,
    Progress,
    TrainResult,
    check_env_kwargs,
    start_rl_run,
    tensorboard_dir,
)
from mn_gym.train.settings import RslPPOSettings

__all__ = ["CHECKPOINT", "CURVE_FIELDS", "ModularRNNModel", "RslPolicy", "load_rsl_policy", "rsl_config",
           "train_rsl_ppo"]

CHECKPOINT = "checkpoint.pt"
CURVE_FIELDS = ("iteration", "env_steps", "train_time_s", "train_cpu_s", "elapsed_s", "learning_rate",
                "train_episode_reward", "eval_final_distance", "eval_success_rate", "eval_loss")
OBS_GROUPS = {"actor": [OBS_GROUP], "critic": [OBS_GROUP]}
NETWORK = ("n_envs", "n_steps", "hidden_dims", "activation", "rnn_type", "rnn_hidden_dim", "modular", "init_std",
           "action_bias")  # not PPO arguments


class _ModularMemory(RNN):
    """rsl-rl's `RNN` (hidden-state keeping, resets where episodes end, padded-trajectory updates) around a
    `ModularGRU`, which takes the place of its `torch.nn.GRU`: hidden states (1, B, n_hidden)."""

    def __init__(self, core: ModularGRU) -> None:
        nn.Module.__init__(self)
        self.rnn = core
        self.hidden_state = None


class ModularRNNModel(RNNModel):
    """rsl-rl's `RNNModel` with a `ModularGRU` memory: normalised observations -> GRU areas -> the output areas'
    states -> MLP head (and the Gaussian distribution, for the actor). `modular`: the ModularGRU keyword
    arguments; the other arguments are `RNNModel`'s."""

    def __init__(self, obs: TensorDict, obs_groups: dict[str, list[str]], obs_set: str, output_dim: int,
                 hidden_dims: tuple[int, ...] | list[int] = (128, 128), activation: str = "elu",
                 obs_normalization: bool = False, distribution_cfg: dict | None = None,
                 modular: dict[str, Any] | None = None) -> None:
        core = ModularGRU(self._get_obs_dim(obs, obs_groups, obs_set)[1], **(modular or {}))  # checked first
        self.latent_dim = core.n_out
        MLPModel.__init__(self, obs, obs_groups, obs_set, output_dim, hidden_dims, activation, obs_normalization,
                          distribution_cfg)
        self.rnn = _ModularMemory(core)


def rsl_config(settings: RslPPOSettings) -> dict[str, Any]:
    """rsl-rl's `train_cfg` for `settings` (what `OnPolicyRunner` takes too)."""
    network = {"class_name": "MLPModel", "hidden_dims": list(settings.hidden_dims), "activation": settings.activation,
               "obs_normalization": True}
    if settings.rnn_type != "none":
        network |= {"class_name": "RNNModel", "rnn_type": settings.rnn_type, "rnn_hidden_dim": settings.rnn_hidden_dim}
    if settings.modular is not None:
        network |= {"class_name": f"{__name__}:ModularRNNModel", "modular": dict(settings.modular)}
    ppo = {k: v for k, v in asdict(settings).items() if k not in NETWORK}
    return {"algorithm": {"class_name": "PPO", **ppo},
            "actor": {**network, "distribution_cfg": {"class_name": "GaussianDistribution",
                                                      "init_std": settings.init_std, "std_type": "log"}},
            "critic": network, "obs_groups": OBS_GROUPS, "num_steps_per_env": settings.n_steps, "multi_gpu": None}


def _ppo(env: RslRlVecEnv, settings: RslPPOSettings, device: torch.device) -> PPO:
    with contextlib.redirect_stdout(io.StringIO()):  # rsl-rl prints the networks
        alg = PPO.construct_algorithm(env.get_observations(), env, rsl_config(settings), str(device))
    nn.init.constant_(alg.get_policy().mlp[-1].bias, settings.action_bias)
    return alg


class RslPolicy(nn.Module):
    """An rsl-rl actor as an mn_gym policy: `(obs (B, n_obs), hidden) -> (excitation (B, m), hidden)`, its mean
    action (deterministic), normalised by the actor's own running statistics. `hidden` is None for an MLP actor;
    for a recurrent one its state ((1, B, H) for a GRU, a pair for an LSTM; None: zeros, an episode's start)."""

    def __init__(self, actor: MLPModel) -> None:
        super().__init__()
        self.actor = actor

    def forward(self, obs: Tensor, hidden: HiddenState = None) -> tuple[Tensor, HiddenState]:
        self.actor.reset(hidden_state=hidden)  # an MLP actor has none: a no-op
        action = self.actor(TensorDict({OBS_GROUP: obs}, batch_size=[obs.shape[0]], device=obs.device))
        return action_to_excitation(action), self.actor.get_hidden_state()


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict saved by `train_rsl_ppo`, read weights-only and checked (`mn_gym.files.load_tensors`)."""
    return load_tensors(path)


def load_rsl_policy(run_dir: str | Path, settings: RslPPOSettings, env_id: str,
                    env_kwargs: dict[str, Any] | None = None) -> RslPolicy:
    """The actor saved in `run_dir/checkpoint.pt`, trained with `settings` on `env_id`, as an `RslPolicy`."""
    checkpoint = load_checkpoint(Path(run_dir) / CHECKPOINT)
    actor = _ppo(RslRlVecEnv(env_id, 1, **check_env_kwargs(env_kwargs)), settings, torch.device("cpu")).get_policy()
    try:
        actor.load_state_dict(checkpoint["actor"])
    except (KeyError, TypeError, RuntimeError) as exc:
        raise BadFileError(f"{Path(run_dir) / CHECKPOINT} holds no rsl-rl actor of this run's settings: "
                           f"{exc}") from None
    return RslPolicy(actor).eval()


def train_rsl_ppo(env_id: str, settings: RslPPOSettings | None = None, *, steps: int | None = None,
                  time_budget: float | None = None, n_evals: int = 10, seed: int = 0,
                  device: str | torch.device = "cpu", env_kwargs: dict[str, Any] | None = None,
                  held_out: HeldOut | None = None, out_dir: str | Path | None = None, resume: bool = False,
                  progress: bool = True, tensorboard: bool = True) -> TrainResult:
    """Train rsl-rl's PPO with `settings` (default `RslPPOSettings()`) on `env_id`; see the module docstring.

    Args:
        steps, time_budget: total env steps and/or total training seconds (evaluation excluded); at least one.
        n_evals: evaluations over the budget (plus one at the start).
        seed: seeds the networks, the action noise and the training env. device: torch device of env and agent.
        env_kwargs: catalogue overrides for the training env and the default held-out one.
        held_out: the evaluation episodes (default `HeldOut.make(env_id, env_kwargs=env_kwargs, device=device)`).
        out_dir: where the checkpoint and metrics go (None: nothing written).
        resume: continue the run in `out_dir` up to the same total budget.
        progress: show the progress (`Progress`). tensorboard: log the curve to TensorBoard when installed.
    """
    settings = settings or RslPPOSettings()
    budget, env_kwargs, out, held_out = start_rl_run(
        env_id, settings, steps=steps, time_budget=time_budget, n_evals=n_evals, env_kwargs=env_kwargs,
        held_out=held_out, out_dir=out_dir, resume=resume, checkpoint=CHECKPOINT, device=device)

    # ---- the training env and the agent, new or where the run stopped
    torch.manual_seed(seed)
    env = RslRlVecEnv(env_id, settings.n_envs, device=device, seed=seed, **env_kwargs)
    alg = _ppo(env, settings, env.device)
    saved: dict[str, Any] = {"curve": [], "env_steps": 0, "iteration": 0, "train_time_s": 0.0, "train_cpu_s": 0.0}
    if resume:
        saved = load_checkpoint(out / CHECKPOINT)
        alg.load({"actor_state_dict": saved["actor"], "critic_state_dict": saved["critic"],
                  "optimizer_state_dict": saved["optimizer"]}, None, strict=True)
        torch.set_rng_state(saved["torch_rng"])
        env.functional.generator.set_state(saved["env_rng"])
        env.reset()
    config = {"env_id": env_id, "algo": settings.algo, **asdict(settings), "env_kwargs": env_kwargs, "steps": steps,
              "time_budget": time_budget, "n_evals": n_evals, "eval_batch": held_out.env.batch_size,
              "eval_seed": held_out.seed, "seed": seed, "device": str(device), "torch_threads": torch.get_num_threads()}

    rows = saved["curve"]
    clock = Clock(saved["train_time_s"], saved["train_cpu_s"], elapsed_s=rows[-1]["elapsed_s"] if rows else 0.0)
    curve = LearningCurve(CURVE_FIELDS, out, rows, step="env_steps", tensorboard=tensorboard_dir(out, tensorboard))
    env_steps, iteration = saved["env_steps"], saved["iteration"]
    bar = Progress(env_id, budget, env_steps, clock.train_s, enabled=progress)
    policy = RslPolicy(alg.get_policy())
    episode_return = torch.zeros(env.num_envs, device=env.device)
    last_returns = math.nan

    def record() -> None:
        """Evaluate on the held-out episodes, append a curve row, write the checkpoint."""
        training_state = alg.get_policy().get_hidden_state()  # of the training lanes (a recurrent actor)
        evaluation = held_out.evaluate(policy)
        alg.get_policy().reset(hidden_state=training_state)
        curve.append({"iteration": iteration, "env_steps": env_steps, "train_time_s": clock.train_s,
                      "train_cpu_s": clock.cpu_s, "elapsed_s": clock.elapsed_s, "learning_rate": alg.learning_rate,
                      "train_episode_reward": last_returns, **evaluation})
        if out is not None:
            save_tensors({"actor": alg.get_policy().state_dict(), "critic": alg.critic.state_dict(),
                         "optimizer": alg.optimizer.state_dict(), "env_steps": env_steps, "iteration": iteration,
                         "train_time_s": clock.train_s, "train_cpu_s": clock.cpu_s, "curve": curve.rows,
                         "torch_rng": torch.get_rng_state(), "env_rng": env.functional.generator.get_state()},
                        out / CHECKPOINT)

    try:
        if not curve.rows:
            record()
        obs = env.get_observations()
        alg.train_mode()
        while budget.fraction(env_steps, clock.train_s) < 1.0:
            clock.start()
            with torch.inference_mode():
                for _ in range(settings.n_steps):
                    obs, rewards, dones, extras = env.step(alg.act(obs))
                    alg.process_env_step(obs, rewards, dones, extras)
                    episode_return += rewards
                    if extras["log"]:  # some episodes ended (the face logs them): no second device sync
                        ended = dones.bool()
                        last_returns = episode_return[ended].mean().item()
                        episode_return.masked_fill_(ended, 0.0)
                alg.compute_returns(obs)
                if not bool(torch.isfinite(obs[OBS_GROUP]).all() & torch.isfinite(episode_return).all()):
                    raise DivergedError(f"training diverged at iteration {iteration}: non-finite observations or "
                                        f"rewards (the env ran away); lower learning_rate "
                                        f"({settings.learning_rate}) or check the env settings")
            alg.update()
            clock.stop()
            env_steps += settings.n_envs * settings.n_steps
            iteration += 1
            fraction = budget.fraction(env_steps, clock.train_s)
            row = curve.rows[-1]
            bar.update(env_steps, clock.train_s, dist=row["eval_final_distance"], success=row["eval_success_rate"])
            if fraction >= 1.0 or fraction >= len(curve.rows) / n_evals:
                record()
    finally:
        bar.close()
        curve.close()
        env.close()
    return TrainResult(policy=policy.eval(), curve=curve.rows, env_steps=env_steps, train_time_s=clock.train_s,
                       config=config, out_dir=out)
