"""The functional env: an effector and a task as pure reset / transition / observe over an immutable state.

    env = mn_gym.make("ArmReach-v0", batch_size=64)           # an `Env` built from a frozen `EnvSpec`
    state, obs = env.reset(seed=0)
    state, obs, reward, terminated, truncated, info = env.step(state, action)   # action (B, M) in [0, 1]
    out = env.transition(state, action, env.draw_noise(64))                    # the same, unchecked, pure

In the spirit of Gymnasium's `FuncEnv` and gymnax: parameters (the effector's tensors, the task's settings,
the sensing settings) live in the `Env`, which is never changed after construction (`replace` returns a
copy); the episode lives in an `EnvState` of (B, ...) tensors passed in and returned. `transition(state,
action, noise)` is a pure function of its arguments; the only stateful piece is the env's seeded torch
generator, which `reset`, `reset_where` and `draw_noise` read. Every tensor is batch-first; gradients flow
from observations and rewards back to actions, to the policy that produced them and to every effector
parameter tensor. Each batch element has its own clock `t`; `truncated` turns True, element by element, when
its episode reaches `max_steps`. There is no autoreset here (`reset_where` restarts chosen elements).

Observation: the terms of `observation_terms` concatenated in order, by name: the task's own (target x, y;
a go cue for tasks with one; whatever a new task declares), then `hand` (endpoint x, y, delayed by
`vision_delay`), `fibre_length` (/ optimal length) and `fibre_velocity` (/ max velocity), delayed by
`proprioception_delay`, then `past_actions` (the last `action_frame_stacking` actions, oldest first). Noise
(`*_noise`, standard deviations) is additive Gaussian; `deterministic=True` removes every source. The setting
`proprioception` picks what the muscles report (`PROPRIOCEPTION`): "fibre" (the default: fibre length and
velocity, as above), "spindle" (`spindle_ia`, `spindle_ii`: muscle spindle primary and secondary firing) or
"spindle_gto" (those and `gto_ib`, Golgi tendon organ firing), M columns each, from `mn_gym.afferents`.
"""

from __future__ import annotations

import copy
import inspect
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any, NamedTuple

import torch
from torch import Tensor

from mn_gym import afferents
from mn_gym.core.effector import Effector, EffectorState
from mn_gym.core.prebuilt import EFFECTORS, make_effector
from mn_gym.sensing import delay_line, delay_steps, push
from mn_gym.tasks import Task, task_class
from mn_gym.tasks.base import StepOutcome

RESET_OPTIONS = ("joint_state", "task_state", "target_index")
DEFAULT_EPISODE_DURATION = 1.0  # s


class EnvState(NamedTuple):
    """Everything that changes during an episode, (B, ...) each.

    effector: the effector's state. task: the episode's task state (the task's own `State` type). t: (B,)
    long, steps since reset. proprioception: (B, lag + 1, 2M or 3M) and vision: (B, lag + 1, 2) delay lines, oldest
    first. actions: (B, n_stack, M) the last actions, oldest first. last_action: (B, M) the previous action as
    the muscles take it (clipped to [min_activation, 1]). hand_velocity: (B, 2, 2) the hand velocities (m/s)
    after the last two steps, oldest first (both the start velocity at reset), for the hand_jerk loss term;
    kept only when the task weights hand_jerk (else it stays at the start velocity: no work on the step).
    """

    effector: EffectorState
    task: Any
    t: Tensor
    proprioception: Tensor
    vision: Tensor
    actions: Tensor
    last_action: Tensor
    hand_velocity: Tensor


PROPRIOCEPTION: dict[str, tuple[str, ...]] = {
    "fibre": ("fibre_length", "fibre_velocity"),  # fibre length / optimal length, fibre velocity / max velocity
    "spindle": ("spindle_ia", "spindle_ii"),  # spindle Ia and II firing / 100 imp/s (mn_gym.afferents)
    "spindle_gto": ("spindle_ia", "spindle_ii", "gto_ib"),  # and Golgi tendon organ Ib firing / 100 imp/s
}


@dataclass(frozen=True)
class SensorySettings:
    """Delays (s) and noise standard deviations of the observation pipeline, and what proprioception reports:
    `proprioception` is one of `PROPRIOCEPTION` ("fibre", "spindle", "spindle_gto"); `proprioception_noise`
    applies to each of its terms."""

    proprioception_delay: float = 0.02
    vision_delay: float = 0.05
    action_noise: float = 0.0
    proprioception_noise: float = 0.0
    vision_noise: float = 0.0
    observation_noise: float = 0.0
    action_frame_stacking: int = 0
    proprioception: str = "fibre"


ENV_SETTINGS = ("episode_duration", "deterministic", "seed", *(f.name for f in fields(SensorySettings)))


class FrozenKwargs(dict):
    """Read-only keyword arguments of a spec (a picklable dict that refuses changes)."""

    def _read_only(self, *args: Any, **kwargs: Any) -> None:
        raise TypeError("EnvSpec settings are read-only; use spec.replace(...)")

    __setitem__ = __delitem__ = clear = pop = popitem = setdefault = update = __ior__ = _read_only

    def __reduce__(self) -> tuple:
        return type(self), (dict(self),)


@dataclass(frozen=True)
class EnvSpec:
    """Everything an env is made from, resolved once (catalogue defaults, the variant's settings, face options).

    effector / task: registered names (`mn_gym.EFFECTORS`, `mn_gym.tasks.TASKS`) with their keyword arguments;
    sensing: delays and noise; episode_duration (s); deterministic: no noise at all; seed: of the env's torch
    generator (None: nondeterministic); max_episode_steps: a face's cut, episodes end at
    min(max_episode_steps, round(episode_duration / dt)) steps. `make(batch_size, device, dtype)` builds the env.
    """

    env_id: str | None
    effector: str
    task: str
    effector_kwargs: Mapping[str, Any] = field(default_factory=dict)
    task_kwargs: Mapping[str, Any] = field(default_factory=dict)
    sensing: SensorySettings = field(default_factory=SensorySettings)
    episode_duration: float = DEFAULT_EPISODE_DURATION
    deterministic: bool = False
    seed: int | None = None
    max_episode_steps: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "effector_kwargs", FrozenKwargs(copy.deepcopy(dict(self.effector_kwargs))))
        object.__setattr__(self, "task_kwargs", FrozenKwargs(copy.deepcopy(dict(self.task_kwargs))))
        m = self.max_episode_steps
        if m is not None and (not isinstance(m, int) or isinstance(m, bool) or m < 1):
            raise ValueError(f"max_episode_steps must be a positive int or None, got {m!r}")

    @property
    def dt(self) -> float:
        """The effector's time step (s): the variant's `dt`, else its factory's default."""
        if "dt" in self.effector_kwargs:
            return self.effector_kwargs["dt"]
        param = inspect.signature(EFFECTORS[self.effector]).parameters.get("dt")
        if param is None or param.default is inspect.Parameter.empty:  # a factory that fixes dt itself
            return make_effector(self.effector, **self.effector_kwargs).dt
        return param.default

    @property
    def max_steps(self) -> int:
        """Steps per episode: min(max_episode_steps, round(episode_duration / dt))."""
        natural = delay_steps(self.episode_duration, self.dt, "episode_duration")
        return natural if self.max_episode_steps is None else min(natural, self.max_episode_steps)

    def replace(self, **changes: Any) -> EnvSpec:
        """A copy with some fields changed."""
        return replace(self, **changes)

    def make(self, batch_size: int = 1, *, device: torch.device | str | None = None,
             dtype: torch.dtype = torch.float32) -> Env:
        """The env of this spec with `batch_size` episodes side by side on `device` in `dtype`."""
        effector = make_effector(self.effector, dtype=dtype, device=device, **self.effector_kwargs)
        task = task_class(self.task)(**copy.deepcopy(dict(self.task_kwargs)))
        return Env(effector, task, batch_size=batch_size, episode_duration=self.episode_duration,
                   sensing=self.sensing, deterministic=self.deterministic, env_id=self.env_id, seed=self.seed,
                   max_episode_steps=self.max_episode_steps, spec=self)


class Env:
    """A batch of `batch_size` episodes of `task` performed by `effector`; immutable after construction.

    Args:
        effector: the effector (its dtype and device are the env's).
        task: the task.
        batch_size: number of episodes run side by side.
        episode_duration: seconds per episode; max_steps = round(episode_duration / dt).
        sensing: delays and noise (`SensorySettings`).
        deterministic: drop every noise source.
        env_id: the catalogue id this env was made from, if any.
        seed: seed of the env's torch generator (None: nondeterministic).
        max_episode_steps: cut episodes at min(this, round(episode_duration / dt)) steps.
        spec: the `EnvSpec` the env was made from, if any (`mn_gym.make` sets it).
    """

    def __init__(self, effector: Effector, task: Task, *, batch_size: int = 1,
                 episode_duration: float = DEFAULT_EPISODE_DURATION, sensing: SensorySettings | None = None,
                 deterministic: bool = False, env_id: str | None = None, seed: int | None = None,
                 max_episode_steps: int | None = None, spec: EnvSpec | None = None) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        s = sensing or SensorySettings()
        self._args = {"effector": effector, "task": task, "batch_size": batch_size,
                      "episode_duration": episode_duration, "sensing": s, "deterministic": deterministic,
                      "env_id": env_id, "seed": seed, "max_episode_steps": max_episode_steps, "spec": spec}
        self.effector, self.task, self.batch_size, self.sensing = effector, task, batch_size, s
        self.dt = effector.dt
        max_steps = natural = delay_steps(episode_duration, self.dt, "episode_duration")
        if max_steps < 1:
            raise ValueError(f"episode_duration must be at least one step ({self.dt} s), got {episode_duration}")
        if max_episode_steps is not None:
            if (not isinstance(max_episode_steps, int) or isinstance(max_episode_steps, bool)
                    or max_episode_steps < 1):
                raise ValueError(f"max_episode_steps must be a positive int or None, got {max_episode_steps!r}")
            max_steps = min(max_steps, max_episode_steps)
        self.max_steps = max_steps
        self.proprioception_lag = delay_steps(s.proprioception_delay, self.dt, "proprioception_delay")
        self.vision_lag = delay_steps(s.vision_delay, self.dt, "vision_delay")
        for name, lag in (("proprioception_delay", self.proprioception_lag), ("vision_delay", self.vision_lag)):
            if lag >= natural:  # a signal that arrives after the episode: nothing to see, a huge delay line
                raise ValueError(f"{name} ({getattr(s, name)} s) must be shorter than the episode "
                                 f"({episode_duration} s)")
        for name in ("action_noise", "proprioception_noise", "vision_noise", "observation_noise"):
            value = getattr(s, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0 (a standard deviation), got {value!r}")
        stack = s.action_frame_stacking
        if not isinstance(stack, int) or isinstance(stack, bool) or stack < 0:
            raise ValueError(f"action_frame_stacking must be an int >= 0, got {stack!r}")
        if not isinstance(s.proprioception, str) or s.proprioception not in PROPRIOCEPTION:
            raise ValueError(f"proprioception must be one of {list(PROPRIOCEPTION)}, got {s.proprioception!r}")
        if s.proprioception != "fibre" and not hasattr(effector.muscle, "optimal_fibre_length"):
            raise ValueError(f"proprioception={s.proprioception!r} needs a Hill-type muscle (optimal fibre length, "
                             f"max velocity); effector {effector.name!r} has a {type(effector.muscle).__name__}")
        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic must be a bool, got {deterministic!r}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.deterministic, self.env_id, self.spec = deterministic, env_id, spec
        self.generator = torch.Generator(device=effector.device)
        if seed is None:
            self.generator.seed()  # nondeterministic, without touching torch's global generator
        else:
            self.generator.manual_seed(seed)
        m = effector.n_muscles
        self.action_size = m
        self.observation_terms: tuple[tuple[str, int], ...] = (
            *task.observation_terms, ("hand", 2), *((name, m) for name in PROPRIOCEPTION[s.proprioception]),
            *((("past_actions", stack * m),) if stack else ()))
        self.obs_size = sum(size for _, size in self.observation_terms)
        self._length_scale, self._velocity_scale = effector.muscle.proprioception_scale()
        self._noise_std = self._noise_scale()
        self._pushes = task.applies_endpoint_load  # read once: the step is the hot path
        self._state_layout: tuple[Any, list[Any], list[str]] | None = None  # see check_state
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False) and name != "generator":
            how = f"use env.replace({name}=...)" if name in self._args else f"it follows from {sorted(self._args)}"
            raise AttributeError(f"Env is immutable: {name!r} cannot be set; {how}")
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        return (f"Env(id={self.env_id!r}, effector={self.effector.name!r}, task={self.task.name!r}, "
                f"batch_size={self.batch_size}, max_steps={self.max_steps}, dt={self.dt}, obs_size={self.obs_size}, "
                f"action_size={self.action_size}, device={self.device}, dtype={self.dtype})")

    def replace(self, **changes: Any) -> Env:
        """A copy with some constructor arguments changed (effector, task, batch_size, sensing, ...). The copy
        gets its own generator, continuing from this env's current generator state unless `seed` is given."""
        unknown = set(changes) - set(self._args)
        if unknown:
            raise TypeError(f"unknown Env argument(s) {sorted(unknown)}; valid: {sorted(self._args)}")
        new = Env(**{**self._args, **changes})
        if "seed" not in changes and new.device == self.device:
            new.generator.set_state(self.generator.get_state())
        return new

    @property
    def device(self) -> torch.device:
        return self.effector.device

    @property
    def dtype(self) -> torch.dtype:
        return self.effector.dtype

    def observation_slices(self) -> dict[str, slice]:
        """Where each observation term lies in the observation vector: {name: slice}, in order."""
        out, start = {}, 0
        for name, size in self.observation_terms:
            out[name] = slice(start, start + size)
            start += size
        return out

    def _noise_scale(self) -> Tensor | None:
        """Standard deviation of each column of a step's noise draw [action (M) | observation (O)], or None
        without noise. Sensory and observation noise on one column add up to a single Gaussian of variance
        sigma_sensor^2 + sigma_obs^2, so one draw per step serves every source."""
        s = self.sensing
        if self.deterministic or not any((s.action_noise, s.proprioception_noise, s.vision_noise,
                                          s.observation_noise)):
            return None
        sensor = {"hand": s.vision_noise, **dict.fromkeys(PROPRIOCEPTION[s.proprioception], s.proprioception_noise)}
        cols = [s.action_noise] * self.action_size
        for name, size in self.observation_terms:
            cols += [math.sqrt(sensor.get(name, 0.0) ** 2 + s.observation_noise ** 2)] * size
        return torch.tensor(cols, dtype=self.dtype, device=self.device)

    def draw_noise(self, batch: int) -> Tensor | None:
        """One step's noise (B, M + O) from the env's generator, or None when the env is noiseless."""
        if self._noise_std is None:
            return None
        return torch.randn(batch, self._noise_std.shape[0], generator=self.generator, dtype=self.dtype,
                           device=self.device) * self._noise_std

    # ----------------------------------------------------------------------------------- sensing
    def proprioception(self, eff: EffectorState) -> Tensor:
        """What the muscles report now, the terms of `PROPRIOCEPTION[sensing.proprioception]` side by side: (B, 2M)
        normalised fibre lengths and velocities ("fibre"); (B, 2M) spindle Ia and II firing ("spindle"); (B, 3M)
        those and tendon organ Ib firing ("spindle_gto"), rates / 100 imp/s (`mn_gym.afferents`)."""
        length, velocity = self.effector.fibre_state(eff)
        ln, vn = length / self._length_scale, velocity / self._velocity_scale
        kind = self.sensing.proprioception
        if kind == "fibre":
            return torch.cat((ln, vn), dim=-1)
        parts = [afferents.spindle_ia(ln, vn, self._length_scale, self._velocity_scale),
                 afferents.spindle_ii(ln, self._length_scale)]
        if kind == "spindle_gto":
            parts.append(afferents.gto_ib(self.effector.muscle_force(eff), self.effector.muscle.max_isometric_force))
        return torch.cat(parts, dim=-1)

    def vision(self, eff: EffectorState) -> Tensor:
        """Endpoint position now, (B, 2)."""
        return self.effector.cartesian(eff)[:, :2]

    def observe(self, state: EnvState) -> Tensor:
        """The observation (B, obs_size) of `state` (fresh sensory noise on each call)."""
        noise = self.draw_noise(state.t.shape[0])
        return self._observe(state, None if noise is None else noise[:, self.action_size:])

    def _observe(self, state: EnvState, noise: Tensor | None) -> Tensor:
        shown = self.task.observe(state.task, state.t, self.dt)
        parts = [shown[name] for name, _ in self.task.observation_terms]
        parts += [state.vision[:, 0], state.proprioception[:, 0]]
        if self.sensing.action_frame_stacking:
            parts.append(state.actions.flatten(1))
        obs = torch.cat(parts, dim=-1)
        return obs if noise is None else obs + noise

    # ----------------------------------------------------------------------------------- episodes
    def _fresh(self, options: dict[str, Any]) -> EnvState:
        unknown = set(options) - set(RESET_OPTIONS)
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: {list(RESET_OPTIONS)}")
        b, task = self.batch_size, self.task
        joint_state = options.get("joint_state")
        q0 = None
        if joint_state is not None:
            joint_state = torch.as_tensor(joint_state, dtype=self.dtype, device=self.device)
            if joint_state.dim() != 2 or joint_state.shape[1] not in (self.effector.dof, 2 * self.effector.dof):
                raise ValueError(f"joint_state must have shape ({b}, {self.effector.dof}) or ({b}, "
                                 f"{2 * self.effector.dof}), got {tuple(joint_state.shape)}")
            q0 = joint_state[:, :self.effector.dof]
        sampled, ts = task.sample(self.effector, b, self.generator, q0)
        joint_state = sampled if joint_state is None else joint_state
        if "target_index" in options:
            if not hasattr(task, "state_for"):
                raise ValueError(f"task {task.name!r} has no indexed targets (target_index)")
            index = torch.as_tensor(options["target_index"], device=self.device).long().reshape(-1).expand(b)
            ts = task.state_for(self.effector, ts.origin, index, self.generator)
        if options.get("task_state") is not None:
            ts = options["task_state"]
            if not isinstance(ts, task.State) or any(x.shape[0] != b for x in ts):
                raise ValueError(f"task_state must be a {task.State.__name__} (task {task.name!r}) of batch {b}")
        eff = self.effector.initial_state(joint_state)
        if eff.batch_size != b:
            raise ValueError(f"joint_state has batch {eff.batch_size}, but the env's batch_size is {b}")
        zeros_m = torch.zeros(b, self.action_size, dtype=self.dtype, device=self.device)
        v0 = self.effector.cartesian(eff)[:, 2:]
        return EnvState(
            effector=eff,
            task=ts,
            t=torch.zeros(b, dtype=torch.long, device=self.device),
            proprioception=delay_line(self.proprioception(eff), self.proprioception_lag),
            vision=delay_line(self.vision(eff), self.vision_lag),
            actions=zeros_m[:, None, :].expand(-1, self.sensing.action_frame_stacking, -1).clone(),
            last_action=zeros_m,
            hand_velocity=torch.stack((v0, v0), dim=1),
        )

    def reset(self, seed: int | torch.Generator | None = None, options: dict[str, Any] | None = None
              ) -> tuple[EnvState, Tensor]:
        """New episodes for the whole batch: (state, observation).

        `seed` (int) reseeds the env's generator; a `torch.Generator` replaces it. `options`: `joint_state`
        ((B, dof) or (B, 2 dof)), `task_state` (the task's `State`), `target_index` (centre-out targets).
        """
        if isinstance(seed, torch.Generator):
            self.generator = seed
        elif seed is not None:
            if not isinstance(seed, int) or isinstance(seed, bool):
                raise TypeError(f"seed must be an int or a torch.Generator, got {type(seed).__name__}")
            self.generator.manual_seed(seed)
        if options is not None and not isinstance(options, dict):
            raise TypeError(f"options must be a dict, got {type(options).__name__}")
        state = self._fresh(options or {})
        return state, self.observe(state)

    def where(self, state: EnvState) -> dict[str, Tensor]:
        """Hand-goal "distance" (B,), "goal" (B, 2), "target" (B, 2) and "hand" endpoint state (B, 4) of
        `state` (as after reset)."""
        hand = self.effector.cartesian(state.effector)
        goal = self.task.goal(state.task, state.t, self.dt)
        return {"distance": torch.linalg.vector_norm(hand[:, :2] - goal, dim=-1), "goal": goal, "hand": hand,
                "target": self.task.target(state.task)}

    def check_state(self, state: Any, values: bool = True) -> None:
        """Raise a clear error unless `state` is a state of this env: an `EnvState` whose every field has the
        structure, shape (B, ...), dtype and device of this env's states and, with `values`, finite values (when
        the effector checks its inputs: `check_inputs`). `rollout` checks its start state so; `step` checks the
        structure before and the finiteness of what comes out (cheaper per step)."""
        if not isinstance(state, EnvState):
            raise TypeError(f"state must be an EnvState (from reset), got {type(state).__name__}")
        if not self.effector.check_inputs:
            return
        if self._state_layout is None:  # the layout of this env's states, from a fresh one (random draws undone)
            rng = self.generator.get_state()
            fresh = self._fresh({})
            self.generator.set_state(rng)
            leaves, kinds = _state_leaves(fresh)
            names = [f".{field}" if not isinstance(value, tuple) else f".{field}.{sub}"
                     for field, value in zip(EnvState._fields, fresh, strict=True)
                     for sub in (value._fields if isinstance(value, tuple) else (None,))]
            object.__setattr__(self, "_state_layout",  # a cache of what the settings imply, not a setting
                               (kinds, [None if x is None else (x.shape, x.dtype) for x in leaves], names))
        kinds, layout, names = self._state_layout
        leaves, given = _state_leaves(state)
        if given != kinds or len(leaves) != len(layout):
            raise ValueError(f"state does not come from this env ({self.env_id or self.task.name}): its fields are "
                             f"{[k.__name__ for k in given]}, this env's {[k.__name__ for k in kinds]}")
        floats = []
        for name, want, leaf in zip(names, layout, leaves, strict=True):
            if want is None and leaf is None:  # a field this env does not use (a rigid tendon's fibre length)
                continue
            if want is None or not isinstance(leaf, Tensor) or leaf.shape != want[0] or leaf.dtype != want[1]:
                got = f"{tuple(leaf.shape)} {leaf.dtype}" if isinstance(leaf, Tensor) else type(leaf).__name__
                expected = "None" if want is None else f"a {want[1]} tensor of shape {tuple(want[0])}"
                raise ValueError(f"state{name} must be {expected} in this env, got {got}: the state does not come "
                                 "from this env")
            if leaf.device != self.device:
                raise ValueError(f"state{name} is on {leaf.device}, the env on {self.device}")
            if values and leaf.is_floating_point():
                floats.append(leaf)
        if floats and not bool(torch.isfinite(torch.stack([leaf.sum() for leaf in floats]).sum())):
            self._name_non_finite(state)

    def _name_non_finite(self, state: EnvState) -> None:
        """Raise the error naming the fields of `state` that hold NaN or inf (if any)."""
        _, _, names = self._state_layout
        bad = [name for name, leaf in zip(names, _state_leaves(state)[0], strict=True)
               if isinstance(leaf, Tensor) and leaf.is_floating_point() and not bool(torch.isfinite(leaf).all())]
        if bad:
            raise ValueError(f"state has NaN or inf in {', '.join(bad)}: a state that diverged or was built by hand")

    def check_action(self, action: Any, batch: int) -> None:
        """Raise a clear error unless `action` is a finite (batch, M) tensor of the env's dtype and device
        (finiteness, dtype and device when the effector checks its inputs)."""
        m = self.action_size
        if not isinstance(action, Tensor):
            raise TypeError(f"action must be a torch.Tensor of shape ({batch}, {m}), got {type(action).__name__}")
        if tuple(action.shape) != (batch, m):
            raise ValueError(f"action must have shape ({batch}, {m}), got {tuple(action.shape)}")
        if self.effector.check_inputs:
            self.effector.check_tensor("action", action, (batch, m))

    def reset_where(self, state: EnvState, mask: Tensor) -> EnvState:
        """`state` with the elements where `mask` (B,) is True restarted as new episodes (fresh draws)."""
        self.check_state(state, values=False)
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (self.batch_size,):
            raise ValueError(f"mask must be a bool tensor of shape ({self.batch_size},), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
        return select(mask, self._fresh({}), state)

    def step(self, state: EnvState, action: Tensor
             ) -> tuple[EnvState, Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """Check the inputs, then `transition(state, action, draw_noise(B))`.

        `action` (B, M): excitations, clipped to [min activation, 1]. Returns (state, observation (B, obs_size),
        reward (B,), terminated (B,) bool, truncated (B,) bool, info); see `transition`.
        """
        self.check_state(state, values=False)
        self.check_action(action, self.batch_size)
        out = self.transition(state, action, self.draw_noise(self.batch_size))
        if self.effector.check_inputs and not bool(torch.isfinite(out[1].sum() + out[2].sum())):
            self._name_non_finite(state)  # NaN in: refused, naming the field
            raise ValueError("the step gave a non-finite observation or reward from a finite state and action: "
                             "the dynamics diverged (a stiff load, a long step; see AccuracyWarning)")
        return out

    def transition(self, state: EnvState, action: Tensor, noise: Tensor | None
                   ) -> tuple[EnvState, Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """One step of every element: a pure function of `state`, `action` (B, M) and the step's noise draw
        (`draw_noise(B)`, or None for none). No input checks (`step` checks); what `mn_gym.compilation` compiles.

        Returns (state, observation (B, obs_size), reward (B,), terminated (B,) bool, truncated (B,) bool,
        info) with info = {"terms": the task's named loss terms (B,), "reward_terms": {"reward_<term>":
        -weight x term} (they add up to the reward), "distance": hand-goal distance (B,) m, "is_success": (B,)
        bool, "goal": (B, 2), "hand": endpoint state (B, 4), "endpoint_load": (B, 2) or None}.
        """
        eff, ts, t, task, m = state.effector, state.task, state.t, self.task, self.action_size
        load = task.endpoint_load(ts, t, self.dt, self.effector.cartesian(eff)) if self._pushes else None
        excitation = action if noise is None else action + noise[:, :m]
        eff = self.effector.advance(eff, excitation, load, None)
        received = self.effector.clip_excitation(action)  # what effort and jerk score: the command, as muscles take it
        t = t + 1
        cart = self.effector.cartesian(eff)
        new = EnvState(
            effector=eff,
            task=ts,
            t=t,
            proprioception=push(state.proprioception, self.proprioception(eff)),
            vision=push(state.vision, cart[:, :2]),
            actions=push(state.actions, action) if self.sensing.action_frame_stacking else state.actions,
            last_action=received,
            hand_velocity=torch.stack((state.hand_velocity[:, 1], cart[:, 2:]), dim=1) if task.weights.get("hand_jerk")
            else state.hand_velocity,
        )
        goal = task.goal(ts, t, self.dt)
        terms = task.loss_terms(ts, StepOutcome(t, self.dt, cart, goal, received, state.last_action, eff,
                                                   state.effector, self.effector, state.hand_velocity))
        if not terms.keys() <= task.weights.keys():
            raise KeyError(f"task {task.name!r} returned loss term(s) {sorted(terms.keys() - task.weights.keys())} "
                           f"that it does not declare in weight_defaults ({list(task.weights)})")
        reward_terms = {f"reward_{k}": v * -task.weights[k] for k, v in terms.items()}
        reward = sum(reward_terms.values(), torch.zeros_like(terms["position"]))
        distance = terms["position"]
        info = {"terms": terms, "reward_terms": reward_terms, "distance": distance,
                "is_success": distance <= task.success_radius, "goal": goal, "endpoint_load": load, "hand": cart}
        truncated = t >= self.max_steps
        terminated = torch.zeros_like(truncated)
        return new, self._observe(new, None if noise is None else noise[:, m:]), reward, terminated, truncated, info


def _state_leaves(state: EnvState) -> tuple[list[Any], list[type]]:
    """The fields of `state`, its nested state tuples (effector, task) opened one level, and their types."""
    leaves: list[Any] = []
    for value in state:
        leaves.extend(value) if isinstance(value, tuple) else leaves.append(value)
    return leaves, [type(value) for value in state]


def select(mask: Tensor, a: Any, b: Any) -> Any:
    """Element-wise choice between two (nested NamedTuple) states: a where mask (B,), else b."""
    if a is None:
        return None
    if isinstance(a, tuple):
        return type(a)(*(select(mask, x, y) for x, y in zip(a, b, strict=True)))
    m = mask.reshape(-1, *([1] * (a.dim() - 1)))
    return torch.where(m, a, b)
