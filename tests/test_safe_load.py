"""Files recbole-bet reads back (checkpoints, an unfinished run's units) load without torch's full unpickler: a
crafted pickle is refused with one line before any of it runs."""

import datetime
import logging
import os
import sys

import numpy as np
import pytest
import torch

from recbole_bet.budget import Action, ElementMask
from recbole_bet.errors import UnsafeFileError
from recbole_bet.resume import RunState, random_state
from recbole_bet.safe_load import safe_load
from recbole_bet.trainer import load_checkpoint


class Payload:
    """Unpickling it runs a shell command that writes ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_crafted_unit_is_refused_on_the_rerun_path(tmp_path, monkeypatch, capsys):
    """A ``run.json`` that matches the command and a pickled payload named like a unit: an ordinary rerun refuses it
    with one line, exit code 2, and the payload never runs; the folder is left for the user to look at."""
    from recbole_bet.config import BetConfig
    from recbole_bet.quick_start import main

    saved, marker = tmp_path / "saved", tmp_path / "ran"
    argv = ["run_recbole_bet.py", "--method=es", "--sparsity=0.9", "--epochs=1", f"--checkpoint_dir={saved}",
            "--show_progress=False", "--state=WARNING", "--use_gpu=False"]
    monkeypatch.setattr(sys, "argv", argv)  # RecBole's Config reads the command line itself
    state = RunState.open(BetConfig("LightGCN", "ml-100k"), fresh=False)  # run.json, as the killed run wrote it
    torch.save({"test": Payload(marker)}, state.folder / "sparsity0.9--result.pt")
    state.release()  # the killed run's lock: gone with its process
    assert main(argv[1:]) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and "sparsity0.9--result.pt is refused" in error[0] and "posix.system" in error[0], error
    assert not marker.exists() and (state.folder / "sparsity0.9--result.pt").exists()


def test_a_crafted_checkpoint_is_refused_and_recboles_own_only_when_trusted(tmp_path, caplog):
    marker = tmp_path / "ran"
    torch.save({"state_dict": {}, "config": Payload(marker)}, tmp_path / "evil.pth")
    with pytest.raises(UnsafeFileError, match="evil.pth is refused.*posix.system.*trust_pickle"):
        load_checkpoint(tmp_path / "evil.pth")
    assert not marker.exists()
    # RecBole's own checkpoint format: its Config pickled (here a stand-in object of another class)
    torch.save({"state_dict": {"w": torch.ones(2)}, "config": datetime.date(2026, 12, 7)}, tmp_path / "recbole.pth")
    with pytest.raises(UnsafeFileError, match="datetime.date"):
        load_checkpoint(tmp_path / "recbole.pth")
    with caplog.at_level(logging.WARNING):
        loaded = load_checkpoint(tmp_path / "recbole.pth", trust_pickle=True)
    assert torch.equal(loaded["state_dict"]["w"], torch.ones(2))
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "full unpickler" in warnings[0] and "\n" not in warnings[0]


def test_units_keep_arrays_layouts_and_random_streams(tmp_path):
    """What the units hold (numpy arrays and scalars, Actions, ElementMasks, every random stream) comes back equal."""
    state = RunState(tmp_path)
    rng = np.random.default_rng(4)
    rng.random(3)
    action = Action(np.array([1, 2, 3], np.int16), np.array([4, 1], np.int16), 4)
    mask = ElementMask(np.eye(3, 4, dtype=bool), np.zeros((2, 4), dtype=bool), 4)
    value = {"action": action, "mask": mask, "sizes": np.arange(5, dtype=np.uint16), "score": np.float64(0.25),
             "streams": random_state([], rng), "nested": [(1, "a", None, 2.5)]}
    state.save("sparsity0.9/x", value)
    back = state.load("sparsity0.9/x")
    assert back["action"] == action and np.array_equal(back["mask"].user_mask, mask.user_mask)
    assert back["sizes"].dtype == np.uint16 and np.array_equal(back["sizes"], np.arange(5))
    assert back["score"] == 0.25 and back["nested"] == [(1, "a", None, 2.5)]
    assert np.array_equal(back["streams"]["numpy"][1], value["streams"]["numpy"][1])
    assert back["streams"]["rng"] == value["streams"]["rng"] and torch.equal(back["streams"]["torch"], value["streams"]["torch"])
    # an object of a class nobody registered is refused, even a harmless one
    torch.save({"x": datetime.date(2026, 12, 7)}, tmp_path / "other.pt")
    with pytest.raises(UnsafeFileError, match="datetime.date"):
        safe_load(tmp_path / "other.pt")


def test_our_checkpoint_loads_weights_only_and_rebuilds_its_config(fast_config, tmp_path):
    from recbole_bet.config import BetConfig
    from recbole_bet.package import checkpoint_config
    from recbole_bet.quick_start import run_recbole_bet
    from recbole_bet.resume import fingerprint

    keys = dict(fast_config, epochs=1, sparsity=0.9, method="es", n_layers=2)
    result = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    saved = torch.load(result["checkpoint"], weights_only=True)  # torch's own restricted unpickler, nothing allowed
    assert saved["config"]["keys"]["n_layers"] == 2 and isinstance(saved["best_valid_score"], float)
    config = checkpoint_config(saved)
    assert fingerprint(config) == fingerprint(BetConfig("LightGCN", "ml-100k", config_dict=keys)) and config["n_layers"] == 2
