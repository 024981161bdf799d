"""Sensory delay lines.

A delay of d seconds shows, at step t, the value recorded d / dt steps earlier (rounded to whole steps), so
a delay of 0 shows the current value. (MotorNet 0.3.0's delay D shows D - dt earlier.) A delay line is a
(B, L + 1, F) tensor holding the last L + 1 values, oldest first; it is part of the immutable env state.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor


def delay_steps(delay: float, dt: float, name: str) -> int:
    """Whole steps of lag for `delay` seconds; the delay must be a non-negative multiple of dt."""
    if not isinstance(delay, (int, float)) or isinstance(delay, bool) or not math.isfinite(delay) or delay < 0:
        raise ValueError(f"{name} must be a finite number of seconds >= 0, got {delay!r}")
    steps = round(delay / dt)
    if abs(steps * dt - delay) > 1e-9 * max(1.0, delay):
        raise ValueError(f"{name} = {delay} s is not a whole number of time steps (dt = {dt} s)")
    return steps


def delay_line(value: Tensor, lag: int) -> Tensor:
    """A delay line (B, lag + 1, F) filled with `value` (B, F), as at the start of an episode."""
    return value[:, None, :].expand(-1, lag + 1, -1).clone()


def push(line: Tensor, value: Tensor) -> Tensor:
    """The delay line after recording `value` (B, F): drops the oldest entry."""
    if line.shape[1] == 1:
        return value[:, None, :]
    return torch.cat((line[:, 1:], value[:, None, :]), dim=1)


def refill(line: Tensor, value: Tensor, mask: Tensor) -> Tensor:
    """Reset the delay lines of the batch elements where `mask` (B,) is True to `value` (B, F)."""
    return torch.where(mask[:, None, None], value[:, None, :].expand_as(line), line)
