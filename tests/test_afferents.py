"""Afferent models (mn_gym.afferents) and the env's `proprioception` setting ("fibre", "spindle", "spindle_gto")."""

import gymnasium as gym
import pytest
import torch

import mn_gym
from mn_gym import afferents
from mn_gym.afferents import RATE_SCALE, gto_ib, spindle_ia, spindle_ii

B, M = 5, 3
L0 = torch.tensor([0.1, 0.14, 0.09])  # m
VMAX = 10 * L0  # m/s
FMAX = torch.tensor([800.0, 1200.0, 400.0])  # N


def rates(ln, vn, beta=None):
    return spindle_ia(ln, vn, L0, VMAX, beta=beta), spindle_ii(ln, L0, beta=beta)


# ----------------------------------------------------------------------------------- the models
def test_shapes_dtype_and_scalar_scales():
    ln, vn, f = torch.rand(B, M) + 0.5, torch.randn(B, M) * 0.1, torch.rand(B, M) * 500
    for out in (*rates(ln, vn), gto_ib(f, FMAX)):
        assert out.shape == (B, M) and out.dtype == torch.float32
    assert spindle_ia(ln.double(), vn.double(), 0.1, 1.0).shape == (B, M)


def test_unit_conversion_and_published_constants():
    # 1 cm of stretch at rest: Ia = 2 * 10 + 100 = 120 imp/s, II = 13.5 * 10 + 20 = 155 imp/s
    ln = 1 + 0.01 / L0.expand(1, M)
    ia, ii = rates(ln, torch.zeros(1, M))
    torch.testing.assert_close(ia * RATE_SCALE, torch.full((1, M), 120.0))
    torch.testing.assert_close(ii * RATE_SCALE, torch.full((1, M), 155.0))
    # 100 mm/s of stretch velocity at optimal length: 4.3 * 100^0.6 + 100 (regularised power: < 0.2% off)
    vn = 0.1 / VMAX.expand(1, M)
    ia, ii = rates(torch.ones(1, M), vn)
    torch.testing.assert_close(ia * RATE_SCALE, torch.full((1, M), 4.3 * 100 ** 0.6 + 100), rtol=2e-3, atol=0)
    torch.testing.assert_close(ii * RATE_SCALE, torch.full((1, M), 20.0))
    # Ib: 333 imp/s at F_max, half at F_max / 2
    ib = gto_ib(torch.stack((FMAX, FMAX / 2)), FMAX)
    torch.testing.assert_close(ib * RATE_SCALE, torch.tensor([[333.0] * M, [166.5] * M]))


def test_ia_rises_with_velocity_and_length_ii_with_length_only():
    v = torch.linspace(-0.05, 0.05, 11)[:, None].expand(-1, M)
    ia_v, ii_v = rates(torch.ones_like(v), v)
    assert (ia_v.diff(dim=0) > 0).all()
    torch.testing.assert_close(ii_v, ii_v[:1].expand_as(ii_v))  # II: static, no velocity term
    ln = torch.linspace(0.995, 1.3, 9)[:, None].expand(-1, M)  # II above its threshold (~1.5 mm short)
    ia_l, ii_l = rates(ln, torch.zeros_like(ln))
    assert (ia_l.diff(dim=0) > 0).all() and (ii_l.diff(dim=0) > 0).all()
    assert (ii_l.diff(dim=0) > ia_l.diff(dim=0)).all()  # 13.5 vs 2 imp/s per mm


def test_ib_linear_in_force():
    f = torch.linspace(0, 1, 6)[:, None] * FMAX
    ib = gto_ib(f, FMAX, beta=None)
    torch.testing.assert_close(ib, f / FMAX * 3.33)
    torch.testing.assert_close(ib.diff(dim=0), ib.diff(dim=0)[:1].expand(5, M))


def test_clamping_at_zero():
    ln = torch.full((1, M), 0.4)  # 6 cm short: II = 13.5 * -60 + 20 << 0
    hard, soft = spindle_ii(ln, L0, beta=None), spindle_ii(ln, L0)
    assert (hard == 0).all() and (soft >= 0).all() and (soft < 1e-6).all()
    ib = gto_ib(-torch.ones(1, M), FMAX, beta=None)
    assert (ib == 0).all() and (gto_ib(-torch.ones(1, M), FMAX) >= 0).all()
    # the softplus clamp: log(2) / beta imp/s at threshold, within that of max(r, 0) everywhere
    at = 1 - (20 / 13.5) / 1000 / L0  # II exactly 0 imp/s
    log2 = torch.log(torch.tensor(2.0)).item()
    torch.testing.assert_close(spindle_ii(at[None], L0) * RATE_SCALE, torch.full((1, M), log2), atol=1e-4, rtol=0)
    ln = torch.linspace(0.5, 1.5, 41)[:, None].expand(-1, M)
    assert ((spindle_ii(ln, L0) - spindle_ii(ln, L0, beta=None)) * RATE_SCALE).abs().max() <= 0.6932
    # gradient near threshold is nonzero (1/2 at threshold) under the soft clamp, zero below it under the hard
    x = at[None].clone().requires_grad_(True)
    (g,) = torch.autograd.grad(spindle_ii(x, L0).sum(), x)
    torch.testing.assert_close(g, 0.5 * 13.5 * L0[None] * 1000 / RATE_SCALE, rtol=1e-3, atol=0)


def test_gamma_coupling():
    ln, vn, a = torch.ones(B, M), torch.zeros(B, M), torch.rand(B, M)
    base = spindle_ia(ln, vn, L0, VMAX)
    torch.testing.assert_close(spindle_ia(ln, vn, L0, VMAX, a, gamma_coupling=0.0), base)
    coupled = spindle_ia(ln, vn, L0, VMAX, a, gamma_coupling=50.0)
    torch.testing.assert_close((coupled - base) * RATE_SCALE, 50.0 * a, atol=1e-3, rtol=1e-4)
    assert (spindle_ii(ln, L0, a, gamma_coupling=50.0) > spindle_ii(ln, L0)).all()
    with pytest.raises(ValueError, match="activation"):
        spindle_ia(ln, vn, L0, VMAX, gamma_coupling=1.0)


def test_gradcheck_float64():
    d = dict(dtype=torch.float64)
    ln = (1 + 0.05 * torch.randn(2, M, **d)).requires_grad_(True)  # Ia and II well above threshold here
    vn = (0.02 * torch.randn(2, M, **d)).requires_grad_(True)
    vn0 = torch.zeros(2, M, **d, requires_grad=True)  # at rest: the regularised power law is smooth
    f = (torch.rand(2, M, **d) * 500).requires_grad_(True)
    l0, vmax, fmax = L0.double(), VMAX.double(), FMAX.double()
    assert torch.autograd.gradcheck(lambda a, b: spindle_ia(a, b, l0, vmax), (ln, vn))
    assert torch.autograd.gradcheck(lambda a, b: spindle_ia(a, b, l0, vmax), (ln, vn0))
    assert torch.autograd.gradcheck(lambda a: spindle_ii(a, l0), (ln,))
    assert torch.autograd.gradcheck(lambda a: gto_ib(a, fmax), (f,))
    short = torch.full((2, M), 0.99, **d, requires_grad=True)  # II near its threshold: the softplus part
    assert torch.autograd.gradcheck(lambda a: spindle_ii(a, l0), (short,))


def test_velocity_power_is_finite_at_rest():
    v = torch.zeros(1, M, requires_grad=True)
    (g,) = torch.autograd.grad(spindle_ia(torch.ones(1, M), v, L0, VMAX).sum(), v)
    assert torch.isfinite(g).all() and (g > 0).all()
    assert afferents.VELOCITY_EPS == 1.0


# ----------------------------------------------------------------------------------- the env setting
def test_env_terms_and_size():
    env = mn_gym.make("ArmReach-v0", proprioception="spindle_gto", batch_size=4)
    assert env.obs_size == 2 + 2 + 3 * 6
    assert [n for n, _ in env.observation_terms] == ["target", "hand", "spindle_ia", "spindle_ii", "gto_ib"]
    s = env.observation_slices()
    assert (s["spindle_ia"], s["gto_ib"]) == (slice(4, 10), slice(16, 22))
    state, obs = env.reset(seed=0)
    assert obs.shape == (4, 22) and state.proprioception.shape == (4, env.proprioception_lag + 1, 18)
    spindle = mn_gym.make("ArmReach-v0", proprioception="spindle")
    assert [n for n, _ in spindle.observation_terms][2:] == ["spindle_ia", "spindle_ii"] and spindle.obs_size == 16
    new = mn_gym.make("ArmReachSpindle-v0")
    assert new.sensing.proprioception == "spindle_gto" and new.observation_terms == env.observation_terms


def test_env_values_match_the_models():
    env = mn_gym.make("ArmReach-v0", proprioception="spindle_gto", batch_size=3, deterministic=True)
    state, _ = env.reset(seed=1)
    eff, muscle = env.effector, env.effector.muscle
    length, velocity = eff.fibre_state(state.effector)
    ln, vn = length / muscle.optimal_fibre_length, velocity / muscle.max_velocity
    want = torch.cat((spindle_ia(ln, vn, muscle.optimal_fibre_length, muscle.max_velocity),
                      spindle_ii(ln, muscle.optimal_fibre_length),
                      gto_ib(eff.muscle_force(state.effector), muscle.max_isometric_force)), dim=-1)
    torch.testing.assert_close(env.proprioception(state.effector), want)


def _steps(env, n, seed=0):
    state, obs = env.reset(seed=seed)
    obs_list = [obs]
    for k in range(n):
        action = torch.full((env.batch_size, env.action_size), 0.1 + 0.05 * (k % 4))
        state, obs, *_ = env.step(state, action)
        obs_list.append(obs)
    return obs_list


def test_delayed_by_proprioception_delay():
    kw = dict(proprioception="spindle_gto", batch_size=2, deterministic=True, vision_delay=0.0)
    now = mn_gym.make("ArmReach-v0", proprioception_delay=0.0, **kw)
    late = mn_gym.make("ArmReach-v0", proprioception_delay=0.03, **kw)
    lag = late.proprioception_lag
    assert lag == 3 and now.proprioception_lag == 0
    prop = slice(4, 22)
    a, b = _steps(now, 8), _steps(late, 8)
    for t in range(8):
        torch.testing.assert_close(b[t][:, prop], a[max(t - lag, 0)][:, prop])
    assert not torch.equal(a[8][:, prop], b[8][:, prop])


def test_noise_applies_to_every_afferent_term():
    env = mn_gym.make("ArmReach-v0", proprioception="spindle_gto", batch_size=64, proprioception_noise=0.1,
                      vision_noise=0.0, action_noise=0.0)
    assert torch.equal(env._noise_std[6:], torch.tensor([0.0] * 4 + [0.1] * 18))
    state, _ = env.reset(seed=0)
    clean = env._observe(state, None)
    spread = (env.observe(state) - clean).std(dim=0)
    assert (spread[4:] > 0.05).all() and (spread[:4] == 0).all()


def test_default_is_fibre_and_unchanged():
    plain = mn_gym.make("ArmReach-v0", batch_size=3)
    fibre = mn_gym.make("ArmReach-v0", batch_size=3, proprioception="fibre")
    assert plain.sensing.proprioception == "fibre"
    assert [n for n, _ in plain.observation_terms] == ["target", "hand", "fibre_length", "fibre_velocity"]
    for x, y in zip(_steps(plain, 5), _steps(fibre, 5), strict=True):
        assert torch.equal(x, y)
    state, _ = plain.reset(seed=0)
    length, velocity = plain.effector.fibre_state(state.effector)
    m = plain.effector.muscle
    assert torch.equal(plain.proprioception(state.effector),
                       torch.cat((length / m.optimal_fibre_length, velocity / m.max_velocity), dim=-1))


def test_bad_values_name_the_choices():
    with pytest.raises(ValueError, match=r"proprioception must be one of \['fibre', 'spindle', 'spindle_gto'\]"):
        mn_gym.make("ArmReach-v0", proprioception="golgi")
    with pytest.raises(ValueError, match="proprioception must be one of"):
        mn_gym.make("ArmReach-v0", proprioception=None)
    with pytest.raises(ValueError, match="needs a Hill-type muscle"):
        mn_gym.make("PointMassReach-v0", proprioception="spindle")


def test_gradients_flow_from_observations_to_actions():
    env = mn_gym.make("ArmReachSpindle-v0", batch_size=2, deterministic=True, proprioception_delay=0.0,
                      dtype=torch.float64)
    state, _ = env.reset(seed=0)
    actions = torch.full((4, 2, env.action_size), 0.2, dtype=torch.float64, requires_grad=True)
    for k in range(4):
        state, obs, *_ = env.step(state, actions[k])
    prop = obs[:, 4:]
    (g,) = torch.autograd.grad(prop.sum(), actions, retain_graph=True)
    assert torch.isfinite(g).all() and g[:3].abs().sum() > 0
    ib = obs[:, env.observation_slices()["gto_ib"]]
    (g_ib,) = torch.autograd.grad(ib.sum(), actions)
    assert g_ib[-1].abs().sum() > 0  # the last excitation moves the tendon organs at once (force)


def test_gymnasium_make():
    env = gym.make("ArmReachSpindle-v0")
    obs, _ = env.reset(seed=0)
    assert obs.shape == (22,) and env.observation_space.shape == (22,)
    obs, *_ = env.step(env.action_space.sample())
    assert obs.shape == (22,)
    env.close()
    env = gym.make("ArmReach-v1", proprioception="spindle")
    assert env.reset(seed=0)[0].shape[0] == env.unwrapped.observation_space.shape[0]
    env.close()
