"""Muscle models against their defining properties (independent of MotorNet's golden files)."""

import torch

from mn_gym.core.muscle import CompliantKistemakerMuscle, KistemakerMuscle, ThelenMuscle

F64 = torch.float64
PARAMS = dict(max_isometric_force=[838.0, 414.0], tendon_slack_length=[0.07, 0.204],
              optimal_fibre_length=[0.134, 0.137])


def _grid(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = 0.01 + 0.99 * torch.rand(n, 2, generator=g, dtype=F64)
    ln = 0.6 + 0.8 * torch.rand(n, 2, generator=g, dtype=F64)
    return a, ln


def test_compliant_fibre_velocity_inverts_the_rigid_force_velocity_curve():
    """The compliant muscle's fibre velocity, fed to the rigid model's force-velocity curve at the same
    activation and fibre length, reproduces the contractile force (tendon minus passive) it was computed from."""
    comp = CompliantKistemakerMuscle(2, dtype=F64, **PARAMS)
    rigid = KistemakerMuscle(2, dtype=F64, **PARAMS, min_activation=0.01)
    a, ln = _grid()
    l_m = ln * comp.optimal_fibre_length
    strain = torch.linspace(0.0, 0.035, a.shape[0], dtype=F64)[:, None].expand(-1, 2)
    l_mt = l_m + comp.tendon_slack_length * (1 + strain)
    _, _, v_fibre, _, _, active, _ = comp.rows(a, l_mt, torch.zeros_like(l_mt), l_m)
    # The rigid model with its tendon at slack length sees the same fibre length and this fibre velocity.
    rows = rigid.rows(a, l_m + rigid.tendon_slack_length, v_fibre)
    normalised_active = rows[5]
    ok = active > 1e-3  # the inversion is exact wherever the contractile element carries force
    assert ok.sum() > 100
    assert torch.allclose(normalised_active[ok], active[ok], rtol=1e-9, atol=1e-12)


def test_force_velocity_branches_meet_at_isometric():
    for cls in (KistemakerMuscle, ThelenMuscle):
        m = cls(2, dtype=F64, **PARAMS)
        a, ln = _grid()
        l_mt = ln * m.optimal_fibre_length + m.tendon_slack_length
        eps = 1e-9
        f_short = m.rows(a, l_mt, torch.full_like(a, -eps))[-1]
        f_long = m.rows(a, l_mt, torch.full_like(a, eps))[-1]
        assert torch.allclose(f_short, f_long, rtol=1e-6), cls.__name__


def test_force_increases_with_lengthening_velocity():
    m = KistemakerMuscle(2, dtype=F64, **PARAMS)
    a = torch.full((50, 2), 0.6, dtype=F64)
    l_mt = m.optimal_fibre_length + m.tendon_slack_length + torch.zeros_like(a)
    v = torch.linspace(-1.0, 1.0, 50, dtype=F64)[:, None] * m.max_velocity
    force = m.rows(a, l_mt, v)[-1]
    assert (force[1:] >= force[:-1]).all()


def test_activation_rate_time_constants():
    tau_a, tau_d = 0.015, 0.05
    m = KistemakerMuscle(1, dtype=F64, max_isometric_force=1.0, tendon_slack_length=0.1, optimal_fibre_length=0.1,
                         tau_activation=tau_a, tau_deactivation=tau_d)
    a = torch.tensor([0.2], dtype=F64)
    rise = m.activation_rate(torch.tensor([1.0], dtype=F64), a)
    fall = m.activation_rate(torch.tensor([0.0], dtype=F64), a)
    f = 0.5 + 1.5 * 0.2
    assert torch.allclose(rise, (1.0 - a) / (tau_a * f))
    assert torch.allclose(fall, -a / (tau_d / f))
