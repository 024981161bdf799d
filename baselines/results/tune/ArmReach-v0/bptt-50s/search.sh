# BPTT on ArmReach-v0, 50-second budget (issue 12: 80 % held-out success sooner), searched 2026-12-02.
# 12 trials x 0.83 min, the shipped settings enqueued as trial 0; objective: final held-out mean distance.
python baselines/tune.py --algo bptt --env ArmReach-v0 --trials 12 --minutes 0.8333 \
  --out runs/tune/ArmReach-v0/bptt-50s \
  --enqueue '{"lr": 0.01, "batch_size": 128, "n_hidden": 64}'
# then 6 more (18 in all), from trial 12 with the new default compile_effector=False (eager fused step), two of
# them enqueued around the best so far (batch 64 won the first 12: more iterations in the budget)
python baselines/tune.py --algo bptt --env ArmReach-v0 --trials 18 --minutes 0.8333 \
  --out runs/tune/ArmReach-v0/bptt-50s \
  --enqueue '{"lr": 0.01, "batch_size": 32, "n_hidden": 64}' --enqueue '{"lr": 0.01, "batch_size": 64, "n_hidden": 64}'
