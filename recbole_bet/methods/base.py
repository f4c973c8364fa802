"""What every method of the registry is: a way to turn (config, data, budget, frequencies, backbone)
into a trained model whose tables fit the budget, plus a record for the result file.

A method is one module of :mod:`recbole_bet.methods` with one :class:`Method` subclass, its keys'
dataclass (``settings_class``, keys prefixed with its name) and its defaults in
``properties/method/<name>.yaml``. The pipeline (:mod:`recbole_bet.quick_start`) looks a method up
by name and calls :meth:`Method.run`; nothing there branches on the name.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import numpy as np

from recbole_bet.budget import Action, Budget, ElementMask, SharedBuckets, Storage
from recbole_bet.resume import KeptLoop, budget_free_phase, kept_phase
from recbole_bet.trainer import BudgetTrainer


@dataclass
class RunContext:
    """What a method gets: everything of the run but the test split, which never reaches a method.

    Attributes:
        config (Config): RecBole's config.
        settings (CheckedSettings | None): the method's own keys.
        model: the budgeted backbone (:class:`~recbole_bet.model.budgeted.BudgetedRecommender`), freshly initialised.
        budget (Budget | None): the run's budget (None for RecBole's own models).
        user_frequency, item_frequency (np.ndarray): interactions per user / item in the training split.
        rng (np.random.Generator): the run's generator, seeded by ``seed``.
        train_data, valid_data: RecBole's data loaders.
        saved (bool): keep checkpoints (and test the best epoch, not the last).
        shared (dict): what a method computed for an earlier budget of the same run that does not depend on the
            budget (BET's pretraining, magnitude pruning's full table, OptEmbed's supernet), by name: a method
            stores it at the first budget and reads it back at the others.
        resume (RunState | None): the unfinished run's saved units of work (:mod:`recbole_bet.resume`); None
            without checkpoints.
        budget_key (str): this budget's name among them, e.g. ``sparsity0.9``.
    """

    config: object
    settings: object
    model: object
    budget: Budget | None
    user_frequency: np.ndarray
    item_frequency: np.ndarray
    rng: np.random.Generator
    train_data: object
    valid_data: object
    saved: bool = True
    shared: dict = field(default_factory=dict)
    resume: object = None
    budget_key: str = ""

    @property
    def show_progress(self) -> bool:
        return bool(self.config["show_progress"])

    def budget_free_phase(self, name: str, compute):
        """:func:`budget_free_phase` with this run's shared dict, unfinished run, loaders and generator."""
        return budget_free_phase(self.shared, self.resume, name, (self.train_data, self.valid_data), self.rng, compute)

    def budget_phase(self, name: str, compute):
        """A phase of this budget (a method's search), kept once finished as the unit ``<budget_key>/<name>`` of the
        unfinished run with every random stream (:func:`kept_phase`): a run killed after it, in the final training,
        does not search again. Without checkpoints: ``compute()``."""
        return kept_phase(self.resume, f"{self.budget_key}/{name}", (self.train_data, self.valid_data), self.rng, compute)

    def kept_loop(self, name: str) -> KeptLoop:
        """The iterations of this budget's search loop ``name``, each kept as the unit ``<budget_key>/<name>-epochs``
        (:class:`KeptLoop`; forgotten with the budget's kept epochs once the budget is finished)."""
        return KeptLoop(self.resume, f"{self.budget_key}/{name}-epochs", (self.train_data, self.valid_data), self.rng)

    def progress(self, phase: str, shared: bool = False):
        """The unit of the unfinished run that keeps ``phase``'s epochs (``BudgetTrainer.fit_phase(progress=...)``):
        ``<budget_key>/<phase>-epochs``, or ``<phase>-epochs`` for a ``shared`` phase (one that does not depend on
        the budget); None without checkpoints."""
        if self.resume is None:
            return None
        return self.resume, f"{phase}-epochs" if shared else f"{self.budget_key}/{phase}-epochs"


@dataclass
class Outcome:
    """What a method returns.

    Attributes:
        trainer (BudgetTrainer): holds the final model, loaded with its best weights; the test goes through it.
        valid (dict): the final model's best validation result.
        layout (Action | ElementMask | SharedBuckets | None): what the tables are masked to (None: RecBole's own model).
        checkpoint (str | None): the final model's checkpoint.
        curve (list): the validation curve of the final training.
        extra (dict): the method's own records, added to the result file (e.g. ``{"pep": {...}}``).
    """

    trainer: BudgetTrainer
    valid: dict
    layout: Action | ElementMask | SharedBuckets | None
    checkpoint: str | None
    curve: list
    extra: dict = field(default_factory=dict)


class Method:
    """One way to fill the budget. Subclasses set ``name`` and implement :meth:`run`."""

    name: ClassVar[str] = ""
    #: the dataclass of its keys (prefix ``<name>_``), or None for a method without keys
    settings_class: ClassVar[type | None] = None
    #: how its exported table is laid out, which a byte budget counts: ``prefix`` (an Action), ``element`` (an
    #: ElementMask, whose index is paid in bytes) or ``shared`` (SharedBuckets: bucket tables, and a stored assignment)
    layout_kind: ClassVar[str] = "prefix"
    #: a ``shared`` layout's partition kinds, each field's (what its file holds: a bucket table each, an assignment
    #: for a ``stored`` one); empty for the other layouts
    shared_partitions: ClassVar[tuple[str, ...]] = ()

    def make_budget(self, sparsity: float, d_max: int, n_users: int, n_items: int) -> Budget | None:
        """The run's budget: the sparsity's, by default."""
        return Budget.from_sparsity(sparsity, d_max, n_users, n_items)

    def make_byte_budget(self, sparsity: float, d_max: int, n_users: int, n_items: int, storage: Storage,
                         value_dtype: str) -> Budget | None:
        """The run's budget with ``budget_unit: bytes``: the parameters at ``value_dtype`` whose exported table fits in
        ``1 - sparsity`` of the float32 full table's bytes (:meth:`Budget.from_bytes`)."""
        return Budget.from_bytes(sparsity, d_max, n_users, n_items, storage, value_dtype)

    def run(self, context: RunContext) -> Outcome:
        raise NotImplementedError

    def budgets_independent(self, settings) -> bool:
        """Whether a budget of a run of several computes the same whatever the other budgets did (given what the
        method shares between budgets, which does not depend on the budget): then, with ``ray``, they may run as
        parallel tasks. ``settings``: the method's keys."""
        return True

    def settings_record(self, context: RunContext) -> dict:
        """The method's keys as the result file records them."""
        return dict(vars(context.settings)) if context.settings is not None else {}


def train_final(context: RunContext, layout: Action | ElementMask | SharedBuckets, trainer: BudgetTrainer | None = None, start=None) -> Outcome:
    """The final training every method shares: mask the model to ``layout`` (from ``start``, a state
    dict, if given) and train it with RecBole's ``fit`` until early stopping on validation.

    Args:
        trainer (BudgetTrainer, optional): the method's trainer (its checkpoint name); default a new one.
        start (dict, optional): weights to start from (e.g. PEP's initial weights); default the model's as they are.
    """
    layout = layout.check(context.budget)
    model = context.model
    if start is not None:
        model.load_state_dict(start)
    layout.apply_to(model)
    trainer = trainer or BudgetTrainer(context.config, model)
    valid = fit_final(trainer, context)
    return Outcome(trainer, valid, layout, trainer.saved_model_file if context.saved else None, trainer.curve)


def fit_final(trainer: BudgetTrainer, context: RunContext, carried=None) -> dict:
    """Train ``trainer``'s model into the run's own checkpoint and load its best epoch; without
    ``saved``, RecBole's ``fit`` without checkpoints (the last epoch is then tested). Returns the
    best validation result. ``carried``: what else the training carries from epoch to epoch
    (``BudgetTrainer.fit_phase``'s, e.g. DSL's prune-and-regrow schedule)."""
    if context.saved:
        return trainer.fit_phase(None, context.train_data, context.valid_data, progress=context.progress("final"),
                                 carried=carried)
    trainer.reset_fit()  # a method's earlier phase on this trainer leaves its best score and patience behind
    _, valid = trainer.fit(context.train_data, context.valid_data, saved=False, show_progress=context.show_progress)
    return dict(valid or {})


class FixedLayoutMethod(Method):
    """A method that picks its layout before training (full, ES, MR): :meth:`layout`, then
    the final training."""

    def layout(self, context: RunContext) -> Action:
        raise NotImplementedError

    def run(self, context: RunContext) -> Outcome:
        return train_final(context, self.layout(context))


def training_pairs(context: RunContext) -> tuple[np.ndarray, np.ndarray]:
    """The training interactions as ``(user row, item row)`` arrays (0-based rows, padding removed)."""
    inter = context.train_data._dataset.inter_feat
    return inter[context.config["USER_ID_FIELD"]].numpy() - 1, inter[context.config["ITEM_ID_FIELD"]].numpy() - 1


def row_qualities(trainer: BudgetTrainer, context: RunContext, pairs) -> tuple[dict, np.ndarray]:
    """The validation result of the model as it is now, and each row's quality ``[n_users + n_items]``
    (:func:`recbole_bet.trainer.row_quality`): a user's own (NaN without validation positives), an
    item's the mean of its training users' that have one (0 without any). The per-row state and reward of the
    reinforcement-learning methods (CIESS, ESAPN).

    Args:
        pairs: :func:`training_pairs`.
    """
    result, users = trainer.evaluate_rows(context.valid_data)
    known = ~np.isnan(users)
    item_users, item_of = pairs
    n_items = len(context.item_frequency)
    counted = known[item_users]  # a user without validation positives says nothing of the items it bought
    sums = np.bincount(item_of[counted], weights=users[item_users[counted]], minlength=n_items)
    counts = np.bincount(item_of[counted], minlength=n_items)
    items = np.divide(sums, counts, out=np.zeros_like(sums), where=counts > 0)
    return result, np.concatenate([users, items])
