"""The batched Gymnasium face: `MnGymVectorEnv`, one batched functional env for all `num_envs` episodes.

    envs = gymnasium.make_vec("ArmReach-v0", num_envs=1024)                 # vector_entry_point: this class
    envs = gymnasium.make_vec("ArmReach-v0", num_envs=8, autoreset_mode="SameStep")   # or "Disabled"
    envs = MnGymVectorEnv("ArmReach-v0", 4096, device="cuda", as_torch=True)  # torch in, torch out

It keeps Gymnasium 1.x's `VectorEnv` contract as `SyncVectorEnv` does: the three autoreset modes (announced in
`metadata["autoreset_mode"]`), `reset(options={"reset_mask": mask})`, `final_obs` / `final_info` in SAME_STEP,
`call` / `get_attr` / `set_attr` and `render`. There are no sub-envs: the lanes of one batch answer for them.

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
from mn_gym.functional import Env, select

__all__ = ["MnGymVectorEnv"]

# what a sub-env's attribute is called on the vector env (get_attr / call answer as a sub-env would)
_LANE_NAMES = {"observation_space": "single_observation_space", "action_space": "single_action_space"}


def _seed_of(seed: int | list[int] | tuple[int, ...] | None) -> int | None:
    if seed is None:
        return None
    if isinstance(seed, (list, tuple)):
        if not seed:
            raise ValueError("seed list is empty")
        seed = seed[0]
    return int(seed)


def _autoreset_mode(mode: AutoresetMode | str) -> AutoresetMode:
    """An `AutoresetMode` or its value ("NextStep", "SameStep", "Disabled"), as Gymnasium's vector envs take it."""
    if isinstance(mode, AutoresetMode):
        return mode
    try:
        return AutoresetMode(mode)
    except ValueError:
        raise ValueError(f"autoreset_mode must be an AutoresetMode or one of {[m.value for m in AutoresetMode]}, "
                         f"got {mode!r}") from None


def _lanes(mask: Tensor, x: Tensor) -> Tensor:
    """`mask` (N,) shaped to broadcast over `x` (N, ...)."""
    return mask.reshape(-1, *[1] * (x.dim() - 1))


class MnGymVectorEnv(VectorEnv):
    """`num_envs` episodes of a catalogue env as one batched functional env (CPU or CUDA).

    Same spaces, physics, rewards and info as `MnGymEnv` (see its docstring for the tables), batched:
    observations (N, obs_size) float32, actions (N, n_muscles) in [-1, 1] mapped to excitations (a + 1) / 2,
    rewards (N,) float32, terminated / truncated (N,) bool, each env with its own clock (truncation per env).

    Autoreset (`autoreset_mode`, in `metadata["autoreset_mode"]` and `self.autoreset_mode`):

    | Mode                 | An env whose episode ended (terminated or truncated) ...                           |
    |----------------------|------------------------------------------------------------------------------------|
    | NEXT_STEP (default)  | restarts on the next step, which ignores its action and returns its first          |
    |                      | observation with reward 0, terminated = truncated = False (every env ended: one    |
    |                      | batched reset)                                                                     |
    | SAME_STEP            | restarts within the step that ended it: the step returns the new episode's first   |
    |                      | observation with that step's reward / terminated / truncated; `info["final_obs"]`  |
    |                      | and `info["final_info"]` (masks `_final_obs`, `_final_info`) hold the ended        |
    |                      | episode's last observation and step info                                           |
    | DISABLED             | waits for `reset(options={"reset_mask": mask})`; stepping it first raises          |
    |                      | `ResetNeeded` (SyncVectorEnv asserts)                                              |

    As in `SyncVectorEnv`, `final_obs` is an object array (N,) holding each ended env's observation (None
    elsewhere) and `final_info` a dict of batched arrays with `_key` masks; with `as_torch=True`, `final_obs` is
    a tensor (N, obs_size) (rows outside `_final_obs`: that env's returned observation) and every mask a bool
    tensor. Restarts draw from the env's generator at the same point in every mode (the ended step's draws,
    then the restart's, then the next step's), so one seed and the applied actions give the same episodes in
    every mode; NEXT_STEP only spends one more `step()` call per restart.

    `reset(options={"reset_mask": mask})` (any mode, as in Gymnasium; mask: bool (N,), numpy or torch, at least
    one True) restarts the masked envs alone (with `seed`: reseeded first) and returns every env's observation
    (the others' unchanged) with reset info for the masked ones; other reset options apply to whole-batch resets
    only.

    `info` is a dict of batched arrays with `"_key"` masks: `reward_<term>` (the weighted terms), `distance`,
    `is_success`, `goal` (N, 2), `hand` (N, 4); envs that restart in a step carry reset-time `distance` /
    `goal` / `hand` and are masked out of `reward_<term>` and `is_success`.

    Sub-env access (the lanes share one env): `call("render")` gives the per-env frames (None each without a
    render_mode); `get_attr(name)` / `call(name, *args)` give the value of `name` on this vector env, else on its
    functional env (`observation_space` / `action_space`: a lane's, as a sub-env's), or the result of calling it
    once, repeated `num_envs` times; `set_attr` sets `render_mode` / `render_width` (one value for all envs).

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
        autoreset_mode: an `AutoresetMode` or its value "NextStep" (default), "SameStep" or "Disabled".
        **kwargs: catalogue settings of the id, as for `gymnasium.make`.

    Seeding: one torch generator serves the batch; `reset(seed=s)` reseeds it (a list of seeds: its first
    entry). With `num_envs=1` the episodes equal those of `MnGymEnv` seeded alike; lane i of a larger batch
    is not the episode of a single env seeded s + i.
    """

    metadata = {"autoreset_mode": AutoresetMode.NEXT_STEP, "render_modes": ["rgb_array"],
                "render_fps": MAX_RENDER_FPS}
    FACE_KWARGS = ("num_envs", "device", "as_torch", "compile", "max_episode_steps", "render_mode", "render_width",
                   "autoreset_mode")
    SETTABLE = ("render_mode", "render_width")

    def __init__(self, env: str | Env, num_envs: int | None = None, *, device: torch.device | str | None = None,
                 as_torch: bool = False, compile: bool = False, max_episode_steps: int | None = None,
                 render_mode: str | None = None, render_width: int = 400,
                 autoreset_mode: AutoresetMode | str = AutoresetMode.NEXT_STEP, **kwargs: Any) -> None:
        self._check_render_mode(render_mode)
        if not isinstance(as_torch, bool):
            raise TypeError(f"as_torch must be a bool, got {as_torch!r}")
        self.autoreset_mode = _autoreset_mode(autoreset_mode)
        self.core = BatchCore.for_face(env, num_envs, kwargs, self.FACE_KWARGS, device=device, compile=compile,
                                       max_episode_steps=max_episode_steps)
        env, num_envs = self.core.env, self.core.num_envs
        self.env_id = env.env_id
        self.num_envs = num_envs
        self.as_torch = as_torch
        self.render_mode, self.render_width = render_mode, render_width
        self.metadata = {**self.metadata, "render_fps": render_fps(env), "autoreset_mode": self.autoreset_mode}
        self.single_observation_space = observation_box(env.obs_size)
        self.single_action_space = action_box(env.action_size)
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.max_episode_steps = env.max_steps
        self._obs: Tensor | None = None  # the last observations returned
        self._ended: Tensor | None = None  # (N,) envs whose episode ended and that have not restarted yet
        self._any_ended = self._all_ended = False

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
        mask = self._reset_mask(options)
        core = self.core
        if mask is None:
            obs = core.reset(seed, options)
            self._ended = torch.zeros(self.num_envs, dtype=torch.bool, device=self.device)
            info = self._out_info(core.where_info())
        else:
            if seed is not None:
                core.env.generator.manual_seed(seed)
            obs = core.restart(mask, self._obs, every=bool(mask.all()))
            self._ended = self._ended & ~mask
            info = self._out_info(core.where_info(), mask)
        self._set_ended(self._ended)
        self._obs = obs
        return self._out(obs), info

    def step(self, actions: Any) -> tuple[Any, Any, Any, Any, dict[str, Any]]:
        if self.closed:
            raise RuntimeError("the vector env is closed")
        if self.core.state is None:
            raise ResetNeeded("Cannot call step() before reset(): call envs.reset() first")
        core, env, ended = self.core, self.core.env, self._ended
        excitation = core.excitation(actions)
        if self._any_ended and self.autoreset_mode == AutoresetMode.DISABLED:
            lanes = torch.nonzero(ended).flatten().tolist()
            raise ResetNeeded(f"envs {lanes} ended (autoreset_mode DISABLED): restart them with "
                              "envs.reset(options={'reset_mask': mask}) before stepping")
        with torch.no_grad():
            if self._all_ended:  # NEXT_STEP, every env restarts: one batched reset, the actions are ignored
                obs = core.restart(ended, None, every=True)
                reward = torch.zeros(self.num_envs, dtype=env.dtype, device=env.device)
                terminated, truncated = torch.zeros_like(ended), torch.zeros_like(ended)
                info = self._out_info(core.where_info())
            else:
                obs, reward, terminated, truncated, info = self._step(excitation)
        if self.autoreset_mode != AutoresetMode.SAME_STEP:  # SAME_STEP restarted them already
            self._set_ended(terminated | truncated)
        self._obs = obs
        if self.as_torch:
            return obs, reward, terminated, truncated, info
        return (obs.cpu().numpy(), reward.cpu().numpy(), terminated.cpu().numpy(), truncated.cpu().numpy(), info)

    def render(self) -> tuple[np.ndarray, ...] | None:
        if self.render_mode is None:
            return None
        if self.core.state is None:
            raise ResetNeeded("Cannot call render() before reset(): call envs.reset() first")
        return tuple(self.core.frames(self.render_width))

    # ------------------------------------------------------------------------------------ sub-env access
    def call(self, name: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
        """One result per env, as `SyncVectorEnv.call`: `"render"` the per-env frames (None each without a
        render_mode); any other name the value of `get_attr(name)`, called with `args` / `kwargs` once on the
        whole batch when callable, repeated `num_envs` times."""
        if name == "render":
            frames = self.render(*args, **kwargs)
            return (None,) * self.num_envs if frames is None else frames
        value = self._attr(name)
        if callable(value):
            value = value(*args, **kwargs)
        return (value,) * self.num_envs

    def get_attr(self, name: str) -> tuple[Any, ...]:
        """`name`'s value once per env: of this vector env, else of its functional env; `observation_space` /
        `action_space` are a lane's (`single_*`), as a sub-env's. Unknown names raise AttributeError."""
        return (self._attr(name),) * self.num_envs

    def set_attr(self, name: str, values: list[Any] | tuple[Any, ...] | Any) -> None:
        """Set a face setting (`SETTABLE`) for every env: one value, or a list / tuple of `num_envs` values that
        must be equal (the envs are lanes of one batch). Anything else raises: the functional env is immutable,
        so its settings take a new vector env."""
        if name not in self.SETTABLE:
            self._attr(name)  # an unknown name raises AttributeError
            raise AttributeError(f"{name!r} cannot be set on MnGymVectorEnv (settable: {list(self.SETTABLE)}); the "
                                 "functional env is immutable: build a new vector env, e.g. gymnasium.make_vec("
                                 f"id, num_envs, {name}=...) or MnGymVectorEnv(envs.functional.replace(...))")
        if isinstance(values, (list, tuple)):
            if len(values) != self.num_envs:
                raise ValueError("Values must be a list or tuple with length equal to the number of environments. "
                                 f"Got `{len(values)}` values for {self.num_envs} environments.")
            if any(v != values[0] for v in values[1:]):
                raise ValueError(f"{name!r} cannot differ per env: the {self.num_envs} envs are lanes of one "
                                 f"batched env, got {list(values)}")
            values = values[0]
        if name == "render_mode":
            self._check_render_mode(values)
        setattr(self, name, values)

    def close_extras(self, **kwargs: Any) -> None:
        self.core.close()

    # ------------------------------------------------------------------------------------------ helpers
    def _step(self, excitation: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """A step of every env not restarting whole-batch: envs ended before (NEXT_STEP) restart first, the others
        advance; envs ending now restart after the step in SAME_STEP. (obs, reward, terminated, truncated, info)."""
        core, restarted = self.core, (self._ended if self._any_ended else None)
        if restarted is not None:  # the restart's draws come before this step's, as in SAME_STEP and DISABLED
            first_obs = core.restart(restarted, self._obs, every=False)
            fresh = core.state
        obs, reward, terminated, truncated, finfo = core.step(excitation)
        if restarted is not None:
            core.state = select(restarted, fresh, core.state)
            obs = torch.where(restarted[:, None], first_obs, obs)
            reward = torch.where(restarted, torch.zeros_like(reward), reward)
            terminated, truncated = terminated & ~restarted, truncated & ~restarted
        common = {"distance": finfo["distance"], "goal": finfo["goal"], "hand": finfo["hand"]}
        step_keys = {**finfo["reward_terms"], "is_success": finfo["is_success"]}
        final: dict[str, Any] = {}
        if self.autoreset_mode == AutoresetMode.SAME_STEP:
            done = terminated | truncated
            if bool(done.any()):
                every = bool(done.all())
                final = self._final(obs, {**step_keys, **common}, done)
                obs = core.restart(done, obs, every=every)
                restarted, step_keys = done, {} if every else step_keys  # as SyncVectorEnv: no key nobody has
        if restarted is not None:
            where = core.where_info()
            common = {k: torch.where(_lanes(restarted, v), where[k], v) for k, v in common.items()}
        info = {**final, **self._out_info(common), **self._out_info(step_keys, None if restarted is None
                                                                    else ~restarted)}
        return obs, reward, terminated, truncated, info

    def _final(self, obs: Tensor, values: dict[str, Tensor], done: Tensor) -> dict[str, Any]:
        """SAME_STEP's `final_obs` / `final_info` (with their masks) for the envs where `done`."""
        if self.as_torch:
            final_obs: Any = obs
        else:
            obs_np = obs.cpu().numpy()
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(done.cpu().numpy()):
                final_obs[i] = obs_np[i]
        return {"final_obs": final_obs, "_final_obs": self._out(done), "final_info": self._out_info(values, done),
                "_final_info": self._out(done)}

    def _reset_mask(self, options: dict[str, Any] | None) -> Tensor | None:
        """`options["reset_mask"]` checked, as a bool tensor (N,) on the env's device (None without one)."""
        if options is None or "reset_mask" not in options:
            return None
        mask, n = options["reset_mask"], self.num_envs
        others = sorted(set(options) - {"reset_mask"})
        if others:
            raise ValueError(f"reset options {others} apply to whole-batch resets only, not with `reset_mask`")
        if isinstance(mask, Tensor):
            is_bool = mask.dtype == torch.bool
        elif isinstance(mask, np.ndarray):
            is_bool = mask.dtype == np.bool_
        else:
            raise TypeError(f"`options['reset_mask']` must be a numpy array or torch tensor, got {type(mask)}")
        if tuple(mask.shape) != (n,):
            raise ValueError(f"`options['reset_mask']` must have shape `({n},)`, got {tuple(mask.shape)}")
        if not is_bool:
            raise TypeError(f"`options['reset_mask']` must have a bool dtype, got {mask.dtype}")
        if not bool(mask.any()):
            raise ValueError("`options['reset_mask']` must contain a boolean array with at least one True value, got "
                             f"reset_mask={mask}")
        if self.core.state is None:
            raise ResetNeeded("reset(options={'reset_mask': ...}) restarts envs of a running batch: call "
                              "envs.reset() first")
        return torch.as_tensor(mask, device=self.device)

    def _set_ended(self, ended: Tensor) -> None:
        self._ended = ended
        self._any_ended = bool(ended.any())
        self._all_ended = self._any_ended and bool(ended.all())

    def _attr(self, name: str) -> Any:
        """The value of `name` for one env: on this vector env, else on its functional env."""
        name = _LANE_NAMES.get(name, name)
        for owner in (self, self.core.env):
            try:
                return getattr(owner, name)
            except AttributeError:
                pass
        names = sorted(k for k in {*vars(self), "functional", "device", "render_mode", "spec"} if k[0] != "_")
        raise AttributeError(f"{name!r}: neither MnGymVectorEnv nor its functional env has this attribute; "
                             f"valid names include {names} and the functional env's (e.g. 'dt', 'obs_size')")

    def _check_render_mode(self, render_mode: str | None) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got "
                             f"{render_mode!r}")

    def _out(self, x: Tensor) -> Any:
        return x if self.as_torch else x.cpu().numpy()

    def _out_info(self, values: dict[str, Tensor], mask: Tensor | None = None) -> dict[str, Any]:
        """Batched info: each key with its `_key` mask (`mask`, or every env; values outside it are zeros)."""
        info: dict[str, Any] = {}
        if mask is None:
            mask = torch.ones(self.num_envs, dtype=torch.bool, device=self.device)
        else:
            values = {k: torch.where(_lanes(mask, v), v, torch.zeros_like(v)) for k, v in values.items()}
        for k, v in values.items():
            info[k], info[f"_{k}"] = self._out(v), self._out(mask)
        return info

    def __repr__(self) -> str:
        return f"MnGymVectorEnv({self.env_id!r}, num_envs={self.num_envs}, device={self.device})"
