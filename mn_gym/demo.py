"""A short effector demo: python -m mn_gym.demo [--effector arm26] [--steps 100]

Steps a batch of effectors under random excitations and prints the endpoint path and muscle forces.
"""

from __future__ import annotations

import argparse
import time

import torch

from mn_gym.core.prebuilt import EFFECTORS, make_effector


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m mn_gym.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--effector", default="arm26", choices=sorted(EFFECTORS))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    eff = make_effector(args.effector)
    gen = torch.Generator().manual_seed(args.seed)
    state = eff.random_initial_state(args.batch, gen)
    print(eff)
    start = time.perf_counter()
    for k in range(args.steps):
        state = eff.step(state, torch.rand(args.batch, eff.n_muscles, generator=gen))
        if k % max(args.steps // 5, 1) == 0 or k == args.steps - 1:
            x, y, vx, vy = eff.cartesian(state)[0].tolist()
            forces = ", ".join(f"{f:7.1f}" for f in eff.muscle_force(state)[0].tolist())
            print(f"t={(k + 1) * eff.dt:5.2f} s  hand=({x:+.3f}, {y:+.3f}) m  v=({vx:+.2f}, {vy:+.2f}) m/s  "
                  f"forces=[{forces}] N")
    elapsed = time.perf_counter() - start
    print(f"{args.steps} steps of {args.batch} effectors in {elapsed:.3f} s "
          f"({args.steps * args.batch / elapsed:,.0f} effector-steps/s)")


if __name__ == "__main__":
    main()
