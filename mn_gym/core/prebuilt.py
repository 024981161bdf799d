"""Pre-built effectors (MotorNet's catalogue, rebuilt from the published parameters) and a builder for
custom ones whose muscles run along via points.

Sources: arm26 skeleton and muscles after Kistemaker, Van Soest & Bobbert (2010) and Nijhof & Kouwenhoven
(2000); the elbow is arm26's forearm with the shoulder fixed at 90 deg;
point-mass effectors and the constant-moment-arm reacher as in MotorNet 0.3.0 (Codol et al. 2023).
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable, Sequence
from typing import Any

import torch

from mn_gym.core.effector import Effector
from mn_gym.core.geometry import ConstantGeometry, PolynomialGeometry, ViaPointGeometry
from mn_gym.core.muscle import LinearMuscle, muscle_class
from mn_gym.core.skeleton import Elbow, PointMass, Skeleton, TwoLinkArm

ARM26_MUSCLES = ("pectoralis", "deltoid", "brachioradialis", "tricepslat", "biceps", "tricepslong")
_ARM26 = {
    "max_isometric_force": [838.0, 1207.0, 1422.0, 1549.0, 414.0, 603.0],
    "optimal_fibre_length": [0.134, 0.140, 0.092, 0.093, 0.137, 0.127],
    "tendon_slack_length": [0.039, 0.066, 0.172, 0.187, 0.204, 0.217],
    "a0": [0.151, 0.2322, 0.2859, 0.2355, 0.3329, 0.2989],
}
_ARM26_COMPLIANT = {"tendon_slack_length": [0.070, 0.070, 0.172, 0.187, 0.204, 0.217],
                    "a0": [0.182, 0.2362, 0.2859, 0.2355, 0.3329, 0.2989]}
_ARM26_A1 = [[-0.03, 0.03, 0.0, 0.0, -0.03, 0.03], [0.0, 0.0, -0.014, 0.025, -0.016, 0.03]]
_ARM26_A2 = [[0.0] * 6, [0.0, 0.0, -0.004, -0.0022, -0.0057, -0.0032]]
ARM26_BOUNDS = ((0.0, 0.0), (math.radians(135), math.radians(155)))
RIGID_MODELS = ("kistemaker", "thelen", "mujoco")


def _options(dtype: torch.dtype, device: Any) -> dict[str, Any]:
    return {"dtype": dtype, "device": device}


def arm26_skeleton(g: float = 0.0, **options: Any) -> TwoLinkArm:
    """The arm26 two-link arm: shoulder [0, 135] deg, elbow [0, 155] deg; `g` > 0 for a vertical plane."""
    return TwoLinkArm.from_segments(m1=1.82, m2=1.43, l1g=0.135, l2g=0.165, i1=0.051, i2=0.057, l1=0.309,
                                    l2=0.333, g=g, pos_lower=ARM26_BOUNDS[0], pos_upper=ARM26_BOUNDS[1], **options)


def _arm26(muscle: str, table: dict[str, list[float]], muscle_params: dict[str, Any] | None, g: float,
           name: str, dt: float, integrator: str, n_substeps: int, damping: float, dtype: torch.dtype,
           device: Any) -> Effector:
    opts = _options(dtype, device)
    params = {k: table[k] for k in ("max_isometric_force", "optimal_fibre_length", "tendon_slack_length")}
    params.update(muscle_params or {})  # user values win, always
    geometry = PolynomialGeometry(6, 2, a0=table["a0"], a1=_ARM26_A1, a2=_ARM26_A2,
                                  offset=[math.pi / 2, 0.0], **opts)
    return Effector(arm26_skeleton(g, **opts), muscle_class(muscle)(6, **params, **opts), geometry, ARM26_MUSCLES,
                    dt=dt, integrator=integrator, n_substeps=n_substeps, damping=damping, name=name)


def arm26(muscle: str = "kistemaker", *, muscle_params: dict[str, Any] | None = None, g: float = 0.0,
          dt: float = 0.01, integrator: str = "euler", n_substeps: int = 1, damping: float = 0.0,
          dtype: torch.dtype = torch.float32, device: Any = None) -> Effector:
    """Two-link arm with 6 rigid-tendon muscles on polynomial paths (Kistemaker et al. 2010).

    `muscle`: "kistemaker" (default), "thelen" or "mujoco". `muscle_params` overrides any muscle parameter
    (e.g. max_isometric_force, a list of 6); given values are used as they are.
    """
    if muscle not in RIGID_MODELS:
        raise ValueError(f"arm26 takes a rigid-tendon muscle model {RIGID_MODELS}, got {muscle!r} "
                         "(use compliant_arm26 for the compliant tendon)")
    return _arm26(muscle, _ARM26, muscle_params, g, "arm26", dt, integrator, n_substeps, damping, dtype, device)


def compliant_arm26(*, muscle_params: dict[str, Any] | None = None, g: float = 0.0, dt: float = 0.0002,
                    integrator: str = "rk4", n_substeps: int = 1, damping: float = 0.0,
                    dtype: torch.dtype = torch.float32, device: Any = None) -> Effector:
    """arm26 with compliant-tendon Kistemaker muscles (stiff: default dt 0.2 ms, rk4)."""
    table = {**_ARM26, **_ARM26_COMPLIANT}
    return _arm26("compliant_kistemaker", table, muscle_params, g, "compliant_arm26", dt, integrator, n_substeps,
                  damping, dtype, device)


def pointmass24(*, max_isometric_force: float = 500.0, mass: float = 1.0, dt: float = 0.01,
                integrator: str = "euler", n_substeps: int = 1, damping: float = 0.0,
                dtype: torch.dtype = torch.float32, device: Any = None) -> Effector:
    """A 1 kg point mass in [-1, 1]^2 m pulled by 4 linear muscles from anchors at (+-2, +-2) m."""
    builder = EffectorBuilder(PointMass(mass=mass, **_options(dtype, device)), muscle="linear")
    for label, (x, y) in (("UpperRight", (2, 2)), ("UpperLeft", (-2, 2)), ("LowerRight", (2, -2)),
                          ("LowerLeft", (-2, -2))):
        builder.add_muscle(label, [(0, (x, y)), (1, (0, 0))], max_isometric_force=max_isometric_force)
    return builder.build(dt=dt, integrator=integrator, n_substeps=n_substeps, damping=damping, name="pointmass24")


def free_pointmass24(*, max_isometric_force: float = 1000.0, mass: float = 1.0, dt: float = 0.01,
                     integrator: str = "euler", n_substeps: int = 1, damping: float = 0.0,
                     dtype: torch.dtype = torch.float32, device: Any = None) -> Effector:
    """A 1 kg point mass in [-0.6, 0.6]^2 m pushed right, up, left and down by 4 constant-arm actuators."""
    opts = _options(dtype, device)
    skeleton = PointMass(mass=mass, pos_lower=-0.6, pos_upper=0.6, **opts)
    arms = [[1.0, 0.0, -1.0, 0.0], [0.0, 1.0, 0.0, -1.0]]
    return Effector(skeleton, LinearMuscle(4, max_isometric_force=max_isometric_force, **opts),
                    ConstantGeometry(4, 2, arms, **opts), ("r", "u", "l", "d"), dt=dt, integrator=integrator,
                    n_substeps=n_substeps, damping=damping, name="free_pointmass24")


def reacher(*, max_isometric_force: float = 1000.0, dt: float = 0.01, integrator: str = "euler",
            n_substeps: int = 1, damping: float = 0.0, dtype: torch.dtype = torch.float32,
            device: Any = None) -> Effector:
    """The arm26 skeleton driven by shoulder and elbow flexor/extensor torque actuators (1 m arms)."""
    opts = _options(dtype, device)
    arms = [[1.0, -1.0, 0.0, 0.0], [0.0, 0.0, 1.0, -1.0]]
    return Effector(arm26_skeleton(**opts), LinearMuscle(4, max_isometric_force=max_isometric_force, **opts),
                    ConstantGeometry(4, 2, arms, **opts), ("sf", "se", "ef", "ee"), dt=dt, integrator=integrator,
                    n_substeps=n_substeps, damping=damping, name="reacher")


ELBOW_MUSCLES = ("biceps", "triceps")


def elbow(muscle: str = "kistemaker", *, muscle_params: dict[str, Any] | None = None, viscosity: float = 0.0,
          dt: float = 0.01, integrator: str = "euler", n_substeps: int = 1, damping: float = 0.0,
          dtype: torch.dtype = torch.float32, device: Any = None) -> Effector:
    """One-joint elbow (0-150 deg) with a flexor and an extensor rigid-tendon muscle on polynomial paths.

    arm26 with the shoulder fixed at 90 deg (Kistemaker, Van Soest & Bobbert 2010): forearm and hand
    1.43 kg, 0.333 m, inertia 0.096 kg m^2 about the elbow; "biceps" (414 N, moment arm 1.6-4.6 cm) and
    "triceps" (arm26's tricepslong, 603 N, moment arm -3.0 to -1.3 cm), their shoulder terms vanishing at
    90 deg. `muscle`: "kistemaker", "thelen" or "mujoco"; `muscle_params` overrides muscle parameters (lists
    of 2); `viscosity` is the joint's (N m s/rad).
    """
    if muscle not in RIGID_MODELS:
        raise ValueError(f"elbow takes a rigid-tendon muscle model {RIGID_MODELS}, got {muscle!r}")
    opts = _options(dtype, device)
    pick = (4, 5)  # arm26's biceps, tricepslong
    params = {k: [_ARM26[k][i] for i in pick]
              for k in ("max_isometric_force", "optimal_fibre_length", "tendon_slack_length")}
    params.update(muscle_params or {})
    geometry = PolynomialGeometry(2, 1, a0=[_ARM26["a0"][i] for i in pick], a1=[[_ARM26_A1[1][i] for i in pick]],
                                  a2=[[_ARM26_A2[1][i] for i in pick]], offset=[0.0], **opts)
    skeleton = Elbow(inertia=1.43 * 0.165**2 + 0.057, length=0.333, viscosity=viscosity, **opts)
    return Effector(skeleton, muscle_class(muscle)(2, **params, **opts), geometry, ELBOW_MUSCLES, dt=dt,
                    integrator=integrator, n_substeps=n_substeps, damping=damping, name="elbow")


EFFECTORS: dict[str, Callable[..., Effector]] = {
    "arm26": arm26,
    "elbow": elbow,
    "compliant_arm26": compliant_arm26,
    "pointmass24": pointmass24,
    "free_pointmass24": free_pointmass24,
    "reacher": reacher,
}


def register_effector(name: str, factory: Callable[..., Effector], *, overwrite: bool = False) -> None:
    """Make `factory(**kwargs) -> Effector` available by `name` to `make_effector` and the catalogue
    (`mn_gym.register("MyReach-v0", name, "reach")`). Its keyword parameters become the env's effector
    settings; it should accept `dtype` and `device`."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"effector name must be a non-empty string, got {name!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    if name in EFFECTORS and not overwrite:
        raise ValueError(f"effector {name!r} is already registered (pass overwrite=True to replace it)")
    missing = {"dtype", "device"} - set(inspect.signature(factory).parameters)
    if missing:
        raise TypeError(f"effector factory {name!r} must accept keyword arguments {sorted(missing)}")
    EFFECTORS[name] = factory


def make_effector(name: str, **kwargs: Any) -> Effector:
    """Build the pre-built effector `name` (see `EFFECTORS`) with keyword overrides."""
    try:
        factory = EFFECTORS[name]
    except KeyError:
        raise ValueError(f"unknown effector {name!r}; known: {sorted(EFFECTORS)}") from None
    valid = set(inspect.signature(factory).parameters)
    unknown = set(kwargs) - valid
    if unknown:
        raise TypeError(f"{name}: unknown argument(s) {sorted(unknown)}; valid: {sorted(valid)}")
    return factory(**kwargs)


class EffectorBuilder:
    """Assemble a custom effector muscle by muscle, each along via points fixed to bodies.

    >>> b = EffectorBuilder(TwoLinkArm.from_segments(), muscle="thelen")
    >>> b.add_muscle("biceps", [(1, (0.02, 0.01)), (2, (0.03, 0.0))],
    ...              max_isometric_force=414, tendon_slack_length=0.2, optimal_fibre_length=0.14)
    >>> effector = b.build(dt=0.01)

    Every muscle must give the same parameter names; they are stacked into per-muscle tensors.
    """

    def __init__(self, skeleton: Skeleton, muscle: str = "kistemaker") -> None:
        self.skeleton = skeleton
        self.muscle_cls = muscle_class(muscle)
        self.names: list[str] = []
        self.points: list[tuple[int, tuple[float, float]]] = []
        self.point_muscle: list[int] = []
        self.params: list[dict[str, float]] = []

    def add_muscle(self, name: str, points: Sequence[tuple[int, Sequence[float]]], **params: float) -> EffectorBuilder:
        """Add a muscle through `points` = [(body, (x, y)), ...] (>= 2 points, origin to insertion)."""
        if name in self.names:
            raise ValueError(f"muscle {name!r} already added")
        if len(points) < 2:
            raise ValueError(f"muscle {name!r} needs at least 2 via points, got {len(points)}")
        if self.params and set(params) != set(self.params[0]):
            raise ValueError(f"muscle {name!r} gives parameters {sorted(params)}, but earlier muscles gave "
                             f"{sorted(self.params[0])}")
        for body, xy in points:
            if not isinstance(body, int) or body < 0 or body >= self.skeleton.n_bodies:
                raise ValueError(f"muscle {name!r}: body must be an int in 0..{self.skeleton.n_bodies - 1}, "
                                 f"got {body!r}")
            if len(xy) != 2:
                raise ValueError(f"muscle {name!r}: via point coordinates must be (x, y), got {xy!r}")
            self.points.append((body, (float(xy[0]), float(xy[1]))))
            self.point_muscle.append(len(self.names))
        self.names.append(name)
        self.params.append(dict(params))
        return self

    def build(self, *, dt: float = 0.01, integrator: str = "euler", n_substeps: int = 1, damping: float = 0.0,
              name: str = "custom", **shared_params: float) -> Effector:
        """The effector; `shared_params` (e.g. tau_activation) apply to the muscle model as a whole."""
        if not self.names:
            raise ValueError("add at least one muscle before build()")
        opts = _options(self.skeleton.dtype, self.skeleton.device)
        stacked = {key: [p[key] for p in self.params] for key in self.params[0]}
        muscle = self.muscle_cls(len(self.names), **stacked, **shared_params, **opts)
        geometry = ViaPointGeometry(len(self.names), self.skeleton.dof, [b for b, _ in self.points],
                                    self.point_muscle, [xy for _, xy in self.points], **opts)
        return Effector(self.skeleton, muscle, geometry, self.names, dt=dt, integrator=integrator,
                        n_substeps=n_substeps, damping=damping, name=name)
