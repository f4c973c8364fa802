"""Warnings of the libraries under us that a user cannot act on, silenced narrowly (by module and message).

A normal run printed six: two pandas FutureWarnings from RecBole's dataset (its ``fillna(inplace=True)``
on a column), torch's deprecation of ``torch.sparse.FloatTensor`` inside RecBole's LightGCN and NGCF,
and torch's deprecation of ``torch.cuda.amp.GradScaler`` inside RecBole's Trainer. Each filter names the
module the warning is raised from and the start of its message, so the same warning from anywhere else,
and every other warning, still shows.
"""

from __future__ import annotations

import warnings

KNOWN = (
    # (category, module regex, message regex)
    (FutureWarning, r"recbole\.data\.dataset\.dataset", r"A value is trying to be set on a copy of a DataFrame or Series"),
    (UserWarning, r"recbole\.model\.general_recommender\.(lightgcn|ngcf)", r"torch\.sparse\.SparseTensor\(indices, values"),
    (FutureWarning, r"recbole\.trainer\.trainer", r"`torch\.cuda\.amp\.GradScaler\(args\.\.\.\)` is deprecated"),
)


def silence_known_warnings() -> None:
    """Install the filters of :data:`KNOWN` (idempotent: ``filterwarnings`` replaces an equal filter)."""
    for category, module, message in KNOWN:
        warnings.filterwarnings("ignore", message=message, category=category, module=module)
