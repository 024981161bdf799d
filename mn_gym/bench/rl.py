"""RL training throughput: env steps per second including updates, rsl-rl's PPO on the torch env against
stable-baselines3's PPO on the SB3 face, side by side in one process.

Each trainer runs for `--seconds` of training wall-clock (acting, env steps and gradient updates; the held-out
evaluation is not counted), with its tuned settings for the env (or the dataclass defaults, `--defaults`), in
`--rounds` interleaved rounds so machine-speed drift hits both alike. Reports env steps / training second and
the ratio to SB3 PPO.

Reproduce:
    mn-gym bench rl --env ArmReach-v0 --threads 2 --json baselines/results/bench_rl.json
    mn-gym bench rl --quick                               # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from mn_gym.train.common import HeldOut
from mn_gym.train.settings import SETTINGS

ALGOS = ("rsl-ppo", "ppo")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mn-gym bench rl", description=__doc__.split("\n\n")[0])
    p.add_argument("--env", default="ArmReach-v0")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seconds", type=float, default=30.0, help="training seconds per trainer and round")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--defaults", action="store_true", help="the settings' dataclass defaults, not the tuned ones")
    p.add_argument("--quick", action="store_true", help="one round of 3 s")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def _settings(algo: str, env_id: str, defaults: bool) -> Any:
    if defaults:
        return SETTINGS[algo]()
    from mn_gym.train.hyperparams import tuned

    return tuned(algo, env_id)


def throughput(algo: str, env_id: str, seconds: float, settings: Any, held_out: HeldOut) -> float:
    """Env steps per training second of `algo` trained for `seconds` on `env_id`."""
    if algo == "rsl-ppo":
        from mn_gym.train.rsl import train_rsl_ppo as train
    else:
        from mn_gym.train.sb3 import train_sb3 as train
    result = train(env_id, settings, time_budget=seconds, n_evals=1, held_out=held_out, progress=False,
                   tensorboard=False)
    return result.env_steps / result.train_time_s


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    rounds, seconds = (1, 3.0) if args.quick else (args.rounds, args.seconds)
    held_out = HeldOut.make(args.env, episodes=16)  # evaluation is not timed; keep it small
    settings = {algo: _settings(algo, args.env, args.defaults) for algo in ALGOS}
    rates: dict[str, list[float]] = {algo: [] for algo in ALGOS}
    for _ in range(rounds):
        for algo in ALGOS:
            rates[algo].append(throughput(algo, args.env, seconds, settings[algo], held_out))
    result = {algo: statistics.median(r) for algo, r in rates.items()}
    print(f"{args.env} | torch {torch.__version__} | threads {args.threads} | {rounds} x {seconds:g} s per trainer")
    print(f"{'trainer':<10} {'env steps/s':>12} {'vs SB3 PPO':>11}  settings")
    for algo in ALGOS:
        s = settings[algo]
        shape = f"{s.n_envs} envs x {s.n_steps} steps"
        print(f"{algo:<10} {result[algo]:>12,.0f} {result[algo] / result['ppo']:>10.1f}x  {shape}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "env_steps_per_s": rates,
                                         "settings": {a: asdict(s) for a, s in settings.items()}}, indent=1))
    return result


if __name__ == "__main__":
    main()
