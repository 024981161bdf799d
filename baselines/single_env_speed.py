"""Simulated seconds per CPU second of one single (batch-1) Gymnasium env, random actions: mn_gym's default
env (`gymnasium.make(id)`, eager; `--compile` for `compile=True`) or MyoSuite's 6-muscle elbow, the RL peer
issue 12 measures against. MyoSuite lives in its own virtual environment (it pins its own gymnasium):

    python -m venv .venv-myo && .venv-myo/bin/pip install myosuite
    .venv-myo/bin/python baselines/single_env_speed.py --lib myosuite
    python baselines/single_env_speed.py --lib mn_gym --env ArmReach-v0 [--compile]

Prints steps per wall second and simulated seconds (steps x the env's time step) per process CPU second.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make(lib: str, env_id: str, compile_step: bool):
    if lib == "myosuite":
        from myosuite.utils import gym

        env = gym.make(env_id or "myoElbowPose1D6MRandom-v0")
        return env, env.unwrapped.dt
    import gymnasium as gym

    import mn_gym  # noqa: F401  (registers the ids; 1 torch thread)

    env = gym.make(env_id or "ArmReach-v0", **({"compile": True} if compile_step else {}))
    return env, env.unwrapped.functional.dt  # the functional env behind the face


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--lib", choices=("mn_gym", "myosuite"), required=True)
    p.add_argument("--env", default="", help="env id (default ArmReach-v0 / myoElbowPose1D6MRandom-v0)")
    p.add_argument("--compile", action="store_true", help="mn_gym: gymnasium.make(id, compile=True)")
    p.add_argument("--steps", type=int, default=3000)
    args = p.parse_args()
    env, dt = make(args.lib, args.env, args.compile)
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    low, high = env.action_space.low, env.action_space.high
    for _ in range(50):  # warm-up (and the compile, with --compile)
        env.step(env.action_space.sample())
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(low, high).astype(np.float32))
        if terminated or truncated:
            env.reset()
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    print(f"{args.lib} {env.spec.id}{' compile=True' if args.compile else ''}: dt {dt:g} s, "
          f"{args.steps / wall:,.0f} steps/s, {args.steps * dt / cpu:,.0f} simulated s per CPU s", flush=True)


if __name__ == "__main__":
    main()
