"""Peak resident memory of a BET search, measured by /usr/bin/time -v around a real run.

    python -m bench.memory --dataset=gowalla --data_path=../shared/datasets

Runs ``run_recbole_bet.py --method=bet`` with a short schedule (the search's
memory does not grow with T beyond the population, one int16 per row per
measured action) and reads "Maximum resident set size". Target (issue 4): at
most 3 GB on full Gowalla; the authors' code needs more than 10 GB there.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import header, markdown_table, write

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument(
        "--schedule",
        default="--epochs=1 --bet_iterations=3 --bet_candidates=100 --bet_finetune_epochs=1 --bet_retrain_top=1",
        help="BET keys of the short run",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory() as folder:
        command = [
            sys.executable, str(ROOT / "run_recbole_bet.py"), "--model=LightGCN", f"--dataset={args.dataset}",
            f"--data_path={Path(args.data_path).resolve()}", "--method=bet", "--show_progress=False",
            f"--checkpoint_dir={folder}/saved", *args.schedule.split(),
        ]
        start = time.time()
        run = subprocess.run(["/usr/bin/time", "-v", *command], capture_output=True, text=True, cwd=folder)
        seconds = time.time() - start
    if run.returncode:
        sys.exit(f"the run failed:\n{run.stderr[-3000:]}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr).group(1))
    text = header(
        f"Peak memory of a BET search ({args.dataset})",
        f"python -m bench.memory --dataset={args.dataset} --data_path={args.data_path}",
        f"Run: `run_recbole_bet.py --model=LightGCN --dataset={args.dataset} --method=bet {args.schedule}` under `/usr/bin/time -v`.",
    ) + markdown_table(
        ["dataset", "schedule", "peak RSS (GB)", "target", "wall s"],
        [[args.dataset, args.schedule, f"{peak_kb * 1024 / 1e9:.2f}", "<= 3 GB", f"{seconds:.0f}"]],
    )
    write(f"memory-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
