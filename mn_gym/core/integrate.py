"""Generic fixed-step integrators of an ODE dx/dt = f(x), knowing nothing of effectors.

The state x is a tuple of tensors (None entries stay None: an absent state variable). `f(x)` returns
`(dx/dt, aux)`: the derivative, with the same structure as x, and any by-product of evaluating it (an
effector returns the musculotendon path it computed). Both integrators return `(x_new, aux)` with the aux of
the first stage, f(x) at the start of the step.

- `euler`: x_new = x + h f(x). First order.
- `rk4`: the classical fourth-order Runge-Kutta scheme, stages k1..k4 from the start of the step
  (Butcher 2016, *Numerical Methods for Ordinary Differential Equations*, sec. 23). Order 4.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

State = tuple[Tensor | None, ...]
Derivative = Callable[[State], tuple[State, Any]]


def axpy(x: State, k: State, h: float) -> State:
    """x + h k, entry by entry (None stays None)."""
    return tuple(None if xi is None else torch.add(xi, ki, alpha=h) for xi, ki in zip(x, k, strict=True))


def euler(f: Derivative, x: State, h: float) -> tuple[State, Any]:
    """One explicit Euler step of length `h`: (x + h f(x), aux of f(x))."""
    k, aux = f(x)
    return axpy(x, k, h), aux


def rk4(f: Derivative, x: State, h: float) -> tuple[State, Any]:
    """One classical RK4 step of length `h`: (x_new, aux of f(x))."""
    k1, aux = f(x)
    k2, _ = f(axpy(x, k1, 0.5 * h))
    k3, _ = f(axpy(x, k2, 0.5 * h))
    k4, _ = f(axpy(x, k3, h))
    k = tuple(None if a is None else a + 2.0 * (b + c) + d for a, b, c, d in zip(k1, k2, k3, k4, strict=True))
    return axpy(x, k, h / 6.0), aux


INTEGRATORS: dict[str, Callable[[Derivative, State, float], tuple[State, Any]]] = {"euler": euler, "rk4": rk4}
