"""Throughput of the Gymnasium faces: single-env steps/s and vector-env steps/s, CPU.

What it measures (ArmReach-v0 unless --env; random actions drawn beforehand; episodes restart as they end):
  1. `MnGymEnv` (one episode, numpy in/out): steps per second of `env.step(a)` (with `env.reset()` at episode
     ends), median of --repeats timed runs of --steps steps.
  2. MotorNet 0.3.0's `RandomTargetReach(effector=RigidTendonArm26(muscle=RigidTendonHillMuscle()),
     max_ep_duration=1.)` at batch 1 through its public API (`reset(options={"batch_size": 1})`,
     `step(torch action)`), when importable, in the same process.
  3. `MnGymVectorEnv` at each --num-envs (numpy in/out, NEXT_STEP autoreset): env-steps per second
     (= num_envs * steps / seconds).
  4. with --compile, the same with compiled steps (single env: `mn_gym.compilation.FlatStep`, AOTInductor; vector env:
     torch.compile); compile time is excluded (warm-up).

Reproduce:
    mn-gym bench faces --threads 1 --json baselines/results/bench_faces.json
    mn-gym bench faces --threads 1 --compile --json baselines/results/bench_faces_compile.json
Smoke run (a few seconds): mn-gym bench faces --quick --no-motornet
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from typing import Any

import numpy as np
import torch

import mn_gym  # noqa: F401  (registers the ids)
from mn_gym.faces.gym import MnGymEnv
from mn_gym.faces.vector import MnGymVectorEnv


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mn-gym bench faces", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--env", default="ArmReach-v0")
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads value")
    p.add_argument("--steps", type=int, default=1000, help="single-env steps per timed run")
    p.add_argument("--vector-steps", type=int, default=200, help="vector-env steps per timed run")
    p.add_argument("--num-envs", nargs="+", type=int, default=[64, 1024, 4096])
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--compile", action="store_true",
                   help="compiled steps: the single env's ahead-of-time flat step, the vector env's torch.compile")
    p.add_argument("--no-motornet", action="store_true")
    p.add_argument("--quick", action="store_true", help="tiny runs (smoke test)")
    p.add_argument("--json", default=None)
    args = p.parse_args(argv)
    if args.quick:
        args.steps, args.vector_steps, args.repeats, args.num_envs = 50, 10, 1, [64]
    return args


def _median_rate(run, repeats: int) -> float:
    return statistics.median(run() for _ in range(repeats))


def bench_single(args: argparse.Namespace) -> float:
    env = MnGymEnv(args.env, compile=args.compile)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (args.steps, env.action_space.shape[0])).astype(np.float32)
    env.reset(seed=0)
    for a in actions[: min(50, args.steps)]:  # warm-up (compiles when --compile)
        env.step(a)

    def run() -> float:
        env.reset(seed=0)
        t = time.perf_counter()
        for a in actions:
            _, _, term, trunc, _ = env.step(a)
            if term or trunc:
                env.reset()
        return args.steps / (time.perf_counter() - t)

    return _median_rate(run, args.repeats)


def bench_motornet(args: argparse.Namespace) -> float | None:
    if args.no_motornet:
        return None
    try:
        import motornet as mn
    except ImportError:
        return None
    effector = mn.effector.RigidTendonArm26(muscle=mn.muscle.RigidTendonHillMuscle())
    env = mn.environment.RandomTargetReach(effector=effector, max_ep_duration=1.0)
    n_m = env.action_space.shape[0]
    gen = torch.Generator().manual_seed(0)
    actions = torch.rand(args.steps, 1, n_m, generator=gen)
    with torch.no_grad():
        env.reset(options={"batch_size": 1})
        for a in actions[:50]:
            env.step(a)

        def run() -> float:
            env.reset(options={"batch_size": 1})
            t = time.perf_counter()
            for a in actions:
                _, _, terminated, truncated, _ = env.step(a)
                if bool(np.any(terminated)) or bool(np.any(truncated)):
                    env.reset(options={"batch_size": 1})
            return args.steps / (time.perf_counter() - t)

        return _median_rate(run, args.repeats)


def bench_vector(args: argparse.Namespace, n: int) -> dict[str, Any]:
    envs = MnGymVectorEnv(args.env, num_envs=n, compile=args.compile)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (8, n, envs.single_action_space.shape[0])).astype(np.float32)
    envs.reset(seed=0)
    t0 = time.perf_counter()
    for k in range(min(20, args.vector_steps)):  # warm-up (compiles when --compile)
        envs.step(actions[k % 8])
    warm = time.perf_counter() - t0

    def run() -> float:
        t = time.perf_counter()
        for k in range(args.vector_steps):
            envs.step(actions[k % 8])
        return n * args.vector_steps / (time.perf_counter() - t)

    rate = _median_rate(run, args.repeats)
    envs.close()
    return {"num_envs": n, "steps_per_s": rate, "warmup_s": warm}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    header = (f"torch {torch.__version__} | python {platform.python_version()} | {platform.platform()} | "
              f"torch threads {torch.get_num_threads()} | env {args.env} | compile {args.compile}")
    print(header)
    single = bench_single(args)
    motornet = bench_motornet(args)
    line = f"single env (MnGymEnv, batch 1): {single:,.0f} steps/s"
    if motornet is not None:
        line += f" | MotorNet RandomTargetReach batch 1: {motornet:,.0f} steps/s ({single / motornet:.1f}x)"
    print(line)
    vector = []
    for n in args.num_envs:
        r = bench_vector(args, n)
        vector.append(r)
        print(f"vector env (MnGymVectorEnv) {n:5d} envs: {r['steps_per_s']:,.0f} env-steps/s "
              f"(warm-up {r['warmup_s']:.1f} s)")
    results = {"header": header, "args": vars(args), "single": {"mn_gym": single, "motornet": motornet},
               "vector": vector}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=2)
    return results


if __name__ == "__main__":
    main()
