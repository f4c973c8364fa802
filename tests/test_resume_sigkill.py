"""A real ``kill -9``: the command runs as a user runs it, is killed with SIGKILL at random moments during the
pretraining, the search and a retraining, and each rerun of the same command goes on; the last one ends with the
result of a run never killed, bit for bit."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from recbole_bet.export import read_table

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

ROOT = Path(__file__).resolve().parents[1]
KEYS = ["--model=LightGCN", "--dataset=ml-100k", "--method=bet", "--sparsity=0.9", "--epochs=3", "--bet_iterations=4",
        "--bet_candidates=4", "--bet_finetune_epochs=1", "--bet_retrain_top=2", "--show_progress=False", "--state=WARNING",
        "--use_gpu=False"]


def command(folder: Path) -> list[str]:
    return [sys.executable, str(ROOT / "run_recbole_bet.py"), *KEYS, f"--checkpoint_dir={folder / 'saved'}",
            f"--result_file={folder / 'result.json'}"]


def what_counts(folder: Path) -> dict:
    """The run's outcome without its times and file names."""
    result = json.loads((folder / "result.json").read_text())
    _, _, sizes = read_table(result["export"]["path"])
    return {"sizes": {n: s.tolist() for n, s in sizes.items()}, "test": result["test"], "valid": result["valid"],
            "search": [{k: v for k, v in r.items() if k != "seconds"} for r in result["search"]],
            "full_quality": result["bet"]["full_quality"],
            "retrained": [{k: r[k] for k in ("index", "valid", "quality", "curve")} for r in result["bet"]["retrained"]]}


def run_until_killed(folder: Path, unit: str, rng: random.Random) -> None:
    """Start the command and SIGKILL it a random moment (0-0.5 s) after the unfinished run's folder first holds a
    file whose name starts with ``unit``: inside that phase, wherever it then is."""
    state = folder / "saved" / "runs"  # <run id>/<units>
    process = subprocess.Popen(command(folder), cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 600
        while not any(p.name.startswith(unit) and p.suffix == ".pt" for p in state.glob("*/*")):
            if process.poll() is not None:
                pytest.fail(f"the run ended (exit {process.returncode}) before {unit}: {process.stderr.read()[-2000:]!r}")
            assert time.time() < deadline
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        process.stderr.close()
    assert process.returncode == -signal.SIGKILL, f"the run ended on its own ({process.returncode}) before the kill"


def test_sigkill_at_random_moments_then_the_same_command_gives_the_uninterrupted_result(tmp_path):
    whole, killed = tmp_path / "whole", tmp_path / "killed"
    whole.mkdir(), killed.mkdir()
    subprocess.run(command(whole), cwd=whole, check=True, capture_output=True)
    rng = random.Random(int(os.environ.get("RESUME_KILL_SEED", "0")))
    # killed during the pretraining (after its first epoch), the search (after its first iteration) and a retraining
    # (after the first retraining's first epoch), each time rerunning the same command
    for unit in ("bet-pretrain-epochs", "sparsity0.9--bet-search", "sparsity0.9--bet-retrain0-epochs"):
        run_until_killed(killed, unit, rng)
    finished = subprocess.run(command(killed), cwd=killed, capture_output=True, text=True)
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert not (killed / "saved" / "runs").exists()  # a finished run leaves nothing to continue
    assert what_counts(killed) == what_counts(whole)
