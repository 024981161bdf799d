"""Gymnasium registration of the catalogue ids.

Importing `mn_gym` registers every catalogue id (`mn_gym.list_ids()`) with Gymnasium, with an `entry_point`
(`MnGymEnv`, one episode) and a `vector_entry_point` (`MnGymVectorEnv`, one batched functional env):

    import gymnasium as gym
    env = gym.make("mn_gym:ArmReach-v0", muscle="thelen", render_mode="rgb_array")     # imports mn_gym itself
    envs = gym.make_vec("ArmReach-v0", num_envs=1024, integrator="rk4")                # vector_entry_point

`max_episode_steps` is registered as the default episode's length (its `EnvSpec.max_steps`), so the
`TimeLimit` that `gym.make` adds and the env's own truncation agree. A variant that lengthens the episode
(smaller `dt`, longer `episode_duration`) is still cut at the registered step count, in every face, unless
`max_episode_steps=` is passed too: `mn_gym.registry.make` / `make_vec` pass the variant's own length
(`make_vec` also hands `vector_kwargs` such as `{"autoreset_mode": "SameStep"}` to the vector entry point).
Episodes end at min(max_episode_steps, round(episode_duration / dt)) steps.
"""

from __future__ import annotations

from typing import Any

import gymnasium
from gymnasium.envs.registration import VectorizeMode

from mn_gym import catalogue
from mn_gym.catalogue import EnvEntry, entry, list_ids

ENTRY_POINT = "mn_gym.faces.gym:MnGymEnv"
VECTOR_ENTRY_POINT = "mn_gym.faces.vector:MnGymVectorEnv"

__all__ = ["ENTRY_POINT", "VECTOR_ENTRY_POINT", "gym_ids", "make", "make_vec", "natural_max_steps", "register",
           "register_all", "register_gym"]


def natural_max_steps(env_id: str, **kwargs: Any) -> int:
    """Steps per episode of `env_id` with variant `kwargs`: round(episode_duration / dt)."""
    return catalogue.spec(env_id, **kwargs).max_steps


def register_gym(env_id: str, *, overwrite: bool = False) -> None:
    """Register a catalogue id (`mn_gym.register(...)` adds ids) with Gymnasium; a no-op when it already is,
    unless `overwrite`."""
    entry(env_id)  # unknown ids raise, listing the registered ones
    if env_id in gymnasium.registry and not overwrite:
        return
    if env_id in gymnasium.registry:
        del gymnasium.registry[env_id]
    gymnasium.register(id=env_id, entry_point=ENTRY_POINT, vector_entry_point=VECTOR_ENTRY_POINT,
                       max_episode_steps=natural_max_steps(env_id), kwargs={"env": env_id})


def register(env_id: str, effector: str, task: str, *, description: str = "", overwrite: bool = False,
             **defaults: Any) -> EnvEntry:
    """Add an env id to the catalogue and to Gymnasium at once (`mn_gym.register`): usable from
    `mn_gym.make`, `gymnasium.make` and `gymnasium.make_vec` alike."""
    new = catalogue.register(env_id, effector, task, description=description, overwrite=overwrite, **defaults)
    register_gym(env_id, overwrite=overwrite)
    return new


def register_all() -> None:
    """Register every catalogue id with Gymnasium (run when `mn_gym` is imported)."""
    for env_id in list_ids():
        register_gym(env_id)


def gym_ids() -> list[str]:
    """The catalogue ids registered with Gymnasium (`gymnasium.make` accepts each)."""
    reg = gymnasium.registry
    return [i for i in list_ids() if i in reg and reg[i].entry_point == ENTRY_POINT]


def make(env_id: str, **kwargs: Any) -> gymnasium.Env:
    """`gymnasium.make(env_id, **kwargs)` with `max_episode_steps` set to this variant's own episode length."""
    kwargs.setdefault("max_episode_steps", natural_max_steps(env_id, **_task_kwargs(kwargs)))
    return gymnasium.make(env_id, **kwargs)


def make_vec(env_id: str, num_envs: int = 1, vectorization_mode: str | None = None,
             vector_kwargs: dict[str, Any] | None = None, **kwargs: Any) -> gymnasium.vector.VectorEnv:
    """`gymnasium.make_vec(env_id, num_envs, vectorization_mode, vector_kwargs, **kwargs)` with
    `max_episode_steps` set to this variant's own length. Gymnasium refuses `vector_kwargs` for a vector entry
    point; here they reach `MnGymVectorEnv` as keyword arguments (e.g. `{"autoreset_mode": "SameStep"}`)."""
    kwargs.setdefault("max_episode_steps", natural_max_steps(env_id, **_task_kwargs(kwargs)))
    if vector_kwargs and VectorizeMode(vectorization_mode or VectorizeMode.VECTOR_ENTRY_POINT) == \
            VectorizeMode.VECTOR_ENTRY_POINT:
        kwargs, vector_kwargs = {**kwargs, **vector_kwargs}, None
    return gymnasium.make_vec(env_id, num_envs=num_envs, vectorization_mode=vectorization_mode,
                              vector_kwargs=vector_kwargs, **kwargs)


def _task_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in kwargs.items() if k in ("dt", "episode_duration")}
