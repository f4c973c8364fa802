"""ES, equal sizes: the paper's first fixed-size baseline (Qu et al., WSDM 2024, section 4.1)."""

from __future__ import annotations

import numpy as np

from recbole_bet.budget import Action, Budget, fit_to_total, frequency_rank
from recbole_bet.methods.base import FixedLayoutMethod, RunContext


def equal_sizes(budget: Budget, user_frequency: np.ndarray, item_frequency: np.ndarray) -> Action:
    """One size ``floor(budget / n_rows)`` for every row; the remainder (< n_rows) goes
    one dimension each to the most frequent users and items (ranked together)."""
    size = min(budget.attainable // budget.n_rows, budget.d_max)
    sizes = np.full(budget.n_rows, size, dtype=np.int64)
    order = frequency_rank(np.concatenate([user_frequency, item_frequency]))
    return Action.from_rows(fit_to_total(sizes, budget.attainable, budget.d_max, order), budget)


class EqualSizes(FixedLayoutMethod):
    name = "es"

    def layout(self, context: RunContext) -> Action:
        return equal_sizes(context.budget, context.user_frequency, context.item_frequency)
