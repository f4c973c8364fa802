"""Runs that survive being killed: rerunning the same command continues from the last finished unit of work.

A run with checkpoints keeps its progress under ``<checkpoint_dir>/unfinished-run/`` while it runs:
``run.json`` (the configuration it was started with) and one file per finished unit of work, written
atomically (a temporary file, then a rename), so a kill at any moment (``kill -9``, out of memory, a
preempted machine) leaves every file whole or absent. The units:

* each finished budget's result;
* each phase a method computes once for all budgets (BET's pretraining, magnitude pruning's full table, OptEmbed's
  supernet, CIESS's pretraining), with every random stream as it left them: :func:`recbole_bet.trainer.budget_free_phase`;
* each budget's finished search of the other methods (PEP's thresholds, OptEmbed's evolution, ESAPN's episodes, CIESS's
  agent steps), with every random stream: :func:`recbole_bet.trainer.kept_phase`;
* each BET search iteration (the population, the predictor and its optimiser, every random stream), each ESAPN
  episode, each CIESS agent step, each PEP threshold epoch and each OptEmbed generation
  (:class:`recbole_bet.trainer.KeptLoop`);
* each BET selective retraining;
* inside a training run by ``BudgetTrainer.fit_phase`` with a ``progress`` unit (BET's pretraining and
  retrainings, every method's final training, magnitude pruning's full table, the power rule's trainings,
  CIESS's pretraining, OptEmbed's supernet with its thresholds' optimiser and width stream), each epoch:
  :meth:`recbole_bet.trainer.BudgetTrainer.keep_progress`.

Rerunning the same command loads them and goes on; because the random streams are put back where
they were, the final action and metrics are those of an uninterrupted run, bit for bit (times and
checkpoint names differ). A result's ``seconds`` adds the wall time that the killed runs spent on its
budget up to their last kept unit (``elapsed.json``; what they computed after it was lost, and is not
counted), so it is what the budget cost, not what its last process took; a budget that ray ran counts
its own task only. A finished run removes the folder. A command whose configuration differs
from the unfinished run's refuses to start, naming the keys that differ; ``--fresh=True`` starts over.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Callable

import torch

from recbole_bet.errors import ConfigError

FOLDER = "unfinished-run"
# keys that do not change what a run computes: they may differ between the killed run and its rerun
VOLATILE = {"fresh", "show_progress", "state", "result_file", "checkpoint_dir", "device", "gpu_id", "use_gpu",
            "log_wandb", "wandb_project", "export_table", "tune_allocator", "worker", "nproc", "world_size",
            "ip", "port", "offset", "single_spec", "local_rank"}


def fingerprint(config) -> dict[str, str]:
    """What a run computes from: every key of the final config but the volatile ones, as text."""
    return {str(k): repr(v) for k, v in sorted(config.final_config_dict.items(), key=lambda kv: str(kv[0])) if k not in VOLATILE}


class RunState:
    """The unfinished run's folder: named units of work, saved and loaded whole.

    Args:
        folder (Path): ``<checkpoint_dir>/unfinished-run``.
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        # the budget clock: wall seconds that killed runs of this command spent on the budget under way, and when
        # this process started on it
        clock = self.folder / "elapsed.json"
        self.before = json.loads(clock.read_text())["seconds"] if clock.is_file() else 0.0
        self.started = time.time()
        self.owns_clock = True

    def __getstate__(self):
        # a copy sent to a ray task (a budget or a retraining) keeps units but neither reads nor writes the clock:
        # the task measures its own time
        return {**self.__dict__, "before": 0.0, "owns_clock": False}

    def seconds(self) -> float:
        """Wall seconds spent on the budget under way: by the killed runs of this command (each up to its last kept
        unit) and by this process since it started on it."""
        return self.before + time.time() - self.started

    def next_budget(self, started: float) -> None:
        """A budget is finished and kept: forget its kept epochs, and start the next budget's clock at ``started``."""
        self.drop_epochs()
        self.before, self.started = 0.0, started
        self._keep_clock()

    def _keep_clock(self) -> None:
        if self.owns_clock:
            seconds = self.seconds()
            write_atomically(self.folder / "elapsed.json", lambda tmp: tmp.write_text(json.dumps({"seconds": seconds})))

    @classmethod
    def open(cls, config, fresh: bool, started: float | None = None) -> "RunState":
        """The state of this run: the unfinished one in the checkpoint folder if its configuration is this one's,
        a new one otherwise (``fresh``, or none there); a different unfinished run is refused. ``started``: when
        this process started (its budget clock's start; default now)."""
        folder = Path(config["checkpoint_dir"] or "saved") / FOLDER
        if fresh and folder.exists():
            shutil.rmtree(folder)
        mine = fingerprint(config)
        saved = folder / "run.json"
        if saved.is_file():
            theirs = json.loads(saved.read_text())
            differing = sorted(k for k in set(mine) | set(theirs) if mine.get(k) != theirs.get(k))
            if differing:
                shown = ", ".join(f"{k} ({theirs.get(k, 'unset')} there, {mine.get(k, 'unset')} here)" for k in differing[:4])
                more = f" and {len(differing) - 4} more" if len(differing) > 4 else ""
                raise ConfigError(
                    f"{folder} holds an unfinished run with other keys: {shown}{more}; rerun its command to continue it, "
                    "or pass --fresh=True to start over (or another --checkpoint_dir)"
                )
        else:
            folder.mkdir(parents=True, exist_ok=True)
            write_atomically(saved, lambda tmp: tmp.write_text(json.dumps(mine, indent=1)))
        state = cls(folder)
        if started is not None:
            state.started = started
        return state

    def _path(self, name: str) -> Path:
        return self.folder / f"{name.replace('/', '--')}.pt"

    def load(self, name: str):
        """The unit ``name`` if it was finished, else None."""
        return torch.load(self._path(name), map_location="cpu", weights_only=False) if self.has(name) else None

    def has(self, name: str) -> bool:
        """Whether the unit ``name`` was finished (without loading it)."""
        return self._path(name).is_file()

    def save(self, name: str, value) -> None:
        """Keep the finished unit ``name`` (atomically)."""
        write_atomically(self._path(name), lambda tmp: torch.save(value, tmp))
        self._keep_clock()

    def keep_file(self, name: str, path) -> None:
        """Keep the file ``path`` (whole: its writer must replace it atomically, never rewrite it in place) as the
        unit ``name``: a hard link, atomically, so that keeping it costs no copy; a copy where links are refused."""
        link_or_copy(Path(path), self._path(name).with_suffix(".pth"))
        self._keep_clock()

    def kept_file(self, name: str) -> Path | None:
        """The file kept as the unit ``name``, or None."""
        path = self._path(name).with_suffix(".pth")
        return path if path.is_file() else None

    def drop_epochs(self) -> None:
        """Forget the kept epochs of every training and the kept iterations of every search loop (``*-epochs``
        units): called between two budgets, when no training is under way and every finished phase is kept as a unit
        of its own."""
        for path in self.folder.glob("*-epochs*"):
            path.unlink(missing_ok=True)

    def finish(self) -> None:
        """The run is done: nothing to continue."""
        shutil.rmtree(self.folder, ignore_errors=True)


def write_atomically(path, write: Callable[[Path], object]) -> None:
    """Put a file at ``path`` whole or not at all: ``write(tmp)`` writes it as ``<path>.tmp`` beside it, which then
    replaces ``path`` by a rename. A kill at any moment leaves the old file or the new one, never a part."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.unlink(missing_ok=True)  # left by a killed write
    write(tmp)
    os.replace(tmp, path)


def link_or_copy(source: Path, target: Path) -> None:
    """Put ``source`` at ``target`` atomically: a hard link where the file system allows it, else a copy."""

    def put(tmp: Path) -> None:
        try:
            os.link(source, tmp)
        except OSError:
            shutil.copyfile(source, tmp)

    write_atomically(target, put)
