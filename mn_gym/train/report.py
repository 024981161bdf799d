"""The benchmark report: from the run folders of a sweep, the interquartile mean (IQM) of each (env, algo) with
95 % stratified-bootstrap confidence intervals (rliable; Agarwal et al. 2021, "Deep reinforcement learning at the
edge of the statistical precipice"), a normalised score per env, and which method wins at equal wall-clock.

    from mn_gym.train.report import report
    report("baselines/results/protocol", reference="baselines/results/reference")   # writes report.md, scores.csv

Runs are read from `<out>/<env>/<algo>/seed<k>/` (`summary.json`, `metrics.csv`), as `mn-gym sweep` writes
them. Per run two scores of the final held-out evaluation:

- success: the fraction of the held-out episodes that end within the task's success radius;
- normalised: (d0 - d) / (d0 - d_ref), with d the run's mean final distance, d0 the median distance of the
  untrained policies (every run's first evaluation on that env): 0 = untrained, and d_ref the mean final
  distance of the env's reference runs (BPTT for 10 minutes): 1 = the reference.

Runs of one env are compared only at the same training budget (minutes of wall-clock, or env steps). The
winner of an env is the algo with the highest normalised-score IQM (success where there is no reference); the
table gives its margin over the runner-up and says whether their intervals are apart.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mn_gym.train import runs

__all__ = ["Run", "interval", "read_runs", "report", "report_markdown"]

BOOTSTRAP_REPS = 5_000
SCORES = ("success", "normalised")


@dataclass(frozen=True)
class Run:
    """One finished run: its env, algo, seed, budget, final and untrained held-out distance (m), success."""

    env_id: str
    algo: str
    seed: int
    budget: str
    distance: float
    untrained_distance: float
    success: float
    env_steps: int
    train_time_s: float

    @classmethod
    def read(cls, run_dir: Path) -> Run:
        summary = json.loads((run_dir / runs.SUMMARY).read_text())
        with (run_dir / "metrics.csv").open() as f:
            first = next(csv.DictReader(f))
        minutes, steps = summary["budget"]["minutes"], summary["budget"]["steps"]
        budget = " + ".join(b for b in (minutes and f"{minutes:g} min", steps and f"{steps:,} steps") if b)
        return cls(summary["env_id"], summary["algo"], summary["seed"], budget, summary["final_eval_distance_m"],
                   float(first["eval_final_distance"]), summary["final_eval_success_rate"], summary["env_steps"],
                   summary["train_time_s"])


def read_runs(out: str | Path) -> list[Run]:
    """Every finished run under `out` (`<env>/<algo>/seed<k>/summary.json`)."""
    return [Run.read(p.parent) for p in sorted(Path(out).glob(f"*/*/seed*/{runs.SUMMARY}"))]


def interval(scores: Sequence[float], reps: int = BOOTSTRAP_REPS, seed: int = 0) -> tuple[float, float, float]:
    """(IQM, low, high): the interquartile mean of `scores` (runs of one env and algo) and its 95 % stratified
    bootstrap confidence interval (rliable)."""
    from rliable import library as rly
    from rliable import metrics

    x = np.asarray(scores, dtype=float).reshape(-1, 1)  # (runs, tasks = 1)
    with warnings.catch_warnings():  # rliable hands arch a RandomState, which arch 7 calls deprecated
        warnings.filterwarnings("ignore", "random_state is deprecated", FutureWarning)
        point, ci = rly.get_interval_estimates({"x": x}, lambda s: np.array([metrics.aggregate_iqm(s)]), reps=reps,
                                               random_state=np.random.RandomState(seed))
    return float(point["x"][0]), float(ci["x"][0, 0]), float(ci["x"][1, 0])


def _normalised(run: Run, untrained: float, reference: float | None) -> float:
    if reference is None or untrained <= reference:
        return math.nan
    return (untrained - run.distance) / (untrained - reference)


def _scores(runs_: list[Run], references: dict[str, float]) -> list[dict[str, Any]]:
    """One row per (env, budget, algo): counts, IQM and interval of each score, median distance."""
    rows = []
    groups: dict[tuple[str, str], list[Run]] = {}
    for r in runs_:
        groups.setdefault((r.env_id, r.budget), []).append(r)
    for (env_id, budget), group in groups.items():
        untrained = statistics.median(r.untrained_distance for r in group)
        reference = references.get(env_id)
        for algo in dict.fromkeys(r.algo for r in group):
            mine = [r for r in group if r.algo == algo]
            row: dict[str, Any] = {"env_id": env_id, "budget": budget, "algo": algo, "runs": len(mine),
                                   "median_distance_cm": 100 * statistics.median(r.distance for r in mine),
                                   "env_steps_M": statistics.fmean(r.env_steps for r in mine) / 1e6,
                                   "untrained_distance_cm": 100 * untrained,
                                   "reference_distance_cm": None if reference is None else 100 * reference}
            values = {"success": [r.success for r in mine],
                      "normalised": [_normalised(r, untrained, reference) for r in mine]}
            for name, v in values.items():
                if any(math.isnan(x) for x in v):
                    row[name] = row[f"{name}_low"] = row[f"{name}_high"] = math.nan
                else:
                    row[name], row[f"{name}_low"], row[f"{name}_high"] = interval(v)
            rows.append(row)
    return rows


def _fmt(row: dict[str, Any], name: str, scale: float = 1.0) -> str:
    if math.isnan(row[name]):
        return "-"
    return f"{scale * row[name]:.2f} [{scale * row[name + '_low']:.2f}, {scale * row[name + '_high']:.2f}]"


def _winners(rows: list[dict[str, Any]]) -> list[str]:
    """Per (env, budget): the best algo, its margin over the runner-up, whether their intervals are apart."""
    lines = []
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault((row["env_id"], row["budget"]), []).append(row)
    for (env_id, budget), group in groups.items():
        key = "normalised" if not any(math.isnan(r["normalised"]) for r in group) else "success"
        ranked = sorted(group, key=lambda r: -r[key])
        best = ranked[0]
        if len(ranked) == 1:
            lines.append(f"- {env_id} ({budget}): only {best['algo']} ran")
            continue
        second = ranked[1]
        apart = best[f"{key}_low"] > second[f"{key}_high"]
        lines.append(f"- {env_id} ({budget}): **{best['algo']}** by {best[key] - second[key]:+.2f} {key} IQM over "
                     f"{second['algo']} ({_fmt(best, key)} vs {_fmt(second, key)}; intervals "
                     f"{'apart' if apart else 'overlap: not separable at these seeds'})")
    return lines


def report_markdown(rows: list[dict[str, Any]]) -> str:
    """The table (one line per env, budget and algo) and the winners, as Markdown."""
    lines = ["| env | budget | algo | runs | success IQM [95 % CI] (%) | normalised score IQM [95 % CI] "
             "| median final distance (cm) | env steps (M) |", "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['env_id']} | {r['budget']} | {r['algo']} | {r['runs']} | {_fmt(r, 'success', 100)} "
                     f"| {_fmt(r, 'normalised')} | {r['median_distance_cm']:.2f} | {r['env_steps_M']:.2f} |")
    return "\n".join([*lines, "", "Winner at equal budget:", "", *_winners(rows)]) + "\n"


def report(out: str | Path, reference: str | Path | None = None, algos: Sequence[str] | None = None
           ) -> list[dict[str, Any]]:
    """Score the runs under `out` (only `algos` when given), write `out/report.md` and `out/scores.csv`, return
    the rows. `reference`: a folder of reference runs (`<env>/<algo>/seed<k>`, e.g. BPTT for 10 minutes); the
    mean final distance of each env's reference runs is that env's score 1."""
    found = [r for r in read_runs(out) if algos is None or r.algo in algos]
    if not found:
        raise runs.RunError(f"no finished runs under {out} (expected <env>/<algo>/seed<k>/{runs.SUMMARY})")
    references: dict[str, list[float]] = {}
    for r in read_runs(reference) if reference is not None else []:
        references.setdefault(r.env_id, []).append(r.distance)
    rows = _scores(found, {env: statistics.fmean(d) for env, d in references.items()})
    out = Path(out)
    (out / "report.md").write_text(report_markdown(rows))
    with (out / "scores.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return rows
