"""Figures of training runs: learning curves (one run or several side by side) and hand trajectories.

Matplotlib with the Agg backend (no display needed); every function writes a PNG and returns its path.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from mn_gym.faces.rollout import Rollout

__all__ = ["learning_curves", "trajectories"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(plt, fig, title: str, path: str | Path) -> Path:
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def learning_curves(curves: Mapping[str, Sequence[Sequence[Mapping[str, float]]]], path: str | Path, title: str,
                    success_radius: float) -> Path:
    """Held-out mean final distance and success rate vs training wall-clock and vs env steps.

    curves: label -> list of runs (e.g. seeds), each a list of curve rows with `train_time_s`, `env_steps`,
    `eval_final_distance` (m) and `eval_success_rate`. Runs of one label share a colour."""
    plt = _pyplot()
    fig, axes = plt.subplots(2, 2, figsize=(11, 7), sharex="col")
    for colour, (label, runs) in enumerate(curves.items()):
        for k, rows in enumerate(runs):
            minutes = [r["train_time_s"] / 60 for r in rows]
            steps = [r["env_steps"] for r in rows]
            dist = [100 * r["eval_final_distance"] for r in rows]
            success = [100 * r["eval_success_rate"] for r in rows]
            style = {"color": f"C{colour}", "marker": ".", "lw": 1.2, "label": label if k == 0 else None}
            for col, x in enumerate((minutes, steps)):
                axes[0, col].plot(x, dist, **style)
                axes[1, col].plot(x, success, **style)
    for col in range(2):
        axes[0, col].axhline(100 * success_radius, color="grey", ls="--", lw=1)
        axes[0, col].set_yscale("log")
        axes[1, col].set_ylim(-2, 102)
        for row in range(2):
            axes[row, col].grid(True, which="both", alpha=0.3)
    axes[0, 0].set_ylabel("mean final distance (cm)")
    axes[1, 0].set_ylabel(f"success rate (%, within {100 * success_radius:g} cm)")
    axes[1, 0].set_xlabel("training wall-clock (min, evaluation excluded)")
    axes[1, 1].set_xlabel("env steps")
    axes[1, 1].set_xscale("symlog", linthresh=1e4)
    axes[1, 1].set_xlim(left=0)
    axes[0, 0].legend()
    return _save(plt, fig, title, path)


def trajectories(ro: Rollout, path: str | Path, title: str, success_radius: float, dt: float,
                 max_paths: int = 16) -> Path:
    """Hand paths (x-y, m) with their goals, and hand-goal distance over time, for up to `max_paths` episodes."""
    plt = _pyplot()
    hand = ro.hand[:, :max_paths, :2].detach().cpu()
    goals = ro.goals[:, :max_paths].detach().cpu()
    distance = torch.linalg.vector_norm(hand - goals, dim=-1)
    t = torch.arange(hand.shape[0]) * dt
    fig, (ax_xy, ax_d) = plt.subplots(1, 2, figsize=(11, 4.8))
    for i in range(hand.shape[1]):
        colour = f"C{i % 10}"
        ax_xy.plot(hand[:, i, 0], hand[:, i, 1], color=colour, lw=1.2)
        ax_xy.plot(hand[0, i, 0], hand[0, i, 1], "o", color=colour, ms=3)
        ax_xy.plot(goals[:, i, 0], goals[:, i, 1], ":", color=colour, lw=1)
        ax_xy.add_patch(plt.Circle(goals[-1, i].tolist(), success_radius, color=colour, fill=False, lw=1))
        ax_d.plot(t, 100 * distance[:, i], color=colour, lw=1)
    ax_xy.set_aspect("equal")
    ax_xy.set_xlabel("x (m)")
    ax_xy.set_ylabel("y (m)")
    ax_xy.set_title("hand paths (o start, circle: final goal and success radius, dotted: goal path)", fontsize=9)
    ax_d.axhline(100 * success_radius, color="grey", ls="--", lw=1)
    ax_d.set_yscale("log")
    ax_d.set_xlabel("time (s)")
    ax_d.set_ylabel("hand-goal distance (cm)")
    ax_d.grid(True, which="both", alpha=0.3)
    return _save(plt, fig, title, path)
