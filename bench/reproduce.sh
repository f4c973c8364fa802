#!/usr/bin/env bash
# Every committed sweep table and plot, from scratch: bash bench/reproduce.sh
#
# Each sweep is a set of ray tasks (one CPU each). A finished run is skipped, so this script
# can be interrupted and started again without losing work. BET runs here use the CPU profile
# "fast" (T=20, h=2, top-2 warm-started; properties/method/bet/fast.yaml); drop
# --keys="--bet_profile=fast" for the paper's schedule (about 5x the CPU time).
# PEP, OptEmbed, magnitude pruning and the power rule run with their defaults (properties/method/*.yaml);
# ESAPN and CIESS with their CPU profiles "fast".
# Wall time on the 2-core machine of the README: about 5 hours for full/es/mr/bet, and for the
# other four methods (measured 2026-12-03, one run at a time per core, two cores):
#   ml-100k, LightGCN, 3 sparsities x 3 seeds x 4 methods = 36 runs, about 2 min each: ~1.2 h of one core;
#   gowalla-s, the same 36 runs, about 5-7 min each: ~3.5 h of one core.
set -uo pipefail  # a failed run (recorded in its *.error.json) does not stop the later sweeps
status=0
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python}
DATA=${DATA:-../shared/datasets}
# A method's key reaches that method's runs only (bench/sweep.py): the CPU profiles of BET, ESAPN and CIESS.
FAST=(--keys="--bet_profile=fast --esapn_profile=fast --ciess_profile=fast" --data_path="$DATA")

# ml-100k (bundled with RecBole): LightGCN over three seeds, with RecBole's own models as reference rows
"$PYTHON" -m bench.sweep --dataset=ml-100k --models=LightGCN --methods=full,es,mr,bet,pep,optembed,magprune,mde,esapn,ciess \
    --sparsities=0.8,0.9,0.95 --seeds=0,1,2 --baselines=BPR,Pop,LightGCN "${FAST[@]}" || status=1
# gowalla-s: LightGCN, three seeds
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=full,es,mr,bet,pep,optembed,magprune,mde,esapn,ciess --sparsities=0.8,0.9,0.95 \
    --seeds=0,1,2 --baselines=BPR,Pop,LightGCN "${FAST[@]}" || status=1
# ml-100k: NeuMF and NGCF, three seeds
"$PYTHON" -m bench.sweep --dataset=ml-100k --models=NeuMF,NGCF --methods=full,es,mr,bet --sparsities=0.8,0.9,0.95 \
    --seeds=0,1,2 --baselines=NeuMF,NGCF "${FAST[@]}" || status=1
# yelp2018-s: LightGCN, one seed
"$PYTHON" -m bench.sweep --dataset=yelp2018-s --models=LightGCN --methods=full,es,mr,bet --sparsities=0.8,0.9,0.95 \
    --seeds=0 --baselines=BPR,Pop,LightGCN "${FAST[@]}" || status=1

# Ablation: BET's fast search with its retraining from scratch, as ES and MR train (gowalla-s, 0.95)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.95 --seeds=0 \
    --keys="--bet_profile=fast --bet_retrain_from=scratch" --data_path="$DATA" --out=bench/results/ablation-retrain-scratch || status=1
"$PYTHON" -m bench.table --results=bench/results/ablation-retrain-scratch --out=bench/results/ablation-retrain-scratch || status=1

"$PYTHON" -m bench.table --results=bench/results/sweep --out=bench/results || status=1
"$PYTHON" -m bench.plots --results=bench/results/sweep --out=bench/results --data_path="$DATA" || status=1

# The paper's schedule (T=50, h=10, top-5 from scratch), one seed: ml-100k, LightGCN, sparsity 0.9
"$PYTHON" -m bench.sweep --dataset=ml-100k --models=LightGCN --methods=full,es,mr,bet --sparsities=0.9 --seeds=2020 \
    --out=bench/results/paper-schedule/runs --data_path="$DATA" || status=1
"$PYTHON" -m bench.table --results=bench/results/paper-schedule/runs --out=bench/results/paper-schedule || status=1
"$PYTHON" -m bench.plots --results=bench/results/paper-schedule/runs --out=bench/results/paper-schedule --data_path="$DATA" || status=1
exit "$status"
