#!/usr/bin/env bash
# ModularGRU memories in the RL trainers, against the tuned recurrent agent: rsl-ppo on ArmReach-v0 with its tuned
# settings (an LSTM of 64 units) and with the LSTM swapped for ModularGRU areas (two areas of 32 units; then with
# a 1-step inter-area delay and Dale's law), 5 minutes each, one after the other, seed 0, 1 thread.
# Results: baselines/results/modular_rl/<name>/ (run folders), table.md (held-out success and distance).
set -euo pipefail
out=baselines/results/modular_rl
mkdir -p "$out"
run() {
    local name=$1; shift
    mn-gym train --algo rsl-ppo --env ArmReach-v0 --minutes 5 --seed 0 --threads 1 --no-progress \
        --out "$out/$name" "$@"
}
run lstm
run modular --set rnn_type=none --set "modular={'areas': [32, 32]}"
run modular_dale_delay --set rnn_type=none --set "modular={'areas': [32, 32], 'delay_steps': 1, 'dale': True}"
{
    echo "| rsl-ppo memory on ArmReach-v0 (5 min, seed 0) | held-out success | mean final distance |"
    echo "|---|---:|---:|"
    for name in lstm modular modular_dale_delay; do
        python -c "import json, sys; s = json.load(open('$out/$name/summary.json')); \
print(f\"| $name | {100 * s['final_eval_success_rate']:.1f} % | {100 * s['final_eval_distance_m']:.2f} cm |\")"
    done
} > "$out/table.md"
cat "$out/table.md"
