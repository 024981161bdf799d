"""Smoke test of `mn-gym bench effector`: a --quick run without MotorNet gives finite positive speeds."""

import json
import math

from mn_gym.bench import effector


def _finite_positive(x) -> bool:
    return isinstance(x, float) and math.isfinite(x) and x > 0


def test_bench_quick_no_motornet(tmp_path, capsys):
    bench = effector
    out = tmp_path / "bench.json"
    results = bench.main(["--quick", "--no-motornet", "--batches", "1", "4", "--json", str(out)])

    step = results["step"]
    assert [(r["effector"], r["batch"]) for r in step] == [
        ("arm26", 1), ("arm26", 4), ("pointmass24", 1), ("pointmass24", 4)]
    for r in step:
        g = r["mn_gym"]
        assert all(_finite_positive(g[k]) for k in ("min", "median", "max")), r
        assert g["min"] <= g["median"] <= g["max"]
        assert r["motornet"] is None
    assert [r["effector"] for r in results["fwd_bwd"]] == ["arm26", "pointmass24"]
    for r in results["fwd_bwd"]:
        assert all(_finite_positive(r["mn_gym"][k]) for k in ("min", "median", "max")), r
    assert results["compile"] == []
    assert results["env"]["torch_threads"] == 1

    assert json.loads(out.read_text())["step"][0]["batch"] == 1
    printed = capsys.readouterr().out
    assert "MotorNet: skipped" in printed
    assert "pointmass24" in printed and "Forward + backward" in printed


def test_bench_rl_quick_measures_both_trainers(tmp_path):
    from mn_gym.bench import rl

    out = tmp_path / "rl.json"
    rates = rl.main(["--quick", "--env", "PointMassReach-v0", "--threads", "1", "--json", str(out)])
    assert set(rates) == {"rsl-ppo", "ppo"} and all(_finite_positive(r) for r in rates.values())
    assert json.loads(out.read_text())["settings"]["rsl-ppo"]["n_envs"] > 0
