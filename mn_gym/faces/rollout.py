"""The differentiable face: `rollout(env, policy)` runs a policy through the functional env, nothing detached.

    env = mn_gym.make("PointMassReach-v0", batch_size=64)
    ro = mn_gym.rollout(env, policy)               # time-major tensors; gradients flow through the whole episode
    (-ro.rewards.mean()).backward()
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from mn_gym.compilation import Policy, compile_policy_step
from mn_gym.functional import Env, EnvState

__all__ = ["Policy", "Rollout", "rollout"]


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


def _checked_step(env: Env, policy: Policy) -> Callable[[Tensor, Any, EnvState], tuple]:
    """(obs, hidden, state) -> (action, hidden, state, obs, reward, info): policy, then the env transition with
    the action checked (the state, checked once when the rollout starts, is the env's own from then on)."""
    def step(obs: Tensor, hidden: Any, state: EnvState) -> tuple:
        action, hidden = policy(obs, hidden)
        env.check_action(action, env.batch_size)
        state, obs, reward, _, _, info = env.transition(state, action, env.draw_noise(env.batch_size))
        return action, hidden, state, obs, reward, info
    return step


def rollout(env: Env, policy: Policy, *, seed: int | torch.Generator | None = None,
            options: dict[str, Any] | None = None, n_steps: int | None = None, hidden: Any = None,
            state: EnvState | None = None, obs: Tensor | None = None, compile: bool = False) -> Rollout:
    """Run `policy(obs, hidden) -> (action, hidden)` for `n_steps` (default: the episode length).

    Starts from `state`/`obs` when given (to continue a truncated BPTT window), else from `env.reset(seed,
    options)`. `hidden` is the policy's initial state (its `initial_hidden(B)` when it has one and None is
    given). Nothing is detached: gradients flow through the whole rollout.

    `compile=True` runs `mn_gym.compilation.compile_policy_step`: the policy and the env transition fused into
    one `torch.compile`d step (compiled on the first call, tens of seconds, then reused for this policy and
    env), several times faster forward and backward at small batch, without per-step input checks.
    """
    if state is None:
        state, obs = env.reset(seed, options)
    else:
        env.check_state(state)
        if obs is None:
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
    step = compile_policy_step(env, policy) if compile else _checked_step(env, policy)
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
