# Issue 13: BPTT on every reaching-type id for 10 minutes (seed 0, 1 thread per run, two runs at a time on a
# 2-core CPU), with each env's tuned settings (mn_gym/hyperparams/bptt.yml). ArmReach-v0, ArmReach-v1 and
# PointMassReach-v* are in baselines/results/protocol/reference (same command). Writes the runs, trials.csv and
# table.md under baselines/results/bptt_all. Finished trials are reused: rerunning it trains only what is missing.
set -euo pipefail
mn-gym sweep --envs ArmCentreOut-v0 ArmCurlField-v0 ArmCurlFieldChannel-v0 ArmTrack-v0 ElbowReach-v0 \
    CompliantArmReach-v1 ArmDelayedReach-v0 ArmSequence-v0 --algos bptt --seeds 0 --minutes 10 \
    --out baselines/results/bptt_all --workers 2 --no-progress "$@"
# hidden-state PCA, tuning, fixed points and behaviour of the centre-out controller (each target 4 times)
mn-gym analyze baselines/results/bptt_all/ArmCentreOut-v0/bptt/seed0 --out baselines/results/centre_out_analysis \
    --episodes-per-target 4
# curl-field adaptation: the curl-field controller beside the centre-out one (trained without the field) as "before"
mn-gym analyze baselines/results/bptt_all/ArmCurlField-v0/bptt/seed0 --out baselines/results/curl_field/analyze \
    --before baselines/results/bptt_all/ArmCentreOut-v0/bptt/seed0 --episodes-per-target 4
