"""The rsl-rl face: `RslRlVecEnv`, a batched functional env as rsl-rl-lib's `VecEnv` (torch in, torch out).

    envs = RslRlVecEnv("ArmReach-v0", num_envs=4096, device="cuda")
    runner = rsl_rl.runners.OnPolicyRunner(envs, train_cfg, device="cuda")     # rsl-rl's own runner works too

Observations, actions, rewards and dones stay torch tensors on the env's device: no numpy round trip, one
batched functional step per call. Episodes that end are restarted in the same step (rsl-rl's convention): the
returned observation is the new episode's first, `dones` marks the lanes that ended, `extras["time_outs"]` the
ones cut by the time limit (rsl-rl bootstraps those), `extras["log"]` the mean success and final distance of the
episodes that ended. Physics and rewards are the functional env's (`BatchCore` calls `Env.transition`).
"""

from __future__ import annotations

from typing import Any

import torch
from rsl_rl.env import VecEnv
from tensordict import TensorDict
from torch import Tensor

from mn_gym.faces.common import BatchCore
from mn_gym.functional import Env

__all__ = ["OBS_GROUP", "RslRlVecEnv"]

OBS_GROUP = "policy"  # the observation group: rsl-rl's obs_groups map "actor" / "critic" to it


class RslRlVecEnv(VecEnv):
    """`num_envs` episodes of a catalogue env (or a built float32 functional `Env`) for rsl-rl-lib.

    `step(actions (N, M) in [-1, 1])` -> (obs TensorDict {"policy": (N, obs_size)}, rewards (N,), dones (N,) long,
    extras {"time_outs": (N,) long, "log": {...}}). Actions map to excitations (a + 1) / 2 as in every face.

    Args:
        env: a catalogue id, or a functional `mn_gym.Env` (float32) whose batch is this env's.
        num_envs: batch size (default 1 for an id; the env's batch for an Env).
        device: torch device of the batch.
        seed: seed of the first reset (None: the env's generator as it is).
        compile: `torch.compile` the step.
        max_episode_steps: cut episodes at min(this, the env's own length).
        **kwargs: catalogue settings of the id, as for `mn_gym.make`.
    """

    FACE_KWARGS = ("num_envs", "device", "seed", "compile", "max_episode_steps")

    def __init__(self, env: str | Env, num_envs: int | None = None, *, device: torch.device | str | None = None,
                 seed: int | None = None, compile: bool = False, max_episode_steps: int | None = None,
                 **kwargs: Any) -> None:
        self.core = BatchCore.for_face(env, num_envs, kwargs, self.FACE_KWARGS, device=device, compile=compile,
                                       max_episode_steps=max_episode_steps)
        functional = self.core.env
        self.num_envs, self.num_actions = self.core.num_envs, functional.action_size
        self.max_episode_length = functional.max_steps
        self.device = functional.device
        self.cfg = {"env_id": functional.env_id}
        self.episode_length_buf = torch.zeros(self.num_envs, dtype=torch.long, device=self.device)
        self._obs = self.core.reset(seed, None)

    @property
    def functional(self) -> Env:
        """The batched functional env behind this face."""
        return self.core.env

    def reset(self, seed: int | None = None) -> TensorDict:
        """Restart every lane (reseeding the generator when `seed` is given); the first observations."""
        self._obs = self.core.reset(seed, None)
        self.episode_length_buf.zero_()
        return self.get_observations()

    def get_observations(self) -> TensorDict:
        return TensorDict({OBS_GROUP: self._obs}, batch_size=[self.num_envs], device=self.device)

    def step(self, actions: Tensor) -> tuple[TensorDict, Tensor, Tensor, dict[str, Any]]:
        core = self.core
        obs, reward, terminated, truncated, info = core.step(core.excitation(actions))
        done = terminated | truncated
        self.episode_length_buf += 1
        log: dict[str, Tensor] = {}
        if bool(done.any()):
            ended = done.float()
            n = ended.sum()
            log = {"/success": (info["is_success"].float() * ended).sum() / n,
                   "/final_distance": (info["distance"] * ended).sum() / n}
            obs = core.restart(done, obs, every=bool(done.all()))
            self.episode_length_buf.masked_fill_(done, 0)
        self._obs = obs
        extras = {"time_outs": (truncated & ~terminated).long(), "log": log}
        return self.get_observations(), reward, done.long(), extras

    def close(self) -> None:
        self.core.close()

    def __repr__(self) -> str:
        return f"RslRlVecEnv({self.functional.env_id!r}, num_envs={self.num_envs}, device={self.device})"
