"""Time integration of the effector ODE: MotorNet-compatible explicit Euler and classical RK4.

The continuous state is x = (q, qd, activation, fibre length); `Effector.derivative` gives dx/dt. Both
integrators call it; they differ in the musculotendon path the muscle sees and in the update:

- `euler`: x' = x + dt f(x), in MotorNet 0.3.0's order: the muscle force uses the path (length, velocity)
  stored in the state, i.e. the geometry of the *previous* step, while torques use the current moment arms;
  position advances with the old velocity. First order. Golden files of MotorNet's euler match to float
  rounding.
- `rk4`: classical fourth-order Runge-Kutta of the continuous ODE, every stage with its own geometry.
  MotorNet's "rk4" is not this: it chains its stages from the previous stage (not from the start) and
  advances position with the old velocity, so it is first order; mn_gym's rk4 has order 4.

After each (sub)step: activation is clipped to [min_activation, 1] and the joint limits are applied.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:
    from mn_gym.core.effector import Effector, EffectorState

Loads = tuple[Tensor | None, Tensor | None]  # endpoint load (B, 2), joint load (B, dof)


def _add(x: tuple, k: tuple, h: float) -> tuple:
    return tuple(None if xi is None else torch.add(xi, ki, alpha=h) for xi, ki in zip(x, k, strict=True))


def euler(effector: Effector, state: EffectorState, u: Tensor, loads: Loads, dt: float) -> EffectorState:
    """One explicit Euler step of length `dt` (s) with MotorNet 0.3.0's ordering (see module docstring)."""
    x = (state.q, state.qd, state.activation, state.fibre_length)
    k, path = effector.derivative(*x, u, loads, path=(state.mt_length, state.mt_velocity))
    return effector.finish_step(_add(x, k, dt), path)


def rk4(effector: Effector, state: EffectorState, u: Tensor, loads: Loads, dt: float) -> EffectorState:
    """One classical RK4 step of length `dt` (s) of the continuous effector ODE."""
    x = (state.q, state.qd, state.activation, state.fibre_length)
    k1, _ = effector.derivative(*x, u, loads)
    k2, _ = effector.derivative(*_add(x, k1, 0.5 * dt), u, loads)
    k3, _ = effector.derivative(*_add(x, k2, 0.5 * dt), u, loads)
    k4, _ = effector.derivative(*_add(x, k3, dt), u, loads)
    k = tuple(None if a is None else a + 2.0 * (b + c) + d for a, b, c, d in zip(k1, k2, k3, k4, strict=True))
    return effector.finish_step(_add(x, k, dt / 6.0), None)


INTEGRATORS: dict[str, Callable[..., EffectorState]] = {"euler": euler, "rk4": rk4}
