"""PEP: Plug-in Embedding Pruning.

Liu, Li, Guo, Zhou, Chen, Li, "Learnable Embedding Sizes for Recommender Systems", ICLR 2021
(code: ``ssui-liu/learnable-embed-sizes-for-RecSys``, read, not copied). The paper's algorithm:

1. Train the backbone with soft-thresholded tables ``V_hat = sign(V) * relu(|V| - g(s))``,
   ``g = sigmoid``, learnable thresholds ``s`` (granularity ``pep_granularity``: one per weight,
   the code's default ``feature_dimension``; per row ``feature``; per column ``dimension``; or one
   ``global``), until the kept count ``|{|V| > g(s)}|`` reaches the budget (checked after every step,
   as the code does).
2. Take the mask: here exactly ``budget`` weights, those of largest margin ``|V| - g(s)``, so the
   budget holds to the weight even where training never reached it (the code saves the mask the
   first step the count falls under a target, which may undershoot it).
3. Retrain from the **initial** weights under that fixed mask (the lottery-ticket step of the code,
   its default ``re_init=False``), to convergence on validation.

Where the code and the paper differ, or say nothing: nothing but weight decay drives ``s`` up in the
code (the task's gradient through ``sigmoid'(s)`` is nil at ``s = -15``): its one Adam has
``weight_decay=1e-5``, so each ``s`` rises by about the learning rate a step, and the same decay
shrinks the rows a batch does not touch. Here the thresholds and the tables are parameter groups of
RecBole's optimiser with those decays (``pep_threshold_decay``, ``pep_table_decay``, the code's 1e-5)
while the thresholds train; the rest of the backbone, and the retraining, keep the protocol's (none). The code's retraining picks its epoch on the test set;
here on validation, as every method.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field
from logging import getLogger

import numpy as np
import torch
from recbole.utils import set_color
from torch import nn
from tqdm import tqdm

from recbole_bet.budget import FIELDS, ElementMask, keep_largest
from recbole_bet.settings import CheckedSettings, choice, integer, real
from recbole_bet.embedding import MaskedEmbedding, swap_tables
from recbole_bet.methods.base import Method, Outcome, RunContext, train_final
from recbole_bet.trainer import BudgetTrainer

GRANULARITIES = ("feature_dimension", "feature", "dimension", "global")


@dataclass(frozen=True)
class PepSettings(CheckedSettings):
    """PEP's keys.

    Attributes:
        pep_granularity (str): shape of the thresholds ``s`` of a ``[rows, d]`` table: ``feature_dimension``
            ``[rows, d]`` (the code's default), ``feature`` ``[rows, 1]``, ``dimension`` ``[1, d]``, ``global`` ``[1, 1]``.
        pep_threshold_init (float): initial ``s`` (the code: -15 on MovieLens; ``g(-15) = 3e-7``, nothing pruned).
        pep_threshold_decay (float): weight decay of ``s`` (the code's 1e-5), what makes the thresholds rise.
        pep_table_decay (float): weight decay of the tables ``V`` while the thresholds train (the code's 1e-5 on
            everything): it shrinks the rows a batch does not touch, so rare rows are pruned first.
        pep_max_epochs (int): epochs of step 1 at most; the mask is taken then even if the budget was not reached.
    """

    prefix = "pep_"

    pep_granularity: str = field(default="feature_dimension", metadata=choice(*GRANULARITIES))
    pep_threshold_init: float = field(default=-15.0, metadata=real(None))
    pep_threshold_decay: float = field(default=1e-5, metadata=real(0, low_open=False))
    pep_table_decay: float = field(default=1e-5, metadata=real(0, low_open=False))
    pep_max_epochs: int = field(default=300, metadata=integer(1))


def threshold_shape(granularity: str, rows: int, width: int) -> tuple[int, int]:
    """The shape of ``s`` for a ``[rows, width]`` table."""
    return {"feature_dimension": (rows, width), "feature": (rows, 1), "dimension": (1, width), "global": (1, 1)}[granularity]


class SoftThresholdEmbedding(MaskedEmbedding):
    """A table under PEP's soft threshold: ``sign(V) * relu(|V| - sigmoid(s))``, read through ``forward``,
    ``.weight`` and ``masked_columns`` like the masked table it stands in for, whose ``full_weight``
    (``V``) it shares, so the trained values stay in that table.

    Args:
        table (MaskedEmbedding): the table (full size) it replaces while thresholds are trained.
        granularity (str): see :func:`threshold_shape`.
        init (float): initial ``s``.
    """

    def __init__(self, table: MaskedEmbedding, granularity: str, init: float):
        super().__init__(table.num_embeddings, table.embedding_dim, weight=table.full_weight)
        self.full_weight = table.full_weight  # shared: the same Parameter, not a copy
        shape = threshold_shape(granularity, table.num_embeddings, table.embedding_dim)
        self.threshold = nn.Parameter(torch.full(shape, float(init), device=table.full_weight.device))

    def _threshold(self, idx=None) -> torch.Tensor:
        s = self.threshold if idx is None or self.threshold.shape[0] == 1 else self.threshold[idx]
        return torch.sigmoid(s)

    @staticmethod
    def _soft(values: torch.Tensor, threshold: torch.Tensor) -> torch.Tensor:
        return torch.sign(values) * torch.relu(values.abs() - threshold)

    @property
    def weight(self) -> torch.Tensor:
        return self._soft(self.full_weight, self._threshold())

    def masked_columns(self, width: int) -> torch.Tensor:
        return self.weight[:, :width]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self._soft(self.full_weight[idx], self._threshold(idx))

    @torch.no_grad()
    def margins(self) -> torch.Tensor:
        """``|V| - g(s)``, ``[rows, d]``: a weight is kept while its margin is positive."""
        return self.full_weight.abs() - self._threshold()


class _BudgetReached(Exception):
    """Raised after the step whose kept count reached the budget, to leave RecBole's epoch loop there."""


class Pep(Method):
    name = "pep"
    settings_class = PepSettings
    layout_kind = "element"  # single weights: the export pays their index

    def run(self, context: RunContext) -> Outcome:
        model, settings, budget = context.model, context.settings, context.budget
        initial = copy.deepcopy(model.state_dict())  # the lottery ticket: retraining starts here

        # ---- 1. train with soft thresholds until the kept count reaches the budget
        originals = {name: model.get_submodule(name) for name in model.budget_tables}
        soft = {name: SoftThresholdEmbedding(t, settings.pep_granularity, settings.pep_threshold_init) for name, t in originals.items()}
        swap_tables(model, soft)
        trainer = BudgetTrainer(context.config, model)
        try:  # kept once finished: a run killed in its final training does not train the thresholds again
            mask, reached, history = context.budget_phase("pep-thresholds", lambda: self.threshold_phase(context, soft, trainer))
        finally:
            swap_tables(model, originals)

        # ---- 3. retrain from the initial weights under the fixed mask
        outcome = train_final(context, mask, trainer, start=initial)
        outcome.extra = {"pep": {"reached_budget": reached, "epochs": history, "settings": self.settings_record(context)}}
        if not reached:
            getLogger().warning(
                set_color("PEP", "red") + f": the kept count never reached the budget in {settings.pep_max_epochs} epochs "
                f"(last: {history[-1]['kept']} of {budget.attainable}); the mask is the budget's largest margins"
            )
        return outcome

    def threshold_phase(self, context: RunContext, soft: dict, trainer: BudgetTrainer):
        """Steps 1 and 2 with the soft-threshold tables in place: ``(mask, budget reached, one record per epoch)``."""
        model, settings, budget = context.model, context.settings, context.budget
        thresholds = [t.threshold for t in soft.values()]
        tables = [t.full_weight for t in soft.values()]
        others = [p for p in model.parameters() if all(p is not s for s in thresholds + tables)]
        trainer.optimizer = trainer._build_optimizer(params=[
            {"params": others},
            {"params": tables, "weight_decay": settings.pep_table_decay},
            {"params": thresholds, "weight_decay": settings.pep_threshold_decay},
        ])

        def kept() -> int:
            return sum(int((table.margins()[1:] > 0).sum()) for table in soft.values())  # padding row excluded

        def check_budget(*_):
            if kept() <= budget.attainable:
                raise _BudgetReached

        hook = trainer.optimizer.register_step_post_hook(check_budget)
        history, reached, first = [], False, 0
        # each finished epoch is kept: a run killed in the middle of the threshold training goes on after its last epoch
        loop = context.kept_loop("pep-thresholds")
        kept_epoch = loop.restore()
        if kept_epoch is not None:
            first, history, reached = kept_epoch["next"], kept_epoch["history"], kept_epoch["reached"]
            model.load_state_dict(kept_epoch["model"])
            trainer.optimizer.load_state_dict(kept_epoch["optimizer"])
        epochs = tqdm(range(first, settings.pep_max_epochs if not reached else first), desc="PEP thresholds", ncols=100,
                      disable=not context.show_progress, initial=first, total=settings.pep_max_epochs)
        try:
            for epoch in epochs:
                try:
                    loss = trainer._train_epoch(context.train_data, epoch, show_progress=False)
                except _BudgetReached:
                    reached = True
                    loss = None
                history.append({"epoch": epoch, "train_loss": None if loss is None else float(np.sum(loss)),
                                "kept": kept(), "threshold_mean": threshold_mean(thresholds)})
                epochs.set_postfix(kept=history[-1]["kept"])
                getLogger().info(set_color(f"PEP epoch {epoch}", "green") + f": kept {history[-1]['kept']} of budget {budget.attainable}")
                loop.keep({"next": epoch + 1, "history": history, "reached": reached, "model": model.state_dict(),
                           "optimizer": trainer.optimizer.state_dict()})
                if reached:
                    break
        finally:
            hook.remove()

        # ---- 2. exactly budget weights: the largest margins (under a byte budget, as many as the file's bytes hold
        # for where they fall: at least the budget's parameters, more where a table's index is cheaper than its bound)
        margins = [torch.cat([soft[name].margins()[1:] for name in model.tables(field)], dim=1).cpu().numpy() for field in FIELDS]
        user_mask, item_mask = keep_largest(margins, budget.element_keep(margins))
        return ElementMask(user_mask, item_mask, budget.d_max), reached, history


@torch.no_grad()
def threshold_mean(thresholds: list[torch.Tensor]) -> float:
    """The mean of ``g(s)`` over every threshold."""
    return float(torch.sigmoid(torch.cat([s.flatten() for s in thresholds])).mean())
