"""Why BPTT fails on the compliant-tendon arm: gradient norms of 10-step BPTT windows on CompliantArmReach-v1,
and the stiffness of the fibre-length equation that causes them.

The forward rollout stays finite, but within a few iterations the policy gradient through the compliant
Kistemaker muscle spikes by 6-16 orders of magnitude and then turns non-finite, whatever the integration step
(Euler at 0.25 ms and 0.1 ms, rk4 at 0.25 ms) and however short the BPTT window (10 policy steps here).

Cause: the fibre-length equation dl/dt = f(l) is stiff. An equilibrium compliant model solves the force-velocity
curve for the fibre velocity, and that inverse is steep at low activation (Millard, Uchida, Seth & Delp 2013,
J Biomech Eng 135:021005), so J = df/dl, the diagonal of the Jacobian (each muscle's rate depends on its own
fibre length), reaches -1e5 /s and beyond. An explicit step multiplies a fibre-length perturbation by
1 + h J per sub-step: wherever h J < -2 (-2.79 for rk4) that factor exceeds 1 in size, and through a few hundred
sub-steps the tangent, hence the gradient, grows without bound. The forward stays near the reference because
those states are ones where the clamps on the tendon and active forces bound the oscillation; the gradient has
no such bound. The second table measures h J along the untrained policy's rollouts (low excitations, as a
policy with a negative output bias starts).

Reproduce (about 2 minutes, 1 thread):
    python baselines/compliant_gradients.py > baselines/results/bptt_all/compliant_gradients.txt
"""

from __future__ import annotations

import math
import warnings

import torch
from torch.func import jvp

import mn_gym


def gradient_norms(integrator: str, n_substeps: int, iterations: int = 8, window: int = 10) -> list[float]:
    """Pre-clip gradient norms of `iterations` Adam steps (lr 1e-2, clip 1), each a `window`-step BPTT window
    from a fresh reset (batch 128, seed 0); a non-finite gradient is not applied."""
    torch.manual_seed(0)
    env = mn_gym.make("CompliantArmReach-v1", batch_size=128, seed=0, integrator=integrator, n_substeps=n_substeps)
    policy = mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=64)
    optimiser = torch.optim.Adam(policy.parameters(), lr=1e-2)
    norms = []
    for _ in range(iterations):
        state, obs = env.reset()
        ro = mn_gym.rollout(env, policy, n_steps=window, state=state, obs=obs)
        optimiser.zero_grad()
        (-ro.rewards.mean()).backward()
        norm = torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0).item()
        norms.append(norm)
        if math.isfinite(norm):
            optimiser.step()
    return norms


def fibre_stiffness(steps: int = 100, batch: int = 128) -> torch.Tensor:
    """J = d(fibre length rate)/d(fibre length) (1/s), (steps, batch, muscles), at the states of a rollout of
    CompliantArmReach-v1 under the untrained GRU policy the gradient runs start from (seed 0), by forward-mode
    differentiation of the effector's fibre-length rate with every other state variable held."""
    torch.manual_seed(0)
    env = mn_gym.make("CompliantArmReach-v1", batch_size=batch, seed=0)
    eff = env.effector
    policy = mn_gym.GRUPolicy(env.obs_size, env.action_size, n_hidden=64)
    state, obs = env.reset()
    hidden, out = None, []
    for _ in range(steps):
        s = state.effector

        def rate(l_m: torch.Tensor, s: mn_gym.core.EffectorState = s) -> torch.Tensor:
            # the continuous equation's fibre-length rate at this state (the path at the current joint angles)
            return eff.derivative(s.q, s.qd, s.activation, l_m, s.activation, (None, None))[0][3]

        out.append(jvp(rate, (s.fibre_length,), (torch.ones_like(s.fibre_length),))[1])
        with torch.no_grad():
            action, hidden = policy(obs, hidden)
            state, obs, *_ = env.step(state, action)
    return torch.stack(out)


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", mn_gym.core.AccuracyWarning)
    print("integrator  sub-steps  step (ms)  gradient norm per iteration (10-step windows, batch 128)")
    for integrator, n_substeps in (("euler", 40), ("euler", 100), ("rk4", 40)):
        norms = gradient_norms(integrator, n_substeps)
        print(f"{integrator:10s}  {n_substeps:9d}  {10 / n_substeps:9.2f}  " + " ".join(f"{g:.2g}" for g in norms))
    stiffness = fibre_stiffness()
    print(f"\nfibre stiffness J along 100 steps x 128 episodes x 6 muscles of the untrained policy: "
          f"min {stiffness.min():.3g} /s, median {stiffness.median():.3g} /s, max {stiffness.max():.3g} /s")
    print("step (ms)  min h J  muscle-states with h J < -2 (euler unstable)  with h J < -2.79 (rk4 unstable)")
    for h in (0.25e-3, 0.1e-3, 0.01e-3):
        hj = h * stiffness
        print(f"{1e3 * h:9.2f}  {hj.min():7.1f}  {(hj < -2).float().mean():44.3%}  {(hj < -2.79).float().mean():31.3%}")


if __name__ == "__main__":
    main()
