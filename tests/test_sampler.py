"""The budget-exact action sampler (section 3.2) and the selection schedule."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from recbole_bet.budget import Budget
from recbole_bet.budget import fit_sorted_to_total, fit_to_total
from recbole_bet.methods.bet.sampler import DISTRIBUTIONS, ActionSampler, normalise, order_statistics, quantile, standard_exponentials
from recbole_bet.methods.bet.search import strategy_for


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(1, 400),
    n_items=st.integers(1, 400),
    sparsity=st.sampled_from([0.5, 0.8, 0.9, 0.95, 0.99, 0.992]),
    skew=st.floats(0.2, 5.0),
    seed=st.integers(0, 2**32 - 1),
    d_max=st.sampled_from([8, 64, 128]),
)
def test_every_draw_is_in_range_and_uses_the_budget_exactly(n_users, n_items, sparsity, skew, seed, d_max):
    rng = np.random.default_rng(seed)
    try:
        budget = Budget.from_sparsity(sparsity, d_max, n_users, n_items)
    except ValueError:
        return  # too small for one dimension per row: refused before any sampling (tested in test_budget)
    user_f = rng.pareto(skew, n_users)
    item_f = rng.pareto(skew, n_items)
    candidates = ActionSampler(budget, user_f, item_f).sample(12, rng)
    totals = candidates.user_sizes.sum(1, dtype=np.int64) + candidates.item_sizes.sum(1, dtype=np.int64)
    assert np.all(totals == budget.params)  # never over, never under
    for sizes in (candidates.user_sizes, candidates.item_sizes):
        assert sizes.min() >= 1 and sizes.max() <= d_max
    # the n-th largest size goes to the n-th most frequent row
    for sizes, freq in ((candidates.user_sizes, user_f), (candidates.item_sizes, item_f)):
        by_rank = sizes[:, np.argsort(-freq, kind="stable")]
        assert np.all(np.diff(by_rank.astype(int), axis=1) <= 0)


def test_candidates_do_not_depend_on_the_threads():
    """The draws are made in one order on the calling thread; the threads only turn them into sizes."""
    rng = np.random.default_rng(0)
    user_f, item_f = rng.pareto(1.0, 700), rng.pareto(1.0, 1100)
    budget = Budget.from_sparsity(0.9, 64, 700, 1100)
    drawn = [ActionSampler(budget, user_f, item_f, threads=t).sample(23, np.random.default_rng(5)) for t in (1, 2, 3, 64)]
    for other in drawn[1:]:
        assert np.array_equal(drawn[0].user_sizes, other.user_sizes) and np.array_equal(drawn[0].item_sizes, other.item_sizes)
        assert np.array_equal(drawn[0].betas, other.betas) and drawn[0].distributions == other.distributions
    assert len({tuple(row) for row in drawn[0].item_sizes}) > 20  # varied actions, not one repeated
    with pytest.raises(ValueError, match="threads=0: must be at least 1"):
        ActionSampler(budget, user_f, item_f, threads=0)


def sorted_uniforms(m, n, rng):
    return order_statistics(standard_exponentials(m, n, rng))


def draw_values(distribution, beta, n, rng):
    return quantile(distribution, sorted_uniforms(len(beta), n, rng), beta)


def test_extreme_share_is_repaired_not_redrawn():
    """w near 0 would leave users less than one dimension each: the split is clamped instead."""
    budget = Budget.from_sparsity(0.99, 128, 500, 20)
    sampler = ActionSampler(budget, np.arange(500), np.arange(20))
    candidates = sampler.sample(200, np.random.default_rng(0))
    assert candidates.user_share.min() < 0.01
    assert np.all(candidates.user_sizes.sum(1) + candidates.item_sizes.sum(1) == budget.params)


def test_same_generator_state_same_candidates():
    budget = Budget.from_sparsity(0.9, 128, 60, 90)
    sampler = ActionSampler(budget, np.arange(60), np.arange(90))
    a = sampler.sample(5, np.random.default_rng(4))
    b = sampler.sample(5, np.random.default_rng(4))
    assert np.array_equal(a.user_sizes, b.user_sizes) and np.array_equal(a.item_sizes, b.item_sizes)
    assert len({d for pair in sampler.sample(200, np.random.default_rng(1)).distributions for d in pair}) == 4


@pytest.mark.parametrize(
    "name, law",
    [
        ("powerlaw", stats.powerlaw(a=3.0)),
        ("exponential", stats.truncexpon(b=3.0)),
        ("normal", stats.truncnorm(a=0, b=3.0)),
        ("lognormal", stats.lognorm(s=3.0)),
    ],
)
def test_each_distribution_follows_its_scipy_law(name, law):
    values = draw_values(name, np.array([3.0]), 20000, np.random.default_rng(0))[0]
    assert stats.kstest(values, law.cdf).pvalue > 0.001


@pytest.mark.parametrize(
    "name, ppf",
    [
        ("powerlaw", lambda q, b: stats.powerlaw.ppf(q, a=b)),
        ("exponential", lambda q, b: stats.truncexpon.ppf(q, b=b)),
        ("normal", lambda q, b: stats.truncnorm.ppf(q, a=0, b=b)),
        ("lognormal", lambda q, b: stats.lognorm.ppf(q, s=b)),
    ],
)
def test_closed_form_quantiles_equal_scipy(name, ppf):
    q = np.random.default_rng(0).random((3, 500))
    beta = np.array([0.05, 0.4, 4.0])
    assert np.allclose(quantile(name, q, beta), ppf(q, beta[:, None]), rtol=1e-9, atol=1e-12)


def test_sorted_uniforms_are_sorted_and_uniform():
    u = sorted_uniforms(4, 5000, np.random.default_rng(0))
    assert np.all(np.diff(u, axis=1) <= 0) and u.min() > 0 and u.max() < 1
    assert stats.kstest(u[0], "uniform").pvalue > 0.001


@settings(max_examples=100, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(1, 200), d_max=st.integers(1, 64), high=st.integers(-3, 200))
def test_histogram_repair_equals_the_row_by_row_repair(seed, n, d_max, high):
    rng = np.random.default_rng(seed)
    drawn = np.sort(rng.integers(-3, high + 1, size=(4, n)), axis=1)[:, ::-1]
    totals = rng.integers(n, n * d_max + 1, size=4)
    assert np.array_equal(fit_sorted_to_total(drawn, totals, d_max), fit_to_total(drawn, totals, d_max, np.arange(n)))


def test_degenerate_draws_become_uniform_fractions():
    fractions = normalise(np.array([[0.0, 0.0, 0.0], [1.0, np.nan, 3.0]]))
    assert np.allclose(fractions[0], 1 / 3) and np.allclose(fractions[1], 1 / 3)
    assert np.allclose(normalise(np.array([[1.0, 0.0, 3.0]])), [[0.25, 0, 0.75]])
    with pytest.raises(ValueError, match="allowed: powerlaw"):
        draw_values("cauchy", np.array([1.0]), 3, np.random.default_rng(0))
    assert DISTRIBUTIONS == ("powerlaw", "exponential", "normal", "lognormal")


def test_strategy_schedule_is_algorithm_1():
    assert [strategy_for(t) for t in range(11)] == ["I", "I", "I", "II", "III"] * 2 + ["I"]
