"""Media of envs and policies: a video or picture of a trained policy (`mn-gym render`), and the env pictures
of the README (`python -m mn_gym.media docs/envs`). Drawing itself is `mn_gym.render`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mn_gym import catalogue
from mn_gym.render import Renderer, lane_scene

__all__ = ["render_policy", "save_media"]


def render_policy(env_id: str, policy: torch.nn.Module, path: str | Path, *, episodes: int = 3, seed: int = 0,
                  env_kwargs: dict | None = None, width: int = 400) -> Path:
    """Roll `policy` ((obs, hidden) -> (excitation, hidden)) through `episodes` deterministic episodes of `env_id`
    and write them to `path`: .gif (PIL), .mp4 (moviepy) or .png (the last frame, with the hand's path)."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".gif", ".mp4", ".png"):
        raise ValueError(f"render output must end in .gif, .mp4 or .png, got {path.name!r}")
    if not (isinstance(episodes, int) and episodes >= 1):
        raise ValueError(f"episodes must be a positive int, got {episodes!r}")
    env = catalogue.make(env_id, batch_size=episodes, seed=seed, **{**(env_kwargs or {}), "deterministic": True})
    renderer = Renderer(env.effector, env.task.success_radius, width=width, dt=env.dt)
    frames = []
    with torch.no_grad():
        ro_state, obs = env.reset(seed)
        hidden = policy.initial_hidden(episodes) if hasattr(policy, "initial_hidden") else None
        states = [ro_state]
        for _ in range(env.max_steps):
            action, hidden = policy(obs, hidden)
            ro_state, obs, *_ = env.step(ro_state, action)
            states.append(ro_state)
        for lane in range(episodes):
            trail: list[np.ndarray] = []
            for k, state in enumerate(states):
                where = env.where(state)
                scene = lane_scene(env.effector, state, where["goal"], where["target"], lane)
                trail.append(scene["hand"])
                if suffix != ".png" and k % 2 == 0:
                    frames.append(renderer.frame(scene, k, trail))
            if suffix == ".png" and lane == episodes - 1:
                frames.append(renderer.frame(scene, len(states) - 1, trail))
    renderer.close()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".mp4":
        from moviepy import ImageSequenceClip

        ImageSequenceClip(frames, fps=round(0.5 / env.dt)).write_videofile(str(path), logger=None)
    else:
        from PIL import Image

        images = [Image.fromarray(f) for f in frames]
        if suffix == ".png":
            images[-1].save(path)
        else:
            images[0].save(path, save_all=True, append_images=images[1:], duration=round(2000 * env.dt), loop=0)
    return path


def save_media(out_dir: str, seed: int = 0) -> list[str]:
    """Write a PNG frame of every registered env id (`<id>.png`, 0.4 s into an episode) and a short GIF of
    the arm reaching (`arm.gif`) to `out_dir` (`python -m mn_gym.media docs/envs`). The excitations are a fixed
    smooth pattern, not a trained policy."""
    import gymnasium as gym
    from PIL import Image

    import mn_gym  # registers the ids with gymnasium

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for env_id in mn_gym.list_ids():
        env = gym.make(env_id, render_mode="rgb_array", render_width=320)
        env.reset(seed=seed)
        m, dt = env.action_space.shape[0], env.unwrapped.functional.dt
        gif = env_id == "ArmReach-v0"
        frames = []
        for k in range(round(0.4 / dt)):
            a = np.sin(2 * np.pi * (1.5 * k * dt + np.arange(m) / m)).astype(np.float32)
            env.step(a)
            if gif and k % 2 == 0:
                frames.append(env.render())
        path = out / f"{env_id}.png"
        Image.fromarray(env.render()).save(path)
        written.append(str(path))
        if frames:
            images = [Image.fromarray(f) for f in frames]
            images[0].save(out / "arm.gif", save_all=True, append_images=images[1:], duration=20, loop=0,
                           optimize=True)
            written.append(str(out / "arm.gif"))
        env.close()
    return written


if __name__ == "__main__":
    import sys

    print("\n".join(save_media(sys.argv[1] if len(sys.argv) > 1 else "docs/envs")))
