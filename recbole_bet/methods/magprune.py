"""Magnitude pruning: train the full table, keep the ``budget`` weights of largest ``|w|``, fine-tune.

A strong simple baseline of the lightweight-embedding benchmarks (Tran et al.,
``chenxing1999/recsys-benchmark``, ``run_mag_prune.py``), whose code prunes each table by one
ratio and does not fine-tune. Here the kept count is exactly the budget (ties: the earlier weight),
over all tables together (``magprune_scope: global``) or split between users and items in proportion
to their sizes (``field``), and the pruned model is fine-tuned to convergence under the mask, from the
trained weights. The full-table training is the same as the ``full`` method's, and a run of several
budgets trains it once.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field

import numpy as np

from recbole_bet.budget import Action, Budget, ElementMask, keep_largest
from recbole_bet.settings import CheckedSettings, choice
from recbole_bet.methods.base import Method, Outcome, RunContext, train_final
from recbole_bet.model.budgeted import FIELDS
from recbole_bet.trainer import BudgetTrainer


@dataclass(frozen=True)
class MagpruneSettings(CheckedSettings):
    """Magnitude pruning's keys.

    Attributes:
        magprune_scope (str): ``global``: the budget's largest ``|w|`` over users and items together;
            ``field``: each field keeps its share of the budget (its rows' part of the table).
    """

    prefix = "magprune_"

    magprune_scope: str = field(default="global", metadata=choice("global", "field"))


def field_quotas(budget: Budget, scope: str) -> list[int] | None:
    """Kept weights per field for ``field`` scope (users, items), summing to the budget; None for ``global``."""
    if scope == "global":
        return None
    users = budget.attainable * budget.n_users // budget.n_rows
    return [users, budget.attainable - users]


def magnitude_mask(user_weights: np.ndarray, item_weights: np.ndarray, budget: Budget, scope: str = "global") -> ElementMask:
    """Keep exactly ``budget.attainable`` weights of largest ``|w|``.

    Args:
        user_weights, item_weights (np.ndarray): ``[rows, d_max]`` trained weights, padding excluded.
        scope (str): ``global`` or ``field`` (see :class:`MagpruneSettings`).
    """
    quotas = field_quotas(budget, scope)
    if quotas is None:
        user_mask, item_mask = keep_largest([np.abs(user_weights), np.abs(item_weights)], budget.attainable)
    else:
        (user_mask,), (item_mask,) = keep_largest([np.abs(user_weights)], quotas[0]), keep_largest([np.abs(item_weights)], quotas[1])
    return ElementMask(user_mask, item_mask, budget.d_max)


class MagnitudePruning(Method):
    name = "magprune"
    settings_class = MagpruneSettings
    layout_kind = "element"  # single weights: the export pays their index

    def run(self, context: RunContext) -> Outcome:
        model = context.model
        trainer = BudgetTrainer(context.config, model)
        Action.full(context.budget).apply_to(model)

        def train_full():
            valid = trainer.fit_phase("full", context.train_data, context.valid_data,
                                      progress=context.progress("magprune-full", shared=True))
            return copy.deepcopy(model.state_dict()), valid, trainer.curve

        # a run of several budgets trains the full table once
        state, full_valid, full_curve = context.budget_free_phase("magprune_full", train_full)
        model.load_state_dict(state)
        weights = [model.field_weights(field) for field in FIELDS]
        mask = magnitude_mask(*weights, context.budget, context.settings.magprune_scope)
        outcome = train_final(context, mask, trainer)  # fine-tuned from the trained weights
        outcome.extra = {
            "magprune": {"full_valid": full_valid, "full_curve": full_curve, "settings": self.settings_record(context)}
        }
        return outcome
