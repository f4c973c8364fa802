"""Work in other processes, with the result of this one: ray tasks (a run's later budgets, BET's selective
retrainings), each on one CPU (one GPU on a GPU run), in a local ray instance or the cluster at ``ray_address``.

A task rebuilds the run's data from its config (:func:`task_splits`; RecBole's split is deterministic) and trains on
as many threads as the parent process, so a task computes bit for bit what the parent would have. ray is an optional
dependency at run time: it is imported only where a task is submitted.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import torch
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from recbole_bet.reproducibility import deterministic_algorithms


@contextmanager
def task_splits(config, threads: int):
    """In a task: the parent's thread count and deterministic algorithms for as long as the block lasts, the seed set,
    and the run's ``(train, valid, test)`` loaders rebuilt from ``config``."""
    torch.set_num_threads(threads)  # the parent's: the same summation order, the same weights
    config.compatibility_settings()  # RecBole's numpy aliases, which its Config sets when made, not when unpickled
    with deterministic_algorithms(config["reproducibility"]):
        init_seed(config["seed"], config["reproducibility"])
        yield data_preparation(config, create_dataset(config))


def init_ray(config) -> None:
    """Start a local ray instance, or join ``ray_address``'s cluster, unless this process is already in one."""
    import ray

    if not ray.is_initialized():
        root = str(Path(__file__).resolve().parents[1])  # workers import recbole_bet as this process does
        runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}}
        if config["ray_address"]:
            ray.init(address=config["ray_address"], runtime_env=runtime_env)
        else:
            ray.init(include_dashboard=False, log_to_driver=False, runtime_env=runtime_env)


def ray_task(config, function):
    """``function`` as a ray task of one CPU (one GPU on a GPU run), in this run's ray instance or cluster."""
    import ray

    init_ray(config)
    gpu = torch.device(config["device"]).type == "cuda"
    return ray.remote(num_cpus=1, num_gpus=1 if gpu else 0, max_retries=0)(function)
