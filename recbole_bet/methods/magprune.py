"""Magnitude pruning: train the full table, keep the ``budget`` weights of largest ``|w|``, fine-tune.

A strong simple baseline of the lightweight-embedding benchmarks (Tran et al.,
``chenxing1999/recsys-benchmark``, ``run_mag_prune.py``), whose code prunes each table by one
ratio and does not fine-tune. Here the kept count is exactly the budget (ties: the earlier weight),
over all tables together (``magprune_scope: global``) or split between users and items in proportion
to their sizes (``field``), and the pruned model is fine-tuned to convergence under the mask, from the
trained weights. The full-table training is the same as the ``full`` method's, and a run of several
budgets trains it once.

The benchmark also keeps at least ``w`` weights in every row (the ``w`` largest of the row before the global
ranking, its ``min_item``), ``w`` chosen on validation by a search over the pruned, not fine-tuned model. Here
``magprune_min_width`` is that grid: each ``w`` of it that the budget can hold is applied to the trained full table
and validated once; the best (the first of equals) is fine-tuned. The default ``[0]`` is plain magnitude pruning.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field
from logging import getLogger

import numpy as np
from recbole.utils import calculate_valid_score

from recbole_bet.budget import FIELDS, Action, Budget, ElementMask, keep_largest
from recbole_bet.errors import BudgetError
from recbole_bet.settings import CheckedSettings, choice, integer_list
from recbole_bet.methods.base import Method, Outcome, RunContext, train_final
from recbole_bet.trainer import BudgetTrainer


@dataclass(frozen=True)
class MagpruneSettings(CheckedSettings):
    """Magnitude pruning's keys.

    Attributes:
        magprune_scope (str): ``global``: the budget's largest ``|w|`` over users and items together;
            ``field``: each field keeps its share of the budget (its rows' part of the table).
        magprune_min_width (tuple[int]): the grid of per-row minimums ``w`` (every row keeps at least its ``w``
            largest weights); the best on validation of the pruned full model is fine-tuned. ``[0]``: no minimum.
    """

    prefix = "magprune_"

    magprune_scope: str = field(default="global", metadata=choice("global", "field"))
    magprune_min_width: tuple = field(default=(0,), metadata=integer_list(0, distinct=True))


def field_quotas(budget: Budget, scope: str) -> list[int] | None:
    """Kept weights per field for ``field`` scope (users, items), summing to the budget; None for ``global``."""
    if scope == "global":
        return None
    users = budget.attainable * budget.n_users // budget.n_rows
    return [users, budget.attainable - users]


def row_minimum_scores(weights: np.ndarray, min_width: int) -> np.ndarray:
    """``|w|``, with each row's ``min_width`` largest (ties: the earlier column) raised to infinity, so that any
    ranking keeps them first."""
    scores = np.abs(np.asarray(weights, dtype=np.float64))
    if min_width:
        top = np.argsort(-scores, axis=1, kind="stable")[:, :min_width]
        np.put_along_axis(scores, top, np.inf, axis=1)
    return scores


def min_width_fits(budget: Budget, scope: str, min_width: int) -> bool:
    """Whether every row can keep ``min_width`` weights within the budget (each field's quota, for ``field``)."""
    quotas = field_quotas(budget, scope)
    if min_width > budget.d_max:
        return False
    if quotas is None:
        return min_width * budget.n_rows <= budget.attainable
    return min_width * budget.n_users <= quotas[0] and min_width * budget.n_items <= quotas[1]


def min_width_grid(settings: MagpruneSettings, budget: Budget) -> tuple[list[int], list[int]]:
    """The grid's minimums that the budget can hold, and those it cannot.

    Raises:
        BudgetError: it holds none of them.
    """
    grid = [w for w in settings.magprune_min_width if min_width_fits(budget, settings.magprune_scope, w)]
    if not grid:
        raise BudgetError(f"magprune_min_width={list(settings.magprune_min_width)}: no minimum fits the budget of "
                          f"{budget.attainable} for {budget.n_rows} rows ({settings.magprune_scope} scope)")
    return grid, [w for w in settings.magprune_min_width if w not in grid]


def magnitude_mask(user_weights: np.ndarray, item_weights: np.ndarray, budget: Budget, scope: str = "global",
                   min_width: int = 0) -> ElementMask:
    """Keep exactly ``budget.attainable`` weights of largest ``|w|``, at least ``min_width`` in every row. Under a byte
    budget the global scope keeps the most whose exported file fits the bytes (:meth:`Budget.element_keep`: the
    budget's parameters bound each table's index by one choice, the file picks each table's smaller); the field scope
    keeps its quotas.

    Args:
        user_weights, item_weights (np.ndarray): ``[rows, d_max]`` trained weights, padding excluded.
        scope (str): ``global`` or ``field`` (see :class:`MagpruneSettings`).
        min_width (int): weights every row keeps, its largest (Tran et al.'s ``min_item``).

    Raises:
        BudgetError: the budget cannot give every row ``min_width`` weights.
    """
    if not min_width_fits(budget, scope, min_width):
        raise BudgetError(f"magprune_min_width={min_width} keeps more than the budget of {budget.attainable} "
                          f"for {budget.n_rows} rows ({scope} scope)")
    user_scores, item_scores = (row_minimum_scores(w, min_width) for w in (user_weights, item_weights))
    quotas = field_quotas(budget, scope)
    if quotas is None:  # under a byte budget, as many as the file's bytes hold for where the kept weights fall
        user_mask, item_mask = keep_largest([user_scores, item_scores], budget.element_keep([user_scores, item_scores]))
    else:
        (user_mask,), (item_mask,) = keep_largest([user_scores], quotas[0]), keep_largest([item_scores], quotas[1])
    return ElementMask(user_mask, item_mask, budget.d_max)


class MagnitudePruning(Method):
    name = "magprune"
    settings_class = MagpruneSettings
    layout_kind = "element"  # single weights: the export pays their index

    def run(self, context: RunContext) -> Outcome:
        min_width_grid(context.settings, context.budget)  # a grid the budget cannot hold fails before any training
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
        mask, chosen, tried = self.choose_min_width(context, trainer)
        model.load_state_dict(state)
        outcome = train_final(context, mask, trainer)  # fine-tuned from the trained weights
        outcome.extra = {
            "magprune": {"full_valid": full_valid, "full_curve": full_curve, "min_width": chosen, "min_width_tried": tried,
                         "settings": self.settings_record(context)}
        }
        return outcome

    def choose_min_width(self, context: RunContext, trainer: BudgetTrainer) -> tuple[ElementMask, int, list]:
        """The mask of the grid's per-row minimum best on validation of the pruned full model (the model holds the
        trained full table): ``(mask, min_width, one record per minimum)``. A grid of one is not validated."""
        settings, budget, model = context.settings, context.budget, context.model
        weights = [model.field_weights(field) for field in FIELDS]
        grid, skipped = min_width_grid(settings, budget)
        if skipped:
            getLogger().warning(f"magprune_min_width {skipped} keep more than the budget of {budget.attainable}: not tried")
        tried, best = [{"min_width": w, "skipped": True} for w in skipped], None
        for width in grid:
            mask = magnitude_mask(*weights, budget, settings.magprune_scope, width)
            score = None
            if len(grid) > 1:
                mask.apply_to(model)
                score = float(calculate_valid_score(trainer.evaluate(context.valid_data, load_best_model=False), trainer.valid_metric))
            tried.append({"min_width": width, "valid_score": score})
            if best is None or (score is not None and score > best[2]):
                best = (mask, width, score if score is not None else -np.inf)
        return best[0], best[1], tried
