"""The budget-exact action sampler (section 3.2) and the selection schedule."""

import hashlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from recbole_bet.budget import Budget
from recbole_bet.budget import fit_sorted_to_total, fit_to_total
from recbole_bet.methods.bet.sampler import DISTRIBUTIONS, FAMILY, ActionSampler, normalise, order_statistics, quantile, standard_exponentials
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


# ---------------------------------------------------------------------------
# issue 33: sizes above d_max redrawn (the authors' code), the equal-widths member, stratified shares


def candidate_digest(candidates) -> str:
    digest = hashlib.sha256()
    for array in (candidates.user_sizes, candidates.item_sizes, candidates.betas, candidates.user_share):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(repr(candidates.distributions).encode())
    return digest.hexdigest()


def test_default_keys_give_the_candidates_of_the_sampler_before_issue_33():
    """The digest of 40 candidates drawn by the sampler of commit 748db4f (before issue 33) with the same inputs: the
    default keys (repair, the paper's four members, uniform w) must draw them bit for bit, and so must the weights
    given explicitly with equal at 0."""
    rng = np.random.default_rng(2024)
    user_f, item_f = rng.pareto(1.0, 300), rng.pareto(0.7, 500)
    budget = Budget.from_sparsity(0.9, 128, 300, 500)
    expected = "6599509020630444d0987f5992f3b58370ec3d483b33829f340509b8365deee4"
    assert candidate_digest(ActionSampler(budget, user_f, item_f, threads=2).sample(40, np.random.default_rng(7))) == expected
    weights = dict(dict.fromkeys(DISTRIBUTIONS, 3.0), equal=0.0)
    explicit = ActionSampler(budget, user_f, item_f, probabilities=weights, overflow="repair", share_sampling="uniform")
    assert candidate_digest(explicit.sample(40, np.random.default_rng(7))) == expected


@settings(max_examples=40, deadline=None)
@given(
    n_users=st.integers(1, 300),
    n_items=st.integers(1, 300),
    sparsity=st.sampled_from([0.3, 0.5, 0.8, 0.9, 0.95]),
    seed=st.integers(0, 2**32 - 1),
    d_max=st.sampled_from([4, 16, 128]),
    tries=st.integers(1, 5),
    equal=st.sampled_from([0.0, 1.0]),
    share_sampling=st.sampled_from(["uniform", "stratified"]),
)
def test_redraw_never_exceeds_d_max_or_the_budget(n_users, n_items, sparsity, seed, d_max, tries, equal, share_sampling):
    rng = np.random.default_rng(seed)
    try:
        budget = Budget.from_sparsity(sparsity, d_max, n_users, n_items)
    except ValueError:
        return
    user_f, item_f = rng.pareto(1.0, n_users), rng.pareto(1.0, n_items)
    sampler = ActionSampler(budget, user_f, item_f, overflow="redraw", overflow_tries=tries, share_sampling=share_sampling,
                            probabilities=dict(dict.fromkeys(DISTRIBUTIONS, 1.0), equal=equal))
    candidates = sampler.sample(9, rng)
    totals = candidates.user_sizes.sum(1, dtype=np.int64) + candidates.item_sizes.sum(1, dtype=np.int64)
    assert np.all(totals == budget.params)
    for sizes in (candidates.user_sizes, candidates.item_sizes):
        assert sizes.min() >= 1 and sizes.max() <= d_max
    for counts in sampler.counts.values():  # every draw above d_max was redrawn, or fell back to the repair after the tries
        assert counts["draws"] == 9 and counts["repaired"] == counts["fallbacks"] <= counts["overflowed"]
        assert counts["redraws"] >= min(counts["overflowed"], 1) * 1 and counts["redraws"] <= tries * counts["overflowed"]


def gowalla_like(n_users=2000, n_items=5000, sparsity=0.9):
    rng = np.random.default_rng(3)
    return Budget.from_sparsity(sparsity, 128, n_users, n_items), rng.pareto(1.2, n_users), rng.pareto(1.2, n_items)


def test_redraw_keeps_the_share_and_leaves_the_repair_only_the_rounding():
    """Redrawn: no draw above d_max reaches the repair (no fallback here), every w is the first draw of the generator
    (a redraw keeps it), far fewer users sit at d_max than with the repair; counted."""
    budget, user_f, item_f = gowalla_like()
    repair = ActionSampler(budget, user_f, item_f).sample(300, np.random.default_rng(1))
    sampler = ActionSampler(budget, user_f, item_f, overflow="redraw")
    redrawn = sampler.sample(300, np.random.default_rng(1))
    assert np.array_equal(redrawn.user_share, np.random.default_rng(1).uniform(0, 1, 300))
    users = sampler.counts["users"]
    assert users["overflowed"] > 20 and users["redraws"] >= users["overflowed"] and users["fallbacks"] == users["repaired"] == 0
    at_max = [(c.user_sizes == 128).any(1).mean() for c in (repair, redrawn)]
    assert at_max[0] > 0.08 and at_max[1] < at_max[0] / 4
    # the sizes before the repair: the redraw's accepted floors are all <= d_max (the repair only adds the rounding)
    spread = [np.median(c.user_sizes.max(1) / c.user_sizes.mean(1)) for c in (repair, redrawn)]
    assert spread[1] < spread[0]


def test_redraw_falls_back_to_the_repair_after_its_tries_and_counts_it():
    """At sparsity 0.05 most w leave users near d_max on average: almost no draw fits, so the tries run out."""
    budget = Budget.from_sparsity(0.05, 16, 200, 10)
    sampler = ActionSampler(budget, np.arange(200), np.arange(10), overflow="redraw", overflow_tries=2,
                            probabilities=dict(powerlaw=1.0))
    candidates = sampler.sample(50, np.random.default_rng(0))
    users = sampler.counts["users"]
    assert users["fallbacks"] > 0 and users["repaired"] == users["fallbacks"]
    assert users["redraws"] <= 2 * users["overflowed"]
    assert candidates.user_sizes.max() <= 16
    assert np.all(candidates.user_sizes.sum(1) + candidates.item_sizes.sum(1) == budget.params)
    sampler.sample(50, np.random.default_rng(0))
    assert sampler.counts["users"]["draws"] == 100  # summed over calls


def test_an_equal_widths_draw_is_exact():
    """Every row of a field the same width, give or take one: floor(total / n) and the rest, one each, to the most
    frequent rows; the total exact."""
    budget, user_f, item_f = gowalla_like(300, 700)
    sampler = ActionSampler(budget, user_f, item_f, probabilities={"equal": 1.0})
    candidates = sampler.sample(30, np.random.default_rng(2))
    assert {pair for pair in candidates.distributions} == {("equal", "equal")} and np.all(candidates.betas == 0)
    for sizes, freq in ((candidates.user_sizes, user_f), (candidates.item_sizes, item_f)):
        total = sizes.sum(1, dtype=np.int64)
        n = sizes.shape[1]
        low = total // n
        assert np.all(sizes.min(1) == low) and np.all(sizes.max(1) - sizes.min(1) <= 1)
        assert np.all((sizes == low[:, None] + 1).sum(1) == total - low * n)  # the rest, one each
        by_rank = sizes[:, np.argsort(-freq, kind="stable")]
        assert np.all(np.diff(by_rank.astype(int), axis=1) <= 0)  # to the most frequent rows
    assert np.all(candidates.user_sizes.sum(1) + candidates.item_sizes.sum(1) == budget.params)


def test_the_weights_pick_the_members():
    budget, user_f, item_f = gowalla_like(100, 150)
    drawn = ActionSampler(budget, user_f, item_f, probabilities={"normal": 1.0, "equal": 1.0}).sample(400, np.random.default_rng(0))
    users = [pair[0] for pair in drawn.distributions]
    assert set(users) == {"normal", "equal"} and 150 < users.count("equal") < 250


@pytest.mark.parametrize("share_range", [(0.0, 1.0), (0.6, 0.9)])
def test_stratified_shares_cover_the_batch_each_stratum_exactly_once(share_range):
    budget, user_f, item_f = gowalla_like(100, 150)
    sampler = ActionSampler(budget, user_f, item_f, share_sampling="stratified")
    low, high = share_range
    for m in (1, 7, 100):
        share = sampler.sample(m, np.random.default_rng(m), share_range).user_share
        strata = np.floor((share - low) / (high - low) * m).astype(int)
        assert sorted(strata) == list(range(m))
    uniform = ActionSampler(budget, user_f, item_f).sample(100, np.random.default_rng(5), share_range).user_share
    assert sorted(np.floor((uniform - low) / (high - low) * 100).astype(int)) != list(range(100))  # the mutant: not stratified
    assert uniform.min() >= low and uniform.max() <= high


def test_same_seed_same_candidates_on_the_new_paths_whatever_the_threads():
    budget, user_f, item_f = gowalla_like(400, 900)
    keys = dict(overflow="redraw", overflow_tries=3, share_sampling="stratified", probabilities=dict(dict.fromkeys(FAMILY, 1.0)))
    drawn = [ActionSampler(budget, user_f, item_f, threads=t, **keys).sample(37, np.random.default_rng(9), (0.2, 0.95)) for t in (1, 1, 3)]
    for other in drawn[1:]:
        assert candidate_digest(other) == candidate_digest(drawn[0])
    assert len({pair[0] for pair in drawn[0].distributions}) == 5
