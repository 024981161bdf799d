"""Search one algo's settings on one env with Optuna; write the best into mn_gym's package YAML.

    python baselines/tune.py --algo rsl-ppo --env ArmReach-v0 --trials 20 --minutes 2
    python baselines/tune.py --algo ppo --env ArmReach-v0 --trials 40 --minutes 3 --seeds 0 1 --prune --write

Each trial samples settings from the algo's search space (`SPACES` below: one function per algo, read top to
bottom) with Optuna's TPE sampler, lays them over the dataclass defaults (so a search does not depend on what the
YAML holds now), and trains one run per `--seeds` for `--minutes` of training each with
`mn_gym.train.runs.train` (into `<out>/trial<k>/seed<s>`). The objective, minimised, is the final held-out mean
hand-goal distance (m) averaged over the seeds; the success rate is kept with each trial. With `--prune`,
Optuna's MedianPruner stops a trial after a seed whose running mean is worse than the median of the earlier trials
at that seed. Trials are stored in an SQLite study (`--storage`, default `<out>/study.db`), so running the same
command again resumes: `--trials` is the total of finished trials the study should reach, also when several
processes share the study (each stops at that total). One line is printed per trial. `--write` puts the best trial's
settings into `mn_gym/hyperparams/<algo>.yml` (the entry of `--env`, `mn_gym.train.hyperparams.write_tuned`) with a
comment line giving the date, this command, the trials, minutes and best value.

For the SB3 algos, rl-zoo3's own optimiser works on the same ids and file (rl-zoo3 names recurrent-ppo
`ppo_lstm`; its search spaces are its own, and it trains on one Gymnasium env per lane):

    python -m rl_zoo3.train --algo ppo --env ArmReach-v0 --gym-packages mn_gym \\
        --conf-file mn_gym/hyperparams/ppo.yml --optimize --n-trials 20 --n-jobs 1 --sampler tpe --pruner median \\
        -n 1000000 --storage sqlite:///runs/zoo-optuna.db --study-name ppo-ArmReach-v0
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import optuna
import torch
from optuna.trial import BaseTrial, FixedTrial, FrozenTrial, TrialState

import mn_gym
from mn_gym.train import runs
from mn_gym.train.common import EVAL_EPISODES
from mn_gym.train.hyperparams import write_tuned
from mn_gym.train.settings import SETTINGS, Settings


# ------------------------------------------------------------------------------------------- search spaces
# Each maps an Optuna trial and the algo's defaults to setting values. Categorical choices are plain numbers:
# a network is its width, its depth kept from the defaults.
def ppo_space(trial: BaseTrial, base: Settings, lanes: tuple[int, ...] = (16, 32, 64, 128, 256),
              steps: tuple[int, ...] = (16, 32, 64, 128)) -> dict[str, Any]:
    n_envs = trial.suggest_categorical("n_envs", lanes)
    n_steps = trial.suggest_categorical("n_steps", steps)
    width = trial.suggest_categorical("net_width", (64, 128, 256))
    return {
        "n_envs": n_envs, "n_steps": n_steps,
        "batch_size": min(trial.suggest_categorical("batch_size", (256, 512, 1024, 2048, 4096)), n_envs * n_steps),
        "n_epochs": trial.suggest_int("n_epochs", 1, 8),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "gamma": trial.suggest_categorical("gamma", (0.95, 0.98, 0.99, 0.995)),
        "gae_lambda": trial.suggest_categorical("gae_lambda", (0.9, 0.95, 0.98)),
        "ent_coef": trial.suggest_float("ent_coef", 0.0, 0.01),
        "policy_kwargs": {**base.policy_kwargs, "net_arch": [width] * len(base.policy_kwargs["net_arch"]),
                          "log_std_init": trial.suggest_float("log_std_init", -2.0, 0.0)},
    }


def recurrent_ppo_space(trial: BaseTrial, base: Settings) -> dict[str, Any]:
    values = ppo_space(trial, base, lanes=(32, 64, 128, 256), steps=(16, 32, 64))
    values["policy_kwargs"]["lstm_hidden_size"] = trial.suggest_categorical("lstm_hidden_size", (32, 64, 128))
    return values


def sac_space(trial: BaseTrial, base: Settings) -> dict[str, Any]:
    return {
        "n_envs": trial.suggest_categorical("n_envs", (1, 4, 16, 64)),
        "learning_rate": trial.suggest_float("learning_rate", 1e-4, 3e-3, log=True),
        "batch_size": trial.suggest_categorical("batch_size", (64, 128, 256, 512)),
        "tau": trial.suggest_categorical("tau", (0.005, 0.01, 0.02, 0.05)),
        "gamma": trial.suggest_categorical("gamma", (0.95, 0.98, 0.99)),
        "train_freq": trial.suggest_categorical("train_freq", (1, 2, 4, 8)),
        "gradient_steps": trial.suggest_categorical("gradient_steps", (1, 2, 4, 8)),
        "policy_kwargs": {**base.policy_kwargs,
                          "net_arch": [trial.suggest_categorical("net_width", (64, 128, 256))] * 2},
    }


def rsl_ppo_space(trial: BaseTrial, base: Settings) -> dict[str, Any]:
    # the third search (5-minute trials): a GRU before the MLPs took the second search's best from 34.9 % to
    # 60.9 % in 10 minutes, so this one searches the recurrent layer (and keeps the MLP as a choice) around that
    # best: 256-2048 lanes, 32-128 steps, 1-2 epochs
    return {
        "n_envs": trial.suggest_categorical("n_envs", (256, 512, 1024, 2048)),
        "n_steps": trial.suggest_categorical("n_steps", (32, 64, 128)),
        "num_learning_epochs": trial.suggest_int("num_learning_epochs", 1, 2),
        "num_mini_batches": trial.suggest_categorical("num_mini_batches", (2, 4, 8)),
        "learning_rate": trial.suggest_float("learning_rate", 5e-4, 5e-3, log=True),
        "desired_kl": trial.suggest_float("desired_kl", 0.003, 0.02, log=True),
        "gamma": trial.suggest_categorical("gamma", (0.99, 0.995)),
        "lam": trial.suggest_categorical("lam", (0.9, 0.95, 0.98)),
        "entropy_coef": trial.suggest_float("entropy_coef", 0.0, 0.003),
        "hidden_dims": [trial.suggest_categorical("hidden_width", (64, 128))] * len(base.hidden_dims),
        "activation": trial.suggest_categorical("activation", ("elu", "relu")),
        "rnn_type": trial.suggest_categorical("rnn_type", ("none", "gru", "lstm")),
        "rnn_hidden_dim": trial.suggest_categorical("rnn_hidden_dim", (32, 64, 128)),
        "init_std": trial.suggest_float("init_std", 0.1, 0.6, log=True),
        "action_bias": trial.suggest_float("action_bias", -0.9, 0.0),
    }


def bptt_space(trial: BaseTrial, base: Settings) -> dict[str, Any]:
    return {
        "lr": trial.suggest_float("lr", 1e-3, 3e-2, log=True),
        "batch_size": trial.suggest_categorical("batch_size", (32, 64, 128, 256)),
        "n_hidden": trial.suggest_categorical("n_hidden", (32, 64, 128, 256)),
    }


SPACES = {"ppo": ppo_space, "recurrent-ppo": recurrent_ppo_space, "sac": sac_space, "rsl-ppo": rsl_ppo_space,
          "bptt": bptt_space}


def trial_settings(algo: str, trial: BaseTrial) -> Settings:
    """The settings a trial (or the fixed parameters of a finished one) stands for."""
    cls = SETTINGS[algo]
    return cls.from_dict(SPACES[algo](trial, cls()))


# ----------------------------------------------------------------------------------------------- objective
def objective(trial: optuna.Trial, args: argparse.Namespace) -> float:
    """Mean over `args.seeds` of the final held-out mean distance (m) after `args.minutes` of training."""
    settings = trial_settings(args.algo, trial)
    distances, successes = [], []
    for k, seed in enumerate(args.seeds):
        summary = runs.train(args.env, args.algo, args.out / f"trial{trial.number}" / f"seed{seed}",
                             settings=settings, minutes=args.minutes, seed=seed, device=args.device,
                             progress=False, overwrite=True, eval_batch=args.eval_episodes)
        distances.append(summary["final_eval_distance_m"])
        successes.append(summary["final_eval_success_rate"])
        trial.set_user_attr("success_rate", statistics.fmean(successes))
        trial.report(statistics.fmean(distances), k)
        if args.prune and k < len(args.seeds) - 1 and trial.should_prune():
            raise optuna.TrialPruned()
    return statistics.fmean(distances)


def report(study: optuna.Study, trial: FrozenTrial) -> None:
    """One log line per trial: number, state, distance (the running mean where pruned) and success, time,
    parameters, best so far."""
    seconds = (trial.datetime_complete - trial.datetime_start).total_seconds()
    steps = trial.intermediate_values
    value = trial.value if trial.value is not None else steps[max(steps)] if steps else float("nan")
    success = 100 * trial.user_attrs.get("success_rate", float("nan"))
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    best = f"best #{study.best_trial.number} {100 * study.best_value:.2f} cm" if done else "no best yet"
    print(f"trial {trial.number} {trial.state.name.lower()}: {100 * value:.2f} cm, {success:.1f} % success, "
          f"{seconds:.0f} s; {trial.params}; {best}", flush=True)


# -------------------------------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--algo", required=True, choices=tuple(SPACES))
    p.add_argument("--env", required=True, help="a registered env id (mn-gym list)")
    p.add_argument("--trials", type=int, default=20, help="finished trials the study should reach (default 20)")
    p.add_argument("--minutes", type=float, default=2.0, help="training minutes per run (default 2)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0],
                   help="one run per seed; the objective is the mean (default 0)")
    p.add_argument("--out", type=Path, help="trial runs and the study (default runs/tune/<env>/<algo>)")
    p.add_argument("--storage", help="Optuna storage: an SQLite file or a URL (default <out>/study.db)")
    p.add_argument("--study", help="study name (default <algo>-<env>)")
    p.add_argument("--prune", action="store_true", help="MedianPruner between seeds")
    p.add_argument("--sampler-seed", type=int, default=0, help="seed of the TPE sampler (default 0)")
    p.add_argument("--eval-episodes", type=int, default=EVAL_EPISODES,
                   help=f"held-out episodes per evaluation (default {EVAL_EPISODES})")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    p.add_argument("--device", default="cpu", help="torch device of the runs (default cpu; cuda for rsl-ppo)")
    p.add_argument("--enqueue", type=json.loads, action="append", default=[], metavar="JSON",
                   help='parameters to try first, after the defaults, e.g. \'{"activation": "relu"}\' (the rest '
                        'sampled); repeatable')
    p.add_argument("--write", action="store_true", help="write the best settings into mn_gym/hyperparams/<algo>.yml")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.env not in mn_gym.list_ids():
        raise SystemExit(f"unknown env id {args.env!r}; registered: {', '.join(mn_gym.list_ids())}")
    torch.set_num_threads(args.threads)
    args.out = args.out or Path("runs") / "tune" / args.env / args.algo
    args.out.mkdir(parents=True, exist_ok=True)
    storage = args.storage or str(args.out / "study.db")
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # `report` prints the trials
    study = optuna.create_study(
        study_name=args.study or f"{args.algo}-{args.env}", direction="minimize", load_if_exists=True,
        storage=storage if "://" in storage else f"sqlite:///{Path(storage).resolve()}",
        sampler=optuna.samplers.TPESampler(seed=args.sampler_seed),
        pruner=optuna.pruners.MedianPruner() if args.prune else optuna.pruners.NopPruner())
    if not study.trials:  # the first trial: the current defaults (their scalar settings)
        study.enqueue_trial({k: v for k, v in asdict(SETTINGS[args.algo]()).items()
                             if isinstance(v, (bool, int, float, str))}, skip_if_exists=True)
        for params in args.enqueue:
            study.enqueue_trial(params, skip_if_exists=True)
    todo = args.trials - len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))
    print(f"{args.algo} on {args.env}: {max(todo, 0)} more trial(s) of {len(args.seeds)} x {args.minutes:g} min "
          f"(study {study.study_name} in {storage})", flush=True)
    if todo > 0:  # a setting that fails to train (an error, out of memory) fails its trial, not the search
        # processes sharing the study stop once it holds `--trials` finished trials between them
        done = optuna.study.MaxTrialsCallback(args.trials, states=(TrialState.COMPLETE, TrialState.PRUNED))
        study.optimize(lambda trial: objective(trial, args), n_trials=todo, callbacks=[report, done],
                       catch=(ValueError, RuntimeError))
    completed = len(study.get_trials(states=(TrialState.COMPLETE,)))
    if not completed:
        print("no trial completed: nothing to report or write")
        return 1
    best = study.best_trial
    settings = trial_settings(args.algo, FixedTrial(best.params))
    print(f"best: trial {best.number}, {100 * best.value:.2f} cm, "
          f"{100 * best.user_attrs['success_rate']:.1f} % success; {settings}")
    if args.write:
        comment = (f"tuned {time.strftime('%Y-%m-%d')}: {completed} trials x {len(args.seeds)} seed(s) x "
                   f"{args.minutes:g} min, best mean final distance {100 * best.value:.2f} cm "
                   f"({100 * best.user_attrs['success_rate']:.1f} % success), trial {best.number}\n"
                   f"python baselines/tune.py {shlex.join(sys.argv[1:] if argv is None else argv)}")
        print(f"wrote {write_tuned(args.algo, args.env, settings, comment=comment)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
