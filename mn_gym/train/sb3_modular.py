"""sb3-contrib's RecurrentPPO with `mn_gym.ModularGRU` memories in place of its LSTMs
(`RecurrentPPOSettings(policy_kwargs={'modular': {...}})`, used by `mn_gym.train.sb3`).

The actor's (and, as configured, the critic's) LSTM becomes a ModularGRU of GRU areas: the features (the
normalised observation) enter the input areas and the output areas' states feed `net_arch`'s MLP heads. The
module keeps the LSTM's call, so RecurrentPPO's rollout buffer, episode-start resets and sequence updates work
unchanged: its state pair is (the ModularGRU's hidden state, an unused zero tensor of the same shape). The
hidden noise acts where SB3 puts the policy in training mode: its gradient updates, not the rollouts.
"""

from __future__ import annotations

from typing import Any

from gymnasium import spaces
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.torch_layers import MlpExtractor
from torch import Tensor, nn

from mn_gym.modular import DEFAULT_AREAS, ModularGRU

__all__ = ["LSTMShapedModularGRU", "ModularRecurrentPolicy"]


class LSTMShapedModularGRU(nn.Module):
    """A `ModularGRU` called as a one-layer `torch.nn.LSTM`: `(x (T, B, n_in), (h, c)) -> (out (T, B, n_out),
    (h, c))`, h (1, B, n_hidden) the ModularGRU's state; c is passed through untouched."""

    def __init__(self, core: ModularGRU) -> None:
        super().__init__()
        self.core = core
        # what RecurrentPPO reads of an LSTM: the input size, and the state shape (layers, B, hidden size)
        self.input_size, self.num_layers, self.hidden_size = core.n_in, 1, core.n_hidden

    def forward(self, x: Tensor, states: tuple[Tensor, Tensor]) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        h, c = states
        out, h = self.core(x, h)
        return out, (h, c)


class ModularRecurrentPolicy(RecurrentActorCriticPolicy):
    """`MlpLstmPolicy` with ModularGRU memories; `modular`: the ModularGRU keyword arguments. The other keyword
    arguments are RecurrentActorCriticPolicy's; `lstm_hidden_size` is replaced by the ModularGRU's state size."""

    def __init__(self, observation_space: spaces.Space, action_space: spaces.Space, lr_schedule: Any, *,
                 modular: dict[str, Any], n_lstm_layers: int = 1, **kwargs: Any) -> None:
        if n_lstm_layers != 1:
            raise ValueError(f"a modular memory is one layer of areas, got n_lstm_layers={n_lstm_layers}")
        self.modular = dict(modular)
        kwargs.pop("lstm_hidden_size", None)
        # the MLP heads read the output areas (set before the parent builds them, in _build_mlp_extractor)
        areas = self.modular.get("areas", DEFAULT_AREAS)
        self.modular_output_dim = ModularGRU.output_size(areas, self.modular.get("output_areas"))
        n_hidden = ModularGRU.state_size(areas, self.modular.get("delay_steps", 0))  # the rollout buffer's states
        super().__init__(observation_space, action_space, lr_schedule, lstm_hidden_size=n_hidden, **kwargs)
        self.lstm_actor = LSTMShapedModularGRU(ModularGRU(self.features_dim, **self.modular))
        if self.lstm_critic is not None:
            self.lstm_critic = LSTMShapedModularGRU(ModularGRU(self.features_dim, **self.modular))
        if self.critic is not None:  # no critic memory: a linear map to the heads' input size
            self.critic = nn.Linear(self.features_dim, self.modular_output_dim)
        self.optimizer = self.optimizer_class(self.parameters(), lr=lr_schedule(1), **self.optimizer_kwargs)

    def _build_mlp_extractor(self) -> None:
        self.lstm_output_dim = self.modular_output_dim
        self.mlp_extractor = MlpExtractor(self.lstm_output_dim, net_arch=self.net_arch,
                                          activation_fn=self.activation_fn, device=self.device)
