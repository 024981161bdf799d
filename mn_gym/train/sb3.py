"""Reinforcement learning with stable-baselines3 on the batched SB3 face: PPO, SAC and RecurrentPPO.

    from mn_gym.train.sb3 import train_sb3
    from mn_gym.train.settings import PPOSettings
    result = train_sb3("ArmReach-v0", PPOSettings(n_envs=64), time_budget=600, out_dir="runs/arm-ppo")

The agent trains on `VecNormalize(VecMonitor(MnGymVecEnv(env_id, n_envs)))` (observations and rewards
normalised). Evaluation runs every 1/`n_evals` of the budget on the same held-out episodes as BPTT's (`HeldOut`),
with the agent's deterministic action, so the two methods are scored alike: mean final hand-target distance (m)
and success rate. Budgets: `steps` (env steps, summed over the `n_envs` lanes) and/or `time_budget` (training
seconds: acting, env steps and gradient updates), see `Budget`.

Files in `out_dir`: `metrics.csv` (the learning curve) and `agent.pt`, written at every evaluation: a
weights-only torch file (`mn_gym.files`) with the agent's state dicts (networks and optimisers, SB3's
`get_parameters`, plus SAC's entropy coefficient), its env-step count, the VecNormalize statistics as tensors,
the curve and the clocks. Nothing is pickled: an agent is rebuilt from the run's settings and loaded from its
state dicts (SB3's own `model.zip` and `VecNormalize.save` pickle, so a shared file could run code).
SB3's own training scalars and the curve go to `tensorboard/` when TensorBoard is installed.
SAC resumes with an empty replay buffer (the buffer is not saved). RecurrentPPO with
`policy_kwargs={'modular': {...}}` swaps its LSTMs for `mn_gym.ModularGRU` areas (`mn_gym.train.sb3_modular`).
"""

from __future__ import annotations

from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.save_util import recursive_getattr
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize
from torch import Tensor, nn

from mn_gym.faces.common import action_to_excitation
from mn_gym.faces.sb3 import MnGymVecEnv
from mn_gym.files import BadFileError, load_tensors, save_tensors
from mn_gym.train.common import (
    Budget,
    Clock,
    HeldOut,
    LearningCurve,
    Progress,
    TrainResult,
    check_env_kwargs,
    start_rl_run,
    tensorboard_dir,
)
from mn_gym.train.settings import SETTINGS, PPOSettings, RecurrentPPOSettings, SACSettings

__all__ = ["AGENT", "CURVE_FIELDS", "SB3Policy", "agent_state", "load_agent", "load_sb3_policy", "restore_agent",
           "restore_normalizer", "train_sb3"]

AGENT = "agent.pt"
CURVE_FIELDS = ("env_steps", "train_time_s", "elapsed_s", "train_episode_reward", "eval_final_distance",
                "eval_success_rate", "eval_loss")
SB3Settings = PPOSettings | RecurrentPPOSettings | SACSettings


def _algorithm(algo: str, modular: bool = False) -> tuple[type[BaseAlgorithm], Any]:
    """The SB3 class and policy (a name, or a class: the modular recurrent policy) of `algo`."""
    if algo == "ppo":
        from stable_baselines3 import PPO
        return PPO, "MlpPolicy"
    if algo == "sac":
        from stable_baselines3 import SAC
        return SAC, "MlpPolicy"
    if algo == "recurrent-ppo":
        try:
            from sb3_contrib import RecurrentPPO
        except ImportError as exc:
            raise ImportError("recurrent-ppo needs sb3-contrib: pip install 'mn_gym[sb3]'") from exc
        if modular:
            from mn_gym.train.sb3_modular import ModularRecurrentPolicy
            return RecurrentPPO, ModularRecurrentPolicy
        return RecurrentPPO, "MlpLstmPolicy"
    raise ValueError(f"unknown RL algorithm {algo!r}; choose one of {[a for a in SETTINGS if a != 'bptt']}")


class SB3Policy(nn.Module):
    """A stable-baselines3 agent as an mn_gym policy: `(obs (B, n_obs), hidden) -> (excitation (B, m), hidden)`.

    Acts deterministically, normalising observations with the training statistics when given; the action
    in [-1, 1] maps to excitation (a + 1) / 2 as in the Gymnasium faces. For RecurrentPPO `hidden` carries
    the LSTM states (None at an episode start)."""

    def __init__(self, model: BaseAlgorithm, normalizer: VecNormalize | None = None) -> None:
        super().__init__()
        self.model, self.normalizer = model, normalizer
        self.recurrent = type(model).__name__ == "RecurrentPPO"

    def forward(self, obs: Tensor, hidden: Any = None) -> tuple[Tensor, Any]:
        x = obs.detach().cpu().numpy()
        if self.normalizer is not None:
            x = self.normalizer.normalize_obs(x)
        if self.recurrent:
            starts = np.full(len(x), hidden is None)
            action, hidden = self.model.predict(x, state=hidden, episode_start=starts, deterministic=True)
        else:
            action, _ = self.model.predict(x, deterministic=True)
        return action_to_excitation(torch.as_tensor(action, dtype=obs.dtype, device=obs.device)), hidden


def _build(settings: SB3Settings, venv: Any, **kwargs: Any) -> BaseAlgorithm:
    """A new SB3 agent as `settings` describe it, on `venv` (`kwargs`: seed, device, tensorboard_log)."""
    sb3_kwargs = {k: v for k, v in asdict(settings).items() if k != "n_envs"}  # a copy: SB3 edits policy_kwargs
    cls, policy = _algorithm(settings.algo, modular="modular" in sb3_kwargs.get("policy_kwargs", {}))
    return cls(policy, venv, verbose=0, **kwargs, **sb3_kwargs)


def agent_state(model: BaseAlgorithm, normalizer: VecNormalize | None) -> dict[str, Any]:
    """What `agent.pt` keeps of an agent, tensors and plain values only: SB3's state dicts (`get_parameters`:
    networks and optimisers), its other saved tensors (SAC's entropy coefficient), the env-step and update
    counts, and the observation/return statistics of `normalizer`."""
    tensors = model._get_torch_save_params()[1] or []
    state: dict[str, Any] = {"parameters": model.get_parameters(),
                             "tensors": {name: recursive_getattr(model, name).detach().cpu() for name in tensors},
                             "num_timesteps": model.num_timesteps, "n_updates": getattr(model, "_n_updates", 0)}
    if normalizer is not None:
        state["normalizer"] = {
            "obs_mean": torch.from_numpy(normalizer.obs_rms.mean.copy()),
            "obs_var": torch.from_numpy(normalizer.obs_rms.var.copy()), "obs_count": float(normalizer.obs_rms.count),
            "ret_mean": float(normalizer.ret_rms.mean), "ret_var": float(normalizer.ret_rms.var),
            "ret_count": float(normalizer.ret_rms.count),
            "settings": {"norm_obs": normalizer.norm_obs, "norm_reward": normalizer.norm_reward,
                         "clip_obs": float(normalizer.clip_obs), "clip_reward": float(normalizer.clip_reward),
                         "gamma": float(normalizer.gamma), "epsilon": float(normalizer.epsilon)}}
    return state


def restore_agent(model: BaseAlgorithm, state: dict[str, Any], path: Path) -> None:
    """Load `agent_state`'s dict (read from `path`) into `model`, built with the same settings."""
    try:
        model.set_parameters(state["parameters"], exact_match=True, device=model.device)
        for name, value in state["tensors"].items():
            recursive_getattr(model, name).data.copy_(value)
        model.num_timesteps, model._n_updates = int(state["num_timesteps"]), int(state["n_updates"])
    except (KeyError, TypeError, ValueError, RuntimeError, AttributeError) as exc:
        raise BadFileError(f"{path} does not hold a {type(model).__name__} agent of this run's settings: "
                           f"{exc}") from None


def restore_normalizer(venv: Any, state: dict[str, Any], path: Path, training: bool = True) -> VecNormalize:
    """A `VecNormalize` over `venv` with the statistics of `agent_state(...)["normalizer"]` (read from `path`)."""
    try:
        normalizer = VecNormalize(venv, training=training, **state["settings"])
        if tuple(state["obs_mean"].shape) != normalizer.obs_rms.mean.shape:
            raise ValueError(f"observation statistics of shape {tuple(state['obs_mean'].shape)}, the env's "
                             f"observations have {normalizer.obs_rms.mean.shape}")
        normalizer.obs_rms.mean = state["obs_mean"].double().numpy()
        normalizer.obs_rms.var = state["obs_var"].double().numpy()
        normalizer.obs_rms.count = float(state["obs_count"])
        normalizer.ret_rms.mean = np.float64(state["ret_mean"])
        normalizer.ret_rms.var = np.float64(state["ret_var"])
        normalizer.ret_rms.count = float(state["ret_count"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise BadFileError(f"{path} holds no usable observation statistics: {exc}") from None
    return normalizer


def load_agent(run_dir: str | Path) -> dict[str, Any]:
    """The dict in `run_dir/agent.pt`, read weights-only and checked (`mn_gym.files.load_tensors`)."""
    path = Path(run_dir) / AGENT
    if not path.is_file() and (Path(run_dir) / "model.zip").is_file():
        raise BadFileError(f"{run_dir} holds an SB3 model.zip (an older mn_gym's format, a pickle): mn_gym no "
                           "longer loads pickles; retrain the run")
    return load_tensors(path)


def load_sb3_policy(run_dir: str | Path, settings: SB3Settings, env_id: str,
                    env_kwargs: dict[str, Any] | None = None) -> SB3Policy:
    """The agent saved in `run_dir/agent.pt`, trained with `settings` on `env_id`, as an `SB3Policy`."""
    state = load_agent(run_dir)
    venv = MnGymVecEnv(env_id, settings.n_envs, **check_env_kwargs(env_kwargs))
    if hasattr(settings, "buffer_size"):  # an agent to act, not to train: no replay memory
        settings = replace(settings, buffer_size=settings.n_envs)
    model = _build(settings, venv, device="cpu")
    restore_agent(model, state, Path(run_dir) / AGENT)
    normalizer = None
    if state.get("normalizer") is not None:
        normalizer = restore_normalizer(venv, state["normalizer"], Path(run_dir) / AGENT, training=False)
    return SB3Policy(model, normalizer)


class _Evaluations(BaseCallback):
    """Keeps the training clock and the progress display, evaluates every 1/`n_evals` of the budget (writing
    the curve and the checkpoint files), and stops `learn` at the budget."""

    def __init__(self, model: BaseAlgorithm, budget: Budget, n_evals: int, held_out: HeldOut, out: Path | None,
                 curve: LearningCurve, clock: Clock, progress: Progress) -> None:
        super().__init__()
        self.model, self.budget, self.n_evals, self.held_out, self.out = model, budget, n_evals, held_out, out
        self.curve, self.clock, self.progress = curve, clock, progress

    def fraction(self) -> float:
        return self.budget.fraction(self.model.num_timesteps, self.clock.train_s)

    def _on_training_start(self) -> None:
        self.clock.start()

    def _on_step(self) -> bool:
        self.clock.stop()
        row = self.curve.rows[-1]
        self.progress.update(self.model.num_timesteps, self.clock.train_s, dist=row["eval_final_distance"],
                             success=row["eval_success_rate"])
        if self.fraction() >= 1.0:
            return False
        if self.fraction() >= len(self.curve.rows) / self.n_evals:
            self.record()
        self.clock.start()
        return True

    def record(self) -> None:
        """Evaluate on the held-out episodes, append a curve row, write the model, normaliser and progress."""
        episodes = [e["r"] for e in self.model.ep_info_buffer] if self.model.ep_info_buffer else []
        normalizer = self.model.get_vec_normalize_env()
        metrics = self.held_out.evaluate(SB3Policy(self.model, normalizer))
        self.curve.append({"env_steps": self.model.num_timesteps, "train_time_s": self.clock.train_s,
                           "elapsed_s": self.clock.elapsed_s,
                           "train_episode_reward": float(np.mean(episodes)) if episodes else float("nan"),
                           **metrics})
        if self.out is not None:
            save_tensors({**agent_state(self.model, normalizer), "curve": self.curve.rows,
                          "train_time_s": self.clock.train_s}, self.out / AGENT)


def train_sb3(env_id: str, settings: SB3Settings, *, steps: int | None = None, time_budget: float | None = None,
              n_evals: int = 10, seed: int = 0, device: str = "cpu", env_kwargs: dict[str, Any] | None = None,
              held_out: HeldOut | None = None, out_dir: str | Path | None = None, resume: bool = False,
              progress: bool = True, tensorboard: bool = True) -> TrainResult:
    """Train the stable-baselines3 agent that `settings` describe (`PPOSettings`, `SACSettings`,
    `RecurrentPPOSettings`) on `env_id`; see the module docstring for the envs, budgets and files.

    Args:
        steps, time_budget: total env steps and/or total training seconds (evaluation excluded); at least one.
        n_evals: evaluations over the budget (plus one at the start).
        seed: seeds the agent and the training env. device: torch device of the envs and the agent.
        env_kwargs: catalogue overrides for the training env and the default held-out one.
        held_out: the evaluation episodes (default `HeldOut.make(env_id, env_kwargs=env_kwargs, device=device)`).
        out_dir: where the model, normaliser, metrics and progress go (None: nothing written).
        resume: continue the run in `out_dir` up to the same total budget.
        progress: show the progress (`Progress`). tensorboard: log to TensorBoard when it is installed.
    """
    _algorithm(settings.algo)  # an unknown algo or a missing sb3-contrib fails before anything is built
    budget, env_kwargs, out, held_out = start_rl_run(
        env_id, settings, steps=steps, time_budget=time_budget, n_evals=n_evals, env_kwargs=env_kwargs,
        held_out=held_out, out_dir=out_dir, resume=resume, checkpoint=AGENT, device=device)
    venv = VecMonitor(MnGymVecEnv(env_id, settings.n_envs, device=device, **env_kwargs))
    venv.seed(seed)

    # ---- the agent, new or where the run stopped (rebuilt from the settings, loaded from its state dicts)
    saved: dict[str, Any] = {"curve": [], "train_time_s": 0.0}
    if resume:
        saved = load_agent(out)
        venv = restore_normalizer(venv, saved.get("normalizer") or {}, out / AGENT)
    else:
        venv = VecNormalize(venv, gamma=settings.gamma)
    tb = tensorboard_dir(out, tensorboard)
    model = _build(settings, venv, seed=seed, device=device, tensorboard_log=tb and str(tb))
    if resume:
        restore_agent(model, saved, out / AGENT)
    config = {"env_id": env_id, "algo": settings.algo, **asdict(settings), "env_kwargs": env_kwargs, "steps": steps,
              "time_budget": time_budget, "n_evals": n_evals, "eval_batch": held_out.env.batch_size,
              "eval_seed": held_out.seed, "seed": seed, "device": str(device), "torch_threads": torch.get_num_threads()}

    # ---- learn, evaluating on the way (the callback), then once more at the end
    rows = saved["curve"]
    clock = Clock(saved["train_time_s"], elapsed_s=rows[-1]["elapsed_s"] if rows else 0.0)
    curve = LearningCurve(CURVE_FIELDS, out, rows, step="env_steps", tensorboard=tensorboard_dir(out, tensorboard))
    bar = Progress(env_id, budget, model.num_timesteps, clock.train_s, enabled=progress)
    evaluations = _Evaluations(model, budget, n_evals, held_out, out, curve, clock, bar)
    try:
        if not curve.rows:
            evaluations.record()
        if evaluations.fraction() < 1.0:
            model.learn(total_timesteps=10**12, callback=evaluations, reset_num_timesteps=not resume)
        if curve.rows[-1]["env_steps"] != model.num_timesteps:
            evaluations.record()
    finally:
        bar.close()
        curve.close()
        venv.close()
    return TrainResult(policy=SB3Policy(model, model.get_vec_normalize_env()), curve=curve.rows,
                       env_steps=model.num_timesteps, train_time_s=clock.train_s, config=config, out_dir=out)
