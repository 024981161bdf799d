"""Reinforcement learning with stable-baselines3 on the batched SB3 face: PPO, SAC and RecurrentPPO.

    from mn_gym.train.rl import train_sb3
    result = train_sb3("ArmReach-v0", "ppo", time_budget=600, out_dir="runs/arm-ppo")

The agent trains on `VecNormalize(VecMonitor(MnGymVecEnv(env_id, n_envs)))` (observations and rewards
normalised). Evaluation runs every 1/`n_evals` of the budget on the same held-out episodes as BPTT's
(`mn_gym.train.bptt.evaluate`: a deterministic batch of `eval_batch` episodes seeded with `eval_seed`), with the
agent's deterministic action, so the two methods are scored alike: mean final hand-target distance (m) and
success rate.

Budgets: `steps` (env steps, summed over the `n_envs` lanes) and/or `time_budget` (seconds of training
wall-clock: acting, environment steps and gradient updates; evaluation and checkpoints are not counted).

Files in `out_dir`: `metrics.csv` (the learning curve), `model.zip` (the agent), `vecnormalize.pkl` (the
observation statistics) and `progress.pt` (curve and clocks, for `resume`), written at every evaluation;
SB3's own training scalars go to `tensorboard/` when TensorBoard is installed.
SAC resumes with an empty replay buffer (the buffer is not saved).
"""

from __future__ import annotations

import copy
import importlib.util
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.vec_env import VecMonitor, VecNormalize
from torch import Tensor, nn

import mn_gym
from mn_gym.faces.common import action_to_excitation
from mn_gym.faces.sb3 import MnGymVecEnv
from mn_gym.train.bptt import check_positive, evaluate, write_csv

__all__ = ["RL_ALGOS", "SB3Policy", "TrainResult", "load_sb3_policy", "train_sb3"]

MODEL, NORMALIZER, PROGRESS, METRICS = "model.zip", "vecnormalize.pkl", "progress.pt", "metrics.csv"
CURVE_FIELDS = ("env_steps", "train_time_s", "elapsed_s", "train_episode_reward", "eval_final_distance",
                "eval_success_rate", "eval_loss")

# Settings for a 2-core CPU and budgets of minutes. `n_envs` lanes of one batched env; every other key goes
# to the stable-baselines3 constructor.
RL_ALGOS: dict[str, dict[str, Any]] = {
    "ppo": {"n_envs": 32, "n_steps": 128, "batch_size": 1024, "n_epochs": 5, "learning_rate": 1e-3,
            "gamma": 0.99, "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.0,
            "policy_kwargs": {"net_arch": [128, 128], "log_std_init": -1.0}},
    "sac": {"n_envs": 4, "batch_size": 256, "learning_rate": 1e-3, "buffer_size": 300_000, "learning_starts": 1000,
            "train_freq": 1, "gradient_steps": 1, "gamma": 0.99, "tau": 0.01,
            "policy_kwargs": {"net_arch": [128, 128]}},
    "recurrent-ppo": {"n_envs": 128, "n_steps": 32, "batch_size": 1024, "n_epochs": 5, "learning_rate": 1e-3,
                      "gamma": 0.99, "gae_lambda": 0.95, "clip_range": 0.2, "ent_coef": 0.0,
                      "policy_kwargs": {"net_arch": [64], "lstm_hidden_size": 64, "log_std_init": -1.0}},
}


def _algo_class(algo: str) -> tuple[type[BaseAlgorithm], str]:
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
        return RecurrentPPO, "MlpLstmPolicy"
    raise ValueError(f"unknown RL algorithm {algo!r}; choose one of {sorted(RL_ALGOS)}")


def min_steps(algo: str, settings: dict[str, Any]) -> int:
    """The smallest step budget that can make one update: one PPO rollout, or SAC's warm-up plus a step."""
    n_envs = settings["n_envs"]
    if algo == "sac":
        return settings["learning_starts"] + n_envs
    return settings["n_steps"] * n_envs


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


def load_sb3_policy(run_dir: str | Path, algo: str, env_id: str) -> SB3Policy:
    """The agent saved in `run_dir` (`model.zip` and `vecnormalize.pkl`) as an `SB3Policy`."""
    run_dir = Path(run_dir)
    cls, _ = _algo_class(algo)
    if not (run_dir / MODEL).is_file():
        raise FileNotFoundError(f"no {MODEL} in {run_dir}")
    model = cls.load(run_dir / MODEL, device="cpu")
    normalizer = None
    if (run_dir / NORMALIZER).is_file():
        normalizer = VecNormalize.load(str(run_dir / NORMALIZER), MnGymVecEnv(env_id, 1))
        normalizer.training = False
    return SB3Policy(model, normalizer)


@dataclass
class TrainResult:
    """What `train_sb3` returns: the agent as a policy, the curve (one dict per evaluation, keys
    `CURVE_FIELDS`), env steps and training seconds done, the last curve row, and the run's settings."""

    policy: SB3Policy
    curve: list[dict[str, float]]
    env_steps: int
    train_time_s: float
    final: dict[str, float]
    config: dict[str, Any]


class _Budget(BaseCallback):
    """Stops `learn` at the budget, evaluates every 1/n_evals of it, keeps the training clock and a tqdm bar."""

    def __init__(self, trainer: _Trainer) -> None:
        super().__init__()
        self.trainer = trainer

    def _on_training_start(self) -> None:
        self.trainer.clock_start()

    def _on_step(self) -> bool:
        tr = self.trainer
        tr.tick(self.model.num_timesteps)
        if tr.progress() >= 1.0:
            return False
        if tr.progress() >= tr.next_eval:
            tr.record(self.model)
        return True


class _Trainer:
    """Clocks, curve, evaluation and checkpoint files of one SB3 run (shared by the callback and `train_sb3`)."""

    def __init__(self, env_id: str, steps: int | None, time_budget: float | None, n_evals: int, eval_batch: int,
                 eval_seed: int, env_kwargs: dict[str, Any], out: Path | None, progress: bool) -> None:
        self.steps, self.time_budget, self.n_evals, self.out = steps, time_budget, n_evals, out
        self.eval_env = mn_gym.make(env_id, batch_size=eval_batch, seed=eval_seed,
                                    **{**env_kwargs, "deterministic": True})
        self.eval_seed = eval_seed
        self.curve: list[dict[str, float]] = []
        self.env_steps, self.train_time, self.elapsed_before = 0, 0.0, 0.0
        self._t0 = self._wall0 = time.perf_counter()
        self.bar = None
        if progress:
            from tqdm.auto import tqdm
            if time_budget is None:
                self.bar = tqdm(total=steps, unit="step", desc=env_id)
            else:
                self.bar = tqdm(total=round(time_budget), unit="s", desc=env_id,
                                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")

    @property
    def next_eval(self) -> float:
        return len(self.curve) / self.n_evals

    def clock_start(self) -> None:
        self._t0 = time.perf_counter()

    def tick(self, env_steps: int) -> None:
        now = time.perf_counter()
        self.train_time += now - self._t0
        self._t0 = now
        self.env_steps = env_steps
        if self.bar is not None:
            self.bar.n = env_steps if self.time_budget is None else min(self.train_time, self.bar.total)
            self.bar.update(0)  # redraws at most every `mininterval`: this runs at every vector step

    def progress(self) -> float:
        parts = []
        if self.steps is not None:
            parts.append(self.env_steps / self.steps)
        if self.time_budget is not None:
            parts.append(self.train_time / self.time_budget)
        return max(parts)

    def record(self, model: BaseAlgorithm) -> dict[str, float]:
        """Evaluate, append a curve row, write the metrics and the checkpoint; the clock skips this time."""
        episodes = [e["r"] for e in model.ep_info_buffer] if model.ep_info_buffer else []
        normalizer = model.get_vec_normalize_env()
        row = {"env_steps": self.env_steps, "train_time_s": self.train_time, "elapsed_s": math.nan,
               "train_episode_reward": float(np.mean(episodes)) if episodes else math.nan,
               **evaluate(self.eval_env, SB3Policy(model, normalizer), self.eval_seed)}
        row["elapsed_s"] = self.elapsed_before + time.perf_counter() - self._wall0
        self.curve.append(row)
        if self.out is not None:
            write_csv(self.out / METRICS, self.curve, CURVE_FIELDS)
            model.save(self.out / MODEL)
            if normalizer is not None:
                normalizer.save(str(self.out / NORMALIZER))
            torch.save({"curve": self.curve, "env_steps": self.env_steps, "train_time_s": self.train_time},
                       self.out / PROGRESS)
        if self.bar is not None:
            self.bar.set_postfix(dist=f"{row['eval_final_distance']:.4f}",
                                 success=f"{row['eval_success_rate']:.2f}", refresh=True)
        self._t0 = time.perf_counter()
        return row

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _tensorboard_dir(out: Path | None) -> str | None:
    """`out/tensorboard` when TensorBoard is installed (SB3 then logs its training scalars there)."""
    if out is None or importlib.util.find_spec("tensorboard") is None:
        return None
    return str(out / "tensorboard")


def train_sb3(
    env_id: str,
    algo: str,
    *,
    steps: int | None = None,
    time_budget: float | None = None,
    seed: int = 0,
    n_evals: int = 10,
    eval_batch: int = 1024,
    eval_seed: int = 12345,
    out_dir: str | Path | None = None,
    resume: bool = False,
    progress: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    device: str = "cpu",
    **overrides: Any,
) -> TrainResult:
    """Train a stable-baselines3 agent (`algo`: "ppo", "sac" or "recurrent-ppo") on `env_id`.

    Args:
        steps, time_budget: total env steps and/or total training seconds (evaluation excluded); at least one.
        seed: seeds the agent and the env. n_evals: evaluations over the budget (plus one at the start).
        eval_batch, eval_seed: the held-out evaluation episodes (as `train_bptt`'s).
        out_dir: where the model, normaliser, metrics and progress go (None: nothing written).
        resume: continue the run in `out_dir` up to the same total budget.
        env_kwargs: catalogue overrides for the training and evaluation envs.
        device: torch device of the env and the agent.
        overrides: settings replacing `RL_ALGOS[algo]` (e.g. `n_envs=64`, `learning_rate=1e-3`).
    """
    cls, policy_name = _algo_class(algo)
    settings = copy.deepcopy({**RL_ALGOS[algo], **overrides})  # SB3 edits policy_kwargs in place
    if steps is None and time_budget is None:
        raise ValueError("give a budget: steps (env steps) and/or time_budget (training seconds)")
    check_positive("steps", steps, int)
    check_positive("time_budget", time_budget)
    check_positive("n_evals", n_evals, int, allow_none=False)
    if steps is not None and steps < min_steps(algo, settings):
        need = "learning_starts + n_envs" if algo == "sac" else "n_steps * n_envs"
        raise ValueError(f"a budget of {steps} env steps cannot make a single {algo} update: it needs at least "
                         f"{min_steps(algo, settings)} ({need})")
    env_kwargs = dict(env_kwargs or {})
    out = Path(out_dir) if out_dir is not None else None
    if resume and (out is None or not (out / MODEL).is_file()):
        raise FileNotFoundError(f"nothing to resume: no {MODEL} in {out}")

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    n_envs = settings.pop("n_envs")
    venv = MnGymVecEnv(env_id, n_envs, device=device, **env_kwargs)
    venv.seed(seed)
    trainer = _Trainer(env_id, steps, time_budget, n_evals, eval_batch, eval_seed, env_kwargs, out, progress)
    if resume:
        venv = VecNormalize.load(str(out / NORMALIZER), VecMonitor(venv))
        model = cls.load(out / MODEL, env=venv, device=device)
        saved = torch.load(out / PROGRESS, weights_only=False)
        trainer.curve, trainer.env_steps, trainer.train_time = saved["curve"], saved["env_steps"], saved["train_time_s"]
        trainer.elapsed_before = trainer.curve[-1]["elapsed_s"] if trainer.curve else 0.0
    else:
        venv = VecNormalize(VecMonitor(venv), gamma=settings.get("gamma", 0.99))
        model = cls(policy_name, venv, seed=seed, device=device, verbose=0, tensorboard_log=_tensorboard_dir(out),
                    **settings)
    config = {"env_id": env_id, "algo": algo, "env_kwargs": env_kwargs, "steps": steps, "time_budget": time_budget,
              "seed": seed, "n_envs": n_envs, **settings, "eval_batch": eval_batch, "eval_seed": eval_seed,
              "device": str(device), "torch_threads": torch.get_num_threads()}
    try:
        if not trainer.curve:
            trainer.record(model)
        if trainer.progress() < 1.0:
            model.learn(total_timesteps=10**12, callback=_Budget(trainer),
                        reset_num_timesteps=not resume)
        if trainer.curve[-1]["env_steps"] != trainer.env_steps:
            trainer.record(model)
    finally:
        trainer.close()
        venv.close()
    return TrainResult(policy=SB3Policy(model, model.get_vec_normalize_env()), curve=trainer.curve,
                       env_steps=trainer.env_steps, train_time_s=trainer.train_time, final=trainer.curve[-1],
                       config=config)
