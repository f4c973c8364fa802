"""bench.validation_audit: every choice is redone on validation, never on test (fake result files, nothing trained)."""

import json

import pytest

from bench import validation_audit as audit
from recbole_bet.quality import QUALITY_METRICS


def metrics(ndcg20, rest=0.1):
    return {k: (ndcg20 if k == "ndcg@20" else rest) for k in QUALITY_METRICS}


def result(valid, test, settings=None, retrained=None, method="bet", sparsity=0.9, seed=0, model="LightGCN", **top):
    out = {"dataset": "toy", "model": model, "method": method, "sparsity": sparsity, "seed": seed,
           "valid": metrics(valid), "test": metrics(test), "seconds": 1.0, "protocol": {"stopping_step": 20},
           "curve": [{"epoch": 0}] * 3, **top}
    if settings is not None:
        out["bet"] = {"settings": settings, "retrained": retrained or [{"index": 0, "valid": metrics(valid), "curve": [{}] * 4}]}
    return out


def put(root, name, content):
    path = root / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content))


FAST1 = {"bet_profile": "fast", "bet_retrain_top": 1, "bet_retrain_stopping_step": 5, "bet_share_population": False}
FAST2 = {"bet_profile": "fast", "bet_retrain_top": 2}


def first_choice(tmp_path, valid_taken, test_taken, valid_other, test_other):
    """Files for CHOICES[0] (one retraining vs the top 2) at two budgets; the audit's line for it."""
    for sparsity in (0.8, 0.9):
        put(tmp_path, f"whole_run/one-{sparsity}.json", result(valid_taken, test_taken, FAST1, sparsity=sparsity))
        put(tmp_path, f"sweep/toy/two-{sparsity}.json", result(valid_other, test_other, FAST2, sparsity=sparsity))
    put(tmp_path, "whole_run/all-budgets.json", [{"list": "of budgets, skipped"}])
    audit.main(["--results", str(tmp_path), "--out", str(tmp_path / "out")])
    text = (tmp_path / "out" / "validation-audit.md").read_text()
    return next(line for line in text.splitlines() if line.startswith("| 1 |"))


def test_a_choice_is_judged_on_validation_not_test(tmp_path):
    # validation favours the top 2, test favours one retraining: the validation-only choice is the top 2
    line = first_choice(tmp_path, valid_taken=0.10, test_taken=0.30, valid_other=0.12, test_other=0.20)
    assert "| 2 |" in line  # two pairs
    assert "disagrees" in line and "0.1000 / 0.1200 (0 of 2)" in line and "0.3000 / 0.2000 (2 of 2)" in line


def test_validation_agreeing_with_the_choice_says_so(tmp_path):
    line = first_choice(tmp_path, valid_taken=0.12, test_taken=0.20, valid_other=0.10, test_other=0.30)
    assert "agrees" in line and "disagrees" not in line and "+0.02000" in line


def test_verdict_picks_by_validation_mean():
    choice = audit.Choice("x", "y", audit.Selector("a", {"flag": True}), audit.Selector("b", {"flag": (False, None)}))
    runs = {f"a/{s}.json": result(v, 0.1 + s, method="m", seed=s, flag=True) for s, v in enumerate((0.25, 0.125, 0.075))}
    runs |= {f"b/{s}.json": result(0.15, 0.05, method="m", seed=s) for s in range(3)}  # flag absent matches None
    runs["b/extra.json"] = result(0.9, 0.9, method="m", seed=7)  # no partner: left out
    matched = audit.pairs(runs, choice)
    assert [(a, b) for a, _, b, _ in matched] == [(f"a/{s}.json", f"b/{s}.json") for s in range(3)]
    v = audit.verdict(matched)
    assert v["valid"] == pytest.approx((0.15, 0.15)) and v["valid_pick"] == "taken"  # a tie keeps the option taken
    runs["a/0.json"]["valid"]["ndcg@20"] = 0.24
    v = audit.verdict(audit.pairs(runs, choice))
    assert v["valid_pick"] == "other" and v["test_pick"] == "taken" and v["valid_wins"] == 1 and v["test_wins"] == 3


def test_settings_are_read_from_the_run_its_method_then_its_protocol():
    run = result(0.1, 0.1, {"bet_retrain_top": 2})
    run["protocol"]["neumf_loss"] = "bpr"
    assert audit.setting(run, "method") == "bet" and audit.setting(run, "bet_retrain_top") == 2
    assert audit.setting(run, "neumf_loss") == "bpr" and audit.setting(run, "bet_profile") is None
    assert audit.matches("x/r.json", run, audit.Selector("x", {"bet_profile": None, "neumf_loss": ("bce", "bpr")}))
    assert not audit.matches("xy/r.json", run, audit.Selector("x", {}))
    assert not audit.matches("x/r.json", run, audit.Selector("x", {"bet_retrain_top": 1}))
    assert not audit.matches("x/r.json", run, audit.Selector("x", {"bet_profile": "fast"}))  # absent is not "fast"


def test_the_retraining_kept_is_the_best_validation_quality():
    # rank 1 has the better quality (mean of six) but the lower N@20: BET keeps rank 1, as the audit must say
    ranks = [{"index": 4, "valid": metrics(0.30, rest=0.10), "curve": [{}] * 5},
             {"index": 2, "valid": metrics(0.25, rest=0.20), "curve": [{}] * 7}]
    runs = {"sweep/toy/r.json": result(0.25, 0.4, FAST2, retrained=ranks),
            "sweep/toy/one.json": result(0.3, 0.4, FAST1)}  # one retraining: not in the table
    (row,) = audit.retraining_rows(runs)
    assert (row["pick"], row["pick_metric"]) == (1, 0)
    assert row["gain"] == pytest.approx(-0.05) and row["epochs"] == (5, 12)
    ranks[1]["quality"] = 0.0  # the recorded quality is the one BET used
    assert audit.retraining_rows(runs)[0]["pick"] == 0
    (summary,) = audit.retraining_summary(audit.retraining_rows(runs))
    assert summary[:5] == ["sweep/toy LightGCN", 2, 1, 1, 0] and summary[-1] == "2.40x"
