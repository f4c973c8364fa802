"""Several budgets in one run: one data split, a fresh backbone per budget, the budget-free phases once."""

import json

import pytest

from recbole_bet.quick_start import budgets_table, run_recbole_bet
from recbole_bet.trainer import BudgetTrainer

from test_methods_end_to_end import TINY as METHOD_TINY

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out


def test_each_budget_gets_its_result_file_and_the_first_equals_a_run_alone(fast_config, tmp_path):
    keys = dict(fast_config, epochs=1, method="es", result_file=str(tmp_path / "out" / "r.json"))
    results = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, sparsity=[0.8, 0.9, 0.95]))
    assert [r["sparsity"] for r in results] == [0.8, 0.9, 0.95]
    assert [r["budget_params"] for r in results] == [67200, 33600, 16800] == [r["used_params"] for r in results]
    combined = json.loads((tmp_path / "out" / "r.json").read_text())
    assert combined == json.loads(json.dumps(results))
    for r in results:
        assert json.loads((tmp_path / "out" / f"r-sparsity{r['sparsity']:g}.json").read_text()) == combined[results.index(r)]
    alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, sparsity=0.9, result_file=None))
    assert alone["test"] == results[1]["test"] and alone["sizes"] == results[1]["sizes"]  # ES: nothing shared, same run
    table = budgets_table(results)
    assert "| 0.9 | 33,600 / 33,600 |" in table and table.count("\n| 0.") == 3


@pytest.mark.parametrize("method, phase, keys", [
    ("bet", "pretrain", {"bet_iterations": 2, "bet_candidates": 4, "bet_finetune_epochs": 1, "bet_retrain_top": 1}),
    ("magprune", "full", METHOD_TINY["magprune"]),
    ("optembed", "supernet", METHOD_TINY["optembed"]),
    ("ciess", "pretrain", {"ciess_episodes": 1, "ciess_steps": 2, "ciess_step_epochs": 1, "ciess_batch": 256}),
])
def test_a_budget_free_phase_runs_once_and_each_budget_is_its_run_alone(method, phase, keys, fast_config, monkeypatch):
    """The second budget reuses the first one's phase, with every random stream put back where that phase left
    it: its result is, bit for bit, the result of a run of that budget alone."""
    phases, real = [], BudgetTrainer.fit_phase

    def count(self, name, *args, **kwargs):
        phases.append(name)
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(BudgetTrainer, "fit_phase", count)
    results = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, epochs=1, method=method, sparsity=[0.9, 0.95], **keys))
    assert phases.count(phase) == 1 and len(results) == 2
    assert all(r["used_params"] <= r["budget_params"] for r in results)
    if method == "bet":  # one pretrained table: one q_full, one curve
        assert results[0]["bet"]["full_quality"] == results[1]["bet"]["full_quality"]
        assert results[0]["bet"]["pretrain_curve"] == results[1]["bet"]["pretrain_curve"]
    if method == "optembed":
        assert results[0]["optembed"]["kept_rows"] == results[1]["optembed"]["kept_rows"]
    phases.clear()
    alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, epochs=1, method=method, sparsity=0.95, **keys))
    assert phases.count(phase) == 1  # computed again when alone
    assert alone["test"] == results[1]["test"] and alone["sizes"] == results[1]["sizes"] and alone["valid"] == results[1]["valid"]


SEARCH = {"method": "bet", "bet_iterations": 3, "bet_candidates": 4, "bet_finetune_epochs": 1, "bet_retrain_top": 1}


def test_share_population_warm_starts_later_budgets_predictor_on_earlier_measured_actions(fast_config, monkeypatch):
    """bet_share_population: the first budget is untouched; the second budget's predictor is trained on the first
    budget's 3 measured actions (N=2 steps each) before its first iteration, so it predicts otherwise."""
    from recbole_bet.methods.bet.search import BetTrainer

    keys = dict(fast_config, epochs=1, sparsity=[0.8, 0.9], **SEARCH)
    seen, real = [], BetTrainer.fit_predictor
    monkeypatch.setattr(BetTrainer, "fit_predictor", lambda self, actions, fitness, steps: seen.append(
        (self.budget_key, len(actions), list(fitness), steps)) or real(self, actions, fitness, steps))
    shared = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, bet_share_population=True))
    first_measured = [r["measured"] for r in shared[0]["search"]]
    assert seen[3] == ("sparsity0.9", 3, first_measured, 6)  # after budget 0.8's three iterations, before 0.9's
    assert shared[1]["bet"]["warm_start"]["actions"] == 3 and shared[0]["bet"]["warm_start"] is None
    alone = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, bet_share_population=False))
    assert alone[1]["bet"]["warm_start"] is None
    assert alone[0]["search"] == [dict(r, seconds=a["seconds"]) for r, a in zip(shared[0]["search"], alone[0]["search"])]
    predicted = [r["predicted"] for r in shared[1]["search"]], [r["predicted"] for r in alone[1]["search"]]
    assert predicted[0][0] != predicted[1][0]


def test_retrain_stopping_step_is_the_retrainings_patience(fast_config, monkeypatch):
    patience, real = {}, BudgetTrainer.fit_phase
    monkeypatch.setattr(BudgetTrainer, "fit_phase", lambda self, name, train, valid, stopping_step=None, *a, **kw: patience.setdefault(
        name, stopping_step) and False or real(self, name, train, valid, stopping_step, *a, **kw))
    run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, epochs=1, bet_retrain_stopping_step=3,
                                                                bet_pretrain_stopping_step=7, **SEARCH))
    assert patience == {"pretrain": 7, "retrain0": 3}


def test_start_pretrained_gives_every_method_the_trained_full_table_once_per_run(fast_config, monkeypatch):
    """start=pretrained (the ablation's common start): the full table is trained once for the run's budgets, and
    each budget's method receives the backbone holding exactly those weights."""
    import torch

    from recbole_bet import quick_start
    from recbole_bet.errors import ConfigError
    from recbole_bet.methods.es import EqualSizes

    pretrained, received, real_start, real_run = [], [], quick_start._pretrained_start, EqualSizes.run
    monkeypatch.setattr(quick_start, "_pretrained_start", lambda *a: pretrained.append(real_start(*a)) or pretrained[-1])
    monkeypatch.setattr(EqualSizes, "run", lambda self, context: received.append(
        {k: v.clone() for k, v in context.model.state_dict().items()}) or real_run(self, context))
    results = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, method="es", epochs=2, sparsity=[0.8, 0.9],
                                                                      start="pretrained"))
    assert len(pretrained) == 1 and len(received) == 2 and len(results) == 2
    for state in received:
        assert all(torch.equal(state[k], pretrained[0][k]) for k in pretrained[0])
    initial = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, method="es", epochs=2, sparsity=0.9))
    assert initial["test"] != results[1]["test"]
    with pytest.raises(ConfigError, match="start='pretrained'.*method=recbole has none"):
        run_recbole_bet("BPR", "ml-100k", config_dict=dict(fast_config, method="recbole", start="pretrained"))
