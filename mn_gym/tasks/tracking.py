"""Tracking: follow a target moving along a smooth random path."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.effector import Effector
from mn_gym.tasks.base import Task, at_rest, hand_position, uniform_joints


class TrackingState(NamedTuple):
    """origin (B, 2) m, where the path starts (the start hand position); the path's sinusoids: amplitude
    (B, n, 2) m per axis, frequency (B, n, 1) Hz, phase (B, n, 2) rad per axis."""

    origin: Tensor
    amplitude: Tensor
    frequency: Tensor
    phase: Tensor


class Tracking(Task):
    """Follow a target that starts at the hand and moves along a sum of `n_components` sinusoids per axis.

    | | |
    |---|---|
    | state | `TrackingState`: origin and the path's amplitudes, frequencies and phases |
    | start | joint positions uniform within the limits shrunk by `margin`, at rest |
    | path | origin + sum_k a_k (sin(2 pi f_k t + phi_k) - sin(phi_k)), k = 1..`n_components` |
    | path terms | a_k uniform in [0, `amplitude` / n] m per axis, f_k uniform in [`f_min`, `f_max`] Hz |
    | observation | current target x, y (m) |
    | loss | position error to the current target + effort |
    | success | hand within `success_radius` of the current target |
    """

    name = "track"
    State = TrackingState
    defaults = {"margin": 0.15, "amplitude": 0.06, "n_components": 3, "f_min": 0.3, "f_max": 1.2}
    arg_constraints = {"margin": constraints.half_open_interval(0.0, 0.5), "amplitude": constraints.nonnegative,
                       # at most 1000 sinusoids: the path's terms are (B, n, 2) tensors
                       "n_components": constraints.integer_interval(1, 1000), "f_min": constraints.positive,
                       "f_max": constraints.positive}
    ordered = (("f_min", "f_max"),)

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, TrackingState]:
        opts = {"dtype": effector.dtype, "device": effector.device}
        p = self.params
        n = int(p["n_components"])
        q0 = uniform_joints(effector, batch, generator, p["margin"]) if q0 is None else q0
        amplitude = p["amplitude"] / n * torch.rand(batch, n, 2, generator=generator, **opts)
        frequency = p["f_min"] + (p["f_max"] - p["f_min"]) * torch.rand(batch, n, 1, generator=generator, **opts)
        phase = 2 * math.pi * torch.rand(batch, n, 2, generator=generator, **opts)
        return at_rest(q0), TrackingState(hand_position(effector, q0), amplitude, frequency, phase)

    def goal(self, ts: TrackingState, t: Tensor, dt: float) -> Tensor:
        time = (t.to(ts.origin.dtype) * dt)[:, None, None]
        wave = torch.sin(2 * math.pi * ts.frequency * time + ts.phase) - torch.sin(ts.phase)
        return ts.origin + (ts.amplitude * wave).sum(1)

    def target(self, ts: TrackingState) -> Tensor:
        """The path's start: tracking has no final target, so the origin is drawn as one."""
        return ts.origin

    def observe(self, ts: TrackingState, t: Tensor, dt: float) -> dict[str, Tensor]:
        return {"target": self.goal(ts, t, dt)}
