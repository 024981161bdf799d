"""Centre-out reaching to 8 targets, with a go cue, and its curl-field variant."""

from __future__ import annotations

import math
import warnings
from typing import Any, ClassVar, NamedTuple

import torch
from torch import Tensor
from torch.distributions import constraints

from mn_gym.core.effector import Effector
from mn_gym.core.params import AccuracyWarning
from mn_gym.core.skeleton import TwoLinkArm
from mn_gym.tasks.base import at_rest, hand_position
from mn_gym.tasks.cued import CuedTask


class CentreOutState(NamedTuple):
    """target (B, 2) m; origin (B, 2) m, the centre; cue_step (B,) long, the step from which the go cue is on."""

    target: Tensor
    origin: Tensor
    cue_step: Tensor


class CurlFieldState(NamedTuple):
    """As `CentreOutState`, plus field (B,): the curl-field gain k (N s/m) of the trial, 0 on catch and
    force-channel trials; channel (B,) bool: a force-channel (probe) trial."""

    target: Tensor
    origin: Tensor
    cue_step: Tensor
    field: Tensor
    channel: Tensor


class CentreOut(CuedTask):
    """Hold at a fixed centre, then reach one of `n_targets` targets on a circle when the go cue comes on.

    | | |
    |---|---|
    | state | `CentreOutState`: target, origin (the centre), cue_step |
    | start | the centre posture (arm: shoulder, elbow = `centre_posture` rad; point mass: `centre_posture` m) |
    | target | one of `n_targets` points at `radius` (m) around the centre hand position, uniform |
    | go cue | at a step drawn uniformly in [`cue_min`, `cue_max`] s; the target is shown from the start |
    | observation | target x, y (m), go cue (0 before, 1 after) |
    | goal | the centre before the cue, the target after |
    | loss | position error to the goal + effort + `velocity` weight x hand speed before the cue |
    | success | hand within `success_radius` of the target |

    Held-out evaluation uses the same 8 directions, so `target_index` in `reset` options picks them in order.
    """

    name = "centre_out"
    State = CentreOutState
    defaults = {"radius": 0.1, "n_targets": 8, **CuedTask.defaults, "centre_posture": None}
    arg_constraints = {"radius": constraints.positive, "n_targets": constraints.positive_integer,
                       **CuedTask.arg_constraints}

    def centre_joints(self, effector: Effector) -> list[float]:
        posture = self.params["centre_posture"]
        if posture is None:
            posture = [math.pi / 4, math.pi / 2] if isinstance(effector.skeleton, TwoLinkArm) else [0.0, 0.0]
        return list(posture)

    def sample(self, effector: Effector, batch: int, generator: torch.Generator | None,
               q0: Tensor | None = None) -> tuple[Tensor, CentreOutState]:
        opts = {"dtype": effector.dtype, "device": effector.device}
        centre_q = torch.tensor(self.centre_joints(effector), **opts).expand(batch, -1)
        centre = hand_position(effector, centre_q)  # the centre stays put when a start posture q0 is given
        q0 = centre_q if q0 is None else q0
        n = int(self.params["n_targets"])
        index = torch.randint(n, (batch,), generator=generator, device=effector.device)
        return at_rest(q0), self.state_for(effector, centre, index, generator)

    def state_for(self, effector: Effector, centre: Tensor, index: Tensor, generator: torch.Generator | None
                  ) -> CentreOutState:
        """Task state for targets `index` (B,) around `centre` (B, 2)."""
        angle = index.to(effector.dtype) * (2 * math.pi / int(self.params["n_targets"]))
        target = centre + self.params["radius"] * torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)
        return CentreOutState(target, centre, self.cue_steps(effector, centre.shape[0], generator))


class CurlField(CentreOut):
    """Centre-out reaching in a velocity-dependent curl field F = k [-vy, vx] (N), k in N s/m, with catch and
    force-channel probe trials as in adaptation studies (Shadmehr & Mussa-Ivaldi 1994; Scheidt et al. 2000).

    | | |
    |---|---|
    | state | `CurlFieldState`: the centre-out state, the trial's field gain and whether it is a channel trial |
    | field trial | F = k [-vy, vx] on the hand |
    | catch trial | probability `catch_probability`: no force at all |
    | channel trial | probability `channel_probability`: no field; a spring-damper toward the straight centre-target |
    | | line, F = -(K d + B v_perp) n, n the line's counter-clockwise normal, d and v_perp the hand's |
    | | offset (m) and velocity (m/s) along n, K = `channel_stiffness` (N/m), B = `channel_damping` (N s/m) |
    | all else | as `CentreOut` |

    On a channel trial the hand stays on the line, and the force the channel takes (`compensation`) measures the
    lateral force the controller makes in anticipation of the field: after full adaptation it equals the field's
    push k |v| (Smith, Ghazizadeh & Shadmehr 2006 regress one on the other for an adaptation index).
    """

    name = "curl_field"
    State = CurlFieldState
    defaults = {**CentreOut.defaults, "k": 15.0, "catch_probability": 0.0, "channel_probability": 0.0,
                "channel_stiffness": 2000.0, "channel_damping": 50.0}
    arg_constraints = {**CentreOut.arg_constraints, "k": constraints.interval(-1000.0, 1000.0),
                       "catch_probability": constraints.unit_interval,
                       "channel_probability": constraints.unit_interval,
                       # the range checked stable with arm26's explicit 10 ms step (hand within 0.6 mm of the line)
                       "channel_stiffness": constraints.interval(0.0, 10000.0),
                       "channel_damping": constraints.interval(0.0, 100.0)}
    # |k| (N s/m) beyond which arm26 at its 10 ms step runs away: with random excitations (0-0.5) the peak joint
    # speed is 20 rad/s at k = 15, 57 at 50, 177 at 100 and the 1000 rad/s clamp at 400; studies use 10-20
    max_accurate_k: ClassVar[float] = 40.0

    def __init__(self, success_radius: float = 0.01, weights: dict[str, float] | None = None, **params: Any) -> None:
        super().__init__(success_radius, weights, **params)
        if self.params["catch_probability"] + self.params["channel_probability"] > 1.0:
            raise ValueError(f"task {self.name!r}: catch_probability + channel_probability must be <= 1, got "
                             f"{self.params['catch_probability']} + {self.params['channel_probability']}")
        if abs(self.params["k"]) > self.max_accurate_k:
            warnings.warn(f"curl field gain k = {self.params['k']} N s/m: beyond |k| = {self.max_accurate_k:g} the "
                          "explicit step lets the arm run away (joint speeds of 100s of rad/s, up to the velocity "
                          "clamp); curl-field studies use 10-20 N s/m, or shorten dt", AccuracyWarning, stacklevel=2)

    def state_for(self, effector: Effector, centre: Tensor, index: Tensor, generator: torch.Generator | None
                  ) -> CurlFieldState:
        p_catch, p_channel = self.params["catch_probability"], self.params["channel_probability"]
        reach = super().state_for(effector, centre, index, generator)
        u = torch.rand(centre.shape[0], generator=generator, dtype=effector.dtype, device=effector.device)
        channel = (u >= p_catch) & (u < p_catch + p_channel)
        field = torch.where((u < p_catch) | channel, 0.0, float(self.params["k"]))
        return CurlFieldState(*reach, field, channel)

    def channel_normal(self, ts: CurlFieldState) -> Tensor:
        """(B, 2) the unit counter-clockwise normal of the straight centre-target line."""
        e = ts.target - ts.origin
        e = e / torch.linalg.vector_norm(e, dim=-1, keepdim=True).clamp_min(torch.finfo(e.dtype).tiny)
        return torch.stack((-e[:, 1], e[:, 0]), dim=-1)

    def compensation(self, ts: CurlFieldState, cartesian: Tensor) -> Tensor:
        """(B,) N: the channel's force on the hand along the line's normal, given the endpoint state (B, 4); on
        a channel trial it balances the controller's own lateral push, so it reads k |v| when the controller
        fully anticipates the field (0 off channel trials)."""
        n = self.channel_normal(ts)
        offset = ((cartesian[:, :2] - ts.origin) * n).sum(-1)
        lateral_velocity = (cartesian[:, 2:] * n).sum(-1)
        force = -(self.params["channel_stiffness"] * offset + self.params["channel_damping"] * lateral_velocity)
        return torch.where(ts.channel, force, torch.zeros_like(force))

    def endpoint_load(self, ts: CurlFieldState, t: Tensor, dt: float, cartesian: Tensor) -> Tensor:
        curl = ts.field[:, None] * torch.stack((-cartesian[:, 3], cartesian[:, 2]), dim=-1)
        if not self.params["channel_probability"]:
            return curl
        return curl + self.compensation(ts, cartesian)[:, None] * self.channel_normal(ts)
