"""Full-ranking validation: RecBole's own LightGCN and evaluation path against ours, same weights, same split.

    python -m bench.evaluation --dataset=gowalla --data_path=../shared/datasets

RecBole's side: its unmodified LightGCN evaluated by its Trainer with
``eval_batch_size = --recbole_users * n_items`` (default 8 users a batch; its default of
4096 would score one user at a time on Gowalla; on a GPU, ``bench/gpu_check.sh`` gives it
400, as our ``paper-gpu`` profile). Our side: the masked LightGCN (symmetric
CSR propagation, scores on the used width, top-k collector) evaluated by
:class:`~recbole_bet.trainer.BudgetTrainer`: in float32 (``screened_ranking=False``)
at our default ``eval_batch_size`` (2**20 scores a batch), then screened (the
default, :mod:`recbole_bet.ranking`) at that and a larger one. Both models hold the same values: the
full table, then the table masked to equal sizes at sparsity 0.9. The metric
values must be identical. Time is the median of --repeats evaluations, including the one
graph propagation each evaluation starts with. RecBole's rows run first with the default
allocator, then again after :func:`~recbole_bet.allocator.keep_freed_memory` (process-wide,
as ``run_recbole_bet`` sets it), under which our rows run. Both models run on RecBole's device
(a GPU where torch sees one); there the int8 screen is off, so our screened rows take the float32 path.
"""

from __future__ import annotations

import argparse

import torch
from recbole.model.general_recommender import lightgcn
from recbole.trainer import Trainer
from recbole.utils import init_seed

from bench.common import header, markdown_table, mask_to_equal_sizes, median_seconds, recbole_data, write
from recbole_bet.allocator import keep_freed_memory
from recbole_bet.budget import Action, Budget
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies
from recbole_bet.trainer import BudgetTrainer


def timed_evaluations(trainer, model, valid, repeats: int):
    def evaluation():
        model.restore_user_e = model.restore_item_e = None  # each evaluation propagates once, as after an epoch
        return trainer.evaluate(valid, load_best_model=False)

    seconds, result = median_seconds(evaluation, repeats, trainer.device)
    return seconds, dict(result)


@torch.no_grad()
def floor_seconds(model, valid, batch_users: int, repeats: int) -> float:
    """Median seconds of the two steps every exact full ranking must take, and nothing else: the
    users x items score product (on the used width) and the top-k of every row, over the users
    the validation split evaluates, ``batch_users`` at a time; propagation included, as above."""
    device = next(model.parameters()).device
    users = torch.unique(valid._dataset.inter_feat[model.USER_ID]).to(device)
    k = max(valid.config["topk"])

    def score_and_rank():
        user_e, item_e = model.forward()  # not the cache: every repeat propagates
        width = model.kept_width
        items_t = item_e[:, :width].t().contiguous()
        for part in users.split(batch_users):
            torch.topk(user_e[part, :width] @ items_t, k, dim=-1)

    return median_seconds(score_and_rank, repeats, device)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--ours", default="1048576,8388608", help="our eval_batch_size values (scores a batch)")
    parser.add_argument("--recbole_users", type=int, default=8, help="users a batch of RecBole's evaluation")
    parser.add_argument("--out", help="folder of the table (default bench/results)")
    args = parser.parse_args(argv)
    if args.recbole_users < 1:
        parser.error(f"--recbole_users={args.recbole_users}; allowed: 1 or more users a batch")

    config, train, valid, _ = recbole_data("LightGCN", args.dataset, args.data_path)
    n_items = train._dataset.item_num
    init_seed(config["seed"], True)
    device = config["device"]  # RecBole's choice: cuda when torch sees a GPU, else the CPU
    plain = lightgcn.LightGCN(config, train._dataset).to(device).eval()
    ours = get_model("LightGCN")(config, train._dataset).to(device).eval()
    initial = {name: plain.get_submodule(name).weight.detach().clone() for name in ("user_embedding", "item_embedding")}
    users, items = training_frequencies(train._dataset, config)

    def hold(table: str) -> None:
        """Both models hold the same values: the full table, or the table masked to equal sizes."""
        with torch.no_grad():
            for name, weight in initial.items():
                ours.get_submodule(name).full_weight.copy_(weight)
            if table == "full table":
                ours.apply_action(Action.full(Budget.full(ours.d_max, len(users), len(items))))
            else:
                mask_to_equal_sizes(ours, users, items, 0.9)
            for name in initial:  # RecBole's model holds the same values: the masked ones
                plain.get_submodule(name).weight.copy_(ours.get_submodule(name).weight)

    def recbole(table: str):
        hold(table)
        config["eval_batch_size"] = args.recbole_users * n_items
        valid.update_config(config)
        return timed_evaluations(Trainer(config, plain), plain, valid, args.repeats)

    tables = ("full table", "ES, sparsity 0.9")
    references = {table: recbole(table) for table in tables}  # RecBole as it runs by default, first:
    keep_freed_memory()  # the allocator setting run_recbole_bet makes is process-wide and cannot be undone
    rows = []
    for table in tables:
        base_seconds, base_result = references[table]
        kept_seconds, kept_result = recbole(table)
        rows.append([table, "RecBole LightGCN + Trainer", args.recbole_users, f"{base_seconds:.2f}", "1.00", "-", "reference"])
        rows.append([table, "RecBole LightGCN + Trainer, allocator kept", args.recbole_users, f"{kept_seconds:.2f}",
                     f"{base_seconds / kept_seconds:.2f}", "1.00", "identical" if kept_result == base_result else f"DIFFERENT: {kept_result}"])
        ours_batches = list(map(int, args.ours.split(",")))
        # the float32 path (screened_ranking=False) at our first batch size, then the screened one (the default)
        for screened, batch in [(False, ours_batches[0])] + [(True, batch) for batch in ours_batches]:
            config["eval_batch_size"], config["screened_ranking"] = batch, screened
            valid.update_config(config)
            seconds, result = timed_evaluations(BudgetTrainer(config, ours), ours, valid, args.repeats)
            same = "identical" if result == base_result else f"DIFFERENT: {result}"
            path = f"recbole-bet, eval_batch_size={batch}" + ("" if screened else ", screened_ranking=False")
            rows.append([table, path, max(batch // n_items, 1), f"{seconds:.2f}",
                         f"{base_seconds / seconds:.2f}", f"{kept_seconds / seconds:.2f}", same])
        batch_users = max(int(args.ours.split(",")[-1]) // n_items, 1)
        floor = floor_seconds(ours, valid, batch_users, args.repeats)
        rows.append([table, "float32 floor: score product + top-k alone (no history mask, no metrics)", batch_users, f"{floor:.2f}",
                     f"{base_seconds / floor:.2f}", f"{kept_seconds / floor:.2f}", "-"])

    base_result = references["full table"][1]
    metrics = ", ".join(f"{k}={v}" for k, v in base_result.items())
    text = header(
        f"Full-ranking validation ({args.dataset}, {train._dataset.user_num - 1:,} users x {n_items - 1:,} items)",
        f"python -m bench.evaluation --dataset={args.dataset} --data_path={args.data_path} --repeats={args.repeats} "
        f"--ours={args.ours} --recbole_users={args.recbole_users}",
        f"Median of {args.repeats} evaluations of the validation split; both models hold the same (untrained) values, "
        f"masked for the ES rows. Full-table reference metrics: {metrics}. "
        f"The float32 floor rows time only what any full ranking that computes every score in float32 must do "
        f"(the scores of every user over all items, then their top-k). Our default path (screened_ranking) "
        f"does not: it ranks int8 codes, exactly summed, and scores in float32 only the items an error bound "
        f"leaves in reach of the top k (recbole_bet/ranking.py); the same top k.",
    ) + markdown_table(
        ["table", "path", "users a batch", "seconds", "speed-up vs RecBole", "vs RecBole, allocator kept", "metrics"], rows
    )
    write(f"evaluation-{args.dataset}.md", text, args.out)


if __name__ == "__main__":
    main()
