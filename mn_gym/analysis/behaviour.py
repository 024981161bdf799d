"""Behavioural measures of a `mn_gym.Rollout`: hand speed, lateral deviation from the straight path, and the
force-channel measure of curl-field adaptation (Smith, Ghazizadeh & Shadmehr 2006)."""

from __future__ import annotations

import torch
from torch import Tensor

from mn_gym.faces.rollout import Rollout
from mn_gym.functional import Env

__all__ = ["adaptation_index", "channel_force", "hand_speed", "lateral_deviation", "peak_deviation"]


def hand_speed(ro: Rollout) -> Tensor:
    """(T + 1, B) hand speed |v| (m/s) at every step of the rollout."""
    return torch.linalg.vector_norm(ro.hand[..., 2:], dim=-1)


def lateral_deviation(ro: Rollout) -> Tensor:
    """(T + 1, B) signed distance (m) of the hand from the straight origin -> target line of each episode: along
    the line's counter-clockwise normal n = [-e_y, e_x], e the unit line direction (positive: to the left of
    the reach). Needs a task state with `origin` and `target` (B, 2) (reach and centre-out tasks)."""
    ts = ro.final_state.task
    if not all(hasattr(ts, name) for name in ("origin", "target")):
        raise ValueError(f"lateral_deviation needs a task state with origin and target; "
                         f"{type(ts).__name__} has {getattr(ts, '_fields', ())}")
    line = ts.target - ts.origin
    length = torch.linalg.vector_norm(line, dim=-1, keepdim=True)
    if not bool((length > 0).all()):
        raise ValueError(f"target coincides with origin in episode(s) "
                         f"{torch.nonzero(length[:, 0] == 0).flatten().tolist()}: there is no line to deviate from")
    e = line / length
    normal = torch.stack((-e[:, 1], e[:, 0]), dim=-1)
    return ((ro.hand[..., :2] - ts.origin) * normal).sum(-1)


def peak_deviation(ro: Rollout) -> Tensor:
    """(B,) the signed lateral deviation (m, `lateral_deviation`) of each episode at the step where its size is
    largest: the curvature measure of curl-field studies (Shadmehr & Mussa-Ivaldi 1994)."""
    deviation = lateral_deviation(ro)
    return deviation.gather(0, deviation.abs().argmax(0, keepdim=True))[0]


def channel_force(env: Env, ro: Rollout) -> Tensor:
    """(T + 1, B) the force (N) a force channel exerts on the hand along the line's counter-clockwise normal,
    `env.task.compensation` at every step (`mn_gym.tasks.CurlField`; 0 on trials that are not channel trials).
    On a channel trial it mirrors the lateral force the controller makes (Smith, Ghazizadeh & Shadmehr 2006)."""
    compensation = getattr(env.task, "compensation", None)
    if compensation is None:
        raise ValueError(f"channel_force needs a curl-field task with force channels (a `compensation` method); "
                         f"env task {env.task.name!r} has none")
    ts = ro.final_state.task
    return torch.stack([compensation(ts, hand) for hand in ro.hand])


def adaptation_index(force: Tensor, ideal: Tensor) -> float:
    """Regression slope through the origin of the measured channel force on the ideal compensatory force k |v|,
    sum(f i) / sum(i i), over every step and trial ((T, B) each, N): 0 = no anticipation of the field, 1 = full
    compensation (Smith, Ghazizadeh & Shadmehr 2006)."""
    if not isinstance(force, Tensor) or not isinstance(ideal, Tensor) or force.shape != ideal.shape:
        shapes = [tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__ for x in (force, ideal)]
        raise ValueError(f"force and ideal must be tensors of one shape, got {shapes[0]} and {shapes[1]}")
    if not (torch.isfinite(force).all() and torch.isfinite(ideal).all()):
        raise ValueError("force or ideal holds non-finite values (nan or inf)")
    norm = (ideal * ideal).sum()
    if norm <= 0:
        raise ValueError("ideal force is zero everywhere: no field to compensate, the index is undefined")
    return float((force * ideal).sum() / norm)
