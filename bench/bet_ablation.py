"""Issue 33's ablation of BET's search: one table row per result file, with what the search found and why.

    python -m bench.bet_ablation bench/results/issue33-ablation/*.json \
        --reference=bench/results/bet-scratch/gowalla-s/LightGCN-bet-0.9-s0.json \
        --reference=bench/results/sweep/gowalla-s/LightGCN-optembed-0.9-s0.json

Per run: validation and test N@20 (choices are made on validation), the chosen layout (user share of the used
parameters, user and item widths), the best search fitness, the mean fitness of the actions each selection strategy
picked (I greedy on the predictor, II random, III nearest neighbour), Spearman's rho between fitness and retrained
quality where three or more actions were retrained, how often the sampler redrew, and the minutes of each phase.
The keys each run changed from ``--bet_profile=fast`` are listed under the table.

With ``--seeds`` the same files make one row per variant and sparsity instead, over the seeds each has: a variant is
the keys its runs changed from ``fast`` (files of one variant may carry different names; each name is shown), a
reference by its folder and method. The rows give the mean validation and test N@20, each seed's validation N@20 and
the paired p of the validation N@20 against the first reference at that sparsity; the variant to keep is the one with
the highest mean validation N@20 (marked), never the test's.

    python -m bench.bet_ablation --seeds --name=ablation-seeds-gowalla-s-LightGCN \
        --reference=bench/results/bet-scratch/gowalla-s/LightGCN-bet-0.9-s{0,1,2}.json ... \
        bench/results/issue33-ablation/D*.json

(the base of the p column: BET from scratch, the paper's sampler; the full command is in the table's header).
"""

from __future__ import annotations

import argparse
import functools
import json
from pathlib import Path

import numpy as np

from bench.common import header, markdown_table, write
from bench.table import layout_of, paired_p
from recbole_bet.config import config_from_keys
from recbole_bet.methods.bet.settings import BetSettings


def user_share(result: dict) -> float:
    """The users' part of the used parameters, as the benchmark's layouts table computes it."""
    return layout_of(result)["share"]


def layout(result: dict) -> list:
    users, items = result["sizes"]["users"], result["sizes"]["items"]
    return [f"{user_share(result):.2f}", f"{users['min']}-{users['max']} ({users['mean']:.1f})", f"{items['min']}-{items['max']} ({items['mean']:.1f})"]


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
    return vars(BetSettings.from_config(config_from_keys(model, "ml-100k", {"bet_profile": "fast"})))


def changed(result: dict, fast: dict) -> str:
    """The keys a BET run set otherwise than ``fast`` (:func:`fast_settings` of its backbone)."""
    settings = (result.get("bet") or {}).get("settings") or {}
    plain = lambda v: list(v) if isinstance(v, (list, tuple)) else v  # noqa: E731  (JSON lists, settings' tuples)
    diff = {k: v for k, v in settings.items() if k in fast and k != "bet_profile" and plain(fast[k]) != plain(v)}
    return ", ".join(f"{k}={v}" for k, v in diff.items()) or "none"


def variant_name(path: str, result: dict, reference: bool) -> str:
    """A reference's folder and method (bet-plus-fast/bet); otherwise the file's stem less "-<sparsity>-s<seed>"."""
    if reference:
        return f"{Path(path).parents[1].name}/{result['method']}"
    stem, suffix = Path(path).stem, f"-{result['sparsity']}-s{result['seed']}"
    return stem[: -len(suffix)] if stem.endswith(suffix) else stem


def variants(entries: list[tuple[str, dict, bool]]) -> dict:
    """{(sparsity, variant): {"names": [...], "reference": bool, "keys": str | None, "seeds": [...], "values":
    {"valid", "test": array}, "share": array}} (keys: what a BET variant changed from ``fast``; None for another
    method) from (path, result, is_reference) entries, in their order. Runs of one method
    with the same keys changed from ``fast`` are one variant; two runs of a variant at one seed and sparsity are an
    error (one would be lost)."""
    groups: dict = {}
    for path, result, reference in entries:
        keys = changed(result, fast_settings(result["model"])) if result.get("bet") else None
        # another method: one variant per folder
        key = (float(result["sparsity"]), result["method"], keys if keys is not None else Path(path).parents[1].name)
        group = groups.setdefault(key, {"names": [], "reference": reference, "keys": keys, "runs": {}})
        name = variant_name(path, result, reference)
        if name not in group["names"]:
            group["names"].append(name)
        if result["seed"] in group["runs"]:
            raise SystemExit(f"{path}: a second run of {' / '.join(group['names'])} at sparsity {key[0]}, "
                             f"seed {result['seed']}; give each variant one file per seed")
        group["runs"][result["seed"]] = result
    out = {}
    for (sparsity, _, _), group in groups.items():
        seeds = sorted(group["runs"])
        runs = [group["runs"][s] for s in seeds]
        out[(sparsity, " / ".join(group["names"]))] = {
            "names": group["names"], "reference": group["reference"], "keys": group["keys"], "seeds": seeds,
            "values": {m: np.array([r[m]["ndcg@20"] for r in runs]) for m in ("valid", "test")},
            "share": np.array([user_share(r) for r in runs]),
        }
    return out


def seed_rows(groups: dict) -> list[list]:
    """One row per variant; the first reference at each sparsity is the base of the p column, and the BET variant with
    the highest mean validation N@20 at each sparsity is marked as the one to keep (another method's row is there to
    compare with, not to be kept)."""
    rows = []
    for sparsity in sorted({s for s, _ in groups}):
        here = {name: g for (s, name), g in groups.items() if s == sparsity}
        base = next((name for name, g in here.items() if g["reference"]), None)
        bet = [name for name, g in here.items() if g["keys"] is not None]
        keep = max(bet, key=lambda name: here[name]["values"]["valid"].mean(), default=None)
        for name, g in here.items():
            p = None if name == base or base is None else paired_p(g, here[base], "valid")
            rows.append([sparsity, f"**{name}**" if name == keep else name, len(g["seeds"]),
                         f"{g['values']['valid'].mean():.4f}", f"{g['values']['test'].mean():.4f}",
                         " / ".join(f"{v:.4f}" for v in g["values"]["valid"]),
                         "base" if name == base else "-" if p is None else f"{p:.3f}", f"{g['share'].mean():.2f}"])
    return rows


def recorded_command(args) -> str:
    """The command that writes this table again (its name too: the default names the one-seed table)."""
    return " ".join(["python -m bench.bet_ablation"] + (["--seeds"] if args.seeds else [])
                    + [f"--reference={r}" for r in args.reference] + args.results + [f"--name={args.name}"])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+")
    parser.add_argument("--reference", action="append", default=[], help="a result file shown first (the baseline, OptEmbed)")
    parser.add_argument("--out", default="bench/results/issue33-ablation")
    parser.add_argument("--name", default="ablation-gowalla-s-LightGCN-0.9")
    parser.add_argument("--seeds", action="store_true", help="one row per variant and sparsity, means over seeds")
    args = parser.parse_args(argv)
    if args.seeds:
        return seeds_main(args)
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
        recorded_command(args),
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


def seeds_main(args) -> None:
    entries = [(path, json.loads(Path(path).read_text()), path in args.reference) for path in args.reference + args.results]
    groups = variants(entries)
    keys = {}  # each BET variant's keys, named once over the sparsities
    for (_, name), g in groups.items():
        if g["keys"] is not None:
            keys.setdefault(name, g["keys"])
    notes = [f"- `{name}`: {k}" for name, k in keys.items()]
    text = header(
        "BET's search, issue 33 ablation over seeds",
        recorded_command(args),
        f"{', '.join(sorted({r['dataset'] for _, r, _ in entries}))}, {', '.join(sorted({r['model'] for _, r, _ in entries}))}. "
        "One row per variant (the keys its runs changed from `fast`) and sparsity. Valid / test: mean N@20 over the "
        "seeds; per seed: each seed's validation N@20, seeds in order; p: paired t-test of the validation N@20 against "
        "the first reference at that sparsity, over the seeds both have; share: mean user share of the used parameters. "
        "**Bold**: the BET variant with the highest mean validation N@20 at that sparsity, the one the rule keeps "
        "(the test column is not used to choose).",
    )
    text += markdown_table(["sparsity", "variant", "seeds", "valid N@20", "test N@20", "valid per seed", "p (valid)", "share"],
                           seed_rows(groups))
    text += "\nKeys each variant set beside `--bet_profile=fast`:\n\n" + "\n".join(notes) + "\n"
    write(f"{args.name}.md", text, args.out)


if __name__ == "__main__":
    main()
