"""DSL: dynamic sparse learning, a sparse table trained from scratch at exactly the budget, its kept weights moved
while it trains.

Wang, Sui, Wu, Zheng, Xiong, "Dynamic Sparse Learning: A Novel Paradigm for Efficient Recommendation", WSDM 2024
(arXiv 2402.02855). The paper's three steps, each here:

1. Sparsity initialisation: exactly ``budget`` weights of the user and item tables kept, drawn uniformly at random
   (the paper's random mask); the others are zero.
2. Sparse learning: RecBole's training under that element mask (:class:`~recbole_bet.budget.ElementMask`).
3. Dynamic exploration, every ``dsl_update_interval`` steps until epoch ``dsl_end_epoch``: the ``k`` kept weights of
   smallest magnitude are pruned and ``k`` others are grown, so the count stays the budget after every update;
   ``k = rho_t * budget`` with the update ratio annealed by a cosine, ``rho_t = alpha / 2 * (1 + cos(pi t / T_end))``
   (``alpha = dsl_update_ratio``). Growth follows the paper's "regret" rule: the pruned weights whose gradient, on
   the batch just before the update, is largest (``dsl_growth: gradient``, as RigL); ``random`` grows uniformly at
   random instead (as SET), the cheaper rule, kept for comparison. Gradient growth is the default because it is the
   paper's: a random pick wastes most of a step's growth on rows the batch says nothing about. A grown weight starts
   at zero, and the optimiser's state of every moved weight is cleared.

Pruning and growth are over users and items together (the paper moves the sparsity between them). The gradient of a
pruned weight is the gradient of the loss for its value, zero: on the batch before an update the masks are lifted
(every pruned weight is exactly zero, so the loss is the same) and the backward pass gives every weight's gradient;
the update then masks the step's gradient to the new mask (:class:`DslTrainer`). The paper's values of ``alpha``,
the interval and ``T_end`` were not in what we could read of it: the defaults are RigL's ``alpha = 0.3`` and 100 steps,
and an end after 50 epochs (runs here stop after 60-120).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from recbole_bet.budget import FIELDS, Budget, ElementMask
from recbole_bet.methods.base import Method, Outcome, RunContext, fit_final
from recbole_bet.settings import CheckedSettings, choice, integer, real
from recbole_bet.trainer import BudgetTrainer

GROWTH = ("gradient", "random")


@dataclass(frozen=True)
class DslSettings(CheckedSettings):
    """DSL's keys.

    Attributes:
        dsl_update_ratio (float): alpha, the share of the kept weights pruned and grown at the first update; the
            share decays to 0 at ``dsl_end_epoch`` by a cosine.
        dsl_update_interval (int): training steps (batches) between two updates.
        dsl_end_epoch (int): no update after this many epochs (T_end); the mask is then fixed.
        dsl_growth (str): which pruned weights grow: ``gradient`` (largest gradient magnitude, the paper's) or ``random``.
    """

    prefix = "dsl_"

    dsl_update_ratio: float = field(default=0.3, metadata=real(0, 1))
    dsl_update_interval: int = field(default=100, metadata=integer(1))
    dsl_end_epoch: int = field(default=50, metadata=integer(1))
    dsl_growth: str = field(default="gradient", metadata=choice(*GROWTH))


def random_mask(budget: Budget, rng: np.random.Generator) -> ElementMask:
    """Exactly ``budget.attainable`` weights kept, drawn uniformly over both tables."""
    keep = np.zeros(budget.n_rows * budget.d_max, dtype=bool)
    keep[rng.choice(keep.size, budget.attainable, replace=False)] = True
    keep = keep.reshape(budget.n_rows, budget.d_max)
    return ElementMask(keep[: budget.n_users], keep[budget.n_users :], budget.d_max)


def prune_and_regrow(kept: np.ndarray, magnitude: np.ndarray, growth_score: np.ndarray | None, k: int,
                     rng: np.random.Generator) -> np.ndarray:
    """One exploration: the ``k`` kept weights of smallest ``magnitude`` pruned, then ``k`` of the weights not kept
    after it grown, those of largest ``growth_score`` (None: uniformly at random). Ties: the earlier position.

    Args:
        kept (np.ndarray): bool, any shape, the mask before.
        magnitude, growth_score (np.ndarray): float, its shape.
        k (int): weights moved, ``0 <= k <= kept.sum()``.

    Returns:
        np.ndarray: the new mask, as many True as ``kept``.
    """
    flat = kept.ravel()
    active = np.flatnonzero(flat)
    pruned = active[np.argsort(np.abs(magnitude.ravel()[active]), kind="stable")[:k]]
    new = flat.copy()
    new[pruned] = False
    open_ = np.flatnonzero(~new)
    if growth_score is None:
        grown = rng.choice(open_, k, replace=False)
    else:
        grown = open_[np.argsort(-np.abs(growth_score.ravel()[open_]), kind="stable")[:k]]
    new[grown] = True
    return new.reshape(kept.shape)


class DynamicSparsity:
    """DSL's schedule and its state, carried from epoch to epoch (``fit_phase(carried=...)``): the steps taken, the
    random stream of growth, one record per update."""

    def __init__(self, settings: DslSettings, budget: Budget, steps_per_epoch: int, seed: int):
        self.ratio, self.interval, self.growth = settings.dsl_update_ratio, settings.dsl_update_interval, settings.dsl_growth
        self.end = settings.dsl_end_epoch * steps_per_epoch
        self.budget = budget
        self.step, self.rng, self.history = 0, np.random.default_rng(seed), []

    def due(self) -> bool:
        """Whether the coming step ends with an update."""
        coming = self.step + 1
        return coming % self.interval == 0 and coming < self.end

    def moved(self, step: int) -> int:
        """Weights pruned and grown at ``step``: ``rho_t * budget``, ``rho_t = alpha / 2 * (1 + cos(pi t / T_end))``."""
        return int(self.ratio / 2 * (1 + math.cos(math.pi * step / self.end)) * self.budget.attainable)

    def state_dict(self) -> dict:
        return {"step": self.step, "rng": self.rng.bit_generator.state, "history": list(self.history)}

    def load_state_dict(self, state: dict) -> None:
        self.step, self.history = state["step"], list(state["history"])
        self.rng.bit_generator.state = state["rng"]


def model_mask(model) -> ElementMask:
    """The element mask the model's tables are under now."""
    fields = [torch.cat([t.element_mask[1:] for t in model.masked_tables(field)], dim=1).cpu().numpy() for field in FIELDS]
    return ElementMask(fields[0], fields[1], model.d_max)


def field_gradients(model, field: str) -> np.ndarray:
    """A field's gradient as one ``[rows, d_max]`` array (its tables side by side, padding excluded)."""
    grads = [t.full_weight.grad if t.full_weight.grad is not None else torch.zeros_like(t.full_weight)
             for t in model.masked_tables(field)]
    return torch.cat([g[1:] for g in grads], dim=1).cpu().numpy()


class DslTrainer(BudgetTrainer):
    """RecBole's training with DSL's updates: on the batch before an update the masks are lifted (:meth:`_loss`), and
    the update runs when the optimiser is about to step (:meth:`_explore`, a step pre-hook)."""

    def __init__(self, config, model, sparsity: DynamicSparsity):
        self.sparsity, self.lifted = sparsity, None
        super().__init__(config, model)

    def _build_optimizer(self, **kwargs):
        optimizer = super()._build_optimizer(**kwargs)
        optimizer.register_step_pre_hook(lambda *step: self._explore(*step))
        return optimizer

    def _train_epoch(self, train_data, epoch_idx, loss_func=None, show_progress=False):
        return super()._train_epoch(train_data, epoch_idx, loss_func=loss_func or self._loss, show_progress=show_progress)

    def _loss(self, interaction):
        if self.sparsity.due():  # every pruned weight is zero: the same loss, and the gradient of every weight
            self.lifted = model_mask(self.model)
            for name in self.model.budget_tables:
                table = self.model.get_submodule(name)
                table.set_element_mask(torch.ones_like(table.element_mask))
        return self.model.calculate_loss(interaction)

    @torch.no_grad()
    def _explore(self, optimizer, args, kwargs) -> None:
        self.sparsity.step += 1
        if self.lifted is None:
            return
        before, self.lifted = self.lifted, None
        sparsity, model = self.sparsity, self.model
        k = sparsity.moved(sparsity.step)
        weights = np.concatenate([model.field_weights(field) for field in FIELDS])
        kept = np.concatenate([before.user_mask, before.item_mask])
        score = np.concatenate([field_gradients(model, field) for field in FIELDS]) if sparsity.growth == "gradient" else None
        new = prune_and_regrow(kept, weights, score, k, sparsity.rng)
        sparsity.history.append({"step": sparsity.step, "moved": k, "kept": int(new.sum())})
        n_users = len(before.user_mask)
        ElementMask(new[:n_users], new[n_users:], before.d_max).apply_to(model)
        changed = np.concatenate([[np.zeros(model.d_max, bool)], (new != kept)[:n_users],
                                  [np.zeros(model.d_max, bool)], (new != kept)[n_users:]])
        self._restart(changed, optimizer)

    def _restart(self, changed: np.ndarray, optimizer) -> None:
        """Pruned and grown weights (``changed``, users' rows with padding then items', ``[n_users + n_items, d_max]``)
        set to zero with their optimiser state; every table's gradient masked to its new mask."""
        start = {"user": 0, "item": self.model.n_users}
        for field_name in FIELDS:
            column = 0
            for table in self.model.masked_tables(field_name):
                rows = slice(start[field_name], start[field_name] + table.num_embeddings)
                moved = torch.from_numpy(changed[rows, column : column + table.embedding_dim]).to(table.full_weight.device)
                column += table.embedding_dim
                table.full_weight.masked_fill_(moved, 0)
                if table.full_weight.grad is not None:
                    table.full_weight.grad.mul_(table.mask)
                for value in optimizer.state.get(table.full_weight, {}).values():
                    if torch.is_tensor(value) and value.shape == table.full_weight.shape:
                        value.masked_fill_(moved, 0)
        self.model.clear_cached_embeddings()


class Dsl(Method):
    name = "dsl"
    settings_class = DslSettings
    layout_kind = "element"  # single weights: the export pays their index

    def run(self, context: RunContext) -> Outcome:
        model, budget = context.model, context.budget
        mask = random_mask(budget, context.rng)
        mask.check(budget).apply_to(model)
        with torch.no_grad():  # a pruned weight is zero: the lifted loss before an update is the masked one
            for name in model.budget_tables:
                table = model.get_submodule(name)
                table.full_weight.mul_(table.mask)
        sparsity = DynamicSparsity(context.settings, budget, len(context.train_data), int(context.rng.integers(2**63)))
        trainer = DslTrainer(context.config, model, sparsity)
        valid = fit_final(trainer, context, carried=sparsity)
        layout = model_mask(model)  # the best epoch's mask, loaded with its weights
        record = {"settings": self.settings_record(context), "updates": sparsity.history}
        return Outcome(trainer, valid, layout, trainer.saved_model_file if context.saved else None, trainer.curve, {"dsl": record})
