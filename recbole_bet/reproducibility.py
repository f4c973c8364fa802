"""One seed, one result, bit for bit on the same machine: what RecBole's ``init_seed`` leaves to be done."""

from __future__ import annotations

import os
from contextlib import contextmanager

import torch


@contextmanager
def deterministic_algorithms(enabled: bool):
    """torch's deterministic algorithms while a run with RecBole's ``reproducibility: True`` lasts.

    RecBole's ``init_seed`` only sets cuDNN's flags. On a CPU with more than one thread, torch
    sums the gradient of an indexing with repeated indices (``user_all_embeddings[user]`` in
    RecBole's losses) by atomic adds, in whatever order the threads reach them: two runs of one
    seed then differ in the last bits from the first batch on, and may stop at other epochs. The
    deterministic kernels add in index order, no slower within this machine's noise (gowalla-s).
    ``warn_only``: an operation without a deterministic kernel (some of RecBole's other models, on
    a GPU) warns instead of failing. The previous setting is restored afterwards.
    """
    previous = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    if enabled:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS's own condition, on a GPU
        torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(previous[0], warn_only=previous[1])
