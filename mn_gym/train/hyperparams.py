"""Tuned settings per env id, shipped as `mn_gym/hyperparams/<algo>.yml` in rl-zoo3's hyperparameter format.

    from mn_gym.train.hyperparams import tuned, zoo_file
    tuned("ppo", "ArmReach-v0")                      # PPOSettings: the dataclass defaults under the file's entry
    tuned("ppo", "ArmReach-v0", {"n_envs": 64})      # ... with overrides on top (`mn-gym train --set`)
    zoo_file("ppo")                                  # the file, for rl-zoo3's --conf-file

A file maps env id -> {key: value}. The keys are mn_gym's setting names (`mn-gym train --show-settings`), which for
ppo, sac and recurrent-ppo are the stable-baselines3 constructor's arguments plus rl-zoo3's `n_envs`, so rl-zoo3
trains from the same file:

    python -m rl_zoo3.train --algo ppo --env ArmReach-v0 --gym-packages mn_gym --conf-file mn_gym/hyperparams/ppo.yml

(rl-zoo3 calls recurrent-ppo `ppo_lstm`, `ZOO_NAMES`.) The keys rl-zoo3 alone reads are checked and dropped:
`n_timesteps` (its budget), `policy` and `normalize`, which must say what mn_gym's trainer does (`ZOO_KEYS`:
MlpPolicy / MlpLstmPolicy, and VecNormalize of observations and rewards with the algo's gamma, rl-zoo3's
`normalize: true`). rsl-ppo.yml and bptt.yml have the same shape with mn_gym's names only (rl-zoo3 runs neither).

An id without an entry, such as one added with `mn_gym.register`, gets the dataclass defaults: no base id is
guessed, since a registered variant may change the effector, the task or the episode; `tuned_ids` says which ids
have an entry, and `baselines/tune.py --write` adds one.

The files are data: read with `yaml.safe_load`, never evaluated. rl-zoo3's string form of `policy_kwargs`
(`"dict(net_arch=[64, 64], log_std_init=-1)"`) is read only as `dict(key=literal, ...)` (nested `dict(...)`
allowed) or a `{...}` literal; anything else (names such as `nn.ReLU`, other calls) is refused. A file that is not
valid YAML, an entry that is not a mapping, an unknown key or a bad value raise `HyperparamsError` naming the file,
the env id and the key.
"""

from __future__ import annotations

import ast
from collections.abc import Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

import yaml

from mn_gym.train.settings import SETTINGS, Settings

__all__ = ["FOLDER", "NEW_ENTRY_TIMESTEPS", "ZOO_KEYS", "ZOO_NAMES", "HyperparamsError", "tuned", "tuned_ids",
           "write_tuned", "zoo_file"]

FOLDER = Path(__file__).resolve().parents[1] / "hyperparams"
ZOO_NAMES = {"ppo": "ppo", "sac": "sac", "recurrent-ppo": "ppo_lstm"}  # mn_gym algo -> rl-zoo3's --algo
ZOO_KEYS: dict[str, dict[str, Any]] = {  # rl-zoo3-only keys and the values that match mn_gym's SB3 trainer
    "ppo": {"policy": "MlpPolicy", "normalize": True},
    "sac": {"policy": "MlpPolicy", "normalize": True},
    "recurrent-ppo": {"policy": "MlpLstmPolicy", "normalize": True},
}
NEW_ENTRY_TIMESTEPS = 1_000_000  # rl-zoo3's n_timesteps in an entry that write_tuned adds


class _Dumper(yaml.SafeDumper):
    """yaml.safe_dump's dumper with lists in flow style (`net_arch: [128, 128]`) and mappings in block style."""


def _flow_list(dumper: yaml.SafeDumper, data: list | tuple) -> yaml.SequenceNode:
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=True)


_Dumper.add_representer(list, _flow_list)
_Dumper.add_representer(tuple, _flow_list)


class HyperparamsError(ValueError):
    """A hyperparameter file that cannot be read as settings: its message names the file, env id and key."""


def _settings_class(algo: str) -> type[Settings]:
    if algo not in SETTINGS:
        raise HyperparamsError(f"unknown algo {algo!r}; choose one of {', '.join(SETTINGS)}")
    return SETTINGS[algo]


def zoo_file(algo: str) -> Path:
    """The package's hyperparameter file of `algo` (rl-zoo3's `--conf-file` for ppo, sac and recurrent-ppo)."""
    _settings_class(algo)
    return FOLDER / f"{algo}.yml"


def _read(path: Path) -> dict[Any, dict[str, Any]]:
    """The file's entries, env id -> mapping, checked for shape."""
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise HyperparamsError(f"{path}: cannot read the hyperparameter file: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise HyperparamsError(f"{path}: not valid YAML: {' '.join(str(exc).split())}") from None
    data = {} if data is None else data
    if not isinstance(data, dict):
        raise HyperparamsError(f"{path}: must map env ids to settings, got a {type(data).__name__}")
    for env_id, entry in data.items():
        if not isinstance(entry, dict):
            raise HyperparamsError(f"{path}: {env_id}: the entry must map setting names to values, got {entry!r}")
    return data


def _dict_call(node: ast.expr) -> Any:
    """`dict(key=..., ...)` (nested allowed) as a dict; any other node as a Python literal."""
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
        if all(k.arg is not None for k in node.keywords):
            return {k.arg: _dict_call(k.value) for k in node.keywords}
    return ast.literal_eval(node)


def _policy_kwargs(text: str, where: str) -> dict[str, Any]:
    """rl-zoo3's `policy_kwargs` string, read without evaluating it."""
    try:
        value = _dict_call(ast.parse(text, mode="eval").body)
    except (SyntaxError, ValueError, TypeError):
        value = None
    if not isinstance(value, dict):
        raise HyperparamsError(f"{where}: policy_kwargs {text!r} is not read: only dict(key=literal, ...) or a "
                               "{...} literal, no names or calls (the file is data, never evaluated)")
    return value


def _entry_settings(cls: type[Settings], entry: Mapping[str, Any], where: str) -> Settings:
    """The settings of one entry: rl-zoo3-only keys checked and dropped, rl-zoo3's value forms translated."""
    values = dict(entry)
    zoo = ZOO_KEYS.get(cls.algo, {})
    for key, expected in zoo.items():
        if key in values and values.pop(key) != expected:
            raise HyperparamsError(f"{where}: {key} must be {expected!r}, what mn_gym's {cls.algo} trainer runs "
                                   f"(got {entry[key]!r})")
    if zoo and "n_timesteps" in values:
        steps = values.pop("n_timesteps")
        if isinstance(steps, bool) or not isinstance(steps, (int, float)) or steps <= 0:
            raise HyperparamsError(f"{where}: n_timesteps must be a positive number of env steps, got {steps!r}")
    unknown = sorted(map(str, set(values) - set(cls.names())))
    if unknown:
        valid = [*cls.names(), *zoo, "n_timesteps"] if zoo else cls.names()
        raise HyperparamsError(f"{where}: unknown key(s) {unknown}; valid: {', '.join(valid)}")
    if isinstance(values.get("policy_kwargs"), str):
        values["policy_kwargs"] = _policy_kwargs(values["policy_kwargs"], where)
    if isinstance(values.get("train_freq"), list):  # YAML has no tuples: [1, episode] is (1, 'episode')
        values["train_freq"] = tuple(values["train_freq"])
    try:
        return cls.from_dict(values)
    except ValueError as exc:
        raise HyperparamsError(f"{where}: {exc}") from None


def tuned(algo: str, env_id: str, overrides: Mapping[str, Any] | None = None, *,
          path: str | Path | None = None) -> Settings:
    """`algo`'s settings for `env_id`: the dataclass defaults under the entry of `env_id` in `path` (default:
    `zoo_file(algo)`; no entry: the defaults), then `overrides` (setting name -> value) on top."""
    cls = _settings_class(algo)
    path = zoo_file(algo) if path is None else Path(path)
    entries = _read(path)
    settings = _entry_settings(cls, entries[env_id], f"{path}: {env_id}") if env_id in entries else cls()
    return cls.from_dict(overrides or {}, settings)


def tuned_ids(algo: str, path: str | Path | None = None) -> list[str]:
    """The env ids with an entry in `algo`'s file (default: the package's)."""
    return [str(k) for k in _read(zoo_file(algo) if path is None else Path(path))]


def _comments(text: str) -> tuple[list[str], dict[str, list[str]]]:
    """The header (the leading comment lines) and, per env id, the comment lines right above its key."""
    lines = text.splitlines()
    n = next((i for i, line in enumerate(lines) if not line.startswith("#")), len(lines))
    above: dict[str, list[str]] = {}
    pending: list[str] = []
    for line in lines[n:]:
        if line.startswith("#"):
            pending.append(line)
        elif line and not line[0].isspace():  # a top-level key: `ArmReach-v0:`
            above[line.partition(":")[0].strip().strip("'\"")] = pending
            pending = []
        elif not line:
            pending = []
    return lines[:n], above


def write_tuned(algo: str, env_id: str, settings: Settings, path: str | Path | None = None,
                comment: str | None = None) -> Path:
    """Write `settings` as the entry of `env_id` in `algo`'s file (default: the package's) and return its path.

    Keeps the header, the other entries and their comments, and the entry's rl-zoo3 keys (a new entry gets
    `ZOO_KEYS` and n_timesteps `NEW_ENTRY_TIMESTEPS`); every setting is written, so rl-zoo3 runs all of them.
    `comment` (lines, without `#`) replaces the comment above the entry; None keeps it."""
    _settings_class(algo)
    if settings.algo != algo:  # RecurrentPPOSettings are PPOSettings too: the algo tells them apart
        raise HyperparamsError(f"{type(settings).__name__} are not {algo} settings")
    path = zoo_file(algo) if path is None else Path(path)
    entries = _read(path)
    header, above = _comments(path.read_text())
    zoo = {"n_timesteps": NEW_ENTRY_TIMESTEPS, **ZOO_KEYS[algo]} if algo in ZOO_KEYS else {}
    zoo.update({k: v for k, v in entries.get(env_id, {}).items() if k in zoo})
    entries[env_id] = {**zoo, **asdict(settings)}
    if comment is not None:
        above[env_id] = [f"# {line}".rstrip() for line in comment.splitlines()]
    blocks = ["\n".join(header)] if header else []
    for key in sorted(entries, key=str):
        dumped = yaml.dump({key: entries[key]}, Dumper=_Dumper, sort_keys=False, width=120)
        blocks.append("\n".join([*above.get(str(key), []), dumped.rstrip()]))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text("\n\n".join(blocks) + "\n")
    tmp.replace(path)
    return path
