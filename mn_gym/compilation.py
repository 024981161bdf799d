"""Compilation, in one place. Nothing compiles implicitly, and every function returns a new object.

- `compile_effector(effector)`: a copy whose integration (`advance`) runs under `torch.compile`.
- `compile_env(env)`: a copy of the functional env whose `transition` runs under `torch.compile`.
- `compile_policy_step(env, policy)`: policy then env transition fused under `torch.compile` (BPTT,
  `rollout(compile=True)`).
- `FlatStep(transition, example, dtype)`: a batch-1 transition over the state packed in one flat tensor,
  compiled ahead of time with AOTInductor and cached on disk (the single env's `compile=True`).

`torch.compile` compiles on the first call (seconds to tens of seconds; again for a new batch size or dtype),
always with `dynamic=False` unless told otherwise. Input checks stay outside the compiled code.

At batch 1 a step is ~170 tiny tensor ops: eager, their dispatch dominates (~1.3 ms); under `torch.compile`
they fuse into one kernel, but the call itself (guards, wrappers, a dozen tensors in and out) still costs
~200 us. `FlatStep` packs the state into one float tensor (integer clocks are exact in float), so the
transition is a function of three tensors (flat state, action, noise draw) returning two (new flat state, the
packed step outputs), and compiles it with AOTInductor (`torch.export` + `aoti_compile_and_package`) into a
shared library called from C++ (~25 us a call through the loader's boxed runner). The library is cached on
disk under a hash of the exported graph and its constants (`cache_dir()`), so only the first env of a kind
pays the compile (tens of seconds); later ones load it in about a second. Each package is stored with its
SHA-256 (`<name>.sha256`) and checked before it is loaded: a damaged or unreadable entry is removed with a
warning and rebuilt, never loaded. Off CPU, `torch.compile` is used.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from mn_gym.core.effector import Effector
from mn_gym.files import atomic, sha256
from mn_gym.functional import Env, EnvState

__all__ = ["FlatStep", "cache_dir", "compile_effector", "compile_env", "compile_policy_step"]


def _compiled(fn: Callable, compile_kwargs: dict[str, Any]) -> Callable:
    return torch.compile(fn, **{"dynamic": False, **compile_kwargs})


def compile_effector(effector: Effector, **compile_kwargs: Any) -> Effector:
    """A copy of `effector` whose integration (`advance`, and so `step` after its input checks) runs under
    `torch.compile`. Several times faster a step, most at small batch. `compile_kwargs` go to torch.compile."""
    new = effector.replace()
    if effector.n_substeps == 1:
        new.advance = _compiled(new.advance, compile_kwargs)  # type: ignore[method-assign]
        return new
    # one sub-step compiled and called n_substeps times: unrolled, the 40 sub-steps of CompliantArmReach-v1 took
    # ~5 min to compile (then 1.2 s a BPTT iteration at batch 128); one sub-step compiles in ~25 s (1.8 s)
    substep = _compiled(effector.replace(dt=effector.dt / effector.n_substeps, n_substeps=1).advance, compile_kwargs)

    def advance(state: Any, excitation: Tensor, endpoint_load: Tensor | None = None,
                joint_load: Tensor | None = None) -> Any:
        for _ in range(effector.n_substeps):
            state = substep(state, excitation, endpoint_load, joint_load)
        return state

    new.advance = advance  # type: ignore[method-assign]
    return new


def compile_env(env: Env, **compile_kwargs: Any) -> Env:
    """A copy of `env` whose `transition` (effector, sensing, task terms) runs under `torch.compile`.

    Noise draws stay outside the compiled graph (they are an argument of `transition`)."""
    new = env.replace()
    object.__setattr__(new, "transition", _compiled(new.transition, compile_kwargs))  # a new copy: no one holds it
    return new


Policy = Callable[[Tensor, Any], tuple[Tensor, Any]]
_FUSED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # policy -> {id(env): fused step}


def compile_policy_step(env: Env, policy: Policy) -> Callable[[Tensor, Any, EnvState], tuple]:
    """(obs, hidden, state) -> (action, hidden, state, obs, reward, info): `policy` then `env.transition`
    fused into one torch.compile'd step (no per-step input checks), cached per policy and env, with the env's
    noise drawn outside. Needs a policy that torch.compile can trace."""
    cache = _FUSED.setdefault(policy, {})
    if id(env) not in cache:
        def fused(obs: Tensor, hidden: Any, state: EnvState, noise: Tensor | None) -> tuple:
            action, hidden = policy(obs, hidden)
            state, obs, reward, _, _, info = env.transition(state, action, noise)
            return action, hidden, state, obs, reward, info

        step = _compiled(fused, {})
        cache[id(env)] = lambda obs, hidden, state: step(obs, hidden, state, env.draw_noise(env.batch_size))
    return cache[id(env)]


# --------------------------------------------------------------------------------- ahead of time, batch 1
def cache_dir() -> Path:
    """Where compiled flat steps are kept: `$MN_GYM_CACHE`, else `$XDG_CACHE_HOME/mn_gym` or `~/.cache/mn_gym`."""
    if os.environ.get("MN_GYM_CACHE"):
        return Path(os.environ["MN_GYM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mn_gym"


Transition = Callable[[Any, Tensor, Tensor | None], tuple[Any, Tensor]]


class _FlatModule(nn.Module):
    """`FlatStep.flat_transition` as a module for `torch.export` (with or without the noise input)."""

    def __init__(self, flat_step: FlatStep, noisy: bool) -> None:
        super().__init__()
        self.flat_step, self.noisy = flat_step, noisy

    def forward(self, flat: Tensor, action: Tensor, *noise: Tensor) -> tuple[Tensor, Tensor]:
        return self.flat_step.flat_transition(flat, action, noise[0] if self.noisy else None)


class FlatStep:
    """`transition(state, action, noise) -> (state, outputs)` over the state packed into one flat tensor of
    `dtype`, compiled on the first `step`. `outputs` is one tensor (what the caller reads back).

    `pack(state)` / `unpack(flat)` convert (states must keep `example`'s structure; None fields stay None);
    `step(flat, action, noise)` -> (new flat state, outputs)."""

    def __init__(self, transition: Transition, example: Any, dtype: torch.dtype) -> None:
        leaves, self.spec = pytree.tree_flatten(example)
        if not all(leaf is None or isinstance(leaf, Tensor) for leaf in leaves):
            raise TypeError("FlatStep packs states made of tensors (and None) only")
        self.transition, self.dtype = transition, dtype
        self.n_leaves = len(leaves)
        tensors = {i: leaf for i, leaf in enumerate(leaves) if leaf is not None}
        self.index = list(tensors)
        self.shapes = [leaf.shape for leaf in tensors.values()]
        self.dtypes = [leaf.dtype for leaf in tensors.values()]
        self.sizes = [leaf.numel() for leaf in tensors.values()]
        self._runner: Any = None

    def pack(self, state: Any) -> Tensor:
        leaves, spec = pytree.tree_flatten(state)
        if spec != self.spec or [i for i, leaf in enumerate(leaves) if leaf is not None] != self.index:
            raise RuntimeError("the state changed structure; the compiled flat step cannot pack it")
        return torch.cat([leaves[i].reshape(-1).to(self.dtype) for i in self.index])

    def unpack(self, flat: Tensor) -> Any:
        leaves: list[Tensor | None] = [None] * self.n_leaves
        for i, part, shape, dtype in zip(self.index, torch.split(flat, self.sizes), self.shapes, self.dtypes,
                                         strict=True):
            leaves[i] = part.reshape(shape).to(dtype)
        return pytree.tree_unflatten(leaves, self.spec)

    def flat_transition(self, flat: Tensor, action: Tensor, noise: Tensor | None) -> tuple[Tensor, Tensor]:
        """The transition over flat states, uncompiled (what `step` compiles)."""
        state, outputs = self.transition(self.unpack(flat), action, noise)
        return self.pack(state), outputs

    def step(self, flat: Tensor, action: Tensor, noise: Tensor | None) -> tuple[Tensor, Tensor]:
        args = [flat, action] if noise is None else [flat, action, noise]
        if self._runner is None:
            self._runner = self._compile(tuple(args))
        out = self._runner(args)
        return out[0], out[1]

    def _compile(self, args: tuple[Tensor, ...]) -> Any:
        """A callable taking the list of input tensors and returning the list of outputs."""
        module = _FlatModule(self, noisy=len(args) == 3)
        if args[0].device.type != "cpu":
            compiled = _compiled(module, {})
            return lambda inputs: compiled(*inputs)
        with torch.no_grad(), warnings.catch_warnings():
            # torch's own pytree deprecation notice, raised while export and AOTInductor copy the program
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*deprecated", category=FutureWarning)
            program = torch.export.export(module, args)
            path = cache_dir() / f"step-{_fingerprint(program)}.pt2"
            model = _load_cached(path)
            if model is None:
                _build_package(program, path)
                model = torch._inductor.aoti_load_package(str(path))
        # the package's __call__ re-parses its input/output tree specs on every call (~50 us); our inputs and
        # outputs are flat lists of tensors already, so call the loader's boxed runner directly when present
        loader = getattr(model, "loader", None)
        return loader.boxed_run if hasattr(loader, "boxed_run") else (lambda inputs: model(*inputs))


def _digest_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _build_package(program: torch.export.ExportedProgram, path: Path) -> None:
    """Compile `program` into the package `path` and write its SHA-256 beside it (`<name>.sha256`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:  # never half a file at `path`
        built = torch._inductor.aoti_compile_and_package(program, package_path=str(Path(tmp) / path.name))
        digest = sha256(Path(built))
        Path(built).replace(path)
    with atomic(_digest_path(path)) as tmp_digest:
        tmp_digest.write_text(digest + "\n")


def _load_cached(path: Path) -> Any:
    """The cached package at `path`, or None when there is none or it is damaged (a package whose SHA-256 does
    not match the one written with it, or that fails to load, is removed with a warning and rebuilt: loading a
    damaged shared library could crash the process)."""
    if not path.is_file():
        return None
    digest = _digest_path(path)
    expected = digest.read_text().strip() if digest.is_file() else None
    problem = None
    if expected is None:
        problem = "it has no checksum"
    elif sha256(path) != expected:
        problem = "its checksum does not match (damaged)"
    else:
        try:
            return torch._inductor.aoti_load_package(str(path))
        except Exception as exc:  # a package torch cannot open: rebuild it
            problem = f"it failed to load ({type(exc).__name__}: {exc})"
    warnings.warn(f"mn_gym: rebuilding the compiled step {path}: {problem}", RuntimeWarning, stacklevel=4)
    path.unlink(missing_ok=True)
    digest.unlink(missing_ok=True)
    return None


def _fingerprint(program: torch.export.ExportedProgram) -> str:
    """A hash of everything the compiled library depends on: graph code, constants, inputs, torch version."""
    h = hashlib.sha256()
    h.update(torch.__version__.encode())
    h.update(program.graph_module.print_readable(print_output=False).encode())
    for name, value in sorted({**program.state_dict, **program.constants}.items()):
        h.update(name.encode())
        if isinstance(value, Tensor):
            h.update(str((value.dtype, tuple(value.shape))).encode())
            h.update(value.detach().cpu().reshape(-1).contiguous().view(torch.uint8).numpy().tobytes())
    for spec in program.graph_signature.input_specs:
        h.update(str(spec).encode())
    return h.hexdigest()[:32]
