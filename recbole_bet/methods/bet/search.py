"""The BET search: Algorithm 1 of Qu et al., "Budgeted Embedding Table For Recommender Systems", WSDM 2024.

Beside it in :mod:`recbole_bet.methods.bet`: the sampler of actions (``sampler.py``, section 3.2), the fitness
predictor (``predictor.py``, section 3.3), selective retraining (``retraining.py``, line 22) and the keys
(``settings.py``).

:func:`bet_search` is Algorithm 1 line by line; every step is a hook of
:class:`BetTrainer`, a RecBole ``Trainer`` subclass, so that one step (the
sampler, the predictor, the selection, the fine-tuning, the retraining) can be
swapped by overriding one method. Training itself is RecBole's: whole-model
training goes through ``Trainer.fit`` (one call per phase, with early stopping
on validation) and fine-tuning through ``Trainer._train_epoch``.

The test split never reaches this module: every choice is made on validation.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from logging import getLogger
from pathlib import Path

import numpy as np
import torch
from recbole.utils import set_color
from scipy import stats
from tqdm import tqdm

from recbole_bet.budget import Action, Budget
from recbole_bet.methods.bet.predictor import FitnessPredictor, SizesOnlyPredictor
from recbole_bet.methods.bet.pretraining import random_prefixes
from recbole_bet.methods.bet.retraining import rank_retrain, ray_retrainings, retrain, retraining_progress
from recbole_bet.methods.bet.sampler import ActionSampler, Candidates
from recbole_bet.methods.bet.settings import BetSettings
from recbole_bet.quality import quality
from recbole_bet.resume import budget_free_phase, keep_unit, restore_unit, write_atomically
from recbole_bet.safe_load import kept_type
from recbole_bet.trainer import BudgetTrainer


def strategy_for(t: int, selection: str = "hybrid") -> str:
    """Selection strategy of iteration ``t`` (Algorithm 1, lines 6-12): I, I, I, II, III, I, ... (``hybrid``, the
    paper's); always II for ``random``, the first variant of the paper's Table 2."""
    return "II" if selection == "random" else ("I", "I", "I", "II", "III")[t % 5]


@kept_type  # kept in the search's units: read back without torch's full unpickler (recbole_bet.safe_load)
@dataclass
class Population:
    """``A``: the measured actions and their fitness, in the order they were measured."""

    actions: list = field(default_factory=list)
    records: list = field(default_factory=list)

    def add(self, action: Action, record: dict) -> None:
        self.actions.append(action)
        self.records.append(record)

    def __len__(self) -> int:
        return len(self.actions)

    @property
    def fitness(self) -> np.ndarray:
        """Each action's fitness: its measure, or the mean of its measures once re-measured (``bet_remeasure_top``)."""
        return np.array([np.mean([r["measured"], *r["remeasured"]]) if "remeasured" in r else r["measured"] for r in self.records])

    def top(self, k: int) -> list[int]:
        """Indices of the ``k`` best measured actions, best first (earlier wins a tie); once some were re-measured,
        the best among those."""
        order = np.argsort(-self.fitness, kind="stable")
        if any("remeasured" in r for r in self.records):
            order = [i for i in order if "remeasured" in self.records[i]]
        return list(order[:k])

    def save(self, path) -> None:
        """Write the population so it can be inspected while the search runs (sizes as uint8/uint16)."""
        dtype = np.uint8 if self.actions[0].d_max <= 255 else np.uint16
        arrays = dict(
            user_sizes=np.stack([a.user_sizes for a in self.actions]).astype(dtype),
            item_sizes=np.stack([a.item_sizes for a in self.actions]).astype(dtype),
            measured=self.fitness,
            records=np.array(json.dumps(self.records)),
        )

        def write(tmp: Path) -> None:
            with open(tmp, "wb") as file:  # a file, so that numpy adds no ".npz" to the temporary name
                np.savez(file, **arrays)

        write_atomically(path, write)


@dataclass
class SearchResult:
    action: Action
    checkpoint: str
    valid: dict
    full_quality: float
    pretrain_curve: list
    records: list
    retrained: list
    seconds: dict
    warm_start: dict | None = None  # bet_share_population: the predictor's training on earlier budgets' actions
    sampler: dict | None = None  # how often each path of the sampler ran (ActionSampler.counts)
    rank_correlation: dict | None = None  # Spearman's rho between fitness and retrained quality (rank_correlation)

    @property
    def retrained_curve(self) -> list:
        """The validation curve of the winning retraining."""
        return next(record["curve"] for record in self.retrained if record.get("checkpoint") == self.checkpoint)


class BetTrainer(BudgetTrainer):
    """RecBole Trainer with BET's phases as hooks (pretrain, sample, select, fine-tune, measure,
    update the predictor, retrain). :func:`bet_search` calls them in Algorithm 1's order.

    Args:
        config (Config): RecBole config.
        model: a budgeted backbone (:class:`~recbole_bet.model.budgeted.BudgetedRecommender`).
        settings (BetSettings): the ``bet_`` keys.
        budget (Budget): the run's budget.
        user_frequency, item_frequency (np.ndarray): training-split frequencies.
        rng (np.random.Generator): drives the sampler and strategy II.
    """

    # Every file of a search is named <run_name>-<what>; the population file claims the name.
    claimed_suffix = "-population.npz"

    def __init__(self, config, model, settings: BetSettings, budget: Budget, user_frequency, item_frequency, rng, shared=None,
                 resume=None, budget_key: str = ""):
        super().__init__(config, model)
        self.settings, self.budget, self.rng = settings, budget, rng
        self.shared = shared if shared is not None else {}  # the pretraining, for a run's later budgets
        # a killed run's finished units of work (recbole_bet.resume), and this budget's name among them
        self.resume, self.budget_key = resume, budget_key
        dtypes = settings.bet_dtypes  # searching precision: each action carries its dtype
        self.sampler = ActionSampler(
            budget, user_frequency, item_frequency, beta_max=settings.beta_max, probabilities=settings.distribution_weights,
            overflow=settings.bet_overflow, overflow_tries=settings.bet_overflow_tries, share_sampling=settings.bet_share_sampling,
            dtypes=dtypes,
        )
        predictor = FitnessPredictor if settings.bet_predictor == "deepsets" else SizesOnlyPredictor
        searched = dtypes if dtypes and len(dtypes) > 1 else None  # the predictor reads the dtype when it varies
        self.predictor = predictor(user_frequency, item_frequency, budget.d_max, dtypes=searched).to(self.device)
        self.predictor_optimizer = torch.optim.Adam(self.predictor.parameters(), lr=settings.bet_predictor_lr)
        self.initial_state = copy.deepcopy(model.state_dict())  # the "fresh backbone" of selective retraining
        self.pretrained_state = None
        self.show_progress = bool(config["show_progress"])

    # -- Algorithm 1, line 2 -------------------------------------------------------------------------

    def pretrain(self, train_data, valid_data) -> float:
        """Train the full table to convergence (patience ``bet_pretrain_stopping_step``, by default
        RecBole's ``stopping_step``); return its validation quality, Eq. 12's denominator. A run of several
        budgets pretrains once: the later ones start from the same table and share ``q_full``."""

        def pretrain():
            budget = self.budget  # the full table: every row at d_max
            self.model.apply_action(Action.uniform(budget.d_max, budget.n_users, budget.n_items, budget.d_max))
            patience, progress = self.settings.bet_pretrain_stopping_step, (self.resume, "bet-pretrain-epochs")
            if self.settings.bet_pretrain_prefix == "random":  # OptEmbed's supernet idea (pretraining.py)
                optimizer = self._build_optimizer()
                with random_prefixes(self.model, optimizer, int(self.rng.integers(2**62))) as streams:
                    valid = self.fit_phase("pretrain", train_data, valid_data, patience, optimizer=optimizer,
                                           progress=progress, carried=streams)
            else:
                valid = self.fit_phase("pretrain", train_data, valid_data, patience, progress=progress)
            return copy.deepcopy(self.model.state_dict()), quality(valid), self.curve

        self.pretrained_state, q_full, self.curve = budget_free_phase(
            self.shared, self.resume, "bet_pretrain", (train_data, valid_data), self.rng, pretrain)
        self.model.load_state_dict(self.pretrained_state)
        return q_full

    # -- resume: the search's state between two iterations or two retrainings ----------------------------

    def unit(self, name: str) -> str:
        return f"{self.budget_key}/{name}"

    def progress(self, rank: int):
        """The unit that keeps the ``rank``-th retraining's epochs (:meth:`BudgetTrainer.fit_phase`)."""
        return retraining_progress(self.resume, self.budget_key, rank)

    def save_progress(self, name: str, payload: dict, train_data, valid_data) -> None:
        """Keep a finished unit of this budget's search, with the predictor, its optimiser and every random stream
        (:func:`recbole_bet.resume.keep_unit`)."""
        keep_unit(self.resume, self.unit(name), dict(
            payload, predictor=self.predictor.state_dict(), predictor_optimizer=self.predictor_optimizer.state_dict()),
            (train_data, valid_data), self.rng)

    def load_progress(self, name: str, train_data, valid_data) -> dict | None:
        """A finished unit of a killed run of this command, with the predictor and the random streams put back."""
        saved = restore_unit(self.resume, self.unit(name), (train_data, valid_data), self.rng)
        if saved is not None:
            self.predictor.load_state_dict(saved["predictor"])
            self.predictor_optimizer.load_state_dict(saved["predictor_optimizer"])
        return saved

    # -- lines 4-5 -----------------------------------------------------------------------------------

    def sample_candidates(self, t: int = 0, population: Population | None = None) -> Candidates:
        return self.sampler.sample(self.settings.bet_candidates, self.rng, self.share_range(t, population))

    def share_range(self, t: int, population: Population | None) -> tuple[float, float]:
        """Where iteration ``t`` draws the user share w: [0, 1] (the paper), or with ``bet_share_narrow`` s > 0 a window
        of width ``1 - s * t / T`` around the mean w of the 3 best measured actions, kept inside [0, 1]."""
        narrow = self.settings.bet_share_narrow
        if not narrow or population is None or not len(population):
            return 0.0, 1.0
        width = 1.0 - narrow * t / self.settings.bet_iterations
        centre = float(np.mean([population.records[i]["user_share"] for i in population.top(3)]))
        low = min(max(centre - width / 2, 0.0), 1.0 - width)
        return low, low + width

    # -- lines 6-12 ----------------------------------------------------------------------------------

    @torch.no_grad()
    def select(self, t: int, candidates: Candidates, population: Population) -> tuple[int, np.ndarray]:
        """Index of the candidate to measure, and the predicted fitness of all candidates."""
        self.predictor.eval()
        embeddings = self.predictor.embed(candidates.user_sizes, candidates.item_sizes, candidates.dtypes)
        predicted = self.predictor.decoder(embeddings).squeeze(1).cpu().numpy()
        strategy = strategy_for(t, self.settings.bet_selection)
        if strategy == "II":  # random: keeps the predictor's training set diverse
            return int(self.rng.integers(len(candidates))), predicted
        if strategy == "III" and len(population):  # nearest neighbour of the best measured action
            best = population.actions[population.top(1)[0]]
            anchor = self.predictor.embed(best.user_sizes, best.item_sizes, best.value_dtype)  # with the current predictor
            return int(torch.cdist(anchor, embeddings).argmin()), predicted
        return int(np.argmax(predicted)), predicted  # I: greedy on predicted fitness

    # -- line 13 -------------------------------------------------------------------------------------

    def finetune(self, action: Action, train_data) -> None:
        """From the pretrained weights, mask to ``action`` and train ``h`` epochs
        (lr 0.03, x0.98 every 200 batches, by default)."""
        s = self.settings
        super().finetune(
            self.pretrained_state, action, s.bet_finetune_epochs, s.bet_finetune_lr, s.bet_finetune_lr_decay, s.bet_finetune_lr_step,
            train_data,
        )

    # -- line 14 -------------------------------------------------------------------------------------

    def measure(self, valid_data) -> float:
        """Validation quality (Eq. 13) of the model as it is now."""
        return quality(self.evaluate(valid_data, load_best_model=False))

    # -- lines 16-20 ---------------------------------------------------------------------------------

    def update_predictor(self, population: Population) -> float:
        """``N`` MSE steps (Eq. 11) on records drawn from the population; the mean loss."""
        return self.fit_predictor(population.actions, population.fitness, self.settings.bet_predictor_updates)

    def fit_predictor(self, actions: list, fitness: np.ndarray, steps: int) -> float:
        """``steps`` MSE steps (Eq. 11), each on ``bet_predictor_batch`` records drawn from ``(actions, fitness)``;
        the mean loss (NaN for no step)."""
        self.predictor.train()
        losses = []
        for _ in range(steps):
            picks = self.rng.integers(len(actions), size=min(self.settings.bet_predictor_batch, len(actions)))
            users = np.stack([actions[i].user_sizes for i in picks])
            items = np.stack([actions[i].item_sizes for i in picks])
            target = torch.tensor(fitness[picks], dtype=torch.float32, device=self.device)
            dtypes = [actions[i].value_dtype for i in picks]
            loss = torch.nn.functional.mse_loss(self.predictor(users, items, dtypes), target)
            self.predictor_optimizer.zero_grad()
            loss.backward()
            self.predictor_optimizer.step()
            losses.append(loss.item())
        return float(np.mean(losses)) if losses else float("nan")

    # -- several budgets in one run: the earlier budgets' measured actions (bet_share_population) -------

    def measured_by_budget(self) -> dict:
        """``{budget key: Population}`` of the run's budgets whose search has ended, this run's or a killed one's."""
        if "bet_measured" not in self.shared:
            saved = self.resume.load("bet-measured") if self.resume else None
            self.shared["bet_measured"] = saved or {}
        return self.shared["bet_measured"]

    def share_measured(self, population: Population) -> None:
        """With ``bet_share_population``, keep this budget's measured actions for the later budgets (and for a
        rerun of a killed run)."""
        if not self.settings.bet_share_population:
            return
        measured = self.measured_by_budget()
        measured[self.budget_key] = population
        if self.resume:
            self.resume.save("bet-measured", measured)

    def warm_start_predictor(self) -> dict | None:
        """With ``bet_share_population``, before the first iteration: as many predictor steps on the earlier budgets'
        measured actions as their searches made (``N`` per action). Their fitness shares this run's ``q_full``,
        and the predictor reads sizes and frequencies, not ids, so what it learnt there may transfer. None when
        off or at the run's first budget."""
        if not self.settings.bet_share_population:
            return None
        earlier = [p for key, p in self.measured_by_budget().items() if key != self.budget_key]
        actions = [a for p in earlier for a in p.actions]
        if not actions:
            return None
        fitness = np.concatenate([p.fitness for p in earlier])
        steps = self.settings.bet_predictor_updates * len(actions)
        loss = self.fit_predictor(actions, fitness, steps)
        getLogger().info(set_color("fitness predictor", "green") + f": warm-started on {len(actions)} actions of "
                         f"earlier budgets ({steps} steps, loss {loss:.5f})")
        return {"actions": len(actions), "steps": steps, "loss": loss}

    # -- line 22 -------------------------------------------------------------------------------------

    def selective_retrain(self, population: Population, train_data, valid_data) -> tuple[int, str, dict, list]:
        """Train the top-k measured actions to convergence; the best on validation wins (Eq. 14).

        Each starts from the initial weights (``bet_retrain_from: scratch``, the paper) or from the
        pretrained full table under the action's masks (``pretrained``, which converges sooner), and from its
        own seed (:mod:`recbole_bet.fanout`), so that with ``ray: True`` they run as ray tasks, with the same result.

        Returns:
            (population index of the winner, its checkpoint, its validation result, one record per retrained action)
        """
        start = self.pretrained_state if self.settings.bet_retrain_from == "pretrained" else self.initial_state
        patience = self.settings.bet_retrain_stopping_step
        top = population.top(self.settings.bet_retrain_top)
        if self.settings.bet_retrain_rank_epochs:
            return self.ranked_retrain(population, top, start, train_data, valid_data)
        retrained = {}
        todo = []
        for rank, index in enumerate(top):
            done = self.load_progress(f"bet-retrain{rank}", train_data, valid_data)
            if done is not None:  # retrained by a killed run of this command
                retrained[rank] = done["record"]
            else:
                todo.append((rank, population.actions[index]))
        # each retraining from its own seed (recbole_bet.fanout): here one by one, or as ray tasks, the same result
        if self.config["ray"] and todo:
            finished = ray_retrainings(self.config, self.run_name, start, todo, self.resume, self.budget_key, patience)
        else:
            finished = ((rank, retrain(self, start, action, rank, train_data, valid_data, self.progress(rank), patience))
                        for rank, action in todo)
        for rank, outcome in finished:
            retrained[rank] = self.retrained_record(population, top[rank], rank, outcome, train_data, valid_data)
        retrained = [retrained[rank] for rank in range(len(top))]
        winner = max(retrained, key=lambda r: r["quality"])  # first of equals
        return winner["index"], winner["checkpoint"], winner["valid"], retrained

    def retrained_record(self, population: Population, index: int, rank: int, outcome, train_data, valid_data,
                         record: dict | None = None) -> dict:
        """The record of a finished retraining (``outcome``: its validation result, checkpoint and curve), kept for a
        rerun of a killed run, and logged."""
        valid, checkpoint, curve = outcome
        record = dict(record or {}, index=int(index), checkpoint=checkpoint, valid=valid, quality=quality(valid), curve=curve)
        self.save_progress(f"bet-retrain{rank}", {"record": record}, train_data, valid_data)
        getLogger().info(
            set_color(f"retrained action {index}", "green") + f" (search fitness {population.fitness[index]:.4f}):"
            f" validation quality {quality(valid):.4f}"
        )
        return record

    def ranked_retrain(self, population: Population, top: list, start: dict, train_data, valid_data) -> tuple[int, str, dict, list]:
        """``bet_retrain_rank_epochs`` E > 0: each of the ``top`` actions trained E epochs from ``start``
        (:func:`~recbole_bet.methods.bet.retraining.rank_retrain`); the best of them on validation goes on from
        there to convergence. Returns what :meth:`selective_retrain` returns; a ranked action's record holds its
        ``rank_quality``, the winner's also its full retraining's."""
        epochs, records, states = self.settings.bet_retrain_rank_epochs, [], []
        for rank, index in enumerate(top):
            done = self.load_progress(f"bet-rank{rank}", train_data, valid_data)
            if done is None:
                valid, state = rank_retrain(self, start, population.actions[index], rank, epochs, train_data, valid_data)
                done = {"record": {"index": int(index), "rank_epochs": epochs, "rank_valid": valid, "rank_quality": quality(valid)},
                        "state": state}
                self.save_progress(f"bet-rank{rank}", done, train_data, valid_data)
            records.append(done["record"])
            states.append(done["state"])
            getLogger().info(set_color(f"ranked action {index}", "green") + f" (search fitness {population.fitness[index]:.4f}):"
                             f" validation quality {done['record']['rank_quality']:.4f} after {epochs} epochs")
        best = max(range(len(top)), key=lambda rank: records[rank]["rank_quality"])  # first of equals
        done = self.load_progress(f"bet-retrain{best}", train_data, valid_data)
        if done is not None:
            records[best] = done["record"]
        else:
            outcome = retrain(self, states[best], population.actions[top[best]], best, train_data, valid_data,
                              self.progress(best), self.settings.bet_retrain_stopping_step)
            records[best] = self.retrained_record(population, top[best], best, outcome, train_data, valid_data, records[best])
        winner = records[best]
        return winner["index"], winner["checkpoint"], winner["valid"], records

    # -- beyond the paper: the best measured actions measured again (bet_remeasure_top) ---------------------

    def remeasure(self, population: Population, q_full: float, train_data, valid_data) -> None:
        """Fine-tune and measure the ``bet_remeasure_top`` best measured actions ``bet_remeasure_repeats`` more times
        each: their fitness becomes the mean of their measures (:attr:`Population.fitness`), and the retraining
        takes its top among them (:meth:`Population.top`). Nothing with ``bet_remeasure_top: 0`` (the paper)."""
        s = self.settings
        if not s.bet_remeasure_top:
            return
        saved = self.load_progress("bet-remeasure", train_data, valid_data)
        if saved is not None:  # re-measured by a killed run of this command
            population.records[:] = saved["records"]
            return
        for index in population.top(s.bet_remeasure_top):
            record = population.records[index]
            record["remeasured"] = []
            for _ in range(s.bet_remeasure_repeats):
                self.finetune(population.actions[index], train_data)
                record["remeasured"].append(self.measure(valid_data) / q_full)
            getLogger().info(set_color(f"re-measured action {index}", "green") + f": {record['measured']:.4f} then "
                             + ", ".join(f"{f:.4f}" for f in record["remeasured"]))
        population.save(f"{self.run_name}-population.npz")
        self.save_progress("bet-remeasure", {"records": population.records}, train_data, valid_data)


def rank_correlation(population: Population, retrained: list) -> dict | None:
    """Spearman's rho between the search's fitness of the retrained actions and their retrained validation quality
    (the full retraining's, or with ``bet_retrain_rank_epochs`` the ranking one's); None for fewer than 3 actions."""
    if len(retrained) < 3:
        return None
    key = "rank_quality" if all("rank_quality" in r for r in retrained) else "quality"
    fitness = [float(population.fitness[r["index"]]) for r in retrained]
    measured = [r[key] for r in retrained]
    rho = stats.spearmanr(fitness, measured).statistic if np.ptp(fitness) > 0 and np.ptp(measured) > 0 else float("nan")
    return {"spearman": None if np.isnan(rho) else float(rho), "actions": len(retrained), "quality": key,
            "fitness": fitness, "retrained": measured}


def bet_search(trainer: BetTrainer, train_data, valid_data) -> SearchResult:
    """Algorithm 1: embedding size search with BET. Uses the training and validation splits only."""
    logger, settings = getLogger(), trainer.settings
    seconds, started = {}, time.time()

    q_full = trainer.pretrain(train_data, valid_data)  # line 2
    pretrain_curve = trainer.curve
    seconds["pretrain"] = time.time() - started
    logger.info(set_color("pretrained full table", "green") + f": validation quality {q_full:.4f}")

    population = Population()
    first, warm_start = 0, None
    saved = trainer.load_progress("bet-search", train_data, valid_data)
    if saved is not None:  # a killed run of this command finished iterations 0 .. t
        population, first, warm_start = saved["population"], saved["t"] + 1, saved.get("warm_start")
        trainer.sampler.counts = saved.get("sampler", trainer.sampler.counts)
        logger.info(set_color("BET search", "green") + f": continuing after iteration {saved['t']} of a killed run")
    else:
        warm_start = trainer.warm_start_predictor()
    population_file = f"{trainer.run_name}-population.npz"
    iterations = tqdm(range(first, settings.bet_iterations), desc="BET search", ncols=100, disable=not trainer.show_progress)
    search_started = time.time()
    for t in iterations:  # line 3
        tick = time.time()
        candidates = trainer.sample_candidates(t, population)  # lines 4-5
        chosen, predicted = trainer.select(t, candidates, population)  # lines 6-12
        action = candidates.action(chosen)
        trainer.finetune(action, train_data)  # line 13
        fitness = trainer.measure(valid_data) / q_full  # line 14, Eq. 12
        record = {
            "t": t,
            "strategy": strategy_for(t, settings.bet_selection),
            "predicted": float(predicted[chosen]),
            "measured": fitness,
            "distributions": list(candidates.distributions[chosen]),
            "user_share": float(candidates.user_share[chosen]),
            **({"value_dtype": action.value_dtype} if action.value_dtype is not None else {}),
        }
        population.add(action, record)  # line 15
        record["predictor_loss"] = trainer.update_predictor(population)  # lines 16-20
        record["seconds"] = round(time.time() - tick, 3)
        population.save(population_file)
        trainer.save_progress("bet-search", {"t": t, "population": population, "warm_start": warm_start,
                                             "sampler": trainer.sampler.counts}, train_data, valid_data)
        best = float(population.fitness.max())
        iterations.set_postfix(best=f"{best:.4f}")
        logger.info(
            set_color(f"BET iteration {t}", "green") + f" [strategy {record['strategy']}, predicted {record['predicted']:.4f}, "
            f"measured {fitness:.4f}, best {best:.4f}, predictor loss {record['predictor_loss']:.5f}, {record['seconds']:.1f}s]"
        )
    trainer.remeasure(population, q_full, train_data, valid_data)  # beyond the paper: bet_remeasure_top
    seconds["search"] = time.time() - search_started
    trainer.share_measured(population)

    retrain_started = time.time()
    index, checkpoint, valid, retrained = trainer.selective_retrain(population, train_data, valid_data)  # line 22
    seconds["retrain"] = time.time() - retrain_started
    return SearchResult(
        action=population.actions[index],
        checkpoint=checkpoint,
        valid=valid,
        full_quality=q_full,
        pretrain_curve=pretrain_curve,
        records=population.records,
        retrained=retrained,
        seconds={k: round(v, 2) for k, v in seconds.items()},
        warm_start=warm_start,
        sampler=copy.deepcopy(trainer.sampler.counts),
        rank_correlation=rank_correlation(population, retrained),
    )
