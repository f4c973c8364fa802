"""Whole-run cost of BET against training the full table once, for the paper's schedule and the fast profile.

    python -m bench.whole_run --dataset=gowalla-s --data_path=../shared/datasets --profiles=fast:bet_retrain_top=1,fast,paper --seeds=2020
    python -m bench.whole_run --dataset=gowalla-s --data_path=../shared/datasets --sparsity=0.8,0.9,0.95 --profiles=fast --seeds=0,1,2

With several sparsities, each profile is one run of all of them (``--sparsity=0.8,0.9,0.95``: one pretraining),
its cost the whole run's against one full-table training, and a second table puts each budget's test N@20 beside
the separate runs of the sweep (``bench/results/sweep/<dataset>/LightGCN-bet-<s>-s<seed>.json``, same seeds).

Each run is one ``run_recbole_bet.py`` (LightGCN) writing its result JSON under
bench/results/whole_run/; a finished run is not run again, so an interrupted
benchmark loses nothing. Seed by seed, the full table runs first, then each
profile; a row gives the means over seeds, its ratio the mean of each seed's
ratio to that seed's full table. Target (issue 4): BET within 3x the wall time
of the full table, at test quality equal to or better than the paper-faithful
schedule.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, header, markdown_table, write

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, keys: list[str], seed: int, args, sparsity: str | None = None) -> list[dict]:
    """One run's result per budget (read back if it was run before)."""
    sparsity = sparsity or args.sparsity
    out = RESULTS / "whole_run" / f"{args.dataset}-{sparsity.replace(',', '-')}-s{seed}-{name}.json"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, str(ROOT / "run_recbole_bet.py"), "--model=LightGCN", f"--dataset={args.dataset}",
            f"--data_path={Path(args.data_path).resolve()}", f"--sparsity={sparsity}", f"--seed={seed}",
            "--show_progress=False", f"--result_file={out}", *keys,
        ]
        print("running", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    result = json.loads(out.read_text())
    return result if isinstance(result, list) else [result]


def seconds(budgets: list[dict]) -> float:
    """A run's wall time: its budgets' (the first one's holds the data loading and the shared phases)."""
    return sum(r["seconds"] for r in budgets)


def row(label: str, runs: list[list[dict]], fulls: list[list[dict]]) -> list[str]:
    """Means over seeds; ``runs``: per seed, the run's result per budget."""
    mean = statistics.mean
    split = "-"
    if "bet" in runs[0][0]:
        split = " / ".join(f"{mean(sum(r['bet']['seconds'][phase] for r in budgets) for budgets in runs):.0f}"
                           for phase in ("pretrain", "search", "retrain"))
    by_budget = lambda metric: " / ".join(f"{mean(budgets[i]['test'][metric] for budgets in runs):.4f}" for i in range(len(runs[0])))
    return [
        label,
        f"{mean(seconds(budgets) for budgets in runs):.0f}",
        f"{mean(seconds(budgets) / seconds(full) for budgets, full in zip(runs, fulls)):.2f}",
        split,
        by_budget("recall@20"),
        by_budget("ndcg@20"),
        " / ".join(" ".join(f"{r['test']['ndcg@20']:.4f}" for r in budgets) for budgets in runs),
    ]


def beside_separate_runs(variants, runs: dict, seeds: list[int], sparsities: list[str], dataset: str) -> str:
    """Each budget's test N@20 in one run of all budgets beside the sweep's separate runs of that budget."""
    sweep = RESULTS / "sweep" / dataset
    rows = []
    for i, sparsity in enumerate(sparsities):
        files = [sweep / f"LightGCN-bet-{float(sparsity)}-s{seed}.json" for seed in seeds]
        separate = [json.loads(f.read_text())["test"]["ndcg@20"] for f in files if f.is_file()]
        spread = (f"{statistics.mean(separate):.4f} ± {statistics.stdev(separate):.4f} ({min(separate):.4f}-{max(separate):.4f}, "
                  f"{len(separate)} seeds)") if len(separate) > 1 else "-"
        for label, name, _ in variants[1:]:
            mine = statistics.mean(budgets[i]["test"]["ndcg@20"] for budgets in runs[name])
            inside = "-" if len(separate) < 2 else ("below" if mine < min(separate) else "above" if mine > max(separate) else "yes")
            rows.append([sparsity, label, f"{mine:.4f}", spread, inside])
    return markdown_table(["sparsity", "run of all budgets", "test N@20 (mean)", "separate runs (sweep, profile fast)",
                           "within the separate runs' range (or above, below)"], rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--sparsity", default="0.9", help="a sparsity, or several (0.8,0.9,0.95) run in one run")
    parser.add_argument("--seeds", default="2020", help="comma-separated seeds")
    parser.add_argument(
        "--profiles", default="fast,paper",
        help="comma-separated profiles; a profile may carry key overrides after colons, e.g. fast:bet_retrain_top=1",
    )
    args = parser.parse_args(argv)
    try:
        seeds = [int(seed) for seed in args.seeds.split(",")]
    except ValueError:
        parser.error(f"--seeds={args.seeds}: comma-separated integers, e.g. 2020,0,1")

    # spec "profile:key=value:..." -> (row label, file name, run keys); no '=' in a --result_file path (the CLI refuses it)
    variants = [("full table (reference)", "full", ["--method=full"])]
    for spec in args.profiles.split(","):
        profile, *overrides = spec.split(":")
        variants.append((
            f"BET, profile {profile}" + "".join(f", {o}" for o in overrides),
            "bet-" + spec.replace(":", "-").replace("=", "-"),
            ["--method=bet", f"--bet_profile={profile}", *(f"--{o}" for o in overrides)],
        ))
    sparsities = args.sparsity.split(",")
    runs = {name: [] for _, name, _ in variants}
    for seed in seeds:  # the full table first (one training: the first sparsity names it), then each profile
        for _, name, keys in variants:
            runs[name].append(run(name, keys, seed, args, sparsities[0] if name == "full" else None))
    # a run kept from an earlier invocation can predate the full-table run its ratio divides by
    earlier = {
        name for name in runs
        if any(r[0]["measured"] < f[0]["measured"] for r, f in zip(runs[name], runs["full"]))
    }
    rows = [row(label + (" *" if name in earlier else ""), runs[name], runs["full"]) for label, name, _ in variants]
    note = (
        "\n\\* measured before its seed's full-table run (kept from an earlier invocation of this "
        "benchmark): its ratio divides by a full-table time measured later, and the machine's speed "
        "can drift in between.\n"
        if earlier else ""
    )
    text = header(
        f"Whole-run cost of BET ({args.dataset}, LightGCN, sparsity {args.sparsity}, seeds {args.seeds})",
        f"python -m bench.whole_run --dataset={args.dataset} --data_path={args.data_path} --sparsity={args.sparsity} "
        f"--profiles={args.profiles} --seeds={args.seeds}",
        "Profiles are properties/method/bet/*.yaml; training protocol as in properties/overall.yaml (Adam, lr 0.01, "
        "batch 2048, early stopping on validation NDCG@20 with patience 20). Test metrics on the test split, "
        f"which no choice ever sees. Means over {len(seeds)} seed(s); 'x full' is the mean of each seed's ratio "
        "to that seed's full table, measured just before it.",
    ) + markdown_table(
        ["run", "wall s", "x full", "pretrain / search / retrain s",
         *(f"test {m} ({' / '.join(sparsities)})" if len(sparsities) > 1 else f"test {m}" for m in ("R@20", "N@20")),
         "test N@20 by seed"], rows
    ) + note
    if len(sparsities) > 1:
        text += "\nEach budget beside its separate runs:\n\n" + beside_separate_runs(variants, runs, seeds, sparsities, args.dataset)
    write(f"whole_run-{args.dataset}" + (f"-{'-'.join(sparsities)}" if len(sparsities) > 1 else "") + ".md", text)


if __name__ == "__main__":
    main()
