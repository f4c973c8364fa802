"""Several runs in one checkpoint folder: each its own state (``runs/<id>/``) under a lock held by its live process;
the same run started twice stops the second; a killed run's lock is taken over; the unfinished runs are listed and
removed; a rerun keeps the thread count and ``keep_every`` thins the kept epochs."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from recbole_bet.config import BetConfig, RunSettings
from recbole_bet.errors import AlreadyRunning, ConfigError
from recbole_bet.quick_start import main as run_main
from recbole_bet.quick_start import run_recbole_bet
from recbole_bet.resume import RunLock, RunState
from recbole_bet.resume import main as resume_main

from conftest import ROOT
from test_resume import killed_after_epoch, run_folders, trained_epochs

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

# ---- the lock ---------------------------------------------------------------------------------------------


def test_a_held_lock_stops_a_second_holder_and_a_dead_holders_is_taken_over(tmp_path):
    folder = tmp_path / "runs" / "abc"
    lock = RunLock.take(folder)
    assert (folder / "lock").read_text() == str(os.getpid())
    with pytest.raises(AlreadyRunning, match=f"already running as pid {os.getpid()}"):
        RunLock.take(folder)  # flock: a second open file of the same process is refused too
    lock.release()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / "lock").write_text(str(dead.pid))  # a killed run's lock: its pid is gone
    again = RunLock.take(folder)
    assert (folder / "lock").read_text() == str(os.getpid())
    state = RunState(folder, again)
    (folder / "unit.pt").write_text("x")
    state.finish()  # the run's folder goes, and runs/ with it once empty; the lock is free
    assert not (tmp_path / "runs").exists()
    RunLock.take(folder).release()


def test_a_stale_lock_left_by_a_killed_run_is_taken_over_by_its_rerun(fast_config, monkeypatch):
    keys = dict(fast_config, method="es", epochs=2)
    killed_after_epoch(keys, "sparsity0.9/final-epochs", 0, monkeypatch)
    (folder,) = run_folders(keys["checkpoint_dir"])
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (folder / "lock").write_text(str(dead.pid))  # as a SIGKILL leaves it
    _, epochs = trained_epochs(keys, monkeypatch)
    assert epochs == [1] and run_folders(keys["checkpoint_dir"]) == []  # continued, and finished


# ---- processes at once ------------------------------------------------------------------------------------

KEYS = ["--model=LightGCN", "--dataset=ml-100k", "--method=es", "--show_progress=False", "--state=WARNING", "--use_gpu=False"]


def command(folder: Path, result: Path, *extra) -> list[str]:
    return [sys.executable, str(ROOT / "run_recbole_bet.py"), *KEYS, *extra, f"--checkpoint_dir={folder}", f"--result_file={result}"]


def started(argv: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(argv, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(process: subprocess.Popen) -> str:
    _, error = process.communicate(timeout=600)
    assert process.returncode == 0, error[-2000:]
    return error


def outcome(path: Path) -> dict:
    result = json.loads(path.read_text())
    return {"test": result["test"], "valid": result["valid"], "curve": result["curve"], "threads": result["threads"]}


@pytest.mark.slow
def test_two_different_runs_started_at_once_in_one_folder_both_finish_as_alone(tmp_path):
    runs = {"one": ("--seed=1", "--epochs=2"), "two": ("--seed=2", "--epochs=3")}
    alone = {}
    for name, extra in runs.items():
        finished(started(command(tmp_path / f"alone-{name}", tmp_path / f"alone-{name}.json", *extra), tmp_path))
        alone[name] = outcome(tmp_path / f"alone-{name}.json")
    together = {name: started(command(tmp_path / "shared", tmp_path / f"{name}.json", *extra), tmp_path) for name, extra in runs.items()}
    for process in together.values():
        finished(process)
    assert {name: outcome(tmp_path / f"{name}.json") for name in runs} == alone
    assert not (tmp_path / "shared" / "runs").exists()


def wait_for_lock(folder: Path, pid: int, process: subprocess.Popen) -> None:
    """Wait until ``pid`` holds a run's lock under ``folder/runs``."""
    deadline = time.time() + 300
    while not any(p.read_text().strip() == str(pid) for p in folder.glob("runs/*/lock") if p.is_file()):
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.time() < deadline
        time.sleep(0.02)


@pytest.mark.slow
def test_the_same_command_twice_at_once_stops_the_second_with_one_line_and_leaves_the_first_whole(tmp_path):
    finished(started(command(tmp_path / "alone", tmp_path / "alone.json", "--epochs=2"), tmp_path))
    first = started(command(tmp_path / "shared", tmp_path / "first.json", "--epochs=2"), tmp_path)
    try:
        wait_for_lock(tmp_path / "shared", first.pid, first)
        first.send_signal(signal.SIGSTOP)  # holds its lock, paused: the second surely starts while it runs
        second = subprocess.run(command(tmp_path / "shared", tmp_path / "second.json", "--epochs=2"), cwd=tmp_path,
                                capture_output=True, text=True, timeout=600)
    finally:
        first.send_signal(signal.SIGCONT)
    assert second.returncode == 2 and "Traceback" not in second.stderr
    errors = [line for line in second.stderr.splitlines() if line.startswith("run_recbole_bet: error:")]
    assert len(errors) == 1 and f"already running as pid {first.pid}" in errors[0], second.stderr[-2000:]
    assert not (tmp_path / "second.json").exists()
    finished(first)
    assert outcome(tmp_path / "first.json") == outcome(tmp_path / "alone.json")


# ---- listing and removing ---------------------------------------------------------------------------------


def test_unfinished_runs_are_listed_with_their_commands_and_one_is_removed(fast_config, monkeypatch, capsys):
    folder = fast_config["checkpoint_dir"]
    killed_after_epoch(dict(fast_config, method="es", epochs=3), "sparsity0.9/final-epochs", 0, monkeypatch)
    killed_after_epoch(dict(fast_config, method="es", epochs=3, seed=5), "sparsity0.9/final-epochs", 1, monkeypatch)
    first, second = sorted(run_folders(folder), key=lambda f: json.loads((f / "run.json").read_text())["started"])
    assert resume_main(["list", f"--checkpoint_dir={folder}"]) == 0
    listed = capsys.readouterr().out
    assert listed.startswith(f"2 unfinished runs in {folder}/runs:")
    for run in (first, second):
        assert f"{run.name}  stopped (killed or interrupted)  model=LightGCN dataset=ml-100k method=es sparsity=0.9" in listed
    assert "seed=5" in listed and listed.count("command: ") == 2 and "budgets finished 0 of 1; last kept sparsity0.9/final-epochs" in listed
    assert run_main(["--list_unfinished", f"--checkpoint_dir={folder}"]) == 0  # the run script says the same
    assert capsys.readouterr().out == listed
    lock = RunLock.take(second)  # a live process runs it: not removed
    try:
        assert resume_main(["remove", second.name, f"--checkpoint_dir={folder}"]) == 2
        assert f"already running as pid {os.getpid()}" in capsys.readouterr().err
    finally:
        lock.release()
    assert resume_main(["remove", first.name, f"--checkpoint_dir={folder}"]) == 0
    assert run_folders(folder) == [second]
    assert resume_main(["remove", "nosuchrun", f"--checkpoint_dir={folder}"]) == 2
    assert f"no unfinished run 'nosuchrun' in {folder}/runs; its runs: {second.name}" in capsys.readouterr().err


# ---- what a rerun keeps -----------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_rerun_computes_with_the_thread_count_its_run_started_with(fast_config, tmp_path, monkeypatch):
    keys = dict(fast_config, method="es", epochs=2)
    mine = torch.get_num_threads()
    other = 1 if mine > 1 else 2
    try:
        torch.set_num_threads(other)
        alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "alone")))
        killed_after_epoch(keys, "sparsity0.9/final-epochs", 0, monkeypatch)  # started with `other` threads
        torch.set_num_threads(mine)
        again, epochs = trained_epochs(keys, monkeypatch)
        assert epochs == [1] and again["threads"] == other == torch.get_num_threads()
        assert (again["test"], again["curve"]) == (alone["test"], alone["curve"])
    finally:
        torch.set_num_threads(mine)


def test_keep_every_keeps_every_kth_validation_and_the_rerun_replays_the_rest(fast_config, tmp_path, monkeypatch):
    keys = dict(fast_config, method="es", epochs=4, keep_every=2)
    alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "alone")))
    kept, real_save = [], RunState.save

    def save(self, name, value):
        if name == "sparsity0.9/final-epochs":
            kept.append(value["epoch"])
        real_save(self, name, value)

    with monkeypatch.context() as patch:
        patch.setattr(RunState, "save", save)
        killed_after_epoch(keys, "sparsity0.9/final-epochs", 2, monkeypatch)
    assert kept == [1]  # the 2nd validation; not the 1st or the 3rd
    again, epochs = trained_epochs(dict(keys, keep_every=1), monkeypatch)  # keep_every may change between the two
    assert epochs == [2, 3]
    assert (again["test"], again["curve"]) == (alone["test"], alone["curve"])


def test_keep_every_is_checked():
    with pytest.raises(ConfigError, match="keep_every=0; allowed: an integer >= 1"):
        RunSettings.from_config(BetConfig("LightGCN", "ml-100k", config_dict={"keep_every": 0}))
