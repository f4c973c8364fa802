"""RecBole's own model (BPR, Pop, LightGCN, ...), unchanged and without a budget: the reference rows,
trained under the same protocol as every method."""

from __future__ import annotations

from recbole_bet.methods.base import Method, Outcome, RunContext, fit_final
from recbole_bet.trainer import BudgetTrainer


class RecBoleModel(Method):
    name = "recbole"

    def make_budget(self, sparsity, d_max, n_users, n_items):
        return None

    def run(self, context: RunContext) -> Outcome:
        trainer = BudgetTrainer(context.config, context.model)
        valid = fit_final(trainer, context)
        return Outcome(trainer, valid, None, trainer.saved_model_file if context.saved else None, trainer.curve)
