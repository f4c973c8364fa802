"""What keeping a run's progress after every epoch costs (``recbole_bet.resume``): the time and the bytes written.

    python -m bench.resume_cost --dataset=gowalla-s --data_path=../shared/datasets --keep_every=1,5
    python -m bench.resume_cost --dataset=gowalla --data_path=../shared/datasets --epochs=3 --keep_every=1,3

One run of equal sizes (``--method=es``, sparsity 0.9, LightGCN) with checkpoints, in this process. Its final
training keeps, after each validation, the weights, the optimiser and the random streams (the unit
``<budget>/final-epochs``), and, when the epoch is the new best, a hard link to RecBole's checkpoint of it
(``...-best``: no bytes written). The table splits an epoch's time into training, validation, RecBole's own checkpoint (written
when the best improves; the run writes it with or without resume) and the resume units, and gives the bytes the
state unit writes per epoch. The units' share of the epoch is the cost of being able to continue a killed run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

from bench.common import header, markdown_table, write
from recbole_bet.quick_start import run_recbole_bet
from recbole_bet.resume import KeptEpochs, RunState
from recbole_bet.trainer import BudgetTrainer


def timed(owner, name: str, seconds: dict, calls: dict):
    """Wrap ``owner.name`` so that its calls and their time add up in ``seconds[name]`` and ``calls[name]``."""
    real = getattr(owner, name)

    def wrapper(*args, **kwargs):
        start = time.perf_counter()
        try:
            return real(*args, **kwargs)
        finally:
            seconds[name] += time.perf_counter() - start
            calls[name] += 1

    setattr(owner, name, wrapper)
    return real


def measure(args, keep_every: int, seconds: dict, calls: dict, written: list) -> list:
    """One ES run with ``keep_every``: its table row."""
    seconds.clear()
    calls.clear()
    written.clear()
    keys = {"method": "es", "sparsity": 0.9, "seed": args.seed, "show_progress": False, "state": "WARNING",
            "keep_every": keep_every}
    if args.data_path:
        keys["data_path"] = str(Path(args.data_path).resolve())
    if args.epochs:
        keys["epochs"] = args.epochs
    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config reads sys.argv itself: this script's are not its keys
    try:
        with tempfile.TemporaryDirectory() as folder:
            keys["checkpoint_dir"] = folder
            result = run_recbole_bet("LightGCN", args.dataset, config_dict=keys)
    finally:
        sys.argv = argv
    epochs = calls["_train_epoch"]
    per_epoch = {name: seconds[name] / epochs for name in ("_train_epoch", "_valid_epoch", "_save_checkpoint", "keep")}
    epoch = sum(per_epoch.values())
    return [
        args.dataset, keep_every, epochs, f"{per_epoch['_train_epoch']:.2f}", f"{per_epoch['_valid_epoch']:.2f}",
        f"{per_epoch['_save_checkpoint']:.3f} ({calls['_save_checkpoint']}x)",
        f"{per_epoch['keep']:.3f}", f"{100 * per_epoch['keep'] / epoch:.1f}%",
        f"{sum(written) / epochs / 1e6:.1f}", f"{result['test']['ndcg@20']:.4f}",
    ]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default=None)
    parser.add_argument("--epochs", type=int, default=None, help="cap on the final training's epochs (default: the run's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep_every", default="1,5", help="values of keep_every, one run each (comma-separated)")
    args = parser.parse_args(argv)

    seconds, calls, written = defaultdict(float), defaultdict(int), []
    for name in ("_train_epoch", "_valid_epoch", "_save_checkpoint"):
        timed(BudgetTrainer, name, seconds, calls)
    timed(KeptEpochs, "keep", seconds, calls)  # an epoch's resume unit (or, between two kept ones, the count)
    real_save = RunState.save

    def save(self, name, value):  # the bytes each kept unit writes
        real_save(self, name, value)
        written.append(self._path(name).stat().st_size)

    RunState.save = save
    rows = [measure(args, int(every), seconds, calls, written) for every in args.keep_every.split(",")]
    columns = ["dataset", "keep_every", "epochs", "train s/epoch", "valid s/epoch",
               "RecBole checkpoint s/epoch (times written)", "resume units s/epoch", "resume share of an epoch",
               "state MB/epoch", "test N@20"]
    command = "python -m bench.resume_cost " + " ".join(f"--{k}={v}" for k, v in vars(args).items() if v is not None)
    text = header(f"Cost of per-epoch resume, {args.dataset}", command,
                  "One ES run (LightGCN, sparsity 0.9) with checkpoints per value of keep_every (a training's progress "
                  "kept every that many validations); times per epoch of its final training. The test metric is the "
                  "same for every value: keep_every changes what is written, not what is computed.")
    write(f"resume_cost-{args.dataset}.md", text + markdown_table(columns, rows))


if __name__ == "__main__":
    main()
