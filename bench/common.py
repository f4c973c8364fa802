"""Helpers shared by the benchmarks: the machine line, building a dataset split, writing a table."""

from __future__ import annotations

import os
import platform
import sys
from datetime import date
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {device}, torch {torch.__version__}, {platform.system()}"


def header(title: str, command: str, note: str = "") -> str:
    return f"# {title}\n\nMeasured {date.today()} on {machine()}.\nCommand: `{command}`\n" + (f"\n{note}\n" if note else "") + "\n"


def markdown_table(columns: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def write(name: str, text: str) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / name
    path.write_text(text)
    print(text)
    print(f"written to {path}")
    return path


def recbole_data(model: str, dataset: str, data_path: str, **keys):
    """(config, train, valid, test) through our Config and RecBole's data pipeline."""
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_bet.config import BetConfig

    argv, sys.argv = sys.argv, sys.argv[:1]  # RecBole's Config reads sys.argv itself
    try:
        config = BetConfig(model, dataset, config_dict=dict({"data_path": data_path, "show_progress": False, "state": "WARNING"}, **keys))
    finally:
        sys.argv = argv
    init_seed(config["seed"], True)
    return (config, *data_preparation(config, create_dataset(config)))
