"""The benchmark report: IQM and stratified-bootstrap intervals (rliable), normalised scores, winners."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("rliable")

from mn_gym.train import runs
from mn_gym.train.report import interval, report


def _run(root, env_id, algo, seed, distance, success, untrained=0.4, minutes=2.0):
    folder = root / env_id / algo / f"seed{seed}"
    folder.mkdir(parents=True)
    summary = {"env_id": env_id, "algo": algo, "seed": seed, "final_eval_distance_m": distance,
               "final_eval_success_rate": success, "env_steps": 1000, "train_time_s": 60 * minutes,
               "budget": {"minutes": minutes, "steps": None}}
    (folder / runs.SUMMARY).write_text(json.dumps(summary))
    (folder / "metrics.csv").write_text(f"env_steps,eval_final_distance\n0,{untrained}\n1000,{distance}\n")


def test_interval_is_the_interquartile_mean_with_a_bracketing_interval():
    point, low, high = interval([0.0, 0.2, 0.4, 0.6, 10.0], reps=500)
    assert point == pytest.approx(0.4)  # the middle three of five: the outlier does not move it
    assert low <= point <= high


def test_report_scores_normalises_and_names_the_winner(tmp_path):
    env = "ArmReach-v0"
    for seed, (d_a, d_b) in enumerate([(0.01, 0.2), (0.012, 0.21), (0.011, 0.19), (0.009, 0.2), (0.01, 0.22)]):
        _run(tmp_path / "runs", env, "bptt", seed, d_a, 0.9)
        _run(tmp_path / "runs", env, "ppo", seed, d_b, 0.0)
    _run(tmp_path / "ref", env, "bptt", 0, 0.01, 0.95, minutes=10.0)
    rows = report(tmp_path / "runs", reference=tmp_path / "ref")
    by_algo = {r["algo"]: r for r in rows}
    assert by_algo["bptt"]["runs"] == 5 and by_algo["bptt"]["budget"] == "2 min"
    assert by_algo["bptt"]["normalised"] == pytest.approx(1.0, abs=0.01)  # as good as the reference
    assert by_algo["ppo"]["normalised"] == pytest.approx((0.4 - 0.2) / (0.4 - 0.01), abs=0.01)
    assert by_algo["ppo"]["success"] == 0.0
    text = (tmp_path / "runs" / "report.md").read_text()
    assert "**bptt**" in text and "intervals apart" in text
    assert (tmp_path / "runs" / "scores.csv").is_file()


def test_without_a_reference_the_normalised_score_is_left_out(tmp_path):
    _run(tmp_path, "PointMassReach-v0", "ppo", 0, 0.1, 0.2)
    (row,) = report(tmp_path)
    assert math.isnan(row["normalised"]) and row["success"] == pytest.approx(0.2)


def test_no_runs_is_a_clear_error(tmp_path):
    with pytest.raises(runs.RunError, match="no finished runs"):
        report(tmp_path)
