"""The layouts BET's sampler proposes, per way of handling a size above d_max and per sampler of issue 33.

    python -m bench.sampler_widths --dataset=gowalla-s --data_path=../shared/datasets --sparsity=0.9

Draws ``--batches`` batches of m=100 candidates (2,000 by default) from the training split's frequencies, once per
sampler setting, on one seeded generator each, and reports how often each path of the sampler ran
(``ActionSampler.counts``) and the width statistics of the candidates: the user width's max ÷ mean (median over the
candidates), the share of candidates with a user at d_max, and the same among the candidates whose user share is
0.85-0.97 (where the winning layout of issue 33 lies: OptEmbed's users 42 wide, items 1). "Equal users": candidates
whose user widths differ by at most 1.
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from bench.common import header, markdown_table, recbole_data, write
from recbole_bet.budget import Budget
from recbole_bet.methods.bet.sampler import ActionSampler
from recbole_bet.quick_start import training_frequencies

PAPER_WEIGHTS = {"powerlaw": 1.0, "exponential": 1.0, "normal": 1.0, "lognormal": 1.0, "equal": 0.0}
SETTINGS = {  # name: ActionSampler keywords
    "repair (default, fast)": {"overflow": "repair"},
    "redraw (paper)": {"overflow": "redraw"},
    "redraw + equal member": {"overflow": "redraw", "probabilities": dict(PAPER_WEIGHTS, equal=1.0)},
    "redraw + equal + stratified w": {"overflow": "redraw", "probabilities": dict(PAPER_WEIGHTS, equal=1.0), "share_sampling": "stratified"},
}


def width_stats(user_sizes: np.ndarray, share: np.ndarray, d_max: int) -> list:
    """The table's width columns for a set of candidates."""
    users = user_sizes.astype(np.float64)
    spread = users.max(1) / users.mean(1)
    at_max = users.max(1) >= d_max
    equal = (users.max(1) - users.min(1)) <= 1
    band = (share >= 0.85) & (share <= 0.97)
    in_band = f"{np.median(spread[band]):.2f} / {100 * at_max[band].mean():.1f}% / {int((equal & band).sum())}" if band.any() else "-"
    return [f"{np.median(spread):.2f}", f"{100 * at_max.mean():.1f}%", int(equal.sum()), int(band.sum()), in_band]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--candidates", type=int, default=100)
    args = parser.parse_args(argv)

    config, train, _, _ = recbole_data("LightGCN", args.dataset, args.data_path)
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(args.sparsity, 128, len(users), len(items))
    rows, path_rows = [], []
    for name, keywords in SETTINGS.items():
        sampler = ActionSampler(budget, users, items, **keywords)
        rng = np.random.default_rng(0)
        start = time.perf_counter()
        drawn = [sampler.sample(args.candidates, rng) for _ in range(args.batches)]
        seconds = (time.perf_counter() - start) / args.batches
        user_sizes = np.concatenate([c.user_sizes for c in drawn])
        share = np.concatenate([c.user_share for c in drawn])
        for c in drawn:
            assert np.all(c.user_sizes.sum(1, dtype=np.int64) + c.item_sizes.sum(1, dtype=np.int64) == budget.params)
        rows.append([name, len(user_sizes), *width_stats(user_sizes, share, budget.d_max), f"{seconds:.3f}"])
        for field_name, counts in sampler.counts.items():
            path_rows.append([name, field_name, *(counts[k] for k in ("draws", "overflowed", "redraws", "fallbacks", "repaired"))])

    text = header(
        f"BET's sampler: widths and paths ({args.dataset}, sparsity {args.sparsity})",
        f"python -m bench.sampler_widths --dataset={args.dataset} --data_path={args.data_path} --sparsity={args.sparsity}",
        f"{args.batches} batches of m={args.candidates} per setting, each from np.random.default_rng(0); {len(users):,} users, "
        f"{len(items):,} items, budget {budget.params:,} parameters. Spread: a candidate's max ÷ mean user width. "
        "Band: user share w in [0.85, 0.97]. Every candidate uses the budget exactly (checked).",
    )
    text += markdown_table(["sampler", "candidates", "median spread", "a user at 128", "equal users", "in band",
                            "band: spread / at 128 / equal", "s per batch"], rows)
    text += "\nHow often each path ran (first draws, draws above d_max, redraws, fallbacks to the repair after the tries, repaired):\n\n"
    text += markdown_table(["sampler", "field", "draws", "overflowed", "redraws", "fallbacks", "repaired"], path_rows)
    write(f"sampler_widths-{args.dataset}-{args.sparsity:g}.md", text)


if __name__ == "__main__":
    main()
