"""What the faces share: the functional env behind a face, spaces, the action map and checks, batched lanes,
the named packing of one lane's step outputs, and rendering hook-up. No face imports another face."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from torch import Tensor

from mn_gym import catalogue
from mn_gym.compilation import compile_env
from mn_gym.functional import Env, EnvState

__all__ = ["MAX_RENDER_FPS", "OBS_BOUND", "BatchCore", "Packing", "action_box", "action_to_excitation",
           "check_action", "face_env", "observation_box", "render_fps", "step_values"]

MAX_RENDER_FPS = 100
OBS_BOUND = float(np.finfo(np.float32).max)


def face_env(env: str | Env, batch_size: int | None, kwargs: dict[str, Any], face_kwargs: Sequence[str], *,
             device: torch.device | str | None = None, compile: bool = False,
             max_episode_steps: int | None = None) -> Env:
    """The float32 functional env behind a face.

    `env` is a catalogue id, built from its frozen `EnvSpec` (catalogue defaults, `kwargs`, the face's
    `max_episode_steps` cut) with `batch_size` (None: 1) on `device`; unknown names raise a TypeError worded as
    Python's ("got an unexpected keyword argument"), listing every valid one, the face's own included. Or `env`
    is a functional `Env`, used as it is (float32; no `kwargs`; its batch is the face's, `batch_size` must
    agree), cut at `max_episode_steps` when given. `compile=True` gives `compile_env`'s copy."""
    if not isinstance(compile, bool):
        raise TypeError(f"compile must be a bool, got {compile!r}")
    if isinstance(env, Env):
        return _given_env(env, batch_size, kwargs, device, compile, max_episode_steps)
    if not isinstance(env, str):
        raise TypeError(f"a face takes a catalogue env id or a functional mn_gym.Env, got {type(env).__name__}")
    env_id = env
    valid = catalogue.entry(env_id).valid_kwargs()
    unknown = sorted(set(kwargs) - set(valid))
    if unknown:
        # Python's own wording first: clients such as TorchRL's GymEnv retry without an argument it names
        raise TypeError(f"{env_id} got an unexpected keyword argument {unknown[0]!r}; unknown argument(s) "
                        f"{unknown}; valid: {valid}; face arguments: {sorted(face_kwargs)}")
    built = catalogue.spec(env_id, max_episode_steps=max_episode_steps, **kwargs).make(
        1 if batch_size is None else batch_size, device=device, dtype=torch.float32)
    return compile_env(built) if compile else built


def _given_env(env: Env, batch_size: int | None, kwargs: dict[str, Any], device: Any, compile: bool,
               max_episode_steps: int | None) -> Env:
    """`face_env` for a functional env given as it is."""
    if kwargs:
        raise TypeError(f"catalogue settings {sorted(kwargs)} apply to env ids only; this face was given a built "
                        "Env: make it with those settings (mn_gym.make(id, ...)) or use env.replace(...)")
    if batch_size is not None and batch_size != env.batch_size:
        raise ValueError(f"the face needs an env of batch {batch_size}, got batch_size={env.batch_size}")
    if env.dtype != torch.float32:
        raise TypeError(f"the Gymnasium / SB3 faces speak float32; got an env of {env.dtype} "
                        "(make it with dtype=torch.float32)")
    if device is not None and torch.device(device) != env.device:
        raise ValueError(f"device={device!r}, but the given env is on {env.device}")
    if max_episode_steps is not None:
        env = env.replace(max_episode_steps=min(env.max_steps, max_episode_steps))
    return compile_env(env) if compile else env


def render_fps(env: Env) -> int:
    """Frames per second of a rendered episode: one frame per step, at most `MAX_RENDER_FPS`."""
    return min(MAX_RENDER_FPS, round(1.0 / env.dt))


# --------------------------------------------------------------------------------------- spaces, actions
def observation_box(size: int) -> spaces.Box:
    """The observation space: float32 within +-float32 max, i.e. every finite float32 (the observation is
    unbounded in principle, through Gaussian noise and velocities; gymnasium's checker warns on +-inf bounds)."""
    return spaces.Box(-OBS_BOUND, OBS_BOUND, (size,), np.float32)


def action_box(n_muscles: int) -> spaces.Box:
    """The action space: one command in [-1, 1] per muscle (float32)."""
    return spaces.Box(-1.0, 1.0, (n_muscles,), np.float32)


def action_to_excitation(action: Tensor) -> Tensor:
    """The faces' action map: x in [-1, 1] (clipped) -> excitation (x + 1) / 2 in [0, 1]."""
    return (action.clamp(-1.0, 1.0) + 1.0) * 0.5


def check_action(action: Any, shape: tuple[int, ...]) -> np.ndarray:
    """`action` as a float32 numpy array of `shape`, or a clear error (wrong type, shape or dtype, NaN / inf)."""
    if isinstance(action, Tensor):
        action = action.detach().cpu().numpy()
    try:
        a = np.asarray(action)
    except Exception as exc:  # pragma: no cover - exotic objects
        raise TypeError(f"action must be an array of shape {shape}, got {type(action).__name__}") from exc
    if a.dtype.kind not in "fiu":
        raise TypeError(f"action must be a real-valued array (float32 preferred) of shape {shape}, got dtype "
                        f"{a.dtype}")
    if a.shape != shape:
        raise ValueError(f"action must have shape {shape}, got {a.shape}")
    a = a.astype(np.float32, copy=False)
    if not np.isfinite(a).all():
        raise ValueError(f"action must be finite, got {a}")
    return a


# -------------------------------------------------------------------------------------- packed lane outputs
class Packing:
    """Named values of one lane in one flat float tensor (one device-to-host copy), read back by name.

    `fields`: (name, size) in order. `pack({name: tensor of `size` elements})` -> (sum of sizes,) tensor;
    `unpack(array)` -> {name: a view of shape (size,) into `array`} (copy what you hand out)."""

    def __init__(self, fields: Sequence[tuple[str, int]]) -> None:
        self.fields = tuple(fields)
        self.slices, start = {}, 0
        for name, size in self.fields:
            self.slices[name] = slice(start, start + size)
            start += size
        self.size = start

    def pack(self, values: Mapping[str, Tensor], dtype: torch.dtype) -> Tensor:
        return torch.cat([values[name].reshape(-1).to(dtype) for name, _ in self.fields])

    def unpack(self, flat: np.ndarray) -> dict[str, np.ndarray]:
        return {name: flat[s] for name, s in self.slices.items()}

    @classmethod
    def for_step(cls, obs_size: int, reward_terms: Sequence[str]) -> Packing:
        """The layout of `step_values`: obs, reward, the weighted reward terms, distance, is_success,
        terminated, truncated, goal (2), hand (4)."""
        return cls([("obs", obs_size), ("reward", 1), *((k, 1) for k in reward_terms), ("distance", 1),
                    ("is_success", 1), ("terminated", 1), ("truncated", 1), ("goal", 2), ("hand", 4)])

    @classmethod
    def for_reset(cls, obs_size: int) -> Packing:
        """obs, distance, goal (2), hand (4): what a reset returns."""
        return cls([("obs", obs_size), ("distance", 1), ("goal", 2), ("hand", 4)])


def step_values(obs: Tensor, reward: Tensor, terminated: Tensor, truncated: Tensor, info: dict[str, Any]
                ) -> dict[str, Tensor]:
    """Lane 0 of one functional step's outputs, by the names of `Packing.for_step`."""
    return {"obs": obs[0], "reward": reward[:1], **{k: v[:1] for k, v in info["reward_terms"].items()},
            "distance": info["distance"][:1], "is_success": info["is_success"][:1], "terminated": terminated[:1],
            "truncated": truncated[:1], "goal": info["goal"][0], "hand": info["hand"][0]}


# ------------------------------------------------------------------------------------------ batched lanes
class BatchCore:
    """A functional env of batch `num_envs` with its current state: what the batched faces share (action
    checks, batched reset, per-lane restarts, frames)."""

    def __init__(self, env: Env) -> None:
        self.env, self.num_envs = env, env.batch_size
        self.state: EnvState | None = None
        self.shape = (self.num_envs, env.action_size)
        self._renderer = None

    @classmethod
    def for_face(cls, env: str | Env, num_envs: int | None, kwargs: dict[str, Any], face_kwargs: Sequence[str],
                 **options: Any) -> BatchCore:
        """The lanes of a batched face: `num_envs` checked, the env from `face_env(env, num_envs, ...)`."""
        if num_envs is not None and (not isinstance(num_envs, int) or isinstance(num_envs, bool) or num_envs < 1):
            raise ValueError(f"num_envs must be a positive int, got {num_envs!r}")
        return cls(face_env(env, num_envs, kwargs, face_kwargs, **options))

    def excitation(self, actions: Any) -> Tensor:
        """Checked actions (N, M) in [-1, 1] (numpy or torch) -> excitations (N, M) on the env's device."""
        env = self.env
        if isinstance(actions, Tensor):
            if actions.is_complex() or actions.dtype == torch.bool or not (actions.is_floating_point()
                                                                            or actions.dtype.is_signed
                                                                            or actions.dtype == torch.uint8):
                raise TypeError(f"actions must be real-valued (float32 preferred), got dtype {actions.dtype}")
            x = actions.detach().to(device=env.device, dtype=torch.float32)
        else:
            a = np.asarray(actions)
            if a.dtype.kind not in "fiu":
                raise TypeError(f"actions must be a real-valued array (float32 preferred) of shape {self.shape}, "
                                f"got dtype {a.dtype}")
            x = torch.as_tensor(a.astype(np.float32, copy=False), device=env.device)
        if tuple(x.shape) != self.shape:
            raise ValueError(f"actions must have shape {self.shape} (num_envs, n_muscles), got {tuple(x.shape)}")
        if not bool(torch.isfinite(x).all()):
            raise ValueError("actions must be finite (got NaN or inf)")
        return action_to_excitation(x)

    def reset(self, seed: int | None, options: dict[str, Any] | None) -> Tensor:
        with torch.no_grad():
            self.state, obs = self.env.reset(seed=seed, options=options)
        return obs

    def step(self, excitation: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """Advance every lane under checked `excitation` (N, M): (obs, reward, terminated, truncated, info)."""
        env = self.env
        with torch.no_grad():
            self.state, obs, reward, terminated, truncated, info = env.transition(
                self.state, excitation, env.draw_noise(self.num_envs))
        return obs, reward, terminated, truncated, info

    def restart(self, mask: Tensor, obs: Tensor | None, every: bool) -> Tensor:
        """Restart the lanes where `mask` (every lane when `every`) with fresh draws; their observations."""
        env = self.env
        with torch.no_grad():
            if every:
                self.state, obs = env.reset()
                return obs
            self.state = env.reset_where(self.state, mask)
            return torch.where(mask[:, None], env.observe(self.state), obs)

    def frames(self, width: int) -> list[np.ndarray]:
        """One rgb_array frame per lane of the current state (the renderer is made on first use, and again
        for another `width`)."""
        from mn_gym.render import Renderer, lane_scene

        env, state = self.env, self.state
        if self._renderer is not None and self._renderer.size[1] != width:
            self._renderer.close()
            self._renderer = None
        if self._renderer is None:
            self._renderer = Renderer(env.effector, env.task.success_radius, width=width)
        with torch.no_grad():
            where = env.where(state)
            t = state.t.cpu().tolist()
            return [self._renderer.frame(lane_scene(env.effector, state, where["goal"], where["target"], i), t[i])
                    for i in range(self.num_envs)]

    def close(self) -> None:
        """Drop the state and the renderer."""
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        self.state = None

    def where_info(self) -> dict[str, Tensor]:
        """Distance, goal and hand of the current state (as after a reset)."""
        with torch.no_grad():
            where = self.env.where(self.state)
        return {k: where[k] for k in ("distance", "goal", "hand")}
