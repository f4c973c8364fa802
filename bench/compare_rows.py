"""Rows of a re-run beside the rows they replace: the same result file names in two sweep folders.

    python -m bench.compare_rows --old=bench/results/sweep --new=bench/results/sweep-v2 --dataset=gowalla-s \\
        --out=bench/results/sweep-v2

For each result file of ``--new/<dataset>/`` whose name is also in ``--old/<dataset>/``: validation and test N@20 (and
R@20) old and new, the parameters used against the budget, the final training's epochs and the wall time. The old rows
stay where they are (the history); this only sets them side by side. Writes ``compare-<dataset>.md`` into ``--out``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from bench.common import markdown_table, write

COLUMNS = ["run", "valid N@20 old", "valid N@20 new", "test N@20 old", "test N@20 new", "test N@20 new - old",
           "test R@20 old", "test R@20 new", "params used old", "params used new", "minutes old", "minutes new"]


def pairs(old: Path, new: Path, dataset: str) -> list[tuple[str, dict, dict]]:
    """``(run name, old result, new result)`` for every complete result file of ``new/dataset`` also in ``old/dataset``."""
    found = []
    for path in sorted((new / dataset).glob("*.json")):
        before = old / dataset / path.name
        if path.name.endswith(".error.json") or not before.is_file():
            continue
        after_result, before_result = json.loads(path.read_text()), json.loads(before.read_text())
        if after_result.get("test") and before_result.get("test"):
            found.append((path.stem, before_result, after_result))
    return found


def share(result: dict) -> str:
    return f"{result['used_params']:,} ({result['used_params'] / result['budget_params']:.1%})"


def row(name: str, old: dict, new: dict) -> list:
    return [name, old["valid"]["ndcg@20"], new["valid"]["ndcg@20"], old["test"]["ndcg@20"], new["test"]["ndcg@20"],
            f"{new['test']['ndcg@20'] - old['test']['ndcg@20']:+.4f}", old["test"]["recall@20"], new["test"]["recall@20"],
            share(old), share(new), round(old["seconds"] / 60, 1), round(new["seconds"] / 60, 1)]


def main(argv=None) -> str:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--old", required=True)
    parser.add_argument("--new", required=True)
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    found = pairs(Path(args.old), Path(args.new), args.dataset)
    machines = sorted({new.get("machine", "?") for _, _, new in found})
    text = (f"# {args.dataset}: re-run rows ({args.new}) beside the rows they replace ({args.old})\n\n"
            f"New rows measured on: {'; '.join(machines)}. Minutes are wall time on a shared machine.\n\n"
            + markdown_table(COLUMNS, [row(*pair) for pair in found]))
    write(f"compare-{args.dataset}.md", text, args.out or args.new)
    return text


if __name__ == "__main__":
    main()
