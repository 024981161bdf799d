#!/usr/bin/env bash
# One Optuna search as the committed ones ran: two processes sharing one study (each stops once TRIALS trials
# have finished between them), then --write of the best into mn_gym/hyperparams/<algo>.yml.
# Usage (from the repository root): bash baselines/run_search.sh ALGO ENV TRIALS MINUTES [tune.py options...]
#   bash baselines/run_search.sh sac ArmReach-v0 10 3
# Trial runs, the study (study.db) and the logs go to baselines/results/tune/<env>/<algo>; set OUT to choose
# another folder.
set -euo pipefail
ALGO=$1 ENV=$2 TRIALS=$3 MINUTES=$4
shift 4
OUT=${OUT:-baselines/results/tune/$ENV/$ALGO}
mkdir -p "$OUT"
search() {
    python baselines/tune.py --algo "$ALGO" --env "$ENV" --trials "$TRIALS" --minutes "$MINUTES" --threads 1 \
        --out "$OUT" "$@"
}
search "$@" > "$OUT/search1.log" &
sleep 15  # the first process creates the study and enqueues the defaults
search "$@" > "$OUT/search2.log"
wait
search --write | tee "$OUT/best.log"
grep -h '^trial ' "$OUT"/search[12].log | sort -k2 -n > "$OUT/trials.log"  # one line per trial, in order
