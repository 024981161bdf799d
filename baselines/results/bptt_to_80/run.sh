# Issue 12: seconds of training until ArmReach-v0 BPTT first reaches 80 % held-out success (512 episodes,
# evaluated every 10 iterations), main at a190aff against this commit, one after the other on one machine
# (2026-12-02, 2-core CPU, 1 thread). a190aff in a worktree (`git worktree add /tmp/old a190aff`, with
# `ln -s ../envs /tmp/old/mn_gym/catalogue_data`), run from a folder outside both checkouts.
run() { v=$1; P=$2; seed=$3; shift 3
  PYTHONPATH=$P mn-gym train --algo bptt --env ArmReach-v0 --minutes 2 --seed $seed --threads 1 --no-progress \
    --eval-episodes 512 --set eval_every=10 "$@" --out runs/bptt_to_80/$v/seed$seed; }
for seed in 0 1; do
  run old /tmp/old $seed                                        # a190aff: its defaults (compiled effector)
  run new "" $seed                                              # this commit's defaults (eager fused step)
  run b64 "" $seed --set batch_size=64 --set lr=0.008           # the 50-s search's best
  run step "" $seed --set compile_step=True                     # policy+env step compiled, warm cache
done
TORCHINDUCTOR_CACHE_DIR=$(mktemp -d) run stepcold "" 0 --set compile_step=True   # the same, cold cache
# seconds to 80 %: the first metrics.csv row with eval_success_rate >= 0.8, its train_time_s
