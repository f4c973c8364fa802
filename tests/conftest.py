"""Shared fixtures: RecBole's bundled ml-100k (works anywhere) and ../shared/datasets (CI only)."""

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("RECBOLE_BET_DATA", ROOT.parent / "shared" / "datasets"))
# Quiet, CPU, short: what every test run of the pipeline shares.
FAST = {"show_progress": False, "state": "WARNING", "use_gpu": False, "checkpoint_dir": None}


def shared_dataset(name: str) -> Path:
    """``../shared/datasets/<name>``, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not (path / f"{name}.inter").is_file():
        pytest.skip(f"{path}/{name}.inter is absent (a user's clone has no ../shared; CI's does)")
    return path


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: an end-to-end, resume, kill or ray test (seconds to minutes); "
                                       "`pytest -m \"not slow\"` is the quick loop, CI runs everything")


@pytest.fixture
def fast_config(tmp_path):
    """Keys for a quick ml-100k run writing into a temporary folder."""
    return dict(FAST, checkpoint_dir=str(tmp_path / "saved"))


@pytest.fixture(autouse=True)
def _no_cli_args(monkeypatch, tmp_path):
    # RecBole's Config reads sys.argv itself: keep pytest's own arguments out of it,
    # and keep RecBole's ./log out of the checkout.
    monkeypatch.setattr(sys, "argv", ["pytest"])
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope="session")
def ml100k_lightgcn():
    """(config, train_data, valid_data, test_data) for LightGCN on ml-100k, built once."""
    return build_data("LightGCN")


def build_data(model: str, **extra):
    from recbole.data import create_dataset, data_preparation
    from recbole.utils import init_seed

    from recbole_bet.config import BetConfig

    argv, sys.argv = sys.argv, ["pytest"]
    try:
        config = BetConfig(model, "ml-100k", config_dict=dict(FAST, checkpoint_dir="saved", **extra))
    finally:
        sys.argv = argv
    init_seed(config["seed"], config["reproducibility"])
    data = create_dataset(config)
    return (config, *data_preparation(config, data))
