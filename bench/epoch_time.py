"""Training epochs of RecBole's own LightGCN / NGCF against ours: wall time, loss curve, metrics.

    python -m bench.epoch_time --dataset=gowalla --data_path=../shared/datasets --models=LightGCN --epochs=2

In one process, on one split, from the same initial weights:

* ``RecBole``: RecBole's unmodified model (COO adjacency) and Trainer, as it runs
  by default;
* ``RecBole, allocator kept``: the same after :func:`keep_freed_memory` (which
  ``run_recbole_bet`` calls, and which is process-wide): what of our gain any
  RecBole model could have from the allocator alone; this and every row below
  run with it;
* ``ours, full``: our model with every row at d_max, the same function, so the
  loss curve must match RecBole's up to float rounding;
* ``ours, ES 0.9``: our model masked to equal sizes at sparsity 0.9.

Each is trained ``--epochs`` epochs by RecBole's ``_train_epoch`` and then
evaluated once on validation. Target (issue 4): ``ours`` at least 2x faster
per epoch than RecBole on full Gowalla, with the same curve and metrics.
"""

from __future__ import annotations

import argparse
import statistics
import time

from recbole.model.general_recommender import lightgcn, ngcf
from recbole.trainer import Trainer
from recbole.utils import init_seed

from bench.common import header, markdown_table, mask_to_equal_sizes, recbole_data, synchronize, write
from recbole_bet.allocator import keep_freed_memory
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies
from recbole_bet.trainer import BudgetTrainer

PLAIN = {"LightGCN": lightgcn.LightGCN, "NGCF": ngcf.NGCF}


def train(trainer, train_data, valid_data, epochs):
    times, losses = [], []
    for epoch in range(epochs):
        synchronize(trainer.device)
        start = time.perf_counter()
        losses.append(trainer._train_epoch(train_data, epoch))
        synchronize(trainer.device)  # a GPU may still run the last batch's backward and step
        times.append(time.perf_counter() - start)
    result = trainer.evaluate(valid_data, load_best_model=False)
    return times, losses, result["ndcg@20"], result["recall@20"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--models", default="LightGCN")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--out", help="folder of the table (default bench/results)")
    args = parser.parse_args(argv)
    if "," in args.models:  # the allocator setting cannot be undone: a second model's "RecBole" row would have it
        parser.error(f"--models={args.models}: one model per run (the allocator setting is process-wide)")

    rows = []
    for name in args.models.split(","):
        config, train_data, valid_data, _ = recbole_data(name, args.dataset, args.data_path)
        init_seed(config["seed"], True)
        device = config["device"]  # RecBole's choice: cuda when torch sees a GPU (bench/gpu_check.sh), else the CPU
        plain = PLAIN[name](config, train_data._dataset).to(device)
        initial = {k.replace("embedding.weight", "embedding.full_weight"): v.clone() for k, v in plain.state_dict().items()}
        users, items = training_frequencies(train_data._dataset, config)
        variants = [("RecBole", plain, Trainer), ("RecBole, allocator kept", None, Trainer)]
        for label, sparsity in (("ours, full", None), ("ours, ES 0.9", 0.9)):
            model = get_model(name)(config, train_data._dataset).to(device)
            model.load_state_dict(initial, strict=False)
            if sparsity:
                mask_to_equal_sizes(model, users, items, sparsity)
            variants.append((label, model, BudgetTrainer))
        reference = tuned_reference = None
        for label, model, trainer_class in variants:
            if model is None:  # RecBole again, from the same initial weights, with freed memory kept
                keep_freed_memory()
                model = PLAIN[name](config, train_data._dataset).to(device)
                model.load_state_dict({k.replace("embedding.full_weight", "embedding.weight"): v for k, v in initial.items()})
            init_seed(config["seed"], True)  # same negatives for every variant ...
            train_data.generator.manual_seed(config["seed"])  # ... and the same batch order (the loader's own generator)
            times, losses, ndcg, recall = train(trainer_class(config, model), train_data, valid_data, args.epochs)
            per_epoch = statistics.median(times)
            reference = reference or per_epoch
            if label == "RecBole, allocator kept":
                tuned_reference = per_epoch
            rows.append([
                name, label, config["train_batch_size"], f"{per_epoch:.1f}", f"{reference / per_epoch:.2f}",
                f"{tuned_reference / per_epoch:.2f}" if tuned_reference else "-",
                " / ".join(f"{loss:.4f}" for loss in losses), f"{recall:.4f}", f"{ndcg:.4f}",
            ])

    text = header(
        f"Training epochs, RecBole vs recbole-bet ({args.dataset})",
        f"python -m bench.epoch_time --dataset={args.dataset} --data_path={args.data_path} --models={args.models} --epochs={args.epochs}",
        f"Median epoch time over {args.epochs} epochs; same initial weights and seed for every row; "
        "loss is RecBole's summed epoch loss; metrics on validation after the last epoch.",
    ) + markdown_table(
        ["model", "variant", "batch", "s / epoch", "speed-up vs RecBole", "vs RecBole, allocator kept", "loss per epoch",
         "valid R@20", "valid N@20"], rows
    )
    write(f"epoch_time-{args.dataset}-{args.models.replace(',', '-')}.md", text, args.out)


if __name__ == "__main__":
    main()
