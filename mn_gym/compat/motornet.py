"""Build mn_gym objects from MotorNet 0.3.0 case sidecars.

A case sidecar (`<case>.json`, format in tests/data/golden/README.md) says how a MotorNet object was built and
run. Its `buffers` hold every parameter tensor of that object as it was actually used, each as
`{"values": [...] (flattened, float64), "shape": [...]}`, keyed by MotorNet's attribute path
("muscle.l0_ce", "skeleton.inertia_c", "a1", ...). The functions here read those tensors into mn_gym's
skeletons, geometries, muscles and effectors, and read an environment case's settings (delays, episode
length, action stacking) in mn_gym's conventions. Units are SI throughout (m, s, N, rad).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from mn_gym.core.effector import Effector
from mn_gym.core.geometry import ConstantGeometry, Geometry, PolynomialGeometry, ViaPointGeometry
from mn_gym.core.muscle import Muscle, muscle_class
from mn_gym.core.skeleton import PointMass, Skeleton, TwoLinkArm
from mn_gym.functional import Env, EnvState, SensorySettings
from mn_gym.tasks import RandomReach, ReachState

# MotorNet muscle class -> mn_gym muscle kind (`mn_gym.core.muscle.muscle_class`).
MUSCLE_CLASSES = {
    "ReluMuscle": "linear",
    "RigidTendonHillMuscle": "kistemaker",
    "RigidTendonHillMuscleThelen": "thelen",
    "MujocoHillMuscle": "mujoco",
    "CompliantTendonHillMuscle": "compliant_kistemaker_motornet",
}
# MotorNet muscle buffer name -> mn_gym muscle parameter.
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
# What the env sidecars leave out of `effector` for MotorNet's pre-built effectors (model.md 1.11): the
# skeleton class and its segment lengths (m) / Coriolis constant, the time step (s) and the integrator. Every
# parameter tensor still comes from the sidecar's `buffers`.
ENV_EFFECTOR_DEFAULTS: dict[str, dict[str, Any]] = {
    "RigidTendonArm26": {"skeleton_class": "TwoDofArm", "timestep": 0.01, "integration_method": "euler",
                         "n_ministeps": 1, "save_config": {"skeleton": {"L1": 0.309, "L2": 0.333,
                                                                        "coriolis_2": 1.43 * 0.309 * 0.165,
                                                                        "c_viscosity": 0.0}}},
    "ReluPointMass24": {"skeleton_class": "PointMass", "timestep": 0.01, "integration_method": "euler",
                        "n_ministeps": 1, "save_config": {"skeleton": {"mass": 1.0}}},
}
# mn_gym's observation groups -> the names MotorNet's env sidecars give their columns (`obs_layout`).
# mn_gym observation term -> MotorNet's name for those columns
ENV_OBS_NAMES = {"target": "goal", "hand": "vision (fingertip x,y)",
                 "fibre_length": "proprioception: muscle length / l0_ce",
                 "fibre_velocity": "proprioception: muscle velocity / vmax", "past_actions": "past action"}
ENV_KWARGS = ("max_ep_duration", "proprioception_delay", "vision_delay", "action_frame_stacking")
ENV_NOISE_KWARGS = ("action_noise", "obs_noise", "proprioception_noise", "vision_noise")


def case_dtype(meta: dict[str, Any]) -> torch.dtype:
    """The torch dtype a case was run in (its `dtype`, "float32" or "float64")."""
    return getattr(torch, meta["dtype"])


def buffer_values(buffers: dict[str, Any], name: str) -> np.ndarray:
    """One sidecar buffer as a float64 array of its stored shape."""
    entry = buffers[name]
    return np.asarray(entry["values"], dtype=np.float64).reshape(entry["shape"])


def muscle_from_buffers(kind: str, buffers: dict[str, Any], prefix: str, n_muscles: int, dtype: torch.dtype) -> Muscle:
    """The mn_gym muscle model of `kind` with every parameter MotorNet actually used.

    Args:
        kind: mn_gym muscle kind (a value of `MUSCLE_CLASSES`).
        buffers: the sidecar's `buffers`.
        prefix: the muscle's attribute path in them ("muscle." in an effector, "" for a muscle on its own).
        n_muscles: number of muscles M; scalar buffers are broadcast to the mn_gym parameter's shape.
        dtype: dtype of the muscle's tensors.
    """
    cls = muscle_class(kind)
    placeholder = {name: [0.1] * n_muscles for name in cls.required}
    shapes = cls(n_muscles, **placeholder).tensor_shapes()
    params: dict[str, Any] = {}
    for src, dst in MUSCLE_BUFFERS.items():
        key = prefix + src
        if key in buffers and dst in shapes:
            flat = buffer_values(buffers, key).reshape(-1)
            params[dst] = flat[0] if shapes[dst] == () else np.broadcast_to(flat, shapes[dst]).copy()
    if kind == "mujoco":  # MuJoCo's l0_pe buffer holds the peak passive force, not a slack length
        params.pop("passive_slack_length", None)
        params["fpmax"] = np.broadcast_to(buffer_values(buffers, prefix + "l0_pe").reshape(-1), (n_muscles,)).copy()
    return cls(n_muscles, dtype=dtype, **{k: torch.as_tensor(v, dtype=dtype) for k, v in params.items()})


def effector_from_case(meta: dict[str, Any], dtype: torch.dtype) -> Effector:
    """The mn_gym effector of an effector-trajectory or environment case, parameters from its `buffers`.

    Env sidecars of MotorNet's pre-built effectors omit the skeleton's settings, time step and integrator;
    those come from `ENV_EFFECTOR_DEFAULTS`. Raises ValueError for an unsupported class.
    """
    eff = _effector_section(meta)
    buffers = meta["buffers"]
    n = eff["n_muscles"]
    kind = MUSCLE_CLASSES.get(eff["muscle_class"])
    if kind is None:
        raise ValueError(f"unsupported muscle class {eff['muscle_class']!r}")
    skeleton = _skeleton(eff, buffers, dtype)
    geometry = _geometry(eff["class"], buffers, n, dtype)
    muscle = muscle_from_buffers(kind, buffers, "muscle.", n, dtype)
    return Effector(skeleton, muscle, geometry, eff["muscle_names"], dt=eff["timestep"],
                    integrator="motornet_rk4" if eff["integration_method"].lower() == "rk4" else "euler",
                    n_substeps=int(eff["n_ministeps"]), damping=float(buffer_values(buffers, "damping")),
                    name=eff["class"])


def _effector_section(meta: dict[str, Any]) -> dict[str, Any]:
    """The sidecar's `effector`, completed by the pre-built class's defaults where an env sidecar says nothing."""
    eff = dict(meta["effector"])
    if meta.get("kind") != "environment_observations":
        return eff
    defaults = ENV_EFFECTOR_DEFAULTS.get(eff["class"])
    if defaults is None and "save_config" not in eff:
        raise ValueError(f"unsupported env effector class {eff['class']!r}")
    for key, value in (defaults or {}).items():
        eff.setdefault(key, value)
    eff.setdefault("n_muscles", len(eff["muscle_names"]))
    return eff


def _skeleton(eff: dict[str, Any], buffers: dict[str, Any], dtype: torch.dtype) -> Skeleton:
    cfg = eff["save_config"]["skeleton"]
    bounds = {name: buffer_values(buffers, f"skeleton.{name}_bound").reshape(-1)
              for name in ("pos_lower", "pos_upper", "vel_lower", "vel_upper")}
    if eff["skeleton_class"] == "TwoDofArm":
        return TwoLinkArm(l1=cfg["L1"], l2=cfg["L2"],
                          inertia_const=buffer_values(buffers, "skeleton.inertia_c").reshape(2, 2),
                          inertia_cos=buffer_values(buffers, "skeleton.inertia_m").reshape(2, 2),
                          coriolis=cfg["coriolis_2"], viscosity=cfg.get("c_viscosity", 0.0), **bounds, dtype=dtype)
    if eff["skeleton_class"] == "PointMass":
        return PointMass(mass=cfg["mass"], **bounds, dtype=dtype)
    raise ValueError(f"unsupported skeleton class {eff['skeleton_class']!r}")


def _geometry(effector_class: str, buffers: dict[str, Any], n: int, dtype: torch.dtype) -> Geometry:
    """The path geometry of a two-joint effector, chosen by which geometry buffers the sidecar holds."""
    if "a1" in buffers:
        return PolynomialGeometry(n, 2, a0=buffer_values(buffers, "a0").reshape(-1),
                                  a1=buffer_values(buffers, "a1").reshape(2, n),
                                  a2=buffer_values(buffers, "a2").reshape(2, n),
                                  offset=buffer_values(buffers, "a3").reshape(-1), dtype=dtype)
    if "path_coordinates" in buffers:
        coords = buffer_values(buffers, "path_coordinates").reshape(2, -1).T
        bodies = buffer_values(buffers, "path_fixation_body").reshape(-1).astype(int).tolist()
        point_muscle = (buffer_values(buffers, "muscle_index").reshape(-1).astype(int) - 1).tolist()
        return ViaPointGeometry(n, 2, bodies, point_muscle, coords, dtype=dtype)
    if "a0" in buffers:  # constant moment arms, stored with MotorNet's sign (+d length / d q)
        return ConstantGeometry(n, 2, -buffer_values(buffers, "a0").reshape(2, n), dtype=dtype)
    raise ValueError(f"unsupported effector class {effector_class!r}: no recognised geometry buffers")


@dataclass(frozen=True)
class EnvCaseSettings:
    """An env case's settings in mn_gym's conventions.

    episode_duration: s per episode. proprioception_delay, vision_delay: s between a value and its
    observation (MotorNet's delay D shows a value D - dt earlier; these are D - dt). action_frame_stacking:
    number of past actions observed. seed: the env's seed.
    """

    episode_duration: float
    proprioception_delay: float
    vision_delay: float
    action_frame_stacking: int
    seed: int


def env_settings(meta: dict[str, Any], dt: float) -> EnvCaseSettings:
    """The settings of an environment case (`env_kwargs`, `env_seed`) for an effector of time step `dt` (s).

    Raises ValueError for settings that cannot be replayed: other kwargs, any noise, an environment class other
    than RandomTargetReach.
    """
    kw = meta["env_kwargs"]
    unknown = set(kw) - set(ENV_KWARGS) - set(ENV_NOISE_KWARGS)
    if unknown:
        raise ValueError(f"env_kwargs {sorted(unknown)} are not replayed")
    if any(kw.get(k, 0.0) for k in ENV_NOISE_KWARGS):
        raise ValueError("env cases with noise cannot be replayed")
    if meta.get("environment_class") != "RandomTargetReach":
        raise ValueError(f"unsupported environment class {meta.get('environment_class')!r}")

    def delay(value: float | None) -> float:
        return (dt if value is None else value) - dt  # MotorNet's None means dt: no lag

    return EnvCaseSettings(episode_duration=kw.get("max_ep_duration", 1.0),
                           proprioception_delay=delay(kw.get("proprioception_delay")),
                           vision_delay=delay(kw.get("vision_delay")),
                           action_frame_stacking=int(kw.get("action_frame_stacking", 0)),
                           seed=int(meta.get("env_seed", 0)))


def observation_names(env: Env) -> list[str]:
    """MotorNet's name of each column of `env`'s observation (obs_size names), from its declared terms."""
    return [ENV_OBS_NAMES[name] for name, size in env.observation_terms for _ in range(size)]


def env_from_case(effector: Effector, settings: EnvCaseSettings, goal: Tensor,
                  joint_state: Tensor) -> tuple[Env, EnvState, Tensor]:
    """The deterministic functional env of an env case, reset to the case's start.

    Args:
        effector: from `effector_from_case`.
        settings: from `env_settings`.
        goal: (B, 2) the targets (m) MotorNet drew, one per episode.
        joint_state: (B, 2 dof) the initial joint positions then velocities.

    Returns:
        env, its state after reset, and the first observation (B, obs_dim).
    """
    sensing = SensorySettings(proprioception_delay=settings.proprioception_delay, vision_delay=settings.vision_delay,
                              action_frame_stacking=settings.action_frame_stacking)
    b = goal.shape[0]
    env = Env(effector, RandomReach(), batch_size=b, episode_duration=settings.episode_duration, sensing=sensing,
              deterministic=True, seed=settings.seed)
    origin = effector.cartesian(effector.initial_state(joint_state))[:, :2]
    task_state = ReachState(target=goal, origin=origin)
    state, obs = env.reset(options={"joint_state": joint_state, "task_state": task_state})
    return env, state, obs


# integrator and muscle kind of the correct physics -> MotorNet 0.3.0's deviating counterpart
MOTORNET_DEVIATIONS = {"rk4": "motornet_rk4", "compliant_kistemaker": "compliant_kistemaker_motornet"}


def motornet_compatible(effector: Effector, compatible: bool = True) -> Effector:
    """`effector` with MotorNet 0.3.0's first-order "rk4" (`integrator="motornet_rk4"`) and compliant muscle
    (`MotorNetCompliantKistemakerMuscle`) in place of the correct ones, to reproduce numbers published with
    MotorNet; `compatible=False` goes back to the correct physics. Euler and rigid tendons are unchanged."""
    table = MOTORNET_DEVIATIONS if compatible else {v: k for k, v in MOTORNET_DEVIATIONS.items()}
    muscle = effector.muscle
    kind = table.get(muscle.kind)
    if kind is not None:
        muscle = muscle_class(kind).from_config({**muscle.config(), "type": kind}, dtype=effector.dtype,
                                                device=effector.device)
    return effector.replace(integrator=table.get(effector.integrator, effector.integrator), muscle=muscle)
