"""The fused Euler step (`mn_gym.core.adjoint.EulerStep`): its analytic adjoint against finite differences
(float64 gradcheck) and against autograd through the plain step, and the partial derivatives it is built from."""

from __future__ import annotations

import pytest
import torch

import mn_gym
from mn_gym.core.adjoint import EulerStep

F64 = torch.float64
FUSED = ["arm26", "pointmass24", "reacher", "free_pointmass24"]


def plain(effector: mn_gym.Effector) -> mn_gym.Effector:
    """The same effector stepping through plain autograd (the reference of the fused step)."""
    return effector.replace(adjoint=False)


def moving_state(effector: mn_gym.Effector, batch: int, seed: int) -> mn_gym.EffectorState:
    g = torch.Generator().manual_seed(seed)
    state = effector.random_initial_state(batch, g)
    qd = torch.randn(batch, effector.dof, generator=g, dtype=effector.dtype)
    l_mt, v_mt, _ = effector.geometry(effector.skeleton, state.q, qd)  # off the kink of force-velocity at v = 0
    return state._replace(qd=qd, mt_length=l_mt, mt_velocity=v_mt)


@pytest.mark.parametrize("name", FUSED)
def test_every_rigid_euler_effector_steps_fused(name):
    eff = mn_gym.make_effector(name)
    state = eff.random_initial_state(3)
    u = torch.rand(3, eff.n_muscles, requires_grad=True)
    assert eff._fused_step((*state, u, None, None)) == 2
    with torch.no_grad():
        assert eff._fused_step((*state, u, None, None)) == 1
    assert not mn_gym.make_effector("compliant_arm26", dt=0.0002)._fused
    assert not mn_gym.make_effector("arm26", integrator="rk4")._fused
    assert not mn_gym.make_effector("arm26", muscle="thelen")._fused


@pytest.mark.parametrize("name,kwargs", [("arm26", {}), ("arm26", {"g": 9.81, "damping": 0.3, "n_substeps": 2}),
                                         ("pointmass24", {}), ("reacher", {}), ("free_pointmass24", {})])
def test_fused_step_passes_gradcheck(name, kwargs):
    eff = mn_gym.make_effector(name, dtype=F64, **kwargs)
    state = moving_state(eff, 3, seed=1)
    g = torch.Generator().manual_seed(2)
    inputs = (state.q, state.qd, state.activation, state.mt_length, state.mt_velocity,
              torch.rand(3, eff.n_muscles, generator=g, dtype=F64) * 0.9 + 0.05,
              torch.randn(3, 2, generator=g, dtype=F64), torch.randn(3, eff.dof, generator=g, dtype=F64))
    inputs = tuple(x.clone().requires_grad_() for x in inputs)

    def step(q, qd, a, l_mt, v_mt, u, endpoint_load, joint_load):
        new = eff.advance(mn_gym.EffectorState(q, qd, a, None, l_mt, v_mt), u, endpoint_load, joint_load)
        return new.q, new.qd, new.activation, new.mt_length, new.mt_velocity

    assert torch.autograd.gradcheck(step, inputs, eps=1e-7, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("name,kwargs", [("arm26", {}), ("arm26", {"g": 9.81, "damping": 0.5, "n_substeps": 3}),
                                         ("pointmass24", {}), ("reacher", {}), ("free_pointmass24", {})])
@pytest.mark.parametrize("dtype", [torch.float32, F64])
def test_fused_rollout_gradients_match_autograd(name, kwargs, dtype):
    """20 steps with both loads and clipped excitations: the same values, gradients to rounding."""
    results = []
    fused = mn_gym.make_effector(name, dtype=dtype, **kwargs)
    for eff in (fused, plain(fused)):
        g = torch.Generator().manual_seed(4)
        state = moving_state(eff, 6, seed=3)
        q0 = state.q.clone().requires_grad_()
        state = state._replace(q=q0)
        u = (torch.rand(20, 6, eff.n_muscles, generator=g, dtype=dtype) * 1.2 - 0.1).requires_grad_()
        loads = (torch.randn(20, 6, 2, generator=g, dtype=dtype) * 3).requires_grad_()
        for t in range(20):
            state = eff.step(state, u[t], loads[t], 0.1 * loads[t, :, :eff.dof])
        loss = (eff.cartesian(state) ** 2).sum() + state.activation.sum() + state.mt_length.sum() \
            + state.mt_velocity.sum()
        results.append((loss.detach(), torch.autograd.grad(loss, (u, q0, loads))))
    (loss_f, grads_f), (loss_p, grads_p) = results
    tol = 1e-12 if dtype == F64 else 2e-4
    assert torch.allclose(loss_f, loss_p, rtol=tol, atol=0)
    for fused, reference in zip(grads_f, grads_p, strict=True):
        scale = reference.abs().max()
        assert float((fused - reference).abs().max()) <= tol * float(scale) + 1e-30


@pytest.mark.parametrize("muscle", ["kistemaker", "linear"])
def test_force_partials_match_autograd(muscle):
    """Both force-velocity branches, above and below optimal length, slack musculotendons."""
    eff = mn_gym.make_effector("arm26" if muscle == "kistemaker" else "reacher", dtype=F64)
    m = eff.muscle
    g = torch.Generator().manual_seed(5)
    n = m.n_muscles
    a = (torch.rand(2000, n, generator=g, dtype=F64) * 0.99 + 0.005).requires_grad_()
    rest = eff.random_initial_state(2000, g).mt_length if muscle == "kistemaker" else torch.ones(2000, n, dtype=F64)
    l_mt = (rest * (0.7 + 0.6 * torch.rand(2000, n, generator=g, dtype=F64))).requires_grad_()
    v_mt = (torch.randn(2000, n, generator=g, dtype=F64) * 0.5).requires_grad_()
    force = m.rows(a, l_mt, v_mt)[-1]
    expected = torch.autograd.grad(force.sum(), (a, l_mt, v_mt), allow_unused=True, materialize_grads=True)
    got = m.force_partials(a, l_mt, v_mt)
    assert torch.equal(got[0], force)
    for x, y in zip(got[1:], expected, strict=True):
        x = torch.zeros_like(y) if x is None else x  # None: identically zero
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-9 * float(y.abs().max()))


def test_activation_partials_match_autograd():
    m = mn_gym.make_effector("arm26", dtype=F64).muscle
    g = torch.Generator().manual_seed(6)
    u = torch.rand(500, 6, generator=g, dtype=F64).requires_grad_()
    a = torch.rand(500, 6, generator=g, dtype=F64).requires_grad_()
    rate = m.activation_rate(u, a)
    expected = torch.autograd.grad(rate.sum(), (u, a))
    got = m.activation_partials(u, a)
    assert torch.equal(got[0], rate)
    for x, y in zip(got[1:], expected, strict=True):
        assert torch.allclose(x, y, rtol=1e-12, atol=0)


def test_a_parameter_that_requires_grad_steps_through_autograd():
    """System identification: a gradient w.r.t. a muscle parameter needs the plain step (EulerStep gives only
    the inputs' gradients), so it is taken automatically."""
    eff = mn_gym.make_effector("arm26", dtype=F64)
    muscle = eff.muscle.replace()
    fmax = muscle.max_isometric_force = muscle.max_isometric_force.clone().requires_grad_()
    eff = eff.replace(muscle=muscle)
    state = eff.random_initial_state(2)
    u = torch.full((2, 6), 0.5, dtype=F64, requires_grad=True)
    assert eff._fused_step((*state, u, None, None)) == 0
    for _ in range(5):
        state = eff.step(state, u)
    (grad,) = torch.autograd.grad(eff.cartesian(state)[:, 0].sum(), fmax)
    assert bool(torch.isfinite(grad).all()) and float(grad.abs().max()) > 0


def test_fused_step_is_one_autograd_node():
    eff = mn_gym.make_effector("arm26")
    state = eff.random_initial_state(2)
    u = torch.rand(2, 6, requires_grad=True)
    new = eff.step(state, u)
    assert type(new.q.grad_fn).__name__ == f"{EulerStep.__name__}Backward"


def test_second_order_gradients_name_the_plain_step():
    eff = mn_gym.make_effector("arm26", dtype=F64)
    state = moving_state(eff, 2, seed=7)
    u = torch.full((2, 6), 0.4, dtype=F64, requires_grad=True)
    loss = (eff.cartesian(eff.step(eff.step(state, u), u)) ** 2).sum()
    with pytest.raises(RuntimeError, match="adjoint=False"):
        torch.autograd.grad(loss, u, create_graph=True)
    plain_eff = plain(eff)
    assert not plain_eff._fused and plain_eff.adjoint is False
    loss = (plain_eff.cartesian(plain_eff.step(plain_eff.step(state, u), u)) ** 2).sum()
    (g,) = torch.autograd.grad(loss, u, create_graph=True)
    (h,) = torch.autograd.grad(g.sum(), u)  # a Hessian-vector product through the dynamics
    assert bool(torch.isfinite(h).all())


@pytest.mark.parametrize("name", ["arm26", "pointmass24"])
def test_gradients_through_active_joint_limits_match_autograd(name):
    """Joints driven into their position and velocity limits: the adjoint zeroes what the clamps zero."""
    grads = []
    fused = mn_gym.make_effector(name, dtype=F64)
    sk = fused.skeleton
    for eff in (fused, plain(fused)):
        q = torch.stack((sk.pos_upper - 1e-3, sk.pos_lower + 1e-3, 0.5 * (sk.pos_lower + sk.pos_upper)))
        qd = torch.stack((torch.full_like(sk.pos_upper, 5.0), torch.full_like(sk.pos_upper, -5.0),
                          torch.full_like(sk.pos_upper, 2e3)))  # out through the bounds; past the speed limit
        state = eff.initial_state(torch.cat((q, qd.clamp(sk.vel_lower, sk.vel_upper)), 1))
        qd0 = qd.clone().requires_grad_()
        state = state._replace(qd=qd0)
        u = torch.full((3, eff.n_muscles), 0.3, dtype=F64, requires_grad=True)
        for _ in range(3):
            state = eff.step(state, u)
        loss = (state.q ** 2).sum() + state.qd.sum() + state.mt_length.sum()
        grads.append(torch.autograd.grad(loss, (u, qd0)))
    for x, y in zip(*grads, strict=True):
        assert torch.allclose(x, y, rtol=1e-10, atol=1e-12)
