"""BPTT training-iteration speed: mn_gym against MotorNet 0.3.0, side by side in one process.

One iteration = reset a batch, roll a GRU policy (32 units) through a 100-step episode (1 s at 10 ms) of
random reaching with the 4-muscle point mass, loss = mean hand-goal distance + 1e-3 mean squared excitation,
backward, Adam step. Both libraries get the same policy class, batch, loss and torch thread setting; rounds
are interleaved so machine-speed drift hits both alike. Reports min / median / max seconds per iteration.

Reproduce:
    mn-gym bench bptt --threads 1 --json baselines/results/bench_bptt.json
    mn-gym bench bptt --quick --no-motornet          # smoke run
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path
from typing import Any

import torch

import mn_gym


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mn-gym bench bptt", description=__doc__.split("\n\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--hidden", type=int, default=32)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--compile", action="store_true", help="also time mn_gym with rollout(..., compile=True)")
    p.add_argument("--no-motornet", action="store_true")
    p.add_argument("--quick", action="store_true", help="2 repeats")
    p.add_argument("--json", type=Path, default=None)
    return p.parse_args(argv)


def mn_gym_iteration(batch: int, hidden: int, compiled: bool = False):
    # MotorNet's RandomTargetReach defaults: no noise, no sensory lag (its delay = dt shows the current value).
    env = mn_gym.make("PointMassReach-v0", batch_size=batch, seed=0, deterministic=True, proprioception_delay=0.0,
                      vision_delay=0.0)
    policy = mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)

    def iteration() -> float:
        ro = mn_gym.rollout(env, policy, compile=compiled)
        loss = ro.terms["position"].mean() + 1e-3 * ro.terms["effort"].mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss.detach())

    return iteration


def motornet_iteration(batch: int, hidden: int):
    import motornet as mn

    env = mn.environment.RandomTargetReach(effector=mn.effector.ReluPointMass24(), max_ep_duration=1.0)
    obs, _ = env.reset(options={"batch_size": batch})
    policy = mn_gym.GRUPolicy(obs.shape[-1], env.n_muscles, n_hidden=hidden)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-3)

    def iteration() -> float:
        obs, info = env.reset(options={"batch_size": batch})
        h = policy.initial_hidden(batch)
        dist, effort = [], []
        terminated = False
        while not terminated:
            action, h = policy(obs, h)
            obs, _, terminated, _, info = env.step(action)
            dist.append(torch.linalg.vector_norm(info["states"]["fingertip"] - info["goal"], dim=-1))
            effort.append((action * action).mean(-1))
        loss = torch.stack(dist).mean() + 1e-3 * torch.stack(effort).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        return float(loss)

    return iteration


def summarize(xs: list[float]) -> dict[str, float]:
    return {"min": min(xs), "median": statistics.median(xs), "max": max(xs)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    repeats = 2 if args.quick else args.repeats
    runners = {"mn_gym": mn_gym_iteration(args.batch, args.hidden)}
    if args.compile:
        runners["mn_gym compiled"] = mn_gym_iteration(args.batch, args.hidden, compiled=True)
    if not args.no_motornet:
        try:
            runners["MotorNet"] = motornet_iteration(args.batch, args.hidden)
        except Exception as exc:  # MotorNet is optional: report and go on
            print(f"MotorNet: could not set up ({type(exc).__name__}: {exc})")
    for run in runners.values():
        run()  # warm-up (and compile)
    times: dict[str, list[float]] = {name: [] for name in runners}
    for _ in range(repeats):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    print(f"torch {torch.__version__} | threads {args.threads} | batch {args.batch} | GRU {args.hidden} | "
          f"100 steps | {repeats} repeats")
    print(f"{'library':<16} {'min s':>8} {'median s':>9} {'max s':>8} {'speed-up':>9}")
    result = {name: summarize(ts) for name, ts in times.items()}
    ref = result.get("MotorNet", {}).get("median")
    for name, r in result.items():
        ratio = f"{ref / r['median']:.2f}x" if ref else "-"
        print(f"{name:<16} {r['min']:>8.3f} {r['median']:>9.3f} {r['max']:>8.3f} {ratio:>9}")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": vars(args) | {"json": str(args.json)}, "seconds": result}, indent=1))
    return result


if __name__ == "__main__":
    main()
