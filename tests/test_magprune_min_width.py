"""Magnitude pruning with a per-row minimum (Tran et al.'s benchmark): every row keeps its largest ``w`` weights, the
budget is still used exactly, ``w`` is chosen on validation from the grid ``magprune_min_width``."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import recbole_bet.methods.magprune as magprune
from recbole_bet.budget import Budget, keep_largest
from recbole_bet.errors import BudgetError, ConfigError
from recbole_bet.methods.magprune import magnitude_mask, min_width_fits
from recbole_bet.quick_start import run_recbole_bet


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 40), st.integers(1, 40), st.sampled_from([4, 8, 16]), st.sampled_from([0.5, 0.8, 0.9]),
       st.integers(0, 16), st.sampled_from(["global", "field"]), st.integers(0, 2**32 - 1))
def test_every_row_keeps_its_largest_min_width_and_the_budget_is_exact(n_users, n_items, d_max, sparsity, width, scope, seed):
    try:
        budget = Budget.from_sparsity(sparsity, d_max, n_users, n_items)
    except BudgetError:
        return
    rng = np.random.default_rng(seed)
    weights = rng.normal(size=(n_users, d_max)), rng.normal(size=(n_items, d_max))
    if not min_width_fits(budget, scope, width):
        with pytest.raises(BudgetError, match=f"magprune_min_width={width} keeps more than the budget"):
            magnitude_mask(*weights, budget, scope, width)
        return
    mask = magnitude_mask(*weights, budget, scope, width)
    assert mask.check(budget).params == budget.attainable
    for w, kept in zip(weights, (mask.user_mask, mask.item_mask)):
        assert kept.sum(1).min() >= min(width, d_max)
        top = np.argsort(-np.abs(w), axis=1, kind="stable")[:, :width]  # each row's largest width weights are kept
        assert np.take_along_axis(kept, top, axis=1).all()
    if scope == "global":  # beyond the minimums, the largest of the rest
        forced = np.zeros_like(np.concatenate([mask.user_mask, mask.item_mask]))
        both = np.abs(np.concatenate(weights))
        np.put_along_axis(forced, np.argsort(-both, axis=1, kind="stable")[:, :width], True, axis=1)
        kept = np.concatenate([mask.user_mask, mask.item_mask])
        rest_kept, rest_dropped = both[kept & ~forced], both[~kept]
        if rest_kept.size and rest_dropped.size:
            assert rest_kept.min() >= rest_dropped.max()


def test_no_minimum_is_plain_magnitude_pruning():
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(30, 16)), rng.normal(size=(50, 16))
    budget = Budget.from_sparsity(0.9, 16, 30, 50)
    mask = magnitude_mask(users, items, budget, "global", 0)
    expected = keep_largest([np.abs(users), np.abs(items)], budget.attainable)
    assert np.array_equal(mask.user_mask, expected[0]) and np.array_equal(mask.item_mask, expected[1])
    assert mask.user_mask.sum(1).min() == 0  # which the minimum is there to prevent
    assert magnitude_mask(users, items, budget, "global", 1).user_mask.sum(1).min() == 1


@pytest.mark.slow
def test_the_min_width_best_on_validation_is_fine_tuned(fast_config, monkeypatch):
    scripted = iter([0.1, 0.3, 0.2])  # the pruned table's validation for w = 0, 4, 8: 4 is best, neither first nor last
    real = magprune.calculate_valid_score
    monkeypatch.setattr(magprune, "calculate_valid_score", lambda result, metric: real(result, metric) * 0 + next(scripted))
    result = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(
        fast_config, epochs=2, sparsity=0.9, method="magprune", magprune_min_width=[0, 4, 8, 13, 40]))
    record = result["magprune"]
    tried = {t["min_width"]: t for t in record["min_width_tried"]}
    assert tried[13]["skipped"] and tried[40]["skipped"]  # 13 x 2625 rows > 33,600: not tried
    assert {w: t["valid_score"] for w, t in tried.items() if not t.get("skipped")} == {0: 0.1, 4: 0.3, 8: 0.2}
    assert record["min_width"] == 4 and result["used_params"] == result["budget_params"]
    assert result["sizes"]["users"]["min"] >= 4 and result["sizes"]["items"]["min"] >= 4
    single = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.9, method="magprune"))
    assert single["magprune"]["min_width"] == 0 and single["magprune"]["min_width_tried"] == [{"min_width": 0, "valid_score": None}]


@pytest.mark.parametrize("value, message", [
    ([-1], "magprune_min_width=[-1]; allowed: a non-empty list of integers >= 0"),
    ([2, 2], "magprune_min_width=[2, 2] names a value twice"),
    ([], "magprune_min_width=[]; allowed: a non-empty list of integers >= 0"),
    ([1.5], "magprune_min_width=[1.5]; allowed"),
])
def test_a_bad_grid_is_a_one_line_error(value, message, fast_config):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("]", r"\]")) as error:
        run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, method="magprune", magprune_min_width=value))
    assert "\n" not in str(error.value)


def test_a_grid_that_nothing_fits_is_a_budget_error(fast_config):
    with pytest.raises(BudgetError, match=r"magprune_min_width=\[20, 30\]: no minimum fits the budget of 33600"):
        run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.9, method="magprune",
                                                                 magprune_min_width=[20, 30]))
