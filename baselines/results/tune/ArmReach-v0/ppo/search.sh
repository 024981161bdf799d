#!/usr/bin/env bash
# The SB3 PPO search on ArmReach-v0 as it ran: two processes sharing one study (each stops once 12 trials have
# finished, so 12-13 finish), then --write of the best. Run from the repository root.
set -euo pipefail
OUT=baselines/results/tune/ArmReach-v0/ppo
search() {
    python baselines/tune.py --algo ppo --env ArmReach-v0 --trials 12 --minutes 3 --threads 1 --out "$OUT" \
        --enqueue '{"n_envs": 256, "n_steps": 32, "batch_size": 2048, "n_epochs": 2, "learning_rate": 0.001,
                    "gamma": 0.99, "gae_lambda": 0.95, "ent_coef": 0.0, "net_width": 128, "log_std_init": -1.0}'
}
search > "$OUT/search1.log" &
sleep 15
search > "$OUT/search2.log"
wait
python baselines/tune.py --algo ppo --env ArmReach-v0 --trials 12 --minutes 3 --threads 1 --out "$OUT" --write
