#!/usr/bin/env bash
# The baselines table (baselines/README.md): every registered id x {BPTT, PPO, SAC, RecurrentPPO}, 3 minutes of
# training each, 3 seeds on PointMassReach-v0 and ArmReach-v0 and 1 seed elsewhere, two trials at a time on a
# local Ray (1 torch thread each). Finished trials are reused, so re-running resumes an interrupted sweep.
set -euo pipefail
OUT=${1:-baselines/results/sweep}
ALGOS="bptt ppo sac recurrent-ppo"
mn-gym sweep --envs PointMassReach-v0 ArmReach-v0 --algos $ALGOS --seeds 0 1 2 --minutes 3 --out "$OUT" --workers 2
mn-gym sweep --envs ArmCentreOut-v0 ArmCurlField-v0 ArmPosture-v0 ArmTrack-v0 CompliantArmReach-v0 --algos $ALGOS \
    --seeds 0 --minutes 3 --out "$OUT" --workers 2
