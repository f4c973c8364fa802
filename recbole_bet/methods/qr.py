"""QR, the quotient-remainder trick: every row a combination of two small shared tables.

Shi, Mudigere, Naumov, Yang, "Compositional Embeddings Using Complementary Partitions for Memory-Efficient
Recommendation Systems", KDD 2020 (code: ``facebookresearch/dlrm``, ``tricks/qr_embedding_bag.py``, read, not
copied). Row ``n`` of a field is ``Q[n // m] ⊙ R[n % m]`` (the paper's default, element-wise product;
``qr_combine: sum`` adds them): the quotient and remainder partitions are complementary, so no two rows share both
buckets, and the bucket of a row is computed from its id: nothing per row is stored.

The paper and the code fix the divisor ``m`` (the "number of collisions") and let the size follow. Here the budget
fixes the size: each field gets its share of the budget (in proportion to its rows; the items get what the users
leave), and ``m`` is the divisor whose two tables, ``ceil(n / m) + m`` rows of ``width`` columns, come closest to
that share from below (:func:`qr_divisor`). ``m + ceil(n / m)`` takes nearly every integer between ``2 sqrt(n)`` and
``n + 1``, so what is left of the budget is under ``width`` parameters in all (the users' rest goes to the items).
The width is d_max (the table the backbone reads) unless even ``m = sqrt(n)`` does not fit; then the largest width
that fits. Under a byte budget (``budget_unit: bytes``) the same choice is made in the bytes the export writes
(:class:`~recbole_bet.budget.SharedCost`): the bucket tables' values at ``value_dtype`` and their per-bucket-row
scales, after the file's headers; the quotient and remainder are computed, so no row stores anything, and what is
left of the bytes is under one bucket row of each table. Both tables start so that a row starts at the backbone's own scale (:class:`~recbole_bet.embedding.SharedEmbedding`);
the code's initialisation, uniform in ``[sqrt(1 / n), 1]``, starts every row positive. Trained like every method, by
the final training alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from recbole_bet.budget import COMBINERS, Budget, FieldBuckets, Partition, SharedBuckets, SharedCost
from recbole_bet.errors import BudgetError
from recbole_bet.methods.base import Method, Outcome, RunContext, train_final
from recbole_bet.settings import CheckedSettings, choice, integer


@dataclass(frozen=True)
class QrSettings(CheckedSettings):
    """QR's keys.

    Attributes:
        qr_combine (str): how a row's quotient and remainder vectors make it: ``mult`` (element-wise product, the
            paper's default) or ``sum``.
        qr_width (int | None): columns of the bucket vectors; ~ (none): d_max. Narrower where the budget cannot hold
            the smallest pair of tables at this width.
    """

    prefix = "qr_"

    qr_combine: str = field(default="mult", metadata=choice(*COMBINERS))
    qr_width: int | None = field(default=None, metadata=integer(1, optional=True))


def qr_rows(n: int, divisor: np.ndarray) -> np.ndarray:
    """Rows of the quotient and remainder tables together for ``n`` ids: ``ceil(n / m) + m``."""
    return -(-n // divisor) + divisor


def qr_divisor(n: int, rows: int) -> int | None:
    """The divisor ``m`` in ``[1, n]`` whose two tables have the most rows within ``rows`` (ties: the larger ``m``,
    a larger remainder table); None if even the smallest pair does not fit."""
    return best_divisor(qr_rows(n, np.arange(1, n + 1, dtype=np.int64)), rows)


def best_divisor(costs: np.ndarray, share: int) -> int | None:
    """The divisor (``costs[m - 1]`` is divisor ``m``'s) that costs the most within ``share`` (ties: the larger);
    None if none fits."""
    fits = costs <= share
    if not fits.any():
        return None
    return int(np.flatnonzero(fits & (costs == costs[fits].max()))[-1]) + 1


def qr_costs(cost: SharedCost, field: str, n: int, width: int) -> np.ndarray:
    """What ``field``'s two tables of ``n`` rows at ``width`` cost at every divisor ``1 .. n``."""
    divisors = np.arange(1, n + 1, dtype=np.int64)
    return cost.buckets(field, -(-n // divisors), width) + cost.buckets(field, divisors, width)


def qr_field(cost: SharedCost, field: str, n: int, share: int, width: int, combine: str) -> FieldBuckets:
    """``field``'s ``n`` rows in at most ``share`` (parameters or bytes, :class:`SharedCost`): width ``width`` if the
    cheapest pair of tables fits there, else the largest width that fits (a pair costs more the wider it is).

    Raises:
        BudgetError: not even one column of the cheapest pair fits.
    """
    low, high = 0, width  # the widest width whose cheapest pair fits, by bisection
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if qr_costs(cost, field, n, middle).min() <= share else (low, middle - 1)
    if low < 1:
        raise BudgetError(f"QR needs at least {int(qr_costs(cost, field, n, 1).min())} {cost.unit} for {n} rows (two "
                          f"tables of one column), its share of the budget is {share}")
    divisor = best_divisor(qr_costs(cost, field, n, low), share)
    partitions = (Partition("quotient", -(-n // divisor), divisor=divisor), Partition("remainder", divisor, divisor=divisor))
    return FieldBuckets(n, low, partitions, combine)


def qr_layout(budget: Budget, combine: str = "mult", width: int | None = None) -> SharedBuckets:
    """QR's tables for ``budget``: users in their share of the budget, items in the rest; never over the budget (in
    parameters, or the exported file's bytes under a byte budget)."""
    width = budget.d_max if width is None else min(width, budget.d_max)
    cost = SharedCost(budget)
    users = qr_field(cost, "user", budget.n_users, cost.total * budget.n_users // budget.n_rows, width, combine)
    items = qr_field(cost, "item", budget.n_items, cost.total - cost.field("user", users), width, combine)
    return SharedBuckets(users, items, budget.d_max)


class QuotientRemainder(Method):
    name = "qr"
    settings_class = QrSettings
    layout_kind = "shared"  # bucket tables: their values and scales are what a byte budget counts
    shared_partitions = ("quotient", "remainder")

    def run(self, context: RunContext) -> Outcome:
        layout = qr_layout(context.budget, context.settings.qr_combine, context.settings.qr_width)
        outcome = train_final(context, layout)
        outcome.extra = {"qr": {"settings": self.settings_record(context), "tables": layout.summary()}}
        return outcome
