"""Figures of the hidden-state and behaviour analyses: population trajectories in PC space (Churchland et al.
2012), tuning (Georgopoulos et al. 1982), fixed points (Sussillo & Barak 2013), hand paths, speed and muscle
activation, and force-channel profiles (Smith, Ghazizadeh & Shadmehr 2006).

Matplotlib with the Agg backend, as `mn_gym.plots`; every function writes a PNG and returns its path. Conditions
are coloured by their angle on the hsv colour wheel.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import Tensor

from mn_gym.analysis.behaviour import hand_speed
from mn_gym.analysis.fixed_points import FixedPoints
from mn_gym.analysis.population import PCA, Tuning, project
from mn_gym.faces.rollout import Rollout
from mn_gym.plots import _pyplot, _save

__all__ = ["adaptation_plot", "behaviour_plot", "channel_force_plot", "fixed_points_plot", "pca_trajectories",
           "tuning_plot"]

TUNED_R2 = 0.5  # units whose cosine fit explains more than this are counted as tuned


def _colours(plt, angles: Tensor) -> list:
    """One hsv colour per condition angle (rad)."""
    wheel = plt.get_cmap("hsv")
    return [wheel((a % (2 * math.pi)) / (2 * math.pi)) for a in angles.detach().cpu().tolist()]


def _trajectory_scores(fit: PCA) -> Tensor:
    if fit.scores.dim() != 3 or fit.scores.shape[-1] < 2:
        raise ValueError(f"need a PCA of (T, B, H) activity with at least 2 components, got scores of shape "
                         f"{tuple(fit.scores.shape)}")
    return fit.scores.detach().cpu()


def pca_trajectories(fit: PCA, condition_angles: Tensor, path: str | Path, title: str) -> Path:
    """Population trajectories (T, B) in PC1-PC2 (and PC1-PC3 when there are 3 components), one colour per
    condition (trial angle, rad, (B,)), o at the start of each trial."""
    scores = _trajectory_scores(fit)
    if condition_angles.shape != (scores.shape[1],):
        raise ValueError(f"condition_angles must have shape ({scores.shape[1]},), one per trial, got "
                         f"{tuple(condition_angles.shape)}")
    plt = _pyplot()
    pairs = [(0, 1), (0, 2)] if scores.shape[-1] >= 3 else [(0, 1)]
    fig, axes = plt.subplots(1, len(pairs), figsize=(5.2 * len(pairs), 4.8), squeeze=False)
    ratio = fit.explained_variance_ratio.tolist()
    for ax, (i, j) in zip(axes[0], pairs, strict=True):
        for b, colour in enumerate(_colours(plt, condition_angles)):
            ax.plot(scores[:, b, i], scores[:, b, j], color=colour, lw=1.2)
            ax.plot(scores[0, b, i], scores[0, b, j], "o", color=colour, ms=4)
        ax.set_xlabel(f"PC{i + 1} ({100 * ratio[i]:.0f} % var.)")
        ax.set_ylabel(f"PC{j + 1} ({100 * ratio[j]:.0f} % var.)")
        ax.grid(True, alpha=0.3)
    axes[0, 0].set_title("hidden-state trajectories (o start, colour: target angle)", fontsize=9)
    return _save(plt, fig, title, path)


def tuning_plot(fit: Tuning, path: str | Path, title: str) -> Path:
    """Polar histogram of the preferred directions of the tuned units (r2 > 0.5) and depth vs r2 of all."""
    plt = _pyplot()
    tuned = fit.r2 > TUNED_R2
    fig = plt.figure(figsize=(10, 4.6))
    ax_polar = fig.add_subplot(1, 2, 1, projection="polar")
    ax_polar.hist(fit.preferred_direction[tuned].detach().cpu().numpy(), bins=16, range=(-math.pi, math.pi),
                  color="C0", edgecolor="white")
    ax_polar.set_title(f"preferred directions of the {int(tuned.sum())} of {tuned.numel()} units with "
                       f"r2 > {TUNED_R2:g}", fontsize=9)
    ax = fig.add_subplot(1, 2, 2)
    ax.scatter(fit.r2.detach().cpu(), fit.depth.detach().cpu(), s=12, c=["C0" if t else "grey" for t in tuned])
    ax.axvline(TUNED_R2, color="grey", ls="--", lw=1)
    ax.set_xlabel("r2 of the cosine fit")
    ax.set_ylabel("modulation depth (activity units)")
    ax.grid(True, alpha=0.3)
    return _save(plt, fig, title, path)


def fixed_points_plot(fit: PCA, fixed_points: FixedPoints, path: str | Path, title: str) -> Path:
    """The unique fixed points in PC1-PC2 (filled: stable, hollow: unstable) over the trajectories (grey)."""
    scores = _trajectory_scores(fit)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5.6, 4.8))
    for b in range(scores.shape[1]):
        ax.plot(scores[:, b, 0], scores[:, b, 1], color="grey", lw=0.8, alpha=0.6)
    points = project(fit, fixed_points.unique).cpu()
    stable = fixed_points.stable.cpu()
    ax.scatter(points[stable, 0], points[stable, 1], s=40, color="k", label=f"stable ({int(stable.sum())})")
    ax.scatter(points[~stable, 0], points[~stable, 1], s=40, facecolors="none", edgecolors="k",
               label=f"unstable ({int((~stable).sum())})")
    ax.set_xlabel("PC1")
    ax.set_ylabel("PC2")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    ax.set_title("fixed points of the hidden-state map (grey: trajectories)", fontsize=9)
    return _save(plt, fig, title, path)


def _check_angles(ro: Rollout, condition_angles: Tensor) -> None:
    batch = ro.hand.shape[1]
    if condition_angles.shape != (batch,):
        raise ValueError(f"condition_angles must have shape ({batch},), one per trial, got "
                         f"{tuple(condition_angles.shape)}")


def _hand_paths(ax, colours: list, ro: Rollout) -> None:
    """Each trial's hand path (x-y, m) in its colour, an x at its final goal."""
    hand = ro.hand.detach().cpu()
    for b, colour in enumerate(colours):
        ax.plot(hand[:, b, 0], hand[:, b, 1], color=colour, lw=1.2)
        ax.plot(*ro.goals[-1, b].detach().cpu().tolist(), "x", color=colour, ms=7)
    ax.set_aspect("equal")
    ax.set_xlabel("x (m)")
    ax.set_ylabel("y (m)")
    ax.grid(True, alpha=0.3)


def behaviour_plot(ro: Rollout, dt: float, condition_angles: Tensor, path: str | Path, title: str,
                   muscle_names: Sequence[str] | None = None) -> Path:
    """Hand paths (x-y, m, x at the final goals), hand speed (m/s) vs time (s), one colour per condition (angle,
    rad, (B,)), and the mean muscle activation over trials vs time, one line per muscle."""
    _check_angles(ro, condition_angles)
    n_muscles = ro.activation.shape[-1]
    if muscle_names is not None and len(muscle_names) != n_muscles:
        raise ValueError(f"muscle_names must name the {n_muscles} muscles, got {len(muscle_names)} names")
    plt = _pyplot()
    speed = hand_speed(ro).detach().cpu()
    t = torch.arange(speed.shape[0]) * dt
    fig, (ax_xy, ax_v, ax_a) = plt.subplots(1, 3, figsize=(15, 4.6))
    colours = _colours(plt, condition_angles)
    _hand_paths(ax_xy, colours, ro)
    for b, colour in enumerate(colours):
        ax_v.plot(t, speed[:, b], color=colour, lw=1)
    activation = ro.activation.detach().cpu().mean(1)
    for m in range(n_muscles):
        ax_a.plot(t, activation[:, m], color=f"C{m % 10}", lw=1.2,
                  label=muscle_names[m] if muscle_names is not None else f"muscle {m}")
    ax_xy.set_title("hand paths (x: final goal)", fontsize=9)
    ax_v.set_xlabel("time (s)")
    ax_v.set_ylabel("hand speed (m/s)")
    ax_a.set_xlabel("time (s)")
    ax_a.set_ylabel("activation (mean over trials)")
    ax_a.legend(fontsize=7)
    for ax in (ax_v, ax_a):
        ax.grid(True, alpha=0.3)
    return _save(plt, fig, title, path)


def adaptation_plot(panels: Mapping[str, Rollout], condition_angles: Tensor, path: str | Path, title: str) -> Path:
    """Hand paths side by side, one panel per labelled rollout of the same episodes (e.g. "before adaptation, in
    the field", "after", "catch trials"), one colour per condition (angle, rad, (B,))."""
    if not panels:
        raise ValueError("panels is empty: give at least one labelled rollout")
    for ro in panels.values():
        _check_angles(ro, condition_angles)
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(4.6 * len(panels), 4.6), squeeze=False)
    colours = _colours(plt, condition_angles)
    for ax, (label, ro) in zip(axes[0], panels.items(), strict=True):
        _hand_paths(ax, colours, ro)
        ax.set_title(label, fontsize=9)
    return _save(plt, fig, title, path)


def channel_force_plot(profiles: Mapping[str, Tensor], ideal: Tensor | None, dt: float, path: str | Path,
                       title: str) -> Path:
    """Lateral force profiles (N) vs time (s), one (T,) line per label (e.g. "before", "after 1 min"), and the
    ideal compensatory force k |v| dashed when given."""
    if not profiles:
        raise ValueError("profiles is empty: give at least one labelled (T,) force profile")
    for label, force in profiles.items():
        if force.dim() != 1:
            raise ValueError(f"profile {label!r} must be a (T,) force profile, got shape {tuple(force.shape)}")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 4.6))
    for k, (label, force) in enumerate(profiles.items()):
        ax.plot(torch.arange(force.shape[0]) * dt, force.detach().cpu(), color=f"C{k % 10}", lw=1.4, label=label)
    if ideal is not None:
        ax.plot(torch.arange(ideal.shape[0]) * dt, ideal.detach().cpu(), "k--", lw=1.2, label="ideal k|v|")
    ax.set_xlabel("time (s)")
    ax.set_ylabel("lateral (channel) force (N)")
    ax.legend(fontsize=8)
    ax.grid(True, alpha=0.3)
    return _save(plt, fig, title, path)
