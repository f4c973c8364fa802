"""RecBole's Trainer, able to read its own checkpoints under torch >= 2.6, with a leaner top-k collector.

RecBole 1.2.1 pickles its Config into every checkpoint and reads them back
with ``torch.load``, which since torch 2.6 refuses pickled objects
(``weights_only=True``). The checkpoints read here are the ones this process
wrote, so they are loaded with ``weights_only=False``; no environment
variable is needed.

RecBole's Collector finds the hits among the top-k items through a dense
``users x items`` integer matrix per batch; :class:`TopkCollector` finds them
with ``isin`` over (user, item) keys and gives RecBole's evaluator the same
data, so the metrics are identical and large evaluation batches stay cheap;
its evaluation loaders gather each batch's users' items with numpy
(:mod:`recbole_bet.history`), the same tensors as RecBole's per-user loop.
Where the model's scores are dot products (LightGCN, NGCF) and only top-k
metrics are asked for, a batch's top k comes from
:func:`recbole_bet.ranking.screened_topk` (key ``screened_ranking``) instead
of a users x items float matrix.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from logging import getLogger
from pathlib import Path

import numpy as np

import torch
from recbole.evaluator import Collector
from recbole.trainer import Trainer
from recbole.utils import set_color

from recbole_bet.history import index_user_items
from recbole_bet.quality import row_quality
from recbole_bet.ranking import int_mm_available, screened_topk
from recbole_bet.resume import link_or_copy, write_atomically


def load_checkpoint(path, map_location="cpu") -> dict:
    """A RecBole checkpoint (a dict with ``state_dict``, ``config``, ...). Only for trusted files."""
    return torch.load(path, map_location=map_location, weights_only=False)


@dataclass
class RankedItems:
    """A batch's top-k items per user, best first, handed to :class:`TopkCollector` in place of its scores."""

    items: torch.Tensor  # [users, k]
    n_items: int


class TopkCollector(Collector):
    """RecBole's Collector; for the top-k metrics alone (Recall, NDCG, ...) without a users x items matrix."""

    _OTHER_NEEDS = ("rec.items", "rec.meanrank", "rec.score", "data.label")

    def topk_only(self) -> bool:
        """Whether every metric asked for needs only each user's top-k items (Recall, NDCG, Hit, MRR, ...)."""
        return self.register.need("rec.topk") and not any(self.register.need(key) for key in self._OTHER_NEEDS)

    last_topk = None  # the last evaluation's rec.topk, one row per evaluated user (for per-row quality)

    def get_data_struct(self):
        if "rec.topk" in self.data_struct:
            self.last_topk = self.data_struct.get("rec.topk").cpu()
        return super().get_data_struct()

    def eval_batch_collect(self, scores_tensor, interaction, positive_u, positive_i):
        if isinstance(scores_tensor, RankedItems):
            n_users, n_items = scores_tensor.items.shape[0], scores_tensor.n_items
            topk_idx = scores_tensor.items[:, : max(self.topk)]
        elif not self.topk_only():
            return super().eval_batch_collect(scores_tensor, interaction, positive_u, positive_i)
        else:
            n_users, n_items = scores_tensor.shape
            _, topk_idx = torch.topk(scores_tensor, max(self.topk), dim=-1)  # [users, k]
        positive_u, positive_i = positive_u.to(topk_idx.device), positive_i.to(topk_idx.device)
        ranked = torch.arange(n_users, device=topk_idx.device).unsqueeze(1) * n_items + topk_idx
        hits = torch.isin(ranked, positive_u * n_items + positive_i).long()
        positives = torch.bincount(positive_u, minlength=n_users).unsqueeze(1)
        self.data_struct.update_tensor("rec.topk", torch.cat((hits, positives), dim=1))


def random_state(loaders, rng=None) -> dict:
    """Every random stream a training phase draws from: torch's, numpy's and Python's global generators, each
    RecBole loader's own shuffling generator, and ``rng`` (a ``numpy.random.Generator``) if given. With
    :func:`set_random_state`, a phase computed once (a run of several budgets) leaves the streams where
    computing it again would, so each budget's result is the one a run of that budget alone gives."""
    import random

    state = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
        "loaders": [loader.generator.get_state() for loader in loaders],
        "rng": rng.bit_generator.state if rng is not None else None,
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict, loaders, rng=None) -> None:
    """Put every stream of :func:`random_state` back."""
    import random

    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    for loader, generator in zip(loaders, state["loaders"]):
        loader.generator.set_state(generator)
    if rng is not None and state["rng"] is not None:
        rng.bit_generator.state = state["rng"]
    if "cuda" in state:  # a process that sees fewer GPUs (a ray task) restores the ones it sees
        for device, generator in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(generator, device)


def budget_free_phase(shared: dict, resume, name: str, loaders, rng, compute):
    """The result of a phase that does not depend on the budget (BET's pretraining, magnitude pruning's full table,
    OptEmbed's supernet, CIESS's pretraining), computed once per run.

    At the run's first budget ``compute()`` makes it; it is kept in ``shared`` under ``name`` with every random
    stream as the phase left them (:func:`random_state`). At a later budget it is read back and
    the streams are put back there, so each budget is, bit for bit, its run alone. With ``resume`` (a run with
    checkpoints) the phase is also a unit of the unfinished run (:func:`kept_phase`): the rerun of a killed
    run reads it back rather than compute it again.

    Args:
        loaders: the run's RecBole loaders (their shuffling generators are among the streams).
        rng (np.random.Generator): the method's generator, also put back.
    """
    if name in shared:
        value, streams = shared[name]
        set_random_state(streams, loaders, rng)
        return value
    value = kept_phase(resume, name, loaders, rng, compute)
    shared[name] = (value, random_state(loaders, rng))
    return value


def kept_phase(resume, unit: str, loaders, rng, compute):
    """``compute()``, kept once it has finished as the unit ``unit`` of the unfinished run ``resume``
    (:mod:`recbole_bet.resume`) with every random stream as it left them (:func:`random_state`). The rerun of a
    killed run reads the value back and puts the streams back rather than compute it again, so what follows (a
    method's final training after its search) goes on as in the killed run. Without ``resume``: ``compute()``.

    Args:
        loaders: the run's RecBole loaders (their shuffling generators are among the streams).
        rng (np.random.Generator): the method's generator, also kept.
    """
    saved = restore_unit(resume, unit, loaders, rng)
    if saved is not None:
        return saved
    value = compute()
    keep_unit(resume, unit, value, loaders, rng)
    return value


def restore_unit(resume, unit: str, loaders, rng, usable=None):
    """The value kept as ``unit`` by :func:`keep_unit`, with every random stream put back as it was then; None if
    there is none (or no ``resume``), or if ``usable(value)`` says it cannot be continued from (the streams are then
    left as they are)."""
    saved = resume.load(unit) if resume is not None else None
    if saved is None:
        return None
    value, streams = saved
    if usable is not None and not usable(value):
        return None
    set_random_state(streams, loaders, rng)
    return value


def keep_unit(resume, unit: str, value, loaders, rng) -> None:
    """Keep ``value`` as the unit ``unit`` of the unfinished run ``resume`` with every random stream as it is now
    (:func:`random_state`), atomically; nothing without ``resume``."""
    if resume is not None:
        resume.save(unit, (value, random_state(loaders, rng)))


class KeptLoop:
    """A search loop's iterations (ESAPN's episodes, CIESS's agent steps, PEP's threshold epochs, OptEmbed's
    generations), each kept once finished as the unit ``unit`` of the unfinished run ``resume``
    (:mod:`recbole_bet.resume`), with every random stream: the rerun of a run killed in the middle of the loop goes on
    after its last finished iteration, and ends where the killed run would have. Without ``resume`` nothing is kept.

    Example::

        loop = KeptLoop(resume, "sparsity0.9/esapn-search-epochs", loaders, rng)
        kept = loop.restore()  # the last kept iteration's state (the streams put back), or None
        first = 0 if kept is None else kept["next"]
        for i in range(first, n):
            ...
            loop.keep({"next": i + 1, ...})
    """

    def __init__(self, resume, unit: str, loaders, rng):
        self.resume, self.unit, self.loaders, self.rng = resume, unit, loaders, rng

    def restore(self, with_parts: bool = False) -> dict | None:
        """The last kept iteration's state, the streams put back; None if there is none. ``with_parts``: the loop
        keeps parts (:meth:`keep_part`), and a state without all of them (kept by an older version, which kept none)
        is not continued from: a warning says so, and the loop starts again from its first iteration."""
        def usable(state) -> bool:
            if not with_parts or all(self.resume.has(self.part_unit(i)) for i in range(state["next"])):
                return True
            getLogger().warning(f"{self.unit} was kept without what its iterations added (an older version kept "
                                "it); this loop starts again from its first iteration")
            return False

        state = restore_unit(self.resume, self.unit, self.loaders, self.rng, usable)
        if state is None:
            return None
        getLogger().info(set_color("continuing", "green")
                         + f" {self.unit} after its iteration {state['next'] - 1}, kept by a killed run of this command")
        return state

    def keep(self, state: dict) -> None:
        """Keep ``state`` (it must hold ``next``, the iteration to go on with) and every random stream, atomically."""
        keep_unit(self.resume, self.unit, state, self.loaders, self.rng)

    def keep_part(self, i: int, value) -> None:
        """Keep what iteration ``i`` adds to a store that only grows (CIESS's replay buffers: the step's transitions),
        as the unit ``<unit>-part<i>``, before :meth:`keep` keeps the iteration: the kept state then stays the same
        size at every iteration instead of holding the whole store."""
        if self.resume is not None:
            self.resume.save(self.part_unit(i), value)

    def parts(self, n: int):
        """What :meth:`keep_part` kept for iterations ``0 .. n-1``, one at a time, in order (after
        ``restore(with_parts=True)``, which checked that they are all there)."""
        for i in range(n if self.resume is not None else 0):
            yield self.resume.load(self.part_unit(i))

    def part_unit(self, i: int) -> str:
        """The unit that keeps iteration ``i``'s part (an ``-epochs`` unit: forgotten with the budget's kept epochs)."""
        return f"{self.unit}-part{i}"


def claim_unique_name(saved_model_file: str, claimed_suffix: str = ".pth") -> str:
    """A checkpoint name no other run holds: ``saved_model_file``, or ``<stem>-2.pth``, ``<stem>-3.pth``...

    RecBole names a checkpoint by the model and the second its Trainer was made, so two runs
    started in the same second (a sweep's parallel tasks) would write, and load, one file. The
    name is claimed by creating ``<stem><claimed_suffix>`` exclusively (``O_EXCL``): the
    checkpoint itself, or for a run that writes several files under one stem, one of them.
    """
    stem = saved_model_file[: -len(".pth")] if saved_model_file.endswith(".pth") else saved_model_file
    candidate, n = stem, 1
    while True:
        try:
            os.close(os.open(candidate + claimed_suffix, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            return candidate + ".pth"
        except FileExistsError:
            n += 1
            candidate = f"{stem}-{n}"


class BudgetTrainer(Trainer):
    """RecBole's Trainer for budgeted backbones: unchanged training, checkpoint loading that works,
    a checkpoint name no parallel run shares, and the top-k collector above. ``curve`` keeps one
    record per validation of ``fit`` (epoch, that epoch's training loss, validation score), so a
    run can show that training had flattened before early stopping ended it."""

    #: the file whose exclusive creation claims this run's checkpoint name (see claim_unique_name)
    claimed_suffix = ".pth"

    def __init__(self, config, model, run_name: str | None = None):
        super().__init__(config, model)
        # run_name: another process's run (a ray task of it), whose name that process has claimed
        self.saved_model_file = f"{run_name}.pth" if run_name else claim_unique_name(self.saved_model_file, self.claimed_suffix)
        # every file of a multi-phase run is <run_name>-<phase>... (see fit_phase)
        self.run_name = str(Path(self.saved_model_file).with_suffix(""))
        self.eval_collector = TopkCollector(config)
        # Decided once: int8 screening is for CPUs (VNNI; a GPU's float32 product is fast and _int_mm there
        # has shape limits), dot-product models (not NeuMF, not RecBole's own models), top-k metrics, and a
        # torch whose CPU _int_mm exists and sums exactly (else the float32 path, the same top k).
        self.screened_ranking = (
            config["screened_ranking"] is not False
            and torch.device(self.device).type == "cpu"
            and getattr(model, "dot_product_scores", False)
            and self.eval_collector.topk_only()
            and int_mm_available()
        )
        self.curve = []

    def reset_fit(self, stopping_step: int | None = None, optimizer=None) -> None:
        """What RecBole's ``fit`` carries from one call to the next, made new: the patience, the epoch and
        early-stopping counters, the best score, the curve and the optimizer (default RecBole's)."""
        self.stopping_step = stopping_step or self.config["stopping_step"]
        self.start_epoch, self.cur_step = 0, 0
        self.curve, self.train_loss_dict = [], {}
        self.best_valid_score, self.best_valid_result = -np.inf, None
        self.optimizer = optimizer or self._build_optimizer()

    def fit_phase(self, name: str | None, train_data, valid_data, stopping_step: int | None = None, optimizer=None,
                  progress=None, carried=None) -> dict:
        """One phase of a multi-phase method: train the model as it is now with RecBole's ``fit`` (early
        stopping on validation after ``stopping_step`` validations without improvement; default RecBole's
        ``stopping_step``) into its own checkpoint, then load its best epoch.

        Args:
            name (str | None): the checkpoint is ``<run_name>-<name>.pth``; None: the run's own ``<run_name>.pth``
                (a method's final training).
            optimizer (torch.optim.Optimizer, optional): default RecBole's, built afresh.
            progress (tuple[RunState, str], optional): an unfinished run (:mod:`recbole_bet.resume`) and this phase's
                unit in it: the phase's progress is kept after every validation, and a killed run of the same
                command continues from its last kept epoch (:meth:`keep_progress`).
            carried (optional): what else the phase carries from one epoch to the next, beside the model, its optimiser
                and the global random streams (OptEmbed's threshold optimiser and width stream): an object with
                ``state_dict()`` and ``load_state_dict(state)``, kept and put back with the phase's progress.

        Returns:
            dict: the best validation result.
        """
        self.reset_fit(stopping_step, optimizer)
        self.saved_model_file = f"{self.run_name}-{name}.pth" if name else f"{self.run_name}.pth"
        state, unit = progress if progress and progress[0] is not None else (None, None)
        loaders = (train_data, valid_data)
        stopped = self.restore_progress(state, unit, loaders, carried) if state else False
        if stopped:  # what RecBole's fit would have done first (metrics that read the training data need it)
            self.eval_collector.data_collect(train_data)
        else:
            keep = (lambda epoch, score: self.keep_progress(state, unit, epoch, loaders, carried)) if state else None
            super().fit(train_data, valid_data, saved=True, verbose=True, show_progress=bool(self.config["show_progress"]),
                        callback_fn=keep)
        self.load_best_model()
        return dict(self.best_valid_result)

    # -- resume inside one training: a phase's state after each validation ---------------------------

    def keep_progress(self, state, unit: str, epoch: int, loaders, carried=None) -> None:
        """Keep (atomically) everything RecBole's ``fit`` carries to the next epoch: the weights and the optimiser,
        the epoch and early-stopping counters, the best score and result, the curve, every random stream and what the
        phase carries (``carried``: ``fit_phase``'s); and, when this epoch is the new best, its checkpoint as the file
        unit ``<unit>-best``: a hard link, which costs no copy, as :meth:`_save_checkpoint` replaces the checkpoint rather than rewriting it. The best is kept first:
        a kill between the two leaves the previous epoch's state with this epoch's best, which the rerun's replay of
        this epoch writes again."""
        if self.cur_step == 0:  # RecBole's early_stopping resets the count when, and only when, the best improves
            state.keep_file(f"{unit}-best", self.saved_model_file)
        state.save(unit, {
            "epoch": epoch,
            "stopped": self.cur_step > self.stopping_step,  # RecBole's early_stopping ends fit here
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "cur_step": self.cur_step,
            "best_valid_score": self.best_valid_score,
            "best_valid_result": self.best_valid_result,
            "curve": list(self.curve),
            "train_loss_dict": dict(self.train_loss_dict),
            "streams": random_state(loaders),
            "carried": carried.state_dict() if carried is not None else None,
        })

    def restore_progress(self, state, unit: str, loaders, carried=None) -> bool:
        """Put back a phase kept by :meth:`keep_progress` (nothing if there is none), so that ``fit`` goes on from
        the next epoch as the killed run would have. Returns whether the phase had already ended."""
        saved = state.load(unit)
        if saved is None:
            return False
        best = state.kept_file(f"{unit}-best")
        if best is None:  # kept by a version that kept no best checkpoint of its own: cannot go on from it
            self.logger.warning(f"the kept epochs of {unit} have no best checkpoint beside them (an older version "
                                "kept them); training this phase again from its start")
            return False
        self.model.load_state_dict(saved["model"])
        self.optimizer.load_state_dict(saved["optimizer"])
        self.start_epoch = saved["epoch"] + 1
        self.cur_step, self.best_valid_score = saved["cur_step"], saved["best_valid_score"]
        self.best_valid_result, self.curve = saved["best_valid_result"], list(saved["curve"])
        self.train_loss_dict = dict(saved["train_loss_dict"])
        link_or_copy(best, Path(self.saved_model_file))  # the best epoch's checkpoint, under this run's name
        set_random_state(saved["streams"], loaders)
        if carried is not None:
            carried.load_state_dict(saved["carried"])
        self.logger.info(set_color("continuing", "green") + f" after epoch {saved['epoch']}, kept by a killed run of this command")
        return bool(saved["stopped"]) or self.start_epoch >= self.epochs

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """RecBole's checkpoint, written to a temporary file and then renamed over the old one: a kill while it is
        written leaves the previous checkpoint whole, and a file kept as a resume unit (a hard link to it) is never
        rewritten under it."""
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return  # as RecBole's: only the first process of a distributed run writes
        target = kwargs.pop("saved_model_file", self.saved_model_file)
        save = super()._save_checkpoint
        write_atomically(target, lambda tmp: save(epoch, verbose=False, saved_model_file=str(tmp), **kwargs))
        if verbose:
            self.logger.info(set_color("Saving current", "blue") + f": {target}")

    def _valid_epoch(self, valid_data, show_progress=False):
        score, result = super()._valid_epoch(valid_data, show_progress=show_progress)
        epoch = max(self.train_loss_dict) if self.train_loss_dict else -1
        loss = self.train_loss_dict.get(epoch, float("nan"))
        self.curve.append({"epoch": int(epoch), "train_loss": float(loss), "valid_score": float(score)})
        return score, result

    def _full_sort_batch_eval(self, batched_data):
        """RecBole's batch of full ranking; for a dot-product model under top-k metrics, the batch's top-k
        items (:class:`RankedItems`, exact: :mod:`recbole_bet.ranking`) instead of its scores."""
        if not self.screened_ranking:
            return super()._full_sort_batch_eval(batched_data)
        interaction, history_index, positive_u, positive_i = batched_data
        users, items = self.model.full_sort_factors(interaction.to(self.device))
        top = screened_topk(users, items, max(self.eval_collector.topk), excluded=history_index)
        return interaction, RankedItems(top, items.n_items), positive_u, positive_i

    def load_best_model(self, model_file=None) -> None:
        """Load the parameters of ``model_file`` (default: this trainer's best checkpoint) into the model."""
        path = model_file or self.saved_model_file
        checkpoint = load_checkpoint(path, map_location=self.device)
        # As RecBole's own evaluate: the weights and the "other parameters" saved beside them. For
        # RecBole's LightGCN and NGCF these are the propagated embeddings cached for full ranking;
        # without them the cache left by the last validation (of the last epoch, not the best) would
        # score the test. Other parameters first: a budgeted model's load_state_dict then drops
        # them and propagates its loaded weights afresh.
        self.model.load_other_parameter(checkpoint.get("other_parameter"))
        self.model.load_state_dict(checkpoint["state_dict"])
        self.logger.info(set_color("Loading model structure and parameters from", "blue") + f" {path}")

    def evaluate_rows(self, eval_data, user_ids=None) -> tuple[dict, np.ndarray]:
        """Evaluate the model as it is now; also each user's quality (:func:`row_quality`).

        Args:
            user_ids (np.ndarray, optional): RecBole ids; default every real user (1 .. n_users - 1).

        Returns:
            (RecBole's result dict, float64 ``[len(user_ids)]``: NaN for a user without positives in ``eval_data``)
        """
        result = self.evaluate(eval_data, load_best_model=False)
        quality = np.full(self.model.n_users, np.nan)
        quality[np.asarray(eval_data.uid_list)] = row_quality(self.eval_collector.last_topk).numpy()
        return result, quality[np.arange(1, self.model.n_users) if user_ids is None else user_ids]

    def finetune(self, start: dict, layout, epochs: int, learning_rate: float, lr_decay: float, lr_step: int, train_data) -> None:
        """From the weights ``start``, mask the model to ``layout`` and train ``epochs`` epochs of RecBole's
        ``_train_epoch`` at ``learning_rate``, multiplied by ``lr_decay`` every ``lr_step`` batches (BET's
        fine-tuning of a measured action, section 4.3; CIESS's per-step training)."""
        self.model.load_state_dict(start)
        layout.apply_to(self.model)
        self.optimizer = self._build_optimizer(learning_rate=learning_rate)
        schedule = torch.optim.lr_scheduler.StepLR(self.optimizer, step_size=lr_step, gamma=lr_decay)
        hook = self.optimizer.register_step_post_hook(lambda *_: schedule.step())
        try:
            for epoch in range(epochs):
                self._train_epoch(train_data, epoch, show_progress=False)
        finally:
            hook.remove()
        self.model.clear_cached_embeddings()

    @torch.no_grad()
    def evaluate(self, eval_data, load_best_model=True, model_file=None, show_progress=False):
        if eval_data and load_best_model:
            self.load_best_model(model_file)
        index_user_items(eval_data)
        return super().evaluate(eval_data, load_best_model=False, show_progress=show_progress)
