"""The effector's explicit Euler step as one autograd node with an analytic adjoint.

Recorded op by op, one arm26 step is ~150 autograd nodes, and their bookkeeping dominates a backward pass
through time at the batch sizes of BPTT. `EulerStep` runs the same step forward without recording, keeping
the few tensors the adjoint needs, and its backward is the chain rule written out once (the vector-Jacobian
product of the step):

    u = clip(excitation);  l, v, R = geometry(q, qd);  F = force(a, l_stored, v_stored)
    qdd = acceleration(q, qd, R F + joint_load - damping qd, endpoint_load);  adot = activation_rate(u, a)
    q', qd' = limit(q + h qd, qd + h qdd);  a' = clip(a + h adot);  new stored path = (l, v)

Each component supplies its own part: `Muscle.force_partials` and `activation_partials` (elementwise partial
derivatives), `Geometry.vjp`, `Skeleton.acceleration_vjp` and `limit_vjp`. `fused_step_available` says
whether an effector has them all; the others step through plain autograd. Gradients agree with autograd's
through `Effector.advance` to rounding (float64 gradcheck in the tests). Only the inputs' gradients are
computed: while any parameter tensor requires a gradient the effector uses plain autograd instead, and
second-order gradients (create_graph=True) raise, naming `Effector(..., adjoint=False)`, which records the
plain step.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from mn_gym.core.geometry import Geometry
from mn_gym.core.muscle import Muscle
from mn_gym.core.skeleton import Skeleton

# `eff` below is an `mn_gym.core.effector.Effector` (which imports this module): its skeleton, muscle and
# geometry, damping, generalised_force, clip_excitation and clip_activation are what the step reads.
Effector = Any


def fused_step_available(integrator: str, skeleton: Skeleton, muscle: Muscle, geometry: Geometry) -> bool:
    """Whether an effector of these components can step as `EulerStep`: euler, a rigid tendon, and every
    component with its derivatives."""
    return (integrator == "euler" and not muscle.compliant and muscle.has_force_partials
            and geometry.supports_vjp(skeleton) and type(skeleton).acceleration_vjp is not Skeleton.acceleration_vjp)


def _add(x: Tensor, y: Tensor | None) -> Tensor:
    return x if y is None else x + y


def euler_forward(eff: Effector, h: float, q: Tensor, qd: Tensor, a: Tensor, l_stored: Tensor, v_stored: Tensor,
                  excitation: Tensor, endpoint_load: Tensor | None, joint_load: Tensor | None, partials: bool
                  ) -> tuple[tuple[Tensor, Tensor, Tensor, Tensor, Tensor], tuple[Tensor | None, ...] | None]:
    """One Euler step: the new (q, qd, activation, l_mt, v_mt) and, when `partials`, what `EulerStep.backward`
    needs (else None). Without partials it is the plain step's arithmetic, op for op."""
    muscle, skeleton = eff.muscle, eff.skeleton
    u = eff.clip_excitation(excitation)
    l_mt, v_mt, moment_arm = eff.geometry(skeleton, q, qd)
    if partials:
        force, force_a, force_l, force_v = muscle.force_partials(a, l_stored, v_stored)
        rate, rate_u, rate_a = muscle.activation_partials(u, a)
    else:
        force = muscle.rows(a, l_stored, v_stored)[-1]
        rate = muscle.activation_rate(u, a)
    qdd = skeleton.acceleration(q, qd, eff.generalised_force(moment_arm, force, qd, joint_load), endpoint_load)
    q1, qd1, a1 = torch.add(q, qd, alpha=h), torch.add(qd, qdd, alpha=h), torch.add(a, rate, alpha=h)
    q_new, qd_new = skeleton.limit(q1, qd1)
    out = (q_new, qd_new, eff.clip_activation(a1), l_mt, v_mt)
    if not partials:
        return out, None
    return out, (q, qd, excitation, endpoint_load, moment_arm, force, force_a, force_l, force_v, qdd, rate_u, rate_a,
                 q1, qd1, a1)


def _times(x: Tensor, y: Tensor | None) -> Tensor | None:
    return None if y is None else x * y


class EulerStep(torch.autograd.Function):
    """`euler_forward` as one autograd node: (q, qd, a, stored l_mt, stored v_mt, excitation, endpoint_load,
    joint_load) -> (q', qd', a', l_mt, v_mt), every tensor (B, ...) as in `EffectorState`; loads may be None."""

    @staticmethod
    def forward(ctx: Any, eff: Effector, h: float, q: Tensor, qd: Tensor, a: Tensor, l_stored: Tensor,
                v_stored: Tensor, excitation: Tensor, endpoint_load: Tensor | None, joint_load: Tensor | None
                ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        out, saved = euler_forward(eff, h, q, qd, a, l_stored, v_stored, excitation, endpoint_load, joint_load, True)
        ctx.eff, ctx.h, ctx.has_joint_load = eff, h, joint_load is not None
        ctx.save_for_backward(*saved)
        return out

    @staticmethod
    def backward(ctx: Any, g_q_new: Tensor, g_qd_new: Tensor, g_a_new: Tensor, g_l: Tensor, g_v: Tensor
                 ) -> tuple[Tensor | None, ...]:
        if torch.is_grad_enabled():  # create_graph=True: the saved partials carry no graph of their own
            raise RuntimeError("second-order gradients through the fused Euler step are not supported; build the "
                               "effector with adjoint=False (effector.replace(adjoint=False)) to record the plain "
                               "step op by op")
        eff, h = ctx.eff, ctx.h
        (q, qd, excitation, endpoint_load, moment_arm, force, force_a, force_l, force_v, qdd, rate_u, rate_a, q1,
         qd1, a1) = ctx.saved_tensors
        lo = eff.muscle.min_activation
        g_a1 = g_a_new * ((a1 >= lo) & (a1 <= 1.0))
        g_q1, g_qd1 = eff.skeleton.limit_vjp(q1, qd1, g_q_new, g_qd_new)
        g_a = torch.addcmul(g_a1, g_a1, rate_a, value=h)
        g_excitation = (g_a1 * rate_u * h) * ((excitation >= lo) & (excitation <= 1.0))
        g_qdd = g_qd1 * h
        g_q_skel, g_qd_skel, g_tau, g_endpoint = eff.skeleton.acceleration_vjp(q, qd, endpoint_load, qdd, g_qdd)
        g_q = _add(g_q1, g_q_skel)
        g_qd = _add(torch.add(g_qd1, g_q1, alpha=h), g_qd_skel)
        if eff.damping:
            g_qd = g_qd - eff.damping * g_tau
        g_force = torch.matmul(g_tau.unsqueeze(1), moment_arm).squeeze(1)  # R^T g_tau, (B, M)
        g_arm = g_tau.unsqueeze(-1) * force.unsqueeze(1)  # (B, dof, M)
        g_q_geo, g_qd_geo = eff.geometry.vjp(eff.skeleton, q, qd, moment_arm, g_l, g_v, g_arm)
        return (None, None, _add(g_q, g_q_geo), _add(g_qd, g_qd_geo), torch.addcmul(g_a, g_force, force_a),
                _times(g_force, force_l), _times(g_force, force_v), g_excitation, g_endpoint,
                g_tau if ctx.has_joint_load else None)
