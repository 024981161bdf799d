"""Training: BPTT through the differentiable env (`train_bptt`), stable-baselines3 agents (`mn_gym.train.sb3`),
rsl-rl's PPO on the batched torch env (`mn_gym.train.rsl`), run folders (`mn_gym.train.runs`), sweeps
(`mn_gym.train.sweep`), the benchmark report (`mn_gym.train.report`); settings as dataclasses
(`mn_gym.train.settings`), tuned per env id (`mn_gym.train.hyperparams`)."""

from mn_gym.train.bptt import detach_state, load_checkpoint, lr_factor, train_bptt
from mn_gym.train.common import HeldOut, TrainResult
from mn_gym.train.settings import (
    SETTINGS,
    BPTTSettings,
    PPOSettings,
    RecurrentPPOSettings,
    RslPPOSettings,
    SACSettings,
)

__all__ = ["SETTINGS", "BPTTSettings", "HeldOut", "PPOSettings", "RecurrentPPOSettings", "RslPPOSettings",
           "SACSettings", "TrainResult", "detach_state", "load_checkpoint", "lr_factor", "train_bptt"]
