"""MDE, mixed-dimension embeddings: each row's size by the frequency power rule.

Ginart, Naumov, Mudigere, Yang, Zou, "Mixed Dimension Embeddings with Application to
Memory-Efficient Recommendation Systems", ISIT 2021 (DLRM's ``md_solver``). The paper sizes
each table ``d ∝ p^alpha`` from its popularity and rounds, so its budget holds only
approximately; here the rule is applied per row: ``d_n = clip(floor(lambda * f_n^alpha), 1, d_max)``
with ``f_n`` the row's training frequency and ``lambda`` the largest scale whose sizes fit the
budget, and the rest (fewer parameters than rows) is handed to the most frequent rows by the
repair step, so the sizes use the budget exactly and stay monotone in frequency. ``alpha`` is
chosen on validation from ``mde_alphas``: each is trained to convergence from the same initial
weights and the best validation model is the result (no test data).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field
from logging import getLogger

import numpy as np
from recbole.utils import set_color

from recbole_bet.budget import Action, Budget, fit_to_total, frequency_rank
from recbole_bet.settings import CheckedSettings, real_list
from recbole_bet.methods.base import Method, Outcome, RunContext
from recbole_bet.trainer import BudgetTrainer


@dataclass(frozen=True)
class MdeSettings(CheckedSettings):
    """MDE's keys.

    Attributes:
        mde_alphas (tuple[float]): the grid of exponents alpha tried on validation (0 gives equal sizes).
    """

    prefix = "mde_"

    mde_alphas: tuple = field(default=(0.1, 0.2, 0.3), metadata=real_list(0, 1, distinct=True))


def power_rule_sizes(frequency: np.ndarray, alpha: float, total: int, d_max: int) -> np.ndarray:
    """Sizes ``clip(floor(lambda * f^alpha), 1, d_max)`` with the largest ``lambda`` that fits ``total``,
    then repaired to sum to ``total`` exactly (the rest to the most frequent rows).

    Args:
        frequency (np.ndarray): ``[n]`` non-negative counts (a row never seen has weight 0, size 1 before repair).
        alpha (float): exponent, in [0, 1].
        total (int): parameters to use, ``n <= total <= n * d_max``.
        d_max (int): largest size.

    Returns:
        np.ndarray: int64 ``[n]``, in ``[1, d_max]``, summing to ``total``; ``f_a > f_b`` implies ``d_a >= d_b``.
    """
    frequency = np.asarray(frequency, dtype=np.float64)
    weight = np.where(frequency > 0, frequency, 0.0) ** alpha if alpha > 0 else np.ones_like(frequency)

    def sizes_at(scale: float) -> np.ndarray:
        return np.clip(np.floor(scale * weight), 1, d_max).astype(np.int64)

    positive = weight[weight > 0]
    low = 0.0  # every row at 1: fits, as total >= n
    high = d_max / positive.min() if positive.size else 0.0  # every seen row at d_max
    if sizes_at(high).sum() <= total:
        low = high
    while low < high:  # the sum is non-decreasing in the scale: bisection down to float precision
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if sizes_at(middle).sum() <= total:
            low = middle
        else:
            high = middle
    return fit_to_total(sizes_at(low), total, d_max, frequency_rank(frequency))


def power_rule(budget: Budget, user_frequency: np.ndarray, item_frequency: np.ndarray, alpha: float) -> Action:
    """The power rule's Action: users and items ranked together under one scale."""
    frequency = np.concatenate([user_frequency, item_frequency])
    return Action.from_rows(power_rule_sizes(frequency, alpha, budget.attainable, budget.d_max), budget)


class MixedDimensionEmbeddings(Method):
    name = "mde"
    settings_class = MdeSettings

    def run(self, context: RunContext) -> Outcome:
        logger = getLogger()
        initial = copy.deepcopy(context.model.state_dict())
        trainer = BudgetTrainer(context.config, context.model)
        tried, best = [], None
        for index, alpha in enumerate(context.settings.mde_alphas):
            action = power_rule(context.budget, context.user_frequency, context.item_frequency, alpha)
            # each alpha from the same initial weights, into its own checkpoint
            context.model.load_state_dict(initial)
            action.check(context.budget).apply_to(context.model)
            valid = trainer.fit_phase(f"alpha{index}", context.train_data, context.valid_data,
                                      progress=context.progress(f"mde-alpha{index}"))
            record = {"alpha": alpha, "valid_score": float(trainer.best_valid_score), "valid": valid,
                      "checkpoint": trainer.saved_model_file, "curve": trainer.curve, "sizes": action.summary()}
            tried.append(record)
            if best is None or record["valid_score"] > best[0]["valid_score"]:  # the first of equals
                best = (record, action)
            logger.info(set_color(f"MDE alpha={alpha:g}", "green") + f": validation {record['valid_score']:.4f}")
        record, action = best
        trainer.load_best_model(record["checkpoint"])
        action.apply_to(context.model)
        extra = {"mde": {"alpha": record["alpha"], "tried": tried, "settings": self.settings_record(context)}}
        return Outcome(trainer, record["valid"], action, record["checkpoint"], record["curve"], extra)
