"""Population analyses of hidden-unit activity: principal components and cosine tuning.

PCA of a network's hidden states over time and conditions is how motor-cortex population dynamics are
looked at (Churchland et al. 2012, "Neural population dynamics during reaching"); cosine tuning to movement
direction is the classic single-unit description (Georgopoulos et al. 1982).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["PCA", "Tuning", "pca", "project", "tuning"]


class PCA(NamedTuple):
    """Principal components of activity with H units: mean (H,), components (k, H) orthonormal rows (each
    signed so that its largest-magnitude entry is positive), explained_variance_ratio (k,), and scores: the
    centred activity projected on the components, (T, B, k) or (N, k) like the input."""

    mean: Tensor
    components: Tensor
    explained_variance_ratio: Tensor
    scores: Tensor


class Tuning(NamedTuple):
    """Cosine tuning r = baseline + depth cos(theta - preferred_direction) per unit, (H,) each:
    preferred_direction (rad, in (-pi, pi]), depth and baseline (units of the activity), r2 the coefficient of
    determination of the fit (0 for a unit whose activity does not vary)."""

    preferred_direction: Tensor
    depth: Tensor
    baseline: Tensor
    r2: Tensor


def _check_finite(name: str, x: Tensor) -> None:
    if not torch.isfinite(x).all():
        raise ValueError(f"{name} holds non-finite values (nan or inf)")


def pca(activity: Tensor, n_components: int = 3) -> PCA:
    """PCA of `activity`, (T, B, H) time-major like `Rollout.hidden`, or (N, H) samples, by the SVD of the
    centred data (torch.linalg.svd): every time step of every trial is one sample (Churchland et al. 2012)."""
    if not isinstance(activity, Tensor) or activity.dim() not in (2, 3):
        shape = tuple(activity.shape) if isinstance(activity, Tensor) else type(activity).__name__
        raise ValueError(f"activity must be a (T, B, H) or (N, H) tensor, got {shape}")
    x = activity.detach().reshape(-1, activity.shape[-1])
    n, h = x.shape
    if not isinstance(n_components, int) or isinstance(n_components, bool) or not 1 <= n_components <= min(n, h):
        raise ValueError(f"n_components must be an int in [1, min(samples, units)] = [1, {min(n, h)}], got "
                         f"{n_components!r}")
    _check_finite("activity", x)
    mean = x.mean(0)
    centred = x - mean
    _, s, vh = torch.linalg.svd(centred, full_matrices=False)
    total = (s ** 2).sum()
    if total <= 0:
        raise ValueError("activity has zero variance: every sample is the same, there are no components")
    components = vh[:n_components]
    biggest = components.gather(1, components.abs().argmax(1, keepdim=True))
    components = components * torch.where(biggest < 0, -1.0, 1.0).to(components.dtype)
    ratio = s[:n_components] ** 2 / total
    scores = (centred @ components.T).reshape(*activity.shape[:-1], n_components)
    return PCA(mean, components, ratio, scores)


def project(fit: PCA, x: Tensor) -> Tensor:
    """New activity `x` (..., H) in the components of `fit`: (x - mean) @ components.T, (..., k)."""
    h = fit.mean.shape[0]
    if not isinstance(x, Tensor) or x.dim() < 1 or x.shape[-1] != h:
        shape = tuple(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"x must have {h} units in its last dim (like the PCA's activity), got {shape}")
    return (x.detach().to(fit.mean.dtype) - fit.mean) @ fit.components.T


def tuning(activity: Tensor, angles: Tensor) -> Tuning:
    """Least-squares cosine tuning r = b0 + b1 cos(theta) + b2 sin(theta) of each unit over trials
    (Georgopoulos et al. 1982), by torch.linalg.lstsq.

    activity: (B, H), one value per trial and unit (e.g. the mean rate over a movement window); angles: (B,)
    movement direction of each trial (rad). Needs at least 3 trials."""
    if not isinstance(activity, Tensor) or activity.dim() != 2:
        shape = tuple(activity.shape) if isinstance(activity, Tensor) else type(activity).__name__
        raise ValueError(f"activity must be a (B trials, H units) tensor, got {shape}")
    if not isinstance(angles, Tensor) or angles.dim() != 1 or angles.shape[0] != activity.shape[0]:
        shape = tuple(angles.shape) if isinstance(angles, Tensor) else type(angles).__name__
        raise ValueError(f"angles must be a ({activity.shape[0]},) tensor, one angle (rad) per trial of activity, "
                         f"got {shape}")
    if activity.shape[0] < 3:
        raise ValueError(f"cosine tuning needs at least 3 trials (3 coefficients), got {activity.shape[0]}")
    _check_finite("activity", activity)
    _check_finite("angles", angles)
    y = activity.detach()
    theta = angles.detach().to(y.dtype)
    design = torch.stack((torch.ones_like(theta), torch.cos(theta), torch.sin(theta)), dim=-1)
    coef = torch.linalg.lstsq(design, y).solution  # (3, H)
    b0, b1, b2 = coef
    preferred = torch.atan2(b2, b1)
    preferred = torch.where(preferred <= -math.pi, preferred + 2 * math.pi, preferred)
    residual = ((y - design @ coef) ** 2).sum(0)
    spread = ((y - y.mean(0)) ** 2).sum(0)
    # a constant unit's spread is rounding error only: below (eps * its magnitude)^2 per trial it counts as none
    flat = spread <= y.shape[0] * (torch.finfo(y.dtype).eps * y.abs().amax(0)) ** 2
    r2 = torch.where(flat, torch.zeros_like(spread), 1 - residual / torch.where(flat, 1.0, spread))
    return Tuning(preferred, torch.sqrt(b1 ** 2 + b2 ** 2), b0, r2)
