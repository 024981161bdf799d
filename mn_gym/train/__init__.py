"""Training: BPTT through the differentiable env (`train_bptt`), stable-baselines3 agents (`mn_gym.train.sb3`),
run folders (`mn_gym.train.runs`), sweeps (`mn_gym.train.sweep`); settings as dataclasses (`mn_gym.train.settings`),
tuned per env id (`mn_gym.train.hyperparams`)."""

from mn_gym.train.bptt import detach_state, load_checkpoint, lr_factor, train_bptt
from mn_gym.train.common import HeldOut, TrainResult
from mn_gym.train.settings import SETTINGS, BPTTSettings, PPOSettings, RecurrentPPOSettings, SACSettings

__all__ = ["SETTINGS", "BPTTSettings", "HeldOut", "PPOSettings", "RecurrentPPOSettings", "SACSettings", "TrainResult",
           "detach_state", "load_checkpoint", "lr_factor", "train_bptt"]
