"""The task interface: what a motor task adds to an effector.

A task samples each episode's start posture and its own typed state (a NamedTuple of (B, ...) tensors,
`Task.State`), says where the hand should be at each step (`goal`), declares what the controller is shown
(`observation_terms`, by name and size, and `observe`), may push the endpoint (`endpoint_load`), and declares
its loss terms (the keys of `weight_defaults`, computed by `loss_terms`); reward = -weighted sum. Whether a task
applies endpoint loads is derived from whether it overrides `endpoint_load`.

A new task is one subclass: a `State`, `sample`, and whichever of `goal`, `observe`, `endpoint_load`, `still`
and `loss_terms` differ from the defaults (`tests/test_extend.py` adds one with an extra observation and loss
term).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.effector import Effector, EffectorState
from mn_gym.core.params import domain_text


class ReachState(NamedTuple):
    """A reach: target (B, 2) m, the final target; origin (B, 2) m, the hand position the trial starts from."""

    target: Tensor
    origin: Tensor


class StepOutcome(NamedTuple):
    """What a task scores after one step, (B, ...) each.

    t: (B,) long, steps since reset after the step. dt: step length (s). hand: endpoint [x, y, vx, vy] (B, 4)
    after the step (m, m/s). goal: (B, 2) where the hand should be at t (m). action: the excitation command of
    this step as the muscles take it, clipped to [min_activation, 1] (B, M): an action of -7 costs no more effort
    than 0 (motor noise is not the controller's effort). last_action: the previous step's (B, M). effector: the
    effector state after the step. previous: the effector state before the step. model: the `Effector` (for
    muscle forces). hand_velocity: (B, 2, 2) the hand velocities [vx, vy] (m/s) after the two steps before this
    one, oldest first (at reset both are the start velocity). The last three are filled by the env; a
    hand-built outcome may leave them None, then the terms that need them (force, force_rate, hand_jerk) raise.
    """

    t: Tensor
    dt: float
    hand: Tensor
    goal: Tensor
    action: Tensor
    last_action: Tensor
    effector: EffectorState
    previous: EffectorState | None = None
    model: Effector | None = None
    hand_velocity: Tensor | None = None

    def normalised_force(self, previous: bool = False) -> Tensor:
        """Muscle forces / max isometric force (B, M), dimensionless, of the effector state after the step (of
        the one before it with `previous`), as `Effector.muscle_force` reports them. Computed on each call."""
        state = self.previous if previous else self.effector
        if self.model is None or state is None:
            raise ValueError("this StepOutcome has no effector model / previous state: the force terms need both")
        fmax = self.model.muscle.max_isometric_force
        return self.model.muscle_force(state) / fmax.clamp_min(torch.finfo(fmax.dtype).tiny)


class Task:
    """Base class. Subclasses set `name`, `State`, `defaults` and implement `sample`.

    Default loss terms per step (B,): position = hand-goal distance (m); effort = mean squared excitation;
    velocity = hand speed (m/s) where the task wants the hand still (`still`); jerk = mean squared change of
    excitation between steps; precision = 1 - exp(-(d / 2r)^2), d the hand-goal distance and r the success
    radius: 0 at the goal, ~1 beyond a few r, a well whose slope rewards the last centimetres (position's slope
    is the same everywhere). Motor-control costs, weight 0 by default: force = mean over muscles of
    (F / F_max)^2, F the muscle force after the step and F_max its max isometric force (dimensionless);
    force_rate = mean over muscles of ((F_t - F_{t-1}) / F_max / dt)^2 (1/s^2), F_{t-1} the force before the
    step; speed = hand speed |v| (m/s) at every step (velocity scores it only where `still`); hand_jerk =
    |j|^2 ((m/s^3)^2) with j = (v_t - 2 v_{t-1} + v_{t-2}) / dt^2, the second backward difference of the hand
    velocity (before the first steps the hand is taken to move at its start velocity). jerk remains the
    excitation change. position and effort are always reported, the others when weighted.
    Reward = -sum_i weight_i term_i, and the BPTT loss is the mean of the same weighted sum, so RL and BPTT
    optimise one objective. A subclass adds a term by naming it in `weight_defaults` and returning it from
    `loss_terms`.
    """

    name: ClassVar[str]
    State: ClassVar[type[tuple]] = ReachState
    observation_terms: ClassVar[tuple[tuple[str, int], ...]] = (("target", 2),)  # (name, size), in order
    defaults: ClassVar[dict[str, Any]] = {}
    # parameter domains (torch.distributions constraints on the value) and (low, high) pairs that must satisfy
    # low <= high, checked at construction
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}
    ordered: ClassVar[tuple[tuple[str, str], ...]] = ()
    weight_defaults: ClassVar[dict[str, float]] = {"position": 1.0, "effort": 1e-3, "velocity": 0.0, "jerk": 0.0,
                                                   "precision": 0.0, "force": 0.0, "force_rate": 0.0,
                                                   "speed": 0.0, "hand_jerk": 0.0}

    def __init__(self, success_radius: float = 0.01, weights: dict[str, float] | None = None, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(f"task {self.name!r}: unknown argument(s) {sorted(unknown)}; valid: "
                            f"{sorted([*self.defaults, 'success_radius', 'weights'])}")
        self.params = {**self.defaults, **params}
        for key, constraint in self.arg_constraints.items():
            value = self.params[key]
            if not (isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)
                    and bool(constraint.check(torch.tensor(float(value))))):
                raise ValueError(f"task {self.name!r}: {key} must be a number {domain_text(constraint)} (finite), "
                                 f"got {value!r}")
        for low, high in self.ordered:
            if not self.params[low] <= self.params[high]:
                raise ValueError(f"task {self.name!r}: {low} must be <= {high}, got {self.params[low]} and "
                                 f"{self.params[high]}")
        if not (isinstance(success_radius, (int, float)) and success_radius > 0):
            raise ValueError(f"success_radius must be > 0 (m), got {success_radius!r}")
        self.success_radius = float(success_radius)
        weights = dict(weights or {})
        bad = set(weights) - set(self.weight_defaults)
        if bad:
            raise ValueError(f"unknown loss term(s) {sorted(bad)}; task {self.name!r} has the terms "
                             f"{list(self.weight_defaults)}")
        self.weights = {**self.weight_defaults, **weights}
        for key, w in self.weights.items():
            if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
                raise ValueError(f"loss weight {key!r} must be a finite number >= 0, got {w!r}")

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "success_radius": self.success_radius, "weights": dict(self.weights),
                **self.params}

    @property
    def obs_size(self) -> int:
        """Size of the task's part of the observation: the sum of `observation_terms` sizes."""
        return sum(size for _, size in self.observation_terms)

    @property
    def applies_endpoint_load(self) -> bool:
        """Whether this task pushes the endpoint: True when its class overrides `endpoint_load`."""
        return type(self).endpoint_load is not Task.endpoint_load

    # ------------------------------------------------------------------------------------- episodes
    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, tuple]:
        """Initial joint states (B, 2 dof) and the task state (`self.State`) of `batch` new episodes.

        `q0` (B, dof), when given, is the start posture to use instead of a sampled one; goals that depend
        on the start (posture, tracking, the reach origin) follow it.
        """
        raise NotImplementedError

    def target(self, ts: Any) -> Tensor:
        """The final target (B, 2) in m (drawn as the target; the goal may differ before it)."""
        return ts.target

    def goal(self, ts: Any, t: Tensor, dt: float) -> Tensor:
        """Where the hand should be at step t (B,), (B, 2) in m: the target."""
        return ts.target

    def observe(self, ts: Any, t: Tensor, dt: float) -> dict[str, Tensor]:
        """What the controller is shown of the task at step t: {name: (B, size)} for `observation_terms`."""
        return {"target": ts.target}

    def endpoint_load(self, ts: Any, t: Tensor, dt: float, cartesian: Tensor) -> Tensor:
        """External force on the endpoint (B, 2) in N during step t, given the endpoint state (B, 4).
        Override to push (the env then applies it); the base task applies none."""
        raise NotImplementedError(f"task {self.name!r} applies no endpoint load")

    def still(self, ts: Any, t: Tensor, dt: float) -> Tensor:
        """(B,) bool: where the hand should not move at step t (penalised by the velocity term)."""
        return torch.zeros_like(t, dtype=torch.bool)

    def loss_terms(self, ts: Any, step: StepOutcome) -> dict[str, Tensor]:
        """The named loss terms (B,) of the step that ended at `step.t` (see the class docstring)."""
        distance = torch.linalg.vector_norm(step.hand[:, :2] - step.goal, dim=-1)
        terms = {"position": distance, "effort": (step.action * step.action).mean(-1)}
        if self.weights.get("velocity"):
            speed = torch.linalg.vector_norm(step.hand[:, 2:], dim=-1)
            terms["velocity"] = torch.where(self.still(ts, step.t, step.dt), speed, torch.zeros_like(speed))
        if self.weights.get("jerk"):
            change = step.action - step.last_action
            terms["jerk"] = (change * change).mean(-1)
        if self.weights.get("precision"):
            terms["precision"] = 1.0 - torch.exp(-(distance / (2.0 * self.success_radius)) ** 2)
        if self.weights.get("force") or self.weights.get("force_rate"):
            force = step.normalised_force()
            if self.weights.get("force"):
                terms["force"] = (force * force).mean(-1)
            if self.weights.get("force_rate"):
                rate = (force - step.normalised_force(previous=True)) / step.dt
                terms["force_rate"] = (rate * rate).mean(-1)
        if self.weights.get("speed"):
            terms["speed"] = torch.linalg.vector_norm(step.hand[:, 2:], dim=-1)
        if self.weights.get("hand_jerk"):
            if step.hand_velocity is None:
                raise ValueError("the hand_jerk term needs StepOutcome.hand_velocity (the env fills it)")
            v2, v1 = step.hand_velocity[:, 0], step.hand_velocity[:, 1]
            j = (step.hand[:, 2:] - 2.0 * v1 + v2) / (step.dt * step.dt)
            terms["hand_jerk"] = (j * j).sum(-1)
        return terms


# ---------------------------------------------------------------------------------------------- helpers
def uniform_joints(effector: Effector, batch: int, generator: torch.Generator | None, margin: float = 0.0) -> Tensor:
    """Joint positions (B, dof) uniform within the limits, shrunk by `margin` (fraction of the range) per side."""
    sk = effector.skeleton
    lo, hi = sk.pos_lower, sk.pos_upper
    span = hi - lo
    r = torch.rand(batch, effector.dof, generator=generator, dtype=effector.dtype, device=effector.device)
    return lo + span * (margin + (1.0 - 2.0 * margin) * r)


def hand_position(effector: Effector, q: Tensor) -> Tensor:
    """Endpoint position (B, 2) for joint positions q (B, dof)."""
    return effector.skeleton.endpoint(q, torch.zeros_like(q))[:, :2]


def at_rest(q: Tensor) -> Tensor:
    """Joint state (B, 2 dof) at positions q with zero velocity."""
    return torch.cat((q, torch.zeros_like(q)), dim=-1)
