"""The full table: every row at d_max, RecBole's unmodified table, the reference of every comparison."""

from __future__ import annotations

from dataclasses import replace

from recbole_bet.budget import Action, Budget
from recbole_bet.errors import BudgetError
from recbole_bet.methods.base import FixedLayoutMethod, RunContext


class Full(FixedLayoutMethod):
    name = "full"

    def make_budget(self, sparsity, d_max, n_users, n_items) -> Budget:
        return Budget.full(d_max, n_users, n_items)  # sparsity 0, whatever the key says

    def make_byte_budget(self, sparsity, d_max, n_users, n_items, storage, value_dtype) -> Budget:
        """Under a byte budget the full table must fit it at ``value_dtype`` (e.g. int4 at sparsity 0.85; the
        post-training quantisation baseline): a BudgetError otherwise."""
        budget = Budget.from_bytes(sparsity, d_max, n_users, n_items, storage, value_dtype)
        full = d_max * (n_users + n_items)
        if budget.params < full:
            need = storage.bytes_for(full, value_dtype)
            raise BudgetError(f"the full table at {value_dtype} takes {need} bytes, over the byte budget of {budget.bytes} "
                              f"(sparsity={sparsity}); allowed: a lower sparsity or precision, or a method that shrinks the table")
        return replace(budget, params=full)

    def layout(self, context: RunContext) -> Action:
        return Action.full(context.budget)
