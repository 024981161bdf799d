#!/usr/bin/env bash
# The RL benchmark protocol (baselines/README.md, "Benchmark protocol"): every (env, algo) trained for the same
# wall-clock budget with its tuned settings (mn_gym/hyperparams), 5 seeds on the two reaching tasks (3 elsewhere
# with ENVS_OTHER set; ALGOS on the reaching tasks, ALGOS_OTHER elsewhere), two trials at a time on a local Ray (1 torch thread each); a 10-minute BPTT reference run
# per env for the normalised score; then `mn-gym report`: IQM with 95 % stratified-bootstrap intervals (rliable),
# the winner per env, and curves against env steps and wall-clock (curves_<env>.png).
# Finished trials are reused, so re-running resumes an interrupted protocol.
#   bash baselines/run_protocol.sh [OUT] [MINUTES]
set -euo pipefail
OUT=${1:-baselines/results/protocol}
MINUTES=${2:-2}
ALGOS=${ALGOS:-"rsl-ppo ppo bptt sac recurrent-ppo"}
ALGOS_OTHER=${ALGOS_OTHER:-"rsl-ppo ppo bptt"}
REACHING="PointMassReach-v0 ArmReach-v0"
mn-gym sweep --envs $REACHING --algos bptt --seeds 0 --minutes 10 --out "$OUT/reference" --workers 2
mn-gym sweep --envs $REACHING --algos $ALGOS --seeds 0 1 2 3 4 --minutes "$MINUTES" --out "$OUT/runs" --workers 2
if [ -n "${ENVS_OTHER:-}" ]; then
    mn-gym sweep --envs $ENVS_OTHER --algos bptt --seeds 0 --minutes 10 --out "$OUT/reference" --workers 2
    mn-gym sweep --envs $ENVS_OTHER --algos $ALGOS_OTHER --seeds 0 1 2 --minutes "$MINUTES" --out "$OUT/runs" --workers 2
fi
mn-gym report "$OUT/runs" --reference "$OUT/reference"
