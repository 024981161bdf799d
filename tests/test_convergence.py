"""Convergence order of the integrators in float64: rk4 must be order ~4, euler order ~1.

For a fixed horizon T under constant excitation from a mid-range joint state, the final joint state
(q, qd) at several time steps h is compared with a very fine rk4 reference (finest h / 16). The observed
order per halving of h is log2(err(h) / err(h / 2)).

The conditions are chosen so the right-hand side is smooth along the whole trajectory (checked below):
- no muscle (fibre) velocity changes sign: the Hill force-velocity curves have a kink in slope at v = 0,
  and a trajectory crossing it limits rk4 to a lower, irregular order (measured: arm26 from
  qd = [1.5, -2.5] rad/s, T = 0.1 s: orders 0.44, 2.3, 3.2 for h = 10, 5, 2.5, 1.25 ms);
- joints stay clear of their limits (clamps) and activation stays inside (min_activation, 1), with
  h < the smallest activation time constant so that no rk4 stage overshoots the excitation (the
  activation rate switches time constant at u = a), and excitation 0.25 < 0.3 (Kistemaker's b_rel kink).

Run with `-s` to see the measured errors and orders.
"""

from __future__ import annotations

import math

import pytest
import torch

import mn_gym

F64 = torch.float64
Q0 = [0.8, 1.2]  # rad, mid-range for arm26 (shoulder [0, 135] deg, elbow [0, 155] deg)
EXCITATION = 0.25

# name -> (horizon T (s), time steps for rk4, time steps for euler)
CASES = {
    "arm26": (0.08, [0.005, 0.0025, 0.00125], [0.0025, 0.00125, 0.000625]),
    "compliant_arm26": (0.006, [0.0003, 0.00015, 0.000075], [0.0002, 0.0001, 0.00005]),
}
ORDER_BOUNDS = {"rk4": (3.5, 4.6), "euler": (0.8, 1.3)}


def _simulate(name: str, integrator: str, h: float, horizon: float, track: bool = False):
    eff = mn_gym.make_effector(name, integrator=integrator, dtype=F64).replace(dt=h, check_inputs=False)
    n = round(horizon / h)
    assert math.isclose(n * h, horizon, rel_tol=1e-9), (h, horizon)
    state = eff.initial_state(torch.tensor([[*Q0, 0.0, 0.0]], dtype=F64))
    u = torch.full((1, eff.n_muscles), EXCITATION, dtype=F64)
    signs, qs, acts = [], [], []
    for _ in range(n):
        with torch.no_grad():
            state = eff.step(state, u)
        if track:
            fibre_velocity = eff.muscle_state(state)[:, 2]  # (1, M)
            signs.append(torch.sign(fibre_velocity[0]))
            qs.append(state.q[0])
            acts.append(state.activation[0])
    info = None
    if track:
        info = dict(signs=torch.stack(signs), q=torch.stack(qs), a=torch.stack(acts), eff=eff)
    return state.joint[0], info


@pytest.fixture(scope="module")
def references():
    """Fine rk4 reference per effector (finest rk4 step / 16), plus smoothness diagnostics along it."""
    out = {}
    for name, (horizon, hs_rk4, _) in CASES.items():
        h_ref = min(hs_rk4) / 16
        out[name] = _simulate(name, "rk4", h_ref, horizon, track=True)
    return out


@pytest.mark.parametrize("name", list(CASES))
def test_reference_trajectory_is_smooth(name, references):
    """Preconditions for the order measurement: no kink is crossed along the reference trajectory."""
    _, info = references[name]
    eff = info["eff"]
    signs = info["signs"]
    # Skip the very first steps where velocities start from exactly 0.
    s = signs[len(signs) // 20:]
    assert (s != 0).all(), "a fibre velocity sits at 0 (force-velocity kink)"
    assert (s == s[0]).all(), "a fibre velocity changes sign along the trajectory (force-velocity kink)"
    sk = eff.skeleton
    margin = 0.05
    assert (info["q"] > sk.pos_lower + margin).all() and (info["q"] < sk.pos_upper - margin).all()
    a = info["a"]
    assert (a > eff.muscle.min_activation).all() and (a < EXCITATION).all()


@pytest.mark.parametrize("integrator", ["rk4", "euler"])
@pytest.mark.parametrize("name", list(CASES))
def test_convergence_order(name, integrator, references):
    horizon, hs_rk4, hs_euler = CASES[name]
    hs = hs_rk4 if integrator == "rk4" else hs_euler
    ref, _ = references[name]
    errors = []
    for h in hs:
        final, _ = _simulate(name, integrator, h, horizon)
        errors.append(float((final - ref).norm()))
    orders = [math.log2(errors[i] / errors[i + 1]) for i in range(len(errors) - 1)]
    print(f"\n[convergence] {name} {integrator} T={horizon}s dt={hs} |err(q,qd)|={[f'{e:.3e}' for e in errors]} "
          f"orders={[f'{o:.3f}' for o in orders]}")
    lo, hi = ORDER_BOUNDS[integrator]
    assert all(e > 0 and math.isfinite(e) for e in errors), errors
    # The reference is far more accurate than the finest step tested (otherwise the orders flatten out).
    assert errors[-1] > 1e-12, errors
    for order in orders:
        assert lo <= order <= hi, f"{name}/{integrator}: observed orders {orders} outside [{lo}, {hi}]"
