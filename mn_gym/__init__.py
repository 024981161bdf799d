"""mn_gym: differentiable biomechanical effectors and motor tasks for BPTT and reinforcement learning."""

from mn_gym.core import EFFECTORS, Effector, EffectorBuilder, EffectorState, make_effector

__version__ = "0.1.0"

__all__ = ["EFFECTORS", "Effector", "EffectorBuilder", "EffectorState", "__version__", "make_effector"]
