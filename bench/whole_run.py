"""Whole-run cost of BET against training the full table once, for the paper's schedule and the fast profile.

    python -m bench.whole_run --dataset=gowalla-s --data_path=../shared/datasets --profiles=fast,fast:bet_retrain_top=1,paper

Each row is one run of ``run_recbole_bet.py`` (LightGCN, one seed) writing its
result JSON under bench/results/whole_run/; a finished row is not run again,
so an interrupted benchmark loses nothing. Target (issue 4): BET within 3x the
wall time of the full table, at test quality equal to or better than the
paper-faithful schedule.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, header, markdown_table, write

ROOT = Path(__file__).resolve().parents[1]


def run(name: str, keys: list[str], args) -> dict:
    out = RESULTS / "whole_run" / f"{args.dataset}-{args.sparsity}-{name}.json"
    if not out.is_file():
        out.parent.mkdir(parents=True, exist_ok=True)
        command = [
            sys.executable, str(ROOT / "run_recbole_bet.py"), "--model=LightGCN", f"--dataset={args.dataset}",
            f"--data_path={Path(args.data_path).resolve()}", f"--sparsity={args.sparsity}", f"--seed={args.seed}",
            "--show_progress=False", f"--result_file={out}", *keys,
        ]
        print("running", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=2020)
    parser.add_argument(
        "--profiles", default="fast,paper",
        help="comma-separated profiles; a profile may carry key overrides after colons, e.g. fast:bet_retrain_top=1",
    )
    args = parser.parse_args(argv)

    full = run("full", ["--method=full"], args)
    rows = [["full table (reference)", f"{full['seconds']:.0f}", "1.00", "-", f"{full['test']['recall@20']:.4f}", f"{full['test']['ndcg@20']:.4f}"]]
    for spec in args.profiles.split(","):
        profile, *overrides = spec.split(":")
        name = "bet-" + spec.replace(":", "-").replace("=", "-")  # no '=' in a --result_file path (the CLI refuses it)
        result = run(name, ["--method=bet", f"--bet_profile={profile}", *(f"--{o}" for o in overrides)], args)
        split = result["bet"]["seconds"]
        rows.append([
            f"BET, profile {profile}" + "".join(f", {o}" for o in overrides),
            f"{result['seconds']:.0f}",
            f"{result['seconds'] / full['seconds']:.2f}",
            f"{split['pretrain']:.0f} / {split['search']:.0f} / {split['retrain']:.0f}",
            f"{result['test']['recall@20']:.4f}",
            f"{result['test']['ndcg@20']:.4f}",
        ])
    text = header(
        f"Whole-run cost of BET ({args.dataset}, LightGCN, sparsity {args.sparsity}, seed {args.seed})",
        f"python -m bench.whole_run --dataset={args.dataset} --data_path={args.data_path} --profiles={args.profiles}",
        "Profiles are properties/profile/*.yaml; training protocol as in properties/overall.yaml (Adam, lr 0.01, "
        "batch 2048, early stopping on validation NDCG@20 with patience 20). Test metrics on the test split, "
        "which no choice ever sees.",
    ) + markdown_table(["run", "wall s", "x full", "pretrain / search / retrain s", "test R@20", "test N@20"], rows)
    write(f"whole_run-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
