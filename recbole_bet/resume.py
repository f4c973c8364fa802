"""Runs that survive being killed: rerunning the same command continues from the last finished unit of work.

A run with checkpoints keeps its progress under ``<checkpoint_dir>/runs/<run id>/`` while it runs (the id: a hash of
its keys, so several experiments share one checkpoint folder): ``run.json`` (the command and configuration it was
started with), a lock held by the live process, and one file per finished unit of work, written
atomically (a temporary file, then a rename), so a kill at any moment (``kill -9``, out of memory, a
preempted machine) leaves every file whole or absent. The units:

* each finished budget's result;
* each phase a method computes once for all budgets (BET's pretraining, magnitude pruning's full table, OptEmbed's
  supernet, CIESS's pretraining), with every random stream as it left them: :func:`budget_free_phase`;
* each budget's finished search of the other methods (PEP's thresholds, OptEmbed's evolution, ESAPN's episodes, CIESS's
  agent steps), with every random stream: :func:`kept_phase`;
* each BET search iteration (the population, the predictor and its optimiser, every random stream), each ESAPN
  episode, each CIESS agent step, each PEP threshold epoch and each OptEmbed generation
  (:class:`KeptLoop`);
* each BET selective retraining;
* inside a training run by ``BudgetTrainer.fit_phase`` with a ``progress`` unit (BET's pretraining and
  retrainings, every method's final training, magnitude pruning's full table, MDE's trainings per alpha,
  CIESS's pretraining, OptEmbed's supernet with its thresholds' optimiser and width stream), each epoch:
  :class:`KeptEpochs`.

Rerunning the same command loads them and goes on; because the random streams are put back where
they were, the final action and metrics are those of an uninterrupted run, bit for bit (times and
checkpoint names differ). A result's ``seconds`` adds the wall time that the killed runs spent on its
budget up to their last kept unit (``elapsed.json``; what they computed after it was lost, and is not
counted), so it is what the budget cost, not what its last process took; a budget that ray ran counts
its own task only. A finished run removes its folder. Another command (other keys) has a folder of its own; the same
command started twice at once stops the second with one line (``already running as pid N``); ``--fresh=True``
discards only the state of the run it names. ``python -m recbole_bet.resume list|remove`` (or
``--list_unfinished``) shows and removes unfinished runs.

Units are read back without torch's full unpickler (:mod:`recbole_bet.safe_load`): a file in the folder that holds
anything else than tensors, numpy arrays, plain data and the registered records (Action, ElementMask, ...) is refused
with one line, before any of it runs.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import os
import random
import shlex
import shutil
import sys
import time
from logging import getLogger
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from recbole.utils import set_color

from recbole_bet.errors import AlreadyRunning, ConfigError
from recbole_bet.safe_load import safe_load

try:
    import fcntl  # POSIX: the lock of a run's folder
except ImportError:  # pragma: no cover (Windows: runs are not locked)
    fcntl = None

RUNS = "runs"  # <checkpoint_dir>/runs/<run id>/: one folder per unfinished run
LOCK = "lock"
# keys that do not change what a run computes: they may differ between the killed run and its rerun
VOLATILE = {"fresh", "keep_every", "show_progress", "state", "result_file", "checkpoint_dir", "device", "gpu_id", "use_gpu",
            "log_wandb", "wandb_project", "export_table", "tune_allocator", "worker", "nproc", "world_size",
            "ip", "port", "offset", "single_spec", "local_rank"}


def fingerprint(config) -> dict[str, str]:
    """What a run computes from: every key of the final config but the volatile ones, as text."""
    return {str(k): repr(v) for k, v in sorted(config.final_config_dict.items(), key=lambda kv: str(kv[0])) if k not in VOLATILE}


def run_id(keys: dict[str, str]) -> str:
    """A run's name among the unfinished runs of a folder: 16 hex digits of the SHA-256 of its :func:`fingerprint`."""
    return hashlib.sha256(json.dumps(keys, sort_keys=True).encode()).hexdigest()[:16]


def runs_folder(checkpoint_dir) -> Path:
    """``<checkpoint_dir>/runs``: every unfinished run of that folder, one sub-folder each."""
    return Path(checkpoint_dir or "saved") / RUNS


class RunLock:
    """The lock a live process holds on its run's folder: ``flock`` on ``<folder>/lock``, which names the holder's pid.
    The kernel drops it when the process ends, however it ends, so a killed run's lock is free for its rerun (a stale
    lock is taken over); while it is held, a second process of the same run stops.

    Example::

        lock = RunLock.take(folder)   # AlreadyRunning("... already running as pid 1234 ...") if a live process holds it
        ...
        lock.release()
    """

    def __init__(self, path: Path, fd: int | None):
        self.path, self.fd = path, fd

    @classmethod
    def take(cls, folder: Path) -> "RunLock":
        """Hold ``folder``'s lock (making the folder), or raise AlreadyRunning naming the holder's pid. Without
        ``fcntl`` (not POSIX) nothing is locked."""
        path = Path(folder) / LOCK
        if fcntl is None:
            Path(folder).mkdir(parents=True, exist_ok=True)
            return cls(path, None)
        while True:
            Path(folder).mkdir(parents=True, exist_ok=True)
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:  # its run finished and removed the folder between the two calls
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
                os.close(fd)
                raise AlreadyRunning(f"this run is already running as pid {holder} (its state: {folder}); wait for it "
                                     "to end, or stop it first") from None
            if cls.same_file(fd, path):
                break
            os.close(fd)  # locked a file that a finishing run had just removed: take the new one
        holder = os.read(fd, 32).decode(errors="replace").strip()
        if holder:
            getLogger().info(f"taking over {folder} from pid {holder}, which no longer runs")
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        return cls(path, fd)

    @staticmethod
    def same_file(fd: int, path: Path) -> bool:
        try:
            return os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            return False

    def release(self, remove: bool = False) -> None:
        """Let go of the lock (``remove``: and delete the lock file first, the run's folder being emptied)."""
        if remove:
            self.path.unlink(missing_ok=True)
        if self.fd is not None:
            os.ftruncate(self.fd, 0)  # no holder: the next process takes it without calling this one gone
            os.close(self.fd)
            self.fd = None


def holder(folder: Path) -> int | None:
    """The pid of the live process running the unfinished run in ``folder``, or None (a killed run's)."""
    try:
        pid = int((Path(folder) / LOCK).read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
        return None
    return pid


class RunState:
    """An unfinished run's folder: named units of work, saved and loaded whole.

    Args:
        folder (Path): ``<checkpoint_dir>/runs/<run id>``.
        lock (RunLock, optional): this process's hold on it.
    """

    def __init__(self, folder: Path, lock: RunLock | None = None):
        self.folder, self.lock = Path(folder), lock
        # the budget clock: wall seconds that killed runs of this command spent on the budget under way, and when
        # this process started on it
        clock = self.folder / "elapsed.json"
        self.before = json.loads(clock.read_text())["seconds"] if clock.is_file() else 0.0
        self.started = time.time()
        self.owns_clock = True

    def __getstate__(self):
        # a copy sent to a ray task (a budget or a retraining) keeps units but neither reads nor writes the clock, and
        # holds no lock: the task measures its own time while this process holds the run
        return {**self.__dict__, "before": 0.0, "owns_clock": False, "lock": None}

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
        """This run's state, ``<checkpoint_dir>/runs/<run id>/`` (:func:`run_id`): what a killed run of the same keys
        kept there, or a new one (``fresh``: that state discarded). Other runs' folders beside it are left alone. The
        process holds the folder's lock until :meth:`finish` or :meth:`release`; a live process holding it already
        stops this one (AlreadyRunning). ``started``: when this process started (its budget clock's start; default
        now). A rerun computes with the thread count the run started with (:func:`use_threads`)."""
        keys = fingerprint(config)
        folder = runs_folder(config["checkpoint_dir"]) / run_id(keys)
        lock = RunLock.take(folder)
        try:
            if fresh:
                clear(folder)
            record = folder / "run.json"
            if record.is_file():
                use_threads(json.loads(record.read_text()).get("threads"))
            else:
                described = {"command": shlex.join(sys.argv), "cwd": os.getcwd(), "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                             "threads": torch.get_num_threads(), "keys": keys}
                write_atomically(record, lambda tmp: tmp.write_text(json.dumps(described, indent=1)))
        except BaseException:
            lock.release()
            raise
        state = cls(folder, lock)
        if started is not None:
            state.started = started
        return state

    def _path(self, name: str) -> Path:
        return self.folder / f"{name.replace('/', '--')}.pt"

    def load(self, name: str):
        """The unit ``name`` if it was finished, else None. Read without torch's full unpickler
        (:func:`recbole_bet.safe_load.safe_load`): a unit holding anything but tensors, arrays, plain data and the
        registered records is refused (UnsafeFileError), whatever placed it there."""
        return safe_load(self._path(name)) if self.has(name) else None

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

    def release(self) -> None:
        """This process stops working on the run (an exception ends it): the state stays, for a rerun."""
        if self.lock is not None:
            self.lock.release()

    def finish(self) -> None:
        """The run is done: nothing to continue. Its folder goes (the lock last), and ``runs/`` with it if empty."""
        clear(self.folder)
        if self.lock is not None:
            self.lock.release(remove=True)
        for folder in (self.folder, self.folder.parent):
            try:
                folder.rmdir()
            except OSError:  # not empty: another run's folder, or a lock file this process does not hold
                break


def clear(folder: Path) -> None:
    """Remove what ``folder`` holds but its lock."""
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.name == LOCK:
            continue
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def use_threads(started_with: int | None) -> None:
    """A rerun computes with the thread count its run started with (results are bit for bit the same only at the same
    count): set torch's where it differs, saying so in one line."""
    if started_with is None or started_with == torch.get_num_threads():
        return
    getLogger().warning(f"continuing with {started_with} CPU threads, as this run started (this process had "
                        f"{torch.get_num_threads()}): results are bit for bit the same only at the same count")
    torch.set_num_threads(started_with)


# ---------------------------------------------------------------------------
# Random streams and kept units: a phase, a search loop, a training's epochs


def random_state(loaders, rng=None) -> dict:
    """Every random stream a training phase draws from: torch's, numpy's and Python's global generators, each
    RecBole loader's own shuffling generator, and ``rng`` (a ``numpy.random.Generator``) if given. With
    :func:`set_random_state`, a phase computed once (a run of several budgets) leaves the streams where
    computing it again would, so each budget's result is the one a run of that budget alone gives."""
    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loaders": [loader.generator.get_state() for loader in loaders],
        "rng": rng.bit_generator.state if rng is not None else None,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict, loaders, rng=None) -> None:
    """Put every stream of :func:`random_state` back."""
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for loader, generator in zip(loaders, state["loaders"]):
        loader.generator.set_state(generator)
    if rng is not None and state["rng"] is not None:
        rng.bit_generator.state = state["rng"]
    if "cuda" in state:  # a process that sees fewer GPUs (a ray task) restores the ones it sees
        for device, generator in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(generator, device)


def budget_free_phase(shared: dict, resume, name: str, loaders, rng, compute):
    """The result of a phase that does not depend on the budget (BET's pretraining, magnitude pruning's full table,
    OptEmbed's supernet, CIESS's pretraining), computed once per run.

    At the run's first budget ``compute()`` makes it; it is kept in ``shared`` under ``name`` with every random
    stream as the phase left them (:func:`random_state`). At a later budget it is read back and
    the streams are put back there, so each budget is, bit for bit, its run alone. With ``resume`` (a run with
    checkpoints) the phase is also a unit of the unfinished run (:func:`kept_phase`): the rerun of a killed
    run reads it back rather than compute it again.

    Args:
        loaders: the run's RecBole loaders (their shuffling generators are among the streams).
        rng (np.random.Generator): the method's generator, also put back.
    """
    if name in shared:
        value, streams = shared[name]
        set_random_state(streams, loaders, rng)
        return value
    value = kept_phase(resume, name, loaders, rng, compute)
    shared[name] = (value, random_state(loaders, rng))
    return value


def kept_phase(resume, unit: str, loaders, rng, compute):
    """``compute()``, kept once it has finished as the unit ``unit`` of the unfinished run ``resume``
    (:mod:`recbole_bet.resume`) with every random stream as it left them (:func:`random_state`). The rerun of a
    killed run reads the value back and puts the streams back rather than compute it again, so what follows (a
    method's final training after its search) goes on as in the killed run. Without ``resume``: ``compute()``.

    Args:
        loaders: the run's RecBole loaders (their shuffling generators are among the streams).
        rng (np.random.Generator): the method's generator, also kept.
    """
    saved = restore_unit(resume, unit, loaders, rng)
    if saved is not None:
        return saved
    value = compute()
    keep_unit(resume, unit, value, loaders, rng)
    return value


def restore_unit(resume, unit: str, loaders, rng):
    """The value kept as ``unit`` by :func:`keep_unit`, with every random stream put back as it was then; None if
    there is none (or no ``resume``)."""
    saved = resume.load(unit) if resume is not None else None
    if saved is None:
        return None
    value, streams = saved
    set_random_state(streams, loaders, rng)
    return value


def keep_unit(resume, unit: str, value, loaders, rng) -> None:
    """Keep ``value`` as the unit ``unit`` of the unfinished run ``resume`` with every random stream as it is now
    (:func:`random_state`), atomically; nothing without ``resume``."""
    if resume is not None:
        resume.save(unit, (value, random_state(loaders, rng)))


class KeptLoop:
    """A search loop's iterations (ESAPN's episodes, CIESS's agent steps, PEP's threshold epochs, OptEmbed's
    generations), each kept once finished as the unit ``unit`` of the unfinished run ``resume``
    (:mod:`recbole_bet.resume`), with every random stream: the rerun of a run killed in the middle of the loop goes on
    after its last finished iteration, and ends where the killed run would have. Without ``resume`` nothing is kept.

    Example::

        loop = KeptLoop(resume, "sparsity0.9/esapn-search-epochs", loaders, rng)
        kept = loop.restore()  # the last kept iteration's state (the streams put back), or None
        first = 0 if kept is None else kept["next"]
        for i in range(first, n):
            ...
            loop.keep({"next": i + 1, ...})
    """

    def __init__(self, resume, unit: str, loaders, rng):
        self.resume, self.unit, self.loaders, self.rng = resume, unit, loaders, rng

    def restore(self) -> dict | None:
        """The last kept iteration's state, the streams put back; None if there is none."""
        state = restore_unit(self.resume, self.unit, self.loaders, self.rng)
        if state is None:
            return None
        getLogger().info(set_color("continuing", "green")
                         + f" {self.unit} after its iteration {state['next'] - 1}, kept by a killed run of this command")
        return state

    def keep(self, state: dict) -> None:
        """Keep ``state`` (it must hold ``next``, the iteration to go on with) and every random stream, atomically."""
        keep_unit(self.resume, self.unit, state, self.loaders, self.rng)

    def keep_part(self, i: int, value) -> None:
        """Keep what iteration ``i`` adds to a store that only grows (CIESS's replay buffers: the step's transitions),
        as the unit ``<unit>-part<i>``, before :meth:`keep` keeps the iteration: the kept state then stays the same
        size at every iteration instead of holding the whole store."""
        if self.resume is not None:
            self.resume.save(self.part_unit(i), value)

    def parts(self, n: int):
        """What :meth:`keep_part` kept for iterations ``0 .. n-1``, one at a time, in order."""
        for i in range(n if self.resume is not None else 0):
            yield self.resume.load(self.part_unit(i))

    def part_unit(self, i: int) -> str:
        """The unit that keeps iteration ``i``'s part (an ``-epochs`` unit: forgotten with the budget's kept epochs)."""
        return f"{self.unit}-part{i}"


class KeptEpochs:
    """The epochs of one training (``BudgetTrainer.fit_phase`` with a ``progress`` unit), each kept after its
    validation as the unit ``unit`` of the unfinished run ``state``: the rerun of a run killed during the training goes
    on from the epoch after the last kept one, as the killed run would have.

    Args:
        state (RunState): the unfinished run.
        unit (str): this training's unit, e.g. ``sparsity0.9/final-epochs``.
        loaders: the run's RecBole loaders (their shuffling generators are among the streams).
        carried (optional): what else the phase carries from one epoch to the next, beside the model, its optimiser
            and the global random streams (OptEmbed's threshold optimiser and width stream): an object with
            ``state_dict()`` and ``load_state_dict(state)``.
    """

    def __init__(self, state: "RunState", unit: str, loaders, carried=None):
        self.state, self.unit, self.loaders, self.carried = state, unit, loaders, carried
        self.validations = 0  # this process's, of this training

    def keep(self, trainer, epoch: int) -> None:
        """Keep (atomically) everything RecBole's ``fit`` carries to the next epoch: the weights and the optimiser,
        the epoch and early-stopping counters, the best score and result, the curve, every random stream and what the
        phase carries; and, when the best epoch's checkpoint is not the one kept, it as the file unit ``<unit>-best``:
        a hard link, which costs no copy, as ``BudgetTrainer._save_checkpoint`` replaces the checkpoint rather than
        rewriting it. The best is kept first: a kill between the two leaves the previous state with this epoch's best,
        which the rerun's replay of the epochs since writes again. With the key ``keep_every`` k, only every k-th
        validation (of this process) is kept: fewer bytes written, and a kill loses up to k validations' epochs."""
        self.validations += 1
        if self.validations % max(1, int(trainer.config["keep_every"] or 1)):
            return
        best, checkpoint = self.state.kept_file(f"{self.unit}-best"), Path(trainer.saved_model_file)
        if checkpoint.is_file() and (best is None or not os.path.samefile(best, checkpoint)):
            self.state.keep_file(f"{self.unit}-best", checkpoint)
        self.state.save(self.unit, {
            "epoch": epoch,
            "stopped": trainer.cur_step > trainer.stopping_step,  # RecBole's early_stopping ends fit here
            "model": trainer.model.state_dict(),
            "optimizer": trainer.optimizer.state_dict(),
            "cur_step": trainer.cur_step,
            "best_valid_score": trainer.best_valid_score,
            "best_valid_result": trainer.best_valid_result,
            "curve": list(trainer.curve),
            "train_loss_dict": dict(trainer.train_loss_dict),
            "streams": random_state(self.loaders),
            "carried": self.carried.state_dict() if self.carried is not None else None,
        })

    def restore(self, trainer) -> bool:
        """Put back the training kept by :meth:`keep` into ``trainer`` (nothing if there is none), so that ``fit``
        goes on from the next epoch as the killed run would have. Returns whether the training had already ended."""
        saved = self.state.load(self.unit)
        if saved is None:
            return False
        trainer.model.load_state_dict(saved["model"])
        trainer.optimizer.load_state_dict(saved["optimizer"])
        trainer.start_epoch = saved["epoch"] + 1
        trainer.cur_step, trainer.best_valid_score = saved["cur_step"], saved["best_valid_score"]
        trainer.best_valid_result, trainer.curve = saved["best_valid_result"], list(saved["curve"])
        trainer.train_loss_dict = dict(saved["train_loss_dict"])
        link_or_copy(self.state.kept_file(f"{self.unit}-best"), Path(trainer.saved_model_file))  # under this run's name
        set_random_state(saved["streams"], self.loaders)
        if self.carried is not None:
            self.carried.load_state_dict(saved["carried"])
        getLogger().info(set_color("continuing", "green") + f" after epoch {saved['epoch']}, kept by a killed run of this command")
        return bool(saved["stopped"]) or trainer.start_epoch >= trainer.epochs


# ---------------------------------------------------------------------------
# Files written whole or not at all


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


# ---------------------------------------------------------------------------
# The unfinished runs of a folder: list them, remove one (python -m recbole_bet.resume list|remove <id>)


def unfinished_runs(checkpoint_dir) -> list[dict]:
    """Every unfinished run under ``<checkpoint_dir>/runs``, oldest first: ``id``, ``folder``, ``pid`` (of the live
    process running it, or None: killed or interrupted), and what its ``run.json`` says (``command``, ``cwd``,
    ``started``, ``threads``, ``keys``)."""
    runs = []
    for record in sorted(runs_folder(checkpoint_dir).glob("*/run.json")):
        try:
            described = json.loads(record.read_text())
        except (OSError, ValueError):
            continue
        runs.append(dict(described, id=record.parent.name, folder=record.parent, pid=holder(record.parent)))
    return sorted(runs, key=lambda run: run.get("started", ""))


def progress_line(run: dict) -> str:
    """Where an unfinished run stands: its finished budgets, its last kept unit and the time spent on the budget under
    way (by its killed runs, up to their last kept unit)."""
    keys = run.get("keys", {})
    try:
        sparsity = ast.literal_eval(keys.get("sparsity", "None"))
    except (ValueError, SyntaxError):
        sparsity = None
    budgets = len(sparsity) if isinstance(sparsity, (list, tuple)) else 1
    folder = Path(run["folder"])
    units = sorted((p for p in folder.glob("*.pt*") if not p.name.endswith(".tmp")), key=lambda p: p.stat().st_mtime)
    done = sum(1 for p in units if p.name.endswith("--result.pt"))
    line = f"budgets finished {done} of {budgets}"
    if units:
        ago = time.time() - units[-1].stat().st_mtime
        line += f"; last kept {units[-1].stem.replace('--', '/')} ({ago / 60:.0f} min ago)"
    clock = folder / "elapsed.json"
    if clock.is_file():
        line += f"; {json.loads(clock.read_text())['seconds']:.0f} s on the budget under way"
    return line


def describe(run: dict) -> str:
    """An unfinished run in three lines: id, state and what it computes; its command; its progress."""
    keys = {k: v.strip("'") for k, v in run.get("keys", {}).items()}
    what = " ".join(f"{k}={keys[k]}" for k in ("model", "dataset", "method", "sparsity", "seed") if k in keys)
    state = f"running as pid {run['pid']}" if run["pid"] else "stopped (killed or interrupted)"
    return (f"{run['id']}  {state}  {what}\n    command: {run.get('command', '?')}  (in {run.get('cwd', '?')})\n"
            f"    started {run.get('started', '?')}; {progress_line(run)}")


def remove_run(checkpoint_dir, run: str) -> Path:
    """Discard the unfinished run ``run`` (an id of :func:`unfinished_runs`) of ``checkpoint_dir``; not one that a
    live process is running (AlreadyRunning). Returns its folder."""
    folder = runs_folder(checkpoint_dir) / run
    if not run or "/" in run or not (folder / "run.json").is_file():
        known = ", ".join(r["id"] for r in unfinished_runs(checkpoint_dir)) or "none"
        raise ConfigError(f"no unfinished run {run!r} in {runs_folder(checkpoint_dir)}; its runs: {known}")
    state = RunState(folder, RunLock.take(folder))
    state.finish()
    return folder


def list_text(checkpoint_dir) -> str:
    runs = unfinished_runs(checkpoint_dir)
    if not runs:
        return f"no unfinished run in {runs_folder(checkpoint_dir)}"
    lines = [f"{len(runs)} unfinished run{'s' if len(runs) > 1 else ''} in {runs_folder(checkpoint_dir)}:"]
    lines += [describe(run) for run in runs]
    lines.append(f"Continue one: rerun its command in its folder. Discard one: python -m recbole_bet.resume remove <id> "
                 f"--checkpoint_dir={checkpoint_dir}")
    return "\n".join(lines)


def main(argv=None) -> int:
    """``list`` the unfinished runs of a checkpoint folder, or ``remove`` one by its id."""
    parser = argparse.ArgumentParser(prog="python -m recbole_bet.resume", description=main.__doc__)
    parser.add_argument("action", choices=("list", "remove"))
    parser.add_argument("run", nargs="?", help="the id of the run to remove (as listed)")
    parser.add_argument("--checkpoint_dir", default="saved")
    args = parser.parse_args(argv)
    try:
        if args.action == "list":
            print(list_text(args.checkpoint_dir))
        else:
            print(f"removed {remove_run(args.checkpoint_dir, args.run or '')}")
    except ConfigError as error:
        print(f"{parser.prog}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
