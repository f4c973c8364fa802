"""The full table: every row at d_max, RecBole's unmodified table, the reference of every comparison."""

from __future__ import annotations

from recbole_bet.budget import Action, Budget
from recbole_bet.methods.base import FixedLayoutMethod, RunContext


class Full(FixedLayoutMethod):
    name = "full"

    def make_budget(self, sparsity, d_max, n_users, n_items) -> Budget:
        return Budget.full(d_max, n_users, n_items)  # sparsity 0, whatever the key says

    def layout(self, context: RunContext) -> Action:
        return Action.full(context.budget)
