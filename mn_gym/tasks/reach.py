"""Random reaching: start posture and target drawn uniformly in joint space (MotorNet's RandomTargetReach)."""

from __future__ import annotations

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.effector import Effector
from mn_gym.tasks.base import ReachState, Task, at_rest, hand_position, uniform_joints


class RandomReach(Task):
    """Reach from a random posture to a random reachable target, shown from the start.

    | | |
    |---|---|
    | state | `ReachState`: target (B, 2), origin (B, 2) m |
    | start | joint positions uniform within the limits (shrunk by `margin` per side), at rest |
    | target | the endpoint of another uniform joint sample |
    | observation | target x, y (m) |
    | loss | position error every step + effort (+ velocity, jerk if weighted) |
    | success | hand within `success_radius` of the target |
    """

    name = "reach"
    State = ReachState
    defaults = {"margin": 0.0}
    arg_constraints = {"margin": constraints.half_open_interval(0.0, 0.5)}

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, ReachState]:
        margin = self.params["margin"]
        q0 = uniform_joints(effector, batch, generator, margin) if q0 is None else q0
        target = hand_position(effector, uniform_joints(effector, batch, generator, margin))
        return at_rest(q0), ReachState(target, hand_position(effector, q0))
