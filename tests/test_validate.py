"""The golden replay: every comparable MotorNet 0.3.0 case matches, deliberate differences are reported."""

import json
import shutil

import numpy as np

from mn_gym import validate


def test_golden_cases_pass(golden_dir, capsys):
    assert validate.main([str(golden_dir)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    n_cases = len(list(golden_dir.glob("*.json")))
    assert len(lines) == n_cases + 1  # one line per case plus the summary
    assert "0 failed" in lines[-1]
    by_case = {ln.split()[0]: ln for ln in lines[:-1]}
    assert "pass" in by_case["arm26_euler_f64_random"]
    assert "differs by design" in by_case["arm26_rk4_f32_const05"]
    assert "differs by design" in by_case["compliant_rk4_f32_random"]
    assert "0 skipped" in lines[-1]
    for case in ("env_arm26_pdelay20_vdelay50", "env_pointmass_default_stack1"):
        assert by_case[case].split()[1] == "pass"


def test_env_cases_replay_tightly(golden_dir):
    """The observation pipeline (delays, proprioception scaling, action stacking, episode end) matches."""
    for case in ("env_arm26_pdelay20_vdelay50", "env_pointmass_default_stack1"):
        res = validate.validate_case(golden_dir / f"{case}.json")
        assert res.status == "pass", res.line()
        assert res.worst < 1e-4


def test_corrupted_env_case_fails(golden_dir, tmp_path):
    """A perturbed observation column or a moved episode end is caught and named."""
    case = "env_arm26_pdelay20_vdelay50"
    for suffix in (".json", ".npz"):
        shutil.copy(golden_dir / f"{case}{suffix}", tmp_path / f"{case}{suffix}")
    original = dict(np.load(tmp_path / f"{case}.npz"))
    data = {k: v.copy() for k, v in original.items()}
    data["obs"][40, 2, 5] += 1e-2  # a proprioceptive length column
    np.savez(tmp_path / f"{case}.npz", **data)
    res = validate.validate_case(tmp_path / f"{case}.json")
    assert res.status == "FAIL"
    assert any("muscle length / l0_ce" in n for n in res.notes)
    data = {k: v.copy() for k, v in original.items()}
    data["terminated"][-1], data["terminated"][-2] = False, True
    np.savez(tmp_path / f"{case}.npz", **data)
    res = validate.validate_case(tmp_path / f"{case}.json")
    assert res.status == "FAIL" and any("terminated" in n for n in res.notes)


def test_float64_case_is_tight(golden_dir):
    res = validate.validate_case(golden_dir / "arm26_euler_f64_random.json")
    assert res.status == "pass" and res.worst < 1e-12


def test_corrupted_case_fails(golden_dir, tmp_path, capsys):
    """A perturbed golden trajectory must be caught: the replay is a real comparison."""
    for suffix in (".json", ".npz"):
        shutil.copy(golden_dir / f"arm26_euler_f32_random{suffix}", tmp_path / f"arm26_euler_f32_random{suffix}")
    data = dict(np.load(tmp_path / "arm26_euler_f32_random.npz"))
    data["joint"] = data["joint"].copy()
    data["joint"][50, 1, 0] += 1e-3
    np.savez(tmp_path / "arm26_euler_f32_random.npz", **data)
    assert validate.main([str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_unknown_kind_and_missing_arrays_fail(tmp_path):
    (tmp_path / "weird.json").write_text(json.dumps({"case": "weird", "kind": "other", "dtype": "float32"}))
    np.savez(tmp_path / "weird.npz", x=np.zeros(1))
    assert validate.validate_case(tmp_path / "weird.json").status == "FAIL"
    (tmp_path / "lonely.json").write_text(json.dumps({"case": "lonely", "kind": "muscle_alone"}))
    assert validate.validate_case(tmp_path / "lonely.json").status == "FAIL"


def test_empty_directory_is_an_error(tmp_path):
    assert validate.main([str(tmp_path)]) == 1
