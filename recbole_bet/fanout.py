"""BET's selective retrainings (Algorithm 1, line 22), and the budgets of a run of several, one by one or as ray
tasks, with the same result.

Each retraining of rank ``k`` starts from its own seed, :func:`retraining_seed`, whatever ran before
it: every random stream (torch, numpy, Python, RecBole's loaders) is seeded with it before the
retraining. A ray task rebuilds the run's data from its config (RecBole's split is deterministic),
builds the backbone, loads the start weights and trains on as many threads as the parent process, so
``--ray=True`` gives, bit for bit, the retrainings of ``--ray=False``; only the wall time changes.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from recbole.utils import init_seed

from recbole_bet.trainer import BudgetTrainer


def retraining_seed(seed: int, rank: int) -> int:
    """The seed of the ``rank``-th retraining of a run seeded ``seed``."""
    return int(seed) + 7919 * (rank + 1)


def retraining_progress(resume, budget_key: str, rank: int):
    """The unit of an unfinished run (:mod:`recbole_bet.resume`) that keeps the ``rank``-th retraining's epochs; None
    without one."""
    return (resume, f"{budget_key}/bet-retrain{rank}-epochs") if resume is not None else None


def retrain(trainer: BudgetTrainer, start: dict, action, rank: int, train_data, valid_data, progress=None,
            stopping_step: int | None = None) -> tuple[dict, str, list]:
    """Train ``action`` from the weights ``start`` to convergence (patience ``stopping_step``, default RecBole's)
    into ``<run_name>-retrain<rank>.pth``; with ``progress`` (:func:`retraining_progress`), a killed run's
    retraining goes on from its last kept epoch.

    Returns:
        (the best validation result, its checkpoint, the validation curve)
    """
    seed = retraining_seed(trainer.config["seed"], rank)
    init_seed(seed, trainer.config["reproducibility"])
    for loader in (train_data, valid_data):
        loader.generator.manual_seed(seed)
    trainer.model.load_state_dict(start)
    trainer.model.apply_action(action)
    valid = trainer.fit_phase(f"retrain{rank}", train_data, valid_data, stopping_step, progress=progress)
    return valid, trainer.saved_model_file, trainer.curve


def retrain_task(config, run_name: str, start: dict, action, rank: int, threads: int, progress=None,
                 stopping_step: int | None = None) -> tuple[dict, str, list]:
    """:func:`retrain` in another process (a ray task): the run's data and backbone rebuilt from ``config``."""
    from recbole.data import create_dataset, data_preparation

    from recbole_bet.quick_start import deterministic_algorithms

    torch.set_num_threads(threads)  # the parent's: the same summation order, the same weights
    config.compatibility_settings()  # RecBole's numpy aliases, which its Config sets when made, not when unpickled
    with deterministic_algorithms(config["reproducibility"]):
        init_seed(config["seed"], config["reproducibility"])
        train_data, valid_data, _ = data_preparation(config, create_dataset(config))
        model = config.model_class(config, train_data._dataset).to(config["device"])
        trainer = BudgetTrainer(config, model, run_name=run_name)
        return retrain(trainer, start, action, rank, train_data, valid_data, progress, stopping_step)


def _init_ray(config) -> None:
    """Start a local ray instance, or join ``ray_address``'s cluster, unless this process is already in one."""
    import ray

    if not ray.is_initialized():
        root = str(Path(__file__).resolve().parents[1])  # workers import recbole_bet as this process does
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}}
        if config["ray_address"]:
            ray.init(address=config["ray_address"], runtime_env=runtime_env)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)


def _ray_task(config, function):
    """``function`` as a ray task of one CPU (one GPU on a GPU run), in this run's ray instance or cluster."""
    import ray

    _init_ray(config)
    gpu = torch.device(config["device"]).type == "cuda"
    return ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=0)(function)


def ray_retrainings(config, run_name: str, start: dict, jobs: list[tuple[int, object]], resume=None, budget_key: str = "",
                    stopping_step: int | None = None):
    """Submit ``(rank, action)`` retrainings as ray tasks (one CPU, or one GPU on a GPU run); yields
    ``(rank, (valid, checkpoint, curve))`` in rank order. With ``resume``, each task keeps its epochs there
    (:func:`retraining_progress`; the tasks share this machine's file system, or a cluster's shared one)."""
    import ray

    task = _ray_task(config, retrain_task)
    start_ref = ray.put(start)
    refs = [(rank, task.remote(config, run_name, start_ref, action, rank, torch.get_num_threads(),
                               retraining_progress(resume, budget_key, rank), stopping_step)) for rank, action in jobs]
    for rank, ref in refs:
        yield rank, ray.get(ref)


def budget_task(config, own, sparsity_settings, key: str, shared: dict, saved: bool, resume, threads: int) -> dict:
    """One budget of a run of several in another process (a ray task): the run's data rebuilt from ``config``,
    then the budget as the run would have run it, from what the method shares between budgets (``shared``)."""
    import time

    from recbole.data import create_dataset, data_preparation

    from recbole_bet.quick_start import _run_budget, deterministic_algorithms

    started = time.time()
    torch.set_num_threads(threads)
    config.compatibility_settings()
    # BET's retrainings run here, one by one (the same result: each has its own seed); as nested ray tasks they
    # could wait forever for the GPU this task holds
    config["ray"] = False
    with deterministic_algorithms(config["reproducibility"]):
        init_seed(config["seed"], config["reproducibility"])
        splits = data_preparation(config, create_dataset(config))
        return _run_budget(config, sparsity_settings, own, splits, shared, saved, started, resume, key)


def ray_budgets(config, own, todo: list, shared: dict, saved: bool, resume):
    """Submit ``(sparsity, key, settings)`` budgets as ray tasks (one CPU, or one GPU on a GPU run); yields their
    results in order. Each task writes its own result file and table, on this machine's file system (or a
    cluster's shared one)."""
    import ray

    task = _ray_task(config, budget_task)
    shared_ref = ray.put(shared)
    refs = [task.remote(config, own, settings, key, shared_ref, saved, resume, torch.get_num_threads()) for _, key, settings in todo]
    for ref in refs:
        yield ray.get(ref)
