"""Issue 33's ablation of BET's search: one table row per result file, with what the search found and why.

    python -m bench.bet_ablation bench/results/issue33-ablation/*.json \
        --reference=bench/results/bet-scratch/gowalla-s/LightGCN-bet-0.9-s0.json \
        --reference=bench/results/sweep/gowalla-s/LightGCN-optembed-0.9-s0.json

Per run: validation and test N@20 (choices are made on validation), the chosen layout (user share of the used
parameters, user and item widths), the best search fitness, the mean fitness of the actions each selection strategy
picked (I greedy on the predictor, II random, III nearest neighbour), Spearman's rho between fitness and retrained
quality where three or more actions were retrained, how often the sampler redrew, and the minutes of each phase.
The keys each run changed from ``--bet_profile=fast`` are listed under the table.
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

from bench.common import header, markdown_table, write
from recbole_bet.config import BetConfig
from recbole_bet.methods.bet.settings import BetSettings


def layout(result: dict) -> list:
    sizes, used = result["sizes"], result["used_params"]
    users, items = sizes["users"], sizes["items"]
    share = users["mean"] * result["n_users"] / used
    return [f"{share:.2f}", f"{users['min']}-{users['max']} ({users['mean']:.1f})", f"{items['min']}-{items['max']} ({items['mean']:.1f})"]


def strategies(records: list) -> str:
    by = {}
    for record in records:
        by.setdefault(record["strategy"], []).append(record["measured"])
    return " / ".join(f"{k} {sum(v) / len(v):.3f}" for k, v in sorted(by.items()))


def row(name: str, result: dict) -> list:
    valid, test = result["valid"]["ndcg@20"], result["test"]["ndcg@20"]
    bet = result.get("bet")
    if bet is None:  # another method's reference row
        return [name, f"{valid:.4f}", f"{test:.4f}", *layout(result), "-", "-", "-", "-", f"{result['seconds'] / 60:.1f}"]
    records = result["search"]
    correlation = (bet.get("rank_correlation") or {}).get("spearman")
    users = (bet.get("sampler") or {}).get("users")
    redraws = f"{users['redraws']} / {users['draws']}" if users else "-"
    phases = " + ".join(f"{v / 60:.1f}" for v in bet["seconds"].values())
    return [name, f"{valid:.4f}", f"{test:.4f}", *layout(result), f"{max(r['measured'] for r in records):.4f}", strategies(records),
            "-" if correlation is None else f"{correlation:.2f}", redraws, f"{result['seconds'] / 60:.1f} ({phases})"]


@functools.lru_cache(maxsize=None)  # one config per backbone, not one per result file
def fast_settings(model: str) -> dict:
    """BET's keys under ``--bet_profile=fast`` for ``model``, as a run reads them (the profile over bet.yaml); not to
    be changed by the caller (cached)."""
    return vars(BetSettings.from_config(BetConfig(model, "ml-100k", config_dict={"bet_profile": "fast"})))


def changed(result: dict, fast: dict) -> str:
    """The keys a BET run set otherwise than ``fast`` (:func:`fast_settings` of its backbone)."""
    settings = (result.get("bet") or {}).get("settings") or {}
    plain = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731  (JSON lists, settings' tuples)
    diff = {k: v for k, v in settings.items() if k in fast and k != "bet_profile" and plain(fast[k]) != plain(v)}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "none"


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--reference", action="append", default=[], help="a result file shown first (the baseline, OptEmbed)")
    parser.add_argument("--out", default="bench/results/issue33-ablation")
    parser.add_argument("--name", default="ablation-gowalla-s-LightGCN-0.9")
    args = parser.parse_args(argv)
    rows, notes, runs = [], [], []
    for path in args.reference + args.results:
        result = json.loads(Path(path).read_text())
        runs.append(result)
        # a reference is named by its sweep folder too (bet-scratch/..., bet-plus-fast/...): their file names repeat
        name = f"{Path(path).parents[1].name}/{Path(path).stem}" if path in args.reference else Path(path).stem
        rows.append(row(name, result))
        if result.get("bet"):
            notes.append(f"- `{name}`: {changed(result, fast_settings(result['model']))}")
    text = header(
        "BET's search, issue 33 ablation",
        "python -m bench.bet_ablation " + " ".join(f"--reference={r}" for r in args.reference) + " " + " ".join(args.results),
        f"Seeds {', '.join(sorted({str(r['seed']) for r in runs}))}, {', '.join(sorted({r['dataset'] for r in runs}))}, "
        f"{', '.join(sorted({r['model'] for r in runs}))}, sparsity {', '.join(sorted({str(r['sparsity']) for r in runs}))}; "
        "every choice on validation. Share: the users' part of the used "
        "parameters. Strategies: mean fitness of the actions each strategy picked. rho: Spearman, fitness vs retrained "
        "validation quality. Redraws: user draws made again / first draws. Minutes: whole run (pretrain + search + retrain), "
        "on a machine shared with other jobs, so the wall times vary with the load.",
    )
    text += markdown_table(["run", "valid N@20", "test N@20", "user share", "users min-max (mean)", "items min-max (mean)",
                            "best fitness", "strategies", "rho", "redraws", "minutes"], rows)
    text += "\nKeys each BET run set beside `--bet_profile=fast`:\n\n" + "\n".join(notes) + "\n"
    write(f"{args.name}.md", text, args.out)


if __name__ == "__main__":
    main()
