"""BET's selective retraining (Algorithm 1, line 22 of Qu et al., WSDM 2024): the top measured actions trained to
convergence, one by one or as ray tasks, with the same result.

Each retraining of rank ``k`` starts from its own seed, :func:`retraining_seed`, whatever ran before
it: every random stream (torch, numpy, Python, RecBole's loaders) is seeded with it before the
retraining. A ray task rebuilds the run's data from its config (RecBole's split is deterministic),
builds the backbone, loads the start weights and trains on as many threads as the parent process, so
``--ray=True`` gives, bit for bit, the retrainings of ``--ray=False``; only the wall time changes.
"""

from __future__ import annotations

import copy

import torch
from recbole.utils import init_seed

from recbole_bet.fanout import ray_task, task_splits
from recbole_bet.trainer import BudgetTrainer


def retraining_seed(seed: int, rank: int) -> int:
    """The seed of the ``rank``-th retraining of a run seeded ``seed``."""
    return int(seed) + 7919 * (rank + 1)


def retraining_progress(resume, budget_key: str, rank: int):
    """The unit of an unfinished run (:mod:`recbole_bet.resume`) that keeps the ``rank``-th retraining's epochs; None
    without one."""
    return (resume, f"{budget_key}/bet-retrain{rank}-epochs") if resume is not None else None


def seed_retraining(trainer: BudgetTrainer, rank: int, train_data, valid_data) -> None:
    """Seed every random stream (torch, numpy, Python, RecBole's loaders) with :func:`retraining_seed`."""
    seed = retraining_seed(trainer.config["seed"], rank)
    init_seed(seed, trainer.config["reproducibility"])
    for loader in (train_data, valid_data):
        loader.generator.manual_seed(seed)


def rank_retrain(trainer: BudgetTrainer, start: dict, action, rank: int, epochs: int, train_data, valid_data) -> tuple[dict, dict]:
    """A short retraining that ranks the top actions before the full one (``bet_retrain_rank_epochs``): ``epochs``
    epochs of RecBole's training (its optimiser, learner and learning rate) from ``start`` under ``action``, seeded as
    the ``rank``-th retraining.

    Returns:
        (the validation result after the last epoch, the weights then)
    """
    seed_retraining(trainer, rank, train_data, valid_data)
    trainer.model.load_state_dict(start)
    trainer.model.apply_action(action)
    trainer.optimizer = trainer._build_optimizer()
    for epoch in range(epochs):
        trainer._train_epoch(train_data, epoch, show_progress=False)
    trainer.model.clear_cached_embeddings()
    valid = trainer.evaluate(valid_data, load_best_model=False)
    return valid, copy.deepcopy(trainer.model.state_dict())


def retrain(trainer: BudgetTrainer, start: dict, action, rank: int, train_data, valid_data, progress=None,
            stopping_step: int | None = None) -> tuple[dict, str, list]:
    """Train ``action`` from the weights ``start`` to convergence (patience ``stopping_step``, default RecBole's)
    into ``<run_name>-retrain<rank>.pth``; with ``progress`` (:func:`retraining_progress`), a killed run's
    retraining goes on from its last kept epoch.

    Returns:
        (the best validation result, its checkpoint, the validation curve)
    """
    seed_retraining(trainer, rank, train_data, valid_data)
    trainer.model.load_state_dict(start)
    trainer.model.apply_action(action)
    valid = trainer.fit_phase(f"retrain{rank}", train_data, valid_data, stopping_step, progress=progress)
    return valid, trainer.saved_model_file, trainer.curve


def retrain_task(config, run_name: str, start: dict, action, rank: int, threads: int, progress=None,
                 stopping_step: int | None = None) -> tuple[dict, str, list]:
    """:func:`retrain` in another process (a ray task): the run's data and backbone rebuilt from ``config``."""
    with task_splits(config, threads) as (train_data, valid_data, _):
        model = config.model_class(config, train_data._dataset).to(config["device"])
        trainer = BudgetTrainer(config, model, run_name=run_name)
        return retrain(trainer, start, action, rank, train_data, valid_data, progress, stopping_step)


def ray_retrainings(config, run_name: str, start: dict, jobs: list[tuple[int, object]], resume=None, budget_key: str = "",
                    stopping_step: int | None = None):
    """Submit ``(rank, action)`` retrainings as ray tasks (one CPU, or one GPU on a GPU run); yields
    ``(rank, (valid, checkpoint, curve))`` in rank order. With ``resume``, each task keeps its epochs there
    (:func:`retraining_progress`; the tasks share this machine's file system, or a cluster's shared one)."""
    import ray

    task = ray_task(config, retrain_task)
    start_ref = ray.put(start)
    refs = [(rank, task.remote(config, run_name, start_ref, action, rank, torch.get_num_threads(),
                               retraining_progress(resume, budget_key, rank), stopping_step)) for rank, action in jobs]
    for rank, ref in refs:
        yield rank, ray.get(ref)
