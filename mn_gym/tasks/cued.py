"""Tasks with a go cue, and the two that only differ from random reaching by it: delayed reaching and sequences.

`CuedTask` holds the go-cue machinery that centre-out, delayed reaching and sequences share: a go cue at a
step drawn uniformly in [`cue_min`, `cue_max`] s, shown as a 0/1 observation term; before it the goal is the
start (`origin`) and the hand should be still (the velocity term), after it the goal is the target.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.effector import Effector
from mn_gym.tasks.base import Task, at_rest, hand_position, uniform_joints


class CuedReachState(NamedTuple):
    """target (B, 2) m; origin (B, 2) m, the start hand position; cue_step (B,) long, the step from which the
    go cue is on."""

    target: Tensor
    origin: Tensor
    cue_step: Tensor


class SequenceState(NamedTuple):
    """targets (B, n, 2) m, reached in order; origin (B, 2) m, the start hand position; cue_step (B,) long;
    target (B, 2) m, the last of `targets` (the final target)."""

    targets: Tensor
    origin: Tensor
    cue_step: Tensor
    target: Tensor


class CuedTask(Task):
    """Base of the tasks with a go cue (a subclass samples its state with `cue_steps`). Observation: the
    target and the go cue (0 before, 1 from `cue_step` on); goal: the origin before the cue, the target after;
    still (velocity term): before the cue."""

    observation_terms = (("target", 2), ("go_cue", 1))
    defaults = {"cue_min": 0.1, "cue_max": 0.3}
    arg_constraints = {"cue_min": constraints.nonnegative, "cue_max": constraints.nonnegative}
    ordered = (("cue_min", "cue_max"),)
    weight_defaults = {**Task.weight_defaults, "velocity": 0.1}

    def cue_steps(self, effector: Effector, batch: int, generator: torch.Generator | None) -> Tensor:
        """(B,) long: go-cue steps, uniform in [`cue_min`, `cue_max`] s, rounded to steps."""
        lo, hi = self.params["cue_min"], self.params["cue_max"]
        cue_s = lo + (hi - lo) * torch.rand(batch, generator=generator, dtype=effector.dtype, device=effector.device)
        return torch.round(cue_s / effector.dt).long()

    def go(self, ts: tuple, t: Tensor) -> Tensor:
        """(B,) bool: the go cue is on at step t."""
        return t >= ts.cue_step

    def goal(self, ts: tuple, t: Tensor, dt: float) -> Tensor:
        return torch.where(self.go(ts, t)[:, None], ts.target, ts.origin)

    def still(self, ts: tuple, t: Tensor, dt: float) -> Tensor:
        return ~self.go(ts, t)

    def observe(self, ts: tuple, t: Tensor, dt: float) -> dict[str, Tensor]:
        return {"target": ts.target, "go_cue": self.go(ts, t).to(ts.target.dtype)[:, None]}


class DelayedReach(CuedTask):
    """Instructed-delay reaching: a random target is shown from the start, the hand holds still until a go cue
    after a random delay, then reaches (the delay period of delayed-reach studies, e.g. Churchland et al. 2012).

    | | |
    |---|---|
    | state | `CuedReachState`: target, origin (the start hand position), cue_step |
    | start | joint positions uniform within the limits shrunk by `margin`, at rest |
    | target | the endpoint of another uniform joint sample (shrunk by `margin`), shown from the start |
    | go cue | at a step uniform in [`cue_min`, `cue_max`] s (the delay) |
    | observation | target x, y (m), go cue (0 before, 1 after) |
    | goal | the start before the cue, the target after |
    | loss | position error to the goal + effort + `velocity` weight x hand speed before the cue |
    | success | hand within `success_radius` of the target |
    """

    name = "delayed_reach"
    State = CuedReachState
    defaults = {**CuedTask.defaults, "cue_min": 0.2, "cue_max": 0.6, "margin": 0.05}
    arg_constraints = {**CuedTask.arg_constraints, "margin": constraints.half_open_interval(0.0, 0.5)}

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, CuedReachState]:
        margin = self.params["margin"]
        q0 = uniform_joints(effector, batch, generator, margin) if q0 is None else q0
        target = hand_position(effector, uniform_joints(effector, batch, generator, margin))
        return at_rest(q0), CuedReachState(target, hand_position(effector, q0), self.cue_steps(effector, batch,
                                                                                               generator))


class Sequence(CuedTask):
    """Reach `n_targets` targets in a row after one go cue, all shown from the start (two-reach sequences as in
    Zimnik & Churchland 2021): target k (0-based) is the goal from the cue + k x `interval` s on.

    | | |
    |---|---|
    | state | `SequenceState`: targets (B, n, 2), origin, cue_step, target (the last) |
    | start | joint positions uniform within the limits shrunk by `margin`, at rest |
    | targets | endpoints of `n_targets` more uniform joint samples (shrunk by `margin`) |
    | go cue | at a step uniform in [`cue_min`, `cue_max`] s |
    | observation | every target's x, y in order (m, 2 n), go cue (0 before, 1 after) |
    | goal | the start before the cue, target k from cue + k `interval` s, the last one to the end |
    | loss | position error to the goal + effort + `velocity` weight x hand speed before the cue |
    | success | hand within `success_radius` of the last target |
    """

    name = "sequence"
    State = SequenceState
    defaults = {**CuedTask.defaults, "n_targets": 2, "interval": 0.5, "margin": 0.1}
    arg_constraints = {**CuedTask.arg_constraints, "n_targets": constraints.integer_interval(1, 16),
                       "interval": constraints.positive, "margin": constraints.half_open_interval(0.0, 0.5)}

    @property
    def observation_terms(self) -> tuple[tuple[str, int], ...]:  # type: ignore[override]
        return (("targets", 2 * int(self.params["n_targets"])), ("go_cue", 1))

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, SequenceState]:
        margin, n = self.params["margin"], int(self.params["n_targets"])
        q0 = uniform_joints(effector, batch, generator, margin) if q0 is None else q0
        targets = torch.stack([hand_position(effector, uniform_joints(effector, batch, generator, margin))
                               for _ in range(n)], dim=1)
        return at_rest(q0), SequenceState(targets, hand_position(effector, q0),
                                          self.cue_steps(effector, batch, generator), targets[:, -1])

    def current(self, ts: SequenceState, t: Tensor, dt: float) -> Tensor:
        """(B,) long: the index of the target that is the goal at step t once the cue is on."""
        k = torch.div(t - ts.cue_step, round(self.params["interval"] / dt), rounding_mode="floor")
        return k.clamp(0, ts.targets.shape[1] - 1)

    def goal(self, ts: SequenceState, t: Tensor, dt: float) -> Tensor:
        index = self.current(ts, t, dt)[:, None, None].expand(-1, 1, 2)
        return torch.where(self.go(ts, t)[:, None], ts.targets.gather(1, index)[:, 0], ts.origin)

    def observe(self, ts: SequenceState, t: Tensor, dt: float) -> dict[str, Tensor]:
        return {"targets": ts.targets.flatten(1), "go_cue": self.go(ts, t).to(ts.origin.dtype)[:, None]}
