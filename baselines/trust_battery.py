"""A battery of bad-input and fault cases against mn_gym's public surfaces, each classified by what happened.

    (ulimit -v 8000000; PYTHONPATH=. python baselines/trust_battery.py --out baselines/results/trust/after.txt)

Kinds of case: files (crafted pickles on every load path, flipped bytes, truncation), run folders (two writers,
a run failing before training, conflicting --resume flags), parameters (muscles, skeletons, tasks, env
settings), states (NaN, foreign, wrong batch), the reward of out-of-range actions, numerics outside the
accurate range, CLI user errors, and `validate` on broken golden files. Each case ends as one of:

- clear error: refused with a one-line message (an exception whose message names the problem, or the CLI's
  exit status 2 with an error line and no traceback);
- handled: done correctly (finite numbers, the right result, a warning where the setting leaves the accurate
  range);
- silently wrong: accepted, then NaN or nonsense, or code from a file ran;
- crash: an internal error, a traceback for a user error, or an unclear message.

It uses only what every mn_gym version has (the CLI, `mn_gym.make`, `make_effector`, `Env.step`, `validate`),
so the same script measures a tree before and after a change (run it with that tree on PYTHONPATH). Run it
under a memory limit (`ulimit -v 8000000`): a tree that accepts a 10^7 s delay allocates a 20 GB delay line.
Prints one line per case and the counts per kind; `--out` writes the same.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import io
import json
import math
import pickle
import shutil
import sys
import tempfile
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

import mn_gym
from mn_gym import cli

OUTCOMES = ("clear error", "handled", "silently wrong", "crash")
ROOT = Path(tempfile.mkdtemp(prefix="mn_gym-battery-"))
MARKER = ROOT / "EXECUTED"
TINY = {"bptt": ["--set", "batch_size=16", "--set", "compile_effector=False", "--steps", "3200"],
        "ppo": ["--set", "n_envs=4", "--set", "n_steps=16", "--set", "batch_size=32", "--steps", "256"],
        "sac": ["--set", "n_envs=2", "--set", "learning_starts=20", "--set", "batch_size=16", "--steps", "120"],
        "rsl-ppo": ["--set", "n_envs=8", "--set", "n_steps=8", "--set", "hidden_dims=[8, 8]", "--steps", "128"]}


class Payload:
    """Unpickling this creates MARKER: the stand-in for code in a shared file."""

    def __reduce__(self):
        return Path.touch, (MARKER,)


def cli_run(*argv: object) -> tuple[int, str]:
    """(exit status, stderr) of `mn-gym ARGV` in this process; an exception escaping is status 1 + traceback."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            code = cli.main([str(a) for a in argv])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except Exception as exc:  # what a user would see: a traceback
            return 1, f"Traceback: {type(exc).__name__}: {exc}"
    return code or 0, err.getvalue()


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def cli_outcome(*argv: object, fine: Callable[[], bool] | None = None) -> str:
    """A CLI case: status 2 with one line = clear error; status 0 = handled when `fine()` (or no check) else
    silently wrong; anything else = crash. A planted payload that ran is always silently wrong."""
    log(f"  cli {' '.join(map(str, argv))[:150]}")
    code, err = cli_run(*argv)
    if MARKER.exists():
        return "silently wrong"
    if code == 2 and "Traceback" not in err and "error:" in (err.strip().splitlines() or [""])[-1]:
        return "clear error"  # one error line (argparse prints its usage above it)
    if code == 0:
        return "handled" if fine is None or fine() else "silently wrong"
    return "crash"


def api_outcome(build: Callable[[], object], check: Callable[[object], bool] | None = None,
                expect_warning: bool = False, invalid: bool = False) -> str:
    """An API case: ValueError / TypeError with a message = clear error; a result passing `check` = handled
    (with a warning when `expect_warning`); a result failing it = silently wrong; other exceptions = crash.
    `invalid`: the input is wrong by construction, so accepting it at all is silently wrong."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            result = build()
        except (ValueError, TypeError) as exc:
            return "clear error" if str(exc).strip() and "\n" not in str(exc).strip() else "crash"
        except Exception:
            return "crash"
    if MARKER.exists():
        return "silently wrong"
    if expect_warning and not any(issubclass(w.category, UserWarning) for w in caught):
        return "silently wrong"
    if invalid or (check is not None and not check(result)):
        return "silently wrong"
    return "handled"


def finite_rollout(env_id: str, steps: int = 20, action: float = 0.2, **kwargs: object) -> bool:
    """Build `env_id` with `kwargs`, step it: every observation and reward finite, joints inside limits."""
    env = mn_gym.make(env_id, batch_size=2, seed=0, **kwargs)
    state, obs = env.reset()
    sk = env.effector.skeleton
    for _ in range(min(steps, env.max_steps)):
        state, obs, reward, *_ = env.step(state, torch.full((2, env.action_size), action))
        q = state.effector.q
        if not (torch.isfinite(obs).all() and torch.isfinite(reward).all()
                and ((q >= sk.pos_lower - 1e-6) & (q <= sk.pos_upper + 1e-6)).all()):
            return False
    return True


def effector_steps(name: str, **kwargs: object) -> bool:
    eff = mn_gym.make_effector(name, **kwargs)
    state = eff.initial_state(torch.tensor([[0.8, 1.2]]) if eff.dof == 2 else torch.zeros(1, eff.dof))
    for _ in range(20):
        state = eff.step(state, torch.full((1, eff.n_muscles), 0.3))
    return all(torch.isfinite(t).all() for t in state if isinstance(t, torch.Tensor))


# ------------------------------------------------------------------------------------------------ cases
def train_tiny(out: Path, algo: str) -> None:
    code, err = cli_run("train", "--algo", algo, "--env", "PointMassReach-v0", "--out", out, "--no-progress",
                        "--eval-episodes", 32, *TINY[algo])
    if code != 0:
        raise RuntimeError(f"could not train the {algo} fixture: {err}")


def plant(run_dir: Path) -> None:
    """Replace every torch / pickle / SB3 file of `run_dir` by one that runs code when unpickled."""
    for path in run_dir.iterdir():
        if path.suffix in (".pt", ".pkl"):
            torch.save({"policy": Payload(), "actor": Payload()}, path)
        elif path.suffix == ".zip":
            with zipfile.ZipFile(path) as z:
                members = {n: z.read(n) for n in z.namelist()}
            data = json.loads(members["data"])
            data["policy_class"] = {":serialized:": base64.b64encode(pickle.dumps(Payload())).decode()}
            members["data"] = json.dumps(data).encode()
            with zipfile.ZipFile(path, "w") as z:
                for name, blob in members.items():
                    z.writestr(name, blob)
    manifest = run_dir / "manifest.json"
    if manifest.is_file():  # an attacker re-signs the folder
        from mn_gym import files

        files.write_manifest(run_dir)


def policy_files(run_dir: Path) -> list[Path]:
    return sorted(p for p in run_dir.iterdir() if p.suffix in (".pt", ".pkl", ".zip"))


def file_cases(fixtures: dict[str, Path]) -> list[tuple[str, str, str]]:
    out = []
    for algo, src in fixtures.items():
        for command in ("eval", "render", "resume"):
            run_dir = ROOT / f"payload-{algo}-{command}"
            shutil.copytree(src, run_dir)
            plant(run_dir)
            MARKER.unlink(missing_ok=True)
            argv = {"eval": ("eval", run_dir, "--episodes", 8),
                    "render": ("render", run_dir, "--episodes", 1, "--width", 64, "--out", ROOT / "x.png"),
                    "resume": ("train", "--algo", algo, "--env", "PointMassReach-v0", "--out", run_dir,
                               "--no-progress", "--resume", *TINY[algo][:-1], 4 * int(TINY[algo][-1]))}[command]
            out.append(("files", f"crafted pickle, {algo}, {command}", cli_outcome(*argv)))
            MARKER.unlink(missing_ok=True)
        for damage in ("flipped byte", "truncated"):
            run_dir = ROOT / f"damaged-{algo}-{damage.replace(' ', '')}"
            shutil.copytree(src, run_dir)
            for path in policy_files(run_dir):
                data = bytearray(path.read_bytes())
                if damage == "truncated":
                    data = data[: len(data) // 3]
                else:
                    index = len(data) - max(64, len(data) // 5)  # inside the tensor data, not the zip directory
                    data[index] ^= 0x40
                path.write_bytes(bytes(data))
            reference = json.loads((src / "summary.json").read_text())["final_eval_distance_m"]

            def same_result(run_dir=run_dir, reference=reference) -> bool:
                from mn_gym.train import runs

                got = runs.evaluate_run(run_dir, episodes=32, plot=False)["mean_final_distance_m"]
                return math.isclose(got, reference, rel_tol=1e-4)
            out.append(("files", f"{damage} {algo} file, eval", cli_outcome("eval", run_dir, "--episodes", 32,
                                                                            "--no-plot", fine=same_result)))
    return out


def folder_cases(fixtures: dict[str, Path]) -> list[tuple[str, str, str]]:
    out = []
    bad = ROOT / "fails-early"
    cli_run("train", "--env", "PointMassReach-v0", "--out", bad, "--no-progress", "--env-set", "foo=1",
            "--steps", 3200)
    out.append(("run folders", "bad --env-set, then the corrected rerun",
                cli_outcome("train", "--env", "PointMassReach-v0", "--out", bad, "--no-progress", *TINY["bptt"])))
    src = fixtures["bptt"]
    for flag, value in (("--seed", "3"), ("--set", "batch_size=32"), ("--env-set", "muscle=thelen")):
        run_dir = ROOT / f"resume-{flag.strip('-')}"
        shutil.copytree(src, run_dir)
        recorded = json.loads((src / "run.json").read_text())

        def kept(run_dir=run_dir, recorded=recorded) -> bool:  # the resumed run is the recorded one
            run = json.loads((run_dir / "run.json").read_text())
            return all(run[k] == recorded[k] for k in ("seed", "settings", "env_kwargs"))
        out.append(("run folders", f"--resume with a conflicting {flag}",
                    cli_outcome("train", "--env", "PointMassReach-v0", "--out", run_dir, "--no-progress",
                                "--resume", flag, value, "--steps", 6400, fine=kept)))
    run_dir = ROOT / "incomplete-run-json"
    shutil.copytree(src, run_dir)
    run = json.loads((run_dir / "run.json").read_text())
    del run["env_id"]
    (run_dir / "run.json").write_text(json.dumps(run))
    with contextlib.suppress(Exception):
        from mn_gym import files

        files.write_manifest(run_dir)
    out.append(("run folders", "incomplete run.json, eval", cli_outcome("eval", run_dir, "--episodes", 8)))
    return out


def parameter_cases() -> list[tuple[str, str, str]]:
    arm = "arm26"
    cases = [
        ("thelen pe_normaliser 0", lambda: effector_steps(arm, muscle="thelen", muscle_params={"pe_normaliser": 0.0})),
        ("mujoco lmin > lmax", lambda: effector_steps(arm, muscle="mujoco", muscle_params={"lmin": 1.7})),
        ("mujoco lmax < 1", lambda: effector_steps(arm, muscle="mujoco", muscle_params={"lmax": 0.9})),
        ("tendon slack length 0", lambda: effector_steps(arm, muscle_params={"tendon_slack_length": 0.0})),
        ("optimal fibre length 1e-30", lambda: effector_steps(arm, muscle_params={"optimal_fibre_length": 1e-30})),
        ("kistemaker min_activation 0", lambda: effector_steps(arm, muscle_params={"min_activation": 0.0})),
        ("min_activation 1", lambda: effector_steps(arm, muscle_params={"min_activation": 1.0})),
        ("tau_activation -0.01", lambda: effector_steps(arm, muscle_params={"tau_activation": -0.01})),
        ("max_velocity nan", lambda: effector_steps(arm, muscle_params={"max_velocity": math.nan})),
        ("point mass 0 kg", lambda: effector_steps("pointmass24", mass=0.0)),
        ("arm viscosity -1", lambda: mn_gym.core.TwoLinkArm.from_segments(viscosity=-1.0) and True),
    ]
    out = [("parameters", name, api_outcome(build, invalid=True)) for name, build in cases]
    cfg = mn_gym.make_effector(arm).config()
    cfg["skeleton"]["params"]["inertia_const"] = [[0.01, 0.5], [0.5, 0.01]]
    out.append(("parameters", "mass matrix not positive definite (JSON)",
                api_outcome(lambda: mn_gym.core.Effector.from_config(json.loads(json.dumps(cfg))), invalid=True)))
    tasks = [("ArmCurlField-v0", "k", math.nan), ("ArmCurlField-v0", "k", 1e35), ("ArmCurlField-v0",
             "catch_probability", 1.5), ("ArmCentreOut-v0", "radius", -0.1), ("ArmCentreOut-v0", "n_targets", 2.5),
             ("ArmCentreOut-v0", "cue_min", 0.5), ("ArmPosture-v0", "max_force", -3.0),
             ("ArmPosture-v0", "duration", 0.0), ("ArmPosture-v0", "onset_min", 0.9), ("ArmTrack-v0", "amplitude",
             "big"), ("ArmTrack-v0", "f_min", 5.0), ("ArmTrack-v0", "n_components", 0), ("ArmReach-v0", "margin", 0.7),
             ("ArmReach-v0", "success_radius", 0.0)]
    out += [("parameters", f"{env_id} {key}={value!r}",
             api_outcome(lambda env_id=env_id, key=key, value=value: finite_rollout(env_id, **{key: value}),
                         invalid=True)) for env_id, key, value in tasks]
    sensing = [("proprioception_delay", -0.01), ("vision_delay", 1e7), ("action_noise", -1.0),
               ("observation_noise", math.inf), ("episode_duration", 0.0), ("action_frame_stacking", -1),
               ("dt", 0.0)]
    out += [("parameters", f"env {key}={value!r}",
             api_outcome(lambda key=key, value=value: finite_rollout("ArmReach-v0", **{key: value}), invalid=True))
            for key, value in sensing]
    return out


def state_cases() -> list[tuple[str, str, str]]:
    env = mn_gym.make("ArmReach-v0", batch_size=2, seed=0)
    state, _ = env.reset()
    action = torch.full((2, 6), 0.2)
    nan = state._replace(effector=state.effector._replace(qd=state.effector.qd * math.nan))

    def steps(s) -> bool:
        _, obs, reward, *_ = env.step(s, action)
        return bool(torch.isfinite(obs).all() and torch.isfinite(reward).all())
    others = {"a PointMassReach state": ("PointMassReach-v0", 2), "a state of batch 3": ("ArmReach-v0", 3),
              "a CurlField state": ("ArmCurlField-v0", 2)}
    return [("states", "NaN in the state", api_outcome(lambda: steps(nan), invalid=True)),
            ("states", "NaN action", api_outcome(lambda: env.step(state, action * math.nan), invalid=True))] + [
            ("states", name, api_outcome(lambda env_id=env_id, b=b: steps(mn_gym.make(env_id, batch_size=b).reset()[0]),
                                         invalid=True)) for name, (env_id, b) in others.items()]


def reward_cases() -> list[tuple[str, str, str]]:
    env = mn_gym.make("ArmReach-v0", batch_size=1, seed=0, deterministic=True)
    state, _ = env.reset()

    def effort(a: float) -> float:
        return float(env.step(state, torch.full((1, 6), a))[5]["terms"]["effort"][0])
    return [("reward", "action -7 scored as what the muscles took", api_outcome(lambda: effort(-7.0) <= 1.0,
                                                                                check=bool)),
            ("reward", "action 1.8e19: finite reward", api_outcome(
                lambda: math.isfinite(float(env.step(state, torch.full((1, 6), 1.8e19))[2][0])), check=bool))]


def numerics_cases() -> list[tuple[str, str, str]]:
    return [("numerics", f"compliant arm dt {dt * 1e3:g} ms warns",
             api_outcome(lambda dt=dt: mn_gym.make_effector("compliant_arm26", dt=dt), expect_warning=True))
            for dt in (0.002, 0.005, 0.01)] + [
            ("numerics", "curl gain 200 warns", api_outcome(lambda: mn_gym.make("ArmCurlField-v0", k=200.0),
                                                            expect_warning=True))]


def cli_cases(fixtures: dict[str, Path]) -> list[tuple[str, str, str]]:
    base = ["train", "--env", "PointMassReach-v0", "--no-progress", "--steps", 3200]
    blocker = ROOT / "a-file"
    blocker.write_text("not a folder")
    cases = [("--device cuda (no GPU)" if not torch.cuda.is_available() else "--device cuda:9",
              [*base, "--out", ROOT / "c1", "--device", "cuda" if not torch.cuda.is_available() else "cuda:9"]),
             ("--device abacus", [*base, "--out", ROOT / "c2", "--device", "abacus"]),
             ("--threads 0", [*base, "--out", ROOT / "c3", "--threads", 0]),
             ("--eval-episodes 0", [*base, "--out", ROOT / "c4", "--eval-episodes", 0]),
             ("--env-set foo=1", [*base, "--out", ROOT / "c5", "--env-set", "foo=1"]),
             ("--set lr=fast", [*base, "--out", ROOT / "c6", "--set", "lr=fast"]),
             ("--out under a file", [*base, "--out", blocker / "run"]),
             ("eval of a non-run folder", ["eval", ROOT]),
             ("eval --episodes 0", ["eval", fixtures["bptt"], "--episodes", 0]),
             ("render to .jpg", ["render", fixtures["bptt"], "--out", ROOT / "x.jpg"]),
             ("report of an empty folder", ["report", ROOT / "empty"])]
    (ROOT / "empty").mkdir()
    return [("cli", name, cli_outcome(*argv)) for name, argv in cases]


def validate_cases(golden: Path) -> list[tuple[str, str, str]]:
    from mn_gym import validate

    out = []
    good = "arm26_euler_f32_endpointload"
    folder = ROOT / "golden"
    folder.mkdir()
    meta = json.loads((golden / f"{good}.json").read_text())
    data = dict(np.load(golden / f"{good}.npz"))
    (folder / "nan.json").write_text(json.dumps({**meta, "case": "nan"}))
    np.savez(folder / "nan.npz", **{k: np.full_like(v, np.nan) if k in ("joint", "cartesian", "muscle", "geometry")
                                    else v for k, v in data.items()})
    (folder / "broken.json").write_text("{not json")
    shutil.copy(golden / f"{good}.json", folder / f"{good}.json")
    shutil.copy(golden / f"{good}.npz", folder / f"{good}.npz")
    buffer = io.StringIO()
    try:
        with contextlib.redirect_stdout(buffer), contextlib.redirect_stderr(io.StringIO()):
            validate.main([str(folder)])
    except Exception:
        return [("validate", "golden file full of NaN", "crash"), ("validate", "malformed case", "crash")]
    lines = {line.split()[0]: line for line in buffer.getvalue().splitlines() if line.split()}
    out.append(("validate", "golden file full of NaN",
                "clear error" if "FAIL" in lines.get("nan", "") else "silently wrong"))
    out.append(("validate", "malformed case, the others still run",
                "clear error" if "FAIL" in lines.get("broken", "") and "pass" in lines.get(good, "") else "crash"))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="write the case lines and counts here too")
    parser.add_argument("--golden", type=Path, default=Path(__file__).parents[1] / "tests" / "data" / "golden")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", DeprecationWarning)
    fixtures = {}
    for algo in TINY:
        fixtures[algo] = ROOT / f"fixture-{algo}"
        train_tiny(fixtures[algo], algo)
    rows = (file_cases(fixtures) + folder_cases(fixtures) + parameter_cases() + state_cases() + reward_cases()
            + numerics_cases() + cli_cases(fixtures) + validate_cases(args.golden))
    lines = [f"{kind:12s} {outcome:15s} {name}" for kind, name, outcome in rows]
    kinds = sorted({kind for kind, _, _ in rows}, key=[r[0] for r in rows].index)
    table = ["| kind | tried | " + " | ".join(OUTCOMES) + " |", "|---|---|" + "---|" * len(OUTCOMES)]
    for kind in [*kinds, "all"]:
        got = Counter(o for k, _, o in rows if kind in (k, "all"))
        table.append(f"| {kind} | {sum(got.values())} | " + " | ".join(str(got[o]) for o in OUTCOMES) + " |")
    text = "\n".join([*lines, "", *table]) + "\n"
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
    shutil.rmtree(ROOT, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
