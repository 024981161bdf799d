"""Fixed points of a recurrent network's hidden-state map, and their linear stability (Sussillo & Barak 2013,
"Opening the black box: low-dimensional dynamics in high-dimensional recurrent neural networks").

With the input held constant, a recurrent policy is a discrete-time map h -> F(h). Its fixed (and slow) points
are the minima of the speed q(h) = 0.5 |F(h) - h|^2, found from many starting states at once; the eigenvalues
of the Jacobian dF/dh there say which are attractors (all |lambda| < 1) and which are saddles or repellers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["FixedPoints", "find_fixed_points", "gru_step"]


class FixedPoints(NamedTuple):
    """What `find_fixed_points` found from N starting states of H units.

    points (N, H): where each candidate ended; speed (N,): q = 0.5 |F(h) - h|^2 there; converged (N,) bool:
    q < tolerance; unique (K, H): the converged points with duplicates (closer than `unique_distance`)
    removed, slowest first; eigenvalues (K, H) complex: of the Jacobian dF/dh at each unique point; stable
    (K,) bool: every |eigenvalue| < 1 (an attractor of the discrete-time map)."""

    points: Tensor
    speed: Tensor
    converged: Tensor
    unique: Tensor
    eigenvalues: Tensor
    stable: Tensor


def gru_step(policy: Callable[[Tensor, Tensor], tuple[Tensor, Tensor]], obs: Tensor) -> Callable[[Tensor], Tensor]:
    """The hidden-state map h (N, H) -> h' (N, H) of a recurrent `policy` (called `action, hidden = policy(obs,
    hidden)`, hidden a (B, H) tensor, e.g. `mn_gym.GRUPolicy`) with its input held at `obs` ((n_obs,) or
    (1, n_obs))."""
    if not isinstance(obs, Tensor) or obs.dim() not in (1, 2) or (obs.dim() == 2 and obs.shape[0] != 1):
        shape = tuple(obs.shape) if isinstance(obs, Tensor) else type(obs).__name__
        raise ValueError(f"obs must be one observation, (n_obs,) or (1, n_obs), got {shape}")
    obs = obs.detach().reshape(1, -1)
    return lambda h: policy(obs.expand(h.shape[0], -1), h)[1]


def _speed(step: Callable[[Tensor], Tensor], h: Tensor) -> Tensor:
    moved = step(h)
    if not isinstance(moved, Tensor) or moved.shape != h.shape:
        shape = tuple(moved.shape) if isinstance(moved, Tensor) else type(moved).__name__
        raise ValueError(f"step must map (N, H) states to (N, H) states, got {shape} for {tuple(h.shape)}")
    return 0.5 * ((moved - h) ** 2).sum(-1)


def _deduplicate(points: Tensor, speed: Tensor, distance: float) -> Tensor:
    """The rows of `points` (slowest first) that are farther than `distance` from every slower row kept."""
    kept: list[Tensor] = []
    for i in torch.argsort(speed).tolist():
        if all(torch.linalg.vector_norm(points[i] - k) > distance for k in kept):
            kept.append(points[i])
    return torch.stack(kept) if kept else points[:0]


def find_fixed_points(step: Callable[[Tensor], Tensor], initial: Tensor, *, iterations: int = 2000,
                      lr: float = 1e-2, tolerance: float = 1e-8, unique_distance: float = 1e-2) -> FixedPoints:
    """Minimise q(h) = 0.5 |step(h) - h|^2 from each row of `initial` (N, H) with Adam (learning rate `lr`), all
    candidates in parallel, for up to `iterations` steps or until every q < `tolerance` (Sussillo & Barak 2013).

    `step` maps (N, H) -> (N, H), e.g. `gru_step(policy, obs)`. Gradients are taken with respect to the states
    only: the parameters of a module inside `step` are neither changed nor given gradients. `initial` is
    copied, not modified. Starting states are typically hidden states sampled from recorded rollouts.

    q < `tolerance` bounds |step(h) - h| by sqrt(2 tolerance), so a converged point lies within about
    sqrt(2 tolerance) / (1 - rho) of the true fixed point, rho the map's contraction there: `unique_distance`
    must exceed that spread, or copies of one fixed point count as several (at q < 1e-6 an untrained 64-unit GRU's
    copies of its one attractor stay a few 1e-3 apart; the defaults, 1e-8 and 1e-2, keep them together)."""
    if not isinstance(initial, Tensor) or initial.dim() != 2 or initial.shape[0] < 1 or initial.shape[1] < 1:
        shape = tuple(initial.shape) if isinstance(initial, Tensor) else type(initial).__name__
        raise ValueError(f"initial must be a non-empty (N states, H units) tensor, got {shape}")
    if not torch.isfinite(initial).all():
        raise ValueError("initial holds non-finite values (nan or inf)")
    if not isinstance(iterations, int) or isinstance(iterations, bool) or iterations < 1:
        raise ValueError(f"iterations must be a positive int, got {iterations!r}")
    for name, value in (("lr", lr), ("tolerance", tolerance), ("unique_distance", unique_distance)):
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 < value < float("inf"):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    h = initial.detach().clone().requires_grad_(True)
    optimiser = torch.optim.Adam([h], lr=lr)
    with torch.enable_grad():
        for _ in range(iterations):
            q = _speed(step, h)
            if bool((q < tolerance).all()):
                break
            (h.grad,) = torch.autograd.grad(q.sum(), h)  # the states' gradient only: module params untouched
            optimiser.step()
        else:
            q = _speed(step, h)
    points, speed = h.detach(), q.detach()
    if not torch.isfinite(speed).all():
        raise ValueError("the speed q became non-finite: lower lr, or check that step is a bounded map")
    converged = speed < tolerance
    unique = _deduplicate(points[converged], speed[converged], unique_distance)
    with torch.enable_grad():
        jacobians = [torch.autograd.functional.jacobian(lambda x: step(x[None])[0], p) for p in unique]
    eigenvalues = (torch.stack([torch.linalg.eigvals(j.detach()) for j in jacobians]) if jacobians else
                   torch.complex(unique, unique))
    stable = (eigenvalues.abs() < 1).all(-1)
    return FixedPoints(points, speed, converged, unique, eigenvalues, stable)
