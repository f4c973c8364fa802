"""BET's search beyond the paper (issue 33), hook by hook, each against the mutant that would break it: re-measured
actions ranked by their mean fitness, the Spearman correlation of fitness and retrained quality, the share window
narrowed toward the best measured shares, the short ranking retraining before the full one, the random-prefix
pretraining; and the same seed giving the same run with every new key on."""

import pytest
import torch

from recbole_bet.budget import Action
from recbole_bet.embedding import MaskedEmbedding
from recbole_bet.methods.bet import search
from recbole_bet.methods.bet.pretraining import RandomPrefixEmbedding, random_prefixes
from recbole_bet.methods.bet.search import BetTrainer, Population, rank_correlation
from recbole_bet.methods.bet.settings import BetSettings


def population_of(trainer, measured, shares=None):
    population = Population()
    b = trainer.budget
    for t, fitness in enumerate(measured):
        action = Action.uniform(1 + t % 3, b.n_users, b.n_items, b.d_max)
        share = shares[t] if shares is not None else 0.5
        population.add(action, {"t": t, "measured": fitness, "user_share": share})
    return population


def test_remeasured_actions_are_ranked_by_their_mean_and_the_retraining_takes_its_top_among_them(bet, monkeypatch):
    trainer, train, valid = bet(bet_remeasure_top=2, bet_remeasure_repeats=2)
    population = population_of(trainer, [0.90, 0.70, 0.95, 0.93])
    again = iter([0.80, 0.78, 0.96, 0.94])  # the 0.95 action (index 2) measures 0.80, 0.78; the 0.93 one 0.96, 0.94
    monkeypatch.setattr(trainer, "finetune", lambda *a: None)
    monkeypatch.setattr(trainer, "measure", lambda *a: next(again))
    trainer.remeasure(population, 1.0, train, valid)
    assert population.records[2]["remeasured"] == [0.80, 0.78] and population.records[3]["remeasured"] == [0.96, 0.94]
    assert "remeasured" not in population.records[0]
    assert population.fitness[3] == pytest.approx((0.93 + 0.96 + 0.94) / 3) and population.fitness[0] == 0.90
    # the best re-measured first; the 0.90 action, measured once, does not jump the queue
    assert population.top(3) == [3, 2]
    trainer.settings = BetSettings(bet_remeasure_top=0)
    untouched = population_of(trainer, [0.90, 0.70, 0.95])
    trainer.remeasure(untouched, 1.0, train, valid)  # off: nothing measured again
    assert untouched.top(2) == [2, 0] and all("remeasured" not in r for r in untouched.records)


def test_rank_correlation_is_spearmans_rho_over_the_retrained_actions(bet):
    trainer, _, _ = bet()
    population = population_of(trainer, [0.9, 0.8, 0.7, 0.6])
    agree = [{"index": i, "quality": q} for i, q in zip(range(4), [0.30, 0.20, 0.25, 0.10])]
    assert rank_correlation(population, agree)["spearman"] == pytest.approx(0.8)
    reverse = [{"index": i, "quality": q} for i, q in zip(range(3), [0.1, 0.2, 0.3])]
    assert rank_correlation(population, reverse)["spearman"] == pytest.approx(-1.0)
    ranked = [{"index": i, "rank_quality": q, **({"quality": 0.0} if i == 0 else {})} for i, q in zip(range(3), [0.3, 0.2, 0.1])]
    found = rank_correlation(population, ranked)
    assert found["spearman"] == pytest.approx(1.0) and found["quality"] == "rank_quality"
    assert rank_correlation(population, reverse[:2]) is None


def test_the_share_window_narrows_toward_the_best_measured_shares(bet):
    trainer, _, _ = bet(bet_iterations=10, bet_share_narrow=0.5)
    population = population_of(trainer, [0.5, 0.9, 0.8, 0.85, 0.1], shares=[0.1, 0.9, 0.7, 0.8, 0.3])
    assert trainer.share_range(0, population) == (0.0, 1.0)
    assert trainer.share_range(4, Population()) == (0.0, 1.0)  # nothing measured yet
    low, high = trainer.share_range(4, population)  # width 1 - 0.5 * 4 / 10 = 0.8 around mean(0.9, 0.85, 0.8) = 0.8
    assert (low, high) == pytest.approx((0.2, 1.0))  # kept inside [0, 1]
    trainer.settings = BetSettings(bet_iterations=10, bet_share_narrow=1.0)
    assert trainer.share_range(8, population) == pytest.approx((0.7, 0.9))
    trainer.settings = BetSettings(bet_iterations=10)
    assert trainer.share_range(8, population) == (0.0, 1.0)  # the paper: never narrowed
    candidates = BetTrainer.sample_candidates(trainer, 8, population)
    assert candidates.user_share.min() >= 0 and candidates.user_share.max() <= 1


def test_the_ranking_retraining_retrains_only_its_best_and_from_where_it_stopped(bet, monkeypatch):
    trainer, train, valid = bet(bet_retrain_top=3, bet_retrain_rank_epochs=2)
    population = population_of(trainer, [0.9, 0.8, 0.7, 0.95])  # top 3: indices 3, 0, 1
    ranked_quality = {3: 0.10, 0: 0.30, 1: 0.20}
    index_of = {id(a): i for i, a in enumerate(population.actions)}

    def fake_rank(trainer_, start, action, rank, epochs, *loaders):
        assert epochs == 2 and start is trainer.initial_state
        index = index_of[id(action)]
        return {"ndcg@20": ranked_quality[index]}, {"after": index}

    full = []

    def fake_retrain(trainer_, start, action, rank, *args):
        full.append((index_of[id(action)], rank, start))
        return {"ndcg@20": 0.5}, "winner.pth", [{"epoch": 0}]

    monkeypatch.setattr(search, "rank_retrain", fake_rank)
    monkeypatch.setattr(search, "retrain", fake_retrain)
    monkeypatch.setattr(search, "quality", lambda valid: valid["ndcg@20"])
    index, checkpoint, result, records = trainer.selective_retrain(population, train, valid)
    assert full == [(0, 1, {"after": 0})]  # only the best ranked action (index 0, rank 1), from its ranked weights
    assert (index, checkpoint, result) == (0, "winner.pth", {"ndcg@20": 0.5})
    assert [r["rank_quality"] for r in records] == [0.10, 0.30, 0.20] and records[1]["quality"] == 0.5
    assert "checkpoint" not in records[0]


def test_random_prefix_pretraining_cuts_rows_while_training_only_and_leaves_the_tables_trained():
    torch.manual_seed(0)
    table = MaskedEmbedding(50, 8)
    cut = RandomPrefixEmbedding(table)
    assert cut.full_weight is table.full_weight
    cut.draw_widths(torch.Generator().manual_seed(1))
    widths = cut.widths[:, 0]
    cut.train()
    rows = cut(torch.arange(50))
    columns = torch.arange(8)
    assert torch.equal(rows != 0, columns[None, :] < widths[:, None]) and widths.min() >= 1 and widths.max() <= 8
    assert torch.equal(cut.weight, rows) and len(set(widths.tolist())) > 3
    cut.eval()
    assert torch.equal(cut(torch.arange(50)), table.full_weight)  # validation reads every column

    class Tiny(torch.nn.Module):
        budget_tables = ["table"]

        def __init__(self):
            super().__init__()
            self.table = MaskedEmbedding(20, 6)

        def clear_cached_embeddings(self):
            pass

    def train(seed):
        torch.manual_seed(0)
        model = Tiny()
        original = model.table
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        drawn = []
        with random_prefixes(model, optimizer, seed) as streams:
            assert isinstance(model.table, RandomPrefixEmbedding)
            for _ in range(3):
                drawn.append(model.table.widths.clone())
                loss = model.table(torch.arange(20)).sum()
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()  # draws the next step's widths
            state = streams.state_dict()
        assert model.table is original  # the model's own table is back, holding what was trained
        return model.table.full_weight.detach().clone(), drawn, state

    weights, drawn, state = train(5)
    assert not torch.equal(drawn[0], drawn[1])
    again, drawn_again, _ = train(5)
    assert torch.equal(weights, again) and all(torch.equal(a, b) for a, b in zip(drawn, drawn_again))
    torch.manual_seed(0)
    start = Tiny().table.full_weight.detach()
    trained_columns = (weights != start)
    assert not trained_columns.all()  # columns beyond a step's prefix got no gradient in some step
    assert set(state) == {"generator", "widths"}


@pytest.mark.slow
def test_same_seed_same_run_with_every_new_key_on(fast_config):
    from recbole_bet.quick_start import run_recbole_bet

    keys = dict(fast_config, method="bet", epochs=2, sparsity=0.9, bet_iterations=4, bet_candidates=6, bet_finetune_epochs=1,
                bet_retrain_top=2, bet_overflow="redraw", bet_distribution_weights=[1, 1, 1, 1, 1], bet_share_sampling="stratified",
                bet_share_narrow=0.5, bet_remeasure_top=2, bet_pretrain_prefix="random", bet_retrain_rank_epochs=1)
    first, second = (run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=f"{fast_config['checkpoint_dir']}/{i}"))
                     for i in range(2))
    for key in ("test", "valid", "sizes"):
        assert first[key] == second[key], key
    timeless = [[{k: v for k, v in r.items() if k != "seconds"} for r in run["search"]] for run in (first, second)]
    assert timeless[0] == timeless[1]
    assert first["bet"]["sampler"] == second["bet"]["sampler"] and first["bet"]["sampler"]["users"]["draws"] == 24
    assert [r.get("rank_quality") for r in first["bet"]["retrained"]] == [r.get("rank_quality") for r in second["bet"]["retrained"]]
    assert sum("remeasured" in r for r in first["search"]) == 2
    assert first["used_params"] == first["budget_params"]
