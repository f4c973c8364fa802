"""Serving a trained run from its model package (:mod:`recbole_bet.serve`) against RecBole's ``full_sort_topk``.

    python -m bench.serve --result_file=R.json [--result_file=R2.json ...]

For each finished run (its result file names the checkpoint; the package is the run's own, or written on demand):

* **bytes**: the package and its parts; the exported table; the run's own RecBole checkpoint (dense storage, masks,
  Adam's state, pickled Config); the dense model's checkpoint: RecBole's LightGCN of the same shape after one Adam
  step, saved by RecBole's Trainer (every trained dense model's checkpoint has these bytes);
* **ready**: a fresh interpreter, from nothing to the first user's top k: the imports, then ``Recommender.load``
  (read, propagate) and one ``recommend``; RecBole: the dataset and split rebuilt from the checkpoint's Config, the
  model loaded, one ``full_sort_topk`` (which propagates). Wall seconds (medians of ``--repeats``) and the
  interpreter's peak resident memory;
* **users per second** (top-20 lists a second) at 1, 64 and 4,096 users a batch (seen items excluded, the same
  random users of the test split for both, the median of up to ``--calls`` batches), in this process on
  ``--threads`` threads; also through an exact faiss index (``Flat``) when faiss is installed. The share of users
  whose top 20 is the same list on both sides is reported.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from recbole.data import create_dataset, data_preparation
from recbole.model.general_recommender.lightgcn import LightGCN as RecBoleLightGCN
from recbole.trainer import Trainer
from recbole.utils import init_seed
from recbole.utils.case_study import full_sort_topk

from bench.common import header, markdown_table, write
from recbole_bet.model import get_model
from recbole_bet.package import checkpoint_config, package_from_result
from recbole_bet.serve import Recommender
from recbole_bet.trainer import load_checkpoint

ROOT = Path(__file__).resolve().parents[1]
BATCHES = (1, 64, 4096)
K = 20

# Fresh interpreters: the seconds to import, the seconds from imported to the first top k, and the peak resident
# memory (VmHWM: of this process's own address space; ru_maxrss would keep the forking parent's peak across exec).
# argv: package (or checkpoint), user token (or id).
PEAK = "int(next(line for line in open('/proc/self/status') if line.startswith('VmHWM')).split()[1])"
READY_SERVE = f"""
import sys, time
start = time.perf_counter()
from recbole_bet.serve import Recommender
imported = time.perf_counter()
rec = Recommender.load(sys.argv[1])
rec.recommend([sys.argv[2]], k=20)
print(imported - start, time.perf_counter() - imported, {PEAK})
"""
READY_RECBOLE = f"""
import sys, time
start = time.perf_counter()
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed
from recbole.utils.case_study import full_sort_topk
from recbole_bet.model import get_model
from recbole_bet.package import checkpoint_config
from recbole_bet.trainer import load_checkpoint
imported = time.perf_counter()
saved = load_checkpoint(sys.argv[1])
config = checkpoint_config(saved)
init_seed(config["seed"], config["reproducibility"])
train, _, test = data_preparation(config, create_dataset(config))
model = get_model(config["model"])(config, train._dataset)
model.load_state_dict(saved["state_dict"])
model.eval()
full_sort_topk([int(sys.argv[2])], model, test, k=20)
print(imported - start, time.perf_counter() - imported, {PEAK})
"""


def ready(script: str, arguments: list[str], repeats: int, threads: int) -> tuple[float, float, float]:
    """(median seconds to import, median seconds from imported to the first top k, largest peak resident MiB) of
    ``script`` in fresh interpreters."""
    imports, seconds, peaks = [], [], []
    for _ in range(repeats):
        done = subprocess.run([sys.executable, "-c", script, *arguments], capture_output=True, text=True, cwd=ROOT,
                              env={"OMP_NUM_THREADS": str(threads), "PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)})
        if done.returncode:
            raise RuntimeError(done.stderr[-2000:])
        imported, wall, peak_kib = done.stdout.split()[-3:]
        imports.append(float(imported))
        seconds.append(float(wall))
        peaks.append(int(peak_kib) / 1024)
    return statistics.median(imports), statistics.median(seconds), max(peaks)


def dense_checkpoint_bytes(config, train_data) -> int:
    """Bytes of RecBole's checkpoint of its own (dense) LightGCN of this shape, after one Adam step."""
    init_seed(config["seed"], config["reproducibility"])
    model = RecBoleLightGCN(config, train_data._dataset)
    with tempfile.TemporaryDirectory() as folder:
        config["checkpoint_dir"] = folder
        trainer = Trainer(config, model)
        model.calculate_loss(next(iter(train_data))).backward()
        trainer.optimizer.step()
        trainer._save_checkpoint(0, verbose=False, saved_model_file=f"{folder}/dense.pth")
        return Path(f"{folder}/dense.pth").stat().st_size


def per_call(function, arguments: list) -> float:
    """Median wall seconds of ``function(a)`` over ``arguments``, after one untimed call (caches, first-call costs)."""
    function(arguments[0])
    times = []
    for argument in arguments:
        start = time.perf_counter()
        function(argument)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def throughput(rec: Recommender, indexed: Recommender | None, model, test_data, users: np.ndarray, calls: int) -> list[list]:
    """Rows: batch, users/s of the package, of RecBole's full_sort_topk and of the faiss index, the speed-up, and the
    share of users whose top k is the same list on both sides. Each batch size is timed on ``calls`` batches of
    other users (fewer for the largest: at most ``len(users)`` users in all, at least 3 calls)."""
    rows = []
    for batch in BATCHES:
        n = max(3, min(calls, len(users) // batch))
        ids = [np.roll(users, -i * batch)[:batch] for i in range(n)]
        asked = [list(rec.user_tokens[part]) for part in ids]
        ours = per_call(lambda tokens: rec.recommend(tokens, k=K), asked)
        theirs = per_call(lambda part: full_sort_topk(part, model, test_data, k=K), ids)
        top, (_, items) = rec.recommend(asked[0], k=K), full_sort_topk(ids[0], model, test_data, k=K)
        same = float((rec.item_tokens[items.numpy()] == top.items).all(axis=1).mean())
        faiss = f"{batch / per_call(lambda tokens: indexed.recommend(tokens, k=K), asked):,.0f}" if indexed else "-"
        rows.append([f"{batch:,}", f"{batch / ours:,.0f}", f"{batch / theirs:,.0f}", faiss, f"{theirs / ours:.1f}", f"{same:.3f}"])
    return rows


def bench_run(result_file: str, repeats: int, calls: int, threads: int) -> tuple[str, str]:
    """(dataset, the Markdown section of one finished run)."""
    result = json.loads(Path(result_file).read_text())
    # absolute: the fresh interpreters run in the checkout (a run's paths are relative to its folder, this one)
    package = str(Path(result.get("package") or package_from_result(result_file)["path"]).resolve())
    checkpoint = str(Path(result["checkpoint"]).resolve())
    saved = load_checkpoint(checkpoint)
    config = checkpoint_config(saved)
    init_seed(config["seed"], config["reproducibility"])
    train, _, test = data_preparation(config, create_dataset(config))
    model = get_model(config["model"])(config, train._dataset)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    rec = Recommender.load(package)
    indexed = Recommender.load(package, index="faiss") if importlib.util.find_spec("faiss") else None
    users = np.random.default_rng(0).permutation(np.asarray(test.uid_list))  # users with test items, in random order
    first = str(users[0])
    bytes_rows = sizes(result, package, dense_checkpoint_bytes(config, train))
    serve_ready = ready(READY_SERVE, [package, str(rec.user_tokens[users[0]])], repeats, threads)
    recbole_ready = ready(READY_RECBOLE, [checkpoint, first], repeats, threads)
    rows = throughput(rec, indexed, model, test, users, calls)
    section = [
        f"## {result['model']} on {result['dataset']}, method={result['method']}, sparsity={result['sparsity']} "
        f"({result['n_users']:,} users, {result['n_items']:,} items; test R@20 {result['test'].get('recall@20', float('nan')):.4f})\n",
        markdown_table(["file", "bytes", "vs dense checkpoint"], bytes_rows),
        markdown_table(["a fresh interpreter to its first top 20", "import s", "load + first top 20 s", "peak resident MiB"], [
            ["package: `Recommender.load` + `recommend` (torch, numpy)", *(f"{x:,.2f}" for x in serve_ready[:2]), f"{serve_ready[2]:,.0f}"],
            ["RecBole: dataset + split + model + checkpoint + `full_sort_topk`", *(f"{x:,.2f}" for x in recbole_ready[:2]), f"{recbole_ready[2]:,.0f}"],
        ]),
        markdown_table(["users a batch", "package users/s", "RecBole full_sort_topk users/s", "package + faiss Flat users/s",
                        "package ÷ RecBole", "same top 20"], rows),
    ]
    return result["dataset"], "\n".join(section)


def sizes(result: dict, package: str, dense: int) -> list[list]:
    """Rows of the bytes table."""
    with np.load(package, allow_pickle=False) as npz:
        parts = {"table": 0, "weights": 0, "tokens": 0, "seen": 0}
        for key in npz.files:
            kind = ("weights" if key.startswith("weight/") else "tokens" if key.endswith("_tokens")
                    else "seen" if key.startswith(("train/", "valid/")) else None if key in ("package", "meta") else "table")
            if kind:
                parts[kind] += npz[key].nbytes
    files = [("package (`.package.npz`)", Path(package).stat().st_size)]
    files += [(f"  of which {kind}", size) for kind, size in parts.items()]
    if result.get("export"):
        files.append(("exported table (`.table.npz`)", result["export"]["bytes"]))
    files.append(("the run's checkpoint (dense storage + masks + Adam)", Path(result["checkpoint"]).stat().st_size))
    files.append(("dense model's RecBole checkpoint", dense))
    return [[name, f"{size:,}", f"{size / dense:.3f}"] for name, size in files]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--result_file", action="append", required=True, help="a finished run's result JSON (repeat for several)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--calls", type=int, default=200, help="batches timed per batch size (fewer for large batches)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", help="folder of the tables (default bench/results)")
    parser.add_argument("--note", default="", help="what else ran on the machine meanwhile, for the table's note")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sections: dict[str, list[str]] = {}
    for result_file in args.result_file:
        dataset, section = bench_run(result_file, args.repeats, args.calls, args.threads)
        sections.setdefault(dataset, []).append(section)
    for dataset, parts in sections.items():
        command = "python -m bench.serve " + " ".join(f"--result_file={f}" for f in args.result_file)
        note = (f"{args.threads} thread(s); top {K}, training and validation items excluded; users/s from the median call over up to "
                f"{args.calls} batches of other users (at least 3; as many as the test users allow for 4,096); ready: medians of {args.repeats}. "
                "A fresh interpreter's imports, its time from imported to its first top 20, and its peak resident memory "
                "(VmHWM, imports included: torch alone is about 230 MiB here). " + args.note)
        write(f"serve-{dataset}.md", header(f"Serving from the model package vs RecBole ({dataset})", command, note) + "\n".join(parts), args.out)


if __name__ == "__main__":
    main()
