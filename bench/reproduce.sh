#!/usr/bin/env bash
# Every committed sweep table and plot, from scratch: bash bench/reproduce.sh
#
# Each sweep is a set of ray tasks (one CPU each). A finished run is skipped, so this script
# can be interrupted and started again without losing work. BET runs here use the CPU profile
# "fast" (T=20, h=2, top-2 warm-started; properties/method/bet/fast.yaml); drop
# --keys="--bet_profile=fast" for the paper's schedule (about 5x the CPU time).
# PEP, OptEmbed, magnitude pruning and the power rule run with their defaults (properties/method/*.yaml);
# ESAPN and CIESS with their CPU profiles "fast".
# CPU plan (the 2-core machine of docs/results.md; minutes per run measured from the committed results' "seconds",
# one run per core, two cores busy; a run of several budgets shares its budget-free phases and costs less):
#
#   per run, LightGCN   full  ES   MR   BET(fast)  PEP   OptEmbed  magprune  power rule  ESAPN(fast)  CIESS(fast)
#   ml-100k             0.5   0.6  0.6  1.7        2.4   3.1       1.7       2.1         0.9          1.2
#   gowalla-s           2.5   1.8  2.0  8.3        10.9  9.0       7.6       8.4         4.9          8.2
#   yelp2018-s          5.1   2.8  8.4  19.5       (about 2.5x gowalla-s for the others)
#   ml-100k NGCF / NeuMF: full 2.2 / 0.8, BET 2.7 / 6.3 (NeuMF scores every pair: slow to evaluate)
#   yelp2018-s, measured 2026-12-03: OptEmbed 18-31, BET from scratch 24-32, PEP 14, CIESS(fast) 20, power rule 18,
#                                    magprune 12, ESAPN(fast) 7
#   gowalla-s NGCF, measured 2026-12-03: full 4.5, ES 4-6, OptEmbed 10-16, BET from scratch 11-14, power rule 20,
#                                        CIESS(fast) 14, ESAPN(fast) 10, magprune 7, PEP 12, MR 9
#   gowalla-s NeuMF (BPR or BCE): full 14 (evaluation-bound: every user-item pair through the MLP; a validation
#                                 takes 24-25 s on the AMD EPYC); measured 2026-12-04: ES 49, MR 12-18, BET from scratch
#                                 30-34, magprune 21, PEP 14, ESAPN(fast) 32; OptEmbed over 77 (supernet 19 min, evolution
#                                 24 min, its final training still improving at epoch 62 when stopped)
#
#   what                                                          runs   CPU hours   state (2026-12-05)
#   ml-100k LightGCN, 10 methods x 3 sparsities x 3 seeds          84     ~2.5       done
#   gowalla-s LightGCN, the same                                   84     ~10        done (2026-12-03)
#   ml-100k NGCF, NeuMF: full, ES, MR, BET x 3 x 3                 60     ~2.5       done
#   yelp2018-s LightGCN, 1 seed, full/ES/MR/BET                    10     ~1.5       done
#   issue 16: BET from scratch (the headline's protocol), gowalla-s 9     ~1.5       done (6-8 min a run)
#   issue 16: yelp2018-s LightGCN, every method, 1 seed            28     ~8         done (2026-12-03)
#   issue 16: NGCF and NeuMF on gowalla-s, every method, 1 seed    56     ~14        NGCF done (2026-12-04; 6-29 min a run
#                                                                                   on the AMD EPYC); NeuMF: full (BPR, BCE),
#                                                                                   ES, MR, magprune, PEP, ESAPN at 0.9, MR at
#                                                                                   0.8, BET at 0.8, 0.9 (2026-12-04); OptEmbed
#                                                                                   at 0.9, MR and BET at 0.95 (2026-12-05; 119,
#                                                                                   30, 56 min, each resumed from 2026-12-04);
#                                                                                   the power rule at 0.9 (92 min, 3 sessions);
#                                                                                   ES at 0.8, CIESS at 0.9, magprune, PEP,
#                                                                                   ESAPN and CIESS at 0.8, ES, magprune,
#                                                                                   PEP, ESAPN and CIESS at 0.95, the power
#                                                                                   rule and OptEmbed at 0.8, OptEmbed and the
#                                                                                   power rule at 0.95 (13, 32, 27, 14, 36, 43,
#                                                                                   18, 23, 15, 27, 59, 42, 65, 61, 80 min,
#                                                                                   2026-12-05): NeuMF done
#   issue 16: every method from the pretrained table (ablation)    27     ~3         done (seed 0, 3-10 min a run)
#   issue 16: Table 2 (2 variants x 3 sparsities x 3 seeds)        18     ~2.5       done (2026-12-03, 6-13 min a run)
#   issue 16: Figures 4-6 (m in 20..100, T), gowalla-s 0.9         8      ~0.7       done (2026-12-03; m=100 reused)
#   issue 16: full Gowalla, 0.9: full, ES, BET, best baseline      4      ~10        full and ES done (2026-12-04, AMD EPYC:
#                                                                                   65 and 25 min); BET from scratch done
#                                                                                   (2026-12-05, 247 min over three sessions);
#                                                                                   OptEmbed done (2026-12-05, 178 min over
#                                                                                   three sessions; widths 28 / 1)
#   optional (item 1's "3 seeds at 0.9"): NGCF on gowalla-s  20     ~3.6       done (2026-12-05, AMD EPYC, 4-18 min a
#   at 0.9, seeds 1 and 2, every method                                             run, two at a time: 1.8 h)
#   QR, GraphHash, DSL: gowalla-s LightGCN x 3 x 3, NGCF and     33     ~3         done (2026-12-06/07, 1-12 min a run)
#   NeuMF at 0.9 (seed 0), yelp2018-s LightGCN x 3 (seed 0)
#   BET plus-fast, gowalla-s LightGCN x 3 x 3                      9      ~1.3       done (2026-12-07, 5-14 min a run)
#   BET plus-fast, gowalla-s NGCF at 0.9 x 3 seeds                 3      ~0.8       done (2026-12-08, about 15 min a run)
#   BET paper, gowalla-s LightGCN at 0.9 x 3 seeds                 3      ~2.4       done (2026-12-07/08, 41-54 min a run)
#   BET plus-fast, yelp2018-s LightGCN x 3 (seed 0)                3      ~0.8       done (2026-12-08, 14-19 min a run)
#   BET plus-fast, gowalla-s NeuMF at 0.9 (seed 0); BET paper,    4      ~2.5       done (2026-12-08; the paper at 0.95
#   gowalla-s LightGCN at 0.95 x 3 seeds                                              32-35 min a run)
#   baselines re-run after issue 33's fixes (sweep-v2): gowalla-s  8      ~3         done (2026-12-07/08, 9-37 min a run)
#   ESAPN and CIESS x 3, OptEmbed 0.9; yelp2018-s OptEmbed 0.8
#   budgets in bytes, gowalla-s 0.9 and 0.95 x 3 seeds             ~100   ~8         done (2026-12-07; bench/bytes_budget.py)
#   not run: BET plus anywhere; the paper at 0.8, on yelp2018-s, NGCF, NeuMF and the full Gowalla
#   (about 5x fast each); the re-runs of seeds 1-2 of the sweep-v2 cells
#   total still to run: nothing of the plan; not run (optional): NeuMF 3 seeds at 0.9 (~13 CPU-h), yelp2018-s 3 seeds
#   (~17 CPU-h), full Gowalla at 0.95 (~7 CPU-h)
#
#   Full Gowalla (29,858 users x 40,981 items, 8x gowalla-s's interactions), from bench/results/epoch_time-gowalla-LightGCN.md
#   and evaluation-gowalla.md: an epoch of the full table 64 s, of ES at 0.9 16 s, a validation 3 s (2 threads). With
#   gowalla-s's epoch counts (full 46, ES 89) that is about 1 h for the full table, 0.5 h for ES; BET (fast, from scratch)
#   and OptEmbed cost 2.4-3.6x the full table on gowalla-s, about 3-4 h each. Measured 2026-12-04 (one core each, both
#   busy): the full table 65 min (105 s an epoch, best at epoch 15 of 36), ES 25 min (31 s an epoch, 50 epochs). This project's sessions last 3 h. The
#   unfinished-run folder (about 100 MB a kept epoch) is outside git: a run longer than a session continues only where the
#   machine outlives the session, as it did on 2026-12-05 (until then it had not). BET from scratch, measured 2026-12-05
#   (one core each, both busy): pretraining 47 min (25 epochs), search 66 min (20 iterations), then its retraining of
#   about 100 s an epoch, continued across sessions. OptEmbed would take as long (or a GPU session: on one H200 an
#   epoch took 2.4-3 s and a validation 0.2-0.3 s, bench/results/gpu-h200/, so all four would take under an hour of
#   GPU time, more than the 15-minute leases this project has had).
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

# Issue 16's headline protocol: BET's fast search, its one retraining from scratch with the protocol's patience (20),
# exactly as every baseline's final training (gowalla-s, 3 seeds)
SCRATCH="--bet_profile=fast --bet_retrain_from=scratch --bet_retrain_stopping_step=20"
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.9,0.8,0.95 --seeds=0,1,2 \
    --keys="$SCRATCH" --data_path="$DATA" --out=bench/results/bet-scratch || status=1

# Issue 16, item 1: yelp2018-s, every method, seed 0 (full, ES, MR and BET warm-started are above)
"$PYTHON" -m bench.sweep --dataset=yelp2018-s --models=LightGCN --methods=pep,optembed,magprune,mde,esapn,ciess \
    --sparsities=0.9,0.8,0.95 --seeds=0 "${FAST[@]}" || status=1
"$PYTHON" -m bench.sweep --dataset=yelp2018-s --models=LightGCN --methods=bet --sparsities=0.9,0.8,0.95 --seeds=0 \
    --keys="$SCRATCH" --data_path="$DATA" --out=bench/results/bet-scratch || status=1
# Issue 16, item 1: NGCF and NeuMF on gowalla-s, every method, seed 0; BET from scratch only. NeuMF with the
# paper's BPR loss (neumf_loss=bpr; RecBole's own NeuMF, BCE, as its reference row)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=full,es,mr,pep,optembed,magprune,mde,esapn,ciess \
    --sparsities=0.9,0.8,0.95 --seeds=0 --baselines=NGCF "${FAST[@]}" || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NeuMF --methods=full,es,mr,pep,optembed,magprune,mde,esapn,ciess \
    --sparsities=0.9,0.8,0.95 --seeds=0 --keys="--esapn_profile=fast --ciess_profile=fast --neumf_loss=bpr" --data_path="$DATA" || status=1
# item 1b: how much the loss moves NeuMF: our NeuMF's full table with RecBole's BCE (it trains as RecBole's NeuMF bit
# for bit, tests/test_models.py; RecBole's own NeuMF scores every pair one by one, 2 min per validation here: not run)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NeuMF --methods=full --seeds=0 --data_path="$DATA" \
    --out=bench/results/neumf-bce || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=bet --sparsities=0.9,0.8,0.95 --seeds=0 \
    --keys="$SCRATCH" --data_path="$DATA" --out=bench/results/bet-scratch || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NeuMF --methods=bet --sparsities=0.9,0.8,0.95 --seeds=0 \
    --keys="$SCRATCH --neumf_loss=bpr" --data_path="$DATA" --out=bench/results/bet-scratch || status=1
# Issue 16, item 1's optional "3 seeds at 0.9": NGCF on gowalla-s, seeds 1 and 2 (the full table's
# run is named at the smallest sparsity given, 0.8, as seed 0's)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=full --sparsities=0.8 --seeds=1,2 "${FAST[@]}" || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=es,mr,pep,optembed,magprune,mde,esapn,ciess \
    --sparsities=0.9 --seeds=1,2 "${FAST[@]}" || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=bet --sparsities=0.9 --seeds=1,2 \
    --keys="$SCRATCH" --data_path="$DATA" --out=bench/results/bet-scratch || status=1
# Issue 16, item 1 (fairness ablation): every method starts from the same trained full table (start=pretrained)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=es,mr,pep,optembed,magprune,mde,esapn,ciess,bet \
    --sparsities=0.9,0.8,0.95 --seeds=0 --keys="--start=pretrained $SCRATCH --esapn_profile=fast --ciess_profile=fast" \
    --data_path="$DATA" --out=bench/results/start-pretrained || status=1
"$PYTHON" -m bench.table --results=bench/results/sweep --variant=scratch=bench/results/bet-scratch \
    --variant=pretrained=bench/results/start-pretrained --compare=pretrained --headline_variant=scratch \
    --out=bench/results/start-pretrained/tables || status=1
# Issue 16, item 3 (Table 2): BET with random selection only, and with the predictor that reads only the sizes
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.9,0.8,0.95 --seeds=0,1,2 \
    --keys="$SCRATCH --bet_selection=random" --data_path="$DATA" --out=bench/results/table2-random || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.9,0.8,0.95 --seeds=0,1,2 \
    --keys="$SCRATCH --bet_predictor=simple" --data_path="$DATA" --out=bench/results/table2-simple || status=1
"$PYTHON" -m bench.table --results=bench/results/bet-scratch --variant=random=bench/results/table2-random \
    --variant=simple=bench/results/table2-simple --out=bench/results/table2 || status=1
# Issue 16, item 5: the paper's full Gowalla, LightGCN at 0.9, seed 0: full, ES, the strongest baseline on gowalla-s
# (OptEmbed at 0.9 so far) and BET from scratch. Hours each: an interrupted run continues where it stopped.
"$PYTHON" -m bench.sweep --dataset=gowalla --models=LightGCN --methods=full,es,optembed --sparsities=0.9 --seeds=0 \
    --data_path="$DATA" || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla --models=LightGCN --methods=bet --sparsities=0.9 --seeds=0 --keys="$SCRATCH" \
    --data_path="$DATA" --out=bench/results/bet-scratch || status=1

# QR, GraphHash and DSL beside every method (the weight-sharing family and dynamic sparse training)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=qr,graphhash,dsl --sparsities=0.8,0.9,0.95 \
    --seeds=0,1,2 "${FAST[@]}" || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=qr,graphhash,dsl --sparsities=0.9 --seeds=0 \
    "${FAST[@]}" || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NeuMF --methods=qr,graphhash,dsl --sparsities=0.9 --seeds=0 \
    --keys="--neumf_loss=bpr" --data_path="$DATA" || status=1
"$PYTHON" -m bench.sweep --dataset=yelp2018-s --models=LightGCN --methods=qr,graphhash,dsl --sparsities=0.8,0.9,0.95 \
    --seeds=0 "${FAST[@]}" || status=1
# BET beyond the paper (rows "BET (plus-fast)") and BET as the paper ran it (rows "BET (paper)"); the ablation that
# chose plus-fast's parts is bench/bet_ablation.py's (its tables in bench/results/issue33-ablation/ name their runs)
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.8,0.9,0.95 --seeds=0,1,2 \
    --keys="--bet_profile=plus-fast" --data_path="$DATA" --out=bench/results/bet-plus-fast || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NGCF --methods=bet --sparsities=0.9 --seeds=0,1,2 \
    --keys="--bet_profile=plus-fast" --data_path="$DATA" --out=bench/results/bet-plus-fast || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.9 --seeds=0,1,2 \
    --keys="--bet_profile=paper" --data_path="$DATA" --out=bench/results/bet-paper || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=bet --sparsities=0.95 --seeds=0,1,2 \
    --keys="--bet_profile=paper" --data_path="$DATA" --out=bench/results/bet-paper || status=1
"$PYTHON" -m bench.sweep --dataset=yelp2018-s --models=LightGCN --methods=bet --sparsities=0.8,0.9,0.95 --seeds=0 \
    --keys="--bet_profile=plus-fast" --data_path="$DATA" --out=bench/results/bet-plus-fast || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=NeuMF --methods=bet --sparsities=0.9 --seeds=0 \
    --keys="--bet_profile=plus-fast --neumf_loss=bpr" --data_path="$DATA" --out=bench/results/bet-plus-fast || status=1
# The baselines re-run after issue 33's fixes (ESAPN trading under the budget, CIESS's per-row exploration noise,
# OptEmbed filling its leftover), beside the rows they replace; a cell re-run on every seed replaces the old one in
# the tables (bench.table --rerun), the others keep theirs until their every seed is re-run
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=esapn,ciess --sparsities=0.8,0.9,0.95 --seeds=0 \
    "${FAST[@]}" --out=bench/results/sweep-v2 || status=1
"$PYTHON" -m bench.sweep --dataset=gowalla-s --models=LightGCN --methods=optembed --sparsities=0.9 --seeds=0 \
    --data_path="$DATA" --out=bench/results/sweep-v2 || status=1
"$PYTHON" -m bench.sweep --dataset=yelp2018-s --models=LightGCN --methods=optembed --sparsities=0.8 --seeds=0 \
    --data_path="$DATA" --out=bench/results/sweep-v2 || status=1
for dataset in gowalla-s yelp2018-s; do
    "$PYTHON" -m bench.compare_rows --old=bench/results/sweep --new=bench/results/sweep-v2 --dataset=$dataset \
        --out=bench/results/sweep-v2 || status=1
done
# Budgets in bytes: every method at float32, int8 and int4 under one byte budget, and BET searching precision
for sparsity in 0.9 0.95; do
    for seed in 0 1 2; do
        "$PYTHON" -m bench.bytes_budget --run --dataset=gowalla-s --data_path="$DATA" --sparsity=$sparsity --seed=$seed || status=1
    done
    "$PYTHON" -m bench.bytes_budget --table --dataset=gowalla-s --sparsity=$sparsity || status=1
done

# The tables: BET from scratch is the row "bet-scratch", beside BET as swept above (warm-started from the pretrained
# table), BET plus-fast and BET with the paper's schedule
"$PYTHON" -m bench.table --results=bench/results/sweep --variant=scratch=bench/results/bet-scratch \
    --variant=plus-fast=bench/results/bet-plus-fast --variant=paper=bench/results/bet-paper \
    --rerun=bench/results/sweep-v2 --out=bench/results || status=1
"$PYTHON" -m bench.readme_tables || status=1   # docs/results.md's tables, from the files just written
"$PYTHON" -m bench.plots --results=bench/results/sweep --variant=scratch=bench/results/bet-scratch --out=bench/results \
    --data_path="$DATA" || status=1
# the paper's ratios beside ours: with the sweep's BET (paper-ratios.md) and with BET from scratch, the headline's
# (bet-scratch-ratios/paper-ratios.md)
"$PYTHON" -m bench.paper_ratios --results=bench/results/sweep --paper="$DATA/../paper/table1.csv" --out=bench/results || status=1
"$PYTHON" -m bench.paper_ratios --results=bench/results/sweep --bet_results=bench/results/bet-scratch \
    --paper="$DATA/../paper/table1.csv" --out=bench/results/bet-scratch-ratios || status=1
# Several budgets in one run against one full-table training (issue 15), beside the separate runs above
"$PYTHON" -m bench.whole_run --dataset=gowalla-s --data_path="$DATA" --sparsity=0.8,0.9,0.95 --seeds=0,1,2 \
    --profiles=fast:bet_retrain_top=1:bet_retrain_stopping_step=5:bet_pretrain_stopping_step=10,fast:bet_retrain_top=1:bet_retrain_stopping_step=5:bet_pretrain_stopping_step=10:bet_share_population=True || status=1

# Figures 4-6: BET against m and T, and its predictor's loss (gowalla-s, 0.9; the headline's BET: fast search,
# retrained from scratch with patience 20)
"$PYTHON" -m bench.sensitivity --dataset=gowalla-s --data_path="$DATA" --sparsity=0.9 --seed=0 --candidates=20,40,60,80,100 \
    --every=5 --keys="$SCRATCH" || status=1

# The paper's schedule (T=50, h=10, top-5 from scratch), one seed: ml-100k, LightGCN, sparsity 0.9
"$PYTHON" -m bench.sweep --dataset=ml-100k --models=LightGCN --methods=full,es,mr,bet --sparsities=0.9 --seeds=2020 \
    --out=bench/results/paper-schedule/runs --data_path="$DATA" || status=1
"$PYTHON" -m bench.table --results=bench/results/paper-schedule/runs --out=bench/results/paper-schedule || status=1
"$PYTHON" -m bench.plots --results=bench/results/paper-schedule/runs --out=bench/results/paper-schedule --data_path="$DATA" || status=1
# Issue 16, item 7 (needs a GPU; not run by this script): RecBole's LightGCN against ours on the full Gowalla, and a
# short BET search there, in one run of about 5 minutes on one H200 (bench/results/gpu-h200/). Where pip reaches PyPI:
#   bash bench/gpu_pack.sh "$DATA"
# then on the GPU machine:
#   OUT=bench/results/gpu-h200 bash bench/gpu_check.sh
exit "$status"
