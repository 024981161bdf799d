"""What each trainer can be told: one frozen dataclass of settings per algo, every field typed and documented.

    from mn_gym.train.settings import BPTTSettings, SETTINGS
    BPTTSettings(lr=3e-3)                                  # checked when built: types and ranges
    SETTINGS["ppo"].parse({"n_envs": "64"})                # from `mn-gym train --set KEY=VALUE` text
    dataclasses.asdict(BPTTSettings())                     # what `run.json` stores

The dataclass defaults are the fallback, the same for every env; a run's settings are the entry of its env in
`mn_gym/hyperparams/<algo>.yml` laid over them (`mn_gym.train.hyperparams.tuned`).
`mn-gym train --show-settings` prints every field with its type, value for an env, default and doc (`describe`).
"""

from __future__ import annotations

import ast
import inspect
import math
import types
from collections.abc import Mapping
from dataclasses import MISSING, Field, dataclass, field, fields, replace
from typing import Any, ClassVar, Literal, TypeVar, Union, get_args, get_origin, get_type_hints

__all__ = ["ALGOS", "SETTINGS", "BPTTSettings", "LRSchedule", "PPOSettings", "RecurrentPPOSettings", "RslPPOSettings",
           "SACSettings", "Settings", "about", "describe", "type_name"]

S = TypeVar("S", bound="Settings")
LRSchedule = Literal["constant", "cosine", "exponential"]


def about(doc: str, *, positive: bool = False, at_most: float | None = None,
          nonnegative: bool = False) -> dict[str, Any]:
    """A settings field's metadata: a one-line doc (with units) and the range checked when the settings are built
    (`positive`: > 0; `nonnegative`: >= 0; `at_most`: <= that bound; each finite; None always passes)."""
    return {"doc": doc, "positive": positive, "at_most": at_most, "nonnegative": nonnegative}


def type_name(hint: Any) -> str:
    """A field type as `--show-settings` and the error messages write it: `int | None`, `'constant' | 'cosine'`."""
    origin = get_origin(hint)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(hint))
    if origin in (Union, types.UnionType):
        return " | ".join(type_name(a) for a in get_args(hint))
    if hint is type(None):
        return "None"
    return getattr(origin or hint, "__name__", str(hint))


def _matches(hint: Any, value: Any) -> bool:
    """Whether `value` is of type `hint` (an int is a float; a bool is not a number)."""
    origin = get_origin(hint)
    if origin in (Union, types.UnionType):
        return any(_matches(a, value) for a in get_args(hint))
    if origin is Literal:
        return any(type(value) is type(a) and value == a for a in get_args(hint))
    if hint is type(None):
        return value is None
    if hint in (int, float) and isinstance(value, bool):
        return False
    if hint is float:
        return isinstance(value, (int, float))
    return isinstance(value, origin or hint)


def _float_field(hint: Any) -> bool:
    """Whether a field of type `hint` takes floats but not ints (an int given there is stored as a float)."""
    options = get_args(hint) if get_origin(hint) in (Union, types.UnionType) else (hint,)
    return float in options and int not in options


def check_modular(algo: str, modular: Mapping[str, Any] | None) -> None:
    """Raise a ValueError when `modular` names an argument `ModularGRU` does not take (its values are checked
    when the trainer builds it)."""
    if modular is None:
        return
    from mn_gym.modular import ModularGRU  # torch: imported only when a modular memory is asked for

    known = set(inspect.signature(ModularGRU).parameters) - {"n_in"}
    unknown = sorted(set(modular) - known)
    if unknown:
        raise ValueError(f"{algo} setting modular has unknown key(s) {unknown}; ModularGRU takes: "
                         f"{', '.join(sorted(known))}")


def _default(f: Field) -> Any:
    return f.default_factory() if f.default is MISSING else f.default


@dataclass(frozen=True)
class Settings:
    """Base of the per-algo settings: each field is checked against its type and range when built."""

    algo: ClassVar[str]

    def __post_init__(self) -> None:
        hints = get_type_hints(type(self))
        for f in fields(self):
            value, hint = getattr(self, f.name), hints[f.name]
            if not _matches(hint, value):
                raise ValueError(f"{self.algo} setting {f.name} must be {type_name(hint)}, got {value!r}")
            if type(value) is int and _float_field(hint):
                object.__setattr__(self, f.name, float(value))  # 1 -> 1.0 in a float field, as run.json shows it
            low, high = f.metadata["positive"], f.metadata["at_most"]
            zero = f.metadata.get("nonnegative", False)
            if (low or zero or high is not None) and isinstance(value, (int, float)) and not isinstance(value, bool):
                if not (math.isfinite(value) and (not low or value > 0) and (not zero or value >= 0)
                        and (high is None or value <= high)):
                    span = (f"in (0, {high:g}]" if low and high is not None else "> 0" if low
                            else f"in [0, {high:g}]" if zero and high is not None else ">= 0" if zero
                            else f"<= {high:g}")
                    raise ValueError(f"{self.algo} setting {f.name} must be {span}, got {value!r}")

    @classmethod
    def names(cls) -> list[str]:
        """The field names, in declaration order."""
        return [f.name for f in fields(cls)]

    @classmethod
    def from_dict(cls: type[S], values: Mapping[str, Any], base: S | None = None) -> S:
        """`base` (default: the dataclass defaults) with `values` replacing some; an unknown name raises a
        ValueError listing the valid ones."""
        unknown = sorted(set(values) - set(cls.names()))
        if unknown:
            raise ValueError(f"unknown {cls.algo} setting(s) {unknown}; valid: {', '.join(cls.names())}")
        return cls(**values) if base is None else replace(base, **values)

    @classmethod
    def parse_values(cls, texts: Mapping[str, str]) -> dict[str, Any]:
        """`KEY=VALUE` text as values (names checked later, by `from_dict`): each read as a Python literal (`1e-3`,
        `None`, `False`, `{'net_arch': [8]}`), or kept as text where the field takes that string
        (`lr_schedule=cosine`)."""
        hints = get_type_hints(cls)
        values = {}
        for key, text in texts.items():
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text
            if key in hints and not _matches(hints[key], value) and _matches(hints[key], text):
                value = text
            values[key] = value
        return values

    @classmethod
    def parse(cls: type[S], texts: Mapping[str, str]) -> S:
        """The dataclass defaults with `KEY=VALUE` text (`parse_values`) replacing some."""
        return cls.from_dict(cls.parse_values(texts))

    def min_env_steps(self, episode_steps: int) -> int:
        """Env steps of the first update, for episodes of `episode_steps` steps."""
        raise NotImplementedError

    def check_steps(self, steps: int, episode_steps: int) -> None:
        """Raise a ValueError when a budget of `steps` env steps cannot make a single update."""
        need = self.min_env_steps(episode_steps)
        if steps < need:
            raise ValueError(f"a budget of {steps} env steps is too small for one {self.algo} update: it needs at "
                             f"least {need}")


@dataclass(frozen=True)
class BPTTSettings(Settings):
    """Backpropagation through time (`mn_gym.train.bptt`): Adam on the episode loss, a GRU policy."""

    algo: ClassVar[str] = "bptt"
    batch_size: int = field(default=128, metadata=about("episodes per iteration (fresh random starts)", positive=True))
    lr: float = field(default=1e-2, metadata=about("Adam's learning rate (the peak, when decayed)", positive=True))
    n_hidden: int = field(default=64, metadata=about("GRU units of the default policy", positive=True))
    lr_schedule: LRSchedule = field(default="cosine", metadata=about("learning-rate decay over the budget"))
    lr_final: float = field(default=0.02, metadata=about("learning rate at the end of the budget, as a fraction of lr",
                                                         positive=True, at_most=1.0))
    eval_every: int = field(default=25, metadata=about("iterations between held-out evaluations", positive=True))
    compile_effector: bool = field(default=False, metadata=about(
        "run the training effector under torch.compile (~30 s to compile on a cold cache; the eager fused step of "
        "the rigid-tendon effectors is within ~5 % of it, the compliant arm's rk4 step gains)"))
    compile_step: bool = field(default=False, metadata=about(
        "policy and env step fused under torch.compile (rollout(compile=True)): ~2x faster iterations after a "
        "one-off compile of ~30 s on a cold cache, a few s from the on-disk cache; needs a traceable policy"))
    grad_clip: float | None = field(default=1.0, metadata=about("maximum gradient norm (None: no clipping)",
                                                                positive=True))
    truncation: int | None = field(default=None, metadata=about("steps per truncated-BPTT window (None: whole "
                                                                "episodes)", positive=True))
    activity_weight: float = field(default=0.0, metadata=about(
        "weight of the activity regularisation: + w * mean of the policy's hidden states squared (h^2, over "
        "steps, episodes and units; a modular policy's current states)", nonnegative=True))
    activity_rate_weight: float = field(default=0.0, metadata=about(
        "weight of the activity-rate regularisation: + w * mean of (h_t - h_{t-1})^2, the per-step change of the "
        "hidden states (no dt: unitless)", nonnegative=True))

    def min_env_steps(self, episode_steps: int) -> int:
        return self.batch_size * episode_steps  # one batch of whole episodes


@dataclass(frozen=True)
class PPOSettings(Settings):
    """stable-baselines3 PPO (MlpPolicy): every field but `n_envs` goes to the PPO constructor."""

    algo: ClassVar[str] = "ppo"
    n_envs: int = field(default=32, metadata=about("lanes of the one batched training env", positive=True))
    n_steps: int = field(default=128, metadata=about("steps per lane per rollout", positive=True))
    batch_size: int = field(default=1024, metadata=about("minibatch size (env steps)", positive=True))
    n_epochs: int = field(default=5, metadata=about("passes over each rollout", positive=True))
    learning_rate: float = field(default=1e-3, metadata=about("Adam's learning rate", positive=True))
    gamma: float = field(default=0.99, metadata=about("discount factor per step", positive=True, at_most=1.0))
    gae_lambda: float = field(default=0.95, metadata=about("GAE bias-variance trade-off", at_most=1.0))
    clip_range: float = field(default=0.2, metadata=about("clipping of the probability ratio", positive=True))
    ent_coef: float = field(default=0.0, metadata=about("entropy bonus coefficient"))
    policy_kwargs: dict[str, Any] = field(default_factory=lambda: {"net_arch": [128, 128], "log_std_init": -1.0},
                                          metadata=about("network: hidden layer sizes, initial log std"))

    def min_env_steps(self, episode_steps: int) -> int:
        return self.n_steps * self.n_envs  # one rollout


@dataclass(frozen=True)
class RecurrentPPOSettings(PPOSettings):
    """sb3-contrib RecurrentPPO (MlpLstmPolicy): PPO with an LSTM; every field but `n_envs` goes to its constructor."""

    algo: ClassVar[str] = "recurrent-ppo"
    n_envs: int = field(default=128, metadata=about("lanes of the one batched training env", positive=True))
    n_steps: int = field(default=32, metadata=about("steps per lane per rollout", positive=True))
    policy_kwargs: dict[str, Any] = field(
        default_factory=lambda: {"net_arch": [64], "lstm_hidden_size": 64, "log_std_init": -1.0},
        metadata=about("network: layer sizes after the LSTM, LSTM units, initial log std; with a 'modular' key "
                       "(ModularGRU keyword arguments) ModularGRU areas replace the LSTMs"))

    def __post_init__(self) -> None:
        super().__post_init__()
        check_modular(self.algo, self.policy_kwargs.get("modular"))


@dataclass(frozen=True)
class SACSettings(Settings):
    """stable-baselines3 SAC (MlpPolicy): every field but `n_envs` goes to the SAC constructor."""

    algo: ClassVar[str] = "sac"
    n_envs: int = field(default=4, metadata=about("lanes of the one batched training env", positive=True))
    batch_size: int = field(default=256, metadata=about("minibatch size (transitions)", positive=True))
    learning_rate: float = field(default=1e-3, metadata=about("Adam's learning rate", positive=True))
    buffer_size: int = field(default=300_000, metadata=about("replay buffer capacity (transitions; not saved, a "
                                                             "resume starts empty)", positive=True))
    learning_starts: int = field(default=1000, metadata=about("env steps collected before the first update"))
    train_freq: int | tuple[int, str] = field(default=1, metadata=about("update every train_freq vector steps (or "
                                                                        "(n, 'episode'))"))
    gradient_steps: int = field(default=1, metadata=about("gradient steps per update", positive=True))
    gamma: float = field(default=0.99, metadata=about("discount factor per step", positive=True, at_most=1.0))
    tau: float = field(default=0.01, metadata=about("soft update coefficient of the target networks", positive=True,
                                                    at_most=1.0))
    policy_kwargs: dict[str, Any] = field(default_factory=lambda: {"net_arch": [128, 128]},
                                          metadata=about("network: hidden layer sizes"))

    def min_env_steps(self, episode_steps: int) -> int:
        return self.learning_starts + self.n_envs  # the warm-up, then one vector step


@dataclass(frozen=True)
class RslPPOSettings(Settings):
    """rsl-rl-lib's PPO on the batched torch env (`mn_gym.train.rsl`): many envs per step, tensors on the env's
    device. `n_envs`, `n_steps` and the network fields build the actor-critic; the rest go to `rsl_rl`'s PPO."""

    algo: ClassVar[str] = "rsl-ppo"
    n_envs: int = field(default=512, metadata=about("lanes of the one batched training env", positive=True))
    n_steps: int = field(default=64, metadata=about("steps per lane per rollout", positive=True))
    num_learning_epochs: int = field(default=1, metadata=about("passes over each rollout", positive=True))
    num_mini_batches: int = field(default=4, metadata=about("minibatches per pass", positive=True))
    learning_rate: float = field(default=2.3e-3, metadata=about("Adam's (initial) learning rate", positive=True))
    schedule: Literal["adaptive", "fixed"] = field(
        default="adaptive", metadata=about("learning rate: adapted to keep the KL near desired_kl, or fixed"))
    desired_kl: float = field(default=0.006, metadata=about("target KL per update (adaptive schedule)", positive=True))
    gamma: float = field(default=0.995, metadata=about("discount factor per step", positive=True, at_most=1.0))
    lam: float = field(default=0.95, metadata=about("GAE bias-variance trade-off", at_most=1.0))
    clip_param: float = field(default=0.2, metadata=about("clipping of the probability ratio", positive=True))
    entropy_coef: float = field(default=1.4e-3, metadata=about("entropy bonus coefficient"))
    value_loss_coef: float = field(default=1.0, metadata=about("weight of the value loss", positive=True))
    use_clipped_value_loss: bool = field(
        default=False, metadata=about("clip each value update to clip_param around the old value (rsl-rl's default "
                                      "True stalls here: returns of -20 to -40 take hundreds of updates to reach)"))
    max_grad_norm: float = field(default=1.0, metadata=about("maximum gradient norm", positive=True))
    hidden_dims: list[int] = field(default_factory=lambda: [128, 128],
                                   metadata=about("hidden layer sizes of the actor and of the critic"))
    activation: Literal["tanh", "elu", "relu"] = field(default="relu", metadata=about("hidden-layer activation"))
    rnn_type: Literal["none", "gru", "lstm"] = field(
        default="none", metadata=about("a recurrent layer before the hidden layers of the actor and of the critic "
                                       "(rsl-rl's RNNModel), or none (MLPs)"))
    rnn_hidden_dim: int = field(default=64, metadata=about("units of the recurrent layer", positive=True))
    modular: dict[str, Any] | None = field(default=None, metadata=about(
        "ModularGRU areas as the actor's and the critic's memory instead of rsl-rl's RNN (its keyword arguments: "
        "areas, input_areas, output_areas, connections, delay_steps, dale, excitatory_fraction, hidden_noise); "
        "the output areas' states feed the MLP heads; needs rnn_type none"))
    init_std: float = field(default=0.22, metadata=about("initial standard deviation of the Gaussian actions",
                                                        positive=True))
    action_bias: float = field(default=-0.5, metadata=about("initial mean action in [-1, 1] (0: excitation 0.5; "
                                                           "-0.9: 0.05, muscles nearly at rest)", at_most=1.0))

    def __post_init__(self) -> None:
        super().__post_init__()
        check_modular(self.algo, self.modular)
        if self.modular is not None and self.rnn_type != "none":
            raise ValueError(f"{self.algo} settings modular and rnn_type {self.rnn_type!r} both give the memory: "
                             "set one of them")

    def min_env_steps(self, episode_steps: int) -> int:
        return self.n_steps * self.n_envs  # one rollout


SETTINGS: dict[str, type[Settings]] = {
    "bptt": BPTTSettings, "ppo": PPOSettings, "sac": SACSettings, "recurrent-ppo": RecurrentPPOSettings,
    "rsl-ppo": RslPPOSettings}
ALGOS = tuple(SETTINGS)


def describe(cls: type[Settings], settings: Settings | None = None) -> list[tuple[str, str, str, str]]:
    """(name, type, value, doc) of each field of `cls`: its value in `settings` (default: the dataclass default),
    written as `--set` reads it."""
    hints = get_type_hints(cls)
    return [(f.name, type_name(hints[f.name]), repr(_default(f) if settings is None else getattr(settings, f.name)),
             f.metadata["doc"]) for f in fields(cls)]
