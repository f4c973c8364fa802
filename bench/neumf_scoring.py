"""NeuMF's full-ranking scores: RecBole's pair-by-pair fallback against our ``full_sort_predict``, before and after
its in-place layers.

    python -m bench.neumf_scoring --dataset=gowalla-s --data_path=../shared/datasets

One model, one set of (untrained) weights, every user of the dataset scored against every item, three ways:

* ``RecBole's fallback``: RecBole's NeuMF has no ``full_sort_predict``, so its evaluator scores each (user, item)
  pair through the whole network (``predict``); timed on ``--recbole_users`` users and scaled to all of them;
* ``ours, plain layers``: our ``full_sort_predict`` (the first MLP layer once per user and once per item) running
  RecBole's MLP layers as they are, as it did until 2026-12-05;
* ``ours, in place``: the same with the ReLUs in place and the evaluation's dropouts skipped (the default now);

each under the default allocator and then under the one ``run_recbole_bet`` sets (freed memory kept): the in-place
layers save the system's fresh pages for each block, which the kept allocator already saves.

The two of ours must give the same scores bit for bit; RecBole's, the same up to float rounding (its first layer
sums in another order). Time is the median of ``--repeats`` passes over every user, on ``--threads`` threads (the
sweeps give a run one).
"""

from __future__ import annotations

import argparse

import torch

from bench.common import header, markdown_table, median_seconds, recbole_data, write
from recbole_bet.allocator import keep_freed_memory
from recbole_bet.model import get_model, neumf


def scores(model, users: torch.Tensor, batch_users: int) -> torch.Tensor:
    """``full_sort_predict`` for ``users``, ``batch_users`` at a time: ``[len(users), n_items]``."""
    rows = [model.full_sort_predict({model.USER_ID: part}).view(len(part), -1) for part in users.split(batch_users)]
    return torch.cat(rows)


def pairwise_scores(model, users: torch.Tensor) -> torch.Tensor:
    """RecBole's fallback: every (user, item) pair through ``predict``, one user's items at a time."""
    items = torch.arange(model.n_items)
    return torch.stack([model.predict({model.USER_ID: user.repeat(model.n_items), model.ITEM_ID: items}) for user in users])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch_users", type=int, default=256, help="users a full_sort_predict call")
    parser.add_argument("--recbole_users", type=int, default=64, help="users RecBole's fallback is timed on")
    parser.add_argument("--out", help="folder of the table (default bench/results)")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile, for the table's note")
    args = parser.parse_args(argv)
    for name in ("repeats", "threads", "batch_users", "recbole_users"):
        if getattr(args, name) < 1:
            parser.error(f"--{name}={getattr(args, name)}; allowed: 1 or more")
    torch.set_num_threads(args.threads)

    config, train, _, _ = recbole_data("NeuMF", args.dataset, args.data_path, neumf_loss="bpr")
    model = get_model("NeuMF")(config, train._dataset).eval()
    users = torch.arange(1, model.n_users)  # every user (0 is RecBole's padding)
    sample = users[: args.recbole_users]
    in_place = neumf._run_inplace

    def measure():
        """(RecBole's fallback, ours with plain layers, ours in place): (seconds, scores) each."""
        with torch.no_grad():
            seconds, recbole = median_seconds(lambda: pairwise_scores(model, sample), 1)
            neumf._run_inplace = lambda layers, x: layers(x)  # the layers as they are: the code until 2026-12-05
            try:
                plain = median_seconds(lambda: scores(model, users, args.batch_users), args.repeats)
            finally:
                neumf._run_inplace = in_place
            ours = median_seconds(lambda: scores(model, users, args.batch_users), args.repeats)
        return (seconds * len(users) / len(sample), recbole), plain, ours

    rows = []
    # the default allocator first: keep_freed_memory (which run_recbole_bet sets) is process-wide and cannot be undone
    for allocator, setting in (("default", None), ("kept (run_recbole_bet's)", keep_freed_memory)):
        if setting:
            setting()
        (recbole_seconds, recbole), (plain_seconds, plain), (ours_seconds, ours) = measure()
        gap = (recbole - ours[: len(sample)]).abs().max().item()
        rows += [
            [allocator, "RecBole's fallback (predict, every pair)", f"{recbole_seconds:.1f} (from {len(sample)} users)", "1.0", "-",
             f"max abs. difference from ours {gap:.1e}"],
            [allocator, "ours, plain layers (until 2026-12-05)", f"{plain_seconds:.1f}", f"{recbole_seconds / plain_seconds:.1f}", "1.0",
             "identical to ours, in place" if torch.equal(plain, ours) else "DIFFERENT from ours, in place"],
            [allocator, "ours, in place (now)", f"{ours_seconds:.1f}", f"{recbole_seconds / ours_seconds:.1f}",
             f"{plain_seconds / ours_seconds:.2f}", "-"],
        ]
    text = header(
        f"NeuMF full-ranking scores ({args.dataset}, {len(users):,} users x {model.n_items - 1:,} items)",
        f"python -m bench.neumf_scoring --dataset={args.dataset} --data_path={args.data_path} --repeats={args.repeats} "
        f"--threads={args.threads} --batch_users={args.batch_users} --recbole_users={args.recbole_users}",
        f"Seconds to score every user against every item once (a validation's scoring, without its top-k and metrics), "
        f"median of {args.repeats} passes, {args.threads} thread(s); untrained weights of seed {config['seed']}. "
        f"mf_embedding_size {config['mf_embedding_size']}, mlp_embedding_size {config['mlp_embedding_size']}, "
        f"mlp_hidden_size {config['mlp_hidden_size']}. Under the default allocator every [users, items, hidden] block "
        f"is new memory from the system; under the kept one (recbole_bet.allocator.keep_freed_memory, which "
        f"run_recbole_bet sets) freed blocks are reused, and the in-place layers save little."
        + (f" {args.note}" if args.note else ""),
    ) + markdown_table(["allocator", "path", "seconds", "speed-up vs RecBole", "vs plain layers", "scores"], rows)
    write(f"neumf_scoring-{args.dataset}.md", text, args.out)


if __name__ == "__main__":
    main()
