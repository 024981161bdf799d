"""`analyze_run`: the standard analyses of a trained run folder, as figures and `analysis.json`.

Behaviour for every policy (hand paths, speed, muscle activation, success); for recurrent policies
(`mn_gym.GRUPolicy` and `mn_gym.ModularGRUPolicy`, BPTT runs) also the hidden-state population analyses: PCA
trajectories (Churchland et al. 2012), cosine tuning over the movement window (Georgopoulos et al. 1982) and fixed
points of the hidden-state map under the hold input (Sussillo & Barak 2013); on curl-field tasks adaptation: the
policy's hand paths in the field and on catch trials (the field off: after-effects), peak lateral deviations
(Shadmehr & Mussa-Ivaldi 1994) and the force-channel adaptation index (Smith, Ghazizadeh & Shadmehr 2006), and with
`before` (another run's policy, e.g. one trained without the field) the same for it, side by side.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

import mn_gym
from mn_gym.analysis import figures
from mn_gym.analysis.behaviour import adaptation_index, channel_force, hand_speed, peak_deviation
from mn_gym.analysis.fixed_points import find_fixed_points, gru_step
from mn_gym.analysis.population import pca, tuning
from mn_gym.faces.rollout import Rollout
from mn_gym.functional import Env
from mn_gym.train.runs import load_policy

__all__ = ["ANALYSIS_FILE", "analyze_run"]

ANALYSIS_FILE = "analysis.json"
EPISODES = 64  # episodes of tasks without indexed targets
WINDOW_S = 0.3  # movement window for tuning: from the go cue (or the start) on, s
FIXED_POINT_STARTS = 64  # initial states of the fixed-point search, drawn from the recorded hidden states


def _episodes(env_id: str, env_kwargs: dict[str, Any], episodes_per_target: int, **overrides: Any
              ) -> tuple[Env, dict[str, Any] | None]:
    """The deterministic env (seed 0) and reset options: every target `episodes_per_target` times on tasks with
    indexed targets (centre-out family), else `EPISODES` sampled episodes."""
    kwargs = {**env_kwargs, **overrides, "deterministic": True, "seed": 0}
    n_targets = mn_gym.make(env_id, **kwargs).task.params.get("n_targets")
    if n_targets is None:
        return mn_gym.make(env_id, batch_size=EPISODES, **kwargs), None
    index = torch.arange(int(n_targets)).repeat(episodes_per_target)
    return mn_gym.make(env_id, batch_size=index.numel(), **kwargs), {"target_index": index}


@torch.no_grad()
def _rollout(env: Env, policy: torch.nn.Module, options: dict[str, Any] | None) -> Rollout:
    return mn_gym.rollout(env, policy, seed=0, options=options)


def _condition_angles(ro: Rollout) -> Tensor:
    """(B,) rad: the direction of each episode's target from its origin (centre-out), else from the start hand."""
    ts = ro.final_state.task
    target = getattr(ts, "target", ro.goals[-1])
    start = getattr(ts, "origin", ro.hand[0, :, :2])
    d = target - start
    return torch.atan2(d[:, 1], d[:, 0])


def _movement_mean(ro: Rollout, activity: Tensor, dt: float) -> Tensor:
    """(B, H) mean of `activity` (T, B, H) from the go cue (task state `cue_step`, else the start) to `WINDOW_S`
    after."""
    steps, batch, _ = activity.shape
    cue = getattr(ro.final_state.task, "cue_step", torch.zeros(batch, dtype=torch.long))
    t = torch.arange(steps)[:, None]
    window = ((t >= cue) & (t < cue + round(WINDOW_S / dt))).to(activity.dtype)  # (T, B)
    if bool((window.sum(0) == 0).any()):
        raise ValueError(f"the movement window (from the go cue, {WINDOW_S} s) lies beyond the episode's {steps} "
                         "steps for some trials")
    return (activity * window[..., None]).sum(0) / window.sum(0)[:, None]


def _hidden_analyses(policy: torch.nn.Module, ro: Rollout, env: Env, angles: Tensor, out: Path, name: str
                     ) -> tuple[dict[str, Any], list[Path]]:
    """PCA, tuning and fixed points of the units' activity: the hidden state of a GRUPolicy, the areas' current
    states of a ModularGRUPolicy (its delay history left out; the fixed-point search runs on the whole state,
    whose history copies equal the current state at a fixed point)."""
    units = policy.current_state if isinstance(policy, mn_gym.ModularGRUPolicy) else (lambda h: h)
    activity = units(ro.hidden)
    fit = pca(activity, 3)
    fit_tuning = tuning(_movement_mean(ro, activity, env.dt), angles)
    samples = ro.hidden.reshape(-1, ro.hidden.shape[-1])
    generator = torch.Generator().manual_seed(0)
    initial = samples[torch.randperm(samples.shape[0], generator=generator)[:FIXED_POINT_STARTS]]
    fixed = find_fixed_points(gru_step(policy, ro.observations[0, 0]), initial)
    fixed = fixed._replace(points=units(fixed.points), unique=units(fixed.unique))
    written = [
        figures.pca_trajectories(fit, angles, out / "pca_trajectories.png", f"{name}: hidden-state PCA"),
        figures.tuning_plot(fit_tuning, out / "tuning.png", f"{name}: cosine tuning over the movement window"),
        figures.fixed_points_plot(fit, fixed, out / "fixed_points.png",
                                  f"{name}: fixed points under the hold input of episode 0"),
    ]
    numbers = {
        "n_hidden": int(activity.shape[-1]),
        "explained_variance_ratio": [round(float(r), 6) for r in fit.explained_variance_ratio],
        "n_tuned_units": int((fit_tuning.r2 > figures.TUNED_R2).sum()),
        "fixed_points_converged": int(fixed.converged.sum()),
        "fixed_points_unique": int(fixed.unique.shape[0]),
        "fixed_points_stable": int(fixed.stable.sum()),
        # a trained controller's hold input may have slow points rather than fixed points: the slowest speed
        # q = 0.5 |F(h) - h|^2 found says how close the search came
        "fixed_point_min_speed": float(fixed.speed.min()),
    }
    return numbers, written


def _adaptation_analysis(run: dict[str, Any], policies: dict[str, torch.nn.Module], episodes_per_target: int,
                         out: Path, name: str) -> tuple[dict[str, Any], list[Path]]:
    """Each policy (labelled "before" and/or "after") on the same episodes in the field, on channel trials and
    (the "after" policy) on catch trials: peak deviations (m, mean over trials), the adaptation index, the hand
    paths side by side and the channel-force profiles."""
    def trials(channel: float, catch: float, labels: tuple[str, ...]) -> tuple[Env, dict[str, Rollout]]:
        env, options = _episodes(run["env_id"], run["env_kwargs"], episodes_per_target,
                                 channel_probability=channel, catch_probability=catch)
        return env, {label: _rollout(env, policies[label], options) for label in labels}

    _, field = trials(0.0, 0.0, tuple(policies))
    env, channel = trials(1.0, 0.0, tuple(policies))
    catch = trials(0.0, 1.0, ("after",))[1]["after"]
    k = env.task.params["k"]
    ideal = k * hand_speed(channel["after"])
    numbers: dict[str, Any] = {}
    forces = {label: channel_force(env, ro) for label, ro in channel.items()}
    for label in policies:
        prefix = "" if label == "after" else f"{label}_"
        numbers[f"{prefix}adaptation_index"] = round(adaptation_index(forces[label],
                                                                      k * hand_speed(channel[label])), 6)
        numbers[f"{prefix}field_peak_deviation_m"] = round(float(peak_deviation(field[label]).mean()), 6)
    numbers["catch_peak_deviation_m"] = round(float(peak_deviation(catch).mean()), 6)
    angles = _condition_angles(field["after"])
    panels = {f"{label} adaptation, in the field": field[label] for label in policies}
    panels["after adaptation, catch trials (no field)"] = catch
    profiles = {f"{label} adaptation, channel trials (mean)": forces[label].mean(1) for label in policies}
    written = [
        figures.adaptation_plot(panels, angles, out / "adaptation.png", f"{name}: curl-field adaptation"),
        figures.channel_force_plot(profiles, ideal.mean(1), env.dt, out / "channel_force.png",
                                   f"{name}: force-channel probe trials"),
    ]
    return numbers, written


def _before_policy(before: str | Path, env: Env) -> torch.nn.Module:
    """The policy of the run folder `before`, checked to fit `env` (observation and action sizes)."""
    before_run, policy = load_policy(before)
    other = mn_gym.make(before_run["env_id"], **before_run["env_kwargs"])
    if (other.obs_size, other.action_size) != (env.obs_size, env.action_size):
        raise ValueError(f"the before run {before} ({before_run['env_id']}: {other.obs_size} observations, "
                         f"{other.action_size} muscles) does not fit this run's env ({env.obs_size} observations, "
                         f"{env.action_size} muscles)")
    return policy


def analyze_run(run_dir: str | Path, out_dir: str | Path | None = None, episodes_per_target: int = 1,
                before: str | Path | None = None) -> dict[str, Any]:
    """Analyse the policy of a run folder (`mn-gym train`) on deterministic episodes (seed 0): each target
    `episodes_per_target` times on centre-out tasks, else 64 episodes. Writes the figures and `analysis.json`
    into `out_dir` (default `<run_dir>/analysis`) and returns what analysis.json holds (`files`: the figures'
    names) plus `out_dir`.

    `before`: on curl-field tasks, a run folder whose policy is shown as the one before adaptation (e.g. trained
    on the same task without the field, `k=0`); its figures go with this run's.

    Hidden-state analyses (PCA, tuning, fixed points) need a recurrent policy with a (B, H) hidden state
    (`mn_gym.GRUPolicy` or `mn_gym.ModularGRUPolicy`, from BPTT); other policies get the behaviour only
    (`hidden_state_analysis` says why)."""
    if not isinstance(episodes_per_target, int) or isinstance(episodes_per_target, bool) or episodes_per_target < 1:
        raise ValueError(f"episodes_per_target must be a positive int, got {episodes_per_target!r}")
    run_dir = Path(run_dir)
    run, policy = load_policy(run_dir)
    out = Path(out_dir) if out_dir is not None else run_dir / "analysis"
    out.mkdir(parents=True, exist_ok=True)
    name = f"{run['env_id']} {run['algo']}"
    env, options = _episodes(run["env_id"], run["env_kwargs"], episodes_per_target)
    if before is not None and not hasattr(env.task, "compensation"):
        raise ValueError(f"before is for curl-field tasks; {run['env_id']} has no force field")
    ro = _rollout(env, policy, options)
    angles = _condition_angles(ro)
    distance = torch.linalg.vector_norm(ro.hand[-1, :, :2] - ro.goals[-1], dim=-1)
    result: dict[str, Any] = {
        "env_id": run["env_id"], "algo": run["algo"], "episodes": env.batch_size,
        "mean_final_distance_m": round(float(distance.mean()), 6),
        "success_rate": round(float(ro.success.float().mean()), 6),
    }
    muscles = getattr(env.effector, "muscle_names", None)
    written = [figures.behaviour_plot(ro, env.dt, angles, out / "behaviour.png", f"{name}: behaviour",
                                      muscle_names=muscles)]
    if isinstance(policy, (mn_gym.GRUPolicy, mn_gym.ModularGRUPolicy)):
        numbers, paths = _hidden_analyses(policy, ro, env, angles, out, name)
        result.update(hidden_state_analysis="done", **numbers)
        written += paths
    else:
        result["hidden_state_analysis"] = (f"skipped: the {run['algo']} policy ({type(policy).__name__}) has no "
                                           "(B, H) hidden state (only GRUPolicy and ModularGRUPolicy runs, from "
                                           "bptt, do)")
    if hasattr(env.task, "compensation"):
        policies = {"after": policy} if before is None else {"before": _before_policy(before, env), "after": policy}
        numbers, paths = _adaptation_analysis(run, policies, episodes_per_target, out, name)
        result.update(numbers)
        written += paths

    result["files"] = sorted(p.name for p in written)
    if not all(math.isfinite(v) for v in result.values() if isinstance(v, float)):
        raise ValueError(f"the analysis of {run_dir} produced non-finite numbers: {result}")
    (out / ANALYSIS_FILE).write_text(json.dumps(result, indent=2) + "\n")
    return {**result, "out_dir": str(out)}
