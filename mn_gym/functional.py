"""The differentiable face: an effector and a task as pure reset / step functions over an immutable state.

    env = mn_gym.make("ArmReach-v0", batch_size=64)
    state, obs = env.reset(seed=0)
    state, obs, reward, terminated, truncated, info = env.step(state, action)   # action (B, M) in [0, 1]

Every tensor is batch-first. Gradients flow from observations and rewards back to actions, to the policy
that produced them and to every effector parameter tensor. Each batch element has its own clock `t`;
`truncated` turns True, element by element, when its episode reaches `max_steps`. There is no autoreset
here: `reset_where` restarts chosen elements (the vector faces use it).

Observation layout (concatenated): task terms (target x, y; plus a go cue for tasks with one), delayed vision
(endpoint x, y), delayed proprioception (fibre lengths / optimal length, then fibre velocities / max velocity),
then the last `action_frame_stacking` actions, oldest first. Noise (`*_noise`, standard deviations) is
additive Gaussian from the env's seeded torch generator; `deterministic=True` removes every source.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

import torch
from torch import Tensor

from mn_gym.core.effector import Effector, EffectorState
from mn_gym.sensing import delay_line, delay_steps, push
from mn_gym.tasks.base import Task, TaskState

RESET_OPTIONS = ("joint_state", "task_state", "target_index")


class EnvState(NamedTuple):
    """Everything that changes during an episode, (B, ...) each.

    effector: the effector's state. task: the episode's task variables. t: (B,) long, steps since reset.
    proprioception: (B, lag + 1, 2M) and vision: (B, lag + 1, 2) delay lines, oldest first.
    actions: (B, n_stack, M) the last actions, oldest first. last_action: (B, M) the previous action.
    """

    effector: EffectorState
    task: TaskState
    t: Tensor
    proprioception: Tensor
    vision: Tensor
    actions: Tensor
    last_action: Tensor


@dataclass(frozen=True)
class SensorySettings:
    """Delays (s) and noise standard deviations of the observation pipeline."""

    proprioception_delay: float = 0.02
    vision_delay: float = 0.05
    action_noise: float = 0.0
    proprioception_noise: float = 0.0
    vision_noise: float = 0.0
    observation_noise: float = 0.0
    action_frame_stacking: int = 0


class Env:
    """A batch of `batch_size` episodes of `task` performed by `effector`.

    Args:
        effector: the effector (its dtype and device are the env's).
        task: the task.
        batch_size: number of episodes run side by side.
        episode_duration: seconds per episode; max_steps = round(episode_duration / dt).
        sensing: delays and noise (`SensorySettings`).
        deterministic: drop every noise source.
        env_id: the catalogue id this env was made from, if any.
    """

    def __init__(self, effector: Effector, task: Task, *, batch_size: int = 1, episode_duration: float = 1.0,
                 sensing: SensorySettings | None = None, deterministic: bool = False,
                 env_id: str | None = None, seed: int | None = None) -> None:
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        self.effector, self.task, self.batch_size = effector, task, batch_size
        self.sensing = sensing or SensorySettings()
        s = self.sensing
        self.dt = effector.dt
        self.max_steps = delay_steps(episode_duration, self.dt, "episode_duration")
        if self.max_steps < 1:
            raise ValueError(f"episode_duration must be at least one step ({self.dt} s), got {episode_duration}")
        self.proprioception_lag = delay_steps(s.proprioception_delay, self.dt, "proprioception_delay")
        self.vision_lag = delay_steps(s.vision_delay, self.dt, "vision_delay")
        for name in ("action_noise", "proprioception_noise", "vision_noise", "observation_noise"):
            value = getattr(s, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not 0 <= value < math.inf:
                raise ValueError(f"{name} must be a finite number >= 0 (a standard deviation), got {value!r}")
        stack = s.action_frame_stacking
        if not isinstance(stack, int) or isinstance(stack, bool) or stack < 0:
            raise ValueError(f"action_frame_stacking must be an int >= 0, got {stack!r}")
        if not isinstance(deterministic, bool):
            raise TypeError(f"deterministic must be a bool, got {deterministic!r}")
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool)):
            raise TypeError(f"seed must be an int or None, got {seed!r}")
        self.deterministic = deterministic
        self.env_id = env_id
        self.generator = torch.Generator(device=effector.device)
        if seed is None:
            self.generator.seed()  # nondeterministic, without touching torch's global generator
        else:
            self.generator.manual_seed(seed)
        m = effector.n_muscles
        self.obs_size = task.obs_size + 2 + 2 * m + s.action_frame_stacking * m
        self.action_size = m
        self._length_scale, self._velocity_scale = effector.muscle.proprioception_scale()
        self._noise_std = self._noise_scale()

    def __repr__(self) -> str:
        return (f"Env(id={self.env_id!r}, effector={self.effector.name!r}, task={self.task.name!r}, "
                f"batch_size={self.batch_size}, max_steps={self.max_steps}, dt={self.dt}, obs_size={self.obs_size}, "
                f"action_size={self.action_size}, device={self.device}, dtype={self.dtype})")

    @property
    def device(self) -> torch.device:
        return self.effector.device

    @property
    def dtype(self) -> torch.dtype:
        return self.effector.dtype

    def _noise_scale(self) -> Tensor | None:
        """Standard deviation of each column of a step's noise draw [action (M) | observation (O)], or None
        without noise. Sensory and observation noise on one column add up to a single Gaussian of variance
        sigma_sensor^2 + sigma_obs^2, so one draw per step serves every source."""
        s = self.sensing
        if self.deterministic or not any((s.action_noise, s.proprioception_noise, s.vision_noise,
                                          s.observation_noise)):
            return None
        o2 = s.observation_noise ** 2
        m, n_task, n_stack = self.action_size, self.task.obs_size, s.action_frame_stacking * self.action_size
        cols = ([s.action_noise] * m + [s.observation_noise] * n_task + [math.sqrt(s.vision_noise ** 2 + o2)] * 2
                + [math.sqrt(s.proprioception_noise ** 2 + o2)] * (2 * m) + [s.observation_noise] * n_stack)
        return torch.tensor(cols, dtype=self.dtype, device=self.device)

    def draw_noise(self, batch: int) -> Tensor | None:
        """One step's noise (B, M + O) from the env's generator, or None when the env is noiseless."""
        if self._noise_std is None:
            return None
        return torch.randn(batch, self._noise_std.shape[0], generator=self.generator, dtype=self.dtype,
                           device=self.device) * self._noise_std

    # ----------------------------------------------------------------------------------- sensing
    def proprioception(self, eff: EffectorState) -> Tensor:
        """Normalised fibre lengths and velocities now, (B, 2M)."""
        length, velocity = self.effector.muscle.fibre_state(eff.activation, eff.mt_length, eff.mt_velocity,
                                                            eff.fibre_length)
        return torch.cat((length / self._length_scale, velocity / self._velocity_scale), dim=-1)

    def vision(self, eff: EffectorState) -> Tensor:
        """Endpoint position now, (B, 2)."""
        return self.effector.cartesian(eff)[:, :2]

    def observe(self, state: EnvState) -> Tensor:
        """The observation (B, obs_size) of `state` (fresh sensory noise on each call)."""
        noise = self.draw_noise(state.t.shape[0])
        return self._observe(state, None if noise is None else noise[:, self.action_size:])

    def _observe(self, state: EnvState, noise: Tensor | None) -> Tensor:
        parts = [self.task.observation(state.task, state.t, self.dt), state.vision[:, 0], state.proprioception[:, 0]]
        if self.sensing.action_frame_stacking:
            parts.append(state.actions.flatten(1))
        obs = torch.cat(parts, dim=-1)
        return obs if noise is None else obs + noise

    # ----------------------------------------------------------------------------------- episodes
    def _fresh(self, options: dict[str, Any]) -> EnvState:
        unknown = set(options) - set(RESET_OPTIONS)
        if unknown:
            raise ValueError(f"unknown reset option(s) {sorted(unknown)}; valid: {list(RESET_OPTIONS)}")
        b = self.batch_size
        joint_state = options.get("joint_state")
        q0 = None
        if joint_state is not None:
            joint_state = torch.as_tensor(joint_state, dtype=self.dtype, device=self.device)
            if joint_state.dim() != 2 or joint_state.shape[1] not in (self.effector.dof, 2 * self.effector.dof):
                raise ValueError(f"joint_state must have shape ({b}, {self.effector.dof}) or ({b}, "
                                 f"{2 * self.effector.dof}), got {tuple(joint_state.shape)}")
            q0 = joint_state[:, :self.effector.dof]
        sampled, ts = self.task.sample(self.effector, b, self.generator, q0)
        joint_state = sampled if joint_state is None else joint_state
        if "target_index" in options:
            if not hasattr(self.task, "state_for"):
                raise ValueError(f"task {self.task.name!r} has no indexed targets (target_index)")
            index = torch.as_tensor(options["target_index"], device=self.device).long().reshape(-1).expand(b)
            ts = self.task.state_for(self.effector, ts.origin, index, self.generator)
        if options.get("task_state") is not None:
            ts = options["task_state"]
            if not isinstance(ts, TaskState) or ts.target.shape != (b, 2):
                raise ValueError(f"task_state must be a TaskState of batch {b}")
        eff = self.effector.initial_state(joint_state)
        if eff.batch_size != b:
            raise ValueError(f"joint_state has batch {eff.batch_size}, but the env's batch_size is {b}")
        zeros_m = torch.zeros(b, self.action_size, dtype=self.dtype, device=self.device)
        return EnvState(
            effector=eff,
            task=ts,
            t=torch.zeros(b, dtype=torch.long, device=self.device),
            proprioception=delay_line(self.proprioception(eff), self.proprioception_lag),
            vision=delay_line(self.vision(eff), self.vision_lag),
            actions=zeros_m[:, None, :].expand(-1, self.sensing.action_frame_stacking, -1).clone(),
            last_action=zeros_m,
        )

    def reset(self, seed: int | torch.Generator | None = None, options: dict[str, Any] | None = None
              ) -> tuple[EnvState, Tensor]:
        """New episodes for the whole batch: (state, observation).

        `seed` (int) reseeds the env's generator; a `torch.Generator` replaces it. `options`: `joint_state`
        ((B, dof) or (B, 2 dof)), `task_state` (a TaskState), `target_index` (centre-out targets).
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
        """Hand-goal "distance" (B,), "goal" (B, 2) and "hand" endpoint state (B, 4) of `state` (as after reset)."""
        hand = self.effector.cartesian(state.effector)
        goal = self.task.goal(state.task, state.t, self.dt)
        return {"distance": torch.linalg.vector_norm(hand[:, :2] - goal, dim=-1), "goal": goal, "hand": hand}

    def compile(self, **compile_kwargs: Any) -> Env:
        """This env with its step transition (effector, sensing, task terms) under `torch.compile`.

        Input checks stay in eager mode. Compiles on the first step (seconds to tens of seconds; again for a
        new batch size or dtype). Noise draws interrupt the compiled graph, so it pays most with
        `deterministic=True`. Returns self.
        """
        compile_kwargs.setdefault("dynamic", False)
        self._transition = torch.compile(self._transition, **compile_kwargs)  # type: ignore[method-assign]
        return self

    def reset_where(self, state: EnvState, mask: Tensor) -> EnvState:
        """`state` with the elements where `mask` (B,) is True restarted as new episodes (fresh draws)."""
        if not isinstance(mask, Tensor) or mask.dtype != torch.bool or tuple(mask.shape) != (self.batch_size,):
            raise ValueError(f"mask must be a bool tensor of shape ({self.batch_size},), got "
                             f"{getattr(mask, 'dtype', type(mask).__name__)} {tuple(getattr(mask, 'shape', ()))}")
        fresh = self._fresh({})
        return _select(mask, fresh, state)

    def step(self, state: EnvState, action: Tensor
             ) -> tuple[EnvState, Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """Advance every element by one step under `action` (B, M) (excitations; clipped to [min act., 1]).

        Returns (state, observation (B, obs_size), reward (B,), terminated (B,) bool, truncated (B,) bool,
        info) with info = {"terms": named loss terms (B,), "reward_terms": {"reward_<term>": -weight x term}
        (they add up to the reward), "distance": hand-goal distance (B,) m, "is_success": (B,) bool,
        "goal": (B, 2), "hand": endpoint state (B, 4), "endpoint_load": (B, 2) or None}.
        """
        if not isinstance(state, EnvState):
            raise TypeError(f"state must be an EnvState (from reset), got {type(state).__name__}")
        b, m = state.t.shape[0], self.action_size
        if not isinstance(action, Tensor):
            raise TypeError(f"action must be a torch.Tensor of shape ({b}, {m}), got {type(action).__name__}")
        if tuple(action.shape) != (b, m):
            raise ValueError(f"action must have shape ({b}, {m}), got {tuple(action.shape)}")
        if self.effector.check_inputs:
            self.effector._check_tensor("action", action, (b, m))
        return self._transition(state, action, self.draw_noise(b))

    def _transition(self, state: EnvState, action: Tensor, noise: Tensor | None
                    ) -> tuple[EnvState, Tensor, Tensor, Tensor, Tensor, dict[str, Any]]:
        """`step` after input checks, given the step's noise draw: pure tensor code (what `compile` compiles)."""
        eff, ts, t, task, m = state.effector, state.task, state.t, self.task, self.action_size
        load = task.endpoint_load(ts, t, self.dt, self.effector.cartesian(eff)) if task.has_endpoint_load else None
        excitation = action if noise is None else action + noise[:, :m]
        eff = self.effector._advance(eff, excitation, load, None)
        t = t + 1
        cart = self.effector.cartesian(eff)
        new = EnvState(
            effector=eff,
            task=ts,
            t=t,
            proprioception=push(state.proprioception, self.proprioception(eff)),
            vision=push(state.vision, cart[:, :2]),
            actions=push(state.actions, action) if self.sensing.action_frame_stacking else state.actions,
            last_action=action,
        )
        goal = task.goal(ts, t, self.dt)
        terms = task.loss_terms(ts, t, self.dt, cart, goal, action, state.last_action)
        reward_terms = {f"reward_{k}": v * -task.weights[k] for k, v in terms.items()}
        reward = sum(reward_terms.values(), torch.zeros_like(terms["position"]))
        distance = terms["position"]
        info = {"terms": terms, "reward_terms": reward_terms, "distance": distance,
                "is_success": distance <= task.success_radius, "goal": goal, "endpoint_load": load, "hand": cart}
        truncated = t >= self.max_steps
        terminated = torch.zeros_like(truncated)
        return new, self._observe(new, None if noise is None else noise[:, m:]), reward, terminated, truncated, info


def _select(mask: Tensor, a: Any, b: Any) -> Any:
    """Element-wise choice between two (nested NamedTuple) states: a where mask (B,), else b."""
    if a is None:
        return None
    if isinstance(a, tuple):
        return type(a)(*(_select(mask, x, y) for x, y in zip(a, b, strict=True)))
    m = mask.reshape(-1, *([1] * (a.dim() - 1)))
    return torch.where(m, a, b)


class Rollout(NamedTuple):
    """One episode of a batch, time-major: observations (T + 1, B, O), actions (T, B, M), rewards (T, B),
    terms {name: (T, B)}, hand (T + 1, B, 4) endpoint states, goals (T + 1, B, 2), joint (T + 1, B, 2 dof),
    activation (T + 1, B, M), hidden (T, B, H) policy states (empty when the policy has none),
    success (B,) at the last step, and the final env state."""

    observations: Tensor
    actions: Tensor
    rewards: Tensor
    terms: dict[str, Tensor]
    hand: Tensor
    goals: Tensor
    joint: Tensor
    activation: Tensor
    hidden: Tensor
    success: Tensor
    final_state: EnvState


Policy = Callable[[Tensor, Any], tuple[Tensor, Any]]


_FUSED_STEPS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # policy -> {id(env): compiled step}


def _policy_env_step(env: Env, policy: Policy, compiled: bool) -> Callable[..., tuple]:
    """(obs, hidden, state) -> (action, hidden, state, obs, reward, info): policy then env, checked; or
    both fused into one torch.compile'd step (cached per policy and env; no per-step input checks)."""
    if not compiled:
        def step(obs: Tensor, hidden: Any, state: EnvState) -> tuple:
            action, hidden = policy(obs, hidden)
            state, obs, reward, _, _, info = env.step(state, action)
            return action, hidden, state, obs, reward, info
        return step
    cache = _FUSED_STEPS.setdefault(policy, {})
    if id(env) not in cache:
        def fused(obs: Tensor, hidden: Any, state: EnvState, noise: Tensor | None) -> tuple:
            action, hidden = policy(obs, hidden)
            state, obs, reward, _, _, info = env._transition(state, action, noise)
            return action, hidden, state, obs, reward, info
        compiled_step = torch.compile(fused, dynamic=False)
        cache[id(env)] = lambda obs, hidden, state: compiled_step(obs, hidden, state, env.draw_noise(env.batch_size))
    return cache[id(env)]


def rollout(env: Env, policy: Policy, *, seed: int | torch.Generator | None = None,
            options: dict[str, Any] | None = None, n_steps: int | None = None, hidden: Any = None,
            state: EnvState | None = None, obs: Tensor | None = None, compile: bool = False) -> Rollout:
    """Run `policy(obs, hidden) -> (action, hidden)` for `n_steps` (default: the episode length).

    Starts from `state`/`obs` when given (to continue a truncated BPTT window), else from `env.reset(seed,
    options)`. `hidden` is the policy's initial state (its `initial_hidden(B)` when it has one and None is
    given). Nothing is detached: gradients flow through the whole rollout.

    `compile=True` fuses the policy and the env transition into one `torch.compile`d step (compiled on the
    first call, tens of seconds, then reused for this policy and env): several times faster forward and
    backward at small batch, without per-step input checks. Needs a policy that torch.compile can trace.
    """
    if state is None:
        state, obs = env.reset(seed, options)
    elif obs is None:
        obs = env.observe(state)
    if hidden is None and hasattr(policy, "initial_hidden"):
        hidden = policy.initial_hidden(env.batch_size)
    steps = env.max_steps if n_steps is None else n_steps
    if not isinstance(steps, int) or steps < 1:
        raise ValueError(f"n_steps must be a positive int, got {steps!r}")
    observations, actions, rewards, hand, goals, joint, activation, hiddens = [obs], [], [], [], [], [], [], []
    terms: dict[str, list[Tensor]] = {}
    hand.append(env.effector.cartesian(state.effector))
    goals.append(env.task.goal(state.task, state.t, env.dt))
    joint.append(state.effector.joint)
    activation.append(state.effector.activation)
    info: dict[str, Any] = {}
    step = _policy_env_step(env, policy, compile)
    for _ in range(steps):
        action, hidden, state, obs, reward, info = step(obs, hidden, state)
        if isinstance(hidden, Tensor):
            hiddens.append(hidden)
        observations.append(obs)
        actions.append(action)
        rewards.append(reward)
        for k, v in info["terms"].items():
            terms.setdefault(k, []).append(v)
        hand.append(info["hand"])
        goals.append(info["goal"])
        joint.append(state.effector.joint)
        activation.append(state.effector.activation)
    empty = torch.zeros(steps, env.batch_size, 0, dtype=env.dtype, device=env.device)
    return Rollout(
        observations=torch.stack(observations), actions=torch.stack(actions), rewards=torch.stack(rewards),
        terms={k: torch.stack(v) for k, v in terms.items()}, hand=torch.stack(hand), goals=torch.stack(goals),
        joint=torch.stack(joint), activation=torch.stack(activation),
        hidden=torch.stack([h.reshape(env.batch_size, -1) for h in hiddens]) if hiddens else empty,
        success=info["is_success"], final_state=state,
    )
