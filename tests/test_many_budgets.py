"""Several budgets in one run: one data split, a fresh backbone per budget, the budget-free phases once."""

import json

import pytest

from recbole_bet.quick_start import budgets_table, run_recbole_bet
from recbole_bet.trainer import BudgetTrainer

from test_methods_end_to_end import TINY as METHOD_TINY


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
