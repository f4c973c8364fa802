"""Helpers shared by the benchmarks: the machine line, building a dataset split, writing a table."""

from __future__ import annotations

import statistics
import time
from datetime import date
from pathlib import Path

import torch

from recbole_bet.methods.es import equal_sizes
from recbole_bet.budget import Budget
from recbole_bet.quick_start import machine  # noqa: F401  (the machine line of every table)

RESULTS = Path(__file__).resolve().parent / "results"
# Checkpoints of the benchmarks' trainers (claimed on creation, often never written): not ./saved.
SCRATCH = Path(__file__).resolve().parent / "out"


def header(title: str, command: str, note: str = "") -> str:
    return f"# {title}\n\nMeasured {date.today()} on {machine()}.\nCommand: `{command}`\n" + (f"\n{note}\n" if note else "") + "\n"


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(name: str, text: str, out: str | Path | None = None) -> Path:
    """``text`` into ``out/name`` (None: ``RESULTS``, bench/results/), and printed."""
    folder = RESULTS if out is None else Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    print(text)
    print(f"written to {path}")
    return path


def synchronize(device) -> None:
    """Wait until ``device`` has run the work queued on it, so that a timing ends with it; nothing on the CPU."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_seconds(function, repeats: int, device="cpu"):
    """(median wall seconds of ``repeats`` calls of ``function``, the last call's value); each call's time ends when
    ``device`` has run the work it queued."""
    times, value = [], None
    for _ in range(repeats):
        synchronize(device)
        start = time.perf_counter()
        value = function()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), value


def recbole_data(model: str, dataset: str, data_path: str, **keys):
    """(config, train, valid, test) through our Config and RecBole's data pipeline."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_bet.config import config_from_keys

    config = config_from_keys(model, dataset, dict(
        {"data_path": data_path, "show_progress": False, "state": "WARNING", "checkpoint_dir": str(SCRATCH / "saved")}, **keys))
    init_seed(config["seed"], True)
    return (config, *data_preparation(config, create_dataset(config)))


def mask_to_equal_sizes(model, user_frequency, item_frequency, sparsity: float = 0.9) -> None:
    """Mask a budgeted ``model`` to equal sizes at ``sparsity``: the benchmarks' small table (ES)."""
    budget = Budget.from_sparsity(sparsity, model.d_max, len(user_frequency), len(item_frequency))
    model.apply_action(equal_sizes(budget, user_frequency, item_frequency))
