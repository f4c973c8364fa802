"""bench.bytes_budget's table: rows grouped over seeds, the paired test on the seeds both rows have, the verdict."""

import json

from scipy import stats

from bench.bytes_budget import collect, describe, row, search_trace, verdict
from bench.table import METRICS


def result(method, dtype, n20, seed, searched=False, ptq=False):
    test = {m: n20 for m in METRICS}
    out = {"method": method, "value_dtype": dtype, "budget_unit": "bytes", "seed": seed, "test": test,
           "used_params": 1000, "budget_params": 1000, "budget_bytes": 4000, "used_bytes": 3990, "seconds": 60.0,
           "machine": "m", "ptq": ptq}
    if searched:
        out["bet"] = {"settings": {"bet_dtypes": ["float32", "int8"]}}
    return out


def test_collect_groups_the_seeds_of_one_sparsity_and_leaves_out_other_budgets_and_error_files(tmp_path):
    for name in ["LightGCN-es-int8-0.9-s0.json", "LightGCN-es-int8-0.9-s2.json", "LightGCN-es-int8-0.95-s1.json",
                 "LightGCN-bet-dtypes-0.9-s1.json"]:
        (tmp_path / name).write_text(json.dumps({"name": name}))
    (tmp_path / "LightGCN-es-int4-0.9-s0.error.json").write_text("{}")
    runs = collect(tmp_path, 0.9)
    assert sorted(runs) == ["bet-dtypes", "es-int8"]
    assert sorted(runs["es-int8"]) == [0, 2]
    assert runs["es-int8"][2]["name"] == "LightGCN-es-int8-0.9-s2.json"


def test_the_paired_test_pairs_by_seed_and_the_verdict_names_the_best_float32_table():
    searched = {s: result("bet", "int8", v, s, searched=True) for s, v in [(0, 0.140), (1, 0.150), (2, 0.139)]}
    bet_float = {s: result("bet", "float32", v, s) for s, v in [(2, 0.130), (0, 0.132), (1, 0.138)]}  # seeds out of order
    es_float = {s: result("es", "float32", v, s) for s, v in [(0, 0.120), (1, 0.121)]}
    ptq = {0: result("es", "float32", 0.125, 0, ptq=True)}  # one seed; PTQ: never "the best float32 table"
    rows = {"bet-dtypes": describe(searched), "bet-float32": describe(bet_float), "es-float32": describe(es_float),
            "es-int4-ptq": describe(ptq)}
    best = rows["bet-dtypes"]
    expected = stats.ttest_rel([0.140, 0.150, 0.139], [0.132, 0.138, 0.130]).pvalue
    line = row(rows["bet-float32"], 4000, best)
    assert line[-1] == f"{expected:.3f}"
    assert line[3] == 3 and line[4].startswith("0.1333 ± ")
    assert row(best, 4000, best)[-1] == "best"
    assert row(rows["es-int4-ptq"], 4000, best)[-1] == "-"  # no second common seed
    assert row(best, 4000, best)[1] == "searched → int8"
    text = verdict(rows)
    assert text.startswith("Best: BET (fast) at searched → int8, mean N@20 0.1430 over 3 seed(s)")
    # the best row is the search itself here: its sentence and the search's both name the float32 table
    assert f"best float32 table under the same bytes: BET (fast) at float32, 0.1333 ({0.143 / 0.13333333:.3f}x" in text
    assert "BET searching precision (searched → int8), 0.1430, against the best float32 table: BET (fast) at float32" in text
    assert text.count(f"p = {expected:.3f}") == 2


def test_a_search_that_chose_different_dtypes_over_seeds_says_so():
    runs = {0: result("bet", "int8", 0.14, 0, searched=True), 1: result("bet", "int4", 0.14, 1, searched=True)}
    described = describe(runs)
    assert described["values_label"] == "searched → int4/int8"
    assert described["value_dtype"] == "mixed"


def test_the_best_row_being_float32_gives_no_ratio():
    rows = {"es-float32": describe({0: result("es", "float32", 0.15, 0)}), "es-int8": describe({0: result("es", "int8", 0.12, 0)})}
    assert verdict(rows) == "Best: ES at float32, mean N@20 0.1500 over 1 seed(s)."
    rows["bet-dtypes"] = describe({0: result("bet", "int8", 0.14, 0, searched=True)})  # a search below float32: said
    assert verdict(rows).endswith("BET searching precision (searched → int8), 0.1400, against the best float32 table: "
                                  f"ES at float32, 0.1500 ({0.14 / 0.15:.3f}x, paired t-test over common seeds p = n/a (fewer than 2)).")


def test_a_row_over_fewer_seeds_is_not_the_best_but_is_named_when_above_it():
    """At 95% on gowalla-s BET at int4 ran one seed (0.1429) and BET at int8 three (mean 0.1408): the best is the row
    over the most seeds, and the one-seed row is named with both figures on its seed."""
    int8 = {s: result("bet", "int8", v, s) for s, v in [(0, 0.141), (1, 0.138), (2, 0.143)]}
    rows = {"bet-int8": describe(int8), "bet-int4": describe({0: result("bet", "int4", 0.1429, 0)}),
            "es-int8": describe({1: result("es", "int8", 0.130, 1)})}  # fewer seeds, below the best on its seed: not named
    text = verdict(rows)
    assert text.startswith("Best: BET (fast) at int8, mean N@20 0.1407 over 3 seed(s) (of the rows over 3 seed(s); "
                           "above it on fewer seeds: BET (fast) at int4, 0.1429 against 0.1410 on seed 0)")
    assert "ES at int8" not in text
    assert row(rows["bet-int8"], 4000, rows["bet-int8"])[-1] == "best"


def test_the_search_trace_counts_each_dtypes_actions_and_sets_the_retrained_one_beside_bet_held_at_its_dtype():
    searched = result("bet", "int4", 0.1335, 1, searched=True)
    searched["search"] = [{"value_dtype": d, "measured": m} for d, m in
                          [("int8", 0.90), ("int8", 0.93), ("int4", 0.94), ("float32", 0.70), ("int8", 0.91)]]
    found = {"bet-dtypes": {1: searched},
             "bet-int4": {0: result("bet", "int4", 0.1429, 0), 1: result("bet", "int4", 0.1425, 1)},
             "bet-int8": {1: result("bet", "int8", 0.1439, 1)}, "es-int8": {1: result("es", "int8", 0.13, 1)}}
    text = search_trace(found)
    assert "| 1 | float32 1 (0.700), int8 3 (0.930), int4 1 (0.940) | int4 | 0.1335 | 0.1425 |" in text
    assert search_trace({"es-int8": found["es-int8"]}) == ""  # no search, no trace
    del found["bet-int4"]
    assert "| int4 | 0.1335 | - |" in search_trace(found)  # not held at int4 on that seed: no figure, not int8's
