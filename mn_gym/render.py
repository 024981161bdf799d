"""Headless drawing of an effector, its muscles and the task's goal: uint8 RGB frames with matplotlib's Agg canvas.

No OpenGL, no display: `Renderer.frame(...)` draws on one reused off-screen figure (about a millisecond a frame).
`HumanWindow` shows frames in a pyplot window when an interactive backend is available, and does nothing
(quietly) on a headless machine.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from mn_gym.core.effector import Effector
from mn_gym.core.geometry import ViaPointGeometry
from mn_gym.core.skeleton import Elbow, PointMass, TwoLinkArm

__all__ = ["HumanWindow", "Renderer", "lane_scene"]

_BG = "#fbfbf8"
_BONE = "#3b3b3b"
_TARGET = "#2a9d4b"
_HAND = "#1f5fbf"


def _activation_colour(a: float) -> tuple[float, float, float]:
    """Grey (a = 0) to red (a = 1)."""
    a = float(min(max(a, 0.0), 1.0))
    return (0.72 + 0.26 * a, 0.72 - 0.62 * a, 0.72 - 0.62 * a)


def lane_scene(effector: Effector, state, goal: torch.Tensor, target: torch.Tensor, lane: int) -> dict:
    """The numbers one frame needs, for batch element `lane`: joint positions (bones), hand, muscle paths,
    activations, goal and final target, as numpy."""
    with torch.no_grad():
        q = state.effector.q[lane:lane + 1]
        sk = effector.skeleton
        if hasattr(sk, "joint_positions"):
            bones = sk.joint_positions(q)[0]
        else:
            bones = q[:, :2]
        paths: list[np.ndarray] = []
        geometry = effector.geometry
        if isinstance(geometry, ViaPointGeometry):
            pos, _ = sk.point_kinematics(q, geometry._body, geometry.local)
            pos = pos[0].cpu().numpy()
            pm = np.asarray(geometry.point_muscle)
            paths = [pos[pm == m] for m in range(effector.n_muscles)]
        hand = effector.cartesian(state.effector)[lane, :2]
        return {"bones": bones.cpu().numpy(), "hand": hand.cpu().numpy(),
                "activation": state.effector.activation[lane].cpu().numpy(), "paths": paths,
                "goal": goal[lane].cpu().numpy(), "target": target[lane].cpu().numpy()}


class Renderer:
    """Draws frames of one effector: bones (arm segments or the point mass), muscle paths coloured by
    activation (via-point effectors), activation bars (every effector), the hand and its recent path, the
    current goal (circle of the success radius) and the final target.

    Args:
        effector: what is drawn (its skeleton sets the view).
        success_radius: radius (m) of the goal circle.
        width: frame width in pixels; the height follows the view's aspect ratio (or `height`).
    """

    def __init__(self, effector: Effector, success_radius: float, width: int = 400, height: int | None = None,
                 dt: float | None = None) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.effector = effector
        self.dt = effector.dt if dt is None else dt
        sk = effector.skeleton
        if isinstance(sk, Elbow):
            r, r0 = float(sk.length), float(sk.upper_arm_length)
            xlim, ylim = (-1.05 * r0 - 0.05 * r, 1.05 * r), (-0.5 * r, 1.075 * r)
        elif isinstance(sk, TwoLinkArm):
            r = float(sk.l1 + sk.l2)
            xlim, ylim = (-1.05 * r, 1.05 * r), (-0.5 * r, 1.075 * r)
        elif isinstance(sk, PointMass):
            lo = float(sk.pos_lower.min()) if sk.pos_lower.numel() else -1.0
            hi = float(sk.pos_upper.max()) if sk.pos_upper.numel() else 1.0
            pad = 0.08 * (hi - lo)
            xlim = ylim = (lo - pad, hi + pad)
        else:  # pragma: no cover - any other skeleton: a generic view
            xlim = ylim = (-1.0, 1.0)
        aspect = (ylim[1] - ylim[0]) / (xlim[1] - xlim[0])
        if not isinstance(width, int) or width < 32:
            raise ValueError(f"render width must be an int >= 32 pixels, got {width!r}")
        height = round(width * aspect) if height is None else int(height)
        dpi = 100
        self.fig = Figure(figsize=(width / dpi, height / dpi), dpi=dpi, facecolor=_BG)
        self.canvas = FigureCanvasAgg(self.fig)
        ax = self.ax = self.fig.add_axes((0, 0, 1, 1))
        ax.set_xlim(*xlim)
        ax.set_ylim(*ylim)
        ax.set_aspect("auto")
        ax.set_facecolor(_BG)
        ax.axis("off")
        self.size = (height, width)
        self.is_arm = hasattr(sk, "joint_positions")
        from matplotlib.patches import Circle

        radius = max(success_radius, 0.012 * (xlim[1] - xlim[0]))  # visible even when the radius is small
        self.goal_patch = Circle((0, 0), radius, fc=_TARGET, ec="none", alpha=0.45, zorder=1)
        self.target_patch = Circle((0, 0), radius * 1.4, fc="none", ec=_TARGET, lw=1.5, zorder=1)
        ax.add_patch(self.goal_patch)
        ax.add_patch(self.target_patch)
        m = effector.n_muscles
        self.muscle_lines = []
        if isinstance(effector.geometry, ViaPointGeometry):
            self.muscle_lines = [ax.plot([], [], lw=2.5, solid_capstyle="round", zorder=2)[0] for _ in range(m)]
        self.trail = ax.plot([], [], lw=1.0, color=_HAND, alpha=0.5, zorder=3)[0]
        if self.is_arm:
            self.bones = ax.plot([], [], "-o", lw=5, ms=7, color=_BONE, mfc="white", mec=_BONE, zorder=4)[0]
        else:
            self.bones = ax.plot([], [], "o", ms=16, color=_BONE, zorder=4)[0]
        self.hand = ax.plot([], [], "o", ms=5, color=_HAND, zorder=5)[0]
        # activation bars, bottom left, in axes coordinates
        bar_w = min(0.05, 0.36 / max(m, 1))
        self.bars = [ax.bar(0.03 + (i + 0.5) * bar_w * 1.25, 0.0, width=bar_w, bottom=0.03, transform=ax.transAxes,
                            color=_activation_colour(0), zorder=6)[0] for i in range(m)]
        ax.plot([0.03, 0.03 + m * bar_w * 1.25], [0.03, 0.03], transform=ax.transAxes, color="#999999", lw=0.8)
        ax.text(0.03, 0.165, "activation", transform=ax.transAxes, fontsize=7, color="#666666")
        self.clock = ax.text(0.97, 0.97, "", transform=ax.transAxes, ha="right", va="top", fontsize=8, color="#444444")
        ax.text(0.03, 0.97, effector.name, transform=ax.transAxes, ha="left", va="top", fontsize=8, color="#444444")

    def frame(self, scene: dict, t: int = 0, trail: Sequence[np.ndarray] | None = None) -> np.ndarray:
        """A (H, W, 3) uint8 frame of `scene` (from `lane_scene`) at step `t`."""
        bones = scene["bones"]
        self.bones.set_data(bones[:, 0], bones[:, 1])
        hand = scene["hand"]
        self.hand.set_data([hand[0]], [hand[1]])
        self.goal_patch.center = tuple(scene["goal"])
        self.target_patch.center = tuple(scene["target"])
        act = scene["activation"]
        for line, path, a in zip(self.muscle_lines, scene["paths"], act, strict=False):
            line.set_data(path[:, 0], path[:, 1])
            line.set_color(_activation_colour(a))
        for bar, a in zip(self.bars, act, strict=True):
            bar.set_height(0.12 * float(min(max(a, 0.0), 1.0)))
            bar.set_color(_activation_colour(a))
        if trail:
            pts = np.asarray(trail)
            self.trail.set_data(pts[:, 0], pts[:, 1])
        else:
            self.trail.set_data([], [])
        self.clock.set_text(f"t = {t * self.dt:.2f} s")
        self.canvas.draw()
        rgba = np.asarray(self.canvas.buffer_rgba())
        return np.array(rgba[..., :3], dtype=np.uint8)  # a fresh array

    def close(self) -> None:
        self.fig.clear()


def _interactive_backend() -> bool:
    import matplotlib

    backend = matplotlib.get_backend().lower()
    try:
        from matplotlib.backends import BackendFilter, backend_registry

        return backend in backend_registry.list_builtin(BackendFilter.INTERACTIVE)
    except ImportError:  # pragma: no cover - matplotlib < 3.9
        return backend not in {"agg", "pdf", "ps", "svg", "cairo", "template"} and "inline" not in backend


class HumanWindow:
    """Shows frames in a pyplot window; a silent no-op when no interactive backend is available (headless)."""

    def __init__(self, fps: float) -> None:
        self.fps = fps
        self.fig = self.image = None
        self.enabled = None  # decided on the first show()

    def show(self, frame: np.ndarray) -> None:
        if self.enabled is None:
            self.enabled = _interactive_backend()
        if not self.enabled:
            return
        import matplotlib.pyplot as plt

        if self.fig is None or not plt.fignum_exists(self.fig.number):
            self.fig = plt.figure(figsize=(frame.shape[1] / 100, frame.shape[0] / 100), dpi=100)
            ax = self.fig.add_axes((0, 0, 1, 1))
            ax.axis("off")
            self.image = ax.imshow(frame)
            plt.show(block=False)
        else:
            self.image.set_data(frame)
        self.fig.canvas.draw_idle()
        plt.pause(1.0 / self.fps)

    def close(self) -> None:
        if self.fig is not None:
            import matplotlib.pyplot as plt

            plt.close(self.fig)
            self.fig = None
