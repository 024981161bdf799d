"""Sweeps: a grid of env x algo x seed, one Ray task per trial, gathered into one table.

    from mn_gym.train.sweep import sweep
    rows = sweep(["PointMassReach-v0", "ArmReach-v0"], ["bptt", "ppo"], [0, 1, 2], "runs/grid", minutes=5)

Ray runs locally by default (`workers` trials at a time, `cpus_per_trial` torch threads each) or on a cluster given
its `address` (mn_gym must be installed on its nodes). Each trial is `mn_gym.train.runs.train` into
`<out>/<env>/<algo>/seed<k>` with the env's tuned settings (`mn_gym.train.hyperparams.tuned`); a trial whose folder
already holds a finished run of the same seed, settings and budget is not run again (its summary is reused), so an
interrupted sweep picks up where it stopped; one of other settings fails its trial, naming what differs
(`overwrite` reruns it). A failed trial is reported in the table with its error; the others go on. Written into
`out`: `trials.csv` (one row per trial), `table.md` (mean and spread over seeds per env and algo) and
`curves_<env>.png` (the algos' learning curves side by side); these also cover the finished runs that earlier
sweeps left in `out`, so a table can be built up grid by grid.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from mn_gym import catalogue, plots
from mn_gym.train import runs
from mn_gym.train.common import EVAL_EPISODES
from mn_gym.train.hyperparams import tuned
from mn_gym.train.settings import Settings

__all__ = ["TRIAL_FIELDS", "sweep", "table_markdown", "trial_settings"]

TRIAL_FIELDS = ("env_id", "algo", "seed", "status", "final_eval_success_rate", "final_eval_distance_m",
                "best_eval_distance_m", "env_steps", "train_time_s", "threshold_env_steps", "threshold_time_s",
                "run_dir", "error")


def _trial(env_id: str, algo: str, seed: int, run_dir: str, budget: dict[str, Any], settings: Settings,
           eval_batch: int, threads: int, overwrite: bool, command: str | None) -> dict[str, Any]:
    """One trial in a Ray worker: train (or reuse a finished run); never raises, reports errors in the row."""
    import torch

    torch.set_num_threads(threads)
    row: dict[str, Any] = {"env_id": env_id, "algo": algo, "seed": seed, "run_dir": run_dir}
    summary_path = Path(run_dir) / runs.SUMMARY
    try:
        if summary_path.is_file() and not overwrite:
            summary, row["status"] = json.loads(summary_path.read_text()), "reused"
            stale = runs.differences(runs.load_run(run_dir), seed, settings, None)
            if summary.get("budget") != budget:
                stale.append(f"budget {summary.get('budget')} (asked {budget})")
            if stale:  # never count a run of other settings as this sweep's
                raise runs.RunError(f"{run_dir} holds a finished run that differs from this trial: "
                                    f"{'; '.join(stale)}; pass --overwrite to rerun it, or choose another --out")
        else:  # an interrupted trial (a killed worker, a stopped sweep) continues from its checkpoint
            resume = not overwrite and runs.resumable(run_dir, algo)
            summary = runs.train(env_id, algo, run_dir, seed=seed, progress=False, settings=settings,
                                 eval_batch=eval_batch, overwrite=overwrite, resume=resume, command=command,
                                 **budget)
            row["status"] = "resumed" if resume else "done"
    except Exception as exc:  # a failed trial must not take the sweep down; its error goes into the table
        return {**row, "status": "failed", "error": f"{type(exc).__name__}: {exc}"}
    return {**row, **{k: summary[k] for k in TRIAL_FIELDS if k in summary}}


def trial_settings(envs: Sequence[str], algos: Sequence[str], minutes: float | None, steps: int | None,
                   overrides: Mapping[str, Mapping[str, Any]] | None = None,
                   eval_batch: int = EVAL_EPISODES) -> dict[tuple[str, str], Settings]:
    """(env id, algo) -> the settings its trials run: the env's tuned settings with the algo's `overrides` on
    top; every request is checked (`runs.check_request`), so a bad one stops the sweep before any trial starts."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(algos))
    if unknown:
        raise runs.RunError(f"settings given for algo(s) {unknown} that are not in the sweep {list(algos)}")
    return {(env_id, algo): runs.check_request(env_id, algo, minutes, steps, tuned(algo, env_id, overrides.get(algo)),
                                               eval_batch)
            for algo in algos for env_id in envs}


def sweep(envs: Sequence[str], algos: Sequence[str], seeds: Sequence[int], out: str | Path, *,
          minutes: float | None = None, steps: int | None = None,
          overrides: Mapping[str, Mapping[str, Any]] | None = None,
          eval_batch: int = EVAL_EPISODES, address: str | None = None, workers: int = 2, cpus_per_trial: int = 1,
          overwrite: bool = False,
          progress: bool = True, command: str | None = None) -> list[dict[str, Any]]:
    """Run the grid on Ray and return one row per trial (`TRIAL_FIELDS`); see the module docstring.

    overrides: algo -> {setting: value}, laid over each env's tuned settings (`mn_gym.train.hyperparams.tuned`;
    `mn-gym sweep --set ALGO.KEY=VALUE`). eval_batch: held-out episodes per evaluation. workers: concurrent
    local trials (ignored with `address`: the cluster's resources decide)."""
    try:
        import ray
    except ImportError as exc:
        raise ImportError("mn-gym sweep runs on Ray: pip install 'mn_gym[ray]'") from exc
    if not envs or not algos or not seeds:
        raise runs.RunError("a sweep needs at least one env, one algo and one seed")
    settings = trial_settings(envs, algos, minutes, steps, overrides, eval_batch)
    if len(set(seeds)) != len(seeds):
        raise runs.RunError(f"seeds repeat: {list(seeds)}")
    if workers < 1 or cpus_per_trial < 1:
        raise runs.RunError(f"workers and cpus_per_trial must be >= 1, got {workers} and {cpus_per_trial}")
    out = Path(out)
    runs.check_writable(out)
    out.mkdir(parents=True, exist_ok=True)

    if address is not None:
        ray.init(address=address, ignore_reinit_error=True, log_to_driver=False)
    else:
        ray.init(num_cpus=workers * cpus_per_trial, ignore_reinit_error=True, include_dashboard=False,
                 log_to_driver=False)
    remote = ray.remote(num_cpus=cpus_per_trial)(_trial)
    budget = {"minutes": minutes, "steps": steps}
    pending = [remote.remote(env_id, algo, seed, str(out / env_id / algo / f"seed{seed}"), budget,
                             settings[env_id, algo], eval_batch, cpus_per_trial, overwrite, command)
               for env_id in envs for algo in algos for seed in seeds]
    bar, total = None, len(pending)
    if progress and sys.stderr.isatty():  # elsewhere (a log file) one line per finished trial
        from tqdm.auto import tqdm
        bar = tqdm(total=total, unit="trial", desc="sweep")
    rows = []
    try:
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            rows.extend(ray.get(ready))
            if bar is not None:
                bar.update(len(ready))
            elif progress:
                print(f"sweep: {len(rows)}/{total} trials; {_trial_line(rows[-1])}", file=sys.stderr, flush=True)
    finally:
        if bar is not None:
            bar.close()
        if address is None:
            ray.shutdown()
    order = {(e, a, s): k for k, (e, a, s) in enumerate((e, a, s) for e in envs for a in algos for s in seeds)}
    rows.sort(key=lambda r: order[(r["env_id"], r["algo"], r["seed"])])
    _write(out, rows + _earlier_runs(out, set(order)))
    return rows


def _trial_line(row: dict[str, Any]) -> str:
    """A finished trial in a few words: 'ArmReach-v0 sac seed 1 done: 0.2 % success, 28.02 cm'."""
    head = f"{row['env_id']} {row['algo']} seed {row['seed']} {row['status']}"
    if row["status"] == "failed":
        return f"{head}: {row['error']}"
    return f"{head}: {100 * row['final_eval_success_rate']:.1f} % success, {100 * row['final_eval_distance_m']:.2f} cm"


def _earlier_runs(out: Path, grid: set[tuple[str, str, int]]) -> list[dict[str, Any]]:
    """Finished runs in `out` from earlier sweeps (other envs, algos or seeds): the table covers them too."""
    rows = []
    for path in sorted(out.glob(f"*/*/seed*/{runs.SUMMARY}")):
        summary = json.loads(path.read_text())
        if (summary["env_id"], summary["algo"], summary["seed"]) not in grid:
            rows.append({**{k: summary[k] for k in TRIAL_FIELDS if k in summary}, "status": "earlier",
                         "run_dir": str(path.parent)})
    return rows


def _write(out: Path, rows: list[dict[str, Any]]) -> None:
    ids = catalogue.list_ids()
    rows = sorted(rows, key=lambda r: (ids.index(r["env_id"]) if r["env_id"] in ids else len(ids),
                                       runs.ALGOS.index(r["algo"]), r["seed"]))
    tmp = out / "trials.csv.tmp"
    with tmp.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=TRIAL_FIELDS)
        writer.writeheader()
        for row in rows:
            writer.writerow({k: row.get(k, "") for k in TRIAL_FIELDS})
    tmp.replace(out / "trials.csv")
    (out / "table.md").write_text(table_markdown(rows))
    for env_id in dict.fromkeys(r["env_id"] for r in rows):
        curves: dict[str, list[list[dict[str, float]]]] = {}
        for r in rows:
            if r["env_id"] == env_id and r["status"] != "failed":
                curves.setdefault(r["algo"], []).append(_read_curve(Path(r["run_dir"]) / "metrics.csv"))
        if curves:
            radius = catalogue.make(env_id).task.success_radius
            plots.learning_curves(curves, out / f"curves_{env_id}.png", f"{env_id}: held-out evaluation", radius)


def _read_curve(path: Path) -> list[dict[str, float]]:
    with path.open() as f:
        return [{k: float(v) if v not in ("", None) else math.nan for k, v in row.items()} for row in csv.DictReader(f)]


def _spread(values: list[float], scale: float, digits: int) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values) * scale
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values) * scale:.{digits}f}"


def table_markdown(rows: list[dict[str, Any]]) -> str:
    """Mean ± standard deviation over seeds, one line per env and algo; failed trials are counted apart."""
    pct = f"{100 * runs.SUCCESS_THRESHOLD:g} %"
    lines = ["| env | algo | seeds | success (%) | mean final distance (cm) | env steps | training (min) "
             f"| reached {pct} success | steps to {pct} | min to {pct} |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["env_id"], r["algo"]), []).append(r)
    for (env_id, algo), group in groups.items():
        ok = [r for r in group if r["status"] != "failed"]
        failed = len(group) - len(ok)
        reached = [r for r in ok if r.get("threshold_env_steps") not in (None, "")]
        lines.append(
            f"| {env_id} | {algo} | {len(ok)}{f' ({failed} failed)' if failed else ''} "
            f"| {_spread([r['final_eval_success_rate'] for r in ok], 100, 1)} "
            f"| {_spread([r['final_eval_distance_m'] for r in ok], 100, 2)} "
            f"| {_spread([r['env_steps'] for r in ok], 1e-6, 2)}M "
            f"| {_spread([r['train_time_s'] for r in ok], 1 / 60, 1)} "
            f"| {len(reached)}/{len(ok)} "
            f"| {_spread([r['threshold_env_steps'] for r in reached], 1e-6, 2) + 'M' if reached else '-'} "
            f"| {_spread([r['threshold_time_s'] for r in reached], 1 / 60, 1)} |")
    return "\n".join(lines) + "\n"
