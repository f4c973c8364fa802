"""Runs that share the cores: LightGCN's median training epoch alone, two runs at once, and beside a busy process.

    python -m bench.contention --datasets=ml-100k,gowalla-s --data_path=../shared/datasets --epochs=8

Each run is a process of its own (OpenMP reads its wait policy when torch loads), through ``run_recbole_bet`` with
every training epoch timed. The variants:

* ``ours``: ES at sparsity 0.9 with what :mod:`recbole_bet.threads` sets (the default: ``GOMP_SPINCOUNT=1000``, a
  short spin before an idle thread sleeps);
* ``ours-passive``: the same with ``OMP_WAIT_POLICY=PASSIVE`` (no spin at all: the remedy first chosen);
* ``ours-defaults``: the same with ``RECBOLE_BET_THREADS=off`` (torch's and OpenMP's defaults, as before);
* ``ours-1thread``: ``OMP_NUM_THREADS=1``: the target's reference;
* ``recbole``, ``recbole-defaults``: ``--method=recbole``, RecBole's own LightGCN under our pipeline, with and without.

The conditions: (a) alone; (b) two runs of the variant started together (a barrier: both start their first epoch at
the same moment); (c) beside a single-thread busy loop (``python -c "while True: pass"``). Target (issue 37): ours
in (b) within 1.5x of ``ours-1thread`` in (b), and ours in (a) no more than 5% above ``ours-defaults`` in (a).
The machine must be otherwise quiet: the table gives the 1-minute load before each dataset's measurements.
"""

from recbole_bet.threads import OFF, THREAD_KEYS, WAIT_KEYS  # first: the package's thread settings go into the environment before torch loads

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

from bench.common import header, markdown_table, write
from recbole_bet.quick_start import run_recbole_bet
from recbole_bet.trainer import BudgetTrainer

ROOT = Path(__file__).resolve().parents[1]
# name: (method, environment added to the run's)
VARIANTS = {
    "ours": ("es", {}),
    "ours-passive": ("es", {"OMP_WAIT_POLICY": "PASSIVE"}),
    "ours-defaults": ("es", {OFF: "off"}),
    "ours-1thread": ("es", {"OMP_NUM_THREADS": "1"}),
    "recbole": ("recbole", {}),
    "recbole-defaults": ("recbole", {OFF: "off"}),
}
CONDITIONS = ("alone", "two at once", "beside a busy process")
# what the user's shell may have set that would make every variant alike
CLEARED = (*THREAD_KEYS, *WAIT_KEYS, OFF)


# ---- one run (a process of its own) ---------------------------------------------------------------


def worker(args) -> None:
    """Train ``args.epochs`` epochs, timing each; wait at the barrier (``<go>``) before the first; write the times."""
    times, real = [], BudgetTrainer._train_epoch

    def timed(self, train_data, epoch_idx, *rest, **keys):
        if not times:  # the first epoch: every run of the cell starts it at once
            Path(f"{args.go}.ready.{os.getpid()}").touch()
            while not Path(args.go).exists():
                time.sleep(0.005)
        start = time.perf_counter()
        loss = real(self, train_data, epoch_idx, *rest, **keys)
        times.append(time.perf_counter() - start)
        return loss

    BudgetTrainer._train_epoch = timed
    with tempfile.TemporaryDirectory() as folder:
        run_recbole_bet("LightGCN", args.dataset, config_dict={
            "method": args.method, "sparsity": 0.9, "epochs": args.epochs, "eval_step": args.epochs,
            "data_path": args.data_path, "checkpoint_dir": folder, "export_table": False, "show_progress": False,
            "state": "WARNING"})
    Path(args.out).write_text(json.dumps({"times": times, "threads": torch.get_num_threads(),
                                          "wait_policy": wait_policy()}))


# ---- the measurements ------------------------------------------------------------------------------


def wait_policy() -> str | None:
    """How this process's OpenMP threads wait, as its environment sets it (None: OpenMP's default)."""
    if os.environ.get("OMP_WAIT_POLICY"):
        return os.environ["OMP_WAIT_POLICY"]
    return f"spin {os.environ['GOMP_SPINCOUNT']}" if os.environ.get("GOMP_SPINCOUNT") else None


def measure(dataset: str, variant: str, condition: str, args, scratch: Path) -> list[dict]:
    """Start the runs of one cell (one, or two at once; beside a busy loop for (c)), release them together, and
    return each run's record (its epoch times, threads, wait policy)."""
    method, extra = VARIANTS[variant]
    environ = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environ.update(extra)
    go = scratch / f"go-{time.monotonic_ns()}"
    runs = 2 if condition == "two at once" else 1
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if condition == "beside a busy process" else None
    outs = [scratch / f"{go.name}-{i}.json" for i in range(runs)]
    command = [sys.executable, "-m", "bench.contention", "--worker", f"--dataset={dataset}", f"--data_path={args.data_path}",
               f"--method={method}", f"--epochs={args.epochs}", f"--go={go}"]
    processes = [subprocess.Popen(command + [f"--out={out}"], cwd=ROOT, env=environ, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, text=True) for out in outs]
    try:
        while len(list(scratch.glob(f"{go.name}.ready.*"))) < runs:
            if any(p.poll() is not None for p in processes):
                break
            time.sleep(0.01)
        go.touch()
        for process in processes:
            _, error = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"{variant} on {dataset} ({condition}) failed:\n{error[-3000:]}")
    finally:
        if busy is not None:
            busy.kill()
            busy.wait()
    return [json.loads(out.read_text()) for out in outs]


def one_minute_load() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def cell(records: list[dict]) -> str:
    """The median epoch of each run of a cell, in seconds."""
    return " / ".join(f"{statistics.median(r['times']):.2f}" for r in records)


def worst(records: list[dict]) -> float:
    return max(statistics.median(r["times"]) for r in records)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="ml-100k,gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--variants", default=",".join(VARIANTS), help="a comma-separated subset of: " + ", ".join(VARIANTS))
    parser.add_argument("--out", help="folder of the table (default bench/results); a worker's: its record's file")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    for hidden in ("--dataset", "--method", "--go"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    variants = [v.strip() for v in args.variants.split(",")]
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"unknown variant {unknown[0]!r}; allowed: {', '.join(VARIANTS)}")
    args.data_path = str(Path(args.data_path).resolve())
    rows, verdicts = [], []
    with tempfile.TemporaryDirectory() as scratch:
        for dataset in args.datasets.split(","):
            load = one_minute_load()
            found = {(v, c): measure(dataset, v, c, args, Path(scratch)) for v in variants for c in CONDITIONS}
            for variant in variants:
                threads = found[variant, "alone"][0]
                rows.append([dataset, variant, f"{threads['threads']}, {threads['wait_policy'] or 'OpenMP default'}",
                             *(cell(found[variant, c]) for c in CONDITIONS), f"{load:.2f}"])
            verdicts += verdict(dataset, found)
    columns = ["dataset", "run", "threads, wait policy", "(a) alone", "(b) two at once", "(c) beside a busy process",
               "load before"]
    command = "python -m bench.contention " + " ".join(argv if argv is not None else sys.argv[1:])
    note = ("Median training epoch in seconds (each run of a cell; LightGCN, ES at sparsity 0.9 for ours, "
            f"{args.epochs} epochs a run).\n\n" + "\n".join(f"- {line}" for line in verdicts))
    write("contention.md", header("Runs that share the cores", command, note) + markdown_table(columns, rows), args.out)


def verdict(dataset: str, found: dict) -> list[str]:
    """The issue's two targets, as measured, where the variants they compare were run."""
    lines = []
    if ("ours", "two at once") in found and ("ours-1thread", "two at once") in found:
        ratio = worst(found["ours", "two at once"]) / worst(found["ours-1thread", "two at once"])
        lines.append(f"{dataset}: ours two at once {ratio:.2f}x two one-thread runs at once (target <= 1.5x)")
    if ("ours", "alone") in found and ("ours-defaults", "alone") in found:
        cost = worst(found["ours", "alone"]) / worst(found["ours-defaults", "alone"]) - 1
        lines.append(f"{dataset}: ours alone {cost:+.1%} against OpenMP's defaults (target <= +5%)")
    return lines


if __name__ == "__main__":
    main()
