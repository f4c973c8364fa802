"""ESAPN: embedding sizes that only grow, chosen by policy networks, here under a hard budget.

Liu, Zhao, Chen, Li, Liu, Wang, Liu, "Automated Embedding Size Search in Deep Recommender Systems",
SIGIR 2020 (code: ``zgahhblhc/ESAPN``, read, not copied). Every row starts at the smallest candidate
size ``{2, 4, 8, 16, 64, 128}`` (scaled by ``d_max / 128``); a policy network per field (users,
items) reads a row's state, its training frequency (log-scaled), its current size (one-hot) and its
recent loss, and chooses **keep** or **enlarge** (to the next candidate); sizes never shrink. The
policy is trained by REINFORCE on the row's improvement: its quality now against the mean of its
last five (the code's ``ave_loss`` baseline); a row's loss here is ``1 - quality``, its quality the
mean of Recall and NDCG at 5, 10, 20 on validation (an item's, the mean of its training users').

The hard budget: the code has none. Here an enlargement that would pass the budget is masked out of
the policy's choices before it samples, and where the enlargements sampled together would pass it,
they are admitted in the order of their probability and the rest masked too (and left out of the
policy's loss, since that choice was not open to them): no state of the search is ever over the
budget (:func:`admit_growth`).

Where we depart from the code, and why: the code streams the data once and decides per batch,
scoring the "validation" on the training batch it just saw; here an episode is one epoch of
RecBole's training, decisions are made once per episode for every row, and the reward is measured on
the validation split. The code realises each size as its own table, projected to ``d_max`` by
linear maps (parameters outside any budget); here a size is the row's prefix of one ``d_max``-wide
masked table, the layout every method shares and exports. The final sizes are retrained from the
initial weights to convergence, as every method's. Rows grow by the action the policy samples (the
code samples only to train its controller and grows by the argmax; sampling keeps exploring, and the
policy's loss is then on-policy); the policy is Linear-Tanh-Linear (the code has a BatchNorm after the
first layer and a learned 32-wide embedding of the frequency, here one log-scaled number).
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
from recbole_bet.settings import CheckedSettings, integer, real
from recbole_bet.methods.base import Method, Outcome, RunContext, row_qualities, train_final, training_pairs
from recbole_bet.quality import quality
from recbole_bet.trainer import BudgetTrainer

PAPER_SIZES = (2, 4, 8, 16, 64, 128)


@dataclass(frozen=True)
class EsapnSettings(CheckedSettings):
    """ESAPN's keys (``properties/method/esapn.yaml``).

    Attributes:
        esapn_episodes (int): episodes, one training epoch and one decision per row each.
        esapn_policy_lr (float): Adam learning rate of the policies (the code: 1e-4).
        esapn_hidden (int): hidden width of a policy (the code: 512).
        esapn_window (int): episodes in a row's baseline and recent loss (the code: 5).
        esapn_profile (str | None): a schedule from ``properties/method/esapn/``.
    """

    prefix = "esapn_"

    esapn_episodes: int = field(default=50, metadata=integer(1))
    esapn_policy_lr: float = field(default=1e-4, metadata=real(0))
    esapn_hidden: int = field(default=512, metadata=integer(1))
    esapn_window: int = field(default=5, metadata=integer(1))
    esapn_profile: str | None = None


def candidate_sizes(d_max: int) -> np.ndarray:
    """The paper's candidates scaled to ``d_max`` (distinct, in ``[1, d_max]``, the last ``d_max``)."""
    scaled = np.clip(np.round(np.array(PAPER_SIZES) * d_max / 128), 1, d_max).astype(np.int64)
    return np.unique(np.append(scaled, d_max))


def admit_growth(level: np.ndarray, want: np.ndarray, p_enlarge: np.ndarray, candidates: np.ndarray, room: int):
    """Grow the rows that chose to, within ``room`` parameters.

    Args:
        level (np.ndarray): int ``[n]``, each row's index into ``candidates``.
        want (np.ndarray): bool ``[n]``, rows that chose **enlarge** (only among rows where it was open).
        p_enlarge (np.ndarray): ``[n]``, the policy's probability of enlarging: the order of admission.
        candidates (np.ndarray): the candidate sizes, increasing.
        room (int): parameters left in the budget.

    Returns:
        (new levels ``[n]``, bool ``[n]`` rows whose enlargement was admitted, bool ``[n]`` rows that wanted
        it and were refused for want of room)
    """
    cost = np.where(level + 1 < len(candidates), candidates[np.minimum(level + 1, len(candidates) - 1)] - candidates[level], 0)
    asked = np.flatnonzero(want)
    ranked = asked[np.argsort(-p_enlarge[asked], kind="stable")]
    fits = np.cumsum(cost[ranked]) <= room  # a prefix in probability order
    admitted = np.zeros(len(level), dtype=bool)
    admitted[ranked[fits]] = True
    refused = want & ~admitted
    return level + admitted, admitted, refused


class Policy(nn.Module):
    """A field's policy: state -> logits of (keep, enlarge)."""

    def __init__(self, state_dim: int, hidden: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, hidden), nn.Tanh(), nn.Linear(hidden, 2))

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.net(states)


def decide(policies: dict, fields: dict, states: torch.Tensor, level: np.ndarray, candidates: np.ndarray, room: int,
           generator: torch.Generator) -> tuple[torch.Tensor, np.ndarray, np.ndarray]:
    """Each row's keep-or-enlarge decision, drawn from its field's policy, with an enlargement that would not fit
    ``room`` (or past the largest candidate) masked out before sampling.

    Returns:
        (logits ``[n_rows, 2]``, enlarge ``[n_rows]`` bool, open ``[n_rows]`` bool: whether enlarging was allowed)
    """
    cost = np.where(level + 1 < len(candidates), candidates[np.minimum(level + 1, len(candidates) - 1)] - candidates[level], 0)
    open_ = (level + 1 < len(candidates)) & (cost <= room)
    logits = torch.cat([policies[name](states[part]) for name, part in fields.items()])
    logits = logits.masked_fill(torch.from_numpy(~open_).unsqueeze(1) & torch.tensor([False, True]), float("-inf"))
    choice = torch.multinomial(torch.softmax(logits, 1), 1, generator=generator).squeeze(1).numpy().astype(bool)
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
        """The episodes: one epoch of the recommender each, then the policies' keep-or-enlarge decisions and their
        REINFORCE step. Returns the rows' final sizes and one record per episode."""
        model, settings, budget, rng = context.model, context.settings, context.budget, context.rng
        logger = getLogger()
        n_users = budget.n_users
        torch.manual_seed(int(rng.integers(2**62)))  # the policies' initial weights
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        pairs = training_pairs(context)
        fields = {"user": slice(0, n_users), "item": slice(n_users, budget.n_rows)}
        state_dim = 2 + len(candidates)
        policies = {name: Policy(state_dim, settings.esapn_hidden) for name in fields}
        optimizers = {name: torch.optim.Adam(p.parameters(), lr=settings.esapn_policy_lr) for name, p in policies.items()}
        log_frequency = np.concatenate([np.log1p(f) / max(np.log1p(f).max(), 1e-12) for f in (context.user_frequency, context.item_frequency)])

        level = np.zeros(budget.n_rows, dtype=np.int64)
        history = []  # per-row quality of each episode (the state reads the last `window`, and only those are kept)
        trainer.optimizer = trainer._build_optimizer()  # the recommender's, for the whole search
        records = []
        # each finished episode is kept: a run killed in the middle of the search goes on after its last episode
        loop, first = context.kept_loop("esapn-search"), 0
        kept = loop.restore()
        if kept is not None:
            first, level, history, records = kept["next"], kept["level"], kept["history"], kept["records"]
            model.load_state_dict(kept["model"])
            trainer.optimizer.load_state_dict(kept["optimizer"])
            generator.set_state(kept["generator"])
            for name in fields:
                policies[name].load_state_dict(kept["policies"][name])
                optimizers[name].load_state_dict(kept["policy_optimizers"][name])
        progress = tqdm(range(first, settings.esapn_episodes), desc="ESAPN search", ncols=100, disable=not context.show_progress,
                        initial=first, total=settings.esapn_episodes)
        for episode in progress:
            recent = np.mean(history[-settings.esapn_window:], axis=0) if history else np.zeros(budget.n_rows)
            states = torch.from_numpy(
                np.concatenate([log_frequency[:, None], np.eye(len(candidates))[level], (1 - recent)[:, None]], 1)
            ).float()
            # ---- decide: keep or enlarge, an enlargement that cannot fit masked out before sampling
            room = budget.params - int(candidates[level].sum())
            logits, choice, open_ = decide(policies, fields, states, level, candidates, room, generator)
            level, admitted, refused = admit_growth(level, choice & open_, torch.softmax(logits, 1)[:, 1].detach().numpy(),
                                                    candidates, room)
            sizes = candidates[level]
            action = Action.from_rows(sizes, budget).check(budget)
            action.apply_to(model)
            # ---- one epoch of the recommender, then the reward on validation
            loss = trainer._train_epoch(context.train_data, episode, show_progress=False)
            model.clear_cached_embeddings()
            result, row_quality = row_qualities(trainer, context, pairs)
            row_quality = np.nan_to_num(row_quality)
            reward = row_quality - recent if history else np.zeros(budget.n_rows)
            history.append(row_quality)
            # ---- REINFORCE on the rows whose choice was open to them
            policy_losses = reinforce(optimizers, fields, logits, np.where(refused, 0, choice), open_ & ~refused, reward)
            measured = quality(result)
            record = {"episode": episode, "quality": measured, "reward": float(reward.mean()), "params": action.params,
                      "grown": int(admitted.sum()), "refused": int(refused.sum()), "sizes": action.summary(),
                      "train_loss": float(np.sum(loss)), "policy_loss": policy_losses}
            records.append(record)
            progress.set_postfix(quality=f"{measured:.4f}", params=action.params)
            logger.info(
                set_color(f"ESAPN episode {episode}", "green") + f" [validation quality {measured:.4f}, {action.params} of "
                f"{budget.params} parameters, {record['grown']} rows grown, {record['refused']} refused for the budget]"
            )
            loop.keep({"next": episode + 1, "level": level, "history": history[-settings.esapn_window:], "records": records,
                       "model": model.state_dict(), "optimizer": trainer.optimizer.state_dict(), "generator": generator.get_state(),
                       "policies": {name: p.state_dict() for name, p in policies.items()},
                       "policy_optimizers": {name: o.state_dict() for name, o in optimizers.items()}})
        return candidates[level], records
