"""MR, mixed random sizes: the paper's second fixed-size baseline (Qu et al., WSDM 2024, section 4.1)."""

from __future__ import annotations

import numpy as np

from recbole_bet.budget import Action, Budget, fit_to_total, frequency_rank
from recbole_bet.methods.base import FixedLayoutMethod, RunContext


def mixed_random(
    budget: Budget, user_frequency: np.ndarray, item_frequency: np.ndarray, rng: np.random.Generator
) -> Action:
    """Sizes drawn uniformly from ``[1, d_max]`` per row, scaled to the budget, repaired to use it exactly."""
    drawn = rng.integers(1, budget.d_max + 1, size=budget.n_rows)
    scaled = drawn * budget.attainable // drawn.sum()
    order = frequency_rank(np.concatenate([user_frequency, item_frequency]))
    return Action.from_rows(fit_to_total(scaled, budget.attainable, budget.d_max, order), budget)


class MixedRandom(FixedLayoutMethod):
    name = "mr"

    def layout(self, context: RunContext) -> Action:
        return mixed_random(context.budget, context.user_frequency, context.item_frequency, context.rng)
