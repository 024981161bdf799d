"""mn_gym: differentiable biomechanical effectors and motor tasks for BPTT and reinforcement learning.

One torch core, faces side by side: `mn_gym.core` (effectors), `mn_gym.make` (the functional env by id),
`mn_gym.rollout` (the differentiable face) and `mn_gym.faces` (Gymnasium, vector and SB3 faces).
"""

from mn_gym.catalogue import list_ids, make, spec
from mn_gym.core import EFFECTORS, Effector, EffectorBuilder, EffectorState, make_effector
from mn_gym.core.prebuilt import register_effector
from mn_gym.faces.rollout import Rollout, rollout
from mn_gym.functional import Env, EnvSpec, EnvState
from mn_gym.modular import ModularGRU, ModularGRUPolicy
from mn_gym.policies import GRUPolicy, MLPPolicy
from mn_gym.registry import gym_ids, register, register_all
from mn_gym.tasks import register_task
from mn_gym.threads import apply_default_threads

__version__ = "0.1.0"

register_all()  # every catalogue id with gymnasium: gymnasium.make("mn_gym:ArmReach-v0")
apply_default_threads()  # 1 torch thread unless MN_GYM_THREADS / OMP_NUM_THREADS say otherwise (mn_gym.threads)

__all__ = [
    "EFFECTORS",
    "Effector",
    "EffectorBuilder",
    "EffectorState",
    "Env",
    "EnvSpec",
    "EnvState",
    "GRUPolicy",
    "MLPPolicy",
    "ModularGRU",
    "ModularGRUPolicy",
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
    "spec",
]
