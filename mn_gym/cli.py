"""The `mn-gym` command line: list envs, train (BPTT, PPO, SAC, RecurrentPPO), evaluate, render, analyze,
benchmark, sweep.

    mn-gym list
    mn-gym train --minutes 2                      # BPTT on ArmReach-v0 -> runs/ArmReach-v0/bptt/seed0
    mn-gym train --algo ppo --env ArmReach-v0 --minutes 10 --out runs/arm-ppo
    mn-gym eval runs/arm-ppo
    mn-gym render runs/ArmReach-v0/bptt/seed0 --out reach.gif
    mn-gym analyze runs/ArmCentreOut-v0/bptt/seed0  # PCA, tuning, fixed points, behaviour -> <run>/analysis
    mn-gym bench faces --quick
    mn-gym sweep --envs PointMassReach-v0 ArmReach-v0 --algos bptt ppo --seeds 0 1 --minutes 2 --out runs/grid
    mn-gym report runs/grid --reference runs/reference

Every subcommand has its own `--help`. Errors in what was asked (unknown env or algo, impossible budget or
setting, unwritable or full folder, a damaged or foreign file, a run from another env, a missing extra) end with
a one-line message and exit status 2 (`USER_ERRORS`); anything else is a bug and shows its traceback (exit 1).
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

import mn_gym
from mn_gym import catalogue
from mn_gym.files import BadFileError
from mn_gym.train import runs
from mn_gym.train.common import EVAL_EPISODES, EVAL_SEED, DivergedError
from mn_gym.train.hyperparams import ZOO_NAMES, HyperparamsError, tuned, tuned_ids, zoo_file
from mn_gym.train.settings import SETTINGS, describe

__all__ = ["main"]

DEFAULT_ENV = "ArmReach-v0"
# what the user can fix: the request, a file or folder, the disk, an optional dependency
USER_ERRORS = (runs.RunError, BadFileError, HyperparamsError, DivergedError, OSError, ImportError)
EPILOG = "Run 'mn-gym <command> --help' for a command's options. Docs: README.md; results: baselines/README.md."


# ----------------------------------------------------------------------------------------------- list
def cmd_list(args: argparse.Namespace) -> int:
    rows = []
    for env_id in mn_gym.list_ids():
        e = catalogue.entry(env_id)
        env = catalogue.make(env_id)
        rows.append((env_id, e.effector, e.task, str(env.obs_size), str(env.action_size), str(env.max_steps),
                     f"{env.dt * 1000:g}", e.description))
    if args.json:
        keys = ("id", "effector", "task", "obs", "actions", "steps", "dt_ms", "description")
        print(json.dumps([dict(zip(keys, r, strict=True)) for r in rows], indent=2))
        return 0
    header = ("id", "effector", "task", "obs", "act", "steps", "dt ms", "description")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    for r in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths, strict=False)) + "  " + r[-1])
    print("\nActions: Box(-1, 1) per muscle in the Gymnasium/SB3 faces (excitation = (a + 1) / 2); "
          "observations: float32 vectors.")
    return 0


# ---------------------------------------------------------------------------------------------- train
def _pairs(items: list[str] | None, what: str) -> dict[str, str]:
    """`KEY=VALUE` arguments as {key: value text}."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise runs.RunError(f"{what} must look like key=value, got {item!r}")
        out[key] = value
    return out


def _literal(text: str) -> Any:
    """A catalogue override's value: a Python literal (`0.03`, `'rk4'`, `[1, 2]`), or the text itself."""
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _overrides(algo: str, texts: dict[str, str]) -> dict[str, Any]:
    """`--set` texts of `algo` as setting values (laid over an env's tuned settings by `tuned`)."""
    if algo not in SETTINGS:
        raise runs.RunError(f"unknown algo {algo!r}; choose one of {', '.join(SETTINGS)}")
    with _asked("--set"):
        return SETTINGS[algo].parse_values(texts)


@contextlib.contextmanager
def _asked(what: str) -> Iterator[None]:
    """Turn the argument checks' ValueError / TypeError inside the block into a `RunError` (a user error: one
    line, exit 2). Only around code that checks what the user asked: elsewhere such an error is a bug."""
    try:
        yield
    except (ValueError, TypeError) as exc:
        if isinstance(exc, USER_ERRORS):
            raise
        raise runs.RunError(f"{what}: {exc}") from None


def _show_settings(env_id: str, algo_set: str, overrides: dict[str, Any]) -> None:
    """Every algo's settings for `env_id`: name, type, tuned value (and the default where it differs), doc;
    `algo_set`'s with `overrides` (`--set`) on top."""
    print(f"Settings for {env_id}: its entry in mn_gym/hyperparams/<algo>.yml over the dataclass defaults "
          "(another env: --env ID)\n")
    for algo, cls in SETTINGS.items():
        source = "tuned for" if env_id in tuned_ids(algo) else "the defaults: no entry for"
        asked = overrides if algo == algo_set else {}
        with _asked("--set") if asked else contextlib.nullcontext():
            settings = tuned(algo, env_id, asked)
        print(f"{algo} ({cls.__name__}) {source} {env_id}{', with --set' if asked else ''}: {cls.__doc__}")
        defaults = [row[2] for row in describe(cls)]
        rows = [(name, kind, value if value == default else f"{value} (default {default})", doc)
                for (name, kind, value, doc), default in zip(describe(cls, settings), defaults, strict=True)]
        widths = [max(len(r[i]) for r in rows) for i in range(3)]
        for row in rows:
            print("  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)) + "  " + row[3])
        if algo in ZOO_NAMES:
            print(f"  rl-zoo3: python -m rl_zoo3.train --algo {ZOO_NAMES[algo]} --env {env_id} --gym-packages mn_gym "
                  f"--conf-file {zoo_file(algo)}")
        print()
    print("Override with --set KEY=VALUE (a Python literal, or a bare word for a string), e.g. --set lr=3e-3")


def _positive_int(text: str) -> int:
    """argparse type: an integer >= 1 (threads, episodes, workers, pixels)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _add_budget(p: argparse.ArgumentParser) -> None:
    p.add_argument("--minutes", type=float, help="training wall-clock budget (evaluation excluded)")
    p.add_argument("--steps", type=int, help="env-step budget (with or instead of --minutes; first reached stops)")
    p.add_argument("--eval-episodes", type=_positive_int, default=EVAL_EPISODES,
                   help="held-out episodes of each evaluation during training")


def _add_settings(p: argparse.ArgumentParser, sweep: bool = False) -> None:
    scope = "ALGO.KEY=VALUE (e.g. ppo.learning_rate=1e-3)" if sweep else "KEY=VALUE (e.g. learning_rate=1e-3)"
    p.add_argument("--set", action="append", metavar=scope.split(" ")[0], dest="settings",
                   help=f"override an algo setting of the env's tuned ones, repeatable: {scope}; see 'mn-gym "
                        "train --show-settings'")


def cmd_train(args: argparse.Namespace) -> int:
    overrides = _overrides(args.algo, _pairs(args.settings, "--set"))
    if args.show_settings:
        _show_settings(args.env, args.algo, overrides)
        return 0
    env_kwargs = {k: _literal(v) for k, v in _pairs(args.env_set, "--env-set").items()}
    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / args.env / args.algo / f"seed{args.seed or 0}"
    if args.resume:  # the recorded run, with only what was asked laid over it (runs.train refuses a change)
        run = runs.recorded(out)
        base = SETTINGS[args.algo].from_dict(run["settings"]) if run["algo"] == args.algo else None
        with _asked("--set"):
            settings = SETTINGS[args.algo].from_dict(overrides, base) if overrides and base else None
        env_kwargs = {**run["env_kwargs"], **env_kwargs} if env_kwargs else None
    else:
        with _asked("--set"):
            settings = tuned(args.algo, args.env, overrides)
    summary = runs.train(args.env, args.algo, out, settings=settings, seed=args.seed, minutes=args.minutes,
                         steps=args.steps, device=args.device, resume=args.resume, overwrite=args.overwrite,
                         progress=not args.no_progress, env_kwargs=env_kwargs, eval_batch=args.eval_episodes,
                         command="mn-gym " + shlex.join(sys.argv[1:]) if args.record_command else None)
    print(f"{summary['env_id']} {summary['algo']} seed {summary['seed']}: {summary['env_steps']:,} env steps, "
          f"{summary['train_time_s'] / 60:.1f} min training: held-out success "
          f"{100 * summary['final_eval_success_rate']:.1f} %, mean final distance "
          f"{100 * summary['final_eval_distance_m']:.2f} cm")
    print(f"wrote {out} (summary.json, metrics.csv, curve.png, trajectories.png)")
    return 0


# ---------------------------------------------------------------------------------------- eval, render
def cmd_eval(args: argparse.Namespace) -> int:
    torch.set_num_threads(args.threads)
    result = runs.evaluate_run(args.run, env_id=args.env, episodes=args.episodes, seed=args.seed,
                               plot=not args.no_plot)
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print(f"{result['env_id']} {result['algo']} seed {result['seed']}, {result['episodes']} held-out episodes: "
          f"success {100 * result['success_rate']:.1f} %, mean final distance "
          f"{100 * result['mean_final_distance_m']:.2f} cm" + (f"; plot {result['plot']}" if "plot" in result else ""))
    return 0


def cmd_render(args: argparse.Namespace) -> int:
    from mn_gym.media import render_policy

    out = Path(args.out) if args.out else Path(args.run) / "episode.gif"
    if out.suffix.lower() not in (".gif", ".mp4", ".png"):
        raise runs.RunError(f"render output must end in .gif, .mp4 or .png, got {out.name!r}")
    run, policy = runs.load_policy(args.run)
    written = render_policy(run["env_id"], policy, out, episodes=args.episodes, seed=args.seed,
                            env_kwargs=run["env_kwargs"], width=args.width)
    print(f"wrote {written}")
    return 0


def cmd_analyze(args: argparse.Namespace) -> int:
    from mn_gym.analysis import analyze_run

    torch.set_num_threads(args.threads)
    result = analyze_run(args.run, out_dir=args.out, episodes_per_target=args.episodes_per_target, before=args.before)
    hidden = (f"{result['n_tuned_units']}/{result['n_hidden']} units tuned, {result['fixed_points_unique']} fixed "
              f"points ({result['fixed_points_stable']} stable)" if "n_hidden" in result
              else "no hidden-state analysis (not a GRU policy)")
    print(f"{result['env_id']} {result['algo']}, {result['episodes']} episodes: success "
          f"{100 * result['success_rate']:.1f} %, mean final distance {100 * result['mean_final_distance_m']:.2f} "
          f"cm; {hidden}" + (f"; adaptation index {result['adaptation_index']:.2f}" if "adaptation_index" in result
                            else "") + (f" (before: {result['before_adaptation_index']:.2f})"
                                        if "before_adaptation_index" in result else ""))
    print(f"wrote {result['out_dir']} (analysis.json, {', '.join(result['files'])})")
    return 0


# ---------------------------------------------------------------------------------------- bench, sweep
def cmd_bench(args: argparse.Namespace) -> int:
    import importlib

    module = importlib.import_module(f"mn_gym.bench.{args.which}")
    module.main(args.bench_args)
    return 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from mn_gym.train.sweep import sweep

    texts: dict[str, dict[str, str]] = {}
    for key, value in _pairs(args.settings, "--set").items():
        algo, dot, name = key.partition(".")
        if not dot:
            raise runs.RunError(f"sweep settings name their algo: ALGO.KEY=VALUE, got {key!r}")
        texts.setdefault(algo, {})[name] = value
    overrides = {algo: _overrides(algo, values) for algo, values in texts.items()}
    with _asked("sweep"):  # it checks every trial's request first; a trial's own failure lands in its row
        rows = sweep(args.envs, args.algos, args.seeds, args.out, minutes=args.minutes, steps=args.steps,
                     overrides=overrides, eval_batch=args.eval_episodes, address=args.address, workers=args.workers,
                     cpus_per_trial=args.cpus_per_trial, overwrite=args.overwrite, progress=not args.no_progress,
                     command="mn-gym " + shlex.join(sys.argv[1:]) if args.record_command else None)
    print((Path(args.out) / "table.md").read_text())
    failed = [r for r in rows if r["status"] == "failed"]
    for r in failed:
        print(f"FAILED {r['env_id']} {r['algo']} seed {r['seed']}: {r['error']}", file=sys.stderr)
    print(f"{len(rows) - len(failed)}/{len(rows)} trials finished; wrote {args.out}/trials.csv, table.md, curves_*.png")
    return 1 if failed else 0


def cmd_report(args: argparse.Namespace) -> int:
    from mn_gym.train.report import report

    report(args.out, reference=args.reference, algos=args.algos)
    print((Path(args.out) / "report.md").read_text())
    print(f"wrote {args.out}/report.md, scores.csv")
    return 0


# ---------------------------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mn-gym", description=__doc__.split("\n\n")[0], epilog=EPILOG)
    parser.add_argument("--version", action="version", version=f"mn_gym {mn_gym.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    fmt = argparse.ArgumentDefaultsHelpFormatter

    p = sub.add_parser("list", help="the registered env ids with effector, task and spaces", formatter_class=fmt,
                       description="The registered env ids: effector, task, observation and action sizes, "
                                   "steps per episode and time step.")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("train", help="train a policy (bptt, ppo, sac, recurrent-ppo) into a run folder",
                       formatter_class=fmt, description=(
                           "Train a policy on one env under a time and/or step budget. Writes a run folder: "
                           "run.json, metrics.csv (held-out success and distance vs env steps and time), the "
                           "policy checkpoint, curve.png, trajectories.png and summary.json. The folder is "
                           "replaced only when the run finishes, so existing results are never half-overwritten."))
    p.add_argument("--algo", choices=runs.ALGOS, default="bptt", help="training method")
    p.add_argument("--env", default=DEFAULT_ENV, help="env id (see 'mn-gym list')")
    p.add_argument("--seed", type=int, help="seed of the policy and the training env (default 0; a resumed run "
                   "keeps its own)")
    _add_budget(p)
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    p.add_argument("--out", type=Path, help="run folder (default: runs/<env>/<algo>/seed<seed>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out up to the (new) budget")
    p.add_argument("--overwrite", action="store_true", help="replace a finished run in --out once this one ends")
    _add_settings(p)
    p.add_argument("--env-set", action="append", metavar="KEY=VALUE",
                   help="catalogue override for the env, repeatable (e.g. muscle=thelen, integrator=rk4)")
    p.add_argument("--threads", type=_positive_int, default=1, help="torch threads (1 is fastest at these batch sizes)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--no-record-command", dest="record_command", action="store_false",
                   help="do not store the command line in summary.json")
    p.add_argument("--show-settings", action="store_true",
                   help="list every algo's settings for --env (name, type, tuned value, default, doc), --algo's with "
                        "any --set applied, and exit")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("eval", help="success rate, mean final distance and trajectory plot of a trained run",
                       formatter_class=fmt, description="Evaluate a run folder's policy on held-out episodes "
                       "(deterministic env, fixed seed) and plot hand trajectories into <run>/trajectories.png.")
    p.add_argument("run", type=Path, help="a run folder written by 'mn-gym train'")
    p.add_argument("--env", help="env id to evaluate on (must be the run's own)")
    p.add_argument("--episodes", type=_positive_int, default=EVAL_EPISODES)
    p.add_argument("--seed", type=int, default=EVAL_SEED, help="seed of the held-out episodes")
    p.add_argument("--json", help="also write the result to this JSON file")
    p.add_argument("--no-plot", action="store_true")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser("render", help="video (gif/mp4) or PNG of a trained policy", formatter_class=fmt,
                       description="Render episodes of a run's policy: .gif or .mp4 (needs moviepy) for a video, "
                                   ".png for the last frame with the hand's path.")
    p.add_argument("run", type=Path, help="a run folder written by 'mn-gym train'")
    p.add_argument("--out", help="output file, .gif, .mp4 or .png (default: <run>/episode.gif)")
    p.add_argument("--episodes", type=_positive_int, default=3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--width", type=_positive_int, default=400, help="frame width in pixels")
    p.set_defaults(func=cmd_render)

    p = sub.add_parser("analyze", help="hidden-state PCA, tuning, fixed points and behaviour figures of a run",
                       formatter_class=fmt, description=(
                           "Analyse a run folder's policy on deterministic episodes (each centre-out target "
                           "--episodes-per-target times, else 64): behaviour (hand paths, speed, muscle activation), "
                           "and for GRU policies (bptt) PCA of the hidden states, cosine tuning over the movement "
                           "window and fixed points under the hold input; on curl-field envs adaptation: hand "
                           "paths in the field and on catch trials, peak deviations, force-channel profiles and "
                           "the adaptation index, beside a --before run's policy when given. Writes figures and "
                           "analysis.json into --out."))
    p.add_argument("run", type=Path, help="a run folder written by 'mn-gym train'")
    p.add_argument("--out", type=Path, help="output folder (default: <run>/analysis)")
    p.add_argument("--episodes-per-target", type=_positive_int, default=1,
                   help="episodes of each target on centre-out tasks")
    p.add_argument("--before", type=Path, help="curl-field tasks: a run folder whose policy is shown as the one "
                                               "before adaptation (e.g. trained with the field off, k=0)")
    p.add_argument("--threads", type=_positive_int, default=1)
    p.set_defaults(func=cmd_analyze)

    from mn_gym.bench import BENCHMARKS
    p = sub.add_parser("bench", help="speed tables, MotorNet side by side when installed", formatter_class=fmt,
                       description="Speed benchmarks: effector (steps/s), bptt (one BPTT iteration), faces "
                                   "(Gymnasium single and vector env). Options after the name go to the "
                                   "benchmark: 'mn-gym bench faces --help'.")
    p.add_argument("which", choices=BENCHMARKS)
    p.add_argument("bench_args", nargs=argparse.REMAINDER, help="the benchmark's own options")
    p.set_defaults(func=cmd_bench)

    p = sub.add_parser("sweep", help="a grid of env x algo x seed on Ray, gathered into one table",
                       formatter_class=fmt, description=(
                           "Train every env x algo x seed, one Ray task per trial (local by default, a cluster "
                           "with --address), into <out>/<env>/<algo>/seed<k>. Finished trials are reused, so a "
                           "stopped sweep resumes. Writes <out>/trials.csv, <out>/table.md and curves_<env>.png."))
    p.add_argument("--envs", nargs="+", required=True, help="env ids")
    p.add_argument("--algos", nargs="+", required=True, help=f"algos among {', '.join(runs.ALGOS)}")
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    _add_budget(p)
    p.add_argument("--out", required=True, help="sweep folder")
    p.add_argument("--address", help="Ray cluster address (default: a local Ray)")
    p.add_argument("--workers", type=_positive_int, default=2, help="concurrent local trials")
    p.add_argument("--cpus-per-trial", type=_positive_int, default=1, help="CPUs (and torch threads) per trial")
    p.add_argument("--overwrite", action="store_true", help="re-run trials that already finished")
    _add_settings(p, sweep=True)
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--no-record-command", dest="record_command", action="store_false")
    p.set_defaults(func=cmd_sweep)

    p = sub.add_parser("report", help="IQM with bootstrap intervals per env and algo of a sweep's runs",
                       formatter_class=fmt, description=(
                           "Score the finished runs in <out>/<env>/<algo>/seed<k>: interquartile mean of the final "
                           "held-out success and of the normalised score (0 = untrained, 1 = the reference run) "
                           "with 95 % stratified-bootstrap intervals (rliable), and the winner per env at equal "
                           "budget. Writes <out>/report.md and scores.csv."))
    p.add_argument("out", type=Path, help="sweep folder")
    p.add_argument("--reference", type=Path, help="folder of reference runs (<env>/<algo>/seed<k>, e.g. BPTT for "
                                                  "10 minutes): each env's score 1")
    p.add_argument("--algos", nargs="+", help="score only these algos")
    p.set_defaults(func=cmd_report)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except USER_ERRORS as exc:
        # what was asked cannot be done (a bad request, file or folder, a full disk, a missing extra): the message
        # names it, no traceback, exit 2. Anything else is a bug of mn_gym: its traceback, exit 1.
        parser.exit(2, f"mn-gym {args.command}: error: {exc}\n")


if __name__ == "__main__":
    raise SystemExit(main())
