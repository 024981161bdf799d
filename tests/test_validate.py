"""The golden replay: every MotorNet 0.3.0 case matches (its "rk4" and compliant muscle through the compatible
mode), and how far the correct physics lies from MotorNet is reported."""

import json
import shutil

import numpy as np
import pytest
import torch

from mn_gym import validate
from mn_gym.compat import motornet


def test_golden_cases_pass(golden_dir, capsys):
    assert validate.main([str(golden_dir)]) == 0
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    n_cases = len(list(golden_dir.glob("*.json")))
    assert len(lines) == n_cases + 1  # one line per case plus the summary
    assert "0 failed" in lines[-1]
    by_case = {ln.split()[0]: ln for ln in lines[:-1]}
    assert "pass" in by_case["arm26_euler_f64_random"]
    for case in ("arm26_rk4_f32_const05", "compliant_rk4_f32_random", "compliant_rk4_f64_random_long"):
        assert by_case[case].split()[1] == "pass"
        # the correct physics is reported apart, and it is far from MotorNet's first-order scheme
        distance = float(by_case[case].split("correct physics: worst ")[1].split()[0])
        assert distance > 1e-2
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


def _perturbed_joint_case(golden_dir, tmp_path):
    """A copy of arm26_euler_f32_random in tmp_path with one joint value moved by 1e-3."""
    for suffix in (".json", ".npz"):
        shutil.copy(golden_dir / f"arm26_euler_f32_random{suffix}", tmp_path / f"arm26_euler_f32_random{suffix}")
    data = dict(np.load(tmp_path / "arm26_euler_f32_random.npz"))
    data["joint"] = data["joint"].copy()
    data["joint"][50, 1, 0] += 1e-3
    np.savez(tmp_path / "arm26_euler_f32_random.npz", **data)


def test_float64_case_is_tight(golden_dir):
    res = validate.validate_case(golden_dir / "arm26_euler_f64_random.json")
    assert res.status == "pass" and res.worst < 1e-12


def test_corrupted_case_fails(golden_dir, tmp_path, capsys):
    """A perturbed golden trajectory must be caught: the replay is a real comparison."""
    _perturbed_joint_case(golden_dir, tmp_path)
    assert validate.main([str(tmp_path)]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_unknown_kind_and_missing_arrays_fail(tmp_path):
    (tmp_path / "weird.json").write_text(json.dumps({"case": "weird", "kind": "other", "dtype": "float32"}))
    np.savez(tmp_path / "weird.npz", x=np.zeros(1))
    assert validate.validate_case(tmp_path / "weird.json").status == "FAIL"
    (tmp_path / "lonely.json").write_text(json.dumps({"case": "lonely", "kind": "muscle_alone"}))
    assert validate.validate_case(tmp_path / "lonely.json").status == "FAIL"


def test_broken_cases_fail_with_a_reason_and_the_rest_still_run(golden_dir, tmp_path, capsys):
    """A golden file full of NaN fails (it compares with nothing); malformed JSON, a damaged npz and a case whose
    replay raises are FAILs with their reason, and the good case beside them still passes."""
    good = "arm26_euler_f32_endpointload"
    for suffix in (".json", ".npz"):
        shutil.copy(golden_dir / f"{good}{suffix}", tmp_path / f"{good}{suffix}")
    meta = json.loads((golden_dir / f"{good}.json").read_text())
    (tmp_path / "nan.json").write_text(json.dumps({**meta, "case": "nan"}))
    (tmp_path / "badnpz.json").write_text(json.dumps({**meta, "case": "badnpz"}))
    data = dict(np.load(golden_dir / f"{good}.npz"))
    records = ("joint", "cartesian", "muscle", "geometry")  # the reference outputs, not the inputs
    np.savez(tmp_path / "nan.npz", **{k: np.full_like(v, np.nan) if k in records else v for k, v in data.items()})
    (tmp_path / "malformed.json").write_text("{not json")
    (tmp_path / "badnpz.npz").write_bytes(b"PK\x03\x04 truncated")
    assert validate.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    lines = {line.split()[0]: line for line in out.splitlines() if line.split()}
    assert "not all finite" in out and "could not read or replay" in out
    assert "1 passed, 3 failed" in out, out
    assert "pass" in lines[good] and "not all finite" in lines["nan"] and "could not read" in lines["badnpz"]


def test_empty_directory_is_an_error(tmp_path):
    assert validate.main([str(tmp_path)]) == 1


def test_case_filter_counts_the_rest_as_skipped(golden_dir, capsys):
    """--case replays only the matching cases; every other case in the folder is counted as skipped."""
    assert validate.main([str(golden_dir), "--case", "env_"]) == 0
    lines = capsys.readouterr().out.splitlines()
    n_cases = len(list(golden_dir.glob("*.json")))
    assert [ln.split()[0] for ln in lines[:-1]] == ["env_arm26_pdelay20_vdelay50", "env_pointmass_default_stack1"]
    assert lines[-1] == f"2 passed, 0 failed, {n_cases - 2} skipped"
    assert validate.main([str(golden_dir), "--case", "no_such_case"]) == 1


def test_verbose_prints_every_compared_row(golden_dir, capsys):
    """--verbose adds one line per compared row (worst error, row maximum, ratio); the case line keeps the worst."""
    case = "env_pointmass_default_stack1"
    assert validate.main([str(golden_dir), "--case", case, "--verbose"]) == 0
    lines = capsys.readouterr().out.splitlines()
    meta = json.loads((golden_dir / f"{case}.json").read_text())
    rows = lines[1:-1]
    assert lines[0].startswith(case) and len(rows) == len(meta["obs_layout"])  # one row per observation column
    assert all(r.startswith("    obs[") and r.endswith("  pass") for r in rows)
    assert "obs[past action [3]]" in rows[-1]
    worst = max(float(r.split("relative ")[1].split()[0]) for r in rows)
    assert f"worst {worst:.2e}" in lines[0]


def test_verbose_marks_the_failing_row(golden_dir, tmp_path, capsys):
    _perturbed_joint_case(golden_dir, tmp_path)
    assert validate.main([str(tmp_path), "--verbose"]) == 1
    failing = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("    ") and ln.endswith("FAIL")]
    assert len(failing) == 1 and failing[0].startswith("    joint[0]: max error")


def test_help_matches_the_documented_cli(capsys):
    with pytest.raises(SystemExit):
        validate.main(["--help"])
    usage = capsys.readouterr().out
    assert "[--case SUBSTRING] [--verbose]" in usage
    assert "python -m mn_gym.validate DIR [--case SUBSTRING] [--verbose]" in validate.__doc__


@pytest.mark.parametrize("case", ["arm26_euler_f64_random", "arm26mujoco_euler_f32_random",
                                  "env_arm26_pdelay20_vdelay50"])
def test_importer_round_trips_the_sidecar_buffers(golden_dir, case):
    """Every muscle, skeleton and geometry tensor of the imported effector equals the sidecar's buffer."""
    meta = json.loads((golden_dir / f"{case}.json").read_text())
    buffers = meta["buffers"]
    effector = motornet.effector_from_case(meta, torch.float64)

    def same(tensor: torch.Tensor, name: str) -> None:
        expected = np.broadcast_to(motornet.buffer_values(buffers, name).reshape(-1), (tensor.numel(),))
        np.testing.assert_array_equal(tensor.numpy().reshape(-1), expected, err_msg=name)

    muscle = effector.muscle.tensors()
    compared = 0
    for src, dst in motornet.MUSCLE_BUFFERS.items():
        if "muscle." + src in buffers and dst in muscle:
            same(muscle[dst], "muscle." + src)
            compared += 1
    assert compared >= 5
    if effector.muscle.kind == "mujoco":  # MuJoCo's l0_pe is its peak passive force
        same(muscle["fpmax"], "muscle.l0_pe")
    skeleton = effector.skeleton
    for bound in ("pos_lower", "pos_upper", "vel_lower", "vel_upper"):
        same(getattr(skeleton, bound), f"skeleton.{bound}_bound")
    same(skeleton.inertia_const.reshape(-1), "skeleton.inertia_c")
    same(skeleton.inertia_cos.reshape(-1), "skeleton.inertia_m")
    geometry = effector.geometry
    same(geometry.a0, "a0")
    same(geometry.a1.reshape(-1), "a1")
    same(geometry.a2.reshape(-1), "a2")
    same(geometry.offset, "a3")
    assert effector.damping == float(motornet.buffer_values(buffers, "damping"))
    assert effector.muscle_names == tuple(meta["effector"]["muscle_names"])
    assert effector.dtype == torch.float64


def test_importer_rejects_unsupported_classes(golden_dir):
    meta = json.loads((golden_dir / "arm26_euler_f32_random.json").read_text())
    other = {**meta, "effector": {**meta["effector"], "muscle_class": "SomeOtherMuscle"}}
    with pytest.raises(ValueError, match="unsupported muscle class"):
        motornet.effector_from_case(other, torch.float32)
    env = json.loads((golden_dir / "env_arm26_pdelay20_vdelay50.json").read_text())
    with pytest.raises(ValueError, match="noise"):
        motornet.env_settings({**env, "env_kwargs": {**env["env_kwargs"], "obs_noise": 0.1}}, 0.01)


def test_env_settings_use_mn_gym_delays(golden_dir):
    """MotorNet's delay D (s) shows a value D - dt earlier; None means dt, i.e. no lag."""
    meta = json.loads((golden_dir / "env_arm26_pdelay20_vdelay50.json").read_text())
    settings = motornet.env_settings(meta, 0.01)
    assert settings.proprioception_delay == pytest.approx(0.01) and settings.vision_delay == pytest.approx(0.04)
    assert settings.seed == meta["env_seed"] and settings.action_frame_stacking == 0
    meta = json.loads((golden_dir / "env_pointmass_default_stack1.json").read_text())
    settings = motornet.env_settings(meta, 0.01)
    assert settings.proprioception_delay == settings.vision_delay == 0.0
    assert settings.action_frame_stacking == 1 and settings.episode_duration == 0.5
