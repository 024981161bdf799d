"""Benchmark mn_gym effector stepping (and forward+backward through time) against MotorNet 0.3.0 on CPU.

What it measures, for the pre-built effectors `arm26` and `pointmass24` (float32, dt = 10 ms, euler):
  1. effector-steps per second (= batch * steps / seconds) of `eff.step` under `torch.no_grad()`, for several
     batch sizes; R repeats of N steps after warm-up (N is calibrated so one repeat takes ~--target-seconds);
     min / median / max over repeats.
  2. seconds for a T-step rollout forward + `.backward()` at batch --fb-batch (default 100 steps, batch 256),
     loss = sum(final endpoint xy ** 2) + mean(u ** 2), gradient w.r.t. the excitations u (T, B, M).
  3. the same for MotorNet 0.3.0 (when importable, through its public API only), in the same process and with
     the same torch thread setting, and the speed ratio mn_gym / MotorNet (> 1: mn_gym is faster).
  4. optionally (--compile) `torch.compile`d mn_gym stepping and forward + backward, with the compile time
     reported separately.

Reproduce (the numbers reported in the project were produced with exactly these commands):
    mn-gym bench effector --threads 1 --json runs/bench_effector.json
    mn-gym bench effector --threads 1 --compile --json runs/bench_effector_compile.json
Smoke run (~10 s, no MotorNet):
    mn-gym bench effector --quick --no-motornet --batches 1 4
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import mn_gym
from mn_gym.compilation import compile_effector

EFFECTOR_NAMES = ("arm26", "pointmass24")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="mn-gym bench effector", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads value (both libraries)")
    p.add_argument("--effectors", nargs="+", default=list(EFFECTOR_NAMES), choices=EFFECTOR_NAMES)
    p.add_argument("--batches", nargs="+", type=int, default=[1, 16, 256, 4096], help="batch sizes to step")
    p.add_argument("--repeats", type=int, default=7, help="timed repeats per measurement")
    p.add_argument("--warmup-steps", type=int, default=20, help="untimed steps before timing (also calibrates N)")
    p.add_argument("--target-seconds", type=float, default=0.3, help="aim for one repeat to take this long")
    p.add_argument("--min-steps", type=int, default=10, help="lower bound on N, steps per repeat")
    p.add_argument("--max-steps", type=int, default=2000, help="upper bound on N, steps per repeat")
    p.add_argument("--fb-steps", type=int, default=100, help="rollout length of the forward+backward benchmark")
    p.add_argument("--fb-batch", type=int, default=256, help="batch size of the forward+backward benchmark")
    p.add_argument("--no-check-inputs", action="store_true",
                   help="step mn_gym effectors with check_inputs=False (skips per-step input validation)")
    p.add_argument("--no-motornet", action="store_true", help="do not run MotorNet even if it is installed")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd mn_gym stepping")
    p.add_argument("--quick", action="store_true", help="tiny repeat counts (smoke test, ~10 s)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", type=str, default=None, help="write all numbers to this JSON file")
    args = p.parse_args(argv)
    if args.quick:
        args.repeats, args.warmup_steps, args.target_seconds = 2, 3, 0.01
        args.min_steps, args.max_steps = 3, 50
        args.fb_steps, args.fb_batch = 10, 16
    if args.repeats < 1 or args.warmup_steps < 1 or args.min_steps < 1 or min(args.batches) < 1:
        p.error("--repeats, --warmup-steps, --min-steps and --batches must be positive")
    return args


# ----------------------------------------------------------------------------------------------- timing helpers
def summarize(values: list[float]) -> dict[str, float]:
    return {"min": min(values), "median": statistics.median(values), "max": max(values)}


def interleaved(cases: dict[str, Callable[[], float]], repeats: int) -> dict[str, list[float]]:
    """Call every case once untimed, then `repeats` rounds of one call per case, in turn, so that drifting load
    on the machine hits every library alike. A case returns the seconds of its timed region. A failing
    MotorNet case is reported and dropped; a failing mn_gym case raises."""
    cases = dict(cases)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for rep in range(repeats + 1):
        for name, case in list(cases.items()):
            try:
                seconds = case()
            except Exception as exc:
                if name != "motornet":
                    raise
                print(f"MotorNet: timing failed ({type(exc).__name__}: {exc}); continuing with mn_gym only")
                del cases[name], times[name]
                continue
            if rep > 0:  # round 0 is the warm-up
                times[name].append(seconds)
    return times


def calibrate_steps(run: Callable[[int], float], args: argparse.Namespace) -> int:
    """Warm up with `args.warmup_steps` steps and pick N so that one repeat takes ~args.target_seconds."""
    per_step = run(args.warmup_steps) / args.warmup_steps
    return max(args.min_steps, min(args.max_steps, math.ceil(args.target_seconds / max(per_step, 1e-9))))


def check_finite(name: str, x: torch.Tensor) -> None:
    if not bool(torch.isfinite(x).all()):
        raise RuntimeError(f"{name}: non-finite values after stepping; the benchmark would be meaningless")


# ----------------------------------------------------------------------------------------------- mn_gym
def make_mn_gym(name: str, args: argparse.Namespace) -> mn_gym.Effector:
    eff = mn_gym.make_effector(name)  # float32, dt 0.01, euler: MotorNet 0.3.0's defaults
    return eff.replace(check_inputs=False) if args.no_check_inputs else eff


def mn_gym_stepper(eff: mn_gym.Effector, batch: int, args: argparse.Namespace,
                   step_fn: Callable | None = None) -> Callable[[int], float]:
    """A closure run(n) -> seconds that advances a batch of `eff` by n steps under a fixed random excitation."""
    gen = torch.Generator().manual_seed(args.seed)
    box = {"state": eff.random_initial_state(batch, gen)}
    u = torch.rand(batch, eff.n_muscles, generator=gen)
    step = step_fn or eff.step

    def run(n: int) -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            state = box["state"]
            for _ in range(n):
                state = step(state, u)
            seconds = time.perf_counter() - t0
        box["state"] = state
        check_finite("mn_gym", eff.cartesian(state))
        return seconds

    return run


def mn_gym_rollout(eff: mn_gym.Effector, args: argparse.Namespace) -> Callable[[], float]:
    """A closure -> seconds of one args.fb_steps rollout + backward at batch args.fb_batch (setup untimed)."""
    gen = torch.Generator().manual_seed(args.seed)
    b, t_steps = args.fb_batch, args.fb_steps

    def rollout() -> float:
        state = eff.random_initial_state(b, gen)
        u = torch.rand(t_steps, b, eff.n_muscles, generator=gen).requires_grad_(True)
        t0 = time.perf_counter()
        for t in range(t_steps):
            state = eff.step(state, u[t])
        loss = (eff.cartesian(state)[:, :2] ** 2).sum() + (u ** 2).mean()
        loss.backward()
        seconds = time.perf_counter() - t0
        check_finite("mn_gym grad", u.grad)
        return seconds

    return rollout


def mn_gym_compiled(name: str, batch: int, args: argparse.Namespace) -> dict[str, Any]:
    """`compile_effector` for one batch size (static shapes), timed like the eager stepping (input checks on)."""
    torch.compiler.reset()  # fresh caches, so each (effector, batch) compiles once and never hits the recompile limit
    eff = compile_effector(make_mn_gym(name, args))
    run = mn_gym_stepper(eff, batch, args)
    compile_s = run(2)  # the first calls trace and compile
    n = calibrate_steps(run, args)
    seconds = interleaved({"compiled": lambda: run(n)}, args.repeats)["compiled"]
    return {**summarize([batch * n / t for t in seconds]), "n_steps": n, "compile_s": compile_s}


# ----------------------------------------------------------------------------------------------- MotorNet
def make_motornet(mn: Any, name: str) -> Any:
    if name == "arm26":
        return mn.effector.RigidTendonArm26(muscle=mn.muscle.RigidTendonHillMuscle())
    return mn.effector.ReluPointMass24()


def motornet_stepper(eff: Any, batch: int, args: argparse.Namespace) -> Callable[[int], float]:
    """A closure run(n) -> seconds that advances MotorNet's (stateful) effector by n steps, fixed excitation."""
    gen = torch.Generator().manual_seed(args.seed)
    eff.reset(options={"batch_size": batch})
    u = torch.rand(batch, eff.n_muscles, generator=gen)

    def run(n: int) -> float:
        with torch.no_grad():
            t0 = time.perf_counter()
            for _ in range(n):
                eff.step(u)
            seconds = time.perf_counter() - t0
        check_finite("MotorNet", eff.states["cartesian"])
        return seconds

    return run


def motornet_rollout(eff: Any, args: argparse.Namespace) -> Callable[[], float]:
    gen = torch.Generator().manual_seed(args.seed)
    b, t_steps = args.fb_batch, args.fb_steps

    def rollout() -> float:
        eff.reset(options={"batch_size": b})
        u = torch.rand(t_steps, b, eff.n_muscles, generator=gen).requires_grad_(True)
        t0 = time.perf_counter()
        for t in range(t_steps):
            eff.step(u[t])
        loss = (eff.states["cartesian"][:, :2] ** 2).sum() + (u ** 2).mean()
        loss.backward()
        seconds = time.perf_counter() - t0
        check_finite("MotorNet grad", u.grad)
        return seconds

    return rollout


def import_motornet(args: argparse.Namespace) -> Any:
    if args.no_motornet:
        print("MotorNet: skipped (--no-motornet)")
        return None
    try:
        import motornet as mn
    except Exception as exc:
        print(f"MotorNet: import failed ({type(exc).__name__}: {exc}); mn_gym only")
        return None
    torch.set_num_threads(args.threads)  # in case the import touched it
    return mn


def try_motornet(what: str, fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except Exception as exc:
        print(f"MotorNet: {what} failed ({type(exc).__name__}: {exc}); continuing with mn_gym only")
        return None


# ----------------------------------------------------------------------------------------------- reporting
def fmt_speed(x: float | None) -> str:
    return "-" if x is None else f"{x:,.0f}"


def fmt_ratio(a: float | None, b: float | None) -> str:
    return "-" if a is None or b is None else f"{a / b:.2f}x"


def print_table(title: str, columns: list[tuple[str, int]], lines: list[list[str] | str]) -> None:
    """A right-aligned text table; `columns` = (header, width); a str line is printed as it is."""
    print(f"\n{title}")
    head = " ".join(f"{name:<{w}}" if i == 0 else f"{name:>{w}}" for i, (name, w) in enumerate(columns))
    print(head)
    print("-" * len(head))
    for cells in lines:
        if isinstance(cells, str):
            print(cells)
        else:
            pairs = enumerate(zip(cells, columns, strict=True))
            print(" ".join(f"{c:<{w}}" if i == 0 else f"{c:>{w}}" for i, (c, (_, w)) in pairs))


def print_step_table(rows: list[dict[str, Any]]) -> None:
    lines = []
    for r in rows:
        g, m_med = r["mn_gym"], None if r["motornet"] is None else r["motornet"]["median"]
        lines.append([r["effector"], str(r["batch"]), str(g["n_steps"]), fmt_speed(g["min"]), fmt_speed(g["median"]),
                      fmt_speed(g["max"]), fmt_speed(m_med), fmt_ratio(g["median"], m_med)])
    print_table("Effector stepping under torch.no_grad(), effector-steps/s = batch * steps / s "
                "(ratio = mn_gym median / MotorNet median; > 1: mn_gym faster)",
                [("effector", 12), ("batch", 6), ("N", 5), ("mn_gym min", 12), ("mn_gym median", 14),
                 ("mn_gym max", 12), ("MotorNet median", 16), ("ratio", 7)], lines)


def print_fb_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    lines = []
    for r in rows:
        g, m_med = r["mn_gym"], None if r["motornet"] is None else r["motornet"]["median"]
        c_med = r["compiled"]["median"] if r.get("compiled") else None
        lines.append([r["effector"], f"{g['min']:.4f}", f"{g['median']:.4f}", f"{g['max']:.4f}",
                      "-" if m_med is None else f"{m_med:.4f}", fmt_ratio(m_med, g["median"]),
                      "-" if c_med is None else f"{c_med:.4f}", fmt_ratio(m_med, c_med)])
    r0 = rows[0]["mn_gym"]
    print_table(f"Forward + backward: {r0['steps']} steps at batch {r0['batch']}, seconds per rollout "
                "(ratio = MotorNet median / mn_gym median = speed ratio; > 1: mn_gym faster; compiled: --compile)",
                [("effector", 12), ("mn_gym min", 11), ("mn_gym median", 14), ("mn_gym max", 11),
                 ("MotorNet median", 16), ("ratio", 7), ("compiled median", 16), ("ratio", 7)], lines)


def print_compile_table(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    lines: list[list[str] | str] = []
    for r in rows:
        c = r["compiled"]
        if c is None:
            lines.append(f"{r['effector']:<12} {r['batch']:>6} compile failed: {r['error']}")
            continue
        lines.append([r["effector"], str(r["batch"]), f"{c['compile_s']:.1f}", fmt_speed(c["min"]),
                      fmt_speed(c["median"]), fmt_speed(c["max"]), fmt_speed(r["eager_median"]),
                      fmt_ratio(c["median"], r["eager_median"])])
    print_table("compile_effector (torch.compile, dynamic=False), effector-steps/s "
                "(ratio = compiled median / eager median)",
                [("effector", 12), ("batch", 6), ("compile s", 10), ("compiled min", 13), ("compiled median", 16),
                 ("compiled max", 13), ("eager median", 13), ("ratio", 7)], lines)


# ----------------------------------------------------------------------------------------------- main
def git_revision() -> str:
    """The repository's commit (with -dirty for uncommitted changes), so that numbers can be tied to code."""
    try:
        out = subprocess.run(["git", "describe", "--always", "--dirty"], cwd=Path(__file__).resolve().parent,
                             capture_output=True, text=True, timeout=10, check=True)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)  # MotorNet's reset draws from the global generator(s)

    mn = import_motornet(args)
    env = {
        "torch": torch.__version__,
        "mn_gym": mn_gym.__version__,
        "motornet": None if mn is None else getattr(mn, "__version__", "unknown"),
        "git": git_revision(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "check_inputs": not args.no_check_inputs,
        "args": vars(args),
    }
    print(f"torch {env['torch']} | mn_gym {env['mn_gym']} ({env['git']}) | MotorNet {env['motornet'] or '-'} | "
          f"python {env['python']} | {env['platform']}")
    print(f"CPU count {env['cpu_count']} | torch threads {env['torch_threads']} | repeats {args.repeats} | "
          f"mn_gym check_inputs={env['check_inputs']} | float32, dt 0.01 s, euler")

    step_rows: list[dict[str, Any]] = []
    fb_rows: list[dict[str, Any]] = []
    compile_rows: list[dict[str, Any]] = []
    for name in args.effectors:
        eff = make_mn_gym(name, args)
        mn_eff = None if mn is None else try_motornet(f"building {name}", lambda n=name: make_motornet(mn, n))

        # 1. stepping speed at each batch size; N calibrated on mn_gym, reused for MotorNet
        for batch in args.batches:
            run = mn_gym_stepper(eff, batch, args)
            n = calibrate_steps(run, args)
            cases = {"mn_gym": lambda r=run, k=n: r(k)}
            if mn_eff is not None:
                run_mn = try_motornet(f"reset at batch {batch}", lambda e=mn_eff, b=batch: motornet_stepper(e, b, args))
                if run_mn is not None:
                    cases["motornet"] = lambda r=run_mn, k=n: r(k)
            seconds = interleaved(cases, args.repeats)
            speeds = {lib: {**summarize([batch * n / t for t in ts]), "n_steps": n} for lib, ts in seconds.items()}
            g, m = speeds["mn_gym"], speeds.get("motornet")
            step_rows.append({"effector": name, "batch": batch, "mn_gym": g, "motornet": m})
            print(f"  {name:<12} batch {batch:>5}: mn_gym {fmt_speed(g['median'])} steps/s, "
                  f"MotorNet {fmt_speed(None if m is None else m['median'])} steps/s", flush=True)

        # 2. forward + backward through a rollout
        cases = {"mn_gym": mn_gym_rollout(eff, args)}
        if mn_eff is not None:
            cases["motornet"] = motornet_rollout(mn_eff, args)
        seconds = interleaved(cases, args.repeats)
        info = {"steps": args.fb_steps, "batch": args.fb_batch}
        times = {lib: {**summarize(ts), **info} for lib, ts in seconds.items()}
        g, m = times["mn_gym"], times.get("motornet")
        fb_rows.append({"effector": name, "mn_gym": g, "motornet": m})
        m_text = "-" if m is None else f"{m['median']:.4f}"
        print(f"  {name:<12} fwd+bwd: mn_gym {g['median']:.4f} s, MotorNet {m_text} s", flush=True)

    # 3. optional torch.compile of mn_gym stepping
    if args.compile:
        eager = {(r["effector"], r["batch"]): r["mn_gym"]["median"] for r in step_rows}
        for name in args.effectors:
            for batch in args.batches:
                row: dict[str, Any] = {"effector": name, "batch": batch, "eager_median": eager[(name, batch)]}
                try:
                    row["compiled"] = mn_gym_compiled(name, batch, args)
                    print(f"  compiled {name:<12} batch {batch:>5}: {fmt_speed(row['compiled']['median'])} "
                          f"steps/s (compile {row['compiled']['compile_s']:.1f} s)", flush=True)
                except Exception as exc:
                    row["compiled"], row["error"] = None, f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
                    print(f"  compile: {name} batch {batch} failed ({row['error']}); skipping", flush=True)
                compile_rows.append(row)
            # forward + backward through the compiled step (AOTAutograd compiles the backward too)
            torch.compiler.reset()
            rollout = mn_gym_rollout(compile_effector(make_mn_gym(name, args)), args)
            row = next(r for r in fb_rows if r["effector"] == name)
            try:
                compile_s = rollout()
                seconds = interleaved({"compiled": rollout}, args.repeats)["compiled"]
                row["compiled"] = {**summarize(seconds), "compile_s": compile_s}
                print(f"  compiled {name:<12} fwd+bwd: {row['compiled']['median']:.4f} s "
                      f"(first call {compile_s:.1f} s)", flush=True)
            except Exception as exc:
                print(f"  compile: {name} fwd+bwd failed ({type(exc).__name__}: {exc}); skipping", flush=True)
        torch.compiler.reset()

    print_step_table(step_rows)
    print_fb_table(fb_rows)
    print_compile_table(compile_rows)

    results = {"env": env, "step": step_rows, "fwd_bwd": fb_rows, "compile": compile_rows}
    if args.json:
        path = Path(args.json)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=1))
        print(f"\nwrote {path}")
    return results


if __name__ == "__main__":
    main()
