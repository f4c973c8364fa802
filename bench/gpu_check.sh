#!/usr/bin/env bash
# recbole-bet on one GPU, in one run of at most 8 minutes (issue 16, item 7), on the full Gowalla:
#   1. training epochs of RecBole's LightGCN against ours (bench/epoch_time.py: the same weights and batches,
#      RecBole's own model and Trainer beside ours, full table and ES at 0.9);
#   2. full-ranking validation of the same (bench/evaluation.py), RecBole at 400 users a batch, as our
#      paper-gpu profile (eval_batch_size 16777216), instead of the 8 a batch of the CPU table;
#   3. a short BET search: the fast profile cut to T=5 iterations and at most 10 epochs a training, sparsity 0.9.
# Each step has its own time limit; what one step wrote stays when a later one fails.
#
#   OUT=bench/results/gpu-h200 bash bench/gpu_check.sh
#
# OUT gets the two tables, the run's result JSON, machine.txt and log.txt. DATASET=ml-100k tries the script itself
# in a few minutes on a CPU. On a machine without RecBole or its pins (this project's device machine: CPython 3.12,
# numpy 2, no package index), run `bash bench/gpu_pack.sh` first where pip works: this script unpacks .gpu/ when it
# is there. The results committed from it: bench/results/gpu-h200/.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results/gpu}
DATA=${DATA:-../shared/datasets}
DATASET=${DATASET:-gowalla}
PYTHON=${PYTHON:-python3}
mkdir -p "$OUT"
exec > >(tee -a "$OUT/log.txt") 2>&1
export PYTHONUNBUFFERED=1
if [ -f .gpu/site.tar.xz ]; then
    mkdir -p /tmp/recbole-site && tar -C /tmp/recbole-site -xJf .gpu/site.tar.xz || exit 1
    export PYTHONPATH=/tmp/recbole-site${PYTHONPATH:+:$PYTHONPATH}
fi
if [ -f .gpu/gowalla.inter.xz ]; then
    DATA=/tmp/recbole-data
    mkdir -p "$DATA/gowalla" && xz -dc .gpu/gowalla.inter.xz >"$DATA/gowalla/gowalla.inter" || exit 1
fi
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
{
    date -u
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
    "$PYTHON" -c "import sys, torch, numpy, scipy, pandas, recbole, recbole_bet.quick_start as q; print(sys.version.split()[0],
'torch', torch.__version__, 'numpy', numpy.__version__, 'scipy', scipy.__version__, 'pandas', pandas.__version__,
'recbole', recbole.__version__); print(q.machine())"
} >"$OUT/machine.txt" 2>&1 || { cat "$OUT/machine.txt"; exit 1; }
cat "$OUT/machine.txt"

status=0
step() {  # step SECONDS NAME COMMAND...: COMMAND under a time limit; its exit status and time in the log
    local seconds=$1 name=$2 started=$SECONDS rc
    shift 2
    echo "== $name (limit ${seconds} s)"
    timeout -k 10 "$seconds" "$@"
    rc=$?
    echo "== $name: exit $rc after $((SECONDS - started)) s"
    [ "$rc" -eq 0 ] || status=1
}
step 130 epoch_time "$PYTHON" -m bench.epoch_time --dataset="$DATASET" --data_path="$DATA" --models=LightGCN --epochs=3 \
    --out="$OUT"
step 100 evaluation "$PYTHON" -m bench.evaluation --dataset="$DATASET" --data_path="$DATA" --repeats=3 --recbole_users=400 \
    --ours=1048576,16777216 --out="$OUT"
step 190 bet "$PYTHON" run_recbole_bet.py --model=LightGCN --dataset="$DATASET" --data_path="$DATA" --sparsity=0.9 \
    --bet_profile=fast --bet_iterations=5 --epochs=10 --eval_batch_size=16777216 --show_progress=False \
    --checkpoint_dir=/tmp/recbole-bet-saved --result_file="$OUT/bet-$DATASET-LightGCN-0.9.json"
exit "$status"
