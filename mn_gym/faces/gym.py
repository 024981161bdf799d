"""The single-episode Gymnasium face: `MnGymEnv`, a `gymnasium.Env` over the functional env at batch 1."""

from __future__ import annotations

from collections import deque
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium.error import ResetNeeded
from torch import Tensor

from mn_gym.compilation import FlatStep
from mn_gym.faces.common import (
    MAX_RENDER_FPS,
    Packing,
    action_box,
    action_to_excitation,
    check_action,
    face_env,
    observation_box,
    render_fps,
    step_values,
)
from mn_gym.functional import Env, EnvState

__all__ = ["MnGymEnv"]


class MnGymEnv(gymnasium.Env):
    """
    ## Description

    A planar musculoskeletal effector (a point mass or the two-link arm26, moved by Hill-type or linear
    muscles) performs a motor task: reach a random target, centre-out reaches after a go cue, reaching in a
    curl force field, holding a posture against force pulses, or tracking a moving target. One episode at a
    time on the CPU; the physics, sensing and reward are those of the differentiable functional env
    (`mn_gym.make(id)`), which this class only adapts (numpy in, numpy out). Ids: `mn_gym.list_ids()`.

    ## Action Space

    The action is a `ndarray` with shape `(n_muscles,)`, dtype float32, in `[-1, 1]`: one command per muscle,
    mapped to a neural excitation `e = (a + 1) / 2` in `[0, 1]` (actions outside `[-1, 1]` are clipped).

    | Action | Excitation | Meaning                                  |
    |--------|------------|------------------------------------------|
    | -1     | 0          | muscle at rest (its minimum activation)  |
    | 0      | 0.5        | half excitation                          |
    | 1      | 1          | full excitation                          |

    Muscles: `env.unwrapped.muscle_names` (arm26: pectoralis, deltoid, brachioradialis, triceps lateral,
    biceps, triceps long; pointmass24: four muscles pulling towards the corners).

    ## Observation Space

    The observation is a `ndarray` of float32, shape `(obs_size,)`, in principle unbounded (Gaussian noise,
    velocities); its `Box` bounds are +-3.4e38, float32's largest finite value, which hold every finite
    observation without the checker's warning about infinite bounds. Layout:

    | Term             | Size   | Observation                                                 | Unit   |
    |------------------|--------|-------------------------------------------------------------|--------|
    | `target`         | 2      | target x, y (tracking: the moving target now; not sequences) | m     |
    | `targets`        | 2 n    | sequences only: the n targets' x, y, in order               | m      |
    | `go_cue`         | 1      | go-cue tasks (centre-out, curl field, delayed, sequence): 0, 1 | -   |
    | `hand`           | 2      | hand x, y, delayed by `vision_delay`                        | m      |
    | `fibre_length`   | M      | fibre lengths / optimal length, delayed by `proprioception_delay` | - |
    | `fibre_velocity` | M      | fibre velocities / max velocity, same delay                 | -      |
    | `spindle_ia`     | M      | spindle Ia firing / 100 imp/s, same delay (note 1)          | -      |
    | `spindle_ii`     | M      | spindle II firing / 100 imp/s, same delay (note 1)          | -      |
    | `gto_ib`         | M      | Golgi tendon organ Ib firing / 100 imp/s, same delay (note 1) | -    |
    | `past_actions`   | k * M  | the last `action_frame_stacking` (k) excitations, oldest first | -   |

    Note 1: `proprioception="spindle"` replaces the two fibre terms with `spindle_ia`, `spindle_ii`;
    `"spindle_gto"` with those and `gto_ib` (`mn_gym.afferents`; `ArmReachSpindle-v0`).

    The terms are the functional env's declared `observation_terms` (a task may declare its own), in order;
    `env.unwrapped.observation_slices()` gives each term's columns.

    Sensory and observation noise (additive Gaussian, `*_noise` standard deviations) come from the env's
    seeded torch generator.

    ## Rewards

    reward = -sum_i w_i term_i per step, with terms position (hand-goal distance, m), effort (mean squared
    excitation), velocity (hand speed where the task wants the hand still) and jerk (mean squared change of
    excitation). Defaults w = 1, 1e-3, 0 (0.1 for centre-out and posture), 0; `weights={...}` overrides. The
    BPTT loss of the functional env is the same sum. `info` holds each weighted term `reward_<term>` (they add
    up to the reward), `distance` (m), `is_success` (distance <= `success_radius`), `goal` (2,) and `hand`
    (x, y, vx, vy).

    ## Starting State

    Drawn by the task from the env's torch generator: reach tasks start at a random posture (uniform in
    joint space) with a random target in the workspace; centre-out starts at the centre with one of 8
    targets. `reset(options=...)` takes `joint_state` ((dof,) or (2 dof,)), `target_index` (centre-out) or
    `task_state`.

    ## Episode End

    1. Termination: never (the tasks have no terminal states).
    2. Truncation: after `max_episode_steps` steps = round(episode_duration / dt) (100 for most ids: 1 s at
       10 ms); `gymnasium.make` registers the same number for its `TimeLimit`.

    ## Arguments

    `MnGymEnv(env, ...)` takes a catalogue id (what `gymnasium.make(id, **kwargs)` passes) or a functional env of
    batch 1 (`mn_gym.make(id)`, or any `mn_gym.Env` in float32). With an id, every catalogue setting of the id is
    accepted (`mn_gym.catalogue.entry(id).valid_kwargs()`; an unknown name raises and lists them): effector
    settings (`muscle`, `integrator`, `dt`, `n_substeps`, `damping`, `muscle_params`, ...), task settings
    (`success_radius`, `weights`, `k`, ...), sensing (`proprioception_delay`, `vision_delay`, `*_noise`,
    `action_frame_stacking`, `proprioception`, `deterministic`), `episode_duration` and `seed`; and the face's own:

    | Argument            | Default | Meaning                                                        |
    |---------------------|---------|----------------------------------------------------------------|
    | `render_mode`       | None    | "rgb_array" (uint8 (H, W, 3) frames, headless) or "human"      |
    | `render_width`      | 400     | frame width in pixels                                          |
    | `device`            | None    | torch device of the functional env (CPU by default)            |
    | `compile`           | False   | one ahead-of-time compiled kernel per step (`mn_gym.compilation`;|
    |                     |         | ~8x faster; compiles once per kind, ~30 s, cached on disk)     |
    | `max_episode_steps` | None    | cut episodes at min(this, round(episode_duration / dt)) steps  |

    `reset(seed=s)` reseeds both `np_random` and the functional env's torch generator (seed=None keeps
    both streams going), so one seed gives one episode in every face: this env, lane 0 of `MnGymVectorEnv`
    and of `mn_gym.faces.sb3.MnGymVecEnv` with one env, and `mn_gym.make(id).reset(seed=s)`.

    ## Version History

    * v0: initial release.
    """

    metadata = {"render_modes": ["human", "rgb_array"], "render_fps": MAX_RENDER_FPS}
    FACE_KWARGS = ("render_mode", "render_width", "device", "compile", "max_episode_steps")

    def __init__(self, env: str | Env, render_mode: str | None = None, *, render_width: int = 400,
                 device: torch.device | str | None = None, compile: bool = False,
                 max_episode_steps: int | None = None, **kwargs: Any) -> None:
        if render_mode is not None and render_mode not in self.metadata["render_modes"]:
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got "
                             f"{render_mode!r}")
        if not isinstance(compile, bool):
            raise TypeError(f"compile must be a bool, got {compile!r}")
        self._source, self._kwargs = env, dict(kwargs)  # what the env is rebuilt from when unpickled
        self._face = {"render_mode": render_mode, "render_width": render_width, "device": device,
                      "compile": compile, "max_episode_steps": max_episode_steps}
        self._env = env = self._build()
        self._env_id = env.env_id
        self.render_mode = render_mode
        self.metadata = {**self.metadata, "render_fps": render_fps(env)}
        self.observation_space = observation_box(env.obs_size)
        self.action_space = action_box(env.action_size)
        self.muscle_names = env.effector.muscle_names
        self.max_episode_steps = env.max_steps
        self._reset_packing = Packing.for_reset(env.obs_size)
        self._packing: Packing | None = None  # the step outputs' layout, known from the first step
        self._terms: list[str] = []  # its weighted reward terms
        self._state: EnvState | None = None
        self._flat: Tensor | None = None  # compile=True: the state packed for the compiled step
        self._flat_step: FlatStep | None = None
        self._closed = False
        self._renderer = self._window = None
        self._trail: deque = deque(maxlen=50)

    # ----------------------------------------------------------------------------------------------- api
    @property
    def functional(self) -> Env:
        """The functional env (batch 1) behind this face."""
        return self._env

    @property
    def state(self) -> EnvState | None:
        """The current functional `EnvState` (batch 1), None before the first reset."""
        if self._state is None and self._flat is not None:
            self._state = self._flat_step.unpack(self._flat)
        return self._state

    def observation_slices(self) -> dict[str, slice]:
        """Columns of each named observation term (see the Observation Space table)."""
        return self._env.observation_slices()

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        self._check_open()
        if seed is not None:
            seed = int(seed)
        with torch.no_grad():
            self._state, obs = self._env.reset(seed=seed, options=self._batch_options(options))
            if self._face["compile"]:
                if self._flat_step is None:
                    self._flat_step = self._build_flat_step(self._state)
                self._flat = self._flat_step.pack(self._state)
            where = self._env.where(self._state)
            values = {"obs": obs[0], "distance": where["distance"], "goal": where["goal"][0],
                      "hand": where["hand"][0]}
            out = self._reset_packing.unpack(self._reset_packing.pack(values, obs.dtype).cpu().numpy())
        info = {"distance": float(out["distance"][0]), "goal": out["goal"].copy(), "hand": out["hand"].copy()}
        self._trail.clear()
        self._trail.append(info["hand"][:2])
        if self.render_mode == "human":
            self.render()
        return out["obs"].copy(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        self._check_open()
        if self._state is None and self._flat is None:
            raise ResetNeeded("Cannot call step() before reset(): call env.reset() first")
        a = torch.from_numpy(check_action(action, self.action_space.shape)).to(self._env.device)
        env = self._env
        with torch.no_grad():
            if self._flat_step is not None:
                self._flat, packed = self._flat_step.step(self._flat, a, env.draw_noise(1))
                self._state = None  # unpacked on demand (`state`, render)
            else:
                self._state, obs, reward, terminated, truncated, info = env.transition(
                    self._state, action_to_excitation(a[None]), env.draw_noise(1))
                if self._packing is None:
                    self._terms = list(info["reward_terms"])
                    self._packing = Packing.for_step(env.obs_size, self._terms)
                packed = self._packing.pack(step_values(obs, reward, terminated, truncated, info), obs.dtype)
            out = self._packing.unpack(packed.cpu().numpy())
        info_out: dict[str, Any] = {k: float(out[k][0]) for k in self._terms}
        info_out.update(distance=float(out["distance"][0]), is_success=bool(out["is_success"][0]),
                        goal=out["goal"].copy(), hand=out["hand"].copy())
        self._trail.append(info_out["hand"][:2])
        if self.render_mode == "human":
            self.render()
        return (out["obs"].copy(), float(out["reward"][0]), bool(out["terminated"][0]), bool(out["truncated"][0]),
                info_out)

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gymnasium.logger.warn("render() called without a render_mode; pass render_mode='rgb_array' or "
                                  "'human' to gymnasium.make")
            return None
        self._check_open()
        if self.state is None:
            raise ResetNeeded("Cannot call render() before reset(): call env.reset() first")
        frame = self._frame()
        if self.render_mode == "rgb_array":
            return frame
        if self._window is None:
            from mn_gym.render import HumanWindow

            self._window = HumanWindow(self.metadata["render_fps"])
        self._window.show(frame)
        return None

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
        if self._window is not None:
            self._window.close()
            self._window = None
        self._closed = True
        self._state = self._flat = None

    # ------------------------------------------------------------------------------------------ helpers
    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError(f"{self._env_id}: the env is closed")

    def _build_flat_step(self, example: EnvState) -> FlatStep:
        """The compiled batch-1 step: the faces' action map, the functional transition, lane 0's outputs packed
        by `Packing.for_step` (the reward-term names from one eager transition of `example`)."""
        env = self._env
        zero = torch.zeros(1, env.action_size, dtype=env.dtype, device=env.device)
        self._terms = list(env.transition(example, zero, None)[-1]["reward_terms"])
        self._packing = packing = Packing.for_step(env.obs_size, self._terms)

        def lane_step(state: EnvState, action: Tensor, noise: Tensor | None) -> tuple[EnvState, Tensor]:
            state, obs, reward, terminated, truncated, info = env.transition(
                state, action_to_excitation(action[None]), noise)
            return state, packing.pack(step_values(obs, reward, terminated, truncated, info), env.dtype)

        return FlatStep(lane_step, example, env.dtype)

    def _frame(self) -> np.ndarray:
        from mn_gym.render import Renderer, lane_scene

        env, state = self._env, self.state
        if self._renderer is None:
            self._renderer = Renderer(env.effector, env.task.success_radius, width=self._face["render_width"])
        with torch.no_grad():
            where = env.where(state)
            scene = lane_scene(env.effector, state, where["goal"], where["target"], 0)
        return self._renderer.frame(scene, int(state.t[0]), list(self._trail))

    def _batch_options(self, options: dict[str, Any] | None) -> dict[str, Any] | None:
        if options is None:
            return None
        if not isinstance(options, dict):
            raise TypeError(f"options must be a dict, got {type(options).__name__}")
        options = dict(options)
        if options.get("joint_state") is not None:
            js = torch.as_tensor(options["joint_state"], dtype=self._env.dtype)
            options["joint_state"] = js[None] if js.dim() == 1 else js
        return options

    # -------------------------------------------------------------------------------------- pickling
    _REBUILT = ("_env", "_renderer", "_window", "_flat_step", "_flat")

    def __getstate__(self) -> dict[str, Any]:
        d = {k: v for k, v in self.__dict__.items() if k not in self._REBUILT}
        d["_state"] = self.state
        d["_generator_state"] = self._env.generator.get_state()
        return d

    def __setstate__(self, d: dict[str, Any]) -> None:
        d = dict(d)
        generator_state = d.pop("_generator_state")
        self.__dict__.update(d)
        self._env = self._build()
        self._env.generator.set_state(generator_state)
        self._renderer = self._window = self._flat_step = self._flat = None
        if self._state is not None and self._face["compile"]:
            self._flat_step = self._build_flat_step(self._state)
            self._flat = self._flat_step.pack(self._state)

    def _build(self) -> Env:
        f = self._face
        return face_env(self._source, 1, self._kwargs, self.FACE_KWARGS, device=f["device"],
                        max_episode_steps=f["max_episode_steps"])

    def __repr__(self) -> str:
        return f"MnGymEnv({self._env_id!r}, kwargs={self._kwargs})"
