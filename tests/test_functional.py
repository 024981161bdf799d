"""The functional face: gradients through rollouts, sensory delays, noise, per-element clocks, input checks and
every catalogue id."""

from __future__ import annotations

import math

import pytest
import torch
from torch.func import functional_call

import mn_gym
from mn_gym.catalogue import REGISTRY
from mn_gym.faces.rollout import rollout
from mn_gym.functional import RESET_OPTIONS, EnvState

F64 = torch.float64
INFO_KEYS = {"terms", "distance", "is_success", "goal", "endpoint_load"}
ARM_Q = [[0.8, 1.2], [1.0, 1.5]]  # mid-range shoulder / elbow angles, far from the joint limits


def _actions(env: mn_gym.Env, n: int, seed: int = 0, low: float = 0.05, high: float = 0.6) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return low + (high - low) * torch.rand(n, env.batch_size, env.action_size, generator=g, dtype=env.dtype)


def _slices(env: mn_gym.Env) -> tuple[slice, slice, slice]:
    """Observation columns of (vision, proprioception, stacked actions), from the declared layout."""
    s = env.observation_slices()
    end = slice(env.obs_size, env.obs_size)
    return s["hand"], slice(s["fibre_length"].start, s["fibre_velocity"].stop), s.get("past_actions", end)


# ----------------------------------------------------------------------------------------------- gradients
def test_gradcheck_through_policy_rollout():
    """Summed rewards + final observation, w.r.t. a policy weight and the initial joint positions (float64)."""
    torch.manual_seed(0)
    env = mn_gym.make("ArmReach-v0", batch_size=2, dtype=F64, deterministic=True, proprioception_delay=0.02,
                      vision_delay=0.03, action_frame_stacking=2)
    policy = mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=4).double()
    params = {k: v.detach() for k, v in policy.named_parameters()}
    _, ts = env.task.sample(env.effector, 2, torch.Generator().manual_seed(1))
    n_steps = 5

    def run(weight: torch.Tensor, q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        p = {**params, "readout.weight": weight}
        joint = torch.cat((q0, torch.zeros_like(q0)), dim=-1)
        state, obs = env.reset(options={"joint_state": joint, "task_state": ts})
        hidden = policy.initial_hidden(2)
        total = torch.zeros((), dtype=F64)
        for _ in range(n_steps):
            action, hidden = functional_call(policy, p, (obs, hidden))
            # No clamp active: excitations strictly inside (min_activation, 1).
            assert bool(((action > 0.01) & (action < 0.99)).all())
            state, obs, reward, *_ = env.step(state, action)
            total = total + reward.sum()
        q = state.effector.q
        sk = env.effector.skeleton
        assert bool(((q > sk.pos_lower + 0.05) & (q < sk.pos_upper - 0.05)).all())  # no joint limit reached
        return total, obs

    mix = torch.rand(2, env.obs_size, generator=torch.Generator().manual_seed(2), dtype=F64)

    def objective(weight: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
        total, obs = run(weight, q0)
        return total + (mix * obs).sum()  # one scalar: a single backward pass per check

    weight = params["readout.weight"].clone().requires_grad_(True)
    q0 = torch.tensor(ARM_Q, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(objective, (weight, q0), eps=1e-6, atol=1e-6, rtol=1e-4)
    gw, gq = torch.autograd.grad(objective(weight, q0), (weight, q0))
    assert gw.abs().max() > 0 and gq.abs().max() > 0


def test_rollout_gradient_reaches_policy_and_effector_parameters():
    env = mn_gym.make("PointMassReach-v0", batch_size=3, deterministic=True, episode_duration=0.1)
    policy = mn_gym.MLPPolicy(env.obs_size, env.action_size, hidden_sizes=(16,))
    out = rollout(env, policy, seed=0)
    assert out.observations.shape == (11, 3, env.obs_size) and out.rewards.shape == (10, 3)
    (-out.rewards.sum()).backward()
    grads = [p.grad for p in policy.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().max() > 0 for g in grads)


# ----------------------------------------------------------------------------------------------- delays
@pytest.mark.parametrize("p_lag, v_lag", [(0, 0), (2, 3), (1, 5)])
def test_delays_show_the_value_lag_steps_earlier(p_lag, v_lag):
    env = mn_gym.make("ArmReach-v0", batch_size=2, deterministic=True, proprioception_delay=p_lag * 0.01,
                      vision_delay=v_lag * 0.01, action_frame_stacking=1)
    assert (env.proprioception_lag, env.vision_lag) == (p_lag, v_lag)
    state, obs = env.reset(seed=3, options={"joint_state": torch.tensor(ARM_Q)})
    actions = _actions(env, 12, high=0.9)
    states, observations = [state], [obs]
    for a in actions:
        state, obs, *_ = env.step(state, a)
        states.append(state)
        observations.append(obs)
    vis, prop, act = _slices(env)
    for t, o in enumerate(observations):
        p_src = states[max(t - p_lag, 0)].effector  # the delay line starts filled with the reset value
        v_src = states[max(t - v_lag, 0)].effector
        torch.testing.assert_close(o[:, prop], env.proprioception(p_src), rtol=0, atol=0)
        torch.testing.assert_close(o[:, vis], env.vision(v_src), rtol=0, atol=0)
        torch.testing.assert_close(o[:, :2], state.task.target, rtol=0, atol=0)
        expected_action = actions[t - 1] if t else torch.zeros_like(actions[0])
        torch.testing.assert_close(o[:, act], expected_action, rtol=0, atol=0)
    # The lagged values really move: a lag of 0 would not match the lagged ones.
    if p_lag:
        assert not torch.equal(observations[-1][:, prop], env.proprioception(states[-1].effector))


def test_action_frame_stacking_is_oldest_first():
    env = mn_gym.make("PointMassReach-v0", batch_size=2, deterministic=True, action_frame_stacking=3)
    state, _ = env.reset(seed=0)
    actions = _actions(env, 4)
    for a in actions:
        state, obs, *_ = env.step(state, a)
    m = env.action_size
    _, _, act = _slices(env)
    torch.testing.assert_close(obs[:, act], torch.cat(list(actions[1:]), dim=-1), rtol=0, atol=0)
    assert env.obs_size == 2 + 2 + 2 * m + 3 * m


@pytest.mark.parametrize("name", ["proprioception_delay", "vision_delay", "episode_duration"])
@pytest.mark.parametrize("value", [0.015, 0.0301, -0.01, float("nan")])
def test_delay_and_duration_must_be_whole_steps(name, value):
    with pytest.raises(ValueError, match=name):
        mn_gym.make("ArmReach-v0", **{name: value})


# ----------------------------------------------------------------------------------------------- noise
NOISE = {"action_noise": 0.05, "proprioception_noise": 0.05, "vision_noise": 0.05, "observation_noise": 0.05}


def _noisy_run(seed: int | None, env_seed: int | None = None, n: int = 5, **kwargs) -> torch.Tensor:
    env = mn_gym.make("ArmReach-v0", batch_size=2, seed=env_seed, **{**NOISE, **kwargs})
    state, obs = env.reset(seed=seed, options={"joint_state": torch.tensor(ARM_Q)})
    out = [obs]
    for a in _actions(env, n):
        state, obs, *_ = env.step(state, a)
        out.append(obs)
    return torch.stack(out)


def test_same_seed_same_noise_different_seed_different_noise():
    torch.testing.assert_close(_noisy_run(7), _noisy_run(7), rtol=0, atol=0)
    torch.testing.assert_close(_noisy_run(None, env_seed=7), _noisy_run(None, env_seed=7), rtol=0, atol=0)
    assert not torch.allclose(_noisy_run(7), _noisy_run(8))


def test_seeding_does_not_touch_the_global_generator():
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    _noisy_run(None)
    _noisy_run(5)
    torch.testing.assert_close(torch.rand(3), expected)


@pytest.mark.parametrize("source", sorted(NOISE))
def test_deterministic_removes_every_noise_source(source):
    clean = _noisy_run(0, **dict.fromkeys(NOISE, 0.0))
    only = {**dict.fromkeys(NOISE, 0.0), source: 0.05}
    assert not torch.allclose(_noisy_run(0, **only), clean)  # the source is wired in
    torch.testing.assert_close(_noisy_run(0, **only, deterministic=True), clean, rtol=0, atol=0)
    torch.testing.assert_close(_noisy_run(0, deterministic=True), clean, rtol=0, atol=0)


def test_noise_is_additive_and_gradients_pass():
    env = mn_gym.make("ArmReach-v0", batch_size=2, seed=0, **NOISE)
    actions = _actions(env, 5).requires_grad_(True)
    state, obs = env.reset(options={"joint_state": torch.tensor(ARM_Q)})
    total = obs.sum()
    for a in actions:
        state, obs, reward, *_ = env.step(state, a)
        total = total + reward.sum() + obs.sum()
    (grad,) = torch.autograd.grad(total, actions)
    assert torch.isfinite(grad).all() and grad.abs().max() > 0


@pytest.mark.parametrize("name", sorted(NOISE))
def test_negative_noise_std_raises(name):
    with pytest.raises(ValueError, match=name):
        mn_gym.make("ArmReach-v0", **{name: -0.1})


# ----------------------------------------------------------------------------------------------- clocks
def test_each_element_truncates_on_its_own_clock():
    env = mn_gym.make("PointMassReach-v0", batch_size=4, deterministic=True, episode_duration=0.1)
    assert env.max_steps == 10
    state, _ = env.reset(seed=0)
    restart = {1: 3, 3: 6}  # element -> the step after which it is restarted
    first_truncation: dict[int, int] = {}
    action = torch.full((4, env.action_size), 0.1)
    for step in range(1, 20):
        state, _, _, terminated, truncated, _ = env.step(state, action)
        assert not terminated.any()
        for i in torch.nonzero(truncated).flatten().tolist():
            first_truncation.setdefault(i, step)
        mask = torch.tensor([restart.get(i) == step for i in range(4)])
        if mask.any():
            before = state
            state = env.reset_where(state, mask)
            assert state.t.tolist() == [0 if mask[i] else before.t[i].item() for i in range(4)]
            assert torch.equal(state.effector.q[~mask], before.effector.q[~mask])  # others untouched
    assert first_truncation == {0: 10, 2: 10, 1: 3 + 10, 3: 6 + 10}


def test_reset_where_refills_delay_lines():
    env = mn_gym.make("ArmReach-v0", batch_size=2, deterministic=True, vision_delay=0.05)
    state, _ = env.reset(seed=0)
    for a in _actions(env, 8, high=0.9):
        state, *_ = env.step(state, a)
    state = env.reset_where(state, torch.tensor([True, False]))
    assert torch.equal(state.vision[0], env.vision(state.effector)[0].expand(env.vision_lag + 1, -1))
    assert not torch.equal(state.vision[1], env.vision(state.effector)[1].expand(env.vision_lag + 1, -1))


# ----------------------------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def arm():
    env = mn_gym.make("ArmReach-v0", batch_size=2, deterministic=True)
    state, _ = env.reset(seed=0)
    return env, state


def test_bad_actions(arm):
    env, state = arm
    with pytest.raises(ValueError, match=r"shape \(2, 6\)"):
        env.step(state, torch.zeros(2, 5))
    with pytest.raises(ValueError, match=r"shape \(2, 6\)"):
        env.step(state, torch.zeros(6))
    for bad in (float("nan"), float("inf"), -float("inf")):
        action = torch.full((2, 6), 0.1)
        action[1, 2] = bad
        with pytest.raises(ValueError, match="NaN"):
            env.step(state, action)
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        env.step(state, [[0.1] * 6] * 2)
    with pytest.raises(TypeError, match="EnvState"):
        env.step(tuple(state), torch.zeros(2, 6))


def test_unknown_id_and_kwargs():
    with pytest.raises(ValueError, match="ArmReach-v0"):
        mn_gym.make("Nope-v0")
    with pytest.raises(TypeError, match=r"unknown argument 'bogus'.*valid:.*proprioception_delay"):
        mn_gym.make("ArmReach-v0", bogus=1)


def test_bad_reset_options_and_seed(arm):
    env, _ = arm
    with pytest.raises(ValueError, match=r"unknown reset option.*" + RESET_OPTIONS[0]):
        env.reset(options={"jointstate": None})
    with pytest.raises(TypeError, match="options"):
        env.reset(options=[("joint_state", None)])
    for seed in ("1", 1.5, True):
        with pytest.raises(TypeError, match="seed"):
            env.reset(seed=seed)
    with pytest.raises(ValueError, match="batch"):
        env.reset(options={"joint_state": torch.tensor([[0.5, 0.5]] * 3)})
    with pytest.raises(ValueError, match="joint limits"):
        env.reset(options={"joint_state": torch.tensor([[3.0, 0.5], [0.5, 0.5]])})
    with pytest.raises(ValueError, match="indexed targets"):
        env.reset(options={"target_index": 0})
    with pytest.raises(ValueError, match="batch_size"):
        mn_gym.make("ArmReach-v0", batch_size=0)


# ----------------------------------------------------------------------------------------------- catalogue
@pytest.mark.parametrize("env_id", mn_gym.list_ids())
def test_every_id_resets_and_steps(env_id):
    env = mn_gym.make(env_id, batch_size=2, seed=0)
    assert env.env_id == env_id and env_id in repr(env)
    state, obs = env.reset()
    assert isinstance(state, EnvState) and obs.shape == (2, env.obs_size) and torch.isfinite(obs).all()
    n_steps = 2 if env_id == "CompliantArmReach-v0" else 5
    for a in _actions(env, n_steps, seed=1):
        state, obs, reward, terminated, truncated, info = env.step(state, a)
        assert obs.shape == (2, env.obs_size) and torch.isfinite(obs).all()
        assert isinstance(reward, torch.Tensor) and reward.shape == (2,) and torch.isfinite(reward).all()
        assert terminated.dtype == torch.bool and truncated.dtype == torch.bool and terminated.shape == (2,)
        assert INFO_KEYS <= set(info)
        assert info["goal"].shape == (2, 2) and info["is_success"].dtype == torch.bool
    assert state.t.tolist() == [n_steps, n_steps]


def test_curl_field_load_and_catch_trials():
    env = mn_gym.make("ArmCurlField-v0", batch_size=3, deterministic=True, k=20.0, seed=0)
    state, _ = env.reset()
    assert torch.equal(state.task.field, torch.full((3,), 20.0))
    for a in _actions(env, 6, high=0.9):
        velocity = env.effector.cartesian(state.effector)[:, 2:]
        state, _, _, _, _, info = env.step(state, a)
        load = info["endpoint_load"]
        torch.testing.assert_close(load, 20.0 * torch.stack((-velocity[:, 1], velocity[:, 0]), dim=-1))
    assert load.abs().max() > 0.01  # the hand moved, so the field pushed
    catch = mn_gym.make("ArmCurlField-v0", batch_size=3, deterministic=True, catch_probability=1.0, seed=0)
    state, _ = catch.reset()
    assert torch.equal(state.task.field, torch.zeros(3))
    for a in _actions(catch, 6, high=0.9):
        state, _, _, _, _, info = catch.step(state, a)
        assert torch.equal(info["endpoint_load"], torch.zeros(3, 2))
    assert env.effector.cartesian(state.effector)[:, 2:].abs().max() > 0.01


def test_centre_out_goal_follows_the_go_cue():
    env = mn_gym.make("ArmCentreOut-v0", batch_size=4, deterministic=True, cue_min=0.05, cue_max=0.15)
    out = rollout(env, lambda obs, h: (torch.full((4, env.action_size), 0.05), h), seed=0, n_steps=25)
    ts = out.final_state.task
    centre = ts.origin
    torch.testing.assert_close(centre, env.effector.cartesian(env.effector.initial_state(
        torch.tensor([[torch.pi / 4, torch.pi / 2]] * 4)))[:, :2])
    torch.testing.assert_close(torch.linalg.vector_norm(ts.target - centre, dim=-1), torch.full((4,), 0.1))
    assert ((ts.cue_step >= 5) & (ts.cue_step <= 15)).all()
    for t in range(26):
        after = t >= ts.cue_step
        expected = torch.where(after[:, None], ts.target, centre)
        torch.testing.assert_close(out.goals[t], expected, rtol=0, atol=0)
        assert torch.equal(out.observations[t][:, 2], after.float())  # go cue column
        torch.testing.assert_close(out.observations[t][:, :2], ts.target, rtol=0, atol=0)
    # Held-out targets in order.
    state, _ = env.reset(options={"target_index": torch.arange(4)})
    angles = torch.atan2(*(state.task.target - state.task.origin).flip(-1).T)
    torch.testing.assert_close(angles, torch.arange(4) * (torch.pi / 4), atol=1e-5, rtol=0)


@pytest.fixture()
def scratch_id():
    env_id = "TestOnlyReach-v0"
    yield env_id
    REGISTRY.pop(env_id, None)


def test_register_new_id_and_duplicate(scratch_id):
    mn_gym.register(scratch_id, "pointmass24", "reach", episode_duration=0.5, vision_delay=0.0,
                    description="test")
    assert scratch_id in mn_gym.list_ids()
    env = mn_gym.make(scratch_id, batch_size=2)
    assert env.max_steps == 50 and env.vision_lag == 0
    state, _ = env.reset(seed=0)
    env.step(state, torch.zeros(2, env.action_size))
    with pytest.raises(ValueError, match="already registered"):
        mn_gym.register(scratch_id, "pointmass24", "reach")
    mn_gym.register(scratch_id, "arm26", "reach", overwrite=True)
    assert mn_gym.make(scratch_id).action_size == 6
    with pytest.raises(ValueError, match="already registered"):
        mn_gym.register("ArmReach-v0", "arm26", "reach")
    with pytest.raises(ValueError, match="unknown effector"):
        mn_gym.register("Other-v0", "nope", "reach")
    with pytest.raises(TypeError, match="unknown argument"):
        mn_gym.register("Other-v0", "arm26", "reach", not_a_setting=1)
    assert "Other-v0" not in mn_gym.list_ids()


# ------------------------------------------------------------------------------ regressions (review fixes)
def test_reward_is_a_tensor_when_every_weight_is_zero():
    env = mn_gym.make("ArmReach-v0", batch_size=2, weights={"position": 0.0, "effort": 0.0}, deterministic=True)
    s, _ = env.reset(seed=0)
    reward = env.step(s, torch.full((2, 6), 0.1))[2]
    assert isinstance(reward, torch.Tensor) and reward.shape == (2,) and (reward == 0).all()


@pytest.mark.parametrize("env_id", ["ArmPosture-v0", "ArmTrack-v0", "ArmReach-v0"])
def test_given_start_posture_sets_posture_dependent_goals(env_id):
    env = mn_gym.make(env_id, batch_size=2, deterministic=True)
    q0 = torch.tensor([[0.5, 1.0], [1.0, 1.5]])
    s, _ = env.reset(seed=0, options={"joint_state": q0})
    hand = env.effector.cartesian(s.effector)[:, :2]
    assert torch.allclose(s.task.origin, hand, atol=1e-6)
    if env_id != "ArmReach-v0":
        assert torch.allclose(env.task.goal(s.task, s.t, env.dt), hand, atol=1e-6)


@pytest.mark.parametrize("kwargs", [{"seed": "x"}, {"seed": 1.5}, {"action_frame_stacking": True},
                                    {"deterministic": "no"}, {"action_noise": float("inf")}])
def test_bad_env_settings_raise(kwargs):
    with pytest.raises((TypeError, ValueError)):
        mn_gym.make("ArmReach-v0", **kwargs)


def test_reset_where_checks_its_mask():
    env = mn_gym.make("ArmReach-v0", batch_size=3)
    s, _ = env.reset(seed=0)
    for bad in (torch.tensor([True]), torch.ones(3, dtype=torch.long), torch.ones(4, dtype=torch.bool)):
        with pytest.raises(ValueError, match="mask must be a bool tensor of shape"):
            env.reset_where(s, bad)


@pytest.mark.parametrize("env_id", sorted(REGISTRY))
def test_observation_layout_comes_from_the_declared_terms(env_id):
    """Names and sizes are declared once (task + env); the columns, the docs table and the obs agree."""
    from mn_gym.faces.gym import MnGymEnv

    env = mn_gym.make(env_id, batch_size=3, deterministic=True, action_frame_stacking=2)
    terms, slices = env.observation_terms, env.observation_slices()
    assert [n for n, _ in terms] == list(slices) and sum(s for _, s in terms) == env.obs_size
    assert [n for n, _ in terms[:len(env.task.observation_terms)]] == [n for n, _ in env.task.observation_terms]
    documented = {line.split("`")[1] for line in MnGymEnv.__doc__.splitlines() if line.strip().startswith("| `")}
    assert set(slices) <= documented, set(slices) - documented
    state, obs = env.reset(seed=0)
    shown = env.task.observe(state.task, state.t, env.dt)
    for name, _ in env.task.observation_terms:
        torch.testing.assert_close(obs[:, slices[name]], shown[name], rtol=0, atol=0)
    torch.testing.assert_close(obs[:, slices["hand"]], env.effector.cartesian(state.effector)[:, :2], rtol=0, atol=0)


def test_effort_and_jerk_score_the_excitation_the_muscles_take():
    """An action outside [min_activation, 1] costs what its clipped value costs: -7 rests the muscle and costs
    what 0 costs, not 49; 1.8e19 costs what 1 costs (a finite reward), as in every Gymnasium face."""
    env = mn_gym.make("ArmReach-v0", batch_size=2, seed=0, deterministic=True, weights={"jerk": 1.0})
    state, _ = env.reset()
    rewards = {}
    for a in (-7.0, 0.0, 1.0, 1.8e19):
        new, _, reward, *_, info = env.step(state, torch.full((2, env.action_size), a))
        rewards[a] = reward
        assert torch.isfinite(reward).all() and float(info["terms"]["effort"].max()) <= 1.0
        assert float(new.last_action.max()) <= 1.0
    assert torch.equal(rewards[-7.0], rewards[0.0])
    # the physics differs only by what the clip passes: 1 and 1.8e19 drive the muscles alike
    torch.testing.assert_close(rewards[1.8e19], rewards[1.0])


def test_states_are_checked_where_they_enter():
    """`step` and `rollout(state=...)` refuse a state of another env, of another batch size, or with NaN in it,
    naming the field, instead of NaN out or an internal torch error (`reset_where` checks the structure); a
    step that diverges from a finite state says so."""
    env = mn_gym.make("ArmReach-v0", batch_size=2, seed=0)
    state, _ = env.reset()
    action = torch.full((2, env.action_size), 0.1)
    rng = env.generator.get_state()
    env.step(state, action)  # a good state passes, and checking it draws nothing from the env's generator
    env.generator.set_state(rng)
    nan = state._replace(effector=state.effector._replace(qd=state.effector.qd * math.nan))
    cases = [
        (mn_gym.make("PointMassReach-v0", batch_size=2).reset()[0], r"activation must be a torch.float32 tensor"),
        (mn_gym.make("ArmCurlField-v0", batch_size=2).reset()[0], r"does not come from this env"),
        (mn_gym.make("ArmReach-v0", batch_size=3).reset()[0], r"shape \(2,"),
        (nan, r"NaN or inf in \.effector\.qd"),
        ("not a state", r"must be an EnvState"),
    ]
    for bad, message in cases:
        with pytest.raises((ValueError, TypeError), match=message):
            env.step(bad, action)
    with pytest.raises(ValueError, match=r"does not come from this env"):
        env.reset_where(cases[0][0], torch.tensor([True, False]))
    diverging = state._replace(task=state.task._replace(target=torch.full_like(state.task.target, 3e38)))
    with pytest.raises(ValueError, match=r"non-finite observation or reward from a finite state"):
        env.step(diverging, action)
    with pytest.raises(ValueError, match=r"NaN or inf"):
        rollout(env, lambda obs, h: (torch.full((2, 6), 0.1), None), state=nan, n_steps=2)
