#!/usr/bin/env bash
# ModularGRU memories in the RL trainers, against the tuned recurrent agent: rsl-ppo on ArmReach-v0 with its tuned
# settings (an LSTM of 64 units), with a GRU of 64 units in its place (a control: the settings were tuned for the
# LSTM), and with ModularGRU areas (two areas of 32 units; then with a 1-step inter-area delay and Dale's law),
# 5 minutes each, one after the other, seed 0, 1 thread.
# Usage: bash baselines/run_modular_rl.sh [NAME ...]   (default: all four; the table lists every run present)
# Results: baselines/results/modular_rl/<name>/ (run folders), table.md (held-out success and distance).
set -euo pipefail
out=baselines/results/modular_rl
mkdir -p "$out"
declare -A memory=(
    [lstm]=""
    [gru]="--set rnn_type=gru"
    [modular]="--set rnn_type=none --set modular={'areas':[32,32]}"
    [modular_dale_delay]="--set rnn_type=none --set modular={'areas':[32,32],'delay_steps':1,'dale':True}"
)
names=("$@")
[ ${#names[@]} -eq 0 ] && names=(lstm gru modular modular_dale_delay)
for name in "${names[@]}"; do
    # shellcheck disable=SC2086  # the settings split into words on purpose
    mn-gym train --algo rsl-ppo --env ArmReach-v0 --minutes 5 --seed 0 --threads 1 --no-progress \
        --out "$out/$name" ${memory[$name]}
done
{
    echo "| rsl-ppo memory on ArmReach-v0 (5 min, seed 0) | held-out success | mean final distance | env steps |"
    echo "|---|---:|---:|---:|"
    for name in lstm gru modular modular_dale_delay; do
        [ -f "$out/$name/summary.json" ] || continue
        python -c "import json; s = json.load(open('$out/$name/summary.json')); \
print(f\"| $name | {100 * s['final_eval_success_rate']:.1f} % | {100 * s['final_eval_distance_m']:.2f} cm | \
{s['env_steps'] / 1e6:.2f} M |\")"
    done
} > "$out/table.md"
cat "$out/table.md"
