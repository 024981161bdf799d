"""Backpropagation through time: train a policy on a differentiable env by gradient descent on its loss.

    from mn_gym.train import train_bptt
    result = train_bptt("ArmReach-v0", time_budget=600, out_dir="runs/arm")
    result.curve[-1]        # {"iteration": ..., "train_time_s": ..., "eval_final_distance": ..., ...}
    result.policy           # the trained policy

One iteration = one batch of `batch_size` episodes rolled out from fresh random starts. The loss is the mean
over steps and episodes of the env's weighted loss terms (= -reward), so BPTT and RL optimise the same
objective. Adam, with the gradient norm clipped to `grad_clip`. With `truncation=k` the episode is cut into
windows of k steps: the optimiser steps after each window, and the env state and policy hidden state are
detached between windows (gradients do not flow across a window boundary).

Evaluation runs every `eval_every` iterations (and before the first and after the last) on a separate,
deterministic env seeded with `eval_seed`: the same `eval_batch` held-out starts and targets every time,
never used for training. It reports the mean final hand-target distance (m) and the success rate.

Budgets: `iterations` (total iterations) and/or `time_budget` (total seconds of *training* wall-clock:
rollouts, backward passes and optimiser steps; evaluation, checkpointing and logging are not counted).
At least one is required; with both, training stops at whichever is reached first. Both count from the
start of the run, so a resumed run continues up to the same totals.

Output (when `out_dir` is given): `metrics.csv` (the learning curve, rewritten at every evaluation),
`checkpoint.pt` (policy, optimiser, iteration, training time, env id and kwargs, curve; saved at every
evaluation), and TensorBoard scalars when `torch.utils.tensorboard` can be imported.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

import mn_gym
from mn_gym.functional import Env

CURVE_FIELDS = ("iteration", "env_steps", "train_time_s", "train_cpu_s", "elapsed_s", "lr", "train_loss",
                "train_final_distance", "eval_final_distance", "eval_success_rate", "eval_loss")
LR_SCHEDULES = ("constant", "cosine", "exponential")
CHECKPOINT = "checkpoint.pt"
METRICS = "metrics.csv"


@dataclass
class TrainResult:
    """What `train_bptt` returns.

    policy: the trained policy. curve: one dict per evaluation (keys `CURVE_FIELDS`; `train_cpu_s` is the
    process CPU time spent training, all threads: other load on the machine inflates it less than wall time).
    iterations: total iterations done. train_time_s: total training wall-clock (s, evaluation excluded).
    final: the last curve row. config: the run's settings. out_dir: where files were written (or None).
    skipped: iterations whose loss or gradient was not finite (no update made).
    """

    policy: nn.Module
    curve: list[dict[str, float]]
    iterations: int
    train_time_s: float
    final: dict[str, float]
    config: dict[str, Any]
    out_dir: Path | None = None
    skipped: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------------------------- helpers
def detach_state(x: Any) -> Any:
    """A copy of a (nested) state with every tensor detached: NamedTuples, tuples, lists, dicts, None."""
    if isinstance(x, Tensor):
        return x.detach()
    if x is None:
        return None
    if isinstance(x, tuple) and hasattr(x, "_fields"):  # NamedTuple
        return type(x)(*(detach_state(v) for v in x))
    if isinstance(x, (tuple, list)):
        return type(x)(detach_state(v) for v in x)
    if isinstance(x, dict):
        return {k: detach_state(v) for k, v in x.items()}
    return x


def lr_factor(schedule: str, progress: float, final_fraction: float) -> float:
    """Learning-rate multiplier at `progress` in [0, 1] of the budget: 1 at the start, `final_fraction` at
    the end (cosine or exponential decay), or always 1 (constant)."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "exponential":
        return final_fraction ** p
    raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {schedule!r}")


def check_positive(name: str, value: Any, kind: type = float, allow_none: bool = True) -> None:
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


@torch.no_grad()
def evaluate(env: Env, policy: nn.Module, seed: int) -> dict[str, float]:
    """Mean final hand-target distance (m), success rate and mean loss of `policy` on `env`'s batch of
    episodes started from `env.reset(seed)` (the same episodes for the same seed)."""
    was_training = policy.training
    policy.eval()
    try:
        ro = mn_gym.rollout(env, policy, seed=seed)
    finally:
        policy.train(was_training)
    distance = torch.linalg.vector_norm(ro.hand[-1, :, :2] - ro.goals[-1], dim=-1)
    return {"eval_final_distance": distance.mean().item(),
            "eval_success_rate": (distance <= env.task.success_radius).float().mean().item(),
            "eval_loss": -ro.rewards.mean().item()}


def _policy_spec(policy: nn.Module) -> dict[str, Any]:
    spec: dict[str, Any] = {"class": type(policy).__name__}
    for key in ("n_obs", "n_muscles", "n_hidden"):
        if hasattr(policy, key):
            spec[key] = getattr(policy, key)
    return spec


def write_csv(path: Path, curve: list[dict[str, float]], fields: tuple[str, ...]) -> None:
    """Write the learning curve (one row per dict, columns `fields`) atomically."""
    tmp = path.with_suffix(".csv.tmp")
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=fields)
        writer.writeheader()
        for row in curve:
            writer.writerow({k: row.get(k, "") for k in fields})
    tmp.replace(path)


def _open_tensorboard(out_dir: Path | None, enabled: bool) -> Any:
    if out_dir is None or not enabled:
        return None
    try:
        from torch.utils.tensorboard import SummaryWriter
    except Exception:  # tensorboard not installed: optional
        return None
    return SummaryWriter(log_dir=str(out_dir / "tensorboard"))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict saved by `train_bptt` (policy and optimiser state dicts, iteration, curve, env id, ...)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no checkpoint at {path}")
    return torch.load(path, map_location="cpu", weights_only=False)


# --------------------------------------------------------------------------------------------- trainer
def train_bptt(
    env_id: str,
    *,
    policy: nn.Module | None = None,
    n_hidden: int = 32,
    batch_size: int = 64,
    lr: float = 1e-3,
    lr_schedule: str = "constant",
    lr_final: float = 0.1,
    iterations: int | None = None,
    time_budget: float | None = None,
    grad_clip: float | None = 1.0,
    truncation: int | None = None,
    eval_every: int = 50,
    eval_batch: int = 1024,
    eval_seed: int = 12345,
    out_dir: str | Path | None = None,
    resume: bool | str | Path = False,
    progress: bool = True,
    tensorboard: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    seed: int = 0,
    device: str | torch.device = "cpu",
    compile_effector: bool = False,
) -> TrainResult:
    """Train a policy on `env_id` by BPTT; see the module docstring for the loop, budgets and files.

    Args:
        env_id: a catalogue id (`mn_gym.list_ids()`).
        policy: the network to train (`action, hidden = policy(obs, hidden)`); default a `GRUPolicy` with
            `n_hidden` units, initialised from `seed`.
        batch_size: episodes per iteration. lr: Adam's learning rate (peak, when a schedule decays it).
        lr_schedule: "constant", "cosine" or "exponential": decay from `lr` to `lr * lr_final` over the budget
            (progress = the larger of iterations done / `iterations` and training time / `time_budget`).
        iterations, time_budget: total iterations and/or total training seconds (evaluation excluded).
        grad_clip: maximum gradient norm (None: no clipping).
        truncation: steps per truncated-BPTT window (None: the whole episode, one update per iteration).
        eval_every: iterations between evaluations. eval_batch, eval_seed: the held-out evaluation episodes.
        out_dir: where `metrics.csv`, `checkpoint.pt` (and TensorBoard logs) go; None writes nothing.
        resume: True to continue from `out_dir/checkpoint.pt`, or a checkpoint path. The checkpoint's env id
            must be `env_id`.
        progress: show a tqdm progress bar. tensorboard: log to TensorBoard when it is installed.
        env_kwargs: overrides for `mn_gym.make` (e.g. `weights={"position": 1.0, "effort": 1e-4}`); the
            evaluation env gets the same ones, plus `deterministic=True`.
        seed: seeds the policy's initialisation and the training env's generator.
        device: torch device of the env and the policy.
        compile_effector: run the training env's effector under `torch.compile` (`compile_effector`).
    """
    # ---- arguments
    if iterations is None and time_budget is None:
        raise ValueError("give a budget: iterations (total iterations) and/or time_budget (training seconds)")
    check_positive("iterations", iterations, int)
    check_positive("time_budget", time_budget)
    check_positive("batch_size", batch_size, int, allow_none=False)
    check_positive("eval_batch", eval_batch, int, allow_none=False)
    check_positive("eval_every", eval_every, int, allow_none=False)
    check_positive("lr", lr, allow_none=False)
    check_positive("grad_clip", grad_clip)
    check_positive("truncation", truncation, int)
    if lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {lr_schedule!r}")
    if not (isinstance(lr_final, (int, float)) and 0 < lr_final <= 1):
        raise ValueError(f"lr_final must be in (0, 1] (a fraction of lr), got {lr_final!r}")
    env_kwargs = dict(env_kwargs or {})
    for key in ("batch_size", "device", "seed"):
        if key in env_kwargs:
            raise ValueError(f"env_kwargs must not set {key!r}: it is a train_bptt argument")
    out = Path(out_dir) if out_dir is not None else None
    if resume is True and out is None:
        raise ValueError("resume=True needs out_dir (or pass the checkpoint path as resume)")

    # ---- envs: training (noisy as catalogued unless env_kwargs say otherwise) and held-out evaluation
    env = mn_gym.make(env_id, batch_size=batch_size, device=device, seed=seed, **env_kwargs)
    eval_env = mn_gym.make(env_id, batch_size=eval_batch, device=device, seed=eval_seed,
                           **{**env_kwargs, "deterministic": True})
    if compile_effector:
        env = env.replace(effector=compile_effector(env.effector))
    if truncation is not None and truncation > env.max_steps:
        raise ValueError(f"truncation ({truncation}) exceeds the episode length ({env.max_steps} steps)")

    # ---- policy and optimiser
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(out / CHECKPOINT if resume is True else resume)
        if checkpoint["env_id"] != env_id:
            raise ValueError(f"checkpoint was made for env {checkpoint['env_id']!r}, not {env_id!r}: "
                             "resume it with the same env id, or start a new run in another out_dir")
        if policy is None:
            n_hidden = checkpoint["policy_spec"].get("n_hidden", n_hidden)
    if policy is None:
        torch.manual_seed(seed)
        policy = mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=n_hidden)
    for key, size in (("n_obs", env.obs_size), ("n_muscles", env.action_size)):
        if hasattr(policy, key) and getattr(policy, key) != size:
            raise ValueError(f"policy.{key} = {getattr(policy, key)}, but {env_id} needs {size}")
    policy.to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)

    iteration, train_time, train_cpu, curve, skipped = 0, 0.0, 0.0, [], 0
    if checkpoint is not None:
        policy.load_state_dict(checkpoint["policy"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        iteration, train_time = checkpoint["iteration"], checkpoint["train_time_s"]
        train_cpu = checkpoint.get("train_cpu_s", 0.0)
        curve, skipped = list(checkpoint["curve"]), checkpoint.get("skipped", 0)
        if checkpoint.get("env_generator") is not None:
            env.generator.set_state(checkpoint["env_generator"])

    config = {"env_id": env_id, "env_kwargs": env_kwargs, "policy_spec": _policy_spec(policy),
              "batch_size": batch_size, "lr": lr, "lr_schedule": lr_schedule, "lr_final": lr_final,
              "iterations": iterations, "time_budget": time_budget, "grad_clip": grad_clip, "truncation": truncation,
              "eval_every": eval_every, "eval_batch": eval_batch, "eval_seed": eval_seed, "seed": seed,
              "device": str(device), "compile_effector": compile_effector, "torch_threads": torch.get_num_threads()}

    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    writer = _open_tensorboard(out, tensorboard)

    def budget_progress() -> float:
        parts = []
        if iterations is not None:
            parts.append(iteration / iterations)
        if time_budget is not None:
            parts.append(train_time / time_budget)
        return max(parts)

    def current_lr() -> float:
        return lr * lr_factor(lr_schedule, budget_progress(), lr_final)

    def save_checkpoint() -> None:
        if out is None:
            return
        state = {"env_id": env_id, "env_kwargs": env_kwargs, "policy": policy.state_dict(),
                 "policy_spec": _policy_spec(policy), "optimizer": optimizer.state_dict(), "iteration": iteration,
                 "train_time_s": train_time, "train_cpu_s": train_cpu, "curve": curve, "skipped": skipped,
                 "config": config, "env_generator": env.generator.get_state()}
        tmp = out / (CHECKPOINT + ".tmp")
        torch.save(state, tmp)
        tmp.replace(out / CHECKPOINT)

    start_wall = time.perf_counter() - (curve[-1]["elapsed_s"] if curve else 0.0)
    window_losses: list[float] = []
    window_distances: list[float] = []

    def record() -> dict[str, float]:
        row = {"iteration": iteration, "env_steps": iteration * batch_size * env.max_steps,
               "train_time_s": train_time, "train_cpu_s": train_cpu, "elapsed_s": math.nan, "lr": current_lr(),
               "train_loss": sum(window_losses) / len(window_losses) if window_losses else math.nan,
               "train_final_distance": (sum(window_distances) / len(window_distances)
                                        if window_distances else math.nan),
               **evaluate(eval_env, policy, eval_seed)}
        row["elapsed_s"] = time.perf_counter() - start_wall
        curve.append(row)
        window_losses.clear()
        window_distances.clear()
        if out is not None:
            write_csv(out / METRICS, curve, CURVE_FIELDS)
            save_checkpoint()
        if writer is not None:
            for key in CURVE_FIELDS[5:]:
                if not math.isnan(row[key]):
                    writer.add_scalar(key, row[key], iteration)
            writer.add_scalar("eval_final_distance_vs_time", row["eval_final_distance"], int(row["train_time_s"]))
            writer.flush()
        return row

    def done() -> bool:
        return budget_progress() >= 1.0

    # ---- the loop
    bar = None
    if progress:
        from tqdm.auto import tqdm
        if iterations is not None and time_budget is None:
            bar = tqdm(total=iterations, initial=iteration, unit="it", desc=env_id)
        else:
            bar = tqdm(total=round(time_budget), initial=round(train_time), unit="s", desc=env_id,
                       bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]")
    if not curve:
        record()
    try:
        while not done():
            t0, c0 = time.perf_counter(), time.process_time()
            for group in optimizer.param_groups:
                group["lr"] = current_lr()
            loss, distance, ok = _train_episode(env, policy, optimizer, grad_clip, truncation)
            train_time += time.perf_counter() - t0
            train_cpu += time.process_time() - c0
            iteration += 1
            if ok:
                window_losses.append(loss)
                window_distances.append(distance)
            else:
                skipped += 1
                if skipped == 1 or skipped % 100 == 0:
                    warnings.warn(f"iteration {iteration}: non-finite loss or gradient, update skipped "
                                  f"({skipped} so far)", RuntimeWarning, stacklevel=2)
            if bar is not None:
                bar.n = iteration if bar.unit == "it" else min(train_time, bar.total)
                bar.set_postfix(loss=f"{loss:.4f}", dist=f"{curve[-1]['eval_final_distance']:.4f}", refresh=False)
                bar.refresh()
            if iteration % eval_every == 0 and not done():
                record()
        if not curve or curve[-1]["iteration"] != iteration:
            record()
    finally:
        if bar is not None:
            bar.close()
        if writer is not None:
            writer.close()
    return TrainResult(policy=policy, curve=curve, iterations=iteration, train_time_s=train_time, final=curve[-1],
                       config=config, out_dir=out, skipped=skipped)


def _train_episode(env: Env, policy: nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float | None,
                   truncation: int | None) -> tuple[float, float, bool]:
    """One batch of episodes: an update per window (the whole episode when `truncation` is None).

    Returns (mean loss over the episode, mean final distance, whether every update was finite)."""
    window = truncation or env.max_steps
    state, obs = env.reset()
    hidden = None
    total, steps, ok = 0.0, 0, True
    distance = math.nan
    while steps < env.max_steps:
        n = min(window, env.max_steps - steps)
        ro = mn_gym.rollout(env, policy, n_steps=n, state=state, obs=obs, hidden=hidden)
        loss = -ro.rewards.mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip is not None else math.inf)
        if torch.isfinite(loss) and torch.isfinite(norm):
            optimizer.step()
        else:
            ok = False
        total += loss.item() * n
        steps += n
        # the next window starts where this one ended, with no gradient path back into it
        state, obs = detach_state(ro.final_state), ro.observations[-1].detach()
        hidden = detach_state(_last_hidden(ro, policy, env.batch_size))
        distance = torch.linalg.vector_norm(ro.hand[-1, :, :2] - ro.goals[-1], dim=-1).mean().item()
    return total / steps, distance, ok


def _last_hidden(ro: mn_gym.Rollout, policy: nn.Module, batch_size: int) -> Any:
    """The policy's hidden state after the rollout's last step (rollouts record it flattened, (T, B, H))."""
    if ro.hidden.shape[-1] == 0:
        if hasattr(policy, "initial_hidden") and policy.initial_hidden(batch_size) is not None:
            raise NotImplementedError("truncated BPTT needs a policy whose hidden state is one tensor")
        return None
    h = ro.hidden[-1]
    if hasattr(policy, "initial_hidden"):
        h = h.reshape(policy.initial_hidden(batch_size).shape)
    return h
