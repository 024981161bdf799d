"""Replay MotorNet 0.3.0 golden cases and compare mn_gym against them.

    python -m mn_gym.validate DIR [--case SUBSTRING] [--verbose]

Each case is `<case>.json` (how it was made, including every MotorNet parameter tensor as `buffers`) plus
`<case>.npz` (the arrays). Effector cases are replayed step by step from the stored initial joint states,
excitations and loads; muscle-alone cases are evaluated on the stored input grids; environment-observation
cases are replayed through the functional env (`mn_gym.functional.Env`) from the stored initial joint states,
goals and excitations, and its observations and episode ends are compared. Every compared array is
split into named rows (state rows, or joint / cartesian components); a row passes when
    |mn_gym - golden| <= rtol * max|golden row| + atol,
with rtol, atol = 1e-4, 1e-5 for float32 cases and 1e-9, 1e-12 for float64 cases. Each case prints one line
with its worst error relative to its row maximum. Where mn_gym deliberately differs from MotorNet (its
first-order "rk4"; its compliant-tendon fibre dynamics), the line says "differs by design: <reason>" and
the case counts neither as a pass nor as a failure. Exit status 0 only when every comparable case passes.
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

from mn_gym.core.effector import Effector
from mn_gym.core.geometry import ConstantGeometry, PolynomialGeometry, ViaPointGeometry
from mn_gym.core.muscle import Muscle, muscle_class
from mn_gym.core.skeleton import PointMass, TwoLinkArm

TOLERANCES = {"float32": (1e-4, 1e-5), "float64": (1e-9, 1e-12)}
MUSCLE_CLASSES = {
    "ReluMuscle": "linear",
    "RigidTendonHillMuscle": "kistemaker",
    "RigidTendonHillMuscleThelen": "thelen",
    "MujocoHillMuscle": "mujoco",
    "CompliantTendonHillMuscle": "compliant_kistemaker",
}
RK4_REASON = ("MotorNet's 'rk4' is first order (stages chained from the previous stage, position advanced "
              "with the old velocity); mn_gym's rk4 is classical fourth order")
COMPLIANT_REASON = ("MotorNet's compliant fibre length moves at 1/10 of its reported velocity and reduces "
                    "a_rel below optimal length; mn_gym integrates the reported velocity and reduces a_rel above "
                    "optimal length as the rigid model does")
THELEN_F64_REASON = ("MotorNet rounds the numerator coefficients of Thelen's lengthening force-velocity curve "
                     "(products with max velocity) to float32 but not its denominator; mn_gym evaluates the curve "
                     "exactly, so float64 Thelen rows that depend on it are compared at rtol {rtol:g}")
THELEN_F64_RTOL = {"muscle_alone": 1e-7, "effector_trajectory": 1e-5}
# MotorNet buffer name -> mn_gym muscle parameter.
MUSCLE_BUFFERS = {
    "max_iso_force": "max_isometric_force",
    "l0_se": "tendon_slack_length",
    "l0_ce": "optimal_fibre_length",
    "l0_pe": "passive_slack_length",
    "k_pe": "passive_stiffness",
    "vmax": "max_velocity",
    "min_activation": "min_activation",
    "tau_activation": "tau_activation",
    "tau_deactivation": "tau_deactivation",
    "lmin": "lmin",
    "lmax": "lmax",
    "fvmax": "fvmax",
    "b": "passive_knee",
    "c": "fv_knee",
    "mid": "fl_mid_low",
    "ce_gamma": "fl_width",
    "pe_1": "pe_exponent",
    "pe_den": "pe_normaliser",
    "ce_Af": "af",
    "ce_fmlen": "flen",
}


@dataclass
class Result:
    case: str
    status: str  # "pass", "FAIL", "differs by design", "skipped"
    worst: float = math.nan  # worst |error| / row max over compared rows
    detail: str = ""
    notes: list[str] = field(default_factory=list)

    def line(self) -> str:
        worst = "" if math.isnan(self.worst) else f"worst {self.worst:.2e}"
        text = f"{self.status}: {self.detail}" if self.status in ("differs by design", "skipped") else self.status
        parts = [f"{self.case:55s}", f"{text}"] + ([worst] if worst else []) + self.notes
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

    def add(self, name: str, ours: np.ndarray, golden: np.ndarray, row_axis: int, row_names: list[str] | None = None,
            rows: list[int] | None = None) -> None:
        if ours.shape != golden.shape:
            self.ok = False
            self.failures.append(f"{name}: shape {ours.shape} != golden {golden.shape}")
            return
        ours = np.moveaxis(ours, row_axis, 0)
        golden = np.moveaxis(golden, row_axis, 0)
        for r in rows if rows is not None else range(golden.shape[0]):
            g, o = golden[r], ours[r]
            scale = float(np.max(np.abs(g))) if g.size else 0.0
            err = np.abs(o - g)
            worst_err = float(np.max(err)) if err.size else 0.0
            if not np.all(np.isfinite(o)):
                worst_err = math.inf
            self.worst = max(self.worst, worst_err / max(scale, self.atol))
            if worst_err > self.rtol * scale + self.atol:
                self.ok = False
                label = row_names[r] if row_names else str(r)
                self.failures.append(f"{name}[{label}]: max error {worst_err:.3g} (row max {scale:.3g})")


def _values(buffers: dict[str, Any], name: str) -> np.ndarray:
    entry = buffers[name]
    return np.asarray(entry["values"], dtype=np.float64).reshape(entry["shape"])


def _muscle_from_buffers(kind: str, buffers: dict[str, Any], prefix: str, n_muscles: int, dtype: torch.dtype) -> Muscle:
    """The mn_gym muscle model with every parameter MotorNet actually used."""
    cls = muscle_class(kind)
    shapes = cls(n_muscles, **_placeholder(cls, n_muscles)).tensor_shapes()
    params: dict[str, Any] = {}
    for src, dst in MUSCLE_BUFFERS.items():
        key = prefix + src
        if key in buffers and dst in shapes:
            flat = _values(buffers, key).reshape(-1)
            params[dst] = flat[0] if shapes[dst] == () else np.broadcast_to(flat, shapes[dst]).copy()
    if kind == "mujoco":
        params.pop("passive_slack_length", None)
        params["fpmax"] = np.broadcast_to(_values(buffers, prefix + "l0_pe").reshape(-1), (n_muscles,)).copy()
    return cls(n_muscles, dtype=dtype, **{k: torch.as_tensor(v, dtype=dtype) for k, v in params.items()})


def _placeholder(cls: type[Muscle], n: int) -> dict[str, Any]:
    return {name: [0.1] * n for name in cls.required}


def _effector_from_case(meta: dict[str, Any], dtype: torch.dtype) -> Effector:
    eff = meta["effector"]
    buffers = meta["buffers"]
    cls_name = eff["class"]
    n = eff["n_muscles"]
    kind = MUSCLE_CLASSES.get(eff["muscle_class"])
    if kind is None:
        raise ValueError(f"unsupported muscle class {eff['muscle_class']!r}")
    skel_cfg = eff["save_config"]["skeleton"]
    bounds = {name: _values(buffers, f"skeleton.{name}_bound").reshape(-1)
              for name in ("pos_lower", "pos_upper", "vel_lower", "vel_upper")}
    if eff["skeleton_class"] == "TwoDofArm":
        skeleton = TwoLinkArm(
            l1=skel_cfg["L1"], l2=skel_cfg["L2"],
            inertia_const=_values(buffers, "skeleton.inertia_c").reshape(2, 2),
            inertia_cos=_values(buffers, "skeleton.inertia_m").reshape(2, 2),
            coriolis=skel_cfg["coriolis_2"], viscosity=skel_cfg.get("c_viscosity", 0.0), **bounds, dtype=dtype)
    elif eff["skeleton_class"] == "PointMass":
        skeleton = PointMass(mass=skel_cfg["mass"], **bounds, dtype=dtype)
    else:
        raise ValueError(f"unsupported skeleton class {eff['skeleton_class']!r}")
    if "a1" in buffers:
        geometry = PolynomialGeometry(n, 2, a0=_values(buffers, "a0").reshape(-1),
                                      a1=_values(buffers, "a1").reshape(2, n), a2=_values(buffers, "a2").reshape(2, n),
                                      offset=_values(buffers, "a3").reshape(-1), dtype=dtype)
    elif "path_coordinates" in buffers:
        coords = _values(buffers, "path_coordinates").reshape(2, -1).T
        bodies = _values(buffers, "path_fixation_body").reshape(-1).astype(int).tolist()
        point_muscle = (_values(buffers, "muscle_index").reshape(-1).astype(int) - 1).tolist()
        geometry = ViaPointGeometry(n, 2, bodies, point_muscle, coords, dtype=dtype)
    elif "a0" in buffers:  # constant moment arms, stored with MotorNet's sign (+d length / d q)
        geometry = ConstantGeometry(n, 2, -_values(buffers, "a0").reshape(2, n), dtype=dtype)
    else:
        raise ValueError(f"unsupported effector class {cls_name!r}: no recognised geometry buffers")
    muscle = _muscle_from_buffers(kind, buffers, "muscle.", n, dtype)
    return Effector(skeleton, muscle, geometry, eff["muscle_names"], dt=eff["timestep"],
                    integrator="rk4" if eff["integration_method"].lower() == "rk4" else "euler",
                    n_substeps=int(eff["n_ministeps"]), damping=float(_values(buffers, "damping")), name=cls_name)


def _replay_effector(meta: dict[str, Any], data: Any, cmp: Comparison) -> None:
    dtype = getattr(torch, meta["dtype"])
    effector = _effector_from_case(meta, dtype)
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


def _replay_muscle(meta: dict[str, Any], data: Any, cmp: Comparison) -> list[str]:
    """Compare a muscle-alone case; returns the arrays left out by design."""
    dtype = getattr(torch, meta["dtype"])
    kind = MUSCLE_CLASSES[meta["muscle_class"]]
    n = meta["n_muscles"]
    muscle = _muscle_from_buffers(kind, meta["buffers"], "", n, dtype)
    names = list(muscle.state_names)
    a_min = float(muscle.min_activation)

    def t(x: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(x, dtype=dtype)

    def rows(state_in: np.ndarray, geom_in: np.ndarray, activation: torch.Tensor) -> np.ndarray:
        l_m = t(state_in[:, 1]) if muscle.compliant else None
        out = muscle.rows(activation, t(geom_in[:, 0]), t(geom_in[:, 1]), l_m)
        return torch.stack(out, dim=1).double().numpy()

    excluded = []
    # Force curves at the given activation (clipped), lengths and velocities.
    a = t(data["curve_muscle_state_in"][:, 0]).clamp(a_min, 1.0)
    curve = rows(data["curve_muscle_state_in"], data["curve_geometry_in"], a)
    if muscle.compliant:
        # MotorNet's zero-derivative integrate reports velocity 0 here; mn_gym reports the fibre velocity.
        cmp.add("curve_muscle_state_out", curve, data["curve_muscle_state_out"], 1, names, rows=[0, 1, 3, 4, 5, 6])
        a_out = t(data["curve_muscle_state_out"][:, 0])
        rate = muscle.activation_rate(a_out.clamp(a_min, 1.0), a_out.clamp(a_min, 1.0)).double().numpy()
        cmp.add("curve_ode_out", rate[:, None], data["curve_ode_out"][:, :1], 1)
        excluded += ["curve_ode_out fibre velocity", "init_muscle_state"]
    else:
        cmp.add("curve_muscle_state_out", curve, data["curve_muscle_state_out"], 1, names)
    # Activation dynamics.
    u = t(data["act_excitation"])[:, None].expand(-1, n).clamp(a_min, 1.0)
    a0 = t(data["act_muscle_state_in"][:, 0]).clamp(a_min, 1.0)
    rate = muscle.activation_rate(u, a0)
    cmp.add("act_ode_out", rate[:, None].double().numpy(), data["act_ode_out"][:, :1], 1)
    # MotorNet integrates from the activation as given (grid values below min_activation included).
    a1 = (t(data["act_muscle_state_in"][:, 0]) + meta["build_call"]["timestep"] * rate).clamp(a_min, 1.0)
    if muscle.compliant:
        cmp.add("act_next_state", a1[:, None].double().numpy(), data["act_next_state"][:, :1], 1)
        excluded.append("act_next_state fibre rows")
    else:
        nxt = rows(data["act_muscle_state_in"], data["act_geometry_in"], a1)
        cmp.add("act_next_state", nxt, data["act_next_state"], 1, names)
        geom = data["init_geometry_in"]
        init = rows(np.zeros((geom.shape[0], len(names), n)), geom, torch.full((geom.shape[0], n), a_min, dtype=dtype))
        cmp.add("init_muscle_state", init, data["init_muscle_state"], 1, names)
    return excluded


# What the env sidecars leave out of `effector` for MotorNet's pre-built effectors (model.md 1.11): the
# skeleton class and its segment lengths / Coriolis constant, the time step and the integrator. Every
# parameter tensor still comes from the sidecar's `buffers`.
ENV_EFFECTOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "RigidTendonArm26": {"skeleton_class": "TwoDofArm", "timestep": 0.01, "integration_method": "euler",
                         "n_ministeps": 1, "save_config": {"skeleton": {"L1": 0.309, "L2": 0.333,
                                                                        "coriolis_2": 1.43 * 0.309 * 0.165,
                                                                        "c_viscosity": 0.0}}},
    "ReluPointMass24": {"skeleton_class": "PointMass", "timestep": 0.01, "integration_method": "euler",
                        "n_ministeps": 1, "save_config": {"skeleton": {"mass": 1.0}}},
}
# mn_gym's observation layout -> the names MotorNet's env sidecars give its columns.
ENV_OBS_NAMES = {"target": "goal", "vision": "vision (fingertip x,y)",
                 "length": "proprioception: muscle length / l0_ce",
                 "velocity": "proprioception: muscle velocity / vmax", "action": "past action"}


def _env_effector_meta(meta: dict[str, Any]) -> dict[str, Any]:
    """The env sidecar with its `effector` completed by the pre-built class's defaults where it says nothing."""
    eff = dict(meta["effector"])
    defaults = ENV_EFFECTOR_DEFAULTS.get(eff["class"])
    if defaults is None and "save_config" not in eff:
        raise ValueError(f"unsupported env effector class {eff['class']!r}")
    for key, value in (defaults or {}).items():
        eff.setdefault(key, value)
    eff.setdefault("n_muscles", len(eff["muscle_names"]))
    return {**meta, "effector": eff}


def _replay_env(meta: dict[str, Any], data: Any, cmp: Comparison) -> None:
    """Replay an environment-observation case through the functional env and compare obs and episode ends."""
    from mn_gym.functional import Env, SensorySettings
    from mn_gym.tasks import RandomReach, TaskState

    dtype = getattr(torch, meta["dtype"])
    effector = _effector_from_case(_env_effector_meta(meta), dtype)
    dt = effector.dt
    kw = meta["env_kwargs"]
    unknown = set(kw) - {"max_ep_duration", "proprioception_delay", "vision_delay", "action_frame_stacking",
                         "action_noise", "obs_noise", "proprioception_noise", "vision_noise"}
    if unknown:
        raise ValueError(f"env_kwargs {sorted(unknown)} are not replayed")
    if any(kw.get(k, 0.0) for k in ("action_noise", "obs_noise", "proprioception_noise", "vision_noise")):
        raise ValueError("env cases with noise cannot be replayed")
    if meta.get("environment_class") != "RandomTargetReach":
        raise ValueError(f"unsupported environment class {meta.get('environment_class')!r}")

    def delay(value: float | None) -> float:
        # MotorNet's delay D shows the value D - dt earlier (None means dt); mn_gym's delay d shows it d earlier.
        return (dt if value is None else value) - dt

    stack = int(kw.get("action_frame_stacking", 0))
    sensing = SensorySettings(proprioception_delay=delay(kw.get("proprioception_delay")),
                              vision_delay=delay(kw.get("vision_delay")), action_frame_stacking=stack)
    obs_g = data["obs"]
    n_steps, b = obs_g.shape[0] - 1, obs_g.shape[1]
    env = Env(effector, RandomReach(), batch_size=b, episode_duration=kw.get("max_ep_duration", 1.0),
              sensing=sensing, deterministic=True, seed=int(meta.get("env_seed", 0)))
    m = effector.n_muscles
    ours_names = ([ENV_OBS_NAMES["target"]] * 2 + [ENV_OBS_NAMES["vision"]] * 2 + [ENV_OBS_NAMES["length"]] * m
                  + [ENV_OBS_NAMES["velocity"]] * m + [ENV_OBS_NAMES["action"]] * (stack * m))
    layout = list(meta.get("obs_layout", ours_names))
    if layout != ours_names:
        raise ValueError(f"obs_layout {layout} does not match mn_gym's observation layout {ours_names}")
    # Column names with an index within each group, e.g. "proprioception: muscle length / l0_ce [2]".
    names = [f"{name} [{layout[:i].count(name)}]" for i, name in enumerate(layout)]
    goal = torch.as_tensor(data["goal"], dtype=dtype)
    joint0 = torch.as_tensor(data["joint"][0], dtype=dtype) if "joint" in data.files else \
        torch.as_tensor(np.asarray(meta["initial_joint_state"]), dtype=dtype)
    zeros = torch.zeros(b, dtype=dtype)
    task_state = TaskState(target=goal, origin=effector.cartesian(effector.initial_state(joint0))[:, :2],
                           cue_step=torch.zeros(b, dtype=torch.long), field=zeros, extra=torch.zeros(b, 0, dtype=dtype))
    state, obs = env.reset(options={"joint_state": joint0, "task_state": task_state})
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


def validate_case(json_path: Path) -> Result:
    """Replay one golden case."""
    meta = json.loads(json_path.read_text())
    case = meta.get("case", json_path.stem)
    npz = json_path.with_suffix(".npz")
    if not npz.exists():
        return Result(case, "FAIL", detail="", notes=[f"missing {npz.name}"])
    data = np.load(npz)
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
            eff = meta["effector"]
            reasons = []
            if eff["integration_method"].lower() == "rk4":
                reasons.append(RK4_REASON)
            if MUSCLE_CLASSES.get(eff["muscle_class"]) == "compliant_kistemaker":
                reasons.append(COMPLIANT_REASON)
            _replay_effector(meta, data, cmp)
            if reasons:
                return Result(case, "differs by design", detail="; ".join(reasons), worst=cmp.worst)
        elif kind == "muscle_alone":
            excluded = _replay_muscle(meta, data, cmp)
            if excluded:
                res = Result(case, "pass" if cmp.ok else "FAIL", worst=cmp.worst)
                res.notes.append(f"[not compared, differs by design: {', '.join(excluded)}: {COMPLIANT_REASON}]")
                res.notes += cmp.failures
                return res
        elif kind == "environment_observations":
            _replay_env(meta, data, cmp)
        else:
            return Result(case, "FAIL", notes=[f"unknown case kind {kind!r}"])
    except (KeyError, ValueError, TypeError) as exc:
        return Result(case, "FAIL", notes=[f"could not replay: {type(exc).__name__}: {exc}"])
    return Result(case, "pass" if cmp.ok else "FAIL", worst=cmp.worst, notes=notes + cmp.failures)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mn_gym.validate", description=__doc__.split("\n\n")[0])
    parser.add_argument("directory", type=Path, help="folder of <case>.json + <case>.npz golden files")
    parser.add_argument("--case", default="", help="only cases whose name contains this text")
    args = parser.parse_args(argv)
    if not args.directory.is_dir():
        parser.error(f"not a directory: {args.directory}")
    paths = sorted(p for p in args.directory.glob("*.json") if args.case in p.stem)
    if not paths:
        print(f"no golden cases (*.json) in {args.directory}", file=sys.stderr)
        return 1
    results = [validate_case(p) for p in paths]
    for r in results:
        print(r.line())
    counts = {s: sum(r.status == s for r in results) for s in ("pass", "FAIL", "differs by design", "skipped")}
    print(f"{counts['pass']} passed, {counts['FAIL']} failed, {counts['differs by design']} differ by design, "
          f"{counts['skipped']} skipped")
    return 0 if counts["FAIL"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
