"""Backpropagation through time: train a policy on a differentiable env by gradient descent on its loss.

    from mn_gym.train import BPTTSettings, train_bptt
    result = train_bptt("ArmReach-v0", BPTTSettings(lr=3e-3), time_budget=600, out_dir="runs/arm")
    result.final            # {"iteration": ..., "train_time_s": ..., "eval_final_distance": ..., ...}
    result.policy           # the trained policy

One iteration = one batch of `batch_size` episodes rolled out from fresh random starts. The loss is the mean
over steps and episodes of the env's weighted loss terms (= -reward), so BPTT and RL optimise the same
objective, plus, when `activity_weight` / `activity_rate_weight` are set, activity regularisation of the policy's
hidden states: `activity_weight` * mean h^2 + `activity_rate_weight` * mean (h_t - h_{t-1})^2, means over steps,
episodes and units (`activity_loss`; a `ModularGRUPolicy`'s areas' current states, not its delay history); the
logged `train_loss` includes these terms, the held-out `eval_loss` does not. Adam, with the gradient norm clipped
to `grad_clip`. With `truncation=k` the episode is cut into
windows of k steps: the optimiser steps after each window, and the env state and policy hidden state are
detached between windows (gradients do not flow across a window boundary).

Evaluation runs every `eval_every` iterations (and before the first and after the last) on the held-out
episodes (`HeldOut`: deterministic, the same every time, never trained on): mean final hand-target distance
(m) and success rate. Budgets: `iterations` and/or `time_budget` (training seconds), see `Budget`.

Output (when `out_dir` is given): `metrics.csv` (the learning curve, rewritten at every evaluation),
`checkpoint.pt` (policy, optimiser, iteration, clocks, env id and kwargs, curve; saved at every evaluation),
and TensorBoard scalars when TensorBoard is installed.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any, get_args

import torch
from torch import Tensor, nn

import mn_gym
from mn_gym.compilation import compile_effector
from mn_gym.files import load_tensors, save_tensors
from mn_gym.functional import Env
from mn_gym.modular import ModularGRUPolicy
from mn_gym.train.common import (
    Budget,
    Clock,
    DivergedError,
    HeldOut,
    LearningCurve,
    Progress,
    TrainResult,
    check_env_kwargs,
    tensorboard_dir,
)
from mn_gym.train.settings import BPTTSettings, LRSchedule

__all__ = ["CHECKPOINT", "CURVE_FIELDS", "activity", "activity_loss", "detach_state", "load_checkpoint", "lr_factor",
           "policy_from_spec", "train_bptt"]

CURVE_FIELDS = ("iteration", "env_steps", "train_time_s", "train_cpu_s", "elapsed_s", "lr", "train_loss",
                "train_final_distance", "eval_final_distance", "eval_success_rate", "eval_loss")
CHECKPOINT = "checkpoint.pt"
DIVERGED_AFTER = 20  # non-finite iterations in a row that stop a run (`DivergedError`)



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


def lr_factor(schedule: LRSchedule, progress: float, final_fraction: float) -> float:
    """Learning-rate multiplier at `progress` in [0, 1] of the budget: 1 at the start, `final_fraction` at
    the end (cosine or exponential decay), or always 1 (constant)."""
    p = min(max(progress, 0.0), 1.0)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * p))
    if schedule == "exponential":
        return final_fraction ** p
    raise ValueError(f"lr_schedule must be one of {get_args(LRSchedule)}, got {schedule!r}")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The dict saved by `train_bptt` (policy and optimiser state dicts, iteration, curve, env id, ...), read
    weights-only and checked against the run folder's manifest (`mn_gym.files.load_tensors`)."""
    return load_tensors(path)


def _policy_spec(policy: nn.Module) -> dict[str, Any]:
    """What a checkpoint records of its policy's architecture: the class name, the sizes and, for a
    `ModularGRUPolicy`, its `config()` (`policy_from_spec` rebuilds either)."""
    spec: dict[str, Any] = {"class": type(policy).__name__}
    for key in ("n_obs", "n_muscles", "n_hidden"):
        if hasattr(policy, key):
            spec[key] = getattr(policy, key)
    if isinstance(policy, ModularGRUPolicy):
        spec["config"] = policy.config()
    return spec


def policy_from_spec(spec: dict[str, Any]) -> nn.Module:
    """A fresh (untrained) policy of the architecture a checkpoint's `policy_spec` records: a `GRUPolicy` or a
    `ModularGRUPolicy`. Raises a ValueError for another class, KeyError / TypeError for an incomplete spec."""
    if spec["class"] == "GRUPolicy":
        return mn_gym.GRUPolicy(spec["n_obs"], spec["n_muscles"], n_hidden=spec["n_hidden"])
    if spec["class"] == "ModularGRUPolicy":
        return ModularGRUPolicy.from_config(spec["config"])
    raise ValueError(f"unknown policy class {spec['class']!r} (mn_gym rebuilds GRUPolicy and ModularGRUPolicy)")


def activity(policy: nn.Module, hidden: Tensor) -> Tensor:
    """The columns of recorded hidden states (..., H) that activity regularisation penalises: the areas'
    current states of a `ModularGRUPolicy` (its delay history left out, `current_state`), all of them otherwise."""
    if hasattr(policy, "current_state"):
        return policy.current_state(hidden)
    return hidden


def activity_loss(policy: nn.Module, hidden: Tensor, previous: Tensor | None, weight: float,
                  rate_weight: float) -> Tensor | float:
    """`weight` * mean h^2 + `rate_weight` * mean (h_t - h_{t-1})^2 over steps, episodes and units, of the
    hidden states `hidden` (T, B, H) recorded by a rollout (`activity` picks the columns). The rate is the
    per-step difference, without dt (unitless, like h); h_{t-1} of the first step is `previous` (B, H), the
    state the rollout started from (None: zeros, the usual initial state). 0.0 when both weights are 0 or the
    policy has no hidden state."""
    if (weight == 0.0 and rate_weight == 0.0) or hidden.shape[-1] == 0:
        return 0.0
    h = activity(policy, hidden)
    loss = weight * h.square().mean() if weight else 0.0
    if rate_weight:
        h0 = torch.zeros_like(h[:1]) if previous is None else activity(policy, previous.reshape(1, h.shape[1], -1))
        loss = loss + rate_weight * torch.diff(torch.cat([h0, h]), dim=0).square().mean()
    return loss


def train_bptt(env_id: str, settings: BPTTSettings | None = None, *, iterations: int | None = None,
               time_budget: float | None = None, seed: int = 0, device: str | torch.device = "cpu",
               env_kwargs: dict[str, Any] | None = None, held_out: HeldOut | None = None,
               out_dir: str | Path | None = None, resume: bool | str | Path = False, progress: bool = True,
               tensorboard: bool = True, policy: nn.Module | None = None) -> TrainResult:
    """Train a policy on `env_id` by BPTT; see the module docstring for the loop, budgets and files.

    Args:
        env_id: a catalogue id (`mn_gym.list_ids()`).
        settings: the algorithm's settings (default `BPTTSettings()`, the tuned values).
        iterations, time_budget: total iterations and/or total training seconds (evaluation excluded).
        seed: seeds the policy's initialisation and the training env's generator.
        device: torch device of the envs and the policy.
        env_kwargs: catalogue overrides for `mn_gym.make` (e.g. `weights={"position": 1.0, "effort": 1e-4}`),
            for the training env and the default held-out one.
        held_out: the evaluation episodes (default `HeldOut.make(env_id, env_kwargs=env_kwargs, device=device)`).
        out_dir: where `metrics.csv`, `checkpoint.pt` (and TensorBoard logs) go; None writes nothing.
        resume: True to continue from `out_dir/checkpoint.pt`, or a checkpoint path; its env id must be `env_id`.
        progress: show the progress (`Progress`). tensorboard: log to TensorBoard when it is installed.
        policy: the network to train (`action, hidden = policy(obs, hidden)`); default a `GRUPolicy` with
            `settings.n_hidden` units (a resumed run's own), initialised from `seed`.
    """
    settings = settings or BPTTSettings()
    budget = Budget(iterations, time_budget, "iterations", "it")
    env_kwargs = check_env_kwargs(env_kwargs)
    out = Path(out_dir) if out_dir is not None else None
    if resume is True and out is None:
        raise ValueError("resume=True needs out_dir (or pass the checkpoint path as resume)")

    # ---- envs: training (noisy as catalogued unless env_kwargs say otherwise) and the held-out episodes
    env = mn_gym.make(env_id, batch_size=settings.batch_size, device=device, seed=seed, **env_kwargs)
    if settings.compile_effector:
        env = env.replace(effector=compile_effector(env.effector))
    held_out = held_out or HeldOut.make(env_id, env_kwargs=env_kwargs, device=device)
    if settings.truncation is not None and settings.truncation > env.max_steps:
        raise ValueError(f"truncation ({settings.truncation}) exceeds the episode length ({env.max_steps} steps)")

    # ---- policy, optimiser and, when resuming, where the run stopped
    checkpoint = None
    if resume:
        checkpoint = load_checkpoint(out / CHECKPOINT if resume is True else resume)
        if checkpoint["env_id"] != env_id:
            raise ValueError(f"checkpoint was made for env {checkpoint['env_id']!r}, not {env_id!r}: "
                             "resume it with the same env id, or start a new run in another out_dir")
    if policy is None:
        torch.manual_seed(seed)
        # a new GRU, or a resumed run's own architecture (sizes it does not record: this env's and the settings')
        spec = {"class": "GRUPolicy", "n_obs": env.obs_size, "n_muscles": env.action_size,
                "n_hidden": settings.n_hidden, **(checkpoint["policy_spec"] if checkpoint else {})}
        policy = policy_from_spec(spec)
    for key, size in (("n_obs", env.obs_size), ("n_muscles", env.action_size)):
        if hasattr(policy, key) and getattr(policy, key) != size:
            raise ValueError(f"policy.{key} = {getattr(policy, key)}, but {env_id} needs {size}")
    policy.to(device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=settings.lr)
    iteration, skipped, in_a_row, clock, rows = 0, 0, 0, Clock(), []
    if checkpoint is not None:
        policy.load_state_dict(checkpoint["policy"])
        optimizer.load_state_dict(checkpoint["optimizer"])
        iteration, skipped, rows = checkpoint["iteration"], checkpoint.get("skipped", 0), checkpoint["curve"]
        clock = Clock(checkpoint["train_time_s"], checkpoint.get("train_cpu_s", 0.0),
                      rows[-1]["elapsed_s"] if rows else 0.0)
        if checkpoint.get("env_generator") is not None:
            env.generator.set_state(checkpoint["env_generator"])

    config = {"env_id": env_id, "algo": settings.algo, **asdict(settings), "env_kwargs": env_kwargs,
              "policy_spec": _policy_spec(policy), "iterations": iterations, "time_budget": time_budget,
              "eval_batch": held_out.env.batch_size, "eval_seed": held_out.seed, "seed": seed, "device": str(device),
              "torch_threads": torch.get_num_threads()}
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    curve = LearningCurve(CURVE_FIELDS, out, rows, step="iteration", tensorboard=tensorboard_dir(out, tensorboard))
    bar = Progress(env_id, budget, iteration, clock.train_s, enabled=progress)
    losses: list[float] = []  # training loss and final distance of each iteration since the last evaluation
    distances: list[float] = []

    # ---- the loop: evaluate when due, stop at the budget, else train one iteration
    try:
        while True:
            fraction = budget.fraction(iteration, clock.train_s)
            lr = settings.lr * lr_factor(settings.lr_schedule, fraction, settings.lr_final)
            if not curve.rows or (curve.rows[-1]["iteration"] != iteration
                                  and (fraction >= 1.0 or iteration % settings.eval_every == 0)):
                metrics = held_out.evaluate(policy)
                curve.append({"iteration": iteration, "env_steps": iteration * settings.batch_size * env.max_steps,
                              "train_time_s": clock.train_s, "train_cpu_s": clock.cpu_s, "elapsed_s": clock.elapsed_s,
                              "lr": lr, "train_loss": _mean(losses), "train_final_distance": _mean(distances),
                              **metrics})
                losses, distances = [], []
                if out is not None:
                    save_tensors({"env_id": env_id, "env_kwargs": env_kwargs, "policy": policy.state_dict(),
                                 "policy_spec": _policy_spec(policy), "optimizer": optimizer.state_dict(),
                                 "iteration": iteration, "train_time_s": clock.train_s, "train_cpu_s": clock.cpu_s,
                                 "curve": curve.rows, "skipped": skipped, "config": config,
                                 "env_generator": env.generator.get_state()}, out / CHECKPOINT)
            if fraction >= 1.0:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr
            clock.start()
            loss, distance, ok = train_iteration(env, policy, optimizer, settings.grad_clip, settings.truncation,
                                                 settings.compile_step, settings.activity_weight,
                                                 settings.activity_rate_weight)
            clock.stop()
            iteration += 1
            if ok:
                losses.append(loss)
                distances.append(distance)
                in_a_row = 0
            else:
                skipped, in_a_row = skipped + 1, in_a_row + 1
                if skipped == 1 or skipped % 100 == 0:
                    warnings.warn(f"iteration {iteration}: non-finite loss or gradient, update skipped "
                                  f"({skipped} so far)", RuntimeWarning, stacklevel=2)
                if in_a_row >= DIVERGED_AFTER:
                    raise DivergedError(f"training diverged: {in_a_row} iterations in a row (up to {iteration}) had "
                                        f"a non-finite loss or gradient, so nothing is learnt; lower lr "
                                        f"({settings.lr}), keep grad_clip on ({settings.grad_clip}), or check the env "
                                        "settings (a stiff load or a long step)")
            bar.update(iteration, clock.train_s, loss=loss, dist=curve.rows[-1]["eval_final_distance"])
    finally:
        bar.close()
        curve.close()
    return TrainResult(policy=policy, curve=curve.rows, env_steps=int(curve.rows[-1]["env_steps"]),
                       train_time_s=clock.train_s, config=config, out_dir=out, iterations=iteration, skipped=skipped)


def _mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else math.nan


def train_iteration(env: Env, policy: nn.Module, optimizer: torch.optim.Optimizer, grad_clip: float | None,
                    truncation: int | None, compile_step: bool = False, activity_weight: float = 0.0,
                    activity_rate_weight: float = 0.0) -> tuple[float, float, bool]:
    """One batch of episodes: an update per window of `truncation` steps (the whole episode when None), each
    window a `rollout` (with `compile=compile_step`). Each window's loss is -(mean reward) plus the activity
    terms of its hidden states (`activity_loss`; none when both weights are 0).

    Returns (mean loss over the episode, activity terms included; mean final hand-target distance (m); whether
    every update was finite)."""
    window = truncation or env.max_steps
    state, obs = env.reset()
    hidden = None
    total, steps = 0.0, 0
    distance = math.nan
    while steps < env.max_steps:
        n = min(window, env.max_steps - steps)
        ro = mn_gym.rollout(env, policy, n_steps=n, state=state, obs=obs, hidden=hidden, compile=compile_step)
        loss = -ro.rewards.mean()
        if activity_weight or activity_rate_weight:
            loss = loss + activity_loss(policy, ro.hidden, hidden, activity_weight, activity_rate_weight)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        params = [p for group in optimizer.param_groups for p in group["params"] if p.grad is not None]
        norm = torch.nn.utils.clip_grad_norm_(params, grad_clip if grad_clip is not None else math.inf)
        total += loss.item() * n
        steps += n
        if not (torch.isfinite(loss) and torch.isfinite(norm)):  # no update, and the episode's rest is lost
            return total / steps, math.nan, False
        optimizer.step()
        # the next window starts where this one ended, with no gradient path back into it
        state, obs = detach_state(ro.final_state), ro.observations[-1].detach()
        hidden = detach_state(_last_hidden(ro, policy, env.batch_size))
        distance = torch.linalg.vector_norm(ro.hand[-1, :, :2] - ro.goals[-1], dim=-1).mean().item()
    return total / steps, distance, True


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
