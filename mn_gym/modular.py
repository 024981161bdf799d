"""Modular recurrent policies: several GRU "areas" with input and output masks, inter-area delays, Dale's law
and hidden-state noise, in the manner of modular RNN models of the motor system (Michaels, Schaffelhuber,
Agudelo-Toro & Scherberger 2020, PNAS: a modular RNN of visually guided grasping; Song, Yang & Wang 2016, PLoS
Comput Biol: Dale's law in trained RNNs; Codol et al. 2023, eLife: MotorNet). A plain `nn.Module` with the
interface of `mn_gym.GRUPolicy`, so BPTT (`mn_gym.train.train_bptt(..., policy=...)`, truncated too) and
`mn_gym.rollout` use it as they use the GRU:

    policy = mn_gym.ModularGRUPolicy(n_obs, n_muscles, areas=(32, 32), delay_steps=2, dale=True)
    action, hidden = policy(obs, hidden)          # obs (B, n_obs) -> excitations (B, n_muscles); hidden (B, n_hidden)

Each step, every area `a` is a GRU cell (the equations of `torch.nn.GRUCell`) whose input is the observation
(areas in `input_areas` only; the others get none) and the states of its source areas (`connections[i][a]`),
`delay_steps` steps old. All areas update at once from the previous step's states, so with `delay_steps = k` a
change of area i's state at step t first reaches area j (i -> j) at step t + k + 1 (k = 0: the next step, the
lag of any recurrent connection). The excitations are a sigmoid of a linear readout of the `output_areas`'
states only.

The hidden state is ONE tensor (B, n_hidden), so rollouts record it and truncated BPTT carries it across
windows: the areas' current states (the first `sum(areas)` columns, area by area: `area_slices()`), then
`delay_steps` older copies of them, newest first (a shift register: each step the newest state enters at the
front and the oldest drops off the end). n_hidden = sum(areas) * (delay_steps + 1).

Dale's law (`dale=True`): in each area the first `round(excitatory_fraction * size)` units (at least one) are
excitatory, the rest inhibitory, and every inter-area weight is `|W|` times a fixed sign (+1 from an excitatory
unit), so gradient steps cannot flip it. As cortical long-range projections are excitatory, only the excitatory
units project between areas: weights from inhibitory units to other areas are fixed at 0 (they act within their
area, through the area's recurrent weights, which are left unconstrained). GRU states are signed (tanh), so the
constraint is on the connectivity, not on the sign of the effect.

Hidden noise (`hidden_noise = s`): Gaussian noise of std s is added to each area's new state each step in
training mode only (`policy.train()`); `policy.eval()` (the held-out evaluation, `load_policy`) runs noise-free.

The areas without the readout are `ModularGRU`, a sequence module with the interface of a one-layer `torch.nn.GRU`
(`(x (T, B, n_in), hidden (1, B, n_hidden)) -> (output areas' states (T, B, n_out), hidden)`): the memory that
the RL trainers put in front of their actor and critic heads (`RslPPOSettings(modular=...)`,
`RecurrentPPOSettings(policy_kwargs={'modular': ...})`). `ModularGRUPolicy` is a `ModularGRU`
(`.core`) and a sigmoid readout.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

__all__ = ["DEFAULT_AREAS", "ModularGRU", "ModularGRUPolicy"]

DEFAULT_AREAS = (32, 32)  # units per area


def _indices(name: str, value: Sequence[int] | None, default: int, n_areas: int) -> tuple[int, ...]:
    if value is None:
        return (default,)
    out = tuple(value)
    if not out or any(not isinstance(i, int) or isinstance(i, bool) or not 0 <= i < n_areas for i in out):
        raise ValueError(f"{name} must be a non-empty list of area indices in [0, {n_areas}), got {value!r}")
    if len(set(out)) != len(out):
        raise ValueError(f"{name} has repeated areas: {value!r}")
    return tuple(sorted(out))


def _connections(value: Any, n_areas: int) -> list[list[bool]]:
    if value is None:  # the feed-forward chain i -> i + 1 and its feedback i + 1 -> i
        return [[abs(i - j) == 1 for j in range(n_areas)] for i in range(n_areas)]
    matrix = torch.as_tensor(value)
    if matrix.shape != (n_areas, n_areas):
        raise ValueError(f"connections must be an ({n_areas}, {n_areas}) matrix (source, target), got shape "
                         f"{tuple(matrix.shape)}")
    out = [[bool(matrix[i, j]) for j in range(n_areas)] for i in range(n_areas)]
    if any(out[i][i] for i in range(n_areas)):
        raise ValueError("connections must have a False diagonal: an area's recurrence is its GRU's own weights")
    return out


class ModularGRU(nn.Module):
    """GRU areas with masks, delays, Dale's law and hidden noise (the module docstring), stepped one step at a
    time (`step`) or over a sequence as a one-layer `torch.nn.GRU` is (`forward`).

    Args:
        n_in: input size (the observation).
        areas: units per area.
        input_areas: the areas that receive the observation (default: the first).
        output_areas: the areas that drive the muscles (default: the last).
        connections: (A, A) booleans, `connections[i][j]` True when area i projects to area j (default: i -> i + 1
            and i + 1 -> i); the diagonal must be False.
        delay_steps: inter-area projections see the source's state this many steps earlier than the plain
            one-step recurrent lag.
        dale: Dale's law on the inter-area weights (only excitatory units project, with weights >= 0).
        excitatory_fraction: fraction of each area's units that are excitatory (with `dale`).
        hidden_noise: std of the Gaussian noise added to each area's state each step, in training mode only.
    """

    def __init__(self, n_in: int, areas: Sequence[int] = DEFAULT_AREAS, *, input_areas: Sequence[int] | None = None,
                 output_areas: Sequence[int] | None = None, connections: Any = None, delay_steps: int = 0,
                 dale: bool = False, excitatory_fraction: float = 0.8, hidden_noise: float = 0.0) -> None:
        super().__init__()
        areas = tuple(areas)
        for name, value in (("n_in", n_in), *((f"areas[{i}]", a) for i, a in enumerate(areas))):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not areas:
            raise ValueError("areas must list at least one area size")
        if not isinstance(delay_steps, int) or isinstance(delay_steps, bool) or delay_steps < 0:
            raise ValueError(f"delay_steps must be an int >= 0, got {delay_steps!r}")
        if not 0.0 < float(excitatory_fraction) <= 1.0:
            raise ValueError(f"excitatory_fraction must be in (0, 1], got {excitatory_fraction!r}")
        if not float(hidden_noise) >= 0.0 or float(hidden_noise) == float("inf"):
            raise ValueError(f"hidden_noise must be a finite std >= 0, got {hidden_noise!r}")
        n_areas = len(areas)
        self.n_in, self.areas = n_in, areas
        self.input_areas = _indices("input_areas", input_areas, 0, n_areas)
        self.output_areas = _indices("output_areas", output_areas, n_areas - 1, n_areas)
        self.connections = _connections(connections, n_areas)
        self.delay_steps, self.dale = delay_steps, bool(dale)
        self.excitatory_fraction, self.hidden_noise = float(excitatory_fraction), float(hidden_noise)
        self.n_units = sum(areas)  # current-state columns
        self.n_hidden = self.state_size(areas, delay_steps)
        self._offsets = [sum(areas[:a]) for a in range(n_areas)]

        n = self.n_units
        # gate rows are [reset (n), update (n), new (n)], each area by area, as torch.nn.GRUCell orders them
        obs_mask = torch.zeros(3 * n, n_in)
        inter_mask = torch.zeros(3 * n, n)
        rec_mask = torch.zeros(3 * n, n)
        sign = torch.ones(n)
        projects = torch.ones(n)  # 0 for units that send no inter-area projection (inhibitory, with dale)
        for a, size in enumerate(areas):
            cols = slice(self._offsets[a], self._offsets[a] + size)
            if self.dale:
                n_exc = max(1, round(self.excitatory_fraction * size))
                sign[self._offsets[a] + n_exc:self._offsets[a] + size] = -1.0
                projects[self._offsets[a] + n_exc:self._offsets[a] + size] = 0.0
            for g in range(3):
                rows = slice(g * n + self._offsets[a], g * n + self._offsets[a] + size)
                rec_mask[rows, cols] = 1.0
                if a in self.input_areas:
                    obs_mask[rows] = 1.0
                for src in range(n_areas):
                    if self.connections[src][a]:
                        inter_mask[rows, self._offsets[src]:self._offsets[src] + areas[src]] = 1.0
        self.register_buffer("obs_mask", obs_mask)
        self.register_buffer("inter_mask", inter_mask * projects)
        self.register_buffer("rec_mask", rec_mask)
        self.register_buffer("sign", sign)

        self.weight_obs = nn.Parameter(torch.zeros(3 * n, n_in))
        self.weight_inter = nn.Parameter(torch.zeros(3 * n, n))
        self.weight_rec = nn.Parameter(torch.zeros(3 * n, n))
        self.bias_ih = nn.Parameter(torch.zeros(3 * n))
        self.bias_hh = nn.Parameter(torch.zeros(3 * n))
        with torch.no_grad():  # per area and gate block, as GRUPolicy initialises its GRUCell
            for a, size in enumerate(areas):
                rows = torch.cat([torch.arange(size) + g * n + self._offsets[a] for g in range(3)])
                cols = slice(self._offsets[a], self._offsets[a] + size)
                block = torch.empty(3 * size, size)
                nn.init.orthogonal_(block)
                self.weight_rec[rows, cols] = block
                if a in self.input_areas:
                    block = torch.empty(3 * size, n_in)
                    nn.init.xavier_uniform_(block)
                    self.weight_obs[rows] = block
                sources = [s for s in range(n_areas) if self.connections[s][a]]
                if sources:
                    src_cols = torch.cat([torch.arange(areas[s]) + self._offsets[s] for s in sources])
                    block = torch.empty(3 * size, len(src_cols))
                    nn.init.xavier_uniform_(block)
                    self.weight_inter[rows[:, None], src_cols[None, :]] = block
        self.n_out = self.output_size(areas, output_areas)
        cols = torch.cat([torch.arange(areas[a]) + self._offsets[a] for a in self.output_areas]).tolist()
        contiguous = cols == list(range(cols[0], cols[0] + len(cols)))
        self._out_cols: slice | list[int] = slice(cols[0], cols[0] + len(cols)) if contiguous else cols

    @staticmethod
    def output_size(areas: Sequence[int], output_areas: Sequence[int] | None = None) -> int:
        """Units of the output areas (the size of `output`) for these constructor arguments, without building."""
        areas = tuple(areas)
        return sum(areas[a] for a in _indices("output_areas", output_areas, len(areas) - 1, len(areas)))

    @staticmethod
    def state_size(areas: Sequence[int], delay_steps: int = 0) -> int:
        """Columns of the hidden state (n_hidden) for these constructor arguments: sum(areas) (delay_steps + 1)."""
        return sum(areas) * (delay_steps + 1)

    # ------------------------------------------------------------------------------------------ weights
    def effective_weights(self) -> dict[str, Tensor]:
        """The weights the forward pass uses, masks (and Dale's signs) applied: `obs` (3N, n_in), `inter`
        (3N, N: row = target unit's gate, column = source unit) and `rec` (3N, N, block-diagonal), N = sum(areas);
        gate rows [reset, update, new] as in `torch.nn.GRUCell`."""
        inter = self.weight_inter.abs() * self.sign if self.dale else self.weight_inter
        return {"obs": self.weight_obs * self.obs_mask, "inter": inter * self.inter_mask,
                "rec": self.weight_rec * self.rec_mask}

    def excitatory(self) -> Tensor:
        """(N,) bool: which units are excitatory (all of them without Dale's law)."""
        return self.sign > 0

    # ------------------------------------------------------------------------------------------- state
    def initial_hidden(self, batch_size: int) -> Tensor:
        """Zeros (batch_size, n_hidden): every area at rest, no history."""
        p = self.weight_rec
        return torch.zeros(batch_size, self.n_hidden, dtype=p.dtype, device=p.device)

    def area_slices(self) -> list[slice]:
        """For each area, the columns of the flattened hidden state (B, n_hidden) holding its current state."""
        return [slice(o, o + size) for o, size in zip(self._offsets, self.areas, strict=True)]

    def current_state(self, hidden: Tensor) -> Tensor:
        """The areas' current states (..., sum(areas)) of a hidden state (..., n_hidden): the delay history
        left out."""
        return hidden[..., :self.n_units]

    def output(self, hidden: Tensor) -> Tensor:
        """The output areas' current states (..., n_out) of a hidden state (..., n_hidden)."""
        return hidden[..., self._out_cols]

    def _check(self, batch: int, hidden: Tensor | None) -> Tensor:
        if hidden is None:
            return self.initial_hidden(batch)
        if hidden.shape != (batch, self.n_hidden):
            raise ValueError(f"hidden must have shape ({batch}, {self.n_hidden}), got {tuple(hidden.shape)}")
        return hidden

    def _advance(self, gx: Tensor, hidden: Tensor, w: dict[str, Tensor]) -> Tensor:
        """One step from `hidden` (B, n_hidden), with the input's gate terms gx = x W_obs^T + b_ih (B, 3N) given."""
        n, k = self.n_units, self.delay_steps
        h = hidden[:, :n]
        delayed = hidden[:, k * n:(k + 1) * n]  # the states k steps before the current ones
        gi = gx + delayed @ w["inter"].T
        gh = h @ w["rec"].T + self.bias_hh
        r = torch.sigmoid(gi[:, :n] + gh[:, :n])
        z = torch.sigmoid(gi[:, n:2 * n] + gh[:, n:2 * n])
        candidate = torch.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
        h_new = (1.0 - z) * candidate + z * h
        if self.training and self.hidden_noise > 0.0:
            h_new = h_new + self.hidden_noise * torch.randn_like(h_new)
        return torch.cat([h_new, hidden[:, :k * n]], dim=1)

    def step(self, x: Tensor, hidden: Tensor | None = None) -> Tensor:
        """The hidden state (B, n_hidden) one step on from `hidden` (None: `initial_hidden`) with input x (B, n_in)."""
        if x.dim() != 2 or x.shape[1] != self.n_in:
            raise ValueError(f"obs must have shape (B, {self.n_in}), got {tuple(x.shape)}")
        hidden = self._check(x.shape[0], hidden)
        w = self.effective_weights()
        return self._advance(torch.addmm(self.bias_ih, x, w["obs"].T), hidden, w)

    def forward(self, x: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """As a one-layer `torch.nn.GRU`: inputs x (T, B, n_in) from `hidden` (1, B, n_hidden) (None: zeros) ->
        (the output areas' states (T, B, n_out), the last hidden state (1, B, n_hidden)). The masked weights and
        the input's gate terms are computed once for the whole sequence."""
        if x.dim() != 3 or x.shape[2] != self.n_in:
            raise ValueError(f"x must have shape (T, B, {self.n_in}), got {tuple(x.shape)}")
        h = self._check(x.shape[1], None if hidden is None else hidden[0])
        w = self.effective_weights()
        gx = x @ w["obs"].T + self.bias_ih  # (T, B, 3N)
        outputs = []
        for gx_t in gx:
            h = self._advance(gx_t, h, w)
            outputs.append(self.output(h))
        return torch.stack(outputs), h.unsqueeze(0)

    def config(self) -> dict[str, Any]:
        """The constructor arguments as JSON-able values (`ModularGRU(**config)` builds the same architecture)."""
        return {"n_in": self.n_in, "areas": list(self.areas), "input_areas": list(self.input_areas),
                "output_areas": list(self.output_areas), "connections": [list(row) for row in self.connections],
                "delay_steps": self.delay_steps, "dale": self.dale, "excitatory_fraction": self.excitatory_fraction,
                "hidden_noise": self.hidden_noise}

    def extra_repr(self) -> str:
        return (f"areas={list(self.areas)}, input_areas={list(self.input_areas)}, "
                f"output_areas={list(self.output_areas)}, delay_steps={self.delay_steps}, dale={self.dale}, "
                f"hidden_noise={self.hidden_noise}")


class ModularGRUPolicy(nn.Module):
    """GRU areas (`ModularGRU`, `.core`) -> linear readout of the output areas -> sigmoid; see the module docstring.

    Args:
        n_obs, n_muscles: observation and action sizes.
        areas, input_areas, output_areas, connections, delay_steps, dale, excitatory_fraction, hidden_noise:
            the areas, as `ModularGRU` takes them.
        output_bias: initial bias of the readout (negative: excitations start low, as in `GRUPolicy`).
    """

    def __init__(self, n_obs: int, n_muscles: int, areas: Sequence[int] = DEFAULT_AREAS, *, output_bias: float = -3.0,
                 **area_kwargs: Any) -> None:
        super().__init__()
        if not isinstance(n_muscles, int) or isinstance(n_muscles, bool) or n_muscles < 1:
            raise ValueError(f"n_muscles must be a positive int, got {n_muscles!r}")
        self.core = ModularGRU(n_obs, areas, **area_kwargs)
        self.n_obs, self.n_muscles, self.output_bias = n_obs, n_muscles, float(output_bias)
        self.n_hidden = self.core.n_hidden
        self.readout = nn.Linear(self.core.n_out, n_muscles)
        nn.init.xavier_uniform_(self.readout.weight)
        nn.init.constant_(self.readout.bias, output_bias)

    def effective_weights(self) -> dict[str, Tensor]:
        """The core's weights as the forward pass uses them (`ModularGRU.effective_weights`)."""
        return self.core.effective_weights()

    def excitatory(self) -> Tensor:
        """(N,) bool: which units are excitatory (`ModularGRU.excitatory`)."""
        return self.core.excitatory()

    def initial_hidden(self, batch_size: int) -> Tensor:
        """Zeros (batch_size, n_hidden)."""
        return self.core.initial_hidden(batch_size)

    def area_slices(self) -> list[slice]:
        """For each area, its columns of the current state (`ModularGRU.area_slices`)."""
        return self.core.area_slices()

    def current_state(self, hidden: Tensor) -> Tensor:
        """The areas' current states (..., sum(areas)), the delay history left out."""
        return self.core.current_state(hidden)

    def forward(self, obs: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
        hidden = self.core.step(obs, hidden)
        return torch.sigmoid(self.readout(self.core.output(hidden))), hidden

    # ------------------------------------------------------------------------------------------ config
    def config(self) -> dict[str, Any]:
        """The constructor arguments as JSON-able values: `ModularGRUPolicy.from_config(p.config())` builds the
        same architecture (the weights come with `state_dict`)."""
        areas = self.core.config()
        del areas["n_in"]
        return {"n_obs": self.n_obs, "n_muscles": self.n_muscles, **areas, "output_bias": self.output_bias}

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ModularGRUPolicy:
        """A policy built from `config()`'s dict (an unknown key raises a TypeError)."""
        config = dict(config)
        return cls(config.pop("n_obs"), config.pop("n_muscles"), **config)
