"""The env catalogue: which effector, task and defaults each env id means, resolved into frozen `EnvSpec`s.

Entries come from `envs/catalogue.toml` (installed as `mn_gym.catalogue_data`); `register` adds more from
Python. `spec(id, **overrides)` resolves an id and a variant's settings into an `EnvSpec` once;
`make(id, batch_size=..., device=..., dtype=..., **overrides)` builds the functional `Env` from it.
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import torch

from mn_gym.core.prebuilt import EFFECTORS
from mn_gym.functional import DEFAULT_EPISODE_DURATION, ENV_SETTINGS, Env, EnvSpec, SensorySettings
from mn_gym.tasks import task_class

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib


@dataclass(frozen=True)
class EnvEntry:
    """One catalogue entry: an effector name, a task name and default keyword arguments."""

    env_id: str
    effector: str
    task: str
    defaults: dict[str, Any] = field(default_factory=dict)
    description: str = ""

    def valid_kwargs(self) -> list[str]:
        """Every keyword `make` accepts for this id."""
        eff = set(inspect.signature(EFFECTORS[self.effector]).parameters) - {"dtype", "device"}
        task = set(task_class(self.task).defaults) | {"success_radius", "weights"}
        return sorted(eff | task | set(ENV_SETTINGS))


REGISTRY: dict[str, EnvEntry] = {}


def register(env_id: str, effector: str, task: str, *, description: str = "", overwrite: bool = False,
             **defaults: Any) -> EnvEntry:
    """Add an env id: `register("MyReach-v0", "arm26", "reach", muscle="thelen", episode_duration=2.0)`."""
    if not isinstance(env_id, str) or not env_id:
        raise ValueError(f"env id must be a non-empty string, got {env_id!r}")
    if env_id in REGISTRY and not overwrite:
        raise ValueError(f"env id {env_id!r} is already registered (pass overwrite=True to replace it)")
    if effector not in EFFECTORS:
        raise ValueError(f"{env_id}: unknown effector {effector!r}; known: {sorted(EFFECTORS)}")
    task_class(task)
    entry = EnvEntry(env_id, effector, task, dict(defaults), description)
    _split(entry, defaults)  # validates the defaults' names
    REGISTRY[env_id] = entry
    return entry


def _load_builtin() -> None:
    text = resources.files("mn_gym.catalogue_data").joinpath("catalogue.toml").read_text()
    for env_id, table in tomllib.loads(text).items():
        table = dict(table)
        register(env_id, table.pop("effector"), table.pop("task"), description=table.pop("description", ""),
                 **table)


def list_ids() -> list[str]:
    """The registered env ids."""
    return sorted(REGISTRY)


def entry(env_id: str) -> EnvEntry:
    try:
        return REGISTRY[env_id]
    except KeyError:
        raise ValueError(f"unknown env id {env_id!r}; registered: {list_ids()}") from None


def _split(e: EnvEntry, kwargs: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Route keyword arguments to the effector, the task and the env; unknown names raise."""
    eff_names = set(inspect.signature(EFFECTORS[e.effector]).parameters) - {"dtype", "device"}
    task_names = set(task_class(e.task).defaults) | {"success_radius", "weights"}
    eff, task, env = {}, {}, {}
    for key, value in kwargs.items():
        if key in eff_names:
            eff[key] = value
        elif key in task_names:
            task[key] = value
        elif key in ENV_SETTINGS:
            env[key] = value
        else:
            raise TypeError(f"{e.env_id}: unknown argument {key!r}; valid: {e.valid_kwargs()}")
    return eff, task, env


def spec(env_id: str, *, max_episode_steps: int | None = None, **kwargs: Any) -> EnvSpec:
    """The frozen `EnvSpec` of `env_id` with `kwargs` overriding the catalogue defaults (unknown names raise)
    and a face's `max_episode_steps` cut."""
    e = entry(env_id)
    eff_kw, task_kw, env_kw = _split(e, {**e.defaults, **kwargs})
    sensing = SensorySettings(**{k: v for k, v in env_kw.items() if k in SensorySettings.__dataclass_fields__})
    return EnvSpec(env_id, e.effector, e.task, eff_kw, task_kw, sensing,
                   episode_duration=env_kw.get("episode_duration", DEFAULT_EPISODE_DURATION),
                   deterministic=env_kw.get("deterministic", False), seed=env_kw.get("seed"),
                   max_episode_steps=max_episode_steps)


def make(env_id: str, *, batch_size: int = 1, device: torch.device | str | None = None,
         dtype: torch.dtype = torch.float32, **kwargs: Any) -> Env:
    """The functional env for `env_id` with `batch_size` episodes side by side on `device` in `dtype`.

    Keyword arguments override the catalogue defaults (e.g. `muscle="thelen"`, `integrator="rk4"`,
    `proprioception_delay=0.03`, `k=20.0` for the curl field); `list_ids()` gives the ids. Equivalent to
    `spec(env_id, **kwargs).make(batch_size, device=device, dtype=dtype)`.
    """
    return spec(env_id, **kwargs).make(batch_size, device=device, dtype=dtype)


_load_builtin()
