"""Search overhead per iteration: drawing m actions and scoring them with the fitness predictor.

    python -m bench.search_overhead --dataset=gowalla --data_path=../shared/datasets

Frequencies come from the dataset's training split (RecBole's 50/25/25 split);
times are the median of --repeats calls after one warm-up. Target (issue 4):
both together under 0.25 s for m=100 on full gowalla (70,839 rows).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from bench.common import header, markdown_table, recbole_data, write
from recbole_bet.budget import Budget
from recbole_bet.methods.bet.predictor import FitnessPredictor
from recbole_bet.quick_start import training_frequencies
from recbole_bet.methods.bet.sampler import ActionSampler, available_cores


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--candidates", type=int, default=100)
    parser.add_argument("--sparsities", default="0.8,0.9,0.95")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)

    config, train, _, _ = recbole_data("LightGCN", args.dataset, args.data_path)
    users, items = training_frequencies(train._dataset, config)
    rng = np.random.default_rng(0)
    rows = []
    for sparsity in map(float, args.sparsities.split(",")):
        budget = Budget.from_sparsity(sparsity, 128, len(users), len(items))
        sampler = ActionSampler(budget, users, items)
        predictor = FitnessPredictor(users, items, 128)
        sample_t, predict_t = [], []
        for repeat in range(args.repeats + 1):
            start = time.perf_counter()
            candidates = sampler.sample(args.candidates, rng)
            middle = time.perf_counter()
            with torch.no_grad():
                predictor(candidates.user_sizes, candidates.item_sizes)
            end = time.perf_counter()
            if repeat:  # the first call warms up
                sample_t.append(middle - start)
                predict_t.append(end - middle)
            totals = candidates.user_sizes.sum(1, dtype=np.int64) + candidates.item_sizes.sum(1, dtype=np.int64)
            assert np.all(totals == budget.params)
        s, p = statistics.median(sample_t), statistics.median(predict_t)
        rows.append([sparsity, f"{len(users) + len(items):,}", args.candidates, f"{s:.3f}", f"{p:.3f}", f"{s + p:.3f}", "yes" if s + p < 0.25 else "no"])

    text = header(
        f"Search overhead: sample and score m={args.candidates} actions ({args.dataset})",
        f"python -m bench.search_overhead --dataset={args.dataset} --data_path={args.data_path}",
        f"Median of {args.repeats} calls after a warm-up; torch threads at their default, the sampler on the {available_cores()} cores this process may use (the candidates do not depend on it). Every drawn action is checked to use the budget exactly.",
    ) + markdown_table(["sparsity", "rows", "m", "sample s", "predict s", "total s", "< 0.25 s"], rows)
    write(f"search_overhead-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
