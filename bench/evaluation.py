"""Full-ranking validation: RecBole's own LightGCN and evaluation path against ours, same weights, same split.

    python -m bench.evaluation --dataset=gowalla --data_path=../shared/datasets

RecBole's side: its unmodified LightGCN evaluated by its Trainer with
``eval_batch_size = 8 * n_items`` (8 users a batch; its default of 4096 would
score one user at a time on Gowalla). Our side: the masked LightGCN (symmetric
CSR propagation) evaluated by :class:`~recbole_bet.trainer.BudgetTrainer`
with our default ``eval_batch_size`` (2**20 scores a batch) and larger ones.
Both models hold the same weights, the full table; the metric values must be
identical. Time is the median of --repeats evaluations, including the one
graph propagation each evaluation starts with.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from recbole.model.general_recommender import lightgcn
from recbole.trainer import Trainer
from recbole.utils import init_seed

from bench.common import header, markdown_table, recbole_data, write
from recbole_bet.model import get_model
from recbole_bet.trainer import BudgetTrainer


def timed_evaluations(trainer, model, valid, repeats: int):
    times, result = [], None
    for _ in range(repeats):
        model.restore_user_e = model.restore_item_e = None  # each evaluation propagates once, as after an epoch
        start = time.perf_counter()
        result = trainer.evaluate(valid, load_best_model=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times), dict(result)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", default="1048576,8388608", help="our eval_batch_size values (scores a batch)")
    args = parser.parse_args(argv)

    config, train, valid, _ = recbole_data("LightGCN", args.dataset, args.data_path)
    n_items = train._dataset.item_num
    init_seed(config["seed"], True)
    plain = lightgcn.LightGCN(config, train._dataset).eval()
    ours = get_model("LightGCN")(config, train._dataset).eval()
    with torch.no_grad():
        ours.user_embedding.full_weight.copy_(plain.user_embedding.weight)
        ours.item_embedding.full_weight.copy_(plain.item_embedding.weight)
        ours.user_embedding.set_sizes(torch.full_like(ours.user_embedding.sizes, ours.d_max))
        ours.item_embedding.set_sizes(torch.full_like(ours.item_embedding.sizes, ours.d_max))

    rows = []
    config["eval_batch_size"] = 8 * n_items
    valid.update_config(config)
    base_seconds, base_result = timed_evaluations(Trainer(config, plain), plain, valid, args.repeats)
    rows.append(["RecBole LightGCN + Trainer", 8, f"{base_seconds:.2f}", "1.00", "reference"])
    for batch in map(int, args.ours.split(",")):
        config["eval_batch_size"] = batch
        valid.update_config(config)
        seconds, result = timed_evaluations(BudgetTrainer(config, ours), ours, valid, args.repeats)
        same = "identical" if result == base_result else f"DIFFERENT: {result}"
        rows.append([f"recbole-bet, eval_batch_size={batch}", max(batch // n_items, 1), f"{seconds:.2f}", f"{base_seconds / seconds:.2f}", same])

    metrics = ", ".join(f"{k}={v}" for k, v in base_result.items())
    text = header(
        f"Full-ranking validation ({args.dataset}, {train._dataset.user_num - 1:,} users x {n_items - 1:,} items)",
        f"python -m bench.evaluation --dataset={args.dataset} --data_path={args.data_path}",
        f"Median of {args.repeats} evaluations of the validation split, same weights (untrained, full table). Reference metrics: {metrics}.",
    ) + markdown_table(["path", "users a batch", "seconds", "speed-up", "metrics"], rows)
    write(f"evaluation-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
