"""Replay MotorNet 0.3.0 golden cases and compare mn_gym against them.

    python -m mn_gym.validate DIR [--case SUBSTRING] [--verbose]

Each case is `<case>.json` (how it was made, including every MotorNet parameter tensor as `buffers`) plus
`<case>.npz` (the arrays); `mn_gym.compat.motornet` builds the mn_gym objects from the sidecar. Effector cases
are replayed step by step from the stored initial joint states, excitations and loads; muscle-alone cases are
evaluated on the stored input grids; environment-observation cases are replayed through the functional env
(`mn_gym.functional.Env`) from the stored initial joint states, goals and excitations, and its observations
and episode ends are compared. Every compared array is split into named rows (state rows, or joint /
cartesian components); a row passes when
    |mn_gym - golden| <= rtol * max|golden row| + atol,
with rtol, atol = 1e-4, 1e-5 for float32 cases and 1e-9, 1e-12 for float64 cases. Each case prints one line
with its worst error relative to its row maximum. Every case is compared: MotorNet's "rk4" and compliant-tendon
cases run mn_gym's MotorNet-compatible mode (`integrator="motornet_rk4"`, the muscle
`compliant_kistemaker_motornet`; `mn_gym.compat.motornet.motornet_compatible`), and their line adds, as
"correct physics: ...", how far mn_gym's default physics (classical rk4, the corrected compliant muscle) lies
from MotorNet on the same inputs: the worst error relative to the row maximum, and the row where it is.

--case SUBSTRING replays only the cases whose file name contains SUBSTRING; the others count as skipped in
the summary line ("N passed, N failed, N skipped"). --verbose adds, under each case, one
line per compared row with its worst absolute error, its row maximum and their ratio. Exit status 0 only
when every replayed, comparable case passes.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mn_gym.compat.motornet import (
    MUSCLE_CLASSES,
    case_dtype,
    effector_from_case,
    env_from_case,
    env_settings,
    motornet_compatible,
    muscle_from_buffers,
    observation_names,
)

TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}
THELEN_F64_REASON = ("MotorNet rounds the numerator coefficients of Thelen's lengthening force-velocity curve "
                     "(products with max velocity) to float32 but not its denominator; mn_gym evaluates the curve "
                     "exactly, so float64 Thelen rows that depend on it are compared at rtol {rtol:g}")
THELEN_F64_RTOL = {"muscle_alone": 1e-7, "effector_trajectory": 1e-5}


@dataclass(frozen=True)
class RowError:
    """The worst error of one compared row, in the row's units; relative = error / max(row max, atol)."""

    array: str
    label: str
    error: float
    scale: float
    relative: float
    ok: bool

    def describe(self) -> str:
        return f"{self.array}[{self.label}]: max error {self.error:.3g} (row max {self.scale:.3g})"

    def line(self) -> str:
        return f"    {self.describe()}  relative {self.relative:.2e}  {'pass' if self.ok else 'FAIL'}"


@dataclass
class Result:
    case: str
    status: str  # "pass", "FAIL"
    worst: float = math.nan  # worst |error| / row max over compared rows
    detail: str = ""
    notes: list[str] = field(default_factory=list)
    rows: list[RowError] = field(default_factory=list)

    def line(self) -> str:
        worst = "" if math.isnan(self.worst) else f"worst {self.worst:.2e}"
        parts = [f"{self.case:55s}", self.status] + ([worst] if worst else []) + self.notes
        return "  ".join(parts)


class Comparison:
    """Collects per-row comparisons of one case."""

    def __init__(self, dtype: str, rtol: float | None = None) -> None:
        self.rtol, self.atol = TOLERANCES[dtype]
        if rtol is not None:
            self.rtol = rtol
        self.worst = 0.0
        self.ok = True
        self.failures: list[str] = []
        self.rows: list[RowError] = []

    def add(self, name: str, ours: np.ndarray, golden: np.ndarray, row_axis: int, row_names: list[str] | None = None,
            rows: list[int] | None = None) -> None:
        """Compare `ours` with `golden` (same shape) row by row along `row_axis` (all rows, or those in `rows`)."""
        if ours.shape != golden.shape:
            self.ok = False
            self.failures.append(f"{name}: shape {ours.shape} != golden {golden.shape}")
            return
        ours = np.moveaxis(ours, row_axis, 0)
        golden = np.moveaxis(golden, row_axis, 0)
        for r in rows if rows is not None else range(golden.shape[0]):
            g, o = golden[r], ours[r]
            scale = float(np.max(np.abs(g))) if g.size else 0.0
            if not np.all(np.isfinite(g)):  # a broken reference compares with nothing: the row fails
                self.ok = False
                self.failures.append(f"{name} [{row_names[r] if row_names else r}]: the golden values are not "
                                     "all finite (a damaged reference file)")
                continue
            err = np.abs(o - g)
            worst_err = float(np.max(err)) if err.size else 0.0
            if not np.all(np.isfinite(o)):
                worst_err = math.inf
            row = RowError(name, row_names[r] if row_names else str(r), worst_err, scale,
                           worst_err / max(scale, self.atol), not worst_err > self.rtol * scale + self.atol)
            self.rows.append(row)
            self.worst = max(self.worst, row.relative)
            if not row.ok:
                self.ok = False
                self.failures.append(row.describe())


def replay_effector(meta: dict[str, Any], data: Any, cmp: Comparison, physics: bool = False) -> None:
    """Step the case's effector (MotorNet-compatible; with `physics`, mn_gym's correct physics instead) through
    the stored excitations and loads; compare joint, cartesian, muscle and geometry records."""
    dtype = case_dtype(meta)
    effector = effector_from_case(meta, dtype)
    if physics:
        effector = motornet_compatible(effector, compatible=False)
    q0 = torch.as_tensor(np.asarray(meta["initial_joint_state"]), dtype=dtype)
    state = effector.initial_state(q0)
    excitation = torch.as_tensor(data["excitation"], dtype=dtype)
    endpoint = data["endpoint_load"] if "endpoint_load" in data.files else None
    joint = data["joint_load"] if "joint_load" in data.files else None
    every = int(meta.get("record_every", 1))
    records = {"joint": [], "cartesian": [], "muscle": [], "geometry": []}

    def record(s: Any) -> None:
        l_mt, v_mt, arm = effector.path_geometry(s)
        records["joint"].append(s.joint)
        records["cartesian"].append(effector.cartesian(s))
        records["muscle"].append(effector.muscle_state(s))
        records["geometry"].append(torch.cat((l_mt[:, None], v_mt[:, None], -arm), dim=1))

    record(state)
    for k in range(excitation.shape[0]):
        ep = None if endpoint is None else torch.as_tensor(endpoint[k], dtype=dtype)
        jl = None if joint is None else torch.as_tensor(joint[k], dtype=dtype)
        state = effector.step(state, excitation[k], endpoint_load=ep, joint_load=jl)
        if (k + 1) % every == 0:
            record(state)
    names = {"muscle": list(effector.muscle_state_names),
             "geometry": ["musculotendon length", "musculotendon velocity"] + [f"moment {j}" for j in range(2)]}
    for key, row_axis in (("joint", 2), ("cartesian", 2), ("muscle", 2), ("geometry", 2)):
        ours = torch.stack(records[key]).double().numpy()
        cmp.add(key, ours, data[key], row_axis, names.get(key))


def replay_muscle(meta: dict[str, Any], data: Any, cmp: Comparison) -> None:
    """Compare a muscle-alone case on its force-curve, activation and initial-state grids (MotorNet's compliant
    muscle through `compliant_kistemaker_motornet`)."""
    dtype = case_dtype(meta)
    kind = MUSCLE_CLASSES[meta["muscle_class"]]
    n = meta["n_muscles"]
    muscle = muscle_from_buffers(kind, meta["buffers"], "", n, dtype)
    names = list(muscle.state_names)
    a_min = float(muscle.min_activation)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype)

    def rows(state_in: np.ndarray, geom_in: np.ndarray, activation: torch.Tensor) -> np.ndarray:
        l_m = t(state_in[:, 1]) if muscle.compliant else None
        out = muscle.rows(activation, t(geom_in[:, 0]), t(geom_in[:, 1]), l_m)
        return torch.stack(out, dim=1).double().numpy()

    # Force curves at the given activation (clipped), lengths and velocities.
    a = t(data["curve_muscle_state_in"][:, 0]).clamp(a_min, 1.0)
    if muscle.compliant:  # MotorNet's compliant muscle (`compliant_kistemaker_motornet`)
        state_in, geom = t(data["curve_muscle_state_in"]), t(data["curve_geometry_in"])
        # a zero-derivative integrate: the fibre length stays, the reported velocity is 0
        curve = muscle.motornet_rows(a, geom[:, 0], state_in[:, 1], state_in[:, 1], torch.zeros_like(a))
        cmp.add("curve_muscle_state_out", torch.stack(curve, 1).double().numpy(), data["curve_muscle_state_out"], 1,
                names)
        out = t(data["curve_muscle_state_out"])
        a_out = out[:, 0].clamp(a_min, 1.0)
        vn = muscle.motornet_length_rate(a_out, out[:, 1], out[:, 5]) / muscle.optimal_fibre_length
        ode = torch.stack((muscle.activation_rate(a_out, a_out), vn), 1)
        cmp.add("curve_ode_out", ode.double().numpy(), data["curve_ode_out"], 1, ["activation rate", "vn"])
    else:
        curve = rows(data["curve_muscle_state_in"], data["curve_geometry_in"], a)
        cmp.add("curve_muscle_state_out", curve, data["curve_muscle_state_out"], 1, names)
    # Activation dynamics.
    u = t(data["act_excitation"])[:, None].expand(-1, n).clamp(a_min, 1.0)
    a0 = t(data["act_muscle_state_in"][:, 0]).clamp(a_min, 1.0)
    rate = muscle.activation_rate(u, a0)
    cmp.add("act_ode_out", rate[:, None].double().numpy(), data["act_ode_out"][:, :1], 1)
    # MotorNet integrates from the activation as given (grid values below min_activation included).
    a1 = (t(data["act_muscle_state_in"][:, 0]) + meta["build_call"]["timestep"] * rate).clamp(a_min, 1.0)
    dt = meta["build_call"]["timestep"]
    geom = data["init_geometry_in"]
    a_rest = torch.full((geom.shape[0], n), a_min, dtype=dtype)
    if muscle.compliant:
        state_in, geom_in = t(data["act_muscle_state_in"]), t(data["act_geometry_in"])
        ldot = muscle.motornet_length_rate(a0, state_in[:, 1], state_in[:, 5])
        vn = ldot / muscle.optimal_fibre_length
        cmp.add("act_ode_out", vn[:, None].double().numpy(), data["act_ode_out"][:, 1:], 1, ["vn"])
        nxt = muscle.motornet_rows(a1, geom_in[:, 0], state_in[:, 1] + dt * ldot, state_in[:, 1],
                                   muscle.reported_velocity(ldot))
        cmp.add("act_next_state", torch.stack(nxt, 1).double().numpy(), data["act_next_state"], 1, names)
        l_mt = t(geom[:, 0])
        l_eq = muscle.initial_fibre_length(l_mt)
        l_m, velocity = muscle.initial_fibre_state(l_eq, l_mt, dt)
        init = torch.stack(muscle.motornet_rows(a_rest, l_mt, l_m, l_eq, velocity), 1).double().numpy()
    else:
        nxt = rows(data["act_muscle_state_in"], data["act_geometry_in"], a1)
        cmp.add("act_next_state", nxt, data["act_next_state"], 1, names)
        init = rows(np.zeros((geom.shape[0], len(names), n)), geom, a_rest)
    cmp.add("init_muscle_state", init, data["init_muscle_state"], 1, names)


def replay_env(meta: dict[str, Any], data: Any, cmp: Comparison) -> None:
    """Replay an environment-observation case through the functional env and compare obs and episode ends."""
    dtype = case_dtype(meta)
    effector = effector_from_case(meta, dtype)
    settings = env_settings(meta, effector.dt)
    obs_g = data["obs"]
    n_steps = obs_g.shape[0] - 1
    goal = torch.as_tensor(data["goal"], dtype=dtype)
    joint0 = torch.as_tensor(data["joint"][0], dtype=dtype) if "joint" in data.files else \
        torch.as_tensor(np.asarray(meta["initial_joint_state"]), dtype=dtype)
    env, state, obs = env_from_case(effector, settings, goal, joint0)
    ours_names = observation_names(env)
    layout = list(meta.get("obs_layout", ours_names))
    if layout != ours_names:
        raise ValueError(f"obs_layout {layout} does not match mn_gym's observation layout {ours_names}")
    # Column names with an index within each group, e.g. "proprioception: muscle length / l0_ce [2]".
    names = [f"{name} [{layout[:i].count(name)}]" for i, name in enumerate(layout)]
    excitation = torch.as_tensor(data["excitation"], dtype=dtype)
    observations, ends = [obs], []
    with torch.no_grad():
        for k in range(n_steps):
            state, obs, _, terminated, truncated, _ = env.step(state, excitation[k])
            observations.append(obs)
            ends.append(terminated | truncated)
    cmp.add("obs", torch.stack(observations).double().numpy(), obs_g.astype(np.float64), 2, names)
    done = torch.stack(ends).numpy()
    expected = np.broadcast_to(np.asarray(data["terminated"], dtype=bool)[:, None], done.shape)
    if not np.array_equal(done, expected):
        cmp.ok = False
        ours_steps = sorted({int(k) + 1 for k in np.nonzero(done)[0]})
        gold_steps = sorted({int(k) + 1 for k in np.nonzero(expected)[0]})
        cmp.failures.append(f"terminated: episode ends after steps {ours_steps} (per element {done.sum(0).tolist()}),"
                            f" golden after steps {gold_steps}")


def physics_distance(cmp: Comparison) -> str:
    """How far mn_gym's correct physics lies from MotorNet on a case: its worst row, relative to the row max."""
    worst = max(cmp.rows, key=lambda r: r.relative)
    return f"correct physics: worst {worst.relative:.2e} of the row max, at {worst.array}[{worst.label}]"


def validate_case(json_path: Path) -> Result:
    """Replay one golden case (`<case>.json` next to its `<case>.npz`). A case that cannot be read or replayed
    (malformed JSON or npz, missing fields, an error while replaying) is a FAIL with its reason, never an abort."""
    try:
        return _validate_case(json_path)
    except Exception as exc:  # any broken case is reported and the others still run
        return Result(json_path.stem, "FAIL", notes=[f"could not read or replay: {type(exc).__name__}: {exc}"])


def _validate_case(json_path: Path) -> Result:
    meta = json.loads(json_path.read_text())
    if not isinstance(meta, dict):
        return Result(json_path.stem, "FAIL", notes=[f"{json_path.name} is not a JSON object"])
    case = meta.get("case", json_path.stem)
    npz = json_path.with_suffix(".npz")
    if not npz.exists():
        return Result(case, "FAIL", notes=[f"missing {npz.name}"])
    data = np.load(npz)  # allow_pickle=False: arrays only
    kind = meta.get("kind")
    dtype = meta.get("dtype", "float32")
    if dtype not in TOLERANCES:
        return Result(case, "FAIL", notes=[f"unsupported dtype {dtype!r}"])
    notes = []
    rtol = None
    muscle_cls = meta.get("muscle_class") or meta.get("effector", {}).get("muscle_class")
    if dtype == "float64" and muscle_cls == "RigidTendonHillMuscleThelen":
        rtol = THELEN_F64_RTOL.get(kind)
        notes.append(f"[{THELEN_F64_REASON.format(rtol=rtol)}]")
    cmp = Comparison(dtype, rtol)
    try:
        if kind == "effector_trajectory":
            replay_effector(meta, data, cmp)
            eff = meta["effector"]
            if eff["integration_method"].lower() == "rk4" or eff["muscle_class"] == "CompliantTendonHillMuscle":
                physics = Comparison(dtype, rtol)
                replay_effector(meta, data, physics, physics=True)
                notes.append(f"[{physics_distance(physics)}]")
        elif kind == "muscle_alone":
            replay_muscle(meta, data, cmp)
        elif kind == "environment_observations":
            replay_env(meta, data, cmp)
        else:
            return Result(case, "FAIL", notes=[f"unknown case kind {kind!r}"])
    except (KeyError, ValueError, TypeError, RuntimeError) as exc:
        return Result(case, "FAIL", notes=[f"could not replay: {type(exc).__name__}: {exc}"])
    return Result(case, "pass" if cmp.ok else "FAIL", worst=cmp.worst, notes=notes + cmp.failures, rows=cmp.rows)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring); returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m mn_gym.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="folder of <case>.json + <case>.npz golden files")
    parser.add_argument("--case", default="", metavar="SUBSTRING",
                        help="only cases whose file name contains this text; the others count as skipped")
    parser.add_argument("--verbose", action="store_true",
                        help="one more line per compared row: its worst error, row maximum and their ratio")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"not a directory: {args.directory}")
    every = sorted(args.directory.glob("*.json"))
    paths = [p for p in every if args.case in p.stem]
    if not paths:
        what = f"matching --case {args.case!r} " if every else ""
        print(f"no golden cases (*.json) {what}in {args.directory}", file=sys.stderr)
        return 1
    results = [validate_case(p) for p in paths]
    for r in results:
        print(r.line())
        if args.verbose:
            for row in r.rows:
                print(row.line())
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "FAIL")}
    print(f"{counts['pass']} passed, {counts['FAIL']} failed, "
          f"{len(every) - len(paths)} skipped")
    return 0 if counts["FAIL"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
