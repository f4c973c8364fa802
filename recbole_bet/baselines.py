"""Fixed-size ways to fill a budget: the paper's ES and MR baselines (section 4.1), and the full table.

Each takes the run's :class:`~recbole_bet.budget.Budget` and the training-split
frequencies and returns an :class:`~recbole_bet.budget.Action` that uses the
budget exactly (``min(budget, n_rows * d_max)`` parameters).
"""

from __future__ import annotations

import numpy as np

from recbole_bet.budget import Action, Budget, fit_to_total, frequency_rank


def full_table(budget: Budget, **_) -> Action:
    """Every row at d_max: RecBole's unmodified table, the reference."""
    return Action.uniform(budget.d_max, budget.n_users, budget.n_items, budget.d_max)


def equal_sizes(budget: Budget, user_frequency: np.ndarray, item_frequency: np.ndarray, **_) -> Action:
    """ES: one size ``floor(budget / n_rows)`` for every row; the remainder (< n_rows) goes
    one dimension each to the most frequent users and items (ranked together)."""
    size = min(budget.attainable // budget.n_rows, budget.d_max)
    sizes = np.full(budget.n_rows, size, dtype=np.int64)
    order = frequency_rank(np.concatenate([user_frequency, item_frequency]))
    sizes = fit_to_total(sizes, budget.attainable, budget.d_max, order)
    return _split(sizes, budget)


def mixed_random(
    budget: Budget, user_frequency: np.ndarray, item_frequency: np.ndarray, rng: np.random.Generator, **_
) -> Action:
    """MR: sizes drawn uniformly from ``[1, d_max]`` per row, scaled to the budget, repaired to use it exactly."""
    drawn = rng.integers(1, budget.d_max + 1, size=budget.n_rows)
    scaled = drawn * budget.attainable // drawn.sum()
    order = frequency_rank(np.concatenate([user_frequency, item_frequency]))
    return _split(fit_to_total(scaled, budget.attainable, budget.d_max, order), budget)


def _split(sizes: np.ndarray, budget: Budget) -> Action:
    return Action(sizes[: budget.n_users], sizes[budget.n_users :], budget.d_max)


FIXED_METHODS = {"full": full_table, "es": equal_sizes, "mr": mixed_random}
