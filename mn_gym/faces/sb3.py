"""The stable-baselines3 face: `MnGymVecEnv`, an SB3 `VecEnv` over one batched functional env (no DummyVecEnv).

    from stable_baselines3 import PPO
    from stable_baselines3.common.vec_env import VecMonitor, VecNormalize
    venv = VecNormalize(VecMonitor(MnGymVecEnv("ArmReach-v0", num_envs=16)))
    PPO("MlpPolicy", venv).learn(100_000)

SB3 conventions: `reset()` returns observations only (reset infos in `reset_infos`); the seed given to
`seed(s)` and the options given to `set_options` apply at the next `reset()`; episodes restart within the step
that ends them, the last observation in `infos[i]["terminal_observation"]`, with `infos[i]["TimeLimit.truncated"]`
and `infos[i]["is_success"]` (so SB3 logs rollout/success_rate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from gymnasium.error import ResetNeeded
from stable_baselines3.common.vec_env import VecEnv
from stable_baselines3.common.vec_env.base_vec_env import VecEnvIndices, VecEnvObs, VecEnvStepReturn

from mn_gym.faces.common import BatchCore, action_box, observation_box
from mn_gym.functional import Env

__all__ = ["MnGymVecEnv"]


class MnGymVecEnv(VecEnv):
    """`num_envs` episodes of a catalogue env for stable-baselines3, batched in one functional env.

    Spaces, physics, rewards and the action map ((a + 1) / 2 -> excitation) are those of `MnGymEnv`.
    Each step's `infos[i]` holds `reward_<term>` (weighted terms), `distance` and `is_success`; at an
    episode end also `terminal_observation` and `TimeLimit.truncated`.

    Seeding: `seed(s)` stores [s, s + 1, ...] (SB3's default); the next `reset()` reseeds the batch's one
    torch generator with s. With `num_envs=1` the episodes equal those of `MnGymEnv` reset with seed s.
    Options (`set_options`) go to the batched reset; they must be the same for every env (e.g. a `joint_state`
    of shape (num_envs, dof)).

    Args: as `MnGymVectorEnv` (`env`: an id or a functional Env, `num_envs`, `device`, `compile`, `max_episode_steps`,
    `render_mode` ("rgb_array"), `render_width`, catalogue `**kwargs`).
    """

    FACE_KWARGS = ("num_envs", "device", "compile", "max_episode_steps", "render_mode", "render_width")

    def __init__(self, env: str | Env, num_envs: int | None = None, *, device: torch.device | str | None = None,
                 compile: bool = False, max_episode_steps: int | None = None, render_mode: str | None = None,
                 render_width: int = 400, **kwargs: Any) -> None:
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.core = BatchCore.for_face(env, num_envs, kwargs, self.FACE_KWARGS, device=device, compile=compile,
                                       max_episode_steps=max_episode_steps)
        env, num_envs = self.core.env, self.core.num_envs
        self.env_id = env.env_id
        self.render_mode, self.render_width = render_mode, render_width  # VecEnv.__init__ reads render_mode
        self.max_episode_steps = env.max_steps
        self.muscle_names = env.effector.muscle_names
        self._actions: Any = None
        self._closed = False
        super().__init__(num_envs, observation_box(env.obs_size), action_box(env.action_size))

    @property
    def functional(self) -> Env:
        """The batched functional env behind this face."""
        return self.core.env

    # ------------------------------------------------------------------------------------------- VecEnv
    def reset(self) -> VecEnvObs:
        if self._closed:
            raise RuntimeError("the VecEnv is closed")
        seed = self._seeds[0]
        options = self._options[0] if self._options else {}
        if any(o != options for o in self._options[1:]):
            raise ValueError("MnGymVecEnv resets its envs as one batch: set_options must give every env the same "
                             "options (batched values, e.g. joint_state of shape (num_envs, dof))")
        obs = self.core.reset(None if seed is None else int(seed), options or None)
        self.reset_infos = self._lane_infos(self.core.where_info(), ("distance",))
        self._reset_seeds()
        self._reset_options()
        return obs.cpu().numpy()

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        if self._closed:
            raise RuntimeError("the VecEnv is closed")
        core = self.core
        if core.state is None:
            raise ResetNeeded("Cannot call step() before reset(): call venv.reset() first")
        excitation = core.excitation(self._actions)
        with torch.no_grad():
            obs, reward, terminated, truncated, finfo = core.step(excitation)
            done = terminated | truncated
            values = {**finfo["reward_terms"], "distance": finfo["distance"]}
            infos = self._lane_infos(values, tuple(values), finfo["is_success"])
            obs_np = obs.cpu().numpy()
            done_np = done.cpu().numpy()
            if done_np.any():
                term_np, trunc_np = terminated.cpu().numpy(), truncated.cpu().numpy()
                for i in np.flatnonzero(done_np):
                    infos[i]["terminal_observation"] = obs_np[i]
                    infos[i]["TimeLimit.truncated"] = bool(trunc_np[i] and not term_np[i])
                obs_np = core.restart(done, obs, every=bool(done_np.all())).cpu().numpy()
        return obs_np, reward.cpu().numpy(), done_np, infos

    def close(self) -> None:
        self.core.close()
        self._closed = True

    def get_images(self) -> Sequence[np.ndarray | None]:
        if self.render_mode != "rgb_array":
            return [None] * self.num_envs
        if self.core.state is None:
            raise ResetNeeded("Cannot render before reset(): call venv.reset() first")
        return self.core.frames(self.render_width)

    # Attributes and methods: the envs are lanes of one batch, so each lane answers with the batch's value.
    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        value = getattr(self, attr_name)
        return [value for _ in self._get_indices(indices)]

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        if len(list(self._get_indices(indices))) != self.num_envs:
            raise ValueError("MnGymVecEnv lanes share their attributes: set_attr applies to every env at once")
        setattr(self, attr_name, value)

    def env_method(self, method_name: str, *method_args: Any, indices: VecEnvIndices = None,
                   **method_kwargs: Any) -> list[Any]:
        result = getattr(self, method_name)(*method_args, **method_kwargs)
        return [result for _ in self._get_indices(indices)]

    def env_is_wrapped(self, wrapper_class: type, indices: VecEnvIndices = None) -> list[bool]:
        return [False for _ in self._get_indices(indices)]

    # ------------------------------------------------------------------------------------------ helpers
    def _lane_infos(self, values: dict[str, torch.Tensor], keys: tuple[str, ...],
                    success: torch.Tensor | None = None) -> list[dict[str, Any]]:
        columns = [values[k].cpu().tolist() for k in keys]
        if success is not None:
            keys, columns = (*keys, "is_success"), [*columns, success.cpu().tolist()]
        return [dict(zip(keys, row, strict=True)) for row in zip(*columns, strict=True)]

    def __repr__(self) -> str:
        return f"MnGymVecEnv({self.env_id!r}, num_envs={self.num_envs}, device={self.core.env.device})"
