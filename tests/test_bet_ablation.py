"""bench.bet_ablation (issue 33's ablation table): the layout columns, the strategies' means, the keys a run changed
from the fast profile, and the table built from the committed result files."""

from pathlib import Path

import pytest

from bench import bet_ablation

ROOT = Path(__file__).resolve().parents[1]
ABLATION = ROOT / "bench" / "results" / "issue33-ablation"


def test_layout_gives_the_users_share_of_the_used_parameters_and_each_fields_spread():
    result = {"sizes": {"users": {"min": 10, "max": 50, "mean": 40.0}, "items": {"min": 1, "max": 3, "mean": 2.0}},
              "used_params": 5000, "n_users": 100, "n_items": 500}
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
    # the command the table records writes this table again, under its own name (not the default's)
    command = next(line for line in text.splitlines() if line.startswith("Command: `"))[len("Command: `"):-1].split()
    assert command[:3] == ["python", "-m", "bench.bet_ablation"] and "--name=t" in command
    bet_ablation.main(command[3:] + [f"--out={tmp_path / 'again'}"])
    assert (tmp_path / "again" / "t.md").read_text().split("Command:")[1] == text.split("Command:")[1]


def _run(seed, valid, test, sparsity=0.9, method="bet", **keys):
    """A result file's fields that --seeds reads: BET's settings are fast's with ``keys`` changed."""
    fast = bet_ablation.fast_settings("LightGCN")
    result = {"model": "LightGCN", "dataset": "gowalla-s", "method": method, "sparsity": sparsity, "seed": seed,
              "valid": {"ndcg@20": valid}, "test": {"ndcg@20": test}, "used_params": 1000, "n_users": 10, "n_items": 100,
              "sizes": {"users": {"min": 90, "max": 90, "mean": 90.0}, "items": {"min": 1, "max": 1, "mean": 1.0}}}
    if method == "bet":
        result["bet"] = {"settings": dict(fast, **keys)}
    return result


def test_variant_name_drops_the_sparsity_and_seed_and_names_a_reference_by_its_folder():
    result = _run(2, 0.1, 0.1, sparsity=0.95)
    assert bet_ablation.variant_name("x/D1-prefix-0.95-s2.json", result, False) == "D1-prefix"
    assert bet_ablation.variant_name("x/A8-prefix.json", result, False) == "A8-prefix"  # no suffix: the stem
    assert bet_ablation.variant_name("r/bet-plus-fast/gowalla-s/LightGCN-bet-0.95-s2.json", result, True) == "bet-plus-fast/bet"


def test_seeds_groups_runs_by_the_keys_they_changed_not_by_their_names_and_keeps_on_validation():
    prefix = {"bet_pretrain_prefix": "random"}
    entries = [
        ("r/bet-plus-fast/g/LightGCN-bet-0.9-s0.json", _run(0, 0.120, 0.130, bet_share_narrow=0.5), True),
        ("r/bet-plus-fast/g/LightGCN-bet-0.9-s1.json", _run(1, 0.124, 0.131, bet_share_narrow=0.5), True),
        ("r/sweep/g/LightGCN-optembed-0.9-s0.json", _run(0, 0.200, 0.200, method="optembed"), True),
        ("r/sweep/g/LightGCN-optembed-0.9-s1.json", _run(1, 0.200, 0.200, method="optembed"), True),
        ("a/A8-prefix.json", _run(0, 0.122, 0.100, **prefix), False),  # the same keys as D1 at seed 0: one variant
        ("a/D1-prefix-0.9-s1.json", _run(1, 0.128, 0.100, **prefix), False),
        ("a/D2-x-0.9-s0.json", _run(0, 0.110, 0.300, bet_overflow="redraw"), False),  # best test, worst validation
        ("a/D2-x-0.95-s0.json", _run(0, 0.150, 0.300, sparsity=0.95, bet_overflow="redraw"), False),
    ]
    groups = bet_ablation.variants(entries)
    assert list(groups) == [(0.9, "bet-plus-fast/bet"), (0.9, "sweep/optembed"), (0.9, "A8-prefix / D1-prefix"),
                            (0.9, "D2-x"), (0.95, "D2-x")]
    merged = groups[(0.9, "A8-prefix / D1-prefix")]
    assert merged["seeds"] == [0, 1] and list(merged["values"]["valid"]) == [0.122, 0.128]
    rows = {row[1]: row for row in bet_ablation.seed_rows(groups)}
    # OptEmbed's higher validation is there to compare with: the rule keeps the best BET variant on validation
    assert "**A8-prefix / D1-prefix**" in rows and "sweep/optembed" in rows and "D2-x" in rows
    assert rows["**A8-prefix / D1-prefix**"][3:7] == ["0.1250", "0.1000", "0.1220 / 0.1280", "0.205"]  # differences by seed 0.002, 0.004: t = 3, 1 df
    assert rows["bet-plus-fast/bet"][6] == "base" and rows["D2-x"][6] == "-"  # one seed: no paired p
    assert rows["**D2-x**"][0] == 0.95  # alone at its sparsity, and kept there


def test_seeds_refuses_two_runs_of_one_variant_at_one_seed():
    entries = [("a/A8-prefix.json", _run(0, 0.1, 0.1, bet_pretrain_prefix="random"), False),
               ("a/D1-prefix-0.9-s0.json", _run(0, 0.2, 0.2, bet_pretrain_prefix="random"), False)]
    with pytest.raises(SystemExit, match="D1-prefix-0.9-s0.json: a second run of A8-prefix / D1-prefix at sparsity 0.9, seed 0"):
        bet_ablation.variants(entries)
