"""The full table: every row at d_max, RecBole's unmodified table, the reference of every comparison."""

from __future__ import annotations

from recbole_bet.budget import Action, Budget
from recbole_bet.methods.base import FixedLayoutMethod, RunContext


def full_table(budget: Budget, **_) -> Action:
    """Every row at d_max."""
    return Action.uniform(budget.d_max, budget.n_users, budget.n_items, budget.d_max)


class Full(FixedLayoutMethod):
    name = "full"

    def make_budget(self, sparsity, d_max, n_users, n_items) -> Budget:
        return Budget.full(d_max, n_users, n_items)  # sparsity 0, whatever the key says

    def layout(self, context: RunContext) -> Action:
        return full_table(context.budget)
