"""Why BPTT fails on the compliant-tendon arm: gradient norms of 10-step BPTT windows on CompliantArmReach-v1.

The forward rollout stays finite, but within a few iterations the policy gradient through the compliant
Kistemaker muscle spikes by 6-16 orders of magnitude and then turns non-finite, whatever the integration step
(Euler at 0.25 ms and 0.1 ms, rk4 at 0.25 ms) and however short the BPTT window (10 policy steps here). The
likely cause, not yet isolated: an equilibrium compliant model solves the force-velocity curve for the fibre
velocity, and that inverse is singular as the active force goes to 0 (low activation, fibres off the
force-length plateau); Millard, Uchida, Seth & Delp 2013 (J Biomech Eng 135:021005) describe the singularity
and a damped model without it.

Reproduce (about 1 minute, 1 thread):
    python baselines/compliant_gradients.py > baselines/results/bptt_all/compliant_gradients.txt
"""

from __future__ import annotations

import math
import warnings

import torch

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


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore", mn_gym.core.AccuracyWarning)
    print("integrator  sub-steps  step (ms)  gradient norm per iteration (10-step windows, batch 128)")
    for integrator, n_substeps in (("euler", 40), ("euler", 100), ("rk4", 40)):
        norms = gradient_norms(integrator, n_substeps)
        print(f"{integrator:10s}  {n_substeps:9d}  {10 / n_substeps:9.2f}  " + " ".join(f"{g:.2g}" for g in norms))


if __name__ == "__main__":
    main()
