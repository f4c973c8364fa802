"""Shared fixtures: RecBole's bundled ml-100k (works anywhere) and ../shared/datasets (CI only)."""

import os
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import strategies as st

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


def random_tables(max_rows: int):
    """A hypothesis strategy of small tables: (users, items, d_max, sparsity, seed), each count in [1, max_rows]."""
    return st.tuples(
        st.integers(1, max_rows),  # users
        st.integers(1, max_rows),  # items
        st.sampled_from([4, 8, 16, 128]),  # d_max
        st.sampled_from([0.5, 0.8, 0.9, 0.95]),  # sparsity
        st.integers(0, 2**32 - 1),  # seed
    )


def make_budget(n_users, n_items, d_max, sparsity):
    """The sparsity's budget, or None where it leaves some row no dimension."""
    from recbole_bet.budget import Budget
    from recbole_bet.errors import BudgetError

    try:
        return Budget.from_sparsity(sparsity, d_max, n_users, n_items)
    except BudgetError:
        return None


@pytest.fixture
def bet(tmp_path):
    """``make(**keys)`` -> (a BetTrainer on ml-100k LightGCN at sparsity 0.9 with ``keys``, train data, valid data)."""
    from recbole_bet.budget import Budget
    from recbole_bet.methods.bet.search import BetTrainer
    from recbole_bet.methods.bet.settings import BetSettings
    from recbole_bet.model import get_model
    from recbole_bet.quick_start import training_frequencies

    def make(**keys):
        config, train, valid, _ = build_data("LightGCN", **keys)
        config["checkpoint_dir"] = str(tmp_path)
        model = get_model("LightGCN")(config, train._dataset)
        users, items = training_frequencies(train._dataset, config)
        budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
        settings = BetSettings.from_config(config)
        return BetTrainer(config, model, settings, budget, users, items, np.random.default_rng(0)), train, valid

    return make
