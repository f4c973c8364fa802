"""CIESS: continuous input embedding size search by reinforcement learning, here under a hard budget.

Qu, Chen, Yuan, Nguyen, Yin, "Continuous Input Embedding Size Search For Recommender Systems",
SIGIR 2023 (code: ``yorkequ98/CIESS``, read, not copied). Two TD3 agents, one for users and one for
items, each a policy shared by the rows of its field:

* **state** of a row: its training frequency (min-max scaled), its current size and its quality
  (the mean of Recall and NDCG at 5, 10, 20 on validation; an item's is the mean of its training
  users') divided by the pretrained full table's, each in ``[-1, 1]``;
* **action**: a continuous size in ``[1, d_max]`` (the actor's tanh, rescaled), explored by a
  **random walk** of ``ciess_walk_steps`` steps of at most ``ciess_walk_span`` sizes (a step of
  ``j`` with probability proportional to ``1 / |j|``) from the actor's proposal, the walk's sizes
  scored by the first critic and the best kept, plus Gaussian noise drawn for each row
  (:func:`explore`);
* **reward** of a row: its quality minus the paper's size penalty ``lambda * ((d - 1) / d_max)^2``;
* TD3 (Fujimoto et al., 2018): twin critics, target networks updated softly by ``tau``, the actor
  and its target every ``ciess_policy_delay`` critic updates, target-policy smoothing.

The hard budget: the code trains and rewards every proposal and filters them by size afterwards
(the penalty alone "can even fail to cap the parameter usage", say BET's authors). Here every
proposal is projected onto the budget (:func:`project_to_budget`: one shift for all rows, then our
exact repair step) before it is trained or measured, and the projected sizes are what the replay
buffer stores, so the critics learn the value of what was executed. The best action on validation
is retrained from the initial weights to convergence.

Where we follow the paper and TD3 and not the code: the exploration noise is drawn per row (the code
draws one per step for every user and item: without a budget that moves the total size, but the
projection onto the budget absorbs a shift shared by all rows exactly, so one draw would explore nothing
here); the target-policy noise is drawn per sample (the code draws one for the batch); the backbone is evaluated in eval mode (the code leaves NGCF's dropout
on); an episode's last transition is terminal; the critics' targets are soft-updated with the actor's,
every ``ciess_policy_delay`` updates (the code: every update). Other departures: a random-walk move
that would leave ``[1, d_max]`` is reflected (the code renormalises over the neighbours that exist), and
a step's learning-rate decay has no floor (the code stops at 1e-3). Per step the code trains a model from scratch for
a fixed number of batches; here ``ciess_step_epochs`` epochs from the initial weights
(``ciess_step_start: scratch``) or from the pretrained full table (``pretrained``, the CPU profile).
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

from recbole_bet.budget import Action, fit_to_total, frequency_rank
from recbole_bet.errors import BudgetError
from recbole_bet.settings import CheckedSettings, choice, integer, real
from recbole_bet.methods.base import Method, Outcome, RunContext, row_qualities, train_final, training_pairs
from recbole_bet.quality import quality
from recbole_bet.trainer import BudgetTrainer


@dataclass(frozen=True)
class CiessSettings(CheckedSettings):
    """CIESS's keys (defaults: the code's, ``properties/method/ciess.yaml``).

    Attributes:
        ciess_episodes (int): M, episodes.
        ciess_steps (int): T, steps per episode; each trains and measures one action.
        ciess_step_epochs (int): training epochs per step.
        ciess_step_start (str): each step trains from the initial weights (``scratch``, the code) or from the
            pretrained full table (``pretrained``).
        ciess_step_lr (float): learning rate of a step's training (the code: 0.03) ...
        ciess_step_lr_decay (float): ... multiplied by this (0.9) ...
        ciess_step_lr_step (int): ... every this many batches (200).
        ciess_penalty (float): lambda of the reward's size penalty ``lambda * ((d - 1) / d_max)^2``.
        ciess_actor_lr (float): Adam learning rate of the actors (the code: 1e-3).
        ciess_critic_lr (float): Adam learning rate of the critics (the code: 3e-3).
        ciess_gamma (float): discount.
        ciess_tau (float): soft update of the target networks.
        ciess_policy_delay (int): critic updates per actor update.
        ciess_target_noise (float): standard deviation of the target-policy smoothing noise, in sizes ...
        ciess_target_noise_clip (float): ... clipped to this.
        ciess_explore_noise (float): standard deviation of the exploration noise, in sizes, drawn for each row.
        ciess_walk_steps (int): steps of the random walk from the actor's proposal.
        ciess_walk_span (int): the largest move of one step of the walk, in sizes.
        ciess_hidden (int): width of the actor's and critics' two hidden layers.
        ciess_batch (int): transitions per TD3 update.
        ciess_buffer_rows (int): replay buffer capacity, in multiples of the field's rows.
        ciess_grad_clip (float): gradient-norm clip of actor and critics.
        ciess_profile (str | None): a schedule from ``properties/method/ciess/``.
    """

    prefix = "ciess_"

    ciess_episodes: int = field(default=30, metadata=integer(1))
    ciess_steps: int = field(default=11, metadata=integer(1))
    ciess_step_epochs: int = field(default=10, metadata=integer(0))
    ciess_step_start: str = field(default="scratch", metadata=choice("scratch", "pretrained"))
    ciess_step_lr: float = field(default=0.03, metadata=real(0))
    ciess_step_lr_decay: float = field(default=0.9, metadata=real(0, 1))
    ciess_step_lr_step: int = field(default=200, metadata=integer(1))
    ciess_penalty: float = field(default=0.01, metadata=real(0, low_open=False))
    ciess_actor_lr: float = field(default=1e-3, metadata=real(0))
    ciess_critic_lr: float = field(default=3e-3, metadata=real(0))
    ciess_gamma: float = field(default=0.99, metadata=real(0, 1, low_open=False))
    ciess_tau: float = field(default=0.005, metadata=real(0, 1))
    ciess_policy_delay: int = field(default=2, metadata=integer(1))
    ciess_target_noise: float = field(default=2.0, metadata=real(0, low_open=False))
    ciess_target_noise_clip: float = field(default=5.0, metadata=real(0, low_open=False))
    ciess_explore_noise: float = field(default=6.0, metadata=real(0, low_open=False))
    ciess_walk_steps: int = field(default=5, metadata=integer(0))
    ciess_walk_span: int = field(default=5, metadata=integer(1))
    ciess_hidden: int = field(default=256, metadata=integer(1))
    ciess_batch: int = field(default=4096, metadata=integer(1))
    ciess_buffer_rows: int = field(default=100, metadata=integer(1))
    ciess_grad_clip: float = field(default=0.01, metadata=real(0))
    ciess_profile: str | None = None


# ---------------------------------------------------------------------------
# Pure arithmetic: sizes <-> actions, the random walk's steps, the projection onto the budget


def to_action(sizes, d_max: int) -> np.ndarray:
    """Sizes in ``[1, d_max]`` to actions in ``[-1, 1]`` (the actor's tanh range)."""
    return 2 * (np.asarray(sizes, dtype=np.float64) - 1) / (d_max - 1) - 1 if d_max > 1 else np.zeros(np.shape(sizes))


def to_sizes(actions, d_max: int) -> np.ndarray:
    """Actions in ``[-1, 1]`` to (real) sizes in ``[1, d_max]``."""
    return 1 + (np.clip(actions, -1, 1) + 1) / 2 * (d_max - 1)


def walk_offsets(n: int, steps: int, span: int, rng: np.random.Generator) -> np.ndarray:
    """``[n, steps]`` random-walk moves: ``±j`` for ``j`` in ``1..span``, with probability proportional to ``1 / j``."""
    lengths = np.arange(1, span + 1)
    p = (1 / lengths) / (1 / lengths).sum()
    return rng.choice(lengths, size=(n, steps), p=p) * rng.choice([-1, 1], size=(n, steps))


def random_walk(start: np.ndarray, offsets: np.ndarray, d_max: int) -> np.ndarray:
    """The sizes a walk visits from ``start`` (integers ``[n]``): ``[n, steps + 1]``, the start first. A move
    that would leave ``[1, d_max]`` goes the other way (the code's graph has no edge there)."""
    path = [np.clip(np.round(start), 1, d_max).astype(np.int64)]
    for step in offsets.T:
        here = path[-1]
        moved = here + step
        moved = np.where((moved < 1) | (moved > d_max), here - step, moved)
        path.append(np.clip(moved, 1, d_max))
    return np.stack(path, axis=1)


def project_to_budget(sizes: np.ndarray, total: int, d_max: int, order: np.ndarray) -> np.ndarray:
    """Project real sizes onto the budget: ``clip(floor(x - shift), 1, d_max)`` with the smallest shift whose
    sum fits ``total`` (bisection; the sum is non-increasing in the shift), then the exact repair step.

    Args:
        sizes (np.ndarray): float ``[n]``, proposed sizes.
        total (int): parameters to use, ``n <= total <= n * d_max``.
        order (np.ndarray): who receives leftovers first (the most frequent rows).

    Returns:
        np.ndarray: int64 ``[n]`` in ``[1, d_max]`` summing to ``total``.
    """
    sizes = np.asarray(sizes, dtype=np.float64)
    if not np.isfinite(sizes).all():
        raise BudgetError(f"CIESS proposed {int((~np.isfinite(sizes)).sum())} non-finite sizes: the actor diverged")

    def at(shift: float) -> np.ndarray:
        return np.clip(np.floor(sizes - shift), 1, d_max).astype(np.int64)

    low, high = float(sizes.min()) - d_max - 1, float(sizes.max())  # at low every row is d_max, at high every row is 1
    for _ in range(2100):  # halving a float64 interval reaches adjacent floats long before this
        middle = (low + high) / 2
        if middle in (low, high):
            break
        if at(middle).sum() > total:
            low = middle
        else:
            high = middle
    return fit_to_total(at(high), total, d_max, order)


def explore(proposed: np.ndarray, std: float, rng: np.random.Generator) -> np.ndarray:
    """The exploration noise: an independent Gaussian draw of standard deviation ``std`` added to each row's
    proposed size. One draw shared by all rows (the code's) would shift every size alike, which
    :func:`project_to_budget` undoes exactly; a draw per row changes the projected sizes."""
    return np.asarray(proposed, dtype=np.float64) + rng.normal(0, std, size=np.shape(proposed))


# ---------------------------------------------------------------------------
# TD3


def mlp(inputs: int, hidden: int, output: nn.Module | None = None) -> nn.Sequential:
    layers = [nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1)]
    return nn.Sequential(*layers, *([output] if output is not None else []))


class ReplayBuffer:
    """A ring buffer of ``(state, action, reward, next state, done)`` transitions, float32 arrays."""

    def __init__(self, capacity: int, state_dim: int):
        self.capacity, self.size, self.cursor = capacity, 0, 0
        self.arrays = {"s": np.zeros((capacity, state_dim), np.float32), "a": np.zeros((capacity, 1), np.float32),
                       "r": np.zeros((capacity, 1), np.float32), "s2": np.zeros((capacity, state_dim), np.float32),
                       "done": np.zeros((capacity, 1), np.float32)}

    def add(self, **batch) -> None:
        n = len(batch["s"])
        index = (self.cursor + np.arange(n)) % self.capacity
        for name, values in batch.items():
            self.arrays[name][index] = np.asarray(values, np.float32).reshape(n, -1)
        self.cursor = int((self.cursor + n) % self.capacity)
        self.size = min(self.capacity, self.size + n)

    def sample(self, n: int, rng: np.random.Generator) -> dict:
        index = rng.integers(self.size, size=n)  # with replacement, as the code
        return {name: torch.from_numpy(values[index]) for name, values in self.arrays.items()}


class TD3Agent(nn.Module):
    """One field's actor and twin critics, with their target copies (Fujimoto et al., 2018).

    Example::

        >>> agent = TD3Agent(state_dim=3, hidden=8, settings=CiessSettings(), d_max=128, capacity=100)
        >>> agent.actor(torch.zeros(5, 3)).shape            # actions in [-1, 1]
        torch.Size([5, 1])
    """

    def __init__(self, state_dim: int, hidden: int, settings: CiessSettings, d_max: int, capacity: int):
        super().__init__()
        self.settings, self.d_max = settings, d_max
        self.actor = mlp(state_dim, hidden, nn.Tanh())
        nn.init.uniform_(self.actor[-2].weight, -3e-3, 3e-3)  # the code's last layer: proposals start near the middle
        nn.init.uniform_(self.actor[-2].bias, -3e-3, 3e-3)
        self.critic1, self.critic2 = mlp(state_dim + 1, hidden), mlp(state_dim + 1, hidden)
        self.actor_target = copy.deepcopy(self.actor)
        self.critic1_target, self.critic2_target = copy.deepcopy(self.critic1), copy.deepcopy(self.critic2)
        for target in (self.actor_target, self.critic1_target, self.critic2_target):
            target.requires_grad_(False)
        self.actor_optimizer = torch.optim.Adam(self.actor.parameters(), lr=settings.ciess_actor_lr)
        critics = list(self.critic1.parameters()) + list(self.critic2.parameters())
        self.critic_optimizer = torch.optim.Adam(critics, lr=settings.ciess_critic_lr)
        self.buffer = ReplayBuffer(capacity, state_dim)
        self.updates = 0

    @torch.no_grad()
    def q1(self, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return self.critic1(torch.cat([states, actions], 1))

    def update(self, generator: torch.Generator, rng: np.random.Generator) -> tuple[float, float | None]:
        """One TD3 update from a sampled batch: the critics, and every ``policy_delay``-th time the actor and
        the targets. Returns ``(critic loss, actor loss or None)``."""
        s = self.settings
        batch = self.buffer.sample(s.ciess_batch, rng)
        with torch.no_grad():
            scale = 2 / max(self.d_max - 1, 1)  # sizes to action units
            noise = (torch.randn(len(batch["s"]), 1, generator=generator) * s.ciess_target_noise * scale).clamp(
                -s.ciess_target_noise_clip * scale, s.ciess_target_noise_clip * scale
            )
            next_action = (self.actor_target(batch["s2"]) + noise).clamp(-1, 1)
            next_input = torch.cat([batch["s2"], next_action], 1)
            target_q = torch.minimum(self.critic1_target(next_input), self.critic2_target(next_input))
            y = batch["r"] + s.ciess_gamma * (1 - batch["done"]) * target_q
        inputs = torch.cat([batch["s"], batch["a"]], 1)
        critic_loss = nn.functional.mse_loss(self.critic1(inputs), y) + nn.functional.mse_loss(self.critic2(inputs), y)
        self.critic_optimizer.zero_grad()
        critic_loss.backward()
        nn.utils.clip_grad_norm_(list(self.critic1.parameters()) + list(self.critic2.parameters()), s.ciess_grad_clip)
        self.critic_optimizer.step()
        self.updates += 1
        actor_loss = None
        if self.updates % s.ciess_policy_delay == 0:
            loss = -self.critic1(torch.cat([batch["s"], self.actor(batch["s"])], 1)).mean()
            self.actor_optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.actor.parameters(), s.ciess_grad_clip)
            self.actor_optimizer.step()
            actor_loss = float(loss)
            self.soft_update()
        return float(critic_loss), actor_loss

    def kept(self) -> dict:
        """What the agent carries from one search step to the next but its replay buffer: its networks (targets
        included), optimisers and update count. The buffer is kept a step's transitions at a time (each step's are
        added again in order on a rerun, which rebuilds the ring as it was), so a step's kept state does not grow
        with the steps before it."""
        return {"networks": self.state_dict(), "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(), "updates": self.updates}

    def load_kept(self, kept: dict) -> None:
        """Put back what :meth:`kept` returned."""
        self.load_state_dict(kept["networks"])
        self.actor_optimizer.load_state_dict(kept["actor_optimizer"])
        self.critic_optimizer.load_state_dict(kept["critic_optimizer"])
        self.updates = kept["updates"]

    @torch.no_grad()
    def soft_update(self) -> None:
        """``target <- (1 - tau) * target + tau * online`` for the actor and both critics."""
        tau = self.settings.ciess_tau
        for online, target in ((self.actor, self.actor_target), (self.critic1, self.critic1_target), (self.critic2, self.critic2_target)):
            for p, t in zip(online.parameters(), target.parameters()):
                t.mul_(1 - tau).add_(p, alpha=tau)


# ---------------------------------------------------------------------------
# The search


def scaled(values: np.ndarray) -> np.ndarray:
    """Min-max to ``[-1, 1]`` (all equal: 0)."""
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min() if values.size else 0
    return 2 * (values - values.min()) / span - 1 if span > 0 else np.zeros_like(values)


def slim_part(transitions: dict, first_of_episode: bool) -> dict:
    """A step's transitions (``{field: {"s", "a", "r", "s2", "done"}}``) as kept: within an episode a step's states
    ``s`` are the previous step's next states ``s2``, so only an episode's first step keeps them
    (:func:`rebuilt_parts` puts them back)."""
    if first_of_episode:
        return transitions
    return {name: {k: v for k, v in batch.items() if k != "s"} for name, batch in transitions.items()}


def rebuilt_parts(parts):
    """The kept steps' transitions, in order, each with its states ``s`` again (:func:`slim_part`): the previous
    step's ``s2`` where the part has none (a part kept whole, an episode's first step, is used as it is)."""
    previous = None
    for part in parts:
        part = {name: batch if "s" in batch else dict(batch, s=previous[name]["s2"]) for name, batch in part.items()}
        yield part
        previous = part


class Ciess(Method):
    name = "ciess"
    settings_class = CiessSettings

    def run(self, context: RunContext) -> Outcome:
        model, settings, budget, rng = context.model, context.settings, context.budget, context.rng
        initial = copy.deepcopy(model.state_dict())
        trainer = BudgetTrainer(context.config, model)
        generator = torch.Generator().manual_seed(int(rng.integers(2**62)))
        torch.manual_seed(int(rng.integers(2**62)))  # the agents' initial weights
        users_of_item = training_pairs(context)

        # ---- the pretrained full table: the peak per-row quality of the state (and the warm start); a run of
        # several budgets trains it once
        def pretrain():
            Action.full(budget).apply_to(model)
            trainer.fit_phase("pretrain", context.train_data, context.valid_data,
                              progress=context.progress("ciess-pretrain", shared=True))
            _, peak = row_qualities(trainer, context, users_of_item)
            return copy.deepcopy(model.state_dict()), np.maximum(np.nan_to_num(peak), 1e-5)

        pretrained, peak = context.budget_free_phase("ciess_pretrain", pretrain)
        start = pretrained if settings.ciess_step_start == "pretrained" else initial

        # ---- the search: the actors and critics over episodes of steps (kept once finished: a run killed in its
        # final training does not search again)
        search = CiessSearch(context, trainer, start, peak, generator, users_of_item)
        best, records = context.budget_phase("ciess-search", search.run)

        # ---- the best action on validation, retrained from the initial weights to convergence
        outcome = train_final(context, best[0], trainer, start=initial)
        outcome.extra = {"ciess": {"steps": records, "best_quality": best[1], "settings": self.settings_record(context)}}
        return outcome


class CiessSearch:
    """CIESS's search (Algorithm 1 of Qu et al., SIGIR 2023): per field, a TD3 actor and critic over episodes of
    steps; at each step the actor proposes a size per row, explored by the random walk and projected onto the budget,
    the recommender is fine-tuned under it from ``start``, and each row's quality is its reward. Every finished step is
    kept (:class:`~recbole_bet.resume.KeptLoop`): a run killed in the middle of the search goes on after its last step.

    Args:
        context (RunContext): the run.
        trainer (BudgetTrainer): fine-tunes and measures the recommender.
        start (dict): the weights each step starts from (``ciess_step_start``).
        peak (np.ndarray): ``[n_rows]``, each row's quality under the pretrained full table (the state's scale).
        generator (torch.Generator): the agents' own stream (their updates' noise).
        users_of_item: :func:`~recbole_bet.methods.base.training_pairs`.
    """

    def __init__(self, context: RunContext, trainer: BudgetTrainer, start: dict, peak: np.ndarray, generator, users_of_item):
        self.context, self.trainer, self.start, self.peak = context, trainer, start, peak
        self.generator, self.users_of_item = generator, users_of_item
        self.settings, self.budget = context.settings, context.budget
        self.d_max = self.budget.d_max
        self.order = frequency_rank(np.concatenate([context.user_frequency, context.item_frequency]))
        self.fields = {"user": slice(0, self.budget.n_users), "item": slice(self.budget.n_users, self.budget.n_rows)}
        rows = {name: self.settings.ciess_buffer_rows * (part.stop - part.start) for name, part in self.fields.items()}
        self.agents = {name: TD3Agent(3, self.settings.ciess_hidden, self.settings, self.d_max, rows[name]) for name in self.fields}
        self.frequency_feature = np.concatenate([scaled(context.user_frequency), scaled(context.item_frequency)])
        self.records, self.best = [], None

    def state(self, sizes: np.ndarray, row_quality: np.ndarray) -> np.ndarray:
        """Each row's state ``[n_rows, 3]``: its frequency, its size and its quality against the full table's."""
        return np.stack([self.frequency_feature, to_action(sizes, self.d_max), np.clip(2 * row_quality / self.peak - 1, -1, 1)], 1)

    def restore(self, loop) -> tuple[int, np.ndarray | None, np.ndarray | None]:
        """The step to go on with, and the sizes and row qualities it starts from (None, None at a first step)."""
        kept = loop.restore()
        if kept is None:
            return 0, None, None
        self.records, self.best = kept["records"], kept["best"]
        self.generator.set_state(kept["generator"])
        for name, agent in self.agents.items():
            agent.load_kept(kept["agents"][name])
        for transitions in rebuilt_parts(loop.parts(kept["next"])):  # the replay buffers, refilled step by step
            for name, agent in self.agents.items():
                agent.buffer.add(**transitions[name])
        return kept["next"], kept["sizes"], kept["row_quality"]

    def run(self) -> tuple[tuple, list[dict]]:
        """Every episode's steps. Returns ``((best action, its validation quality), one record per step)``."""
        settings, budget = self.settings, self.budget
        loop = self.context.kept_loop("ciess-search")
        first, sizes, row_quality = self.restore(loop)
        total_steps = settings.ciess_episodes * settings.ciess_steps
        progress = tqdm(total=total_steps, initial=first, desc="CIESS search", ncols=100, disable=not self.context.show_progress)
        for episode in range(first // settings.ciess_steps, settings.ciess_episodes):
            if episode * settings.ciess_steps >= first:  # the episode starts here, not in a killed run
                sizes, row_quality = np.full(budget.n_rows, self.d_max), np.zeros(budget.n_rows)  # the code's first state
            for step in range(max(first - episode * settings.ciess_steps, 0), settings.ciess_steps):
                sizes, row_quality, transitions = self.step(episode, step, sizes, row_quality)
                progress.update()
                progress.set_postfix(best=f"{self.best[1]:.4f}")
                loop.keep_part(episode * settings.ciess_steps + step, slim_part(transitions, first_of_episode=step == 0))
                loop.keep({"next": episode * settings.ciess_steps + step + 1, "records": self.records, "best": self.best,
                           "sizes": sizes, "row_quality": row_quality, "generator": self.generator.get_state(),
                           "agents": {name: agent.kept() for name, agent in self.agents.items()}})
        progress.close()
        return self.best, self.records

    def step(self, episode: int, step: int, sizes: np.ndarray, row_quality: np.ndarray):
        """One agent step: propose, project, fine-tune, measure, reward, update the agents. Returns the new sizes, row
        qualities and the step's transitions (per field)."""
        settings, budget, d_max, context = self.settings, self.budget, self.d_max, self.context
        s = self.state(sizes, row_quality)
        walked = self.propose(s)
        proposed = explore(walked, settings.ciess_explore_noise, context.rng)
        sizes = project_to_budget(proposed, budget.attainable, d_max, self.order)
        # how many rows the noise moved: against the projection of the proposal without it
        noise_moved = int((sizes != project_to_budget(walked, budget.attainable, d_max, self.order)).sum())
        action = Action.from_rows(sizes, budget).check(budget)
        self.trainer.finetune(self.start, action, settings.ciess_step_epochs, settings.ciess_step_lr, settings.ciess_step_lr_decay,
                              settings.ciess_step_lr_step, context.train_data)
        result, row_quality = row_qualities(self.trainer, context, self.users_of_item)
        row_quality = np.nan_to_num(row_quality)
        reward = row_quality - settings.ciess_penalty * ((sizes - 1) / d_max) ** 2
        s2, done = self.state(sizes, row_quality), float(step == settings.ciess_steps - 1)
        losses, transitions = {}, {}
        for name, part in self.fields.items():
            agent = self.agents[name]
            transitions[name] = {"s": s[part], "a": to_action(sizes[part], d_max), "r": reward[part],
                                 "s2": s2[part], "done": np.full(part.stop - part.start, done)}
            agent.buffer.add(**transitions[name])
            losses[name] = agent.update(self.generator, context.rng)
        measured = quality(result)
        self.records.append({
            "episode": episode, "step": step, "quality": measured, "reward": float(reward.mean()),
            "params": action.params, "sizes": action.summary(), "proposed_params": int(np.round(proposed).sum()),
            "noise_moved": noise_moved,
            "critic_loss": {name: loss[0] for name, loss in losses.items()},
            "actor_loss": {name: loss[1] for name, loss in losses.items()},
        })
        if self.best is None or measured > self.best[1]:
            self.best = (action, measured)
        getLogger().info(
            set_color(f"CIESS episode {episode} step {step}", "green")
            + f" [validation quality {measured:.4f}, best {self.best[1]:.4f}, proposed {self.records[-1]['proposed_params']} "
            f"-> {action.params} parameters, critic loss {losses['user'][0]:.5f} / {losses['item'][0]:.5f}]"
        )
        return sizes, row_quality, transitions

    def propose(self, states: np.ndarray) -> np.ndarray:
        """The actor's sizes, explored by the random walk (the first critic picks each row's best visited size):
        integer sizes ``[n_rows]``, before the exploration noise (:func:`explore`) and the projection."""
        settings, d_max, rng = self.settings, self.d_max, self.context.rng
        proposed = np.empty(len(states))
        for name, part in self.fields.items():
            agent, s = self.agents[name], torch.from_numpy(states[part]).float()
            with torch.no_grad():
                start = to_sizes(agent.actor(s).squeeze(1).double().numpy(), d_max)
            path = random_walk(start, walk_offsets(len(start), settings.ciess_walk_steps, settings.ciess_walk_span, rng), d_max)
            n, width = path.shape
            q = agent.q1(s.repeat_interleave(width, 0), torch.from_numpy(to_action(path.reshape(-1), d_max)).float().unsqueeze(1))
            proposed[part] = path[np.arange(n), q.view(n, width).argmax(1).numpy()]
        return proposed
