"""What every trainer shares: the budget, the clocks, the progress display, the held-out evaluation, the learning
curve (CSV, TensorBoard) and the one `TrainResult`.

A trainer (`mn_gym.train.bptt`, `mn_gym.train.sb3`) builds its training env and model, then loops: train a
while under `Clock.start`/`Clock.stop`, evaluate on `HeldOut` episodes every so often into a `LearningCurve`,
show a `Progress`, and stop when `Budget.fraction` reaches 1.
"""

from __future__ import annotations

import csv
import importlib.util
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import torch
from torch import nn
from tqdm import tqdm

import mn_gym
from mn_gym.faces.rollout import Rollout
from mn_gym.files import atomic
from mn_gym.functional import Env

__all__ = ["EVAL_EPISODES", "EVAL_SEED", "Budget", "Clock", "DivergedError", "HeldOut", "LearningCurve", "Progress",
           "TrainResult", "check_env_kwargs", "check_positive", "start_rl_run", "tensorboard_dir"]

EVAL_EPISODES, EVAL_SEED = 1024, 12345  # the held-out evaluation of every trainer, `mn-gym eval` and the sweeps
TIME_BAR = "{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]"
COUNTERS = ("iteration", "env_steps", "train_time_s", "train_cpu_s", "elapsed_s")  # curve columns that are no scalar


def check_positive(name: str, value: Any, kind: type = float, allow_none: bool = True) -> None:
    """Raise a ValueError unless `value` is a finite number > 0 (an int when `kind` is int), or None if allowed."""
    if value is None and allow_none:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    if kind is int:
        ok = ok and isinstance(value, int)
    if not ok:
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


def check_env_kwargs(env_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """A copy of the catalogue overrides for a trainer's envs; the batch, device and seed are the trainer's own."""
    env_kwargs = dict(env_kwargs or {})
    for key in ("batch_size", "device", "seed"):
        if key in env_kwargs:
            raise ValueError(f"env_kwargs must not set {key!r}: the trainer sets it")
    return env_kwargs


# ----------------------------------------------------------------------------------------- budget, clocks
@dataclass(frozen=True)
class Budget:
    """When a run stops: after `total` counts (BPTT iterations, SB3 env steps) and/or `seconds` of training
    wall-clock (evaluation, checkpoints and logging excluded), whichever comes first. Both count from the start
    of the run, so a resumed run continues up to the same totals.

    name: what `total` counts, as the trainer's argument is called ("iterations", "steps"); unit: its short
    form on the progress bar ("it", "step")."""

    total: int | None
    seconds: float | None
    name: str
    unit: str

    def __post_init__(self) -> None:
        if self.total is None and self.seconds is None:
            raise ValueError(f"give a budget: {self.name} and/or time_budget (training seconds)")
        check_positive(self.name, self.total, int)
        check_positive("time_budget", self.seconds)

    def fraction(self, done: int, seconds: float) -> float:
        """The part of the budget used by `done` counts and `seconds` of training: the larger of the two
        (1 or more: stop)."""
        return max(done / self.total if self.total else 0.0, seconds / self.seconds if self.seconds else 0.0)


class Clock:
    """A run's seconds: training wall-clock and process CPU time (all threads), counted between `start` and
    `stop`, and elapsed wall-clock since the run began; all three continue from a resumed run's totals."""

    def __init__(self, train_s: float = 0.0, cpu_s: float = 0.0, elapsed_s: float = 0.0) -> None:
        self.train_s, self.cpu_s = train_s, cpu_s
        self._origin = time.perf_counter() - elapsed_s
        self._wall0 = self._cpu0 = 0.0

    def start(self) -> None:
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.train_s += time.perf_counter() - self._wall0
        self.cpu_s += time.process_time() - self._cpu0

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self._origin


class Progress:
    """A run's progress against its budget on `stream` (default: stderr).

    On a terminal, a tqdm bar redrawn at most every `mininterval` seconds. Anywhere else (a log file, a pipe, a
    notebook) the same text as plain lines: one at each tenth of the budget and one at the end, so logs stay short.
    With a time budget the bar counts training seconds, otherwise the budget's counts. `enabled=False` shows nothing.
    """

    def __init__(self, desc: str, budget: Budget, done: int = 0, seconds: float = 0.0, *, enabled: bool = True,
                 stream: TextIO | None = None, mininterval: float = 0.5) -> None:
        self.enabled, self.budget, self.stream = enabled, budget, stream or sys.stderr
        by_time = budget.seconds is not None
        self._format = {"prefix": desc, "total": round(budget.seconds) if by_time else budget.total,
                        "unit": "s" if by_time else budget.unit, "bar_format": TIME_BAR if by_time else None}
        self._by_time, self._start = by_time, time.perf_counter()
        self._n = self._initial = self._position(done, seconds)
        self._postfix = ""
        self._tenth = math.floor(10 * budget.fraction(done, seconds))
        self._line_n: float | None = None
        self._bar = None
        if enabled and self.stream.isatty():
            f = self._format
            self._bar = tqdm(total=f["total"], initial=self._n, unit=f["unit"], desc=desc, bar_format=f["bar_format"],
                             file=self.stream, mininterval=mininterval)

    def _position(self, done: int, seconds: float) -> float:
        return min(seconds, self._format["total"]) if self._by_time else done

    def update(self, done: int, seconds: float, **postfix: float) -> None:
        """Show `done` counts and `seconds` of training, with `postfix` values (e.g. loss, held-out distance)."""
        if not self.enabled:
            return
        self._n = self._position(done, seconds)
        self._postfix = ", ".join(f"{k}={v:.4f}" for k, v in postfix.items())
        if self._bar is not None:
            self._bar.n = self._n
            self._bar.set_postfix_str(self._postfix, refresh=False)
            self._bar.update(0)  # redraws only when `mininterval` has passed
            return
        tenth = math.floor(10 * self.budget.fraction(done, seconds))
        if tenth > self._tenth:
            self._tenth = tenth
            self._line()

    def _line(self) -> None:
        self._line_n = self._n
        f = self._format
        text = tqdm.format_meter(self._n, f["total"], time.perf_counter() - self._start, prefix=f["prefix"],
                                 unit=f["unit"], bar_format=f["bar_format"], postfix=self._postfix or None,
                                 initial=self._initial, ascii=True, ncols=100)
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self) -> None:
        """Finish the bar, or write the last line unless it was just written."""
        if self._bar is not None:
            self._bar.close()
        elif self.enabled and self._line_n != self._n:
            self._line()


# --------------------------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class HeldOut:
    """The held-out evaluation: a deterministic `env` whose batch of episodes starts from `env.reset(seed)`, so
    every evaluation (during training, `mn-gym eval`, BPTT or RL) scores a policy on the same episodes, never
    used for training. Build it with `HeldOut.make`."""

    env: Env
    seed: int

    @classmethod
    def make(cls, env_id: str, episodes: int = EVAL_EPISODES, seed: int = EVAL_SEED,
             env_kwargs: dict[str, Any] | None = None, device: str | torch.device = "cpu") -> HeldOut:
        """`episodes` held-out episodes of `env_id` (with the catalogue overrides `env_kwargs`, noise off)."""
        check_positive("evaluation episodes", episodes, int, allow_none=False)
        env = mn_gym.make(env_id, batch_size=episodes, device=device, seed=seed,
                          **{**check_env_kwargs(env_kwargs), "deterministic": True})
        return cls(env, seed)

    @torch.no_grad()
    def rollout(self, policy: nn.Module) -> Rollout:
        """The held-out episodes under `policy` (in eval mode, no gradients)."""
        was_training = policy.training
        policy.eval()
        try:
            return mn_gym.rollout(self.env, policy, seed=self.seed)
        finally:
            policy.train(was_training)

    def evaluate(self, policy: nn.Module) -> dict[str, float]:
        """Mean final hand-target distance (m), success rate (final distance <= the task's success radius) and
        mean loss (-reward per step) of `policy` on the held-out episodes."""
        ro = self.rollout(policy)
        distance = torch.linalg.vector_norm(ro.hand[-1, :, :2] - ro.goals[-1], dim=-1)
        return {"eval_final_distance": distance.mean().item(),
                "eval_success_rate": (distance <= self.env.task.success_radius).float().mean().item(),
                "eval_loss": -ro.rewards.mean().item()}


def start_rl_run(env_id: str, settings: Any, *, steps: int | None, time_budget: float | None, n_evals: int,
                 env_kwargs: dict[str, Any] | None, held_out: HeldOut | None, out_dir: str | Path | None,
                 resume: bool, checkpoint: str, device: str | torch.device
                 ) -> tuple[Budget, dict[str, Any], Path | None, HeldOut]:
    """What an RL trainer checks and builds before it trains: the `Budget` (env steps and/or seconds), the
    checked catalogue overrides, the output folder (made; with `resume` it must hold `checkpoint`) and the
    held-out episodes (`HeldOut.make` unless given). A step budget too small for one update raises."""
    budget = Budget(steps, time_budget, "steps", "step")
    check_positive("n_evals", n_evals, int, allow_none=False)
    env_kwargs = check_env_kwargs(env_kwargs)
    out = Path(out_dir) if out_dir is not None else None
    if resume and (out is None or not (out / checkpoint).is_file()):
        raise FileNotFoundError(f"nothing to resume: no {checkpoint} in {out}")
    held_out = held_out or HeldOut.make(env_id, env_kwargs=env_kwargs, device=device)
    if steps is not None:
        settings.check_steps(steps, held_out.env.max_steps)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    return budget, env_kwargs, out, held_out


# ------------------------------------------------------------------------------------------ files, curve
def tensorboard_dir(out_dir: Path | None, enabled: bool = True) -> Path | None:
    """`out_dir/tensorboard` when logging is wanted, a folder is given and TensorBoard is installed."""
    if not enabled or out_dir is None or importlib.util.find_spec("tensorboard") is None:
        return None
    return out_dir / "tensorboard"


class LearningCurve:
    """A run's learning curve: one row per evaluation (columns `fields`), rewritten to `out_dir/metrics.csv`
    (atomically) at every row, and logged as TensorBoard scalars against `row[step]` into `tensorboard`
    (a folder, or None)."""

    def __init__(self, fields: Sequence[str], out_dir: Path | None, rows: Sequence[dict[str, float]] = (), *,
                 step: str, tensorboard: Path | None = None) -> None:
        self.fields, self.out_dir, self.step = tuple(fields), out_dir, step
        self.rows: list[dict[str, float]] = list(rows)
        self._writer = None
        if tensorboard is not None:
            from torch.utils.tensorboard import SummaryWriter

            self._writer = SummaryWriter(log_dir=str(tensorboard))

    def append(self, row: dict[str, float]) -> None:
        self.rows.append(row)
        if self.out_dir is not None:
            with atomic(self.out_dir / "metrics.csv") as tmp, tmp.open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=self.fields)
                writer.writeheader()
                for r in self.rows:
                    writer.writerow({k: r.get(k, "") for k in self.fields})
        if self._writer is not None:
            for key in self.fields:
                if key not in COUNTERS and not math.isnan(row[key]):
                    self._writer.add_scalar(key, row[key], int(row[self.step]))
            self._writer.add_scalar("eval_final_distance_vs_time", row["eval_final_distance"], int(row["train_time_s"]))
            self._writer.flush()

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()


class DivergedError(RuntimeError):
    """Training that cannot go on: the loss, gradient, observations or rewards stopped being finite."""


@dataclass
class TrainResult:
    """What every trainer returns.

    policy: the trained policy, `(obs, hidden) -> (excitation, hidden)`. curve: one row per held-out evaluation
    (the trainer's `CURVE_FIELDS`). env_steps: env steps trained (summed over the batch). train_time_s: training
    wall-clock (s, evaluation excluded). config: the run's settings, budget, seeds and device. out_dir: where the
    files went (None: nothing written). iterations: BPTT iterations done (None for SB3, which counts env steps).
    skipped: BPTT iterations whose loss or gradient was not finite (no update made; 0 for SB3).
    """

    policy: nn.Module
    curve: list[dict[str, float]]
    env_steps: int
    train_time_s: float
    config: dict[str, Any]
    out_dir: Path | None = None
    iterations: int | None = None
    skipped: int = 0

    @property
    def final(self) -> dict[str, float]:
        """The last curve row (the evaluation at the end of the budget)."""
        return self.curve[-1]
