"""Training: BPTT through the differentiable env (`train_bptt`)."""

from mn_gym.train.bptt import TrainResult, detach_state, evaluate, load_checkpoint, lr_factor, train_bptt

__all__ = ["TrainResult", "detach_state", "evaluate", "load_checkpoint", "lr_factor", "train_bptt"]
