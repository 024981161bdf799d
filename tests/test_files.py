"""Run folders are data, never code: every load path refuses a crafted pickle without running it, a damaged file is
refused by name, SB3 agents round-trip through weights-only files, and the compiled-step cache never loads a
damaged entry."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from test_cli import TINY, read_curve, run_cli, train_tiny

from mn_gym import files
from mn_gym.train import runs

POLICY_FILE = runs.POLICY_FILE


class Payload:
    """Unpickling this calls `Path.touch(marker)`: the stand-in for code in a shared file."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return Path.touch, (self.marker,)


def plant_payload(run_dir: Path, name: str, marker: Path) -> None:
    """Replace `run_dir/name` by a pickle that would run code, and re-sign the manifest as an attacker could."""
    torch.save({"policy": Payload(marker), "actor": Payload(marker), "parameters": Payload(marker)}, run_dir / name)
    files.write_manifest(run_dir)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished tiny run of each algo (the SB3 ones skip without stable-baselines3 / sb3-contrib)."""
    root = tmp_path_factory.mktemp("runs")
    out = {}
    for algo in POLICY_FILE:
        if algo in ("ppo", "sac"):
            pytest.importorskip("stable_baselines3")
        if algo == "recurrent-ppo":
            pytest.importorskip("sb3_contrib")
        train_tiny(root / algo, algo)
        out[algo] = root / algo
    return out


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_policy_file_names_are_the_trainers():
    from mn_gym.train import bptt, rsl, sb3

    assert {POLICY_FILE["bptt"], POLICY_FILE["rsl-ppo"], POLICY_FILE["ppo"]} == {bptt.CHECKPOINT, rsl.CHECKPOINT,
                                                                                 sb3.AGENT}


@pytest.mark.parametrize("algo", list(POLICY_FILE))
def test_published_folders_hold_data_and_a_manifest(trained, algo):
    run_dir = trained[algo]
    names = {p.name for p in run_dir.iterdir() if p.is_file()}
    assert {"run.json", "summary.json", "metrics.csv", "manifest.json", POLICY_FILE[algo]} <= names
    assert not names & {"model.zip", "vecnormalize.pkl", "progress.pt"}
    digests = json.loads((run_dir / "manifest.json").read_text())["sha256"]
    assert {n for n in names if n != "manifest.json"} <= set(digests)
    torch.load(run_dir / POLICY_FILE[algo], weights_only=True)  # weights only: plain tensors and values


@pytest.mark.parametrize("algo", list(POLICY_FILE))
def test_a_crafted_pickle_is_refused_on_every_load_path(trained, algo, tmp_path, capsys):
    """eval, render and --resume all read the policy file: none of them runs the planted code."""
    run_dir = copy_run(trained[algo], tmp_path / "shared")
    marker = tmp_path / "executed"
    plant_payload(run_dir, POLICY_FILE[algo], marker)
    with pytest.raises(files.BadFileError, match="Python objects other than tensors"):
        runs.load_policy(run_dir)
    run_cli("eval", run_dir, "--episodes", 8, expect=2)
    run_cli("render", run_dir, "--episodes", 1, "--width", 64, "--out", tmp_path / "x.png", expect=2)
    run_cli("train", "--algo", algo, "--env", "PointMassReach-v0", "--out", run_dir, "--no-progress", "--resume",
            *TINY[algo][:-1], 10 * int(TINY[algo][-1]), expect=2)
    err = capsys.readouterr().err
    assert err.count(f"refusing {run_dir / POLICY_FILE[algo]}") == 3 and "Traceback" not in err
    assert not marker.exists() and not (tmp_path / ".shared.partial").exists()


def test_a_flipped_byte_is_refused_by_name(trained, tmp_path, capsys):
    run_dir = copy_run(trained["bptt"], tmp_path / "run")
    path = run_dir / "checkpoint.pt"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(files.BadFileError, match=r"checkpoint\.pt: it is damaged or was altered"):
        runs.load_policy(run_dir)
    run_cli("eval", run_dir, "--episodes", 8, expect=2)
    assert "checkpoint.pt: it is damaged or was altered" in capsys.readouterr().err
    # resuming a damaged published run is refused before anything is copied or trained
    run_cli("train", "--env", "PointMassReach-v0", "--out", run_dir, "--no-progress", "--resume",
            *TINY["bptt"][:-1], 6400, expect=2)
    assert "damaged or was altered" in capsys.readouterr().err


def test_truncated_and_foreign_files_give_a_clear_error(tmp_path):
    path = tmp_path / "checkpoint.pt"
    files.save_tensors({"a": torch.ones(1000)}, path)
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(files.BadFileError, match=re.escape(f"refusing {path}")):
        files.load_tensors(path)
    path.write_text("not a torch file")
    with pytest.raises(files.BadFileError, match=re.escape(f"refusing {path}")):
        files.load_tensors(path)
    with pytest.raises(FileNotFoundError):
        files.load_tensors(tmp_path / "missing.pt")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(files.BadFileError, match=r"manifest\.json is damaged"):
        files.check_file(path)


def test_files_added_or_removed_after_publishing(tmp_path):
    (tmp_path / "a.json").write_text("{}")
    files.write_manifest(tmp_path)
    (tmp_path / "b.pt").write_bytes(b"x")
    with pytest.raises(files.BadFileError, match="not in"):
        files.check_file(tmp_path / "b.pt")
    (tmp_path / "a.json").unlink()
    with pytest.raises(files.BadFileError, match=r"a\.json is missing"):
        files.check_folder(tmp_path)


def test_incomplete_run_json_is_a_user_error(trained, tmp_path, capsys):
    run_dir = copy_run(trained["bptt"], tmp_path / "run")
    run = json.loads((run_dir / "run.json").read_text())
    del run["env_id"]
    (run_dir / "run.json").write_text(json.dumps(run))
    files.write_manifest(run_dir)
    run_cli("eval", run_dir, expect=2)
    assert "run.json is incomplete: it lacks env_id" in capsys.readouterr().err


def test_old_pickled_sb3_folders_are_not_loaded(trained, tmp_path):
    pytest.importorskip("stable_baselines3")
    run_dir = copy_run(trained["ppo"], tmp_path / "old")
    (run_dir / "agent.pt").rename(run_dir / "model.zip")
    (run_dir / "manifest.json").unlink()
    with pytest.raises(files.BadFileError, match="no longer loads pickles"):
        runs.load_policy(run_dir)


@pytest.mark.parametrize("algo", ["ppo", "sac"])
def test_sb3_agents_round_trip_through_weights_only_files(trained, algo):
    """The rebuilt agent acts as the trained one did: `eval` reproduces the final evaluation, and the
    normaliser's statistics are the trained ones."""
    from mn_gym.train.sb3 import load_agent

    run_dir = trained[algo]
    result = runs.evaluate_run(run_dir, episodes=128, seed=12345, plot=False)
    final = read_curve(run_dir)[-1]
    assert result["mean_final_distance_m"] == pytest.approx(float(final["eval_final_distance"]), rel=1e-5)
    _, policy = runs.load_policy(run_dir)
    saved = load_agent(run_dir)["normalizer"]
    assert torch.equal(torch.from_numpy(policy.normalizer.obs_rms.mean), saved["obs_mean"])
    assert policy.normalizer.obs_rms.count == saved["obs_count"] > 0


def test_a_damaged_compile_cache_entry_is_rebuilt_not_loaded(tmp_path, monkeypatch):
    """Garbage at a cache path (with no checksum, a wrong one, or a right checksum of garbage) is removed with a
    warning instead of being loaded as a shared library."""
    from mn_gym import compilation

    path = tmp_path / "step-0.pt2"
    for digest in (None, "0" * 64, "right"):
        path.write_bytes(b"\x7fELF not a package")
        if digest == "right":
            compilation._digest_path(path).write_text(files.sha256(path))
        elif digest is not None:
            compilation._digest_path(path).write_text(digest)
        with pytest.warns(RuntimeWarning, match="rebuilding the compiled step"):
            assert compilation._load_cached(path) is None
        assert not path.exists() and not compilation._digest_path(path).exists()
    assert compilation._load_cached(path) is None  # nothing cached: nothing to load, no warning


def test_one_writer_per_run_folder(tmp_path, capsys):
    out = tmp_path / "run"
    with runs._writer_lock(out):  # another run is writing `out`
        train_tiny(out, expect=2)
    assert "another mn-gym run is writing" in capsys.readouterr().err and not out.exists()
    train_tiny(out)  # the lock ends with its holder
    assert (out / "summary.json").is_file()


def test_resume_continues_the_recorded_run_and_refuses_changes(trained, tmp_path, capsys):
    out = copy_run(trained["bptt"], tmp_path / "run")
    capsys.readouterr()
    resume = ["train", "--env", "PointMassReach-v0", "--out", out, "--no-progress", "--resume", "--steps", 6400]
    conflicts = ((["--seed", 3], "seed 0 (asked 3)"), (["--set", "batch_size=32"], "batch_size 16 (asked 32)"),
                 (["--env-set", "muscle=thelen"], "env settings {} (asked {'muscle': 'thelen'})"))
    for extra, message in conflicts:
        run_cli(*resume, *extra, expect=2)
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not (tmp_path / ".run.partial").exists()
    run_cli(*resume, "--set", "batch_size=16")  # what was recorded may be repeated; the rest comes from run.json
    summary = json.loads((out / "summary.json").read_text())
    assert summary["env_steps"] == 6400 and summary["settings"]["batch_size"] == 16
    assert summary["settings"]["compile_effector"] is False and summary["seed"] == 0
