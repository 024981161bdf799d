"""The tuned settings files (`mn_gym/hyperparams/<algo>.yml`): complete, valid, read by mn_gym's trainers, the
CLI, sweeps and rl-zoo3; bad files fail with the file, env id and key named; the search script writes them."""

import argparse
import importlib.util
import json
import shlex
import shutil
import sys
from dataclasses import asdict, replace
from importlib import resources
from pathlib import Path

import gymnasium
import optuna
import pytest
import yaml

from mn_gym import cli
from mn_gym.catalogue import tomllib
from mn_gym.train import hyperparams, runs, sweep
from mn_gym.train.hyperparams import (
    NEW_ENTRY_TIMESTEPS,
    ZOO_KEYS,
    ZOO_NAMES,
    HyperparamsError,
    tuned,
    tuned_ids,
    write_tuned,
    zoo_file,
)
from mn_gym.train.settings import ALGOS, SETTINGS, PPOSettings, RecurrentPPOSettings, SACSettings

ROOT = Path(__file__).resolve().parents[1]
TIME_LIMIT_HOMES = (gymnasium.wrappers, gymnasium.wrappers.common, gymnasium.envs.registration)


@pytest.fixture(autouse=True)
def _gymnasium_time_limit_restored():
    """Importing rl-zoo3 replaces gymnasium's TimeLimit process-wide (rl_zoo3.gym_patches adds
    "TimeLimit.truncated" to infos); put the original back so the other test modules see plain Gymnasium."""
    originals = [home.__dict__.get("TimeLimit") for home in TIME_LIMIT_HOMES]
    yield
    for home, original in zip(TIME_LIMIT_HOMES, originals, strict=True):
        if original is None:
            home.__dict__.pop("TimeLimit", None)
        else:
            home.TimeLimit = original
SHIPPED_IDS = sorted(tomllib.loads(resources.files("mn_gym.catalogue_data").joinpath("catalogue.toml").read_text()))
SEARCH_LINE = "# search: see baselines/tune.py"


@pytest.fixture
def folder(tmp_path, monkeypatch):
    """A copy of the package's hyperparameter files that `tuned`, `zoo_file` and the trainers read instead."""
    copy = tmp_path / "hyperparams"
    shutil.copytree(hyperparams.FOLDER, copy)
    monkeypatch.setattr(hyperparams, "FOLDER", copy)
    return copy


def entry_text(tmp_path, algo, body):
    path = tmp_path / f"{algo}.yml"
    path.write_text(body)
    return path


@pytest.mark.parametrize("algo", ALGOS)
def test_every_shipped_id_has_a_complete_valid_entry(algo):
    """Each file has an entry per catalogue id listing every setting (rl-zoo3 runs the same values), plus the
    rl-zoo3 keys in the SB3 files; the header and the search placeholder line are there."""
    text = zoo_file(algo).read_text()
    assert text.startswith("# mn_gym: tuned ") and SEARCH_LINE in text.splitlines()
    entries = yaml.safe_load(text)
    assert set(SHIPPED_IDS) <= set(tuned_ids(algo)) == set(entries)
    zoo = [*ZOO_KEYS[algo], "n_timesteps"] if algo in ZOO_KEYS else []
    for env_id in SHIPPED_IDS:
        assert set(entries[env_id]) == {*SETTINGS[algo].names(), *zoo}, env_id
        assert f"\n{env_id}:\n  " in text  # one key a line, as write_tuned writes them
        settings = tuned(algo, env_id)
        assert type(settings) is SETTINGS[algo]
        assert yaml.safe_load(yaml.safe_dump(asdict(settings))).items() <= entries[env_id].items()
        if algo in ZOO_KEYS:
            assert isinstance(entries[env_id]["n_timesteps"], int) and entries[env_id]["n_timesteps"] > 0


def test_an_id_without_an_entry_gets_the_defaults(tmp_path):
    path = entry_text(tmp_path, "ppo", "ArmReach-v0: {n_envs: 8}\n")
    assert tuned("ppo", "MyReach-v0", path=path) == PPOSettings()
    assert tuned("ppo", "ArmReach-v0", path=path) == PPOSettings(n_envs=8)
    assert tuned("ppo", "ArmReach-v0", {"n_steps": 16}, path=path) == PPOSettings(n_envs=8, n_steps=16)
    assert tuned_ids("ppo", path) == ["ArmReach-v0"]


def test_rl_zoo3_value_forms_are_read_without_eval(tmp_path):
    """rl-zoo3's `policy_kwargs` strings (dict(...) with literals, nested) and list train_freq."""
    path = entry_text(tmp_path, "sac", """\
ArmReach-v0:
  n_timesteps: 1.0e+6
  train_freq: [2, episode]
  policy_kwargs: "dict(net_arch=dict(pi=[64], qf=[64, 64]), log_std_init=-2)"
PointMassReach-v0:
  policy_kwargs: "{'net_arch': [32]}"
""")
    arm = tuned("sac", "ArmReach-v0", path=path)
    assert arm.train_freq == (2, "episode")
    assert arm.policy_kwargs == {"net_arch": {"pi": [64], "qf": [64, 64]}, "log_std_init": -2}
    assert tuned("sac", "PointMassReach-v0", path=path).policy_kwargs == {"net_arch": [32]}


def test_bad_files_fail_clearly(tmp_path):
    """Each problem raises one line naming the file, the env id and the key; nothing in a file is run."""
    pwned = tmp_path / "pwned"
    cases = [
        ("ppo", "ArmReach-v0: [1, 2\n", "not valid YAML"),
        ("ppo", "- ArmReach-v0\n", "must map env ids to settings, got a list"),
        ("ppo", "ArmReach-v0: 3\n", "ArmReach-v0: the entry must map setting names to values, got 3"),
        ("ppo", "ArmReach-v0: {n_envz: 3}\n", "ArmReach-v0: unknown key(s) ['n_envz']; valid: n_envs, n_steps"),
        ("ppo", "ArmReach-v0: {n_envs: many}\n", "ArmReach-v0: ppo setting n_envs must be int, got 'many'"),
        ("ppo", "ArmReach-v0: {learning_rate: lin_1e-3}\n", "ppo setting learning_rate must be float"),
        ("ppo", "ArmReach-v0: {policy: CnnPolicy}\n", "ArmReach-v0: policy must be 'MlpPolicy'"),
        ("ppo", "ArmReach-v0: {normalize: false}\n", "ArmReach-v0: normalize must be True"),
        ("ppo", "ArmReach-v0: {n_timesteps: -5}\n", "ArmReach-v0: n_timesteps must be a positive number"),
        ("bptt", "ArmReach-v0: {n_timesteps: 1000}\n", "ArmReach-v0: unknown key(s) ['n_timesteps']"),
        ("ppo", 'ArmReach-v0: {policy_kwargs: "dict(activation_fn=nn.ReLU)"}\n', "policy_kwargs 'dict(activation_fn"),
        ("ppo", f'ArmReach-v0: {{policy_kwargs: "open(r\'{pwned}\', \'w\')"}}\n', "no names or calls"),
        ("ppo", "ArmReach-v0: {policy_kwargs: \"__import__('os').getcwd()\"}\n", "is not read: only dict("),
        ("ppo", 'ArmReach-v0: {policy_kwargs: "[64, 64]"}\n', "is not read"),
    ]
    for algo, body, message in cases:
        path = entry_text(tmp_path, algo, body)
        with pytest.raises(HyperparamsError) as info:
            tuned(algo, "ArmReach-v0", path=path)
        text = str(info.value)
        assert text.startswith(f"{path}: ") and message in text and "\n" not in text, (body, text)
    assert not pwned.exists()
    with pytest.raises(HyperparamsError, match="cannot read the hyperparameter file"):
        tuned("ppo", "ArmReach-v0", path=tmp_path / "missing.yml")
    with pytest.raises(HyperparamsError, match="unknown algo 'dqn'; choose one of bptt, ppo"):
        zoo_file("dqn")


def test_write_tuned_rewrites_one_entry_and_keeps_the_rest(folder):
    path = folder / "ppo.yml"
    before = path.read_text()
    header = before.split("\n\n")[0]
    new = PPOSettings(n_envs=64, learning_rate=3e-4, policy_kwargs={"net_arch": [256, 256], "log_std_init": -0.5})
    write_tuned("ppo", "ArmReach-v0", new, comment="tuned today: 3 trials\npython baselines/tune.py --algo ppo")
    text = path.read_text()
    assert text.startswith(header + "\n\n") and SEARCH_LINE in text
    assert "# tuned today: 3 trials\n# python baselines/tune.py --algo ppo\nArmReach-v0:\n" in text
    assert tuned("ppo", "ArmReach-v0") == new
    old, now = yaml.safe_load(before), yaml.safe_load(text)
    assert now["ArmReach-v0"]["n_timesteps"] == old["ArmReach-v0"]["n_timesteps"]  # rl-zoo3's keys are kept
    assert {k: v for k, v in now.items() if k != "ArmReach-v0"} == {k: v for k, v in old.items() if k != "ArmReach-v0"}
    write_tuned("ppo", "ArmReach-v0", replace(new, n_epochs=3))  # no comment given: the old one stays
    assert "# tuned today: 3 trials\n" in path.read_text() and tuned("ppo", "ArmReach-v0").n_epochs == 3
    write_tuned("ppo", "MyReach-v0", new)
    assert yaml.safe_load(path.read_text())["MyReach-v0"] == {"n_timesteps": NEW_ENTRY_TIMESTEPS, **ZOO_KEYS["ppo"],
                                                              **asdict(new)}
    sac = SACSettings(train_freq=(2, "episode"))
    write_tuned("sac", "ArmReach-v0", sac)
    assert tuned("sac", "ArmReach-v0") == sac
    for other in (sac, RecurrentPPOSettings()):
        with pytest.raises(HyperparamsError, match=f"{type(other).__name__} are not ppo settings"):
            write_tuned("ppo", "ArmReach-v0", other)


def tuned_file(folder, algo, env_id, **values):
    """Change one entry of the copied files; return the settings it now holds."""
    settings = tuned(algo, env_id, values)
    write_tuned(algo, env_id, settings)
    return settings


def test_runs_and_sweeps_use_the_tuned_values(folder):
    mine = tuned_file(folder, "ppo", "PointMassReach-v0", n_envs=8, n_steps=16)
    assert runs.check_request("PointMassReach-v0", "ppo", 1.0, None) == mine
    arm = tuned("ppo", "ArmReach-v0")  # the searched entry
    assert runs.check_request("ArmReach-v0", "ppo", 1.0, None) == arm != PPOSettings()
    assert runs.check_request("PointMassReach-v0", "ppo", None, 128) == mine  # 8 x 16 steps fit the budget
    table = sweep.trial_settings(["PointMassReach-v0", "ArmReach-v0"], ["ppo", "bptt"], 1.0, None,
                                 {"ppo": {"n_epochs": 2}})
    assert table["PointMassReach-v0", "ppo"] == replace(mine, n_epochs=2)
    assert table["ArmReach-v0", "ppo"] == replace(arm, n_epochs=2)
    assert table["ArmReach-v0", "bptt"] == tuned("bptt", "ArmReach-v0")
    with pytest.raises(ValueError, match="ppo setting n_envs must be int, got 'many'"):
        sweep.trial_settings(["ArmReach-v0"], ["ppo"], 1.0, None, {"ppo": {"n_envs": "many"}})


def test_cli_set_applies_on_top_of_the_tuned_values(folder, tmp_path, capsys):
    mine = tuned_file(folder, "ppo", "PointMassReach-v0", n_envs=4, n_steps=16, batch_size=32)
    out = tmp_path / "run"
    cli.main(["train", "--algo", "ppo", "--env", "PointMassReach-v0", "--steps", "64", "--eval-episodes", "16",
              "--out", str(out), "--no-progress", "--set", "n_epochs=2"])
    assert json.loads((out / "run.json").read_text())["settings"] == asdict(replace(mine, n_epochs=2))
    capsys.readouterr()
    cli.main(["train", "--show-settings", "--env", "PointMassReach-v0"])
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("ppo (PPOSettings) tuned for PointMassReach-v0: ") for line in lines)
    assert any(line.split()[:3] == ["n_envs", "int", "4"] and "(default 32)" in line for line in lines)
    assert any(line.split()[:3] == ["n_epochs", "int", "5"] and "default" not in line for line in lines)
    (folder / "sac.yml").write_text("# no entries\n")
    cli.main(["train", "--show-settings", "--env", "PointMassReach-v0"])
    assert "sac (SACSettings) the defaults: no entry for PointMassReach-v0: " in capsys.readouterr().out


def test_zoo_names_and_policies_are_the_trainers():
    """rl-zoo3's algo names and the files' `policy` are the classes and policies mn_gym's SB3 trainer builds."""
    zoo_utils = pytest.importorskip("rl_zoo3.utils")
    pytest.importorskip("sb3_contrib")
    from mn_gym.train.sb3 import _algorithm

    for algo, name in ZOO_NAMES.items():
        cls, policy = _algorithm(algo)
        assert zoo_utils.ALGOS[name] is cls and ZOO_KEYS[algo]["policy"] == policy


@pytest.mark.parametrize("algo", ZOO_NAMES)
def test_rl_zoo3_builds_the_agent_from_the_file(algo, tmp_path):
    """rl-zoo3's ExperimentManager reads the package file for ArmReach-v0 and builds the agent mn_gym would
    (same class, lanes, VecNormalize with the algo's gamma, settings), without training."""
    pytest.importorskip("sb3_contrib")
    exp_manager = pytest.importorskip("rl_zoo3.exp_manager")
    settings = tuned(algo, "ArmReach-v0")
    manager = exp_manager.ExperimentManager(argparse.Namespace(), ZOO_NAMES[algo], "ArmReach-v0", str(tmp_path),
                                            config=str(zoo_file(algo)), eval_freq=-1, verbose=0)
    _, saved = manager.read_hyperparameters()
    read = {k: v for k, v in saved.items() if k not in {*ZOO_KEYS[algo], "n_timesteps"}}
    assert read == yaml.safe_load(yaml.safe_dump(asdict(settings)))
    model, _ = manager.setup_experiment()
    assert (manager.normalize, manager.normalize_kwargs) == (True, {"gamma": settings.gamma})
    assert type(model.get_vec_normalize_env()).__name__ == "VecNormalize"
    assert model.n_envs == settings.n_envs and model.lr_schedule(1.0) == settings.learning_rate
    assert settings.policy_kwargs.items() <= model.policy_kwargs.items() and model.gamma == settings.gamma


def load_tune():
    spec = importlib.util.spec_from_file_location("tune", ROOT / "baselines" / "tune.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["tune"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("algo", ALGOS)
def test_every_search_space_gives_valid_settings(algo):
    tune = load_tune()
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(20):
        trial = study.ask()
        settings = tune.trial_settings(algo, trial)
        assert type(settings) is SETTINGS[algo] and settings != SETTINGS[algo]()
        assert tune.trial_settings(algo, optuna.trial.FixedTrial(trial.params)) == settings


def test_tune_two_trials_write_the_best_and_resume(folder, tmp_path, capsys):
    """Two 3-second PPO trials on PointMassReach-v0, the defaults then an `--enqueue`d choice: a line per trial,
    the best written into the (copied) package file with its comment, the study stored in SQLite so that the
    same command resumes."""
    tune = load_tune()
    out = tmp_path / "search"
    argv = ["--algo", "ppo", "--env", "PointMassReach-v0", "--trials", "2", "--minutes", "0.05",
            "--eval-episodes", "32", "--out", str(out), "--enqueue", '{"n_epochs": 2}', "--write"]
    assert tune.main(argv) == 0
    printed = capsys.readouterr().out
    assert "2 more trial(s)" in printed and "trial 0 complete: " in printed and "trial 1 complete: " in printed
    study = optuna.load_study(study_name="ppo-PointMassReach-v0", storage=f"sqlite:///{out / 'study.db'}")
    assert study.trials[0].params["n_epochs"] == PPOSettings().n_epochs and study.trials[1].params["n_epochs"] == 2
    best = study.best_trial
    summary = json.loads((out / f"trial{best.number}" / "seed0" / "summary.json").read_text())
    assert best.value == summary["final_eval_distance_m"] and summary["budget"]["minutes"] == 0.05
    assert tuned("ppo", "PointMassReach-v0") == tune.trial_settings("ppo", optuna.trial.FixedTrial(best.params))
    text = (folder / "ppo.yml").read_text()
    assert SEARCH_LINE in text and "2 trials x 1 seed(s) x 0.05 min, best mean final distance" in text
    assert f"# python baselines/tune.py {shlex.join(argv)}\nPointMassReach-v0:" in text
    assert tune.main(argv) == 0  # resumed: the study already has its trials
    assert "0 more trial(s)" in capsys.readouterr().out and len(study.trials) == 2
