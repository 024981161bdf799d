#!/usr/bin/env bash
# Issue 10's RL targets with the shipped settings (mn_gym/hyperparams), two runs at a time with 1 torch thread
# each (baselines/README.md, "Massively parallel PPO" and "Long PPO run"): rsl-ppo for 10 minutes on
# ArmReach-v0, PointMassReach-v0 and ArmReach-v1, one after the other, beside SB3 PPO for 30 minutes on
# ArmReach-v0. Finished runs are replaced (--overwrite) only once their rerun ends.
#   bash baselines/run_rl_targets.sh [OUT]
set -euo pipefail
OUT=${1:-baselines/results}
mkdir -p "$OUT/rsl_ppo_10min" "$OUT/ppo_long"
(
    for env in ArmReach-v0 PointMassReach-v0 ArmReach-v1; do
        mn-gym train --algo rsl-ppo --env "$env" --minutes 10 --threads 1 --overwrite \
            --out "$OUT/rsl_ppo_10min/$env" > "$OUT/rsl_ppo_10min/$env.log" 2>&1
    done
) &
mn-gym train --algo ppo --env ArmReach-v0 --minutes 30 --threads 1 --overwrite \
    --out "$OUT/ppo_long/ArmReach-v0" > "$OUT/ppo_long/ArmReach-v0.log" 2>&1
wait
