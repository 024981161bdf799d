"""Effector construction, configuration round trips, dtype/device handling and bad-input errors."""

import json
import math

import pytest
import torch

import mn_gym
from mn_gym.compilation import compile_effector
from mn_gym.core import Effector, EffectorBuilder, KistemakerMuscle, TwoLinkArm


def _run(eff, steps=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    state = eff.random_initial_state(4, g)
    u = torch.rand(steps, 4, eff.n_muscles, generator=g, dtype=eff.dtype)
    for k in range(steps):
        state = eff.step(state, u[k])
    return state


@pytest.mark.parametrize("name", sorted(mn_gym.EFFECTORS))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_prebuilt_effectors_step(name, dtype):
    eff = mn_gym.make_effector(name, dtype=dtype)
    state = _run(eff)
    assert state.q.dtype == dtype and state.q.shape == (4, eff.dof)
    assert torch.isfinite(eff.muscle_state(state)).all()
    assert ((state.q >= eff.skeleton.pos_lower) & (state.q <= eff.skeleton.pos_upper)).all()
    assert (state.activation >= float(eff.muscle.min_activation)).all() and (state.activation <= 1).all()


@pytest.mark.parametrize("name", sorted(mn_gym.EFFECTORS))
def test_config_round_trip_is_lossless(name, tmp_path):
    eff = mn_gym.make_effector(name, integrator="rk4", n_substeps=2)
    eff.save(tmp_path / "eff.json")
    again = Effector.load(tmp_path / "eff.json")
    assert again.config() == eff.config()
    for comp in ("skeleton", "muscle", "geometry"):
        for key, t in getattr(eff, comp).tensors().items():
            assert torch.equal(t, getattr(again, comp).tensors()[key]), (comp, key)
    a, b = _run(eff), _run(again)
    assert torch.equal(a.q, b.q) and torch.equal(a.activation, b.activation)


@pytest.mark.parametrize("model", ["kistemaker", "thelen", "mujoco"])
def test_arm26_muscle_models_differ(model):
    eff = mn_gym.make_effector("arm26", muscle=model)
    assert eff.muscle.kind == model
    assert eff.muscle.state_names[-1] == "force"


def test_user_parameters_are_honoured():
    forces = [100.0, 200.0, 300.0, 400.0, 500.0, 600.0]
    eff = mn_gym.make_effector("arm26", muscle_params={"max_isometric_force": forces, "tendon_slack_length": 0.05})
    assert eff.muscle.max_isometric_force.tolist() == forces
    assert torch.allclose(eff.muscle.tendon_slack_length, torch.full((6,), 0.05))
    thelen = mn_gym.make_effector("arm26", muscle="thelen", muscle_params={"max_velocity": [1.0] * 6})
    assert thelen.muscle.max_velocity.tolist() == [1.0] * 6


def test_builder_custom_effector_matches_prebuilt_pointmass():
    built = mn_gym.make_effector("pointmass24")
    b = EffectorBuilder(mn_gym.core.PointMass(), muscle="linear")
    for label, (x, y) in (("UpperRight", (2, 2)), ("UpperLeft", (-2, 2)), ("LowerRight", (2, -2)),
                          ("LowerLeft", (-2, -2))):
        b.add_muscle(label, [(0, (x, y)), (1, (0, 0))], max_isometric_force=500.0)
    custom = b.build(name="pointmass24")
    assert torch.equal(_run(custom).q, _run(built).q)


def test_builder_arm_with_via_points_runs():
    b = EffectorBuilder(TwoLinkArm.from_segments(), muscle="thelen")
    b.add_muscle("biceps", [(0, (0.0, 0.05)), (1, (0.1, 0.02)), (2, (0.03, 0.0))], max_isometric_force=414,
                 tendon_slack_length=0.2, optimal_fibre_length=0.14)
    b.add_muscle("triceps", [(1, (0.05, -0.02)), (2, (-0.03, 0.0))], max_isometric_force=600,
                 tendon_slack_length=0.1, optimal_fibre_length=0.12)
    eff = b.build(dt=0.005, tau_activation=0.02)
    assert float(eff.muscle.tau_activation) == pytest.approx(0.02)
    assert torch.isfinite(_run(eff).q).all()


def test_gravity_pulls_a_passive_vertical_arm_down():
    eff = mn_gym.make_effector("arm26", g=9.81)
    state = eff.initial_state(torch.tensor([[1.0, 1.0]]))
    for _ in range(10):
        state = eff.step(state, torch.zeros(1, 6))
    assert state.qd[0, 0] < -0.1  # the shoulder falls (y up, angles counter-clockwise)
    flat = mn_gym.make_effector("arm26")
    s2 = flat.initial_state(torch.tensor([[1.0, 1.0]]))
    for _ in range(10):
        s2 = flat.step(s2, torch.zeros(1, 6))
    assert abs(float(s2.qd[0, 0])) < abs(float(state.qd[0, 0]))


def test_excitations_are_clipped():
    eff = mn_gym.make_effector("arm26")
    s = eff.initial_state(torch.tensor([[0.8, 1.2]]))
    high = eff.step(s, torch.full((1, 6), 5.0))
    one = eff.step(s, torch.ones(1, 6))
    low = eff.step(s, torch.full((1, 6), -3.0))
    zero = eff.step(s, torch.zeros(1, 6))
    assert torch.equal(high.activation, one.activation) and torch.equal(low.activation, zero.activation)


def test_dtype_conversion_and_device_check():
    eff = mn_gym.make_effector("arm26").to(dtype=torch.float64)
    assert eff.dtype == torch.float64 and eff.muscle.max_isometric_force.dtype == torch.float64
    assert torch.isfinite(_run(eff).q).all()


# ------------------------------------------------------------------------------------------ bad input
@pytest.fixture
def arm():
    eff = mn_gym.make_effector("arm26")
    return eff, eff.initial_state(torch.tensor([[0.8, 1.2], [0.5, 0.5]]))


def test_wrong_excitation_shape(arm):
    eff, s = arm
    with pytest.raises(ValueError, match=r"excitation must have shape \(2, 6\)"):
        eff.step(s, torch.zeros(2, 5))


def test_wrong_excitation_dtype(arm):
    eff, s = arm
    with pytest.raises(TypeError, match=r"dtype torch.float64"):
        eff.step(s, torch.zeros(2, 6, dtype=torch.float64))


def test_excitation_not_a_tensor(arm):
    eff, s = arm
    with pytest.raises(TypeError, match=r"torch.Tensor"):
        eff.step(s, [[0.0] * 6] * 2)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_nonfinite_excitation(arm, bad):
    eff, s = arm
    u = torch.zeros(2, 6)
    u[1, 3] = bad
    with pytest.raises(ValueError, match=r"excitation contains NaN or inf"):
        eff.step(s, u)


def test_bad_loads(arm):
    eff, s = arm
    with pytest.raises(ValueError, match=r"endpoint_load must have shape"):
        eff.step(s, torch.zeros(2, 6), endpoint_load=torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"joint_load contains NaN"):
        eff.step(s, torch.zeros(2, 6), joint_load=torch.tensor([[0.0, math.nan], [0.0, 0.0]]))


def test_device_mismatch_is_named(arm):
    eff, s = arm
    with pytest.raises(ValueError, match=r"is on meta"):
        eff.step(s, torch.zeros(2, 6, device="meta"))


def test_initial_state_outside_limits(arm):
    eff, _ = arm
    with pytest.raises(ValueError, match=r"outside the joint limits .* batch rows \[1\]"):
        eff.initial_state(torch.tensor([[0.5, 0.5], [3.0, 0.5]]))
    with pytest.raises(ValueError, match=r"joint_state must have shape"):
        eff.initial_state(torch.zeros(2, 3))
    with pytest.raises(ValueError, match=r"NaN"):
        eff.initial_state(torch.tensor([[math.nan, 0.5]]))


def test_unknown_names_and_parameters():
    with pytest.raises(ValueError, match=r"unknown effector 'arm99'; known:"):
        mn_gym.make_effector("arm99")
    with pytest.raises(ValueError, match=r"rigid-tendon muscle model .* got 'hill'"):
        mn_gym.make_effector("arm26", muscle="hill")
    with pytest.raises(TypeError, match=r"unknown argument\(s\) \['dtt'\]"):
        mn_gym.make_effector("arm26", dtt=0.01)
    with pytest.raises(ValueError, match=r"unknown integrator 'rk45'"):
        mn_gym.make_effector("arm26", integrator="rk45")
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) \['max_force'\]"):
        mn_gym.make_effector("arm26", muscle_params={"max_force": 1.0})


@pytest.mark.parametrize(("build", "message"), [
    (lambda: mn_gym.make_effector("arm26", muscle="thelen", muscle_params={"pe_normaliser": 0.0}),
     r"ThelenMuscle: parameter 'pe_normaliser' must be > 0"),
    (lambda: mn_gym.make_effector("arm26", muscle="mujoco", muscle_params={"lmin": 1.7}), r"lmin must be < 1"),
    (lambda: mn_gym.make_effector("arm26", muscle="mujoco", muscle_params={"lmax": 0.9}),
     r"parameter 'lmax' must be > 1"),
    (lambda: mn_gym.make_effector("arm26", muscle_params={"tendon_slack_length": 0.0}),
     r"parameter 'tendon_slack_length' must be >= 0.0001"),
    (lambda: mn_gym.make_effector("arm26", muscle_params={"min_activation": 1.0}), r"min_activation must be < 1"),
    (lambda: mn_gym.make_effector("arm26", muscle_params={"min_activation": 0.0}),
     r"KistemakerMuscle: parameter 'min_activation' must be > 0"),
    (lambda: mn_gym.make_effector("arm26", muscle_params={"optimal_fibre_length": 1e-45}),
     r"parameter 'optimal_fibre_length' must be >= 0.0001"),
    (lambda: mn_gym.make_effector("arm26", muscle_params={"tau_deactivation": -0.01}),
     r"parameter 'tau_deactivation' must be > 0"),
    (lambda: TwoLinkArm.from_segments(viscosity=-1.0), r"parameter 'viscosity' must be >= 0"),
    (lambda: mn_gym.make_effector("pointmass24", mass=0.0), r"parameter 'mass' must be > 0"),
])
def test_parameter_domains_are_checked_at_construction(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_domains_hold_for_replace_and_json_configs():
    """`replace` and `from_config` (a JSON file's effector) check the same domains and relations: a mass matrix
    that is not positive definite, or a non-positive fibre length, never reaches the step."""
    arm = mn_gym.make_effector("arm26")
    with pytest.raises(ValueError, match=r"'optimal_fibre_length' must be >= 0.0001"):
        arm.muscle.replace(optimal_fibre_length=torch.zeros(6))
    cfg = json.loads(json.dumps(arm.config()))
    cfg["skeleton"]["params"]["inertia_const"] = [[0.01, 0.5], [0.5, 0.01]]
    with pytest.raises(ValueError, match=r"must be positive definite at every elbow angle"):
        Effector.from_config(cfg)
    with pytest.raises(ValueError, match=r"pos_lower < pos_upper"):
        arm.skeleton.replace(pos_lower=torch.tensor([3.0, 3.0]))


def test_missing_and_invalid_parameters():
    with pytest.raises(TypeError, match=r"missing required parameter"):
        KistemakerMuscle(2, max_isometric_force=[1.0, 2.0])
    with pytest.raises(ValueError, match=r"'max_isometric_force' must have shape \(6,\)"):
        mn_gym.make_effector("arm26", muscle_params={"max_isometric_force": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"optimal_fibre_length.* must be >= 0.0001"):
        mn_gym.make_effector("arm26", muscle_params={"optimal_fibre_length": -0.1})
    with pytest.raises(ValueError, match=r"must be finite"):
        mn_gym.make_effector("pointmass24", mass=math.nan)
    with pytest.raises(ValueError, match=r"dt must be a finite number > 0"):
        mn_gym.make_effector("arm26", dt=0.0)


def test_builder_errors():
    b = EffectorBuilder(TwoLinkArm.from_segments(), muscle="thelen")
    with pytest.raises(ValueError, match=r"body must be an int in 0..2"):
        b.add_muscle("m", [(0, (0, 0)), (3, (0, 0))], max_isometric_force=1)
    with pytest.raises(ValueError, match=r"at least 2 via points"):
        b.add_muscle("m", [(0, (0, 0))])
    with pytest.raises(ValueError, match=r"add at least one muscle"):
        b.build()


def test_compiled_effector_matches_eager_and_keeps_checks():
    """The optional torch.compile path (the only compile in the suite) gives the eager physics."""
    eff = mn_gym.make_effector("arm26", n_substeps=2)  # sub-steps: one is compiled, called n_substeps times
    fast = compile_effector(eff)
    assert fast.n_substeps == 2 and fast.dt == eff.dt
    g = torch.Generator().manual_seed(3)
    a = b = eff.random_initial_state(4, g)
    for _ in range(5):
        u = torch.rand(4, 6, generator=g)
        a, b = eff.step(a, u), fast.step(b, u)
    assert torch.allclose(a.q, b.q, atol=1e-6) and torch.allclose(a.activation, b.activation, atol=1e-6)
    with pytest.raises(ValueError, match="NaN"):
        fast.step(b, torch.full((4, 6), math.nan))
