"""The methods' pure parts: every layout within the budget, the power rule, magnitude pruning, PEP's
soft threshold, OptEmbed's projection and evolution, element masks in a table."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recbole_bet.budget import Budget, ElementMask, keep_largest
from recbole_bet.errors import BudgetError
from recbole_bet.embedding import MaskedEmbedding
from recbole_bet.methods import REGISTRY, get_method, key_owners
from recbole_bet.methods.ciess import (CiessSettings, TD3Agent, explore, project_to_budget, random_walk, rebuilt_parts, slim_part,
                                       to_action, to_sizes, walk_offsets)
from recbole_bet.methods.es import equal_sizes
from recbole_bet.methods.esapn import ENLARGE, KEEP, SHRINK, admit_growth, candidate_sizes, trade
from recbole_bet.methods.magprune import magnitude_mask
from recbole_bet.methods.mde import power_rule, power_rule_sizes
from recbole_bet.methods.mr import mixed_random
from recbole_bet.methods.optembed import BinaryStep, OptEmbedSettings, evolve, fill, fill_options, fit_widths, optembed_action
from recbole_bet.methods.pep import SoftThresholdEmbedding, threshold_shape
from recbole_bet.quality import row_quality

from conftest import make_budget, random_tables

tables = random_tables(40)


@settings(max_examples=60, deadline=None)
@given(tables)
def test_no_method_layout_exceeds_the_budget(case):
    n_users, n_items, d_max, sparsity, seed = case
    budget = make_budget(n_users, n_items, d_max, sparsity)
    if budget is None:
        return
    rng = np.random.default_rng(seed)
    users, items = rng.integers(0, 50, n_users), rng.integers(0, 50, n_items)
    weights = rng.normal(size=(n_users, d_max)), rng.normal(size=(n_items, d_max))
    layouts = {
        "es": equal_sizes(budget, users, items),
        "mr": mixed_random(budget, users, items, rng),
        "mde": power_rule(budget, users, items, alpha=float(rng.uniform(0, 1))),
        "magprune": magnitude_mask(*weights, budget, "global"),
        "magprune-field": magnitude_mask(*weights, budget, "field"),
        "pep": ElementMask(*keep_largest([w - 0.1 for w in weights], budget.attainable), d_max),
    }
    for name, layout in layouts.items():
        layout.check(budget)  # raises over the budget
        assert layout.params == budget.attainable, name  # and every one of them uses it exactly
    kept = tuple(int(k) for k in rng.integers(0, [n_users + 1, n_items + 1]))
    action = optembed_action(np.arange(n_users) < kept[0], np.arange(n_items) < kept[1],
                             fit_widths(tuple(rng.integers(1, d_max + 1, 2)), kept, budget.params, d_max), d_max)
    assert action.check(budget).params <= budget.params


def test_keep_largest_keeps_exactly_k_largest_and_breaks_ties_by_position():
    a, b = np.array([[3.0, 1.0], [2.0, 2.0]]), np.array([2.0, 5.0])
    kept_a, kept_b = keep_largest([a, b], 2)
    assert kept_a.tolist() == [[True, False], [False, False]] and kept_b.tolist() == [False, True]
    kept_a, kept_b = keep_largest([a, b], 3)  # three 2.0s for one place: the first in order wins
    assert kept_a.tolist() == [[True, False], [True, False]] and kept_b.tolist() == [False, True]
    with pytest.raises(BudgetError, match="cannot keep 7 of 6"):
        keep_largest([a, b], 7)


# ---- the power rule -------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.sampled_from([8, 64, 128]), st.floats(0, 1), st.floats(1.01, 128), st.integers(0, 2**32 - 1))
def test_power_rule_is_exact_and_monotone_in_frequency(n, d_max, alpha, per_row, seed):
    rng = np.random.default_rng(seed)
    frequency = rng.zipf(1.5, n).clip(max=10**6) * (rng.random(n) > 0.1)  # some never seen
    total = int(min(max(n, per_row * n), n * d_max))
    sizes = power_rule_sizes(frequency, alpha, total, d_max)
    assert sizes.sum() == total and sizes.min() >= 1 and sizes.max() <= d_max
    order = np.argsort(-frequency, kind="stable")
    assert np.all(np.diff(sizes[order]) <= 0) or np.all(
        [sizes[i] >= sizes[j] for i in range(n) for j in range(n) if frequency[i] > frequency[j]]
    )
    strictly = frequency[:, None] > frequency[None, :]
    assert not np.any(strictly & (sizes[:, None] < sizes[None, :]))


def test_power_rule_follows_the_power_law_before_the_repair():
    frequency = np.array([10000, 100, 1, 1])
    sizes = power_rule_sizes(frequency, 0.5, total=1 + 100 + 10000 // 100 * 1 + 4, d_max=1000)
    # lambda * f^0.5 with f^0.5 = 100, 10, 1, 1: sizes keep the ratios 100 : 10 : 1 : 1 up to rounding
    assert sizes[0] / sizes[1] == pytest.approx(10, rel=0.15) and sizes[2] == sizes[3]
    assert np.array_equal(power_rule_sizes(frequency, 0.0, 8, 8), [2, 2, 2, 2])  # alpha 0: equal sizes


# ---- magnitude pruning ----------------------------------------------------------------------------------


@pytest.mark.parametrize("scope", ["global", "field"])
def test_magnitude_pruning_keeps_the_largest_weights(scope):
    rng = np.random.default_rng(0)
    users, items = rng.normal(size=(30, 16)), rng.normal(scale=3, size=(50, 16))
    budget = Budget.from_sparsity(0.8, 16, 30, 50)
    mask = magnitude_mask(users, items, budget, scope)
    assert mask.params == budget.params
    fields = [(np.abs(users), mask.user_mask), (np.abs(items), mask.item_mask)]
    if scope == "global":
        kept = np.concatenate([w[m] for w, m in fields])
        dropped = np.concatenate([w[~m] for w, m in fields])
        assert kept.min() >= dropped.max()
        assert mask.item_mask.sum() > 0.8 * budget.params  # items are larger: they win most places
    else:
        assert mask.user_mask.sum() == budget.params * 30 // 80  # each field keeps its share ...
        for w, m in fields:
            assert w[m].min() >= w[~m].max()  # ... of its own largest weights


# ---- PEP ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("granularity, shape", [("feature_dimension", (5, 4)), ("feature", (5, 1)), ("dimension", (1, 4)), ("global", (1, 1))])
def test_soft_threshold_prunes_below_g_of_s_and_trains_the_thresholds(granularity, shape):
    torch.manual_seed(0)
    table = MaskedEmbedding(5, 4)
    soft = SoftThresholdEmbedding(table, granularity, init=0.0)  # g(0) = 0.5
    assert soft.threshold.shape == shape == threshold_shape(granularity, 5, 4)
    assert soft.full_weight is table.full_weight  # shared: training moves the table's own values
    v = table.full_weight.detach()
    expected = torch.sign(v) * torch.relu(v.abs() - 0.5)
    assert torch.equal(soft.weight, expected) and torch.equal(soft(torch.tensor([3, 1])), expected[[3, 1]])
    assert int((soft.margins() > 0).sum()) == int((v.abs() > 0.5).sum())
    soft(torch.arange(5)).sum().backward()
    assert soft.threshold.grad is not None and soft.threshold.grad.abs().sum() > 0  # the loss reaches s


# ---- OptEmbed -----------------------------------------------------------------------------------------


def test_optembed_projection_fits_the_budget_keeps_the_balance_and_refuses_an_impossible_one():
    assert fit_widths((3, 4), (10, 20), budget=10**6, d_max=128) == (3, 4)  # within budget: unchanged
    assert fit_widths((128, 128), (10, 20), budget=1000, d_max=128) == (33, 33)  # one factor for both
    assert fit_widths((128, 64), (10, 20), budget=2000, d_max=128) == (100, 50)
    assert fit_widths((100, 5), (10, 20), budget=500, d_max=128) == (46, 2)  # 460 + 40
    assert fit_widths((9, 9), (0, 20), budget=100, d_max=128) == (5, 5)
    assert fit_widths((64, 128), (10, 20), budget=35, d_max=128) == (1, 1)  # the floor: width 1
    with pytest.raises(BudgetError, match="no candidate fits"):
        fit_widths((1, 1), (600, 500), budget=1000, d_max=128)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 128), st.integers(1, 128), st.integers(0, 300), st.integers(0, 300), st.integers(0, 40000))
def test_optembed_projection_is_the_largest_fitting_common_shrink(w_u, w_v, k_u, k_v, extra):
    budget = k_u + k_v + extra
    if k_u + k_v == 0:
        return
    got = fit_widths((w_u, w_v), (k_u, k_v), budget, 128)
    assert k_u * got[0] + k_v * got[1] <= budget and 1 <= got[0] <= w_u and 1 <= got[1] <= w_v
    if got != (w_u, w_v):  # no larger common factor fits
        bigger = [(max(1, int(w_u * s)), max(1, int(w_v * s))) for s in np.linspace(1, 0, 2000)]
        fitting = [b for b in bigger if k_u * b[0] + k_v * b[1] <= budget]
        assert got[0] >= max(b[0] for b in fitting) - 1 and got[1] >= max(b[1] for b in fitting) - 1


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 200), st.integers(1, 200), st.integers(0, 2**32 - 1))
def test_optembed_evolution_never_scores_a_candidate_over_budget(k_users, k_items, seed):
    rng = np.random.default_rng(seed)
    budget = int(rng.integers(k_users + k_items, 128 * (k_users + k_items) + 1))
    seen = []

    def score(widths):
        assert k_users * widths[0] + k_items * widths[1] <= budget
        seen.append(widths)
        return -abs(widths[0] - 40) - abs(widths[1] - 7)  # best at (40, 7) where it fits

    small = OptEmbedSettings(optembed_generations=6, optembed_keep=4, optembed_mutations=4, optembed_crossovers=4)
    best, scores, history = evolve(score, (k_users, k_items), budget, 128, small, rng)
    assert len(seen) == len(set(seen)) == len(scores)  # each distinct candidate scored once
    assert best == max(scores, key=scores.get) and [h["generation"] for h in history] == list(range(6))
    assert all(h["best_score"] <= scores[best] for h in history)


def test_optembed_fill_widens_the_best_candidate_to_the_budget():
    # 10 users and 20 items kept, budget 1000: (20, 10) costs 400; users alone to 80, items alone to 40, both x2.5
    assert fill_options((20, 10), (10, 20), 1000, 128) == {"users": (80, 10), "items": (20, 40), "both": (50, 25)}
    assert fill_options((128, 10), (10, 20), 1500, 128) == {"items": (128, 11), "both": (128, 11)}  # users already at d_max
    rows = (np.ones(10, dtype=bool), np.ones(20, dtype=bool))
    frequency = (np.arange(10.0), np.arange(20.0))
    asked = []

    def score(widths):  # the supernet prefers wide items
        asked.append(widths)
        return widths[1]

    widths, extra, record = fill(score, (20, 10), rows, frequency, 1003, 128)
    assert sorted(asked) == [(20, 40), (50, 25), (80, 10)] and widths == (20, 40)  # widened as the supernet scores best
    action = optembed_action(*rows, widths, 128, extra)
    assert action.params == 1003 and record["after"]["params"] == 1003 and record["before"]["params"] == 400
    # the 3 left after widening go to the field the supernet widened best (items), most frequent first
    assert record["spread_to"] == "items" and extra[0].sum() == 0 and np.flatnonzero(extra[1]).tolist() == [17, 18, 19]
    assert "why_not_full" not in record


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 60), st.integers(0, 60), st.integers(1, 80), st.integers(1, 80), st.integers(0, 2**32 - 1))
def test_optembed_fill_uses_the_budget_or_says_why(n_users, n_items, kept_users, kept_items, seed):
    rng = np.random.default_rng(seed)
    rows = (rng.random(kept_users + n_users) < 0.8, rng.random(kept_items + n_items) < 0.8)
    kept = (int(rows[0].sum()), int(rows[1].sum()))
    if sum(kept) == 0:
        return
    d_max = int(rng.choice([4, 16, 128]))
    budget = int(rng.integers(sum(kept), (len(rows[0]) + len(rows[1])) * d_max + 1))
    best = fit_widths(tuple(int(w) for w in rng.integers(1, d_max + 1, 2)), kept, budget, d_max)
    frequency = (rng.integers(0, 50, len(rows[0])), rng.integers(0, 50, len(rows[1])))
    weights = rng.random(2)
    widths, extra, record = fill(lambda w: float(weights @ np.array(w)), best, rows, frequency, budget, d_max)
    action = optembed_action(*rows, widths, d_max, extra)
    assert action.params == record["after"]["params"] <= budget and action.params >= record["before"]["params"]
    assert widths[0] >= best[0] and widths[1] >= best[1]
    assert not extra[0][~rows[0]].any() and not extra[1][~rows[1]].any() and extra[0].min() >= 0 and extra[1].min() >= 0
    assert action.params == min(budget, sum(kept) * d_max)  # exact, unless the kept rows cannot hold the budget
    assert (action.params >= 0.99 * budget) != ("why_not_full" in record)


def test_binary_step_uses_the_surrogate_gradient():
    x = torch.tensor([-2.0, -0.6, -0.1, 0.0, 0.3, 0.9, 1.5], requires_grad=True)
    y = BinaryStep.apply(x)
    assert y.tolist() == [0, 0, 0, 0, 1, 1, 0][:4] + [1, 1, 1]
    y.sum().backward()
    assert x.grad.tolist() == pytest.approx([0, 0.4, 1.6, 2.0, 0.8, 0.4, 0])


# ---- element masks in a table -------------------------------------------------------------------------


def test_element_mask_masks_values_gradients_and_survives_the_state_dict():
    torch.manual_seed(0)
    table = MaskedEmbedding(4, 6)
    mask = torch.rand(4, 6) > 0.5
    mask[0] = False  # padding
    table.set_element_mask(mask)
    assert table.kept_params == int(mask.sum()) and table.is_element_masked
    assert torch.equal(table.weight, table.full_weight * mask)
    assert table.sizes.tolist() == [int(np.nonzero(r)[0].max()) + 1 if r.any() else 0 for r in mask.numpy()]
    table(torch.tensor([1, 2, 3])).sum().backward()
    assert torch.equal(table.full_weight.grad[1:] != 0, mask[1:])
    other = MaskedEmbedding(4, 6)
    other.load_state_dict(table.state_dict())
    assert torch.equal(other.weight, table.weight) and other.kept_params == table.kept_params
    table.set_sizes(torch.tensor([0, 6, 2, 1]))  # back to a prefix
    assert not table.is_element_masked and table.kept_params == 9
    other.load_state_dict({k: v for k, v in table.state_dict().items() if k != "element_mask"})  # an older checkpoint
    assert not other.is_element_masked and torch.equal(other.weight, table.weight)


# ---- the registry -------------------------------------------------------------------------------------


def test_registry_finds_every_method_and_names_the_allowed_ones():
    assert set(REGISTRY) == {"bet", "full", "es", "mr", "pep", "optembed", "magprune", "mde", "esapn", "ciess", "qr", "graphhash",
                             "dsl", "recbole"}
    assert all(get_method(name).name == name for name in REGISTRY)
    assert key_owners() == {"bet_": "bet", "pep_": "pep", "optembed_": "optembed", "magprune_": "magprune", "mde_": "mde", "esapn_": "esapn",
                            "ciess_": "ciess", "qr_": "qr", "graphhash_": "graphhash", "dsl_": "dsl"}
    with pytest.raises(ValueError, match="unknown method 'foo'; allowed: bet, full"):
        get_method("foo")


def test_the_pipeline_does_not_branch_on_a_method_name():
    from pathlib import Path

    import recbole_bet.quick_start as quick_start

    source = Path(quick_start.__file__).read_text()
    for name in REGISTRY:
        assert f'"{name}"' not in source and f"'{name}'" not in source, name


# ---- CIESS --------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 300), st.sampled_from([2, 16, 128]), st.floats(1.0, 128.0), st.floats(-300, 300), st.integers(0, 2**32 - 1))
def test_ciess_projection_uses_the_budget_exactly(n, d_max, per_row, spread, seed):
    rng = np.random.default_rng(seed)
    proposed = rng.normal(per_row, abs(spread) + 1e-3, n)
    total = int(np.clip(per_row * n, n, n * d_max))
    sizes = project_to_budget(proposed, total, d_max, np.argsort(-proposed, kind="stable"))
    assert sizes.sum() == total and sizes.min() >= 1 and sizes.max() <= d_max
    # the shape of the proposal survives: a row proposed larger by 2 or more never ends smaller
    larger = proposed[:, None] >= proposed[None, :] + 2
    assert not np.any(larger & (sizes[:, None] < sizes[None, :]))


def test_ciess_exploration_noise_changes_the_projected_sizes():
    """The noise is drawn per row: a shift shared by every row is undone by the projection exactly, so one draw for all
    rows (the code's) would leave every projected size as it was."""
    rng = np.random.default_rng(0)
    n, d_max, total = 400, 128, 400 * 20
    proposed = rng.integers(1, d_max + 1, n).astype(np.float64)  # the walk's sizes are integers
    order = np.argsort(-proposed, kind="stable")
    plain = project_to_budget(proposed, total, d_max, order)
    assert np.array_equal(project_to_budget(proposed + rng.normal(0, 6.0), total, d_max, order), plain)  # one shared draw
    for seed in range(5):
        noisy = explore(proposed, 6.0, np.random.default_rng(seed))
        moved = project_to_budget(noisy, total, d_max, order) != plain
        assert moved.sum() > n // 4  # most rows move; the budget is still used exactly
        assert project_to_budget(noisy, total, d_max, order).sum() == total
    assert np.array_equal(explore(proposed, 0.0, rng), proposed)
    assert np.array_equal(explore(proposed, 6.0, np.random.default_rng(1)), explore(proposed, 6.0, np.random.default_rng(1)))


def test_ciess_random_walk_stays_in_range_and_moves_by_at_most_the_span():
    rng = np.random.default_rng(0)
    start = np.array([1.2, 64.0, 127.6, 3.0])
    path = random_walk(start, walk_offsets(4, 50, 5, rng), 128)
    assert path.shape == (4, 51) and path[:, 0].tolist() == [1, 64, 128, 3]
    assert path.min() >= 1 and path.max() <= 128 and np.abs(np.diff(path, axis=1)).max() <= 5
    moves = np.abs(walk_offsets(1, 20000, 5, rng))
    shares = np.bincount(moves.ravel(), minlength=6)[1:] / moves.size
    assert shares == pytest.approx((1 / np.arange(1, 6)) / (1 / np.arange(1, 6)).sum(), abs=0.01)  # p(j) ~ 1/j
    assert np.allclose(to_sizes(to_action([1, 50, 128], 128), 128), [1, 50, 128])


def test_td3_losses_move_and_targets_lag_by_tau():
    torch.manual_seed(0)
    settings_ = CiessSettings(ciess_batch=64, ciess_grad_clip=10.0, ciess_tau=0.1)
    agent = TD3Agent(3, 16, settings_, d_max=128, capacity=1000)
    rng = np.random.default_rng(0)
    s = rng.uniform(-1, 1, (500, 3))
    agent.buffer.add(s=s, a=rng.uniform(-1, 1, (500, 1)), r=s[:, :1] ** 2, s2=s, done=np.zeros(500))
    generator = torch.Generator().manual_seed(0)
    before = {name: [p.detach().clone() for p in getattr(agent, name).parameters()] for name in ("actor", "actor_target", "critic1", "critic1_target")}
    losses = [agent.update(generator, rng) for _ in range(6)]
    critic, actor = [c for c, _ in losses], [a for _, a in losses]
    assert actor[0::2] == [None, None, None] and all(a is not None for a in actor[1::2])  # policy delay 2
    assert len(set(critic)) == 6 and len(set(actor[1::2])) == 3  # losses change from update to update
    for online, target in (("actor", "actor_target"), ("critic1", "critic1_target")):
        new_online = list(getattr(agent, online).parameters())
        new_target = list(getattr(agent, target).parameters())
        assert not torch.equal(new_target[0], before[target][0])  # the targets moved ...
        assert not torch.allclose(new_target[0], new_online[0])  # ... but lag the online networks
    # one more soft update: exactly (1 - tau) * target + tau * online
    targets = [t.detach().clone() for t in agent.critic2_target.parameters()]
    agent.soft_update()
    for old, p, t in zip(targets, agent.critic2.parameters(), agent.critic2_target.parameters()):
        assert torch.allclose(t, 0.9 * old + 0.1 * p)


def test_ciess_kept_steps_drop_the_states_the_previous_step_holds_and_get_them_back():
    rng = np.random.default_rng(0)
    steps = []  # two episodes of 3 steps; 5 rows of 3 numbers
    for t in range(6):
        s = rng.normal(size=(5, 3)) if t % 3 == 0 else steps[-1]["user"]["s2"]  # an episode starts afresh
        steps.append({"user": {"s": s, "a": rng.normal(size=5), "r": rng.normal(size=5), "s2": rng.normal(size=(5, 3)),
                               "done": np.full(5, float(t % 3 == 2))}})
    kept = [slim_part(step, first_of_episode=t % 3 == 0) for t, step in enumerate(steps)]
    assert ["s" in part["user"] for part in kept] == [True, False, False, True, False, False]
    rebuilt = list(rebuilt_parts(kept))
    assert all(np.array_equal(r["user"][k], o["user"][k]) for r, o in zip(rebuilt, steps) for k in o["user"])
    assert list(rebuilt_parts(steps))[1]["user"]["s"] is steps[1]["user"]["s"]  # a part kept whole is used as it is


def test_row_quality_averages_to_recboles_metrics():
    # two users, top 20: hits at ranks 1 and 7 for the first (3 positives), none for the second (1 positive)
    hits = torch.zeros(2, 20, dtype=torch.long)
    hits[0, 0] = hits[0, 6] = 1
    topk = torch.cat([hits, torch.tensor([[3], [1]])], 1)
    q = row_quality(topk)
    d = 1 / np.log2(np.arange(2, 22))
    first = np.mean([1 / 3, 2 / 3, 2 / 3, d[0] / d[:3].sum(), (d[0] + d[6]) / d[:3].sum(), (d[0] + d[6]) / d[:3].sum()])
    assert q.tolist() == pytest.approx([first, 0.0])


# ---- ESAPN --------------------------------------------------------------------------------------------


def test_esapn_candidates_scale_with_d_max():
    assert candidate_sizes(128).tolist() == [2, 4, 8, 16, 64, 128]
    assert candidate_sizes(64).tolist() == [1, 2, 4, 8, 32, 64]
    assert candidate_sizes(8).tolist() == [1, 4, 8]


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200), st.integers(0, 3000), st.integers(0, 2**32 - 1))
def test_esapn_growth_never_shrinks_never_passes_the_room_and_goes_by_probability(n, room, seed):
    rng = np.random.default_rng(seed)
    candidates = candidate_sizes(128)
    level = rng.integers(0, len(candidates), n)
    want = (rng.random(n) < 0.6) & (level + 1 < len(candidates))
    p = rng.random(n)
    new, admitted, refused = admit_growth(level, want, p, candidates, room)
    assert np.all(new >= level) and np.all(new - level <= 1) and np.array_equal(new > level, admitted)
    assert candidates[new].sum() - candidates[level].sum() <= room
    assert np.array_equal(admitted | refused, want) and not np.any(admitted & refused)
    if admitted.any() and refused.any():
        assert p[admitted].min() >= p[refused].max()  # the likelier growths go first


@settings(max_examples=80, deadline=None)
@given(st.integers(1, 200), st.integers(0, 300), st.integers(0, 2**32 - 1))
def test_esapn_trade_pays_enlargements_with_shrinks_and_never_passes_the_budget(n, room, seed):
    rng = np.random.default_rng(seed)
    candidates = candidate_sizes(128)
    level = rng.integers(0, len(candidates), n)
    choice = rng.integers(0, 3, n)
    choice[(choice == SHRINK) & (level == 0)] = KEEP  # decide() masks these
    choice[(choice == ENLARGE) & (level == len(candidates) - 1)] = KEEP
    p = rng.random(n)
    new, grown, shrunk, refused = trade(level, choice, p, candidates, room)
    assert np.array_equal(shrunk, choice == SHRINK) and np.array_equal(new[shrunk], level[shrunk] - 1)  # every shrink
    assert np.array_equal(grown | refused, choice == ENLARGE) and np.array_equal(new[grown], level[grown] + 1)
    assert np.array_equal(new[choice == KEEP], level[choice == KEEP]) and np.array_equal(new[refused], level[refused])
    assert candidates[new].sum() <= candidates[level].sum() + room  # never past the budget
    freed = int((candidates[level] - candidates[np.maximum(level - 1, 0)])[shrunk].sum())
    cost = candidates[np.minimum(level + 1, len(candidates) - 1)] - candidates[level]
    if refused.any():  # the likeliest refused enlargement did not fit in the room, the shrinks' included
        first = np.flatnonzero(refused)[np.argmax(p[refused])]
        assert cost[grown].sum() + cost[first] > room + freed
        assert p[grown].min(initial=1) >= p[refused].max()  # the likelier enlargements go first
    # per parameter: the same shrinks, and the enlargements admitted by probability per parameter
    new2, grown2, shrunk2, refused2 = trade(level, choice, p, candidates, room, per_parameter=True)
    assert np.array_equal(shrunk2, shrunk) and np.array_equal(grown2 | refused2, choice == ENLARGE)
    assert candidates[new2].sum() <= candidates[level].sum() + room
    if grown2.any() and refused2.any():
        assert (p / np.maximum(cost, 1))[grown2].min() >= (p / np.maximum(cost, 1))[refused2].max()


def test_esapn_admits_cheap_enlargements_first_per_parameter():
    candidates = candidate_sizes(128)  # 2, 4, 8, 16, 64, 128
    level, choice = np.array([4, 0, 0, 0]), np.full(4, ENLARGE)  # 64 -> 128 costs 64; 2 -> 4 costs 2
    p = np.array([0.9, 0.5, 0.5, 0.5])
    assert trade(level, choice, p, candidates, 64)[1].tolist() == [True, False, False, False]
    assert trade(level, choice, p, candidates, 64, per_parameter=True)[1].tolist() == [False, True, True, True]


# ---- review fixes -------------------------------------------------------------------------------------


def test_a_partial_load_keeps_the_element_mask():
    """Loading other modules' weights (strict=False) must not turn an element mask back into its covering prefix."""
    torch.manual_seed(0)
    parent = torch.nn.Module()
    parent.table, parent.linear = MaskedEmbedding(4, 8), torch.nn.Linear(2, 2)
    mask = torch.zeros(4, 8, dtype=torch.bool)
    mask[1, [0, 7]] = mask[2, 3] = True
    parent.table.set_element_mask(mask)
    parent.load_state_dict({"linear.weight": torch.zeros(2, 2), "linear.bias": torch.zeros(2)}, strict=False)
    assert parent.table.is_element_masked and parent.table.kept_params == 3


def test_ciess_projection_refuses_a_diverged_proposal():
    with pytest.raises(BudgetError, match="non-finite sizes: the actor diverged"):
        project_to_budget(np.array([3.0, np.nan, 5.0]), 6, 8, np.arange(3))


def test_supernet_widths_mask_training_only_and_leave_every_column_to_validation():
    from recbole_bet.methods.optembed import SupernetEmbedding

    torch.manual_seed(0)
    table = SupernetEmbedding(MaskedEmbedding(50, 16))
    table.draw_widths(torch.Generator().manual_seed(0))
    assert int(table.sizes.min()) == 16  # LightGCN's column cut (kept_width) sees every column
    training = table.weight
    kept = (training != 0).sum(1)
    assert kept.min() >= 1 and kept.max() <= 16 and len(set(kept.tolist())) > 3  # random prefixes per row
    table.eval()
    assert torch.equal(table.weight, table.full_weight * table.row_gate())


@pytest.mark.parametrize("key, value, message", [
    ("ciess_tau", float("nan"), "ciess_tau=nan; allowed: a number in (0, 1]"),
    ("ciess_batch", float("inf"), "ciess_batch=inf; allowed: an integer >= 1"),
    ("ciess_episodes", None, "ciess_episodes=~ (none); allowed: a value"),
])
def test_settings_refuse_nan_infinity_and_none(key, value, message):
    from recbole_bet.errors import ConfigError
    from recbole_bet.methods.ciess import CiessSettings

    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[").replace("]", r"\]")):
        CiessSettings(**{key: value})


def test_mde_refuses_an_alpha_named_twice():
    from recbole_bet.errors import ConfigError
    from recbole_bet.methods.mde import MdeSettings

    with pytest.raises(ConfigError, match="names a value twice"):
        MdeSettings(mde_alphas=[0.1, 0.1])
