"""bench.bet_ablation (issue 33's ablation table): the layout columns, the strategies' means, the keys a run changed
from the fast profile, and the table built from the committed result files."""

from pathlib import Path

import pytest

from bench import bet_ablation

ROOT = Path(__file__).resolve().parents[1]
ABLATION = ROOT / "bench" / "results" / "issue33-ablation"


def test_layout_gives_the_users_share_of_the_used_parameters_and_each_fields_spread():
    result = {"sizes": {"users": {"min": 10, "max": 50, "mean": 40.0}, "items": {"min": 1, "max": 3, "mean": 2.0}},
              "used_params": 5000, "n_users": 100}
    assert bet_ablation.layout(result) == ["0.80", "10-50 (40.0)", "1-3 (2.0)"]


def test_strategies_averages_the_measured_fitness_of_each_strategy():
    records = [{"strategy": "II", "measured": 0.5}, {"strategy": "I", "measured": 0.2}, {"strategy": "I", "measured": 0.4}]
    assert bet_ablation.strategies(records) == "I 0.300 / II 0.500"


def test_changed_names_only_the_keys_a_run_set_otherwise_than_the_fast_profile():
    fast = bet_ablation.fast_settings("LightGCN")
    assert fast["bet_iterations"] == 20 and fast["bet_overflow"] == "repair"  # the fast profile as a run reads it
    settings = dict(fast, bet_profile="plus-fast", bet_overflow="redraw",
                    bet_distribution_weights=list(fast["bet_distribution_weights"]))  # a JSON list equals the tuple
    assert bet_ablation.changed({"bet": {"settings": settings}}, fast) == "bet_overflow=redraw"
    assert bet_ablation.changed({"bet": {"settings": dict(fast)}}, fast) == "none"


@pytest.mark.skipif(not (ABLATION / "A1-redraw.json").is_file(), reason="the ablation's result files are not in this checkout")
def test_the_table_names_references_by_folder_and_lists_each_runs_keys(tmp_path):
    reference = ROOT / "bench" / "results" / "sweep" / "gowalla-s" / "LightGCN-optembed-0.9-s0.json"
    bet_ablation.main([str(ABLATION / "A1-redraw.json"), f"--reference={reference}", f"--out={tmp_path}", "--name=t"])
    text = (tmp_path / "t.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| run")]
    assert rows[0].startswith("| sweep/LightGCN-optembed-0.9-s0 | 0.1274 | 0.1379 | 0.94 | 42-42 (42.0) | 1-1 (1.0) | - |")
    assert rows[1].startswith("| A1-redraw | 0.1143 |") and "/ 2000 |" in rows[1]  # the sampler's redraws of 2,000 draws
    assert "- `A1-redraw`: bet_retrain_stopping_step=20, bet_retrain_from=scratch, bet_overflow=redraw\n" in text
    assert "optembed" not in text.split("beside `--bet_profile=fast`:")[1]  # a reference of another method has no keys
