"""Wall time of one training epoch: RecBole's own LightGCN/NGCF against ours with masked tables.

    python -m bench.epoch_time --dataset=ml-100k --epochs=3
    python -m bench.epoch_time --dataset=gowalla-s --data_path=../shared/datasets

Both models are built on the same split in the same process and trained by
RecBole's Trainer for the same epochs; the table gives the median epoch time,
and the ratio masked / plain. Written to bench/results/epoch_time-<dataset>.md.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender import lightgcn, ngcf
from recbole.trainer import Trainer
from recbole.utils import init_seed

from recbole_bet.baselines import equal_sizes
from recbole_bet.budget import Budget
from recbole_bet.config import BetConfig
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies

PLAIN = {"LightGCN": lightgcn.LightGCN, "NGCF": ngcf.NGCF}


def epoch_seconds(model, config, train_data, epochs: int) -> list[float]:
    trainer = Trainer(config, model)
    times = []
    for epoch in range(epochs):
        start = time.perf_counter()
        trainer._train_epoch(train_data, epoch)
        times.append(time.perf_counter() - start)
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--models", default="LightGCN")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--out", default="bench/results")
    args = parser.parse_args(argv)
    sys.argv = sys.argv[:1]  # RecBole's Config reads sys.argv itself

    rows = []
    for name in args.models.split(","):
        config = BetConfig(name, args.dataset, config_dict={"data_path": args.data_path, "show_progress": False, "state": "WARNING"})
        init_seed(config["seed"], True)
        train_data, _, _ = data_preparation(config, create_dataset(config))
        init_seed(config["seed"], True)
        plain = PLAIN[name](config, train_data._dataset)
        init_seed(config["seed"], True)
        masked = get_model(name)(config, train_data._dataset)
        users, items = training_frequencies(train_data._dataset, config)
        masked.apply_action(equal_sizes(Budget.from_sparsity(args.sparsity, masked.d_max, len(users), len(items)), users, items))
        plain_t = epoch_seconds(plain, config, train_data, args.epochs)
        masked_t = epoch_seconds(masked, config, train_data, args.epochs)
        rows.append((name, config["train_batch_size"], statistics.median(plain_t), statistics.median(masked_t)))

    header = (
        f"# One training epoch, RecBole vs masked ({args.dataset})\n\n"
        f"Measured {date.today()} on {platform.machine()}, {platform.processor() or 'CPU'}, "
        f"torch threads as default; median of {args.epochs} epochs; masked tables at sparsity {args.sparsity} (ES).\n"
        f"Command: `python -m bench.epoch_time --dataset={args.dataset} --models={args.models} --epochs={args.epochs}`\n\n"
        "| model | batch | RecBole s/epoch | masked s/epoch | masked / RecBole |\n|---|---|---|---|---|\n"
    )
    table = header + "".join(f"| {n} | {b} | {p:.2f} | {m:.2f} | {m / p:.2f} |\n" for n, b, p, m in rows)
    print(table)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"epoch_time-{args.dataset}.md").write_text(table)


if __name__ == "__main__":
    main()
