"""The batched Gymnasium face: `MnGymVectorEnv`, one batched functional env for all `num_envs` episodes.

    envs = gymnasium.make_vec("ArmReach-v0", num_envs=1024)                 # vector_entry_point: this class
    envs = MnGymVectorEnv("ArmReach-v0", 4096, device="cuda", as_torch=True)  # torch in, torch out

`mn_gym.faces.common.BatchCore` (action checks, batched reset, per-lane restarts, frames) is what this face
shares with the stable-baselines3 face, so both run exactly the functional env's physics and rewards.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium.error import ResetNeeded
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space
from torch import Tensor

from mn_gym.faces.common import (
    MAX_RENDER_FPS,
    BatchCore,
    action_box,
    observation_box,
    render_fps,
)
from mn_gym.functional import Env

__all__ = ["MnGymVectorEnv"]


def _seed_of(seed: int | list[int] | tuple[int, ...] | None) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, (list, tuple)):
        if not seed:
            raise ValueError("seed list is empty")
        seed = seed[0]
    return int(seed)


class MnGymVectorEnv(VectorEnv):
    """`num_envs` episodes of a catalogue env as one batched functional env (CPU or CUDA).

    Same spaces, physics, rewards and info as `MnGymEnv` (see its docstring for the tables), batched:
    observations (N, obs_size) float32, actions (N, n_muscles) in [-1, 1] mapped to excitations (a + 1) / 2,
    rewards (N,) float32, terminated / truncated (N,) bool, each env with its own clock (truncation per env).

    Autoreset: `AutoresetMode.NEXT_STEP`. The step after an env's episode ended ignores that env's action,
    restarts it with fresh draws (`reset_where`) and returns its first observation with reward 0 and
    terminated = truncated = False. When every env ended together the whole batch is reset at once.

    `info` is a dict of batched arrays with `"_key"` masks: `reward_<term>` (the weighted terms), `distance`,
    `is_success`, `goal` (N, 2), `hand` (N, 4); on a restart step the restarted envs carry reset-time
    `distance` / `goal` / `hand` and are masked out of `reward_<term>` and `is_success`.

    Args:
        env: a catalogue id (`mn_gym.list_ids()`), or a functional `mn_gym.Env` (float32) whose batch is the
            vector's (then no catalogue `kwargs`).
        num_envs: batch size (default 1 for an id; the env's batch for an Env).
        device: torch device of the batch ("cuda" for the GPU).
        as_torch: return torch tensors on `device` (and accept them) instead of numpy arrays.
        compile: `torch.compile` the step (compiles on the first step).
        max_episode_steps: cut episodes at min(this, round(episode_duration / dt)) steps (`make_vec` passes the
            registered value).
        render_mode: None or "rgb_array" (`render()` gives one frame per env).
        render_width: frame width in pixels.
        **kwargs: catalogue settings of the id, as for `gymnasium.make`.

    Seeding: one torch generator serves the batch; `reset(seed=s)` reseeds it (a list of seeds: its first
    entry). With `num_envs=1` the episodes equal those of `MnGymEnv` seeded alike; lane i of a larger batch
    is not the episode of a single env seeded s + i.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"],
                "render_fps": MAX_RENDER_FPS}
    FACE_KWARGS = ("num_envs", "device", "as_torch", "compile", "max_episode_steps", "render_mode", "render_width")

    def __init__(self, env: str | Env, num_envs: int | None = None, *, device: torch.device | str | None = None,
                 as_torch: bool = False, compile: bool = False, max_episode_steps: int | None = None,
                 render_mode: str | None = None, render_width: int = 400, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got "
                             f"{render_mode!r}")
        if not isinstance(as_torch, bool):
            raise TypeError(f"as_torch must be a bool, got {as_torch!r}")
        self.core = BatchCore.for_face(env, num_envs, kwargs, self.FACE_KWARGS, device=device, compile=compile,
                                       max_episode_steps=max_episode_steps)
        env, num_envs = self.core.env, self.core.num_envs
        self.env_id = env.env_id
        self.num_envs = num_envs
        self.as_torch = as_torch
        self.render_mode, self.render_width = render_mode, render_width
        self.metadata = {**self.metadata, "render_fps": render_fps(env)}
        self.single_observation_space = observation_box(env.obs_size)
        self.single_action_space = action_box(env.action_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = env.max_steps
        self._prev_done: Tensor | None = None
        self._any_done = self._all_done = False

    @property
    def functional(self) -> Env:
        """The batched functional env behind this face."""
        return self.core.env

    @property
    def device(self) -> torch.device:
        return self.core.env.device

    def reset(self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
              ) -> tuple[Any, dict[str, Any]]:
        seed = _seed_of(seed)
        super().reset(seed=seed)
        if self.closed:
            raise RuntimeError("the vector env is closed")
        obs = self.core.reset(seed, options)
        self._prev_done = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
        self._any_done = self._all_done = False
        info = self._out_info(self.core.where_info(), {})
        return self._out(obs), info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if self.closed:
            raise RuntimeError("the vector env is closed")
        if self.core.state is None:
            raise ResetNeeded("Cannot call step() before reset(): call envs.reset() first")
        core, env = self.core, self.core.env
        prev = self._prev_done
        excitation = core.excitation(actions)
        n = self.num_envs
        with torch.no_grad():
            if self._all_done:  # every env restarts: one batched reset, the actions are ignored
                obs = core.restart(prev, None, every=True)
                reward = torch.zeros(n, dtype=env.dtype, device=env.device)
                terminated = truncated = torch.zeros(n, dtype=torch.bool, device=env.device)
                info = self._out_info(core.where_info(), {}, masked=prev)
            else:
                obs, reward, terminated, truncated, finfo = core.step(excitation)
                step_keys = {**finfo["reward_terms"], "is_success": finfo["is_success"]}
                if self._any_done:
                    obs = core.restart(prev, obs, every=False)
                    reward = torch.where(prev, torch.zeros_like(reward), reward)
                    terminated, truncated = terminated & ~prev, truncated & ~prev
                    where = core.where_info()
                    common = {k: torch.where(prev.reshape(-1, *[1] * (v.dim() - 1)), where[k], v)
                              for k, v in (("distance", finfo["distance"]), ("goal", finfo["goal"]),
                                           ("hand", finfo["hand"]))}
                    info = self._out_info(common, step_keys, masked=prev)
                else:
                    common = {"distance": finfo["distance"], "goal": finfo["goal"], "hand": finfo["hand"]}
                    info = self._out_info(common, step_keys)
            done = terminated | truncated
            self._prev_done = done
            self._any_done = bool(done.any())
            self._all_done = self._any_done and bool(done.all())
        if self.as_torch:
            return obs, reward, terminated, truncated, info
        return (obs.cpu().numpy(), reward.cpu().numpy(), terminated.cpu().numpy(), truncated.cpu().numpy(), info)

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            return None
        if self.core.state is None:
            raise ResetNeeded("Cannot call render() before reset(): call envs.reset() first")
        return tuple(self.core.frames(self.render_width))

    def close_extras(self, **kwargs: Any) -> None:
        self.core.close()

    # ------------------------------------------------------------------------------------------ helpers
    def _out(self, x: Tensor) -> Any:
        return x if self.as_torch else x.cpu().numpy()

    def _out_info(self, common: dict[str, Tensor], step_keys: dict[str, Tensor], masked: Tensor | None = None
                  ) -> dict[str, Any]:
        """Batched info with `_key` masks: `common` keys for every env, `step_keys` for the envs not masked."""
        info: dict[str, Any] = {}
        n, dev = self.num_envs, self.device
        every = torch.ones(n, dtype=torch.bool, device=dev)
        stepped = every if masked is None else ~masked
        for k, v in common.items():
            info[k], info[f"_{k}"] = self._out(v), self._out(every)
        for k, v in step_keys.items():
            if masked is not None:
                v = torch.where(masked.reshape(-1, *[1] * (v.dim() - 1)), torch.zeros_like(v), v)
            info[k], info[f"_{k}"] = self._out(v), self._out(stepped)
        return info

    def __repr__(self) -> str:
        return f"MnGymVectorEnv({self.env_id!r}, num_envs={self.num_envs}, device={self.device})"
