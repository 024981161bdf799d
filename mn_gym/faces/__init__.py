"""The faces over one functional env, side by side; none imports another.

| module | face |
|---|---|
| `rollout.py` | the differentiable rollout: batch-first torch, gradients through the episode (BPTT) |
| `gym.py` | `MnGymEnv`, a `gymnasium.Env` (numpy float32, one episode; `compile=True` for the AOT step) |
| `vector.py` | `MnGymVectorEnv`, a `gymnasium.vector.VectorEnv` (one batched env; CPU or CUDA; numpy or torch) |
| `sb3.py` | `MnGymVecEnv`, a stable-baselines3 `VecEnv` (same-step reset, `terminal_observation`) |
| `common.py` | what they share: the env behind a face, spaces, the action map, batched lanes, packed outputs |
"""
