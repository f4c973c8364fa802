"""RecBole's Trainer, with checkpoints that load without torch's full unpickler, and a leaner top-k collector.

RecBole 1.2.1 pickles its Config into every checkpoint, so reading one back
needs ``torch.load(..., weights_only=False)``, which runs whatever code the file
holds. Our checkpoints hold the Config's keys as plain data instead
(:func:`config_record`) and load with ``weights_only=True``
(:func:`load_checkpoint`); RecBole's own, with a pickled Config, load only where
a user asks (``trust_pickle``), after a one-line warning.

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

from recbole_bet.errors import UnsafeFileError
from recbole_bet.history import index_user_items
from recbole_bet.quality import row_quality
from recbole_bet.ranking import int_mm_available, screened_topk
from recbole_bet.resume import KeptEpochs, write_atomically
from recbole_bet.safe_load import safe_load


def load_checkpoint(path, map_location="cpu", trust_pickle: bool = False) -> dict:
    """A checkpoint (a dict with ``state_dict``, ``config``, ...), read with ``weights_only=True``
    (:func:`recbole_bet.safe_load.safe_load`): loading it runs no code.

    Args:
        trust_pickle: also read a checkpoint that pickles objects (RecBole's own, or ours from before 2026-12-07,
            with RecBole's Config) with torch's full unpickler, after a one-line warning. Only for files you trust.

    Raises:
        UnsafeFileError: the file pickles objects and ``trust_pickle`` is off.
    """
    try:
        return safe_load(path, map_location)
    except UnsafeFileError as error:
        if not trust_pickle:
            raise UnsafeFileError(f"{error}; a checkpoint you trust (RecBole's own, with its pickled Config) loads with "
                                  "trust_pickle=True (--trust_pickle)") from None
    getLogger().warning(f"{path}: a pickled checkpoint, read with torch's full unpickler (trust_pickle): it can run code")
    return torch.load(path, map_location=map_location, weights_only=False)


def config_record(config) -> dict:
    """RecBole's Config as plain data, for a checkpoint: the model, the dataset and the keys the user gave (from
    files, the config dict and the command line), from which :class:`~recbole_bet.config.BetConfig` rebuilds it."""
    return {"model": config["model"], "dataset": config["dataset"], "keys": plain(config.external_config_dict)}


def plain(value):
    """``value`` with only dicts, lists, tuples, str, numbers, bools and None (anything else as its ``str``)."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(plain(v) for v in value)
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


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
                unit in it: the phase's epochs are kept after every validation, and a killed run of the same
                command continues from its last kept epoch (:class:`~recbole_bet.resume.KeptEpochs`).
            carried (optional): what else the phase carries from one epoch to the next (``KeptEpochs``'s).

        Returns:
            dict: the best validation result.
        """
        self.reset_fit(stopping_step, optimizer)
        self.saved_model_file = f"{self.run_name}-{name}.pth" if name else f"{self.run_name}.pth"
        kept = None
        if progress and progress[0] is not None:
            kept = KeptEpochs(progress[0], progress[1], (train_data, valid_data), carried)
        stopped = kept.restore(self) if kept else False
        if stopped:  # what RecBole's fit would have done first (metrics that read the training data need it)
            self.eval_collector.data_collect(train_data)
        else:
            keep = (lambda epoch, score: kept.keep(self, epoch)) if kept else None
            super().fit(train_data, valid_data, saved=True, verbose=True, show_progress=bool(self.config["show_progress"]),
                        callback_fn=keep)
        self.load_best_model()
        return dict(self.best_valid_result)

    def _save_checkpoint(self, epoch, verbose=True, **kwargs):
        """RecBole's checkpoint with the Config as plain data (:func:`config_record`), so that it loads with
        ``weights_only=True``; written to a temporary file and then renamed over the old one: a kill while it is
        written leaves the previous checkpoint whole, and a file kept as a resume unit (a hard link to it) is never
        rewritten under it."""
        if not self.config["single_spec"] and self.config["local_rank"] != 0:
            return  # as RecBole's: only the first process of a distributed run writes
        target = kwargs.pop("saved_model_file", self.saved_model_file)
        state = {
            "config": config_record(self.config),
            "epoch": epoch,
            "cur_step": self.cur_step,
            "best_valid_score": float(self.best_valid_score),
            "state_dict": self.model.state_dict(),
            "other_parameter": self.model.other_parameter(),
            "optimizer": self.optimizer.state_dict(),
        }
        write_atomically(target, lambda tmp: torch.save(state, tmp))
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
