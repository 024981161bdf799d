"""Effectors: a skeleton moved by muscles along path geometries, stepped as a pure function of its state.

One step: excitation (B, M) -> clip to [min_activation, 1] -> activation dynamics; geometry(q, qd) ->
musculotendon length, velocity, moment arms; muscle model -> forces (B, M); forces x moment arms + loads ->
generalised forces -> skeleton -> joint accelerations; the integrator advances the state. Parameters live in
the components (immutable); the state is an `EffectorState` of (B, ...) tensors, passed in and returned.
With gradients recorded, a rigid-tendon euler step is one autograd node with an analytic adjoint
(`mn_gym.core.adjoint`); the rest differentiate through plain autograd of the same arithmetic.
"""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import Tensor

from mn_gym.core.adjoint import EulerStep, euler_forward, fused_step_available
from mn_gym.core.geometry import GEOMETRIES, Geometry
from mn_gym.core.integrate import INTEGRATORS
from mn_gym.core.muscle import Muscle, muscle_class
from mn_gym.core.params import AccuracyWarning, check_finite_positive, check_tensor
from mn_gym.core.skeleton import SKELETONS, Skeleton

Loads = tuple[Tensor | None, Tensor | None]  # endpoint load (B, 2), joint load (B, dof)
# Integrators whose muscle force uses the musculotendon path stored in the state (the previous step's
# geometry), as MotorNet 0.3.0's euler does; the others evaluate the path at every stage.
LAGGED_PATH = {"euler": True, "rk4": False, "motornet_rk4": True}
# MotorNet 0.3.0's own "rk4", reproduced for parity: first order, never picked by the name "rk4"
MOTORNET_RK4 = "motornet_rk4"
# longest accurate integration step of a compliant tendon (s): at 0.2 ms the hand stays within 0.1 mm of a
# 0.05 ms reference over 0.5 s, at 0.5 ms it is 11 (euler) to 21 (rk4) cm off (a 0.5 s reach of compliant_arm26)
MAX_COMPLIANT_STEP = 0.00025


class EffectorState(NamedTuple):
    """The state of a batch of effectors; every tensor is (B, ...).

    q, qd: joint positions and velocities (B, dof) (rad, rad/s; m, m/s for a point mass).
    activation: muscle activation (B, M) in [min_activation, 1].
    fibre_length: fibre length (B, M) in m for compliant-tendon muscles, else None.
    mt_length, mt_velocity: musculotendon length (m) and velocity (m/s) (B, M) that the muscle force was
        last computed from: the previous step's geometry under `euler`, the current one under `rk4`.
    """

    q: Tensor
    qd: Tensor
    activation: Tensor
    fibre_length: Tensor | None
    mt_length: Tensor
    mt_velocity: Tensor
    fibre_velocity: Tensor | None = None
    force_fibre_length: Tensor | None = None

    @property
    def batch_size(self) -> int:
        return self.q.shape[0]

    @property
    def joint(self) -> Tensor:
        """Joint positions then velocities, (B, 2 dof)."""
        return torch.cat((self.q, self.qd), dim=-1)


class Effector:
    """A skeleton, a muscle model and a path geometry, integrated with a fixed time step.

    Args:
        skeleton, muscle, geometry: the components (see `mn_gym.core.skeleton`, `.muscle`, `.geometry`).
        muscle_names: one name per muscle.
        dt: time step (s) of one `step` call.
        integrator: "euler" (MotorNet 0.3.0's explicit scheme: the muscle force uses the previous step's
            path, position advances with the old velocity; first order) or "rk4" (classical RK4 of the
            continuous ODE, every stage with its own geometry; order 4). "motornet_rk4" reproduces MotorNet
            0.3.0's "rk4" for parity with published numbers: each stage an Euler update (clipped) from the
            previous stage, the final update from the start with the stages' mean acceleration, so position
            advances with the old velocity; first order (model.md 1.9). Not for new work.
        n_substeps: integration sub-steps per `step` (each of dt / n_substeps), excitation held.
        damping: joint damping (N m s/rad, or N s/m for a point mass) subtracted from the generalised force.
        name: a label, kept in the configuration.
        check_inputs: validate shapes, dtypes, devices and finiteness of step inputs (a small cost per step).
        adjoint: differentiate a rigid-tendon euler step through its analytic adjoint (`mn_gym.core.adjoint`,
            one autograd node a step, first-order gradients); False records the plain step op by op, which
            second-order gradients (create_graph=True through the dynamics) need.
    """

    def __init__(
        self,
        skeleton: Skeleton,
        muscle: Muscle,
        geometry: Geometry,
        muscle_names: Sequence[str],
        *,
        dt: float = 0.01,
        integrator: str = "euler",
        n_substeps: int = 1,
        damping: float = 0.0,
        name: str = "custom",
        check_inputs: bool = True,
        adjoint: bool = True,
    ) -> None:
        self.skeleton, self.muscle, self.geometry = skeleton, muscle, geometry
        self.muscle_names = tuple(str(n) for n in muscle_names)
        if len(self.muscle_names) != muscle.n_muscles or geometry.n_muscles != muscle.n_muscles:
            raise ValueError(f"muscle count mismatch: {len(self.muscle_names)} names, {muscle.n_muscles} in the "
                             f"muscle model, {geometry.n_muscles} in the geometry")
        if len(set(self.muscle_names)) != len(self.muscle_names):
            raise ValueError(f"muscle names must be unique, got {self.muscle_names}")
        geometry.check_skeleton(skeleton)
        if integrator not in LAGGED_PATH:
            raise ValueError(f"unknown integrator {integrator!r}; known: {sorted(LAGGED_PATH)}")
        if not isinstance(n_substeps, int) or isinstance(n_substeps, bool) or n_substeps < 1:
            raise ValueError(f"n_substeps must be a positive int, got {n_substeps!r}")
        if not (isinstance(damping, (int, float)) and math.isfinite(damping) and damping >= 0):
            raise ValueError(f"damping must be a finite number >= 0, got {damping!r}")
        dtypes = {skeleton.dtype, muscle.dtype, geometry.dtype}
        if len(dtypes) != 1:
            raise TypeError(f"components must share one dtype, got {sorted(map(str, dtypes))}")
        devices = {skeleton.device, muscle.device, geometry.device}
        if len(devices) != 1:
            raise ValueError(f"components must share one device, got {sorted(map(str, devices))}")
        self.dt = check_finite_positive("dt", dt)
        self.integrator = integrator
        self.n_substeps = n_substeps
        self.damping = float(damping)
        self.name = name
        self.check_inputs = check_inputs
        self._min_activation = float(muscle.min_activation)
        step = self.dt / n_substeps
        if muscle.compliant and step > MAX_COMPLIANT_STEP:
            warnings.warn(f"a compliant-tendon effector steps {1e3 * step:g} ms at a time: its stiff tendon needs "
                          f"<= {1e3 * MAX_COMPLIANT_STEP:g} ms for accurate numbers (at 0.5 ms the hand is 11-21 cm "
                          "off a fine-step reference after 0.5 s); use dt=0.0002, or n_substeps", AccuracyWarning,
                          stacklevel=2)
        self._dtype, self._device = skeleton.dtype, skeleton.device  # cached: read on every checked step
        self.adjoint = bool(adjoint)
        self._fused = self.adjoint and fused_step_available(integrator, skeleton, muscle, geometry)
        self._parameters = tuple(t for c in (skeleton, muscle, geometry) for t in c.tensors().values())

    # ----------------------------------------------------------------------------------------- sizes
    @property
    def n_muscles(self) -> int:
        return self.muscle.n_muscles

    @property
    def dof(self) -> int:
        return self.skeleton.dof

    @property
    def dtype(self) -> torch.dtype:
        return self._dtype

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def muscle_state_names(self) -> tuple[str, ...]:
        return self.muscle.state_names

    def __repr__(self) -> str:
        return (f"Effector(name={self.name!r}, skeleton={type(self.skeleton).__name__}, muscle={self.muscle.kind}, "
                f"n_muscles={self.n_muscles}, dt={self.dt}, integrator={self.integrator!r}, "
                f"n_substeps={self.n_substeps}, dtype={self.dtype}, device={self.device})")

    # -------------------------------------------------------------------------------------- dynamics
    def derivative(
        self, q: Tensor, qd: Tensor, a: Tensor, l_m: Tensor | None, u: Tensor, loads: Loads,
        path: tuple[Tensor, Tensor] | None = None,
    ) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor | None], tuple[Tensor, Tensor]]:
        """d/dt of (q, qd, activation, fibre length) for clipped excitation `u`, plus the geometry's
        (l_mt, v_mt) at (q, qd). The muscle sees `path` = (l_mt, v_mt) when given, else the current geometry."""
        l_mt, v_mt, moment_arm = self.geometry(self.skeleton, q, qd)
        seen_l, seen_v = (l_mt, v_mt) if path is None else path
        rows = self.muscle.rows(a, seen_l, seen_v, l_m)
        endpoint_load, joint_load = loads
        qdd = self.skeleton.acceleration(q, qd, self.generalised_force(moment_arm, rows[-1], qd, joint_load),
                                         endpoint_load)
        adot = self.muscle.activation_rate(u, a)
        ldot = self.muscle.fibre_length_rate(rows[2]) if self.muscle.compliant else None
        return (qd, qdd, adot, ldot), (l_mt, v_mt)

    def generalised_force(self, moment_arm: Tensor, force: Tensor, qd: Tensor, joint_load: Tensor | None) -> Tensor:
        """Muscle forces (B, M) through the moment arms (B, dof, M), plus the joint load, less the damping:
        (B, dof) in N m (N for a point mass)."""
        tau = torch.matmul(moment_arm, force.unsqueeze(-1)).squeeze(-1)
        if joint_load is not None:
            tau = tau + joint_load
        if self.damping:
            tau = tau - self.damping * qd
        return tau

    def finish_step(self, x: tuple[Tensor, Tensor, Tensor, Tensor | None], path: tuple[Tensor, Tensor] | None,
                    fibre_velocity: Tensor | None = None, force_fibre_length: Tensor | None = None
                    ) -> EffectorState:
        """Clip activation, apply joint limits and attach the path the next force will use (and, for
        MotorNet's compliant muscle, the fibre velocity it reports and the fibre length of its forces)."""
        q, qd, a, l_m = x
        a = self.clip_activation(a)
        q, qd = self.skeleton.limit(q, qd)
        if path is None:
            l_mt, v_mt, _ = self.geometry(self.skeleton, q, qd)
        else:
            l_mt, v_mt = path
        return EffectorState(q, qd, a, l_m, l_mt, v_mt, fibre_velocity, force_fibre_length)

    def step(
        self,
        state: EffectorState,
        excitation: Tensor,
        endpoint_load: Tensor | None = None,
        joint_load: Tensor | None = None,
    ) -> EffectorState:
        """Advance `state` by `dt` under `excitation` (B, M) and optional loads; returns the new state.

        Excitations are clipped to [min_activation, 1]. `endpoint_load` (B, 2) is a force on the endpoint
        in the world frame (N); `joint_load` (B, dof) a generalised force on the joints (N m or N).
        Inputs are checked when `check_inputs`; `advance` is the same step without checks.
        """
        if self.check_inputs:
            self._check_step_inputs(state, excitation, endpoint_load, joint_load)
        return self.advance(state, excitation, endpoint_load, joint_load)

    def clip_excitation(self, excitation: Tensor) -> Tensor:
        """Excitation (B, M) as the muscles take it: clipped to [min_activation, 1]."""
        return excitation.clamp(self._min_activation, 1.0)

    def clip_activation(self, activation: Tensor) -> Tensor:
        """Activation (B, M) clipped to [min_activation, 1]."""
        return activation.clamp(self._min_activation, 1.0)

    def _fused_step(self, inputs: tuple[Tensor | None, ...]) -> int:
        """Which Euler step serves this call: 0 the plain one (built from `derivative`: the reference, used for
        rk4, compliant tendons, under torch.compile and while a parameter requires a gradient), 1 the same
        arithmetic without the integrator's indirection (no gradient recorded), 2 `EulerStep`, one autograd
        node with an analytic adjoint (gradients of the inputs recorded); see `mn_gym.core.adjoint`."""
        if not self._fused or torch.compiler.is_compiling():
            return 0
        if not torch.is_grad_enabled():
            return 1
        if any(t.requires_grad for t in self._parameters):
            return 0
        return 2 if any(t is not None and t.requires_grad for t in inputs) else 1

    def advance(self, state: EffectorState, excitation: Tensor, endpoint_load: Tensor | None = None,
                joint_load: Tensor | None = None) -> EffectorState:
        """`step` without input checks: clip excitations, then `n_substeps` integrator steps of dt / n_substeps."""
        h = self.dt / self.n_substeps
        fused = self._fused_step((*state, excitation, endpoint_load, joint_load))
        if fused:
            for _ in range(self.n_substeps):
                args = (self, h, state.q, state.qd, state.activation, state.mt_length, state.mt_velocity, excitation,
                        endpoint_load, joint_load)
                new = EulerStep.apply(*args) if fused == 2 else euler_forward(*args, partials=False)[0]
                state = EffectorState(new[0], new[1], new[2], None, new[3], new[4])
            return state
        u = self.clip_excitation(excitation)
        loads = (endpoint_load, joint_load)
        if self.integrator == MOTORNET_RK4 or self.muscle.motornet_compatible:
            for _ in range(self.n_substeps):
                state = self._motornet_substep(state, u, loads, h)
            return state
        integrate, lagged = INTEGRATORS[self.integrator], LAGGED_PATH[self.integrator]
        for _ in range(self.n_substeps):
            stored = (state.mt_length, state.mt_velocity) if lagged else None

            def f(x: tuple, stored: tuple | None = stored) -> tuple:
                return self.derivative(*x, u, loads, path=stored)

            x, path = integrate(f, (state.q, state.qd, state.activation, state.fibre_length), h)
            # lagged: the next force sees the path at the start of this step; else the path at the new state
            state = self.finish_step(x, path if lagged else None)
        return state

    def _motornet_substep(self, state: EffectorState, u: Tensor, loads: Loads, h: float) -> EffectorState:
        """One sub-step of MotorNet 0.3.0's "euler" or "rk4" (model.md 1.9): k = (joint acceleration, activation
        rate, fibre-length rate) at a state with its stored path; an update from state S with k is
        q + h qd_S, qd_S + h k, ..., clipped and limited, with the path of S stored for the next force. "rk4":
        S1 from S0 (h/2, k1), S2 from S1 (h/2, k2), S3 from S2 (h, k3), then S0 updated with the mean k."""
        compat = self.muscle.motornet_compatible

        def rate(s: EffectorState) -> tuple[tuple[Tensor, Tensor, Tensor | None], tuple[Tensor, Tensor]]:
            if not compat:
                (_, qdd, adot, ldot), path = self.derivative(s.q, s.qd, s.activation, s.fibre_length, u, loads,
                                                             path=(s.mt_length, s.mt_velocity))
                return (qdd, adot, ldot), path
            l_mt, v_mt, moment_arm = self.geometry(self.skeleton, s.q, s.qd)
            rows = self.muscle_rows(s)
            tau = self.generalised_force(moment_arm, rows[-1], s.qd, loads[1])
            qdd = self.skeleton.acceleration(s.q, s.qd, tau, loads[0])
            ldot = self.muscle.motornet_length_rate(s.activation, s.fibre_length, rows[5])
            return (qdd, self.muscle.activation_rate(u, s.activation), ldot), (l_mt, v_mt)

        def update(s: EffectorState, k: tuple, path: tuple[Tensor, Tensor], dt: float) -> EffectorState:
            qdd, adot, ldot = k
            x = (torch.add(s.q, s.qd, alpha=dt), torch.add(s.qd, qdd, alpha=dt),
                 torch.add(s.activation, adot, alpha=dt),
                 None if ldot is None else torch.add(s.fibre_length, ldot, alpha=dt))
            if not compat:
                return self.finish_step(x, path)
            return self.finish_step(x, path, self.muscle.reported_velocity(ldot), s.fibre_length)

        k1, path0 = rate(state)
        if self.integrator != MOTORNET_RK4:
            return update(state, k1, path0, h)
        s1 = update(state, k1, path0, 0.5 * h)
        k2, path1 = rate(s1)
        s2 = update(s1, k2, path1, 0.5 * h)
        k3, path2 = rate(s2)
        k4, _ = rate(update(s2, k3, path2, h))
        k = tuple(None if a is None else (a + 2.0 * (b + c) + d) / 6.0
                  for a, b, c, d in zip(k1, k2, k3, k4, strict=True))
        return update(state, k, path0, h)

    # ---------------------------------------------------------------------------------- initial state
    def initial_state(self, joint_state: Tensor | Sequence) -> EffectorState:
        """State with joints at `joint_state` ((B, dof) positions, or (B, 2 dof) positions then velocities)
        and muscles at rest (activation = min_activation; compliant fibres at passive equilibrium)."""
        js = torch.as_tensor(joint_state, dtype=self.dtype, device=self.device)
        dof = self.dof
        if js.dim() == 1:
            js = js[None]
        if js.dim() != 2 or js.shape[1] not in (dof, 2 * dof):
            raise ValueError(f"joint_state must have shape (B, {dof}) or (B, {2 * dof}), got {tuple(js.shape)}")
        if not bool(torch.isfinite(js).all()):
            raise ValueError("joint_state contains NaN or inf")
        q = js[:, :dof]
        qd = js[:, dof:] if js.shape[1] == 2 * dof else torch.zeros_like(q)
        sk = self.skeleton
        outside = (q < sk.pos_lower) | (q > sk.pos_upper)
        if bool(outside.any()):
            rows = torch.nonzero(outside.any(-1)).flatten().tolist()
            raise ValueError(f"initial joint positions outside the joint limits [{sk.pos_lower.tolist()}, "
                             f"{sk.pos_upper.tolist()}] in batch rows {rows}: {q[rows].tolist()}")
        if bool(((qd < sk.vel_lower) | (qd > sk.vel_upper)).any()):
            raise ValueError("initial joint velocities outside the velocity limits")
        l_mt, v_mt, _ = self.geometry(sk, q, qd)
        a = torch.full_like(l_mt, self._min_activation)
        if self.muscle.motornet_compatible:
            l_eq = self.muscle.initial_fibre_length(l_mt)
            l_m, velocity = self.muscle.initial_fibre_state(l_eq, l_mt, self.dt)
            return EffectorState(q, qd, a, l_m, l_mt, v_mt, velocity, l_eq)
        l_m = self.muscle.initial_fibre_length(l_mt) if self.muscle.compliant else None
        return EffectorState(q, qd, a, l_m, l_mt, v_mt)

    def random_initial_state(self, batch_size: int, generator: torch.Generator | None = None) -> EffectorState:
        """Joint positions uniform within the limits, at rest."""
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        sk = self.skeleton
        r = torch.rand(batch_size, self.dof, generator=generator, dtype=self.dtype, device=self.device)
        return self.initial_state(sk.pos_lower + r * (sk.pos_upper - sk.pos_lower))

    # ---------------------------------------------------------------------------------- observables
    def cartesian(self, state: EffectorState) -> Tensor:
        """Endpoint [x, y, vx, vy] (B, 4) in m, m/s."""
        return self.skeleton.endpoint(state.q, state.qd)

    def muscle_state(self, state: EffectorState) -> Tensor:
        """The muscle rows named in `muscle_state_names`, (B, n_rows, M)."""
        return torch.stack(self.muscle_rows(state), dim=1)

    def muscle_rows(self, state: EffectorState) -> tuple[Tensor, ...]:
        """The muscle rows (B, M) each, named in `muscle_state_names`, of `state` (with its stored path)."""
        if self.muscle.motornet_compatible:
            return self.muscle.motornet_rows(state.activation, state.mt_length, state.fibre_length,
                                             state.force_fibre_length, state.fibre_velocity)
        return self.muscle.rows(state.activation, state.mt_length, state.mt_velocity, state.fibre_length)

    def fibre_state(self, state: EffectorState) -> tuple[Tensor, Tensor]:
        """Fibre length (m) and velocity (m/s), (B, M) each, as proprioception reads them."""
        length, velocity = self.muscle.fibre_state(state.activation, state.mt_length, state.mt_velocity,
                                                   state.fibre_length)
        return length, velocity if state.fibre_velocity is None else state.fibre_velocity

    def muscle_force(self, state: EffectorState) -> Tensor:
        """Muscle forces (B, M) in N."""
        return self.muscle_rows(state)[-1]

    def path_geometry(self, state: EffectorState) -> tuple[Tensor, Tensor, Tensor]:
        """Current musculotendon length (B, M), velocity (B, M) and moment arms (B, dof, M)."""
        return self.geometry(self.skeleton, state.q, state.qd)

    # ---------------------------------------------------------------------------------- conversion
    def replace(self, **changes: Any) -> Effector:
        """A copy with some components or settings changed (skeleton, muscle, geometry, dt, ...)."""
        kwargs: dict[str, Any] = dict(
            skeleton=self.skeleton, muscle=self.muscle, geometry=self.geometry, muscle_names=self.muscle_names,
            dt=self.dt, integrator=self.integrator, n_substeps=self.n_substeps, damping=self.damping,
            name=self.name, check_inputs=self.check_inputs, adjoint=self.adjoint)
        unknown = set(changes) - set(kwargs)
        if unknown:
            raise TypeError(f"unknown effector setting(s) {sorted(unknown)}; valid: {sorted(kwargs)}")
        kwargs.update(changes)
        return Effector(kwargs.pop("skeleton"), kwargs.pop("muscle"), kwargs.pop("geometry"),
                        kwargs.pop("muscle_names"), **kwargs)

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Effector:
        """A copy with every parameter on `device` and/or of `dtype`."""
        return self.replace(skeleton=self.skeleton.to(device, dtype), muscle=self.muscle.to(device, dtype),
                            geometry=self.geometry.to(device, dtype))

    def config(self) -> dict[str, Any]:
        """A JSON-ready description from which `Effector.from_config` rebuilds this effector exactly."""
        return {
            "name": self.name,
            "muscle_names": list(self.muscle_names),
            "dt": self.dt,
            "integrator": self.integrator,
            "n_substeps": self.n_substeps,
            "damping": self.damping,
            "skeleton": self.skeleton.config(),
            "muscle": self.muscle.config(),
            "geometry": self.geometry.config(),
        }

    @classmethod
    def from_config(cls, cfg: dict[str, Any], *, dtype: torch.dtype = torch.float32,
                    device: torch.device | str | None = None) -> Effector:
        """Rebuild an effector from `config()` output."""
        try:
            sk_cfg, mu_cfg, ge_cfg = cfg["skeleton"], cfg["muscle"], cfg["geometry"]
            kinds = (sk_cfg["type"], mu_cfg["type"], ge_cfg["type"])
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an effector configuration: missing {exc}") from None
        if kinds[0] not in SKELETONS:
            raise ValueError(f"unknown skeleton type {kinds[0]!r}; known: {sorted(SKELETONS)}")
        if kinds[2] not in GEOMETRIES:
            raise ValueError(f"unknown geometry type {kinds[2]!r}; known: {sorted(GEOMETRIES)}")
        kw = dict(dtype=dtype, device=device)
        return cls(
            SKELETONS[kinds[0]].from_config(sk_cfg, **kw),
            muscle_class(kinds[1]).from_config(mu_cfg, **kw),
            GEOMETRIES[kinds[2]].from_config(ge_cfg, **kw),
            cfg["muscle_names"],
            dt=cfg["dt"], integrator=cfg["integrator"], n_substeps=cfg["n_substeps"], damping=cfg["damping"],
            name=cfg.get("name", "custom"),
        )

    def save(self, path: str | Path) -> None:
        """Write `config()` as JSON."""
        Path(path).write_text(json.dumps(self.config(), indent=1))

    @classmethod
    def load(cls, path: str | Path, **kwargs: Any) -> Effector:
        """Read an effector written by `save`."""
        return cls.from_config(json.loads(Path(path).read_text()), **kwargs)

    # ---------------------------------------------------------------------------------- validation
    def check_tensor(self, name: str, x: Any, shape: tuple[int, ...]) -> None:
        """Raise a clear error unless `x` is a finite tensor of `shape` in the effector's dtype and device."""
        check_tensor(name, x, shape, self.dtype, self.device)

    def _check_step_inputs(self, state: EffectorState, excitation: Any, endpoint_load: Any, joint_load: Any) -> None:
        if not isinstance(state, EffectorState):
            raise TypeError(f"state must be an EffectorState, got {type(state).__name__}")
        b = state.batch_size
        self.check_tensor("excitation", excitation, (b, self.n_muscles))
        if endpoint_load is not None:
            self.check_tensor("endpoint_load", endpoint_load, (b, 2))
        if joint_load is not None:
            self.check_tensor("joint_load", joint_load, (b, self.dof))

