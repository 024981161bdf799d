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
from mn_gym.tasks.base import Task, at_rest, hand_position


class CentreOutState(NamedTuple):
    """target (B, 2) m; origin (B, 2) m, the centre; cue_step (B,) long, the step from which the go cue is on."""

    target: Tensor
    origin: Tensor
    cue_step: Tensor


class CurlFieldState(NamedTuple):
    """As `CentreOutState`, plus field (B,): the curl-field gain k (N s/m) of the trial, 0 on catch trials."""

    target: Tensor
    origin: Tensor
    cue_step: Tensor
    field: Tensor


class CentreOut(Task):
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
    observation_terms = (("target", 2), ("go_cue", 1))
    defaults = {"radius": 0.1, "n_targets": 8, "cue_min": 0.1, "cue_max": 0.3, "centre_posture": None}
    arg_constraints = {"radius": constraints.positive, "n_targets": constraints.positive_integer,
                       "cue_min": constraints.nonnegative, "cue_max": constraints.nonnegative}
    ordered = (("cue_min", "cue_max"),)
    weight_defaults = {"position": 1.0, "effort": 1e-3, "velocity": 0.1, "jerk": 0.0, "force": 0.0,
                       "force_rate": 0.0, "speed": 0.0, "hand_jerk": 0.0}

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
        opts = {"dtype": effector.dtype, "device": effector.device}
        angle = index.to(effector.dtype) * (2 * math.pi / int(self.params["n_targets"]))
        target = centre + self.params["radius"] * torch.stack((torch.cos(angle), torch.sin(angle)), dim=-1)
        lo, hi = self.params["cue_min"], self.params["cue_max"]
        cue_s = lo + (hi - lo) * torch.rand(centre.shape[0], generator=generator, **opts)
        return CentreOutState(target, centre, torch.round(cue_s / effector.dt).long())

    def goal(self, ts: CentreOutState, t: Tensor, dt: float) -> Tensor:
        return torch.where((t >= ts.cue_step)[:, None], ts.target, ts.origin)

    def still(self, ts: CentreOutState, t: Tensor, dt: float) -> Tensor:
        return t < ts.cue_step

    def observe(self, ts: CentreOutState, t: Tensor, dt: float) -> dict[str, Tensor]:
        return {"target": ts.target, "go_cue": (t >= ts.cue_step).to(ts.target.dtype)[:, None]}


class CurlField(CentreOut):
    """Centre-out reaching in a velocity-dependent curl field F = k [-vy, vx] (N), k in N s/m.

    State `CurlFieldState` (the centre-out state and the trial's gain). With probability `catch_probability` a
    trial is a catch trial: the field is off. All else as `CentreOut`.
    """

    name = "curl_field"
    State = CurlFieldState
    defaults = {**CentreOut.defaults, "k": 15.0, "catch_probability": 0.0}
    arg_constraints = {**CentreOut.arg_constraints, "k": constraints.interval(-1000.0, 1000.0),
                       "catch_probability": constraints.unit_interval}
    # |k| (N s/m) beyond which arm26 at its 10 ms step runs away: with random excitations (0-0.5) the peak joint
    # speed is 20 rad/s at k = 15, 57 at 50, 177 at 100 and the 1000 rad/s clamp at 400; studies use 10-20
    max_accurate_k: ClassVar[float] = 40.0

    def __init__(self, success_radius: float = 0.01, weights: dict[str, float] | None = None, **params: Any) -> None:
        super().__init__(success_radius, weights, **params)
        if abs(self.params["k"]) > self.max_accurate_k:
            warnings.warn(f"curl field gain k = {self.params['k']} N s/m: beyond |k| = {self.max_accurate_k:g} the "
                          "explicit step lets the arm run away (joint speeds of 100s of rad/s, up to the velocity "
                          "clamp); curl-field studies use 10-20 N s/m, or shorten dt", AccuracyWarning, stacklevel=2)

    def state_for(self, effector: Effector, centre: Tensor, index: Tensor, generator: torch.Generator | None
                  ) -> CurlFieldState:
        p = self.params["catch_probability"]
        reach = super().state_for(effector, centre, index, generator)
        catch = torch.rand(centre.shape[0], generator=generator, dtype=effector.dtype, device=effector.device) < p
        return CurlFieldState(*reach, torch.where(catch, 0.0, float(self.params["k"])))

    def endpoint_load(self, ts: CurlFieldState, t: Tensor, dt: float, cartesian: Tensor) -> Tensor:
        return ts.field[:, None] * torch.stack((-cartesian[:, 3], cartesian[:, 2]), dim=-1)
