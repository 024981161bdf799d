"""mn_gym: differentiable biomechanical effectors and motor tasks for BPTT and reinforcement learning.

Faces over one torch core: `mn_gym.core` (effectors), `mn_gym.make` (functional, differentiable env by id).
"""

from mn_gym.catalogue import list_ids, make
from mn_gym.core import EFFECTORS, Effector, EffectorBuilder, EffectorState, make_effector
from mn_gym.core.prebuilt import register_effector
from mn_gym.functional import Env, EnvState, Rollout, rollout
from mn_gym.policies import GRUPolicy, MLPPolicy
from mn_gym.registry import gym_ids, register, register_all
from mn_gym.tasks import register_task

__version__ = "0.1.0"

register_all()  # every catalogue id with gymnasium: gymnasium.make("mn_gym:ArmReach-v0")

__all__ = [
    "EFFECTORS",
    "Effector",
    "EffectorBuilder",
    "EffectorState",
    "Env",
    "EnvState",
    "GRUPolicy",
    "MLPPolicy",
    "Rollout",
    "__version__",
    "gym_ids",
    "list_ids",
    "make",
    "make_effector",
    "register",
    "register_effector",
    "register_task",
    "rollout",
]
