"""The pure-torch physics core: skeletons, muscles, path geometry, integrators, effectors and the effector
step's analytic adjoint (`adjoint`: the fused Euler step that BPTT differentiates through).

Nothing here imports gymnasium or any other part of mn_gym.
"""

from mn_gym.core.effector import Effector, EffectorState
from mn_gym.core.geometry import ConstantGeometry, PolynomialGeometry, ViaPointGeometry
from mn_gym.core.muscle import (
    MUSCLES,
    CompliantKistemakerMuscle,
    KistemakerMuscle,
    LinearMuscle,
    MujocoMuscle,
    ThelenMuscle,
)
from mn_gym.core.params import AccuracyWarning
from mn_gym.core.prebuilt import EFFECTORS, EffectorBuilder, make_effector
from mn_gym.core.skeleton import Elbow, PointMass, TwoLinkArm

__all__ = [
    "EFFECTORS",
    "MUSCLES",
    "AccuracyWarning",
    "CompliantKistemakerMuscle",
    "ConstantGeometry",
    "Effector",
    "EffectorBuilder",
    "EffectorState",
    "Elbow",
    "KistemakerMuscle",
    "LinearMuscle",
    "MujocoMuscle",
    "PointMass",
    "PolynomialGeometry",
    "ThelenMuscle",
    "TwoLinkArm",
    "ViaPointGeometry",
    "make_effector",
]
