"""Speed benchmarks, with MotorNet side by side when it is installed (`mn-gym bench effector|bptt|faces`).

effector: effector steps/s at several batch sizes, and forward+backward through a rollout.
bptt: one BPTT iteration (GRU policy, point-mass reach).
faces: Gymnasium single-env and vector-env steps/s.
rl: RL training env steps/s including updates, rsl-rl PPO against SB3 PPO.
"""

BENCHMARKS = ("effector", "bptt", "faces", "rl")
