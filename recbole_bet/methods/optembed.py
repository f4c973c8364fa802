"""OptEmbed: a supernet with learnable row pruning and random widths, an evolution over per-field
widths, and retraining from the initial weights.

Lyu, Tang, Guo, Tang, He, Liu, Zhang, "OptEmbed: Learning Optimal Embedding Table for
Click-through Rate Prediction", CIKM 2022 (code: ``fuyuanlyu/OptEmbed``; its CF variant in Tran et
al.'s benchmark, ``chenxing1999/recsys-benchmark``; both read, not copied).

1. **Supernet.** Row ``n`` of a table is kept while its L1 norm passes the table's learnable
   threshold, ``m_n = H(||e_n||_1 - t)``, with the code's straight-through surrogate gradient
   (:class:`BinaryStep`), ``t`` starting at 0, trained by plain SGD (``optembed_threshold_lr``) under
   the regulariser ``alpha * exp(-t)`` (``optembed_alpha``) that pushes it up. At every step each row
   draws a width uniformly from ``[1, d_max]`` and keeps that prefix (the code draws per sample and
   field; a graph backbone propagates every row, so, as the benchmark's LightGCN variant, per row).
   Validation uses full widths under the row mask; training stops early on it, as every training here.
2. **Evolution** over one width per field ``(w_users, w_items)``, scored on validation with the
   supernet's weights and row mask (the code's schedule: 30 generations of the best 15 kept, 10
   mutations with probability 0.1 per gene, 10 crossovers). The code has no budget; here a candidate's
   cost is ``kept_users * w_users + kept_items * w_items`` and every candidate is projected onto the
   budget (:func:`fit_widths`: both widths shrunk by one factor) before it is scored, so none over it is
   ever kept (the benchmark redraws instead). With two fields the genome is two numbers: each distinct candidate is scored once.
3. **Retraining** from the initial weights, both masks fixed (rows of size 0 and one width per field).

A field of several tables (NeuMF's GMF and MLP) keeps a row when any of its tables keeps it.

What the code's defaults do here: its threshold gets a gradient only for rows whose L1 norm lies within
1 of it, and its regulariser moves it by about ``lr * alpha = 9e-8`` a step; the rows of a 128-wide CF
table have L1 norms of several units, so the thresholds stay near 0 and the supernet keeps every row
(seen on ml-100k and gowalla-s). The comparison is then OptEmbed's evolution over the two widths,
without row pruning. We keep the code's defaults, as for every method, and report it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from dataclasses import field
from logging import getLogger

import numpy as np
import torch
from recbole.utils import set_color
from tqdm import tqdm

from recbole_bet.budget import FIELDS, Action
from recbole_bet.errors import BudgetError
from recbole_bet.settings import CheckedSettings, integer, real
from recbole_bet.embedding import MaskedEmbedding, swap_tables
from recbole_bet.methods.base import Method, Outcome, RunContext, train_final
from recbole_bet.trainer import BudgetTrainer


@dataclass(frozen=True)
class OptEmbedSettings(CheckedSettings):
    """OptEmbed's keys (defaults: the code's).

    Attributes:
        optembed_alpha (float): weight of the threshold regulariser ``alpha * exp(-t)``.
        optembed_threshold_lr (float): SGD learning rate of the thresholds.
        optembed_generations (int): generations of the evolution.
        optembed_keep (int): best candidates kept (and bred from) each generation.
        optembed_mutations (int): children by mutation per generation.
        optembed_crossovers (int): children by crossover per generation.
        optembed_mutation_prob (float): probability that a mutation redraws a gene.
    """

    prefix = "optembed_"

    optembed_alpha: float = field(default=3e-4, metadata=real(0, low_open=False))
    optembed_threshold_lr: float = field(default=3e-4, metadata=real(0, low_open=False))
    optembed_generations: int = field(default=30, metadata=integer(1))
    optembed_keep: int = field(default=15, metadata=integer(1))
    optembed_mutations: int = field(default=10, metadata=integer(0))
    optembed_crossovers: int = field(default=10, metadata=integer(0))
    optembed_mutation_prob: float = field(default=0.1, metadata=real(0, 1, low_open=False))


# ---------------------------------------------------------------------------
# The supernet


class BinaryStep(torch.autograd.Function):
    """``H(x) = 1[x > 0]`` forward; backward the code's surrogate: ``2 - 4|x|`` for ``|x| <= 0.4``,
    0.4 up to ``|x| = 1``, 0 beyond."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return (x > 0).to(x.dtype)

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        a = x.abs()
        surrogate = torch.where(a <= 0.4, 2 - 4 * a, torch.where(a <= 1, torch.full_like(a, 0.4), torch.zeros_like(a)))
        return grad * surrogate


class SupernetEmbedding(MaskedEmbedding):
    """A table of OptEmbed's supernet: rows gated by ``H(||e_n||_1 - t)`` and, while training, cut to the
    random prefix widths set by :meth:`draw_widths`. Shares ``full_weight`` with the table it stands in for.
    """

    def __init__(self, table: MaskedEmbedding):
        super().__init__(table.num_embeddings, table.embedding_dim, weight=table.full_weight)
        self.full_weight = table.full_weight  # shared
        self.threshold = torch.nn.Parameter(torch.zeros((), device=table.full_weight.device))
        self.width_mask = None  # [rows, d] while training, from draw_widths

    def draw_widths(self, generator: torch.Generator) -> None:
        """A width per row, uniform in ``[1, d]``, for the next training step. Kept apart from ``sizes``, which
        stay at ``d``: validation (eval mode) reads every column, and LightGCN cuts columns by ``sizes``."""
        self.set_widths(torch.randint(1, self.embedding_dim + 1, (self.num_embeddings, 1), generator=generator))

    def set_widths(self, widths: torch.Tensor) -> None:
        """The next training step's width of each row, ``[rows, 1]`` (a resumed supernet puts back the drawn ones)."""
        widths = widths.to(self.sizes.device)
        self.width_mask = (torch.arange(self.embedding_dim, device=widths.device) < widths).to(self.full_weight.dtype)

    def drawn_widths(self) -> torch.Tensor:
        """``[rows, 1]`` int: the widths :meth:`draw_widths` drew last."""
        return self.width_mask.sum(1, keepdim=True).to(torch.int64).cpu()

    def row_gate(self) -> torch.Tensor:
        """``[rows, 1]``: 1 for a kept row; its gradient reaches the weights and the threshold."""
        return BinaryStep.apply(self.full_weight.abs().sum(1, keepdim=True) - self.threshold)

    @torch.no_grad()
    def kept_rows(self) -> np.ndarray:
        return (self.full_weight.abs().sum(1) > self.threshold).cpu().numpy()

    @property
    def weight(self) -> torch.Tensor:
        widths = self.width_mask if self.training and self.width_mask is not None else 1.0
        return self.full_weight * widths * self.row_gate()

    def masked_columns(self, width: int) -> torch.Tensor:
        return self.weight[:, :width]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.weight[idx]


class SupernetStreams:
    """What the supernet's training carries from one epoch to the next beside the model (thresholds included), its
    optimiser and the global random streams: the thresholds' optimiser, the width stream and the widths it drew
    for the next step. Kept with each epoch, so that a killed supernet goes on from its last epoch
    (``BudgetTrainer.fit_phase(carried=...)``)."""

    def __init__(self, threshold_optimizer: torch.optim.Optimizer, widths: torch.Generator, tables: dict):
        self.threshold_optimizer, self.widths, self.tables = threshold_optimizer, widths, tables

    def state_dict(self) -> dict:
        return {"threshold_optimizer": self.threshold_optimizer.state_dict(), "widths": self.widths.get_state(),
                "drawn": {name: table.drawn_widths() for name, table in self.tables.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.threshold_optimizer.load_state_dict(state["threshold_optimizer"])
        self.widths.set_state(state["widths"])
        for name, table in self.tables.items():
            table.set_widths(state["drawn"][name])


# ---------------------------------------------------------------------------
# The evolution over (w_users, w_items), pure arithmetic apart from the scoring callback


def fit_widths(widths: tuple[int, int], kept: tuple[int, int], budget: int, d_max: int) -> tuple[int, int]:
    """Project a candidate onto the budget: both widths shrink by one factor (each at least 1), the largest
    factor whose cost ``kept_users * w_users + kept_items * w_items`` fits, so the candidate keeps its balance
    between users and items (shrinking one field first would push every large candidate to width 1 there).

    Raises:
        BudgetError: when even widths of 1 do not fit (more kept rows than the budget).
    """
    k_users, k_items = kept
    if k_users + k_items > budget:
        raise BudgetError(
            f"OptEmbed keeps {k_users} user and {k_items} item rows, more than the budget of {budget} parameters "
            "even at width 1: no candidate fits"
        )
    w_users, w_items = (int(np.clip(w, 1, d_max)) for w in widths)

    def shrunk(scale: float) -> tuple[int, int]:
        return max(1, int(np.floor(w_users * scale))), max(1, int(np.floor(w_items * scale)))

    def cost(pair) -> int:
        return k_users * pair[0] + k_items * pair[1]

    if cost((w_users, w_items)) <= budget:
        return w_users, w_items
    # the cost is non-decreasing in the factor and changes only where one width does: try those factors, largest first
    factors = sorted({w / w_users for w in range(1, w_users + 1)} | {w / w_items for w in range(1, w_items + 1)}, reverse=True)
    return next(pair for pair in map(shrunk, factors) if cost(pair) <= budget)


def evolve(score, kept, budget: int, d_max: int, settings: OptEmbedSettings, rng: np.random.Generator, loop=None):
    """OptEmbed's evolution over one width per field, every candidate projected onto the budget.

    Args:
        score (callable): ``(w_users, w_items) -> validation score``, called once per distinct candidate.
        kept (tuple[int, int]): rows the supernet keeps per field.
        loop (KeptLoop, optional): keeps each finished generation (the population, every score, the records; the
            loop puts ``rng`` back), so that a killed evolution goes on after its last generation.

    Returns:
        (best candidate, {candidate: score} of every candidate scored, one record per generation)
    """
    scores: dict[tuple[int, int], float] = {}

    def project(widths):
        return fit_widths(widths, kept, budget, d_max)

    def draw():
        return project(tuple(int(w) for w in rng.integers(1, d_max + 1, size=2)))

    population = [draw() for _ in range(settings.optembed_keep + settings.optembed_mutations + settings.optembed_crossovers)]
    history, first = [], 0
    restored = loop.restore() if loop is not None else None
    if restored is not None:
        first, population, scores, history = restored["next"], restored["population"], restored["scores"], restored["history"]
    for generation in range(first, settings.optembed_generations):
        for candidate in population:
            if candidate not in scores:
                scores[candidate] = float(score(candidate))
        # elitist: the best ever seen breed (the first scored wins a tie)
        ranked = sorted(scores, key=lambda c: -scores[c])
        parents = ranked[: settings.optembed_keep]
        history.append({"generation": generation, "best": list(parents[0]), "best_score": scores[parents[0]], "scored": len(scores)})
        children = []
        for _ in range(settings.optembed_mutations):
            parent = parents[int(rng.integers(len(parents)))]
            redraw = rng.random(2) < settings.optembed_mutation_prob
            fresh = rng.integers(1, d_max + 1, size=2)
            children.append(project(tuple(int(f) if r else int(p) for p, r, f in zip(parent, redraw, fresh))))
        for _ in range(settings.optembed_crossovers):
            a, b = (parents[int(i)] for i in rng.integers(len(parents), size=2))
            children.append(project((a[0], b[1])))
        population = parents + children
        if loop is not None:
            loop.keep({"next": generation + 1, "population": population, "scores": scores, "history": history})
    for candidate in population:  # the last generation's children
        if candidate not in scores:
            scores[candidate] = float(score(candidate))
    return max(scores, key=scores.get), scores, history  # the first scored of equals


def optembed_action(user_rows: np.ndarray, item_rows: np.ndarray, widths: tuple[int, int], d_max: int) -> Action:
    """Kept rows at their field's width, pruned rows at 0."""
    return Action(user_rows.astype(np.int64) * widths[0], item_rows.astype(np.int64) * widths[1], d_max, min_size=0)


class OptEmbed(Method):
    name = "optembed"
    settings_class = OptEmbedSettings

    def run(self, context: RunContext) -> Outcome:
        model, settings, budget = context.model, context.settings, context.budget
        logger = getLogger()
        initial = copy.deepcopy(model.state_dict())
        Action.full(budget).apply_to(model)

        # ---- 1. the supernet (a run of several budgets trains it once: it does not depend on the budget)
        trainer = BudgetTrainer(context.config, model)
        supernet = context.budget_free_phase("optembed_supernet", lambda: self.train_supernet(context, trainer))
        kept_rows = supernet["kept_rows"]
        kept = (int(kept_rows[0].sum()), int(kept_rows[1].sum()))
        logger.info(
            set_color("OptEmbed supernet", "green") + f": keeps {kept[0]} users and {kept[1]} items; thresholds {supernet['thresholds']}"
        )

        # ---- 2. the evolution, every candidate within the budget, scored on validation (kept once finished: a run
        # killed in its final training does not evolve again)
        trained = supernet["state"]

        def evolution():
            progress = tqdm(desc="OptEmbed evolution", ncols=100, disable=not context.show_progress)

            def score(widths):
                model.load_state_dict(trained)
                optembed_action(*kept_rows, widths, budget.d_max).check(budget).apply_to(model)
                result = trainer.evaluate(context.valid_data, load_best_model=False)
                progress.update()
                return result[context.config["valid_metric"].lower()]

            found = evolve(score, kept, budget.params, budget.d_max, settings, context.rng, context.kept_loop("optembed-evolution"))
            progress.close()
            return found

        best, scores, history = context.budget_phase("optembed-evolution", evolution)
        logger.info(set_color("OptEmbed evolution", "green") + f": widths {best} (users, items), validation {scores[best]:.4f}")

        # ---- 3. retrain from the initial weights, both masks fixed
        action = optembed_action(*kept_rows, best, budget.d_max)
        outcome = train_final(context, action, trainer, start=initial)
        outcome.extra = {
            "optembed": {
                "kept_rows": {"users": kept[0], "items": kept[1]},
                "thresholds": supernet["thresholds"],
                "widths": {"users": best[0], "items": best[1]},
                "supernet_valid": supernet["valid"],
                "supernet_curve": supernet["curve"],
                "generations": history,
                "scored": [{"widths": list(c), "score": s} for c, s in scores.items()],
                "settings": self.settings_record(context),
            }
        }
        return outcome

    @staticmethod
    def train_supernet(context: RunContext, trainer: BudgetTrainer) -> dict:
        """Step 1: the supernet, trained with RecBole's ``fit`` (early stopping on validation at full widths).

        Returns:
            dict: ``state`` (the trained weights, the budget's tables back in place), ``kept_rows`` (bool per user,
            per item), ``thresholds``, ``valid`` and ``curve``.
        """
        model, settings = context.model, context.settings
        originals = {name: model.get_submodule(name) for name in model.budget_tables}
        supernet = {name: SupernetEmbedding(table) for name, table in originals.items()}
        swap_tables(model, supernet)
        try:
            thresholds = [table.threshold for table in supernet.values()]
            weights = [p for p in model.parameters() if all(p is not t for t in thresholds)]
            optimizer = trainer._build_optimizer(params=weights)
            threshold_optimizer = torch.optim.SGD(thresholds, lr=settings.optembed_threshold_lr)
            widths = torch.Generator().manual_seed(int(context.rng.integers(2**62)))

            def regularise(*_):  # d/dt of alpha * exp(-t), added to the task's gradient before the step
                for t in thresholds:
                    t.grad = (t.grad if t.grad is not None else torch.zeros_like(t)) - settings.optembed_alpha * torch.exp(-t.detach())

            def after_step(*_):
                threshold_optimizer.step()
                threshold_optimizer.zero_grad()
                for table in supernet.values():
                    table.draw_widths(widths)

            after_step()  # the first step's widths
            hooks = [optimizer.register_step_pre_hook(regularise), optimizer.register_step_post_hook(after_step)]
            try:
                valid = trainer.fit_phase("supernet", context.train_data, context.valid_data, optimizer=optimizer,
                                          progress=context.progress("optembed-supernet", shared=True),
                                          carried=SupernetStreams(threshold_optimizer, widths, supernet))
            finally:
                for hook in hooks:
                    hook.remove()
            kept_rows = []
            for field_name, frequency in zip(FIELDS, (context.user_frequency, context.item_frequency)):
                rows = np.zeros(len(frequency), dtype=bool)
                for name in model.tables(field_name):  # a field of several tables keeps a row any of them keeps
                    rows |= supernet[name].kept_rows()[1:]
                kept_rows.append(rows)
            thresholds_found = {name: table.threshold.item() for name, table in supernet.items()}
        finally:
            swap_tables(model, originals)
        return {"state": copy.deepcopy(model.state_dict()), "kept_rows": kept_rows, "thresholds": thresholds_found,
                "valid": valid, "curve": trainer.curve}
