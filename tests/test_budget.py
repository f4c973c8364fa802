"""Budget arithmetic, the Action type, the repair step, and ES/MR exactness."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from recbole_bet.errors import BudgetError
from recbole_bet.methods.es import equal_sizes
from recbole_bet.methods.mr import mixed_random
from recbole_bet.budget import (
    Action,
    Budget,
    budget_params,
    fit_to_total,
    frequency_rank,
    sizes_for_tables,
    split_total,
)


@pytest.mark.parametrize(
    "sparsity, d_max, n_rows, expected",
    [
        (0.9, 128, 2625, 33600),  # ml-100k: exactly a tenth
        (0.9, 128, 29858 + 40981, 906739),  # gowalla: floor(0.1 * 128 * 70839) = floor(906739.2)
        (0.8, 128, 10, 256),
        (0.95, 128, 10, 64),
        (0.99, 128, 100, 128),
        (0.3, 10, 7, 49),  # (1 - 0.3) * 10 * 7 = 48.99999... in binary floating point
    ],
)
def test_budget_is_floor_of_kept_fraction(sparsity, d_max, n_rows, expected):
    assert budget_params(sparsity, d_max, n_rows) == expected


@pytest.mark.parametrize("bad", [0, 1, -0.1, 1.5, "abc", None])
def test_sparsity_outside_open_interval_is_an_error(bad):
    with pytest.raises(BudgetError, match="sparsity"):
        budget_params(bad, 128, 10)


def test_budget_too_small_for_one_dimension_per_row_names_the_limit():
    with pytest.raises(BudgetError, match=r"every row needs at least 1.*sparsity <= 0.992188"):
        Budget.from_sparsity(0.995, 128, 943, 1682)
    assert Budget.from_sparsity(0.99, 128, 943, 1682).params >= 943 + 1682


def test_action_rejects_out_of_range_sizes_and_overshoot():
    with pytest.raises(BudgetError, match=r"\[1, d_max=8\]"):
        Action(np.array([0, 3]), np.array([2]), d_max=8)
    with pytest.raises(BudgetError, match=r"\[1, d_max=8\]"):
        Action(np.array([9, 3]), np.array([2]), d_max=8)
    budget = Budget(0.5, 8, 2, 1, 12)
    with pytest.raises(BudgetError, match="over the budget of 12"):
        Action(np.array([8, 3]), np.array([2]), d_max=8).check(budget)
    assert Action(np.array([8, 2]), np.array([2]), d_max=8).check(budget).params == 12


def test_fit_to_total_scales_down_then_hands_leftovers_in_order():
    sizes = fit_to_total(np.array([0, 3, 200, 5, 5]), total=20, d_max=8, order=np.arange(5))
    assert sizes.tolist() == [2, 3, 7, 4, 4]
    assert fit_to_total(np.array([1, 1, 1]), total=5, d_max=8, order=np.array([2, 0, 1])).tolist() == [2, 1, 2]
    assert fit_to_total(np.array([1, 1, 1]), total=8, d_max=3, order=np.array([2, 0, 1])).tolist() == [3, 2, 3]


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(1, 300),
    d_max=st.integers(1, 256),
    fill=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
    low=st.integers(-50, 300),
)
def test_fit_to_total_is_exact_and_in_range(n, d_max, fill, seed, low):
    rng = np.random.default_rng(seed)
    total = n + int(fill * (n * d_max - n))
    proposed = rng.integers(low, low + 400, size=n)
    order = rng.permutation(n)
    sizes = fit_to_total(proposed, total, d_max, order)
    assert sizes.sum() == total
    assert sizes.min() >= 1 and sizes.max() <= d_max
    # sorted along the order in, sorted along the order out
    ranked = np.sort(np.clip(proposed, 1, d_max))[::-1]
    repaired = fit_to_total(ranked, total, d_max, np.arange(n))
    assert np.all(np.diff(repaired) <= 0)


@given(total=st.integers(0, 5000), share=st.floats(0, 1), n_users=st.integers(1, 40), n_items=st.integers(1, 40))
def test_split_total_keeps_both_fields_feasible(total, share, n_users, n_items):
    d_max = 64
    total = max(total, n_users + n_items)
    users, items = split_total(total, share, n_users, n_items, d_max)
    assert users + items == min(total, (n_users + n_items) * d_max)
    assert n_users <= users <= n_users * d_max and n_items <= items <= n_items * d_max


def test_sizes_for_tables_splits_exactly_within_widths():
    sizes = np.arange(0, 129)
    gmf, mlp = sizes_for_tables(sizes, [64, 64])
    assert np.array_equal(gmf + mlp, sizes)
    assert gmf.max() == 64 and mlp.max() == 64 and np.all(gmf - mlp <= 1) and np.all(gmf >= mlp)
    parts = sizes_for_tables(np.arange(0, 41), [8, 32])
    assert np.array_equal(parts[0] + parts[1], np.arange(0, 41))
    assert parts[0].max() == 8 and parts[1].max() == 32


def skewed(n, skew, rng):
    """Zipf-like frequencies: a few heavy rows and a long tail."""
    return np.floor(1000 * rng.pareto(skew, size=n)).astype(np.int64) + 1


@pytest.mark.parametrize("sparsity", [0.5, 0.8, 0.9, 0.95, 0.99])
@pytest.mark.parametrize("skew", [0.5, 1.5, 5.0])
def test_es_and_mr_use_the_budget_exactly(sparsity, skew):
    rng = np.random.default_rng(0)
    budget = Budget.from_sparsity(sparsity, 128, 943, 1682)
    user_f, item_f = skewed(943, skew, rng), skewed(1682, skew, rng)
    for name, action in (("es", equal_sizes(budget, user_f, item_f)), ("mr", mixed_random(budget, user_f, item_f, rng))):
        action.check(budget)
        assert action.params == budget.params, name
        assert action.sizes.min() >= 1 and action.sizes.max() <= 128


def test_es_gives_the_remainder_to_the_most_frequent_rows():
    budget = Budget(0.9, 8, 3, 2, 13)  # 13 = 2 * 5 + 3
    action = equal_sizes(budget, user_frequency=np.array([5, 1, 9]), item_frequency=np.array([7, 0]))
    assert action.user_sizes.tolist() == [3, 2, 3] and action.item_sizes.tolist() == [3, 2]


def test_mr_is_random_but_seeded():
    budget = Budget.from_sparsity(0.9, 128, 50, 70)
    f = np.ones(50), np.ones(70)
    a = mixed_random(budget, *f, rng=np.random.default_rng(1))
    b = mixed_random(budget, *f, rng=np.random.default_rng(1))
    c = mixed_random(budget, *f, rng=np.random.default_rng(2))
    assert a == b and a != c
    assert a.sizes.std() > 1  # mixed, not equal


def test_full_table_is_d_max_everywhere():
    action = Action.full(Budget.full(16, 3, 4))
    assert action.params == 16 * 7 and set(action.sizes.tolist()) == {16}


def test_frequency_rank_is_stable():
    assert frequency_rank(np.array([3, 5, 3, 9])).tolist() == [3, 1, 0, 2]
