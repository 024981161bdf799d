"""The task interface: what a motor task adds to an effector.

A task samples each episode's start posture and goal (`TaskState`), says what goal the hand should be at
at each step, what the controller is shown (target, go cue), which external forces act on the endpoint,
the named loss terms (reward = -weighted sum) and when a trial counts as a success. All (B, ...) tensors.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor

from mn_gym.core.effector import Effector


class TaskState(NamedTuple):
    """Per-episode task variables, (B, ...) each.

    target: the final target position (B, 2) in m. origin: the hand position the trial starts from (B, 2).
    cue_step: (B,) long, the step from which the go cue is on (0: from the start).
    field: (B,) gain (N s/m) of a velocity-dependent curl field on the endpoint; 0 for none or catch trials.
    extra: (B, K) task-specific numbers (force pulses, path coefficients); K may be 0.
    """

    target: Tensor
    origin: Tensor
    cue_step: Tensor
    field: Tensor
    extra: Tensor


LOSS_TERMS = ("position", "effort", "velocity", "jerk")


class Task:
    """Base class. Subclasses set `name`, `obs_size` and `defaults` and implement `sample`.

    Loss terms per step (B,): position = distance hand-goal (m); effort = mean squared excitation;
    velocity = hand speed (m/s) where the task wants the hand still (before a go cue, while holding);
    jerk = mean squared change of excitation between steps. Reward = -sum_i weight_i term_i, and the BPTT
    loss is the mean of the same weighted sum, so RL and BPTT optimise one objective.
    """

    name: ClassVar[str]
    obs_size: ClassVar[int] = 2
    has_endpoint_load: ClassVar[bool] = False  # True when `endpoint_load` may return forces
    defaults: ClassVar[dict[str, Any]] = {}
    weight_defaults: ClassVar[dict[str, float]] = {"position": 1.0, "effort": 1e-3, "velocity": 0.0, "jerk": 0.0}

    def __init__(self, success_radius: float = 0.01, weights: dict[str, float] | None = None, **params: Any) -> None:
        unknown = set(params) - set(self.defaults)
        if unknown:
            raise TypeError(f"task {self.name!r}: unknown argument(s) {sorted(unknown)}; valid: "
                            f"{sorted([*self.defaults, 'success_radius', 'weights'])}")
        self.params = {**self.defaults, **params}
        if not (isinstance(success_radius, (int, float)) and success_radius > 0):
            raise ValueError(f"success_radius must be > 0 (m), got {success_radius!r}")
        self.success_radius = float(success_radius)
        weights = dict(weights or {})
        bad = set(weights) - set(LOSS_TERMS)
        if bad:
            raise ValueError(f"unknown loss term(s) {sorted(bad)}; terms: {list(LOSS_TERMS)}")
        self.weights = {**self.weight_defaults, **weights}
        for key, w in self.weights.items():
            if not (isinstance(w, (int, float)) and math.isfinite(w) and w >= 0):
                raise ValueError(f"loss weight {key!r} must be a finite number >= 0, got {w!r}")

    def config(self) -> dict[str, Any]:
        return {"task": self.name, "success_radius": self.success_radius, "weights": dict(self.weights),
                **self.params}

    # ------------------------------------------------------------------------------------- episodes
    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, TaskState]:
        """Initial joint states (B, 2 dof) and the task state of `batch` new episodes.

        `q0` (B, dof), when given, is the start posture to use instead of a sampled one; goals that depend
        on the start (posture, tracking, the reach origin) follow it.
        """
        raise NotImplementedError

    def goal(self, ts: TaskState, t: Tensor, dt: float) -> Tensor:
        """Where the hand should be at step t (B,): the origin before the go cue, the target after."""
        return torch.where((t >= ts.cue_step)[:, None], ts.target, ts.origin)

    def observation(self, ts: TaskState, t: Tensor, dt: float) -> Tensor:
        """What the controller is shown of the task, (B, obs_size): the target position (m)."""
        return ts.target

    def endpoint_load(self, ts: TaskState, t: Tensor, dt: float, cartesian: Tensor) -> Tensor | None:
        """External force on the endpoint (B, 2) in N during step t, or None."""
        return None

    def still(self, ts: TaskState, t: Tensor, dt: float) -> Tensor:
        """(B,) bool: where the hand should not move at step t (penalised by the velocity term)."""
        return t < ts.cue_step

    def loss_terms(self, ts: TaskState, t: Tensor, dt: float, cartesian: Tensor, goal: Tensor, action: Tensor,
                   last_action: Tensor) -> dict[str, Tensor]:
        """The named loss terms (B,) after step t-1 -> t, from the new endpoint state (B, 4) and the goal
        (B, 2). position and effort always; velocity and jerk only when they have a weight."""
        terms = {"position": torch.linalg.vector_norm(cartesian[:, :2] - goal, dim=-1),
                 "effort": (action * action).mean(-1)}
        if self.weights["velocity"]:
            speed = torch.linalg.vector_norm(cartesian[:, 2:], dim=-1)
            terms["velocity"] = torch.where(self.still(ts, t, dt), speed, torch.zeros_like(speed))
        if self.weights["jerk"]:
            step = action - last_action
            terms["jerk"] = (step * step).mean(-1)
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


def plain_state(effector: Effector, target: Tensor, origin: Tensor, extra_size: int = 0) -> TaskState:
    """A TaskState with no go cue, no field and `extra_size` zeros per element."""
    b = target.shape[0]
    return TaskState(target, origin, torch.zeros(b, dtype=torch.long, device=target.device),
                     torch.zeros(b, dtype=target.dtype, device=target.device),
                     torch.zeros(b, extra_size, dtype=target.dtype, device=target.device))
