"""Controllers: a GRU network (as in MotorNet's examples) and an MLP, both mapping observations to
excitations in (0, 1). Call as `action, hidden = policy(obs, hidden)`; hidden states are returned so that
rollouts can record them for analysis."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class GRUPolicy(nn.Module):
    """GRU -> linear -> sigmoid. obs (B, n_obs) -> excitations (B, n_muscles); hidden (B, n_hidden).

    The output bias starts at `output_bias` (negative), so excitations start low (sigmoid(-3) ~ 0.05):
    muscles that start fully on throw the limb against its joint limits and stall learning.
    """

    def __init__(self, n_obs: int, n_muscles: int, n_hidden: int = 32, output_bias: float = -3.0) -> None:
        super().__init__()
        for name, value in (("n_obs", n_obs), ("n_muscles", n_muscles), ("n_hidden", n_hidden)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        self.n_obs, self.n_muscles, self.n_hidden = n_obs, n_muscles, n_hidden
        self.gru = nn.GRUCell(n_obs, n_hidden)
        self.readout = nn.Linear(n_hidden, n_muscles)
        for name, p in self.gru.named_parameters():
            if "weight_hh" in name:
                nn.init.orthogonal_(p)
            elif "weight_ih" in name:
                nn.init.xavier_uniform_(p)
            else:
                nn.init.zeros_(p)
        nn.init.xavier_uniform_(self.readout.weight)
        nn.init.constant_(self.readout.bias, output_bias)

    def initial_hidden(self, batch_size: int) -> Tensor:
        p = self.readout.weight
        return torch.zeros(batch_size, self.n_hidden, dtype=p.dtype, device=p.device)

    def forward(self, obs: Tensor, hidden: Tensor | None = None) -> tuple[Tensor, Tensor]:
        if obs.dim() != 2 or obs.shape[1] != self.n_obs:
            raise ValueError(f"obs must have shape (B, {self.n_obs}), got {tuple(obs.shape)}")
        if hidden is None:
            hidden = self.initial_hidden(obs.shape[0])
        hidden = self.gru(obs, hidden)
        return torch.sigmoid(self.readout(hidden)), hidden


class MLPPolicy(nn.Module):
    """Feed-forward: obs (B, n_obs) -> tanh layers -> sigmoid excitations (B, n_muscles). No hidden state."""

    def __init__(self, n_obs: int, n_muscles: int, hidden_sizes: tuple[int, ...] = (64, 64),
                 output_bias: float = -3.0) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        size = n_obs
        for h in hidden_sizes:
            layers += [nn.Linear(size, h), nn.Tanh()]
            size = h
        out = nn.Linear(size, n_muscles)
        nn.init.constant_(out.bias, output_bias)
        self.net = nn.Sequential(*layers, out)
        self.n_obs, self.n_muscles = n_obs, n_muscles

    def forward(self, obs: Tensor, hidden: None = None) -> tuple[Tensor, None]:
        if obs.dim() != 2 or obs.shape[1] != self.n_obs:
            raise ValueError(f"obs must have shape (B, {self.n_obs}), got {tuple(obs.shape)}")
        return torch.sigmoid(self.net(obs)), None
