"""Immutable containers of named parameter tensors, shared by skeletons, muscles and geometries.

A component keeps every tensor its equations use (derived coefficients included), so that a JSON export
rebuilds it bit for bit and a user-supplied value is used as given, never recomputed behind the user's back.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Mapping, Sequence
from types import SimpleNamespace
from typing import Any, ClassVar

import torch
from torch import Tensor
from torch.distributions import constraints

FloatLike = float | Sequence[float] | Tensor


def as_tensor(
    name: str,
    value: FloatLike,
    shape: tuple[int, ...],
    *,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str | None = None,
    positive: bool = False,
    nonnegative: bool = False,
) -> Tensor:
    """Convert `value` to a tensor of `shape`, broadcasting a scalar; raise a clear error otherwise.

    Gradients are kept when `value` is already a tensor, so parameters can be optimised.
    """
    if isinstance(value, Tensor):
        t = value.to(dtype=dtype, device=device)
    else:
        try:
            t = torch.as_tensor(value, dtype=dtype, device=device)
        except (TypeError, ValueError) as exc:
            raise TypeError(f"parameter {name!r} must be a number or a sequence of numbers, got {value!r}") from exc
    if t.dim() == 0 and shape != ():
        t = t.expand(shape).clone()
    if tuple(t.shape) != shape:
        raise ValueError(f"parameter {name!r} must have shape {shape}, got {tuple(t.shape)}")
    if not bool(torch.isfinite(t).all()):
        raise ValueError(f"parameter {name!r} must be finite, got {t.tolist()}")
    if positive and not bool((t > 0).all()):
        raise ValueError(f"parameter {name!r} must be > 0, got {t.tolist()}")
    if nonnegative and not bool((t >= 0).all()):
        raise ValueError(f"parameter {name!r} must be >= 0, got {t.tolist()}")
    return t


class AccuracyWarning(UserWarning):
    """A setting outside the range where the model's numbers are accurate (the message says what to use)."""


def domain_text(constraint: constraints.Constraint) -> str:
    """A `torch.distributions` constraint in words: '> 0', 'in [0, 1)', ..."""
    lo, hi = getattr(constraint, "lower_bound", None), getattr(constraint, "upper_bound", None)
    texts = {constraints._GreaterThan: f"> {lo}", constraints._GreaterThanEq: f">= {lo}",
             constraints._LessThan: f"< {hi}", constraints._Interval: f"in [{lo}, {hi}]",
             constraints._HalfOpenInterval: f"in [{lo}, {hi})", constraints._IntegerGreaterThan: f"integer >= {lo}",
             constraints._IntegerInterval: f"integer in [{lo}, {hi}]",
             constraints._Real: "finite"}
    return texts.get(type(constraint), repr(constraint))


class Component:
    """Base of every physics component: a fixed set of named tensors plus a few plain settings.

    Subclasses list their tensors in `tensor_shapes` (name -> shape built from the component's sizes) and
    their plain settings in `settings`. Instances are treated as immutable: `replace`, `to` return copies.
    Parameter domains are declared once, in `arg_constraints` (name -> a `torch.distributions.constraints`
    constraint, as distributions declare theirs), and conditions between parameters in `_check_relations`;
    both are checked whenever tensors are set (construction, `replace`, `from_config`), never in the step.
    """

    kind: ClassVar[str] = "component"
    settings: ClassVar[tuple[str, ...]] = ()
    arg_constraints: ClassVar[dict[str, constraints.Constraint]] = {}

    def tensor_shapes(self) -> dict[str, tuple[int, ...]]:
        raise NotImplementedError

    def _set_tensors(self, values: Mapping[str, FloatLike], dtype: torch.dtype, device: Any) -> None:
        shapes = self.tensor_shapes()
        unknown = set(values) - set(shapes)
        if unknown:
            raise TypeError(f"{type(self).__name__}: unknown parameter(s) {sorted(unknown)}; valid: {sorted(shapes)}")
        missing = set(shapes) - set(values)
        if missing:
            raise TypeError(f"{type(self).__name__}: missing parameter(s) {sorted(missing)}")
        for name, shape in shapes.items():
            setattr(self, name, as_tensor(name, values[name], shape, dtype=dtype, device=device))
        self._check(shapes)

    def _check(self, names: Any) -> None:
        """Check the domains of the tensors `names` and the relations between all, then refresh the caches."""
        for name in names:
            self._check_domain(name, getattr(self, name))
        self._check_relations()
        self._refresh()

    def _check_domain(self, name: str, value: Tensor) -> None:
        constraint = self.arg_constraints.get(name)
        if constraint is not None and not bool(constraint.check(value.detach()).all()):
            raise ValueError(f"{type(self).__name__}: parameter {name!r} must be {domain_text(constraint)}, "
                             f"got {value.tolist()}")

    def _check_given(self, values: Mapping[str, Any]) -> None:
        """Check values a user gave against their domains before anything is derived from them (a derived
        parameter's error would name the wrong one)."""
        shapes = self.tensor_shapes()
        for name, value in values.items():
            if name in shapes:
                self._check_domain(name, as_tensor(name, value, shapes[name], dtype=torch.float64))

    def _check_relations(self) -> None:
        """Raise ValueError where parameters contradict each other (each one in its domain)."""

    def _refresh(self) -> None:
        """Recompute cached plain-Python facts about the tensors (after construction or `replace`)."""

    def tensors(self) -> dict[str, Tensor]:
        """The parameter tensors by name."""
        return {name: getattr(self, name) for name in self.tensor_shapes()}

    @property
    def dtype(self) -> torch.dtype:
        return next(iter(self.tensors().values())).dtype

    @property
    def device(self) -> torch.device:
        return next(iter(self.tensors().values())).device

    def replace(self, **values: FloatLike) -> Component:
        """A copy with some parameter tensors replaced (validated against their shapes)."""
        new = copy.copy(self)
        shapes = self.tensor_shapes()
        for name, value in values.items():
            if name not in shapes:
                raise TypeError(f"{type(self).__name__}: unknown parameter {name!r}; valid: {sorted(shapes)}")
            setattr(new, name, as_tensor(name, value, shapes[name], dtype=self.dtype, device=self.device))
        new._check(values)
        return new

    def to(self, device: torch.device | str | None = None, dtype: torch.dtype | None = None) -> Component:
        """A copy with every tensor moved to `device` and/or cast to `dtype`."""
        new = copy.copy(self)
        for name, t in self.tensors().items():
            setattr(new, name, t.to(device=device, dtype=dtype))
        new._refresh()
        return new

    def config(self) -> dict[str, Any]:
        """JSON-ready description; `from_config` rebuilds an identical component."""
        out: dict[str, Any] = {"type": self.kind}
        out.update({name: getattr(self, name) for name in self.settings})
        out["params"] = {name: t.detach().cpu().double().tolist() for name, t in self.tensors().items()}
        return out

    def __repr__(self) -> str:
        body = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.settings)
        return f"{type(self).__name__}({body})"


def scalar_tensors(like: Tensor, **values: float) -> SimpleNamespace:
    """Constants as 0-d tensors of `like`'s dtype and device.

    A Python float in a binary tensor op is wrapped and cast on every call, which at small batch costs about
    as much as the op itself; the hot paths use these cached tensors instead.
    """
    return SimpleNamespace(**{k: torch.tensor(v, dtype=like.dtype, device=like.device) for k, v in values.items()})


def check_finite_positive(name: str, value: float) -> float:
    """Validate a plain positive number (time steps, masses given as floats)."""
    if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_tensor(name: str, x: Any, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
    """Raise a clear error unless `x` is a finite tensor of `shape`, `dtype` and `device` (an input check)."""
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.dtype != dtype:
        raise TypeError(f"{name} has dtype {x.dtype}, but the effector uses {dtype}")
    if x.device != device:
        raise ValueError(f"{name} is on {x.device}, but the effector is on {device}")
    if tuple(x.shape) != shape:
        raise ValueError(f"{name} must have shape {shape}, got {tuple(x.shape)}")
    if x.numel() and not math.isfinite(float(x.detach().abs().max())):  # max propagates NaN; cheap
        raise ValueError(f"{name} contains NaN or inf")
