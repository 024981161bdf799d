#!/usr/bin/env bash
# The third rsl-ppo search on ArmReach-v0 as it ran (recurrent layers; 15 finished trials, the last one started
# before the other process reached 14), then --write of the best. Run from the repository root. The two
# enqueued trials, 1 and 2 in trials.log, are the dataclass defaults with a 64- and a 128-unit GRU.
set -euo pipefail
OUT=baselines/results/tune/ArmReach-v0/rsl-ppo-gru bash baselines/run_search.sh rsl-ppo ArmReach-v0 14 5 \
    --enqueue '{"n_envs": 512, "n_steps": 64, "num_learning_epochs": 1, "num_mini_batches": 4, "learning_rate": 0.0023, "schedule": "adaptive", "desired_kl": 0.006, "gamma": 0.995, "lam": 0.95, "clip_param": 0.2, "entropy_coef": 0.0014, "value_loss_coef": 1.0, "use_clipped_value_loss": false, "max_grad_norm": 1.0, "activation": "relu", "rnn_type": "gru", "rnn_hidden_dim": 64, "init_std": 0.22, "action_bias": -0.5, "hidden_width": 128}' \
    --enqueue '{"n_envs": 512, "n_steps": 64, "num_learning_epochs": 1, "num_mini_batches": 4, "learning_rate": 0.0023, "schedule": "adaptive", "desired_kl": 0.006, "gamma": 0.995, "lam": 0.95, "clip_param": 0.2, "entropy_coef": 0.0014, "value_loss_coef": 1.0, "use_clipped_value_loss": false, "max_grad_norm": 1.0, "activation": "relu", "rnn_type": "gru", "rnn_hidden_dim": 128, "init_std": 0.22, "action_bias": -0.5, "hidden_width": 128}'
