"""Time the checked functional step, `Env.step` (state structure, action, output finiteness), per call.

    PYTHONPATH=<tree> python baselines/bench_checked_step.py     # run it for two trees one after the other

ArmReach-v0, 1 torch thread, batch 1 and 1024, episodes restarted at their end; the minimum and median of 5
timed runs (2000 steps at batch 1, 300 at 1024), in microseconds per step.
"""

import time

import torch

import mn_gym


def steps_per_call(env: mn_gym.Env, n: int) -> list[float]:
    """5 timed runs of `n` checked steps each (after 200 untimed), microseconds per step, sorted."""
    state, _ = env.reset()
    action = torch.full((env.batch_size, env.action_size), 0.2)
    times = []
    for k in range(6):
        start = time.perf_counter()
        for _ in range(200 if k == 0 else n):
            state = env.step(state, action)[0] if int(state.t[0]) < env.max_steps - 1 else env.reset()[0]
        if k:
            times.append((time.perf_counter() - start) / n * 1e6)
    return sorted(times)


def main() -> None:
    torch.set_num_threads(1)
    for batch, n in ((1, 2000), (1024, 300)):
        times = steps_per_call(mn_gym.make("ArmReach-v0", batch_size=batch, seed=0), n)
        print(f"Env.step batch {batch}: {times[0]:.1f} us (min of 5), median {times[2]:.1f}")


if __name__ == "__main__":
    main()
