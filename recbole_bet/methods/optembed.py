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
3. **Filling the leftover.** One width per field rarely spends the whole budget, and the best candidate
   on validation may lie well inside it (yelp2018-s at 0.8 chose a candidate of 75.5% of the budget: the
   supernet scores many widths alike). The code, without a budget, has nothing to fill. Here the best
   candidate is widened to the budget (:func:`fill_options`): its user width alone, its item width alone,
   or both by one factor, each as far as it fits; the supernet scores each and the best is kept. What is
   then left (less than a row's width more per field) goes one dimension at a time to the kept rows of
   the field whose own widening scored best, most frequent first, then to the other field's
   (:func:`spread`). The result file records the candidate and its parameters before and after the fill.
4. **Retraining** from the initial weights, both masks fixed (rows of size 0, the rest at their width).

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

from recbole_bet.budget import FIELDS, Action, frequency_rank, hand_out
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


def optembed_action(user_rows: np.ndarray, item_rows: np.ndarray, widths: tuple[int, int], d_max: int,
                    extra: tuple[np.ndarray, np.ndarray] | None = None) -> Action:
    """Kept rows at their field's width (plus ``extra`` per row, from :func:`spread`), pruned rows at 0."""
    users, items = user_rows.astype(np.int64) * widths[0], item_rows.astype(np.int64) * widths[1]
    if extra is not None:
        users, items = users + extra[0], items + extra[1]
    return Action(users, items, d_max, min_size=0)


def fill_options(widths: tuple[int, int], kept: tuple[int, int], budget: int, d_max: int) -> dict:
    """The candidate widened to the budget, three ways: ``users`` (the user width alone, as far as it fits),
    ``items`` (the item width alone) and ``both`` (both widths grown by one factor, the largest that fits: the
    inverse of :func:`fit_widths`). A way that cannot widen anything is left out.

    Returns:
        dict: ``{way: (w_users, w_items)}``, each within the budget and ``d_max``.
    """
    (w_users, w_items), (k_users, k_items) = widths, kept

    def cost(pair) -> int:
        return k_users * pair[0] + k_items * pair[1]

    left = budget - cost(widths)
    options = {}
    if k_users:
        options["users"] = (min(d_max, w_users + left // k_users), w_items)
    if k_items:
        options["items"] = (w_users, min(d_max, w_items + left // k_items))
    # the cost is non-decreasing in the factor and changes only where a width does: the largest fitting factor
    factors = sorted({w / w_users for w in range(w_users, d_max + 1)} | {w / w_items for w in range(w_items, d_max + 1)})
    grown = [(min(d_max, int(np.floor(w_users * f + 1e-9))), min(d_max, int(np.floor(w_items * f + 1e-9)))) for f in factors]
    options["both"] = max((pair for pair in grown if cost(pair) <= budget), key=cost)
    return {way: pair for way, pair in options.items() if pair != tuple(widths)}


def spread(rows: tuple[np.ndarray, np.ndarray], widths: tuple[int, int], frequency: tuple[np.ndarray, np.ndarray],
           amount: int, d_max: int, first: int) -> tuple[np.ndarray, np.ndarray]:
    """Hand ``amount`` parameters to kept rows, one dimension per row per pass (:func:`~recbole_bet.budget.hand_out`),
    the most frequent first: the field ``first`` (0 users, 1 items) until its kept rows are at ``d_max``, then the
    other. Returns the extra dimensions per row, ``(users [n_users], items [n_items])``; pruned rows get none."""
    extra = [np.zeros(len(r), dtype=np.int64) for r in rows]
    for field_index in (first, 1 - first):
        kept = np.flatnonzero(rows[field_index])
        room = (d_max - widths[field_index]) * len(kept)
        given = min(amount, room)
        if given > 0:
            sizes = hand_out(np.full(len(kept), widths[field_index]), given, d_max, frequency_rank(frequency[field_index][kept]))
            extra[field_index][kept] = sizes - widths[field_index]
            amount -= given
    return extra[0], extra[1]


def fill(score, best: tuple[int, int], kept_rows, frequency, budget: int, d_max: int):
    """Fill the budget from the evolution's best candidate: the supernet's best of :func:`fill_options` (a tie goes to
    the dearer one, then in the order users, items, both), then :func:`spread` over the kept rows.

    Args:
        score (callable): ``(w_users, w_items) -> validation score``, of the supernet.
        kept_rows (tuple[np.ndarray, np.ndarray]): bool per user, per item: rows the supernet keeps.
        frequency (tuple[np.ndarray, np.ndarray]): training interactions per user, per item.

    Returns:
        (widths, extra dimensions per row ``(users, items)``, the record of the fill for the result file)
    """
    kept = (int(kept_rows[0].sum()), int(kept_rows[1].sum()))

    def cost(pair) -> int:
        return kept[0] * pair[0] + kept[1] * pair[1]

    options = fill_options(best, kept, budget, d_max)
    scored = {way: float(score(pair)) for way, pair in options.items()}
    ways = list(options)
    chosen = max(ways, key=lambda w: (scored[w], cost(options[w]), -ways.index(w))) if options else None
    widths = options[chosen] if chosen else tuple(best)
    first = 0 if scored.get("users", -np.inf) >= scored.get("items", -np.inf) else 1
    extra = spread(kept_rows, widths, frequency, budget - cost(widths), d_max, first)
    used = cost(widths) + int(extra[0].sum() + extra[1].sum())
    record = {"before": {"widths": list(best), "params": cost(best)}, "way": chosen,
              "options": [{"way": w, "widths": list(p), "params": cost(p), "score": scored[w]} for w, p in options.items()],
              "widened": {"widths": list(widths), "params": cost(widths)}, "spread_to": "users" if first == 0 else "items",
              "after": {"params": used}}
    if used < 0.99 * budget:
        record["why_not_full"] = (f"the kept rows ({kept[0]} users, {kept[1]} items) hold at most {(kept[0] + kept[1]) * d_max} "
                                  f"parameters at d_max, under the budget of {budget}: the supernet pruned the rest")
    return widths, extra, record


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

        def score(widths):
            model.load_state_dict(trained)
            optembed_action(*kept_rows, widths, budget.d_max).check(budget).apply_to(model)
            result = trainer.evaluate(context.valid_data, load_best_model=False)
            return result[context.config["valid_metric"].lower()]

        def evolution():
            progress = tqdm(desc="OptEmbed evolution", ncols=100, disable=not context.show_progress)
            found = evolve(lambda widths: (progress.update(), score(widths))[1], kept, budget.params, budget.d_max, settings,
                           context.rng, context.kept_loop("optembed-evolution"))
            progress.close()
            return found

        best, scores, history = context.budget_phase("optembed-evolution", evolution)
        logger.info(set_color("OptEmbed evolution", "green") + f": widths {best} (users, items), validation {scores[best]:.4f}")

        # ---- 3. the leftover filled: the best candidate widened to the budget, the rest spread over kept rows
        frequency = (context.user_frequency, context.item_frequency)
        widths, extra, filled = context.budget_phase(
            "optembed-fill", lambda: fill(score, best, kept_rows, frequency, budget.params, budget.d_max))
        logger.info(set_color("OptEmbed fill", "green") + f": {filled['before']['params']} -> {filled['after']['params']} of "
                    f"{budget.params} parameters, widths {widths} (users, items)")

        # ---- 4. retrain from the initial weights, both masks fixed
        action = optembed_action(*kept_rows, widths, budget.d_max, extra)
        outcome = train_final(context, action, trainer, start=initial)
        outcome.extra = {
            "optembed": {
                "kept_rows": {"users": kept[0], "items": kept[1]},
                "thresholds": supernet["thresholds"],
                "widths": {"users": widths[0], "items": widths[1]},
                "evolution_widths": {"users": best[0], "items": best[1]},
                "fill": filled,
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
