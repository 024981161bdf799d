"""Tracking: follow a target moving along a smooth random path."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from mn_gym.core.effector import Effector
from mn_gym.tasks.base import Task, TaskState, at_rest, hand_position, uniform_joints


class Tracking(Task):
    """Follow a target that starts at the hand and moves along a sum of `n_components` sinusoids per axis.

    | | |
    |---|---|
    | start | joint positions uniform within the limits shrunk by `margin`, at rest |
    | path | origin + sum_k a_k (sin(2 pi f_k t + phi_k) - sin(phi_k)), k = 1..`n_components` |
    | path terms | a_k uniform in [0, `amplitude` / n] m per axis, f_k uniform in [`f_min`, `f_max`] Hz |
    | observation | current target x, y (m) |
    | loss | position error to the current target + effort |
    | success | hand within `success_radius` of the current target |
    """

    name = "track"
    defaults = {"margin": 0.15, "amplitude": 0.06, "n_components": 3, "f_min": 0.3, "f_max": 1.2}

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, TaskState]:
        opts = {"dtype": effector.dtype, "device": effector.device}
        p = self.params
        n = int(p["n_components"])
        q0 = uniform_joints(effector, batch, generator, p["margin"]) if q0 is None else q0
        origin = hand_position(effector, q0)
        amp = p["amplitude"] / n * torch.rand(batch, n, 2, generator=generator, **opts)
        freq = p["f_min"] + (p["f_max"] - p["f_min"]) * torch.rand(batch, n, 1, generator=generator, **opts)
        phase = 2 * math.pi * torch.rand(batch, n, 2, generator=generator, **opts)
        extra = torch.cat((amp, freq, phase), dim=-1).reshape(batch, 5 * n)
        zeros = torch.zeros(batch, **opts)
        return at_rest(q0), TaskState(origin, origin, torch.zeros(batch, dtype=torch.long, device=effector.device),
                                      zeros, extra)

    def goal(self, ts: TaskState, t: Tensor, dt: float) -> Tensor:
        coeffs = ts.extra.view(ts.extra.shape[0], -1, 5)
        amp, freq, phase = coeffs[..., 0:2], coeffs[..., 2:3], coeffs[..., 3:5]
        time = (t.to(ts.extra.dtype) * dt)[:, None, None]
        wave = torch.sin(2 * math.pi * freq * time + phase) - torch.sin(phase)
        return ts.origin + (amp * wave).sum(1)

    def observation(self, ts: TaskState, t: Tensor, dt: float) -> Tensor:
        return self.goal(ts, t, dt)

    def still(self, ts: TaskState, t: Tensor, dt: float) -> Tensor:
        return torch.zeros_like(t, dtype=torch.bool)
