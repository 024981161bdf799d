"""The `mn-gym` command line: every subcommand with tiny budgets, resume, and the errors a user can run into."""

import csv
import json
import shutil
import subprocess
import sys
from dataclasses import asdict

import pytest
import torch

from mn_gym import cli
from mn_gym.train import runs
from mn_gym.train.hyperparams import tuned
from mn_gym.train.settings import SETTINGS, BPTTSettings, PPOSettings, SACSettings, describe

# Tiny settings so that each algo makes a few updates in seconds.
TINY = {
    "bptt": ["--set", "batch_size=16", "--set", "compile_effector=False", "--steps", "3200"],
    "ppo": ["--set", "n_envs=4", "--set", "n_steps=16", "--set", "batch_size=32", "--steps", "256"],
    "sac": ["--set", "n_envs=2", "--set", "learning_starts=20", "--set", "batch_size=16", "--steps", "120"],
    "recurrent-ppo": ["--set", "n_envs=4", "--set", "n_steps=16", "--set", "batch_size=32",
                      "--set", "policy_kwargs={'lstm_hidden_size': 8, 'net_arch': [8]}", "--steps", "128"],
    "rsl-ppo": ["--set", "n_envs=8", "--set", "n_steps=8", "--set", "hidden_dims=[8, 8]", "--steps", "128"],
}


def run_cli(*argv, expect=0):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    assert code == expect, f"mn-gym {' '.join(map(str, argv))} exited {code}, expected {expect}"


def train_tiny(out, algo="bptt", env="PointMassReach-v0", *extra, expect=0):
    run_cli("train", "--algo", algo, "--env", env, "--out", out, "--no-progress", "--eval-episodes", 128,
            *TINY[algo], *extra, expect=expect)


def tiny_settings(algo, env="PointMassReach-v0"):
    """TINY[algo]'s `--set` overrides on the env's tuned settings, as the settings dataclass they build."""
    pairs = TINY[algo][1:-2:2]
    return tuned(algo, env, SETTINGS[algo].parse_values(dict(p.split("=", 1) for p in pairs)))


def read_curve(run_dir):
    with (run_dir / "metrics.csv").open() as f:
        return list(csv.DictReader(f))


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "mn_gym.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("list", "train", "eval", "render", "bench", "sweep"):
        assert command in out.stdout


@pytest.mark.parametrize("command", ["list", "train", "eval", "render", "bench", "sweep"])
def test_subcommand_help(command, capsys):
    run_cli(command, "--help")
    text = capsys.readouterr().out
    assert f"mn-gym {command}" in text and "options:" in text


def test_list(capsys):
    run_cli("list")
    text = capsys.readouterr().out
    for env_id in runs.mn_gym.list_ids():
        assert env_id in text
    run_cli("list", "--json")
    table = json.loads(capsys.readouterr().out)
    arm = next(r for r in table if r["id"] == "ArmReach-v0")
    assert (arm["effector"], arm["task"], arm["actions"], arm["steps"]) == ("arm26", "reach", "6", "100")


@pytest.mark.parametrize("algo", runs.ALGOS)
def test_train_eval_each_algo(algo, tmp_path, capsys):
    out = tmp_path / algo
    train_tiny(out, algo)
    for name in ("run.json", "metrics.csv", "summary.json", "curve.png", "trajectories.png"):
        assert (out / name).is_file(), name
    summary = json.loads((out / "summary.json").read_text())
    assert summary["algo"] == algo and summary["env_steps"] > 0
    assert json.loads((out / "run.json").read_text())["settings"] == asdict(tiny_settings(algo)) == summary["settings"]
    assert 0.0 <= summary["final_eval_success_rate"] <= 1.0 and summary["final_eval_distance_m"] > 0
    curve = read_curve(out)
    assert len(curve) >= 2 and int(curve[-1]["env_steps"]) == summary["env_steps"]
    assert not (tmp_path / f".{algo}.partial").exists()
    capsys.readouterr()
    run_cli("eval", out, "--episodes", 32, "--json", tmp_path / "eval.json")
    result = json.loads((tmp_path / "eval.json").read_text())
    assert result["episodes"] == 32 and result["algo"] == algo
    assert "success" in capsys.readouterr().out


def test_eval_is_the_training_evaluation(tmp_path):
    """`eval` with the training's held-out seed and size reproduces the final curve row (same episodes)."""
    out = tmp_path / "ppo"
    train_tiny(out, "ppo")
    result = runs.evaluate_run(out, episodes=128, seed=12345, plot=False)
    final = read_curve(out)[-1]
    assert result["mean_final_distance_m"] == pytest.approx(float(final["eval_final_distance"]), rel=1e-5)
    assert result["success_rate"] == pytest.approx(float(final["eval_success_rate"]))


def test_render_gif_and_png(tmp_path, capsys):
    out = tmp_path / "run"
    train_tiny(out)
    run_cli("render", out, "--episodes", 1, "--width", 120)
    assert (out / "episode.gif").stat().st_size > 1000
    run_cli("render", out, "--episodes", 1, "--width", 120, "--out", tmp_path / "frame.png")
    from PIL import Image

    assert Image.open(tmp_path / "frame.png").size[0] == 120
    pytest.importorskip("moviepy")
    run_cli("render", out, "--episodes", 1, "--width", 96, "--out", tmp_path / "clip.mp4")
    assert (tmp_path / "clip.mp4").stat().st_size > 1000
    run_cli("render", out, "--out", tmp_path / "frame.jpg", expect=2)
    assert "must end in .gif, .mp4 or .png" in capsys.readouterr().err


def test_resume_extends_the_budget(tmp_path):
    out = tmp_path / "bptt"
    train_tiny(out)
    first = json.loads((out / "summary.json").read_text())
    run_cli("train", "--env", "PointMassReach-v0", "--out", out, "--no-progress", "--resume",
            "--set", "batch_size=16", "--set", "compile_effector=False", "--steps", 6400)
    second = json.loads((out / "summary.json").read_text())
    assert (first["env_steps"], second["env_steps"]) == (3200, 6400)
    assert [int(r["env_steps"]) for r in read_curve(out)][:3] == [0, 1600, 3200]

    ppo = tmp_path / "ppo"
    train_tiny(ppo, "ppo")
    run_cli("train", "--algo", "ppo", "--env", "PointMassReach-v0", "--out", ppo, "--no-progress", "--resume",
            *TINY["ppo"][:-1], 512)
    assert json.loads((ppo / "summary.json").read_text())["env_steps"] == 512


def test_bad_requests_fail_clearly(tmp_path, capsys):
    base = ["train", "--env", "PointMassReach-v0", "--out", tmp_path / "x", "--no-progress"]
    cases = [
        (["train", "--env", "NoSuchEnv-v0", "--steps", 100], "unknown env id 'NoSuchEnv-v0'"),
        (["train", "--algo", "dqn", "--env", "ArmReach-v0", "--steps", 100], "invalid choice: 'dqn'"),
        ([*base], "give a budget"),
        ([*base, "--minutes", -1], "positive number of minutes"),
        ([*base, "--steps", 0], "positive integer number of env steps"),
        ([*base, "--steps", 10**6, "--eval-episodes", 0], "argument --eval-episodes: must be >= 1, got 0"),
        ([*base, "--steps", 10**6, "--threads", 0], "argument --threads: must be >= 1, got 0"),
        ([*base, "--steps", 10**6, "--device", "cuda:7" if torch.cuda.is_available() else "cuda"], "CUDA GPU"),
        ([*base, "--steps", 10**6, "--device", "abacus"], "unknown device 'abacus'"),
        ([*base, "--steps", 10**6, "--env-set", "foo=1"], "env settings {'foo': 1}"),
        (["eval", tmp_path, "--episodes", "many"], "argument --episodes: must be a whole number"),
        (["render", tmp_path, "--out", tmp_path / "frame.jpg"], "must end in .gif, .mp4 or .png"),
        ([*base, "--algo", "ppo", "--steps", 100], "too small for one ppo update"),
        ([*base, "--steps", 100], "too small for one bptt update"),
        ([*base, "--steps", 10**6, "--set", "n_envz=3"], "unknown bptt setting(s) ['n_envz']"),
        ([*base, "--steps", 10**6, "--set", "lr"], "key=value"),
        (["eval", tmp_path], "not an mn_gym run folder"),
        (["sweep", "--envs", "ArmReach-v0", "--algos", "ppo", "--out", tmp_path / "s"], "give a budget"),
        (["sweep", "--envs", "ArmReach-v0", "--algos", "ppo", "bptt", "--steps", 10**6, "--out", tmp_path / "s",
          "--set", "sac.batch_size=3"], "not in the sweep"),
    ]
    for argv, message in cases:
        run_cli(*argv, expect=2)
        assert message in capsys.readouterr().err, argv
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    run_cli(*base[:3], "--out", blocker / "run", "--steps", 10**6, expect=2)
    assert "is not writable" in capsys.readouterr().err
    run_cli(*base[:3], "--out", blocker, "--steps", 10**6, expect=2)
    assert "is not a folder" in capsys.readouterr().err


def test_internal_errors_keep_their_traceback(tmp_path, monkeypatch):
    """A ValueError from deep inside training is a bug, not a user error: it propagates (exit 1, traceback)."""

    def bug(*args, **kwargs):
        raise ValueError("an internal bug")

    monkeypatch.setattr(runs, "train_bptt", bug)
    with pytest.raises(ValueError, match="an internal bug"):
        train_tiny(tmp_path / "run")
    assert not (tmp_path / ".run.partial").exists()  # and it failed before a checkpoint: nothing left behind


def test_checkpoint_from_another_env(tmp_path, capsys):
    out = tmp_path / "run"
    train_tiny(out)
    capsys.readouterr()
    run_cli("eval", out, "--env", "ArmReach-v0", expect=2)
    assert "trained on PointMassReach-v0, not ArmReach-v0" in capsys.readouterr().err
    train_tiny(out, "bptt", "ArmReach-v0", "--resume", expect=2)
    assert "only continues on its own env" in capsys.readouterr().err
    train_tiny(out, "ppo", "PointMassReach-v0", "--resume", expect=2)
    assert "is bptt on PointMassReach-v0, not ppo" in capsys.readouterr().err


def _files(folder):
    """Every file under `folder` (sub-folders such as tensorboard/ included) with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_good_results_are_never_partly_overwritten(tmp_path, capsys, monkeypatch):
    out = tmp_path / "run"
    train_tiny(out)
    before = _files(out)
    capsys.readouterr()
    train_tiny(out, expect=2)  # a finished run is kept unless --overwrite
    assert "already holds a finished run" in capsys.readouterr().err

    def fail_early(*args, **kwargs):  # fails before its first checkpoint (a bad setting, say)
        (kwargs["out_dir"] / "metrics.csv").write_text("half a curve")
        raise runs.RunError("bad setting")

    monkeypatch.setattr(runs, "train_bptt", fail_early)
    train_tiny(out, "bptt", "PointMassReach-v0", "--overwrite", expect=2)
    partial = tmp_path / ".run.partial"
    assert _files(out) == before and not partial.exists()  # nothing left that would block the corrected rerun

    def crash(*args, **kwargs):  # interrupted after a checkpoint: the partial run is kept for --resume
        (kwargs["out_dir"] / "metrics.csv").write_text("half a curve")
        (kwargs["out_dir"] / "checkpoint.pt").write_bytes(b"progress")
        raise KeyboardInterrupt

    monkeypatch.setattr(runs, "train_bptt", crash)
    with pytest.raises(KeyboardInterrupt):
        train_tiny(out, "bptt", "PointMassReach-v0", "--overwrite")
    assert _files(out) == before  # the old run is untouched
    assert partial.is_dir()
    train_tiny(out, expect=2)  # the interrupted run is not silently discarded
    assert "pass --resume to continue it or --overwrite" in capsys.readouterr().err
    monkeypatch.undo()
    train_tiny(out, "bptt", "PointMassReach-v0", "--overwrite", "--seed", "3")
    assert json.loads((out / "summary.json").read_text())["seed"] == 3 and not partial.exists()


def test_bench_subcommand(tmp_path):
    run_cli("bench", "bptt", "--quick", "--no-motornet", "--json", tmp_path / "b.json")
    results = json.loads((tmp_path / "b.json").read_text())
    assert results["seconds"]["mn_gym"]["median"] > 0


def test_sweep_local_ray(tmp_path, capsys):
    """2 envs x 2 algos x 2 seeds on a local Ray: one table; a second call reuses the finished trials and continues
    an interrupted one; a third with other settings fails those trials instead of reusing runs of the old ones."""
    pytest.importorskip("ray")
    out = tmp_path / "grid"
    argv = ["sweep", "--envs", "PointMassReach-v0", "ArmReach-v0", "--algos", "bptt", "ppo", "--seeds", 0, 1,
            "--steps", 1600, "--eval-episodes", 64, "--out", out, "--no-progress", "--set", "bptt.batch_size=16",
            "--set", "bptt.compile_effector=False", "--set", "ppo.n_envs=4", "--set", "ppo.n_steps=16",
            "--set", "ppo.batch_size=32"]
    run_cli(*argv)
    text = capsys.readouterr().out
    with (out / "trials.csv").open() as f:
        trials = list(csv.DictReader(f))
    assert len(trials) == 8 and {t["status"] for t in trials} == {"done"}
    assert {(t["env_id"], t["algo"], t["seed"]) for t in trials} == {
        (e, a, s) for e in ("PointMassReach-v0", "ArmReach-v0") for a in ("bptt", "ppo") for s in ("0", "1")}
    table = (out / "table.md").read_text()
    assert table in text and len(table.strip().splitlines()) == 2 + 4
    assert (out / "curves_ArmReach-v0.png").is_file() and (out / "curves_PointMassReach-v0.png").is_file()
    shutil.rmtree(out / "ArmReach-v0" / "ppo" / "seed1")
    interrupted = out / "ArmReach-v0" / "bptt" / "seed1"  # as a killed worker leaves it: unpublished, checkpointed
    (interrupted / "summary.json").unlink()
    interrupted.rename(interrupted.parent / ".seed1.partial")
    run_cli(*[a for a in argv if a != "--no-progress"])
    with (out / "trials.csv").open() as f:
        statuses = [t["status"] for t in csv.DictReader(f)]
    assert statuses.count("reused") == 6 and statuses.count("done") == 1 and statuses.count("resumed") == 1
    assert (interrupted / "summary.json").is_file()
    progress = [line for line in capsys.readouterr().err.splitlines() if line.startswith("sweep: ")]
    assert len(progress) == 8 and progress[-1].startswith("sweep: 8/8 trials; ")  # a log: lines, no redraws
    assert sum(" reused: " in line and " % success, " in line for line in progress) == 6
    run_cli(*argv[:-1], "ppo.batch_size=8", expect=1)  # batch_size 8: the finished ppo runs are not this sweep's
    with (out / "trials.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [r["status"] for r in rows if r["algo"] == "bptt"] == ["reused"] * 4
    failed = [r for r in rows if r["algo"] == "ppo"]
    assert {r["status"] for r in failed} == {"failed"} and len(failed) == 4
    assert all("differs from this trial: batch_size 32 (asked 8)" in r["error"] for r in failed)
    assert "pass --overwrite to rerun it" in capsys.readouterr().err


def test_settings_are_typed_dataclasses():
    """`--set` text is read against the field types; defaults are the tuned values; bad values name the key."""
    s = BPTTSettings.parse({"lr": "3e-3", "lr_schedule": "exponential", "truncation": "None", "grad_clip": "2"})
    assert (s.lr, s.lr_schedule, s.truncation, s.grad_clip) == (3e-3, "exponential", None, 2.0)
    assert isinstance(s.grad_clip, float) and s.batch_size == 128 and s.compile_effector is False
    assert PPOSettings().policy_kwargs == {"net_arch": [128, 128], "log_std_init": -1.0}
    assert PPOSettings().policy_kwargs is not PPOSettings().policy_kwargs  # no shared mutable default
    assert SACSettings.parse({"train_freq": "(1, 'episode')"}).train_freq == (1, "episode")
    cases = [
        (lambda: BPTTSettings.parse({"lr": "fast"}), "bptt setting lr must be float, got 'fast'"),
        (lambda: BPTTSettings.parse({"batch_size": "1.5"}), "bptt setting batch_size must be int, got 1.5"),
        (lambda: BPTTSettings.parse({"compile_effector": "1"}), "compile_effector must be bool"),
        (lambda: BPTTSettings(lr_schedule="linear"), "must be 'constant' | 'cosine' | 'exponential', got 'linear'"),
        (lambda: BPTTSettings(batch_size=0), "bptt setting batch_size must be > 0, got 0"),
        (lambda: BPTTSettings(lr_final=2.0), "lr_final must be in (0, 1], got 2.0"),
        (lambda: PPOSettings.from_dict({"n_envz": 3}), "unknown ppo setting(s) ['n_envz']; valid: n_envs, n_steps"),
    ]
    for make, message in cases:
        with pytest.raises(ValueError) as info:
            make()
        assert message in str(info.value) and "\n" not in str(info.value)


def test_bad_settings_on_the_command_line(tmp_path, capsys):
    base = ["train", "--env", "PointMassReach-v0", "--out", tmp_path / "x", "--no-progress", "--steps", 10**6]
    cases = [
        ([*base, "--set", "lr=fast"], "bptt setting lr must be float, got 'fast'"),
        ([*base, "--algo", "sac", "--set", "learning_starts=1e3"], "sac setting learning_starts must be int"),
        ([*base, "--set", "lr_schedule=linear"], "lr_schedule must be 'constant' | 'cosine' | 'exponential'"),
        ([*base, "--algo", "ppo", "--set", "lr=1e-3"], "valid: n_envs, n_steps, batch_size"),
        (["sweep", "--envs", "ArmReach-v0", "--algos", "ppo", "--steps", 10**6, "--out", tmp_path / "s",
          "--set", "ppo.n_envs=many"], "ppo setting n_envs must be int, got 'many'"),
        (["sweep", "--envs", "ArmReach-v0", "--algos", "ppo", "--steps", 10**6, "--out", tmp_path / "s",
          "--set", "dqn.n_envs=4"], "unknown algo 'dqn'"),
    ]
    for argv, message in cases:
        run_cli(*argv, expect=2)
        err = capsys.readouterr().err
        assert message in err and len(err.strip().splitlines()) == 1, (argv, err)
    assert not (tmp_path / "x").exists() and not (tmp_path / ".x.partial").exists()


def test_show_settings_lists_every_field(capsys):
    run_cli("train", "--show-settings")
    lines = capsys.readouterr().out.splitlines()
    for algo, cls in SETTINGS.items():
        assert any(line.startswith(f"{algo} ({cls.__name__})") for line in lines), algo
        for name, kind, default, doc in describe(cls):
            assert any(line.split()[:1] == [name] and kind in line and default in line and line.endswith(doc)
                       for line in lines), (algo, name)
    assert ("lr_schedule", "'constant' | 'cosine' | 'exponential'", "'cosine'",
            "learning-rate decay over the budget") in describe(BPTTSettings)


def test_show_settings_applies_set_to_its_algo(capsys):
    run_cli("train", "--show-settings", "--algo", "rsl-ppo", "--env", "ArmReach-v0", "--set", "n_envs=8")
    out = capsys.readouterr().out
    sections = {block.split(" ", 1)[0]: block for block in out.split("\n\n")}
    assert sections["rsl-ppo"].startswith("rsl-ppo (RslPPOSettings) tuned for ArmReach-v0, with --set: ")
    assert any(line.split()[:3] == ["n_envs", "int", "8"] for line in sections["rsl-ppo"].splitlines())
    assert not any(line.split()[:3] == ["n_envs", "int", "8"] for line in sections["ppo"].splitlines())
    run_cli("train", "--show-settings", "--algo", "rsl-ppo", "--set", "n_envz=8", expect=2)
    assert "n_envz" in capsys.readouterr().err
