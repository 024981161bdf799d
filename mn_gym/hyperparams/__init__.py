"""Tuned settings per env id, one YAML file per algo in rl-zoo3's format (read by `mn_gym.train.hyperparams`)."""
