"""ESAPN: embedding sizes chosen by policy networks, here under a hard budget that the rows trade.

Liu, Zhao, Chen, Li, Liu, Wang, Liu, "Automated Embedding Size Search in Deep Recommender Systems",
SIGIR 2020 (code: ``zgahhblhc/ESAPN``, read, not copied). Every row starts at the smallest candidate
size ``{2, 4, 8, 16, 64, 128}`` (scaled by ``d_max / 128``); a policy network per field (users,
items) reads a row's state, its training frequency (log-scaled), its current size (one-hot) and its
recent loss, and chooses its next size among the candidates. The policy is trained by REINFORCE on the
row's improvement: its quality now against the mean of its last five (the code's ``ave_loss``
baseline); a row's loss here is ``1 - quality``, its quality the mean of Recall and NDCG at 5, 10, 20
on validation (an item's, the mean of its training users').

The hard budget: the code has none, and its rows only **keep** or **enlarge**. Under a budget that
alone fills the table within a few episodes (every row starts small and only grows), after which no
enlargement fits, no choice is left and the policy stops learning. Here a row may also **shrink** to the
previous candidate, so that once the budget is full rows trade: the parameters the rows that shrink
give back pay for the enlargements, admitted in the order of their probability (or of their probability
per parameter, ``esapn_admit``) within what is free (:func:`trade`); an enlargement that does not fit is
refused (the row keeps its size, and that choice, which was not open to it, is left out of the policy's
loss). Every episode is then a decision of every
row and a policy update, and no state of the search is ever over the budget. The first episode's reward
is measured against the rows' quality before any training (the code's baseline starts at its first
batch's loss), so that the first update has a reward too.

Where we depart from the code, and why: the code streams the data once and decides per batch,
scoring the "validation" on the training batch it just saw; here an episode is one epoch of
RecBole's training, decisions are made once per episode for every row, and the reward is measured on
the validation split. The code realises each size as its own table, projected to ``d_max`` by
linear maps (parameters outside any budget); here a size is the row's prefix of one ``d_max``-wide
masked table, the layout every method shares and exports (a row that shrinks keeps its cut columns'
weights, which come back if it grows again). The final sizes are retrained from the initial weights to
convergence, as every method's. Rows move by the action the policy samples (the code samples only to
train its controller and grows by the argmax; sampling keeps exploring, and the policy's loss is then
on-policy); the policy is Linear-Tanh-Linear (the code has a BatchNorm after the first layer and a
learned 32-wide embedding of the frequency, here one log-scaled number).
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

from recbole_bet.budget import Action
from recbole_bet.errors import BudgetError
from recbole_bet.settings import CheckedSettings, choice, integer, real
from recbole_bet.methods.base import Method, Outcome, RunContext, row_qualities, train_final, training_pairs
from recbole_bet.quality import quality
from recbole_bet.trainer import BudgetTrainer

PAPER_SIZES = (2, 4, 8, 16, 64, 128)


@dataclass(frozen=True)
class EsapnSettings(CheckedSettings):
    """ESAPN's keys (``properties/method/esapn.yaml``).

    Attributes:
        esapn_episodes (int): episodes, one training epoch and one decision (shrink, keep, enlarge) per row each.
        esapn_policy_lr (float): Adam learning rate of the policies (the code: 1e-4).
        esapn_hidden (int): hidden width of a policy (the code: 512).
        esapn_window (int): episodes in a row's baseline and recent loss (the code: 5).
        esapn_admit (str): the order in which enlargements are admitted when the budget cannot take them all: by the
            policy's probability of enlarging (``probability``) or by that probability per parameter the enlargement
            costs (``per_parameter``, a knapsack's greedy order). The code has no budget.
        esapn_profile (str | None): a schedule from ``properties/method/esapn/``.
    """

    prefix = "esapn_"

    esapn_episodes: int = field(default=50, metadata=integer(1))
    esapn_policy_lr: float = field(default=1e-4, metadata=real(0))
    esapn_hidden: int = field(default=512, metadata=integer(1))
    esapn_window: int = field(default=5, metadata=integer(1))
    esapn_admit: str = field(default="probability", metadata=choice("probability", "per_parameter"))
    esapn_profile: str | None = None


def candidate_sizes(d_max: int) -> np.ndarray:
    """The paper's candidates scaled to ``d_max`` (distinct, in ``[1, d_max]``, the last ``d_max``)."""
    scaled = np.clip(np.round(np.array(PAPER_SIZES) * d_max / 128), 1, d_max).astype(np.int64)
    return np.unique(np.append(scaled, d_max))


SHRINK, KEEP, ENLARGE = 0, 1, 2  # a row's choices: the previous candidate, its size, the next candidate


def step_cost(level: np.ndarray, candidates: np.ndarray, up: int) -> np.ndarray:
    """Parameters one step costs each row: enlarging (``up=1``, the next candidate minus its size) or shrinking
    (``up=-1``, its size minus the previous candidate, which the shrink gives back); 0 where there is no such step."""
    top = len(candidates) - 1
    other = np.clip(level + up, 0, top)
    return np.abs(candidates[other] - candidates[level])


def admit_growth(level: np.ndarray, want: np.ndarray, p_enlarge: np.ndarray, candidates: np.ndarray, room: int):
    """Grow the rows that chose to, within ``room`` parameters.

    Args:
        level (np.ndarray): int ``[n]``, each row's index into ``candidates``.
        want (np.ndarray): bool ``[n]``, rows that chose **enlarge** (only among rows where it was open).
        p_enlarge (np.ndarray): ``[n]``, the policy's probability of enlarging: the order of admission.
        candidates (np.ndarray): the candidate sizes, increasing.
        room (int): parameters free in the budget.

    Returns:
        (new levels ``[n]``, bool ``[n]`` rows whose enlargement was admitted, bool ``[n]`` rows that wanted
        it and were refused for want of room)
    """
    cost = step_cost(level, candidates, 1)
    asked = np.flatnonzero(want)
    ranked = asked[np.argsort(-p_enlarge[asked], kind="stable")]
    fits = np.cumsum(cost[ranked]) <= room  # a prefix in probability order
    admitted = np.zeros(len(level), dtype=bool)
    admitted[ranked[fits]] = True
    refused = want & ~admitted
    return level + admitted, admitted, refused


def trade(level: np.ndarray, choice: np.ndarray, p_enlarge: np.ndarray, candidates: np.ndarray, room: int,
          per_parameter: bool = False):
    """Carry out the rows' choices within the budget: every shrink, then the enlargements that fit in ``room`` plus
    what the shrinks gave back (:func:`admit_growth`), in the order of their probability or, with ``per_parameter``,
    of their probability per parameter the enlargement costs.

    Args:
        level (np.ndarray): int ``[n]``, each row's index into ``candidates``.
        choice (np.ndarray): int ``[n]``, SHRINK, KEEP or ENLARGE (a shrink at the first candidate, or an
            enlargement at the last, is never chosen: :func:`decide` masks them).
        p_enlarge (np.ndarray): ``[n]``, the policy's probability of enlarging.
        room (int): parameters free in the budget before the episode's choices.
        per_parameter (bool): admit by ``p_enlarge / cost`` (``esapn_admit: per_parameter``).

    Returns:
        (new levels ``[n]``, bool ``[n]`` rows grown, bool ``[n]`` rows shrunk, bool ``[n]`` enlargements refused)
    """
    order = p_enlarge / np.maximum(step_cost(level, candidates, 1), 1) if per_parameter else p_enlarge
    shrunk = choice == SHRINK
    freed = int(step_cost(level, candidates, -1)[shrunk].sum())
    grown_level, grown, refused = admit_growth(level, choice == ENLARGE, order, candidates, room + freed)
    return grown_level - shrunk, grown, shrunk, refused


class Policy(nn.Module):
    """A field's policy: state -> logits of (shrink, keep, enlarge)."""

    def __init__(self, state_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.Tanh(), nn.Linear(hidden, 3))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states)


def decide(policies: dict, fields: dict, states: torch.Tensor, level: np.ndarray, candidates: np.ndarray,
           generator: torch.Generator) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Each row's choice (shrink, keep or enlarge), drawn from its field's policy, with a shrink below the first
    candidate or an enlargement past the last masked out before sampling. An enlargement stays open however full
    the budget is: the rows that shrink may pay for it (:func:`trade`).

    Returns:
        (logits ``[n_rows, 3]``, choice ``[n_rows]`` int, open ``[n_rows, 3]`` bool: the choices each row had)
    """
    open_ = np.stack([level > 0, np.ones(len(level), dtype=bool), level + 1 < len(candidates)], 1)
    logits = torch.cat([policies[name](states[part]) for name, part in fields.items()])
    logits = logits.masked_fill(torch.from_numpy(~open_), float("-inf"))
    choice = torch.multinomial(torch.softmax(logits, 1), 1, generator=generator).squeeze(1).numpy()
    return logits, choice, open_


def reinforce(optimizers: dict, fields: dict, logits: torch.Tensor, chosen: np.ndarray, used: np.ndarray,
              reward: np.ndarray) -> dict:
    """One REINFORCE step of each field's policy on the rows whose choice was open to them (``used``): the loss is
    ``-mean(reward * log p(chosen))``. Returns each field's loss (None for a field without such a row)."""
    log_p = torch.log_softmax(logits, 1).gather(1, torch.from_numpy(chosen.astype(np.int64)).unsqueeze(1)).squeeze(1)
    used = torch.from_numpy(used)
    policy_losses, total = {}, 0
    for name, part in fields.items():
        rows = used[part]
        if bool(rows.any()):
            weight = torch.from_numpy(reward[part]).float()[rows]
            policy_loss = -(weight * log_p[part][rows]).mean()
            total = total + policy_loss
            policy_losses[name] = float(policy_loss.detach())
        else:
            policy_losses[name] = None
    for optimizer in optimizers.values():
        optimizer.zero_grad()
    if torch.is_tensor(total):
        total.backward()  # the fields' policies share no parameter: each gets its own loss's gradient
        for optimizer in optimizers.values():
            optimizer.step()
    return policy_losses


class Esapn(Method):
    name = "esapn"
    settings_class = EsapnSettings

    def run(self, context: RunContext) -> Outcome:
        model, budget = context.model, context.budget
        candidates = candidate_sizes(budget.d_max)
        if budget.n_rows * candidates[0] > budget.params:
            raise BudgetError(
                f"ESAPN starts every row at size {candidates[0]}: {budget.n_rows * candidates[0]} parameters, over the budget "
                f"of {budget.params}; allowed: a sparsity that leaves at least {candidates[0]} per row"
            )
        initial = copy.deepcopy(model.state_dict())
        trainer = BudgetTrainer(context.config, model)
        # the search, kept once finished: a run killed in its final training does not search again
        sizes, records = context.budget_phase("esapn-search", lambda: self.search(context, trainer, candidates))
        final = Action.from_rows(sizes, budget)
        outcome = train_final(context, final, trainer, start=initial)
        outcome.extra = {"esapn": {"episodes": records, "candidates": candidates.tolist(), "settings": self.settings_record(context)}}
        return outcome

    def search(self, context: RunContext, trainer: BudgetTrainer, candidates: np.ndarray) -> tuple[np.ndarray, list[dict]]:
        """The episodes: each row's choice (shrink, keep, enlarge) carried out within the budget, one epoch of the
        recommender, then the policies' REINFORCE step on the rows' rewards. Returns the rows' final sizes and one
        record per episode."""
        search = EsapnSearch(context, trainer, candidates)
        loop, first = context.kept_loop("esapn-search"), 0
        kept = loop.restore()
        if kept is not None:
            first = search.load_kept(kept)
        else:
            search.measure_start()
        progress = tqdm(range(first, context.settings.esapn_episodes), desc="ESAPN search", ncols=100,
                        disable=not context.show_progress, initial=first, total=context.settings.esapn_episodes)
        for episode in progress:
            record = search.episode(episode)
            progress.set_postfix(quality=f"{record['quality']:.4f}", params=record["params"])
            loop.keep(search.kept(episode + 1))
        return candidates[search.level], search.records


class EsapnSearch:
    """ESAPN's search state: the policies and their optimisers, each row's level and recent qualities, the records.

    Args:
        context (RunContext): the run.
        trainer (BudgetTrainer): trains the recommender an epoch per episode and measures it.
        candidates (np.ndarray): the candidate sizes (:func:`candidate_sizes`).
    """

    def __init__(self, context: RunContext, trainer: BudgetTrainer, candidates: np.ndarray):
        self.context, self.trainer, self.candidates = context, trainer, candidates
        self.settings, self.budget = context.settings, context.budget
        torch.manual_seed(int(context.rng.integers(2**62)))  # the policies' initial weights
        self.generator = torch.Generator().manual_seed(int(context.rng.integers(2**62)))
        self.pairs = training_pairs(context)
        self.fields = {"user": slice(0, self.budget.n_users), "item": slice(self.budget.n_users, self.budget.n_rows)}
        self.policies = {name: Policy(2 + len(candidates), self.settings.esapn_hidden) for name in self.fields}
        self.optimizers = {name: torch.optim.Adam(p.parameters(), lr=self.settings.esapn_policy_lr) for name, p in self.policies.items()}
        frequencies = (context.user_frequency, context.item_frequency)
        self.log_frequency = np.concatenate([np.log1p(f) / max(np.log1p(f).max(), 1e-12) for f in frequencies])
        self.level = np.zeros(self.budget.n_rows, dtype=np.int64)
        self.history = []  # per-row quality of the last `window` episodes (the state's recent loss, the reward's baseline)
        self.records = []
        trainer.optimizer = trainer._build_optimizer()  # the recommender's, for the whole search

    def measure_start(self) -> None:
        """The rows' quality at the start (every row at the first candidate, nothing trained yet): the first
        episode's baseline, so that its reward is an improvement as every later one's."""
        Action.from_rows(self.candidates[self.level], self.budget).check(self.budget).apply_to(self.context.model)
        _, row_quality = row_qualities(self.trainer, self.context, self.pairs)
        self.history = [np.nan_to_num(row_quality)]

    def episode(self, episode: int) -> dict:
        """One episode: decide, trade within the budget, train an epoch, reward, update the policies."""
        context, budget, candidates = self.context, self.budget, self.candidates
        recent = np.mean(self.history[-self.settings.esapn_window:], axis=0)
        states = torch.from_numpy(
            np.concatenate([self.log_frequency[:, None], np.eye(len(candidates))[self.level], (1 - recent)[:, None]], 1)
        ).float()
        # ---- decide, then carry the choices out within the budget: shrinks pay for enlargements
        room = budget.params - int(candidates[self.level].sum())
        logits, choice, open_ = decide(self.policies, self.fields, states, self.level, candidates, self.generator)
        p_enlarge = torch.softmax(logits, 1)[:, ENLARGE].detach().numpy()
        self.level, grown, shrunk, refused = trade(self.level, choice, p_enlarge, candidates, room,
                                                   self.settings.esapn_admit == "per_parameter")
        action = Action.from_rows(candidates[self.level], budget).check(budget)
        action.apply_to(context.model)
        # ---- one epoch of the recommender, then the reward on validation
        loss = self.trainer._train_epoch(context.train_data, episode, show_progress=False)
        context.model.clear_cached_embeddings()
        result, row_quality = row_qualities(self.trainer, context, self.pairs)
        row_quality = np.nan_to_num(row_quality)
        reward = row_quality - recent
        self.history = (self.history + [row_quality])[-self.settings.esapn_window:]
        # ---- REINFORCE on the rows that had a choice and whose choice was carried out
        policy_losses = reinforce(self.optimizers, self.fields, logits, choice, (open_.sum(1) > 1) & ~refused, reward)
        record = {"episode": episode, "quality": quality(result), "reward": float(reward.mean()), "params": action.params,
                  "grown": int(grown.sum()), "shrunk": int(shrunk.sum()), "refused": int(refused.sum()),
                  "sizes": action.summary(), "train_loss": float(np.sum(loss)), "policy_loss": policy_losses}
        self.records.append(record)
        getLogger().info(
            set_color(f"ESAPN episode {episode}", "green") + f" [validation quality {record['quality']:.4f}, {action.params} of "
            f"{budget.params} parameters, {record['grown']} rows grown, {record['shrunk']} shrunk, {record['refused']} "
            "enlargements refused for the budget]"
        )
        return record

    def kept(self, next_episode: int) -> dict:
        """What a killed search needs to go on after its last finished episode."""
        return {"next": next_episode, "level": self.level, "history": self.history, "records": self.records,
                "model": self.context.model.state_dict(), "optimizer": self.trainer.optimizer.state_dict(),
                "generator": self.generator.get_state(),
                "policies": {name: p.state_dict() for name, p in self.policies.items()},
                "policy_optimizers": {name: o.state_dict() for name, o in self.optimizers.items()}}

    def load_kept(self, kept: dict) -> int:
        """Put back what :meth:`kept` returned; returns the episode to go on with."""
        self.level, self.history, self.records = kept["level"], kept["history"], kept["records"]
        self.context.model.load_state_dict(kept["model"])
        self.trainer.optimizer.load_state_dict(kept["optimizer"])
        self.generator.set_state(kept["generator"])
        for name in self.fields:
            self.policies[name].load_state_dict(kept["policies"][name])
            self.optimizers[name].load_state_dict(kept["policy_optimizers"][name])
        return kept["next"]
