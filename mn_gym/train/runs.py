"""Training runs as folders: one entry point for BPTT and the stable-baselines3 agents, safe output, evaluation.

    from mn_gym.train.runs import train, evaluate_run
    summary = train("ArmReach-v0", "ppo", "runs/arm-ppo", minutes=5)
    evaluate_run("runs/arm-ppo")          # success rate, mean final distance, trajectory plot

A run folder holds `run.json` (env, algo, seed, settings), `metrics.csv` (the learning curve: held-out mean final
distance and success rate vs env steps and training wall-clock), the trained policy (`checkpoint.pt` for BPTT
and rsl-ppo, `agent.pt` for SB3: weights-only torch files), `curve.png`, `trajectories.png` and, once finished,
`summary.json` and `manifest.json` (the SHA-256 of every file). A run folder is data, never code: loading reads
weights only and checks each file against the manifest, so a damaged or altered file is refused by name
(`mn_gym.files`).

Good results are never partly overwritten: a run trains in a hidden sibling folder (`.<name>.partial`) and
replaces the output folder only when it has finished. A finished folder is replaced only with `overwrite=True`;
an interrupted run is continued with `resume=True` (which also extends a finished run to a larger budget).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import torch

import mn_gym
from mn_gym import plots
from mn_gym.files import MANIFEST, BadFileError, check_file, check_folder, load_tensors, record, write_manifest
from mn_gym.train.bptt import CHECKPOINT, load_checkpoint, policy_from_spec, train_bptt
from mn_gym.train.common import EVAL_EPISODES, EVAL_SEED, HeldOut
from mn_gym.train.hyperparams import tuned
from mn_gym.train.settings import ALGOS, SETTINGS, Settings

__all__ = ["ALGOS", "RunError", "check_request", "differences", "evaluate_run", "load_policy", "load_run", "recorded",
           "resumable", "train"]

RUN_FILE, SUMMARY, CURVE_PNG, TRAJ_PNG = "run.json", "summary.json", "curve.png", "trajectories.png"
SUCCESS_THRESHOLD = 0.8
TRAJECTORY_EPISODES = 16  # episodes drawn in trajectories.png
POLICY_FILE = {"bptt": "checkpoint.pt", "rsl-ppo": "checkpoint.pt", "ppo": "agent.pt", "sac": "agent.pt",
               "recurrent-ppo": "agent.pt"}  # each trainer's CHECKPOINT / AGENT: what resume and eval read
RUN_KEYS = {"env_id": str, "algo": str, "seed": int, "settings": dict, "env_kwargs": dict}  # in every run.json


class RunError(ValueError):
    """A run that cannot start or finish as asked (bad env, algo, budget, folder or checkpoint)."""


# ------------------------------------------------------------------------------------------ validation
def check_device(device: str | torch.device) -> None:
    """Raise `RunError` unless `device` names a torch device this machine has."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise RunError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RunError(f"device {device!r}: this torch build or machine has no CUDA GPU (torch {torch.__version__})")
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise RunError(f"device {device!r}: this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise RunError(f"device {device!r}: MPS is not available here")


def check_request(env_id: str, algo: str, minutes: float | None, steps: int | None, settings: Settings | None = None,
                  eval_batch: int = EVAL_EPISODES, env_kwargs: dict[str, Any] | None = None,
                  device: str | torch.device = "cpu") -> Settings:
    """Raise `RunError` for an unknown env or algo, a missing or impossible budget, settings of another algo, bad
    env settings, a device this machine lacks or a non-positive number of evaluation episodes; return the
    settings (when None: `algo`'s tuned settings for `env_id`, `mn_gym.train.hyperparams.tuned`)."""
    if env_id not in mn_gym.list_ids():
        raise RunError(f"unknown env id {env_id!r}; registered: {', '.join(mn_gym.list_ids())}")
    if algo not in ALGOS:
        raise RunError(f"unknown algo {algo!r}; choose one of {', '.join(ALGOS)}")
    settings = tuned(algo, env_id) if settings is None else settings
    if settings.algo != algo:
        raise RunError(f"{type(settings).__name__} are {settings.algo} settings, not {algo} ones")
    if minutes is None and steps is None:
        raise RunError("give a budget: minutes of training and/or env steps")
    if minutes is not None and not (isinstance(minutes, (int, float)) and math.isfinite(minutes) and minutes > 0):
        raise RunError(f"the time budget must be a positive number of minutes, got {minutes!r}")
    if steps is not None and not (isinstance(steps, int) and steps > 0):
        raise RunError(f"the step budget must be a positive integer number of env steps, got {steps!r}")
    if not (isinstance(eval_batch, int) and eval_batch > 0):
        raise RunError(f"evaluation episodes must be a positive integer, got {eval_batch!r}")
    check_device(device)
    try:  # the env settings, checked by building the env once
        mn_gym.make(env_id, batch_size=1, **(env_kwargs or {}))
    except (TypeError, ValueError) as exc:
        raise RunError(f"env settings {env_kwargs}: {exc}") from None
    if steps is not None:
        try:
            settings.check_steps(steps, mn_gym.spec(env_id, **(env_kwargs or {})).max_steps)
        except ValueError as exc:
            raise RunError(str(exc)) from None
    return settings


def check_writable(out: Path) -> None:
    """Raise `RunError` unless `out` can be created (or exists as a folder) and its parent takes new files."""
    if out.exists() and not out.is_dir():
        raise RunError(f"output folder {out} exists and is not a folder")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=out.parent, prefix=".mn_gym-write-test-"):
            pass
    except OSError as exc:
        raise RunError(f"output folder {out} is not writable: {exc}") from exc


def load_run(run_dir: str | Path) -> dict[str, Any]:
    """The `run.json` of a run folder (env id, algo, seed, settings), checked; else a `RunError`."""
    path = Path(run_dir) / RUN_FILE
    if not path.is_file():
        raise RunError(f"{run_dir} is not an mn_gym run folder (no {RUN_FILE})")
    check_file(path)
    try:
        run = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise RunError(f"{path} is not valid JSON: {exc}") from None
    missing = [k for k in RUN_KEYS if not isinstance(run, dict) or k not in run]
    if missing:
        raise RunError(f"{path} is incomplete: it lacks {', '.join(missing)}")
    for key, kind in RUN_KEYS.items():
        if not isinstance(run[key], kind) or (kind is int and isinstance(run[key], bool)):
            raise RunError(f"{path}: {key!r} must be a {kind.__name__}, got {run[key]!r}")
    return run


def _partial(out: Path) -> Path:
    return out.parent / f".{out.name}.partial"


def recorded(out: str | Path) -> dict[str, Any]:
    """The `run.json` of the run that `resume` would continue in `out`: its unfinished sibling's, else its own."""
    out = Path(out)
    source = _partial(out) if _partial(out).is_dir() else out
    if not (source / RUN_FILE).is_file():
        raise RunError(f"nothing to resume in {out}: no run was started there")
    return load_run(source)


def resumable(out: str | Path, algo: str) -> bool:
    """Whether `out` has an unfinished `algo` run with a checkpoint to continue (`train(..., resume=True)`)."""
    partial = _partial(Path(out))
    return (partial / RUN_FILE).is_file() and (partial / POLICY_FILE[algo]).is_file()


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value))


def differences(run: dict[str, Any], seed: int | None, settings: Settings | None,
                env_kwargs: dict[str, Any] | None) -> list[str]:
    """What differs between a recorded run (`load_run`'s dict) and the seed, settings and env settings asked
    (None: not asked), one phrase each: "seed 0 (asked 1)"."""
    conflicts = []
    if seed is not None and seed != run["seed"]:
        conflicts.append(f"seed {run['seed']} (asked {seed})")
    if settings is not None:  # a setting a run does not record came later: the run had its default
        ran = {**_jsonable(asdict(type(settings)())), **run["settings"]}
        conflicts += [f"{key} {ran.get(key)!r} (asked {value!r})"
                      for key, value in _jsonable(asdict(settings)).items() if value != ran.get(key)]
    if env_kwargs is not None and _jsonable(env_kwargs) != run["env_kwargs"]:
        conflicts.append(f"env settings {run['env_kwargs']} (asked {env_kwargs})")
    return conflicts


def _resumed(out: Path, env_id: str, algo: str, seed: int | None, settings: Settings | None,
             env_kwargs: dict[str, Any] | None) -> tuple[int, Settings, dict[str, Any]]:
    """(seed, settings, env settings) a resumed run continues with: the recorded ones. A value the caller gives
    (not None) must equal the recorded one: a `RunError` names each that differs."""
    run = recorded(out)
    if (run["env_id"], run["algo"]) != (env_id, algo):
        raise RunError(f"the run in {out} is {run['algo']} on {run['env_id']}, not {algo} on {env_id}: "
                       "a checkpoint only continues on its own env and algo; choose another --out")
    conflicts = differences(run, seed, settings, env_kwargs)
    if conflicts:
        raise RunError(f"--resume continues the run in {out} as it was recorded, and these differ: "
                       f"{'; '.join(conflicts)}. Leave them out to continue it, or start a new run (another --out, "
                       "or --overwrite)")
    try:
        return run["seed"], SETTINGS[algo].from_dict(run["settings"]), run["env_kwargs"]
    except (TypeError, ValueError) as exc:
        raise RunError(f"the recorded settings of {out} no longer fit this mn_gym: {exc}") from None


def _workdir(out: Path, algo: str, resume: bool, overwrite: bool) -> Path:
    """The folder to train in (the staging sibling), prepared for a fresh or a resumed run."""
    partial = _partial(out)
    finished = (out / SUMMARY).is_file()
    if resume:
        source = partial if partial.is_dir() else out
        if source == out:  # check the finished run before it is copied to be continued
            check_folder(out)
            load_tensors(out / POLICY_FILE[algo])
            shutil.copytree(out, partial)
            (partial / MANIFEST).unlink(missing_ok=True)  # a working folder: the manifest is written at publishing
        return partial
    if partial.exists() and not overwrite:
        raise RunError(f"an unfinished run of {out} is in {partial}: pass --resume to continue it or --overwrite "
                       "to discard it")
    if out.exists() and any(out.iterdir()) and not overwrite:
        what = "a finished run" if finished else "files"
        raise RunError(f"{out} already holds {what}; pass --overwrite to replace it (kept until the new run "
                       "finishes), --resume to continue it, or choose another --out")
    if partial.exists():
        shutil.rmtree(partial)
    partial.mkdir(parents=True)
    return partial


@contextmanager
def _writer_lock(out: Path) -> Iterator[None]:
    """Hold the one-writer lock of the run folder `out` (`.<name>.lock` beside it, an exclusive `flock`, freed
    when the process ends however it ends); a second writer gets a `RunError` at once instead of a mixed folder."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out.parent / f".{out.name}.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise RunError(f"another mn-gym run is writing {out} ({f.read().strip() or 'a process'}): wait for it "
                           "to end, or choose another --out") from None
        f.seek(0)
        f.truncate()
        f.write(f"pid {os.getpid()} on {platform.node()}")
        f.flush()
        try:
            yield
        finally:
            f.truncate(0)
            fcntl.flock(f, fcntl.LOCK_UN)


def _publish(partial: Path, out: Path) -> None:
    """Write the finished `partial` folder's manifest, then replace `out` by it (the old results survive until
    the swap)."""
    write_manifest(partial)
    old = out.parent / f".{out.name}.old"
    if old.exists():
        shutil.rmtree(old)
    if out.exists():
        out.replace(old)
    partial.replace(out)
    if old.exists():
        shutil.rmtree(old)


# ---------------------------------------------------------------------------------------------- train
def train(env_id: str, algo: str, out: str | Path, *, settings: Settings | None = None, seed: int | None = None,
          minutes: float | None = None, steps: int | None = None, device: str = "cpu", resume: bool = False,
          overwrite: bool = False, progress: bool = True, env_kwargs: dict[str, Any] | None = None,
          eval_batch: int = EVAL_EPISODES, eval_seed: int = EVAL_SEED, success_threshold: float = SUCCESS_THRESHOLD,
          command: str | None = None) -> dict[str, Any]:
    """Train `algo` on `env_id` into the run folder `out`; return the summary (also in `out/summary.json`).

    Budgets: `minutes` of training wall-clock (evaluation excluded) and/or `steps` env steps; training stops
    at whichever comes first. `settings`: the algo's (`mn_gym.train.settings.SETTINGS[algo]`; default its tuned
    values for `env_id`, `mn_gym.train.hyperparams.tuned`); `env_kwargs`: catalogue overrides; `seed`: default
    0. With `resume`, the run continues with the seed, settings and env settings its `run.json` records; any of
    them given here must equal the recorded value (else a `RunError` naming it). Evaluation: the
    held-out episodes of `eval_batch` starts seeded with `eval_seed`. The summary reports the final and best
    held-out distance and success rate, and the env steps and training seconds at which the success rate first
    reached `success_threshold` (None when it never did)."""
    out = Path(out)
    check_writable(out)
    with _writer_lock(out):
        return _train(env_id, algo, out, settings, seed, minutes, steps, device, resume, overwrite, progress,
                      env_kwargs, eval_batch, eval_seed, success_threshold, command)


def _train(env_id: str, algo: str, out: Path, settings: Settings | None, seed: int | None, minutes: float | None,
           steps: int | None, device: str, resume: bool, overwrite: bool, progress: bool,
           env_kwargs: dict[str, Any] | None, eval_batch: int, eval_seed: int, success_threshold: float,
           command: str | None) -> dict[str, Any]:
    """`train` under the folder's writer lock."""
    if resume:
        seed, settings, env_kwargs = _resumed(out, env_id, algo, seed, settings, env_kwargs)
    seed, env_kwargs = 0 if seed is None else seed, dict(env_kwargs or {})
    settings = check_request(env_id, algo, minutes, steps, settings, eval_batch, env_kwargs, device)
    fresh = not (resume and _partial(out).is_dir())  # this call makes the working folder
    work = _workdir(out, algo, resume, overwrite)
    checkpoint = work / POLICY_FILE[algo]
    before = checkpoint.stat().st_mtime_ns if checkpoint.is_file() else None
    try:
        run = {"env_id": env_id, "algo": algo, "seed": seed, "settings": asdict(settings),
               "env_kwargs": env_kwargs, "device": device, "mn_gym_version": mn_gym.__version__}
        (work / RUN_FILE).write_text(json.dumps(run, indent=2) + "\n")
        started = time.time()
        # the held-out episodes, built once: the trainer evaluates on them; they give the episode length, radius
        held_out = HeldOut.make(env_id, eval_batch, eval_seed, env_kwargs, device)
        time_budget = None if minutes is None else 60.0 * minutes
        common = {"time_budget": time_budget, "seed": seed, "device": device, "env_kwargs": env_kwargs,
                  "held_out": held_out, "out_dir": work, "resume": resume, "progress": progress}
        if algo == "bptt":
            iterations = None if steps is None else steps // (settings.batch_size * held_out.env.max_steps)
            if minutes is None:  # a step budget alone: about 20 evaluations over it (run.json keeps the setting)
                settings = replace(settings, eval_every=max(1, iterations // 20))
            result = train_bptt(env_id, settings, iterations=iterations, **common)
        elif algo == "rsl-ppo":
            from mn_gym.train.rsl import train_rsl_ppo  # rsl-rl-lib is imported for its runs only

            result = train_rsl_ppo(env_id, settings, steps=steps, **common)
        else:
            from mn_gym.train.sb3 import train_sb3  # stable-baselines3 is imported for RL runs only

            result = train_sb3(env_id, settings, steps=steps, **common)
        summary = _summary(run, result.curve, result.train_time_s, success_threshold, minutes, steps, command,
                           started)
        plots.learning_curves({algo: [result.curve]}, work / CURVE_PNG, _title(summary),
                              held_out.env.task.success_radius)
        _plot_trajectories(env_id, env_kwargs, result.policy, work / TRAJ_PNG, eval_seed, _title(summary))
        (work / SUMMARY).write_text(json.dumps(summary, indent=2) + "\n")
    except BaseException:
        # a run that fails before it saved a checkpoint of its own leaves nothing that blocks a rerun
        if fresh and (checkpoint.stat().st_mtime_ns if checkpoint.is_file() else None) == before:
            shutil.rmtree(work, ignore_errors=True)
        raise
    _publish(work, out)
    return summary


def _title(summary: dict[str, Any]) -> str:
    return (f"{summary['env_id']}: {summary['algo']}, seed {summary['seed']}, {summary['env_steps']:,} env steps, "
            f"{summary['train_time_s'] / 60:.1f} min -> {100 * summary['final_eval_distance_m']:.2f} cm, "
            f"{100 * summary['final_eval_success_rate']:.0f} % success")


def _summary(run: dict[str, Any], curve: list[dict[str, float]], train_time: float, threshold: float,
             minutes: float | None, steps: int | None, command: str | None, started: float) -> dict[str, Any]:
    final = curve[-1]
    best = min(curve, key=lambda r: r["eval_final_distance"])
    reached = next((r for r in curve if r["eval_success_rate"] >= threshold), None)
    return {
        "env_id": run["env_id"], "algo": run["algo"], "seed": run["seed"],
        "final_eval_distance_m": final["eval_final_distance"], "final_eval_success_rate": final["eval_success_rate"],
        "best_eval_distance_m": best["eval_final_distance"], "env_steps": int(final["env_steps"]),
        "train_time_s": train_time, "elapsed_s": final["elapsed_s"], "success_threshold": threshold,
        "threshold_env_steps": None if reached is None else int(reached["env_steps"]),
        "threshold_time_s": None if reached is None else reached["train_time_s"],
        "budget": {"minutes": minutes, "steps": steps}, "evaluations": len(curve), "settings": run["settings"],
        "env_kwargs": run["env_kwargs"], "command": command,
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
    }


# ------------------------------------------------------------------------------------- load, evaluate
def load_policy(run_dir: str | Path) -> tuple[dict[str, Any], torch.nn.Module]:
    """(run.json, trained policy) of a run folder; the policy maps (obs, hidden) -> (excitation, hidden)."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    if run["algo"] not in ALGOS:
        raise RunError(f"{run_dir / RUN_FILE}: unknown algo {run['algo']!r}; mn_gym trains {', '.join(ALGOS)}")
    if run["algo"] == "bptt":
        checkpoint = load_checkpoint(run_dir / CHECKPOINT)
        try:
            policy = policy_from_spec(checkpoint["policy_spec"])  # a GRUPolicy or a ModularGRUPolicy
            policy.load_state_dict(checkpoint["policy"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise BadFileError(f"{run_dir / CHECKPOINT} holds no GRU policy mn_gym can load: {exc}") from None
        return run, policy.eval()
    if run["algo"] == "rsl-ppo":
        from mn_gym.train.rsl import load_rsl_policy

        settings = SETTINGS["rsl-ppo"].from_dict(run["settings"])
        return run, load_rsl_policy(run_dir, settings, run["env_id"], run["env_kwargs"])
    from mn_gym.train.sb3 import load_sb3_policy  # stable-baselines3 is imported for RL runs only

    settings = SETTINGS[run["algo"]].from_dict(run["settings"])
    return run, load_sb3_policy(run_dir, settings, run["env_id"], run["env_kwargs"])


def _plot_trajectories(env_id: str, env_kwargs: dict[str, Any], policy: torch.nn.Module, path: Path, seed: int,
                       title: str) -> None:
    episodes = HeldOut.make(env_id, TRAJECTORY_EPISODES, seed, env_kwargs)
    plots.trajectories(episodes.rollout(policy), path, title, episodes.env.task.success_radius, episodes.env.dt)


def evaluate_run(run_dir: str | Path, *, env_id: str | None = None, episodes: int = EVAL_EPISODES,
                 seed: int = EVAL_SEED, plot: bool = True) -> dict[str, Any]:
    """Success rate and mean final distance of a run's policy on `episodes` held-out episodes (deterministic env
    seeded with `seed`, as during training); with `plot`, also writes `trajectories.png` into the run folder.

    `env_id` (default: the run's) must be the env the policy was trained on."""
    run_dir = Path(run_dir)
    run = load_run(run_dir)
    if env_id is not None and env_id != run["env_id"]:
        raise RunError(f"the policy in {run_dir} was trained on {run['env_id']}, not {env_id}: its observations "
                       "and muscles do not carry over")
    _, policy = load_policy(run_dir)
    metrics = HeldOut.make(run["env_id"], episodes, seed, run["env_kwargs"]).evaluate(policy)
    result = {"env_id": run["env_id"], "algo": run["algo"], "seed": run["seed"], "episodes": episodes,
              "eval_seed": seed, "success_rate": metrics["eval_success_rate"],
              "mean_final_distance_m": metrics["eval_final_distance"], "mean_loss": metrics["eval_loss"]}
    if plot:
        _plot_trajectories(run["env_id"], run["env_kwargs"], policy, run_dir / TRAJ_PNG, seed,
                           f"{run['env_id']}: {run['algo']} seed {run['seed']}: "
                           f"{100 * result['mean_final_distance_m']:.2f} cm, "
                           f"{100 * result['success_rate']:.0f} % success ({episodes} episodes)")
        record(run_dir / TRAJ_PNG)
        result["plot"] = str(run_dir / TRAJ_PNG)
    return result
