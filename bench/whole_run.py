"""Whole-run cost of BET against training the full table once, for the paper's schedule and the fast profile.

    python -m bench.whole_run --dataset=gowalla-s --data_path=../shared/datasets --profiles=fast:bet_retrain_top=1,fast,paper --seeds=2020

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


def run(name: str, keys: list[str], seed: int, args) -> dict:
    out = RESULTS / "whole_run" / f"{args.dataset}-{args.sparsity}-s{seed}-{name}.json"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, str(ROOT / "run_recbole_bet.py"), "--model=LightGCN", f"--dataset={args.dataset}",
            f"--data_path={Path(args.data_path).resolve()}", f"--sparsity={args.sparsity}", f"--seed={seed}",
            "--show_progress=False", f"--result_file={out}", *keys,
        ]
        print("running", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def row(label: str, results: list[dict], fulls: list[dict]) -> list[str]:
    mean = statistics.mean
    split = "-"
    if "bet" in results[0]:
        split = " / ".join(f"{mean(r['bet']['seconds'][phase] for r in results):.0f}" for phase in ("pretrain", "search", "retrain"))
    return [
        label,
        f"{mean(r['seconds'] for r in results):.0f}",
        f"{mean(r['seconds'] / f['seconds'] for r, f in zip(results, fulls)):.2f}",
        split,
        f"{mean(r['test']['recall@20'] for r in results):.4f}",
        f"{mean(r['test']['ndcg@20'] for r in results):.4f}",
        " / ".join(f"{r['test']['ndcg@20']:.4f}" for r in results),
    ]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--sparsity", type=float, default=0.9)
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
    runs = {name: [] for _, name, _ in variants}
    for seed in seeds:  # the full table first, then each profile
        for _, name, keys in variants:
            runs[name].append(run(name, keys, seed, args))
    # a run kept from an earlier invocation can predate the full-table run its ratio divides by
    earlier = {
        name for name in runs
        if any(r["measured"] < f["measured"] for r, f in zip(runs[name], runs["full"]))
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
        f"python -m bench.whole_run --dataset={args.dataset} --data_path={args.data_path} --profiles={args.profiles} --seeds={args.seeds}",
        "Profiles are properties/method/bet/*.yaml; training protocol as in properties/overall.yaml (Adam, lr 0.01, "
        "batch 2048, early stopping on validation NDCG@20 with patience 20). Test metrics on the test split, "
        f"which no choice ever sees. Means over {len(seeds)} seed(s); 'x full' is the mean of each seed's ratio "
        "to that seed's full table, measured just before it.",
    ) + markdown_table(
        ["run", "wall s", "x full", "pretrain / search / retrain s", "test R@20", "test N@20", "test N@20 by seed"], rows
    ) + note
    write(f"whole_run-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
