"""Posture: hold the hand still against random endpoint force pulses."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.effector import Effector
from mn_gym.tasks.base import Task, at_rest, hand_position, uniform_joints


class PostureState(NamedTuple):
    """target (B, 2) m, the start hand position (also origin); onset_step, offset_step (B,) long: the pulse acts
    at steps onset_step <= t < offset_step; force (B, 2) N, the pulse."""

    target: Tensor
    origin: Tensor
    onset_step: Tensor
    offset_step: Tensor
    force: Tensor


class Posture(Task):
    """Keep the hand at its start position while a force pulse pushes it.

    | | |
    |---|---|
    | state | `PostureState`: target (= origin, the start hand position), pulse onset/offset steps, force |
    | start | joint positions uniform within the limits shrunk by `margin`, at rest; goal = start hand position |
    | perturbation | one pulse per trial, onset uniform in [`onset_min`, `onset_max`] s, `duration` s long |
    | pulse force | magnitude uniform in [0, `max_force`] N, direction uniform |
    | observation | target x, y (m) (= the start position) |
    | loss | position error + effort + `velocity` weight x hand speed (the hand should stay still throughout) |
    | success | hand within `success_radius` of the start position |
    """

    name = "posture"
    State = PostureState
    defaults = {"margin": 0.1, "max_force": 10.0, "onset_min": 0.1, "onset_max": 0.5, "duration": 0.1}
    arg_constraints = {"margin": constraints.half_open_interval(0.0, 0.5), "max_force": constraints.nonnegative,
                       "onset_min": constraints.nonnegative, "onset_max": constraints.nonnegative,
                       "duration": constraints.positive}
    ordered = (("onset_min", "onset_max"),)
    weight_defaults = {"position": 1.0, "effort": 1e-3, "velocity": 0.1, "jerk": 0.0, "force": 0.0,
                       "force_rate": 0.0, "speed": 0.0, "hand_jerk": 0.0}

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, PostureState]:
        opts = {"dtype": effector.dtype, "device": effector.device}
        p = self.params
        q0 = uniform_joints(effector, batch, generator, p["margin"]) if q0 is None else q0
        home = hand_position(effector, q0)
        onset = p["onset_min"] + (p["onset_max"] - p["onset_min"]) * torch.rand(batch, generator=generator, **opts)
        onset_step = torch.round(onset / effector.dt).long()
        offset_step = onset_step + round(p["duration"] / effector.dt)
        magnitude = p["max_force"] * torch.rand(batch, generator=generator, **opts)
        angle = 2 * math.pi * torch.rand(batch, generator=generator, **opts)
        force = magnitude[:, None] * torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)
        return at_rest(q0), PostureState(home, home, onset_step, offset_step, force)

    def endpoint_load(self, ts: PostureState, t: Tensor, dt: float, cartesian: Tensor) -> Tensor:
        on = (t >= ts.onset_step) & (t < ts.offset_step)
        return torch.where(on[:, None], ts.force, torch.zeros_like(ts.force))

    def still(self, ts: PostureState, t: Tensor, dt: float) -> Tensor:
        return torch.ones_like(t, dtype=torch.bool)
