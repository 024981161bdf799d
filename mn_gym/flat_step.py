"""The single env's fast path: one batch-1 transition ahead-of-time compiled over a flat state tensor.

At batch 1 a step is ~170 tiny tensor ops: eager, their dispatch dominates (~1.3 ms); under `torch.compile` they
fuse into one kernel, but the call itself (guards, wrappers, a dozen tensors in and out) still costs ~200 us.
`FlatStep` packs the `EnvState` into one float tensor (integer clocks are exact in float), so the transition
is a function of three tensors (flat state, action, noise draw) returning two (new flat state, the packed step
outputs of `pack_step`), and compiles it with AOTInductor (`torch.export` + `aoti_compile_and_package`) into a
shared library called from C++ (~25 us a call through the loader's boxed runner). The library is cached on
disk under a hash of the exported graph and its constants (`$MN_GYM_CACHE`, default `~/.cache/mn_gym`), so
only the first env of a kind pays the compile (tens of seconds); later ones load it in about a second. Off
CPU, `torch.compile` is used instead.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.utils import _pytree as pytree

from mn_gym.functional import Env, EnvState

__all__ = ["FlatStep", "action_to_excitation", "cache_dir", "pack_step"]


def action_to_excitation(action: Tensor) -> Tensor:
    """The faces' action map: x in [-1, 1] (clipped) -> excitation (x + 1) / 2 in [0, 1]."""
    return (action.clamp(-1.0, 1.0) + 1.0) * 0.5


def pack_step(obs: Tensor, reward: Tensor, terminated: Tensor, truncated: Tensor, info: dict[str, Any]) -> Tensor:
    """One step's outputs for batch element 0 in one flat tensor (one device-to-host copy):
    [obs, reward, reward terms..., distance, is_success, terminated, truncated, goal (2), hand (4)]."""
    flags = torch.stack((info["is_success"][0], terminated[0], truncated[0])).to(obs.dtype)
    return torch.cat((obs[0], reward, *info["reward_terms"].values(), info["distance"], flags, info["goal"][0],
                      info["hand"][0]))


def cache_dir() -> Path:
    """Where compiled single-env steps are kept: `$MN_GYM_CACHE`, else `$XDG_CACHE_HOME/mn_gym` or
    `~/.cache/mn_gym`."""
    if os.environ.get("MN_GYM_CACHE"):
        return Path(os.environ["MN_GYM_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mn_gym"


class _Transition(nn.Module):
    """`FlatStep._step` as a module for `torch.export` (with or without the noise input)."""

    def __init__(self, flat_step: FlatStep, noisy: bool) -> None:
        super().__init__()
        self.flat_step, self.noisy = flat_step, noisy

    def forward(self, flat: Tensor, action: Tensor, *noise: Tensor) -> tuple[Tensor, Tensor]:
        return self.flat_step._step(flat, action, noise[0] if self.noisy else None)


class FlatStep:
    """The batch-1 transition of `env` over the `EnvState` packed into one flat tensor, compiled on first use.

    `pack(state)` / `unpack(flat)` convert (states must keep `example`'s structure); `step(flat, action,
    noise)` -> (new flat state, `pack_step` outputs), with `action` (M,) in [-1, 1]."""

    def __init__(self, env: Env, example: EnvState) -> None:
        leaves, self.spec = pytree.tree_flatten(example)
        if not all(leaf is None or isinstance(leaf, Tensor) for leaf in leaves):
            raise TypeError("FlatStep packs states made of tensors (and None) only")
        self.env = env
        self.n_leaves = len(leaves)
        tensors = {i: leaf for i, leaf in enumerate(leaves) if leaf is not None}  # None fields stay None
        self.index = list(tensors)
        self.shapes = [leaf.shape for leaf in tensors.values()]
        self.dtypes = [leaf.dtype for leaf in tensors.values()]
        self.sizes = [leaf.numel() for leaf in tensors.values()]
        with torch.no_grad():  # the names of the reward terms packed by `pack_step`, in their order
            info = env._transition(example, torch.zeros(1, env.action_size, dtype=env.dtype, device=env.device),
                                   None)[-1]
        self.reward_terms = list(info["reward_terms"])
        self._runner: Any = None

    def pack(self, state: EnvState) -> Tensor:
        leaves, spec = pytree.tree_flatten(state)
        if spec != self.spec or [i for i, leaf in enumerate(leaves) if leaf is not None] != self.index:
            raise RuntimeError("the env state changed structure; the compiled single-env step cannot pack it")
        return torch.cat([leaves[i].reshape(-1).to(self.env.dtype) for i in self.index])

    def unpack(self, flat: Tensor) -> EnvState:
        leaves: list[Tensor | None] = [None] * self.n_leaves
        parts = torch.split(flat, self.sizes)
        for i, part, shape, dtype in zip(self.index, parts, self.shapes, self.dtypes, strict=True):
            leaves[i] = part.reshape(shape).to(dtype)
        return pytree.tree_unflatten(leaves, self.spec)

    def step(self, flat: Tensor, action: Tensor, noise: Tensor | None) -> tuple[Tensor, Tensor]:
        args = [flat, action] if noise is None else [flat, action, noise]
        if self._runner is None:
            self._runner = self._compile(tuple(args))
        out = self._runner(args)
        return out[0], out[1]

    def _step(self, flat: Tensor, action: Tensor, noise: Tensor | None) -> tuple[Tensor, Tensor]:
        state, obs, reward, terminated, truncated, info = self.env._transition(
            self.unpack(flat), action_to_excitation(action[None]), noise)
        return self.pack(state), pack_step(obs, reward, terminated, truncated, info)

    def _compile(self, args: tuple[Tensor, ...]) -> Any:
        """A callable taking the list of input tensors and returning the list of outputs."""
        module = _Transition(self, noisy=len(args) == 3)
        if args[0].device.type != "cpu":
            compiled = torch.compile(module, dynamic=False)
            return lambda inputs: compiled(*inputs)
        with torch.no_grad(), warnings.catch_warnings():
            # torch's own pytree deprecation notice, raised while export and AOTInductor copy the program
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*deprecated", category=FutureWarning)
            program = torch.export.export(module, args)
            path = cache_dir() / f"step-{_fingerprint(program)}.pt2"
            if not path.is_file():
                path.parent.mkdir(parents=True, exist_ok=True)
                with tempfile.TemporaryDirectory(dir=path.parent) as tmp:  # never half a file at `path`
                    built = torch._inductor.aoti_compile_and_package(program,
                                                                      package_path=str(Path(tmp) / path.name))
                    Path(built).replace(path)
            model = torch._inductor.aoti_load_package(str(path))
        # the package's __call__ re-parses its input/output tree specs on every call (~50 us); our inputs and
        # outputs are flat lists of tensors already, so call the loader's boxed runner directly when present
        loader = getattr(model, "loader", None)
        return loader.boxed_run if hasattr(loader, "boxed_run") else (lambda inputs: model(*inputs))


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
