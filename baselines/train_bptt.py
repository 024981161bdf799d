"""Train a GRU policy on an mn_gym env by BPTT under a wall-clock budget; write the learning curve.

Writes into `baselines/results/bptt/<env_id>/` (or `--out`): `metrics.csv` (learning curve), `curve.png`
(mean final distance on the held-out targets vs training wall-clock and vs iteration), `summary.json`
(settings, final figures, machine) and `checkpoint.pt` (the trained policy; not meant to be committed).

The budget counts training wall-clock only (rollouts, backward passes, optimiser steps); evaluation on the
1024 held-out targets (a separate deterministic env seeded with 12345) is excluded. Reproduce the committed
results (2-core CPU, torch 2.13.0+cpu; the defaults below are the tuned settings):

    python baselines/train_bptt.py --env PointMassReach-v0 --minutes 2
    python baselines/train_bptt.py --env ArmReach-v0 --minutes 10

`--resume` continues from the checkpoint in the output folder up to the same total budget.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

import mn_gym
from mn_gym.train import train_bptt

ROOT = Path(__file__).resolve().parent

# Tuned per env (see baselines/README.md). Anything here can be overridden on the command line.
PRESETS: dict[str, dict] = {
    "PointMassReach-v0": {"batch_size": 128, "lr": 1e-2, "n_hidden": 64, "lr_schedule": "cosine",
                          "lr_final": 0.02, "eval_every": 25, "compile": True},
    "ArmReach-v0": {"batch_size": 128, "lr": 1e-2, "n_hidden": 64, "lr_schedule": "cosine",
                    "lr_final": 0.02, "eval_every": 50, "compile": True},
}
DEFAULTS = {"batch_size": 64, "lr": 1e-3, "n_hidden": 32, "lr_schedule": "constant", "lr_final": 0.1,
            "eval_every": 50, "compile": False}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--env", required=True, help=f"env id, one of {mn_gym.list_ids()}")
    p.add_argument("--minutes", type=float, default=None, help="training wall-clock budget (evaluation excluded)")
    p.add_argument("--iterations", type=int, default=None, help="iteration budget (with or instead of --minutes)")
    p.add_argument("--batch-size", type=int, default=None, help="episodes per iteration (default: env preset)")
    p.add_argument("--lr", type=float, default=None, help="peak Adam learning rate (default: env preset)")
    p.add_argument("--lr-schedule", choices=("constant", "cosine", "exponential"), default=None)
    p.add_argument("--lr-final", type=float, default=None, help="final lr as a fraction of --lr")
    p.add_argument("--n-hidden", type=int, default=None, help="GRU units (default: env preset)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="max gradient norm (<= 0: none)")
    p.add_argument("--truncation", type=int, default=None, help="truncated-BPTT window in steps (default: none)")
    p.add_argument("--eval-every", type=int, default=None, help="iterations between evaluations")
    p.add_argument("--eval-batch", type=int, default=1024)
    p.add_argument("--eval-seed", type=int, default=12345)
    p.add_argument("--effort", type=float, default=None, help="effort loss weight (catalogue: 1e-3)")
    p.add_argument("--deterministic-train", action="store_true", help="train without the catalogue's noise")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=None,
                   help="torch.compile the training env's effector (default: env preset)")
    p.add_argument("--threads", type=int, default=1,
                   help="torch.set_num_threads (1: at these batch sizes the cost is per-op overhead, and a second "
                        "thread stalls badly when another process shares the 2 cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="output folder (default: results/bptt/<env>)")
    p.add_argument("--resume", action="store_true", help="continue from <out>/checkpoint.pt")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    if args.minutes is None and args.iterations is None:
        p.error("give --minutes and/or --iterations")
    if args.minutes is not None and args.minutes <= 0:
        p.error("--minutes must be > 0")
    if args.iterations is not None and args.iterations <= 0:
        p.error("--iterations must be > 0")
    if args.env not in mn_gym.list_ids():
        p.error(f"unknown env id {args.env!r}; registered: {mn_gym.list_ids()}")
    preset = {**DEFAULTS, **PRESETS.get(args.env, {})}
    for key, value in preset.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    return args


def plot(curve: list[dict], path: Path, title: str, success_radius: float) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [r["train_time_s"] / 60 for r in curve]
    iters = [r["iteration"] for r in curve]
    dist_cm = [100 * r["eval_final_distance"] for r in curve]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for ax, x, label in ((axes[0], minutes, "training wall-clock (min, evaluation excluded)"),
                         (axes[1], iters, "iteration")):
        ax.plot(x, dist_cm, marker=".", label="held-out mean final distance")
        ax.axhline(100 * success_radius, color="grey", ls="--", lw=1, label=f"{100 * success_radius:g} cm")
        ax.set_yscale("log")
        ax.set_xlabel(label)
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("mean final distance (cm), 1024 held-out targets")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    out = args.out or ROOT / "results" / "bptt" / args.env
    env_kwargs: dict = {}
    if args.effort is not None:
        env_kwargs["weights"] = {"position": 1.0, "effort": args.effort}
    if args.deterministic_train:
        env_kwargs["deterministic"] = True
    started = time.time()
    result = train_bptt(
        args.env, n_hidden=args.n_hidden, batch_size=args.batch_size, lr=args.lr, lr_schedule=args.lr_schedule,
        lr_final=args.lr_final, iterations=args.iterations,
        time_budget=None if args.minutes is None else 60 * args.minutes,
        grad_clip=args.grad_clip if args.grad_clip > 0 else None, truncation=args.truncation,
        eval_every=args.eval_every, eval_batch=args.eval_batch, eval_seed=args.eval_seed, out_dir=out,
        resume=args.resume, progress=not args.no_progress, env_kwargs=env_kwargs, seed=args.seed,
        compile_effector=args.compile,
    )
    final = result.final
    best = min(result.curve, key=lambda r: r["eval_final_distance"])
    radius = mn_gym.make(args.env).task.success_radius
    summary = {
        "env_id": args.env,
        "command": "python baselines/train_bptt.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "final_eval_distance_m": final["eval_final_distance"],
        "final_eval_success_rate": final["eval_success_rate"],
        "best_eval_distance_m": best["eval_final_distance"],
        "best_at_iteration": best["iteration"],
        "iterations": result.iterations,
        "train_time_s": result.train_time_s,
        "elapsed_s": final["elapsed_s"],
        "skipped_updates": result.skipped,
        "settings": result.config,
        "machine": {"torch": torch.__version__, "threads": torch.get_num_threads(), "python": platform.python_version(),
                    "processor": platform.processor() or platform.machine()},
        "started": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(started)),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    plot(result.curve, out / "curve.png",
         f"{args.env}: BPTT, {result.iterations} iterations, {result.train_time_s / 60:.1f} min training "
         f"-> {100 * final['eval_final_distance']:.2f} cm", radius)
    print(f"{args.env}: {result.iterations} iterations, {result.train_time_s:.0f} s training "
          f"({final['elapsed_s']:.0f} s with evaluation): held-out mean final distance "
          f"{100 * final['eval_final_distance']:.2f} cm, success {100 * final['eval_success_rate']:.1f} %")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
