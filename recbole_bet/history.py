"""RecBole's full-ranking evaluation batches, with each user's items gathered by numpy instead of per-user tensors.

RecBole's ``FullSortEvalDataLoader`` keeps every user's training history and
validation (or test) positives as one small tensor per user; its
``collate_fn`` builds each batch's ``(history_u, history_i)`` and
``(positive_u, positive_i)`` with one ``torch.full_like`` per user and a
``torch.cat``: a Python loop over the users of every batch, which made a
masked LightGCN's validation on full Gowalla 14% slower (3.50 s against
3.06 s, ``bench/evaluation.py``). :class:`UserItemIndex` holds the same
items as flat arrays (one offset per user, CSR-like) and gathers a batch's
in a few vectorised numpy calls: the same tensors, in the same order, so the
same metrics.

:func:`index_user_items` installs it on a loader (once); BudgetTrainer's
``evaluate`` does so for every loader it evaluates.
"""

from __future__ import annotations

import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader


class UserItemIndex:
    """Items per user id, flattened: ``items[offsets[u]:offsets[u] + counts[u]]`` are user ``u``'s, in RecBole's order.

    Args:
        per_user: RecBole's object array, one int64 tensor per user id (or ``None`` for a user without any).
    """

    def __init__(self, per_user: np.ndarray):
        parts = [np.empty(0, dtype=np.int64) if items is None else np.asarray(items, dtype=np.int64) for items in per_user]
        self.counts = np.fromiter((len(part) for part in parts), dtype=np.int64, count=len(parts))
        self.offsets = np.concatenate([[0], np.cumsum(self.counts)[:-1]]).astype(np.int64)
        self.items = np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    def gather(self, uids: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """``(row, item)`` pairs of the users ``uids``: RecBole's ``(cat(full_like(items_u, i)), cat(items_u))``."""
        counts = self.counts[uids]
        rows = np.repeat(np.arange(len(uids), dtype=np.int64), counts)
        # position of every gathered item: its user's offset, plus its rank within the user's items
        firsts = np.cumsum(counts) - counts
        positions = np.repeat(self.offsets[uids] - firsts, counts) + np.arange(int(counts.sum()), dtype=np.int64)
        return torch.from_numpy(rows), torch.from_numpy(self.items[positions])


class IndexedCollate:
    """A replacement for ``FullSortEvalDataLoader.collate_fn`` (non-sequential models) over :class:`UserItemIndex`."""

    def __init__(self, loader: FullSortEvalDataLoader):
        self.user_df, self.uid_field = loader.user_df, loader.uid_field
        self.history = UserItemIndex(loader.uid2history_item)
        self.positive = UserItemIndex(loader.uid2positive_item)

    def __call__(self, index):
        user_df = self.user_df[np.array(index)]
        uids = user_df[self.uid_field].numpy()
        positive_u, positive_i = self.positive.gather(uids)
        return user_df, self.history.gather(uids), positive_u, positive_i


def index_user_items(loader) -> None:
    """Make ``loader`` (RecBole's full-ranking loader of a general model) collate with :class:`IndexedCollate`.

    Anything else (a sequential model's loader, a negative-sampling evaluation loader, ``None``) is left as it is.
    """
    if not isinstance(loader, FullSortEvalDataLoader) or loader.is_sequential or isinstance(loader.collate_fn, IndexedCollate):
        return
    loader.collate_fn = IndexedCollate(loader)
