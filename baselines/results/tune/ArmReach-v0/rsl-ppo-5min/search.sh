#!/usr/bin/env bash
# The second rsl-ppo search on ArmReach-v0 as it ran: two processes sharing one study (stopped after 18 finished
# trials), then --write of the best. Run from the repository root.
set -euo pipefail
OUT=baselines/results/tune/ArmReach-v0/rsl-ppo-5min
FIRST_BEST='"n_steps": 32, "learning_rate": 0.0008, "desired_kl": 0.007, "gamma": 0.99, "lam": 0.95,
  "entropy_coef": 0.0004, "hidden_width": 64, "activation": "relu", "init_std": 0.6, "action_bias": 0.0'
search() {
    python baselines/tune.py --algo rsl-ppo --env ArmReach-v0 --trials 18 --minutes 5 --threads 1 --out "$OUT" \
        --enqueue "{\"n_envs\": 2048, \"num_learning_epochs\": 1, \"num_mini_batches\": 4, $FIRST_BEST}" \
        --enqueue "{\"n_envs\": 4096, \"num_learning_epochs\": 2, \"num_mini_batches\": 4, $FIRST_BEST}"
}
search > "$OUT/search1.log" &
sleep 20
search > "$OUT/search2.log"
wait
python baselines/tune.py --algo rsl-ppo --env ArmReach-v0 --trials 18 --minutes 5 --threads 1 --out "$OUT" --write
