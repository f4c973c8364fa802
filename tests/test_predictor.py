"""The DeepSets fitness predictor (section 3.3): shapes, permutation invariance, learning."""

import numpy as np
import torch

from recbole_bet.budget import Budget
from recbole_bet.methods.bet.predictor import FitnessPredictor
from recbole_bet.methods.bet.sampler import ActionSampler


def setup(seed=0, n_users=40, n_items=70, m=12):
    rng = np.random.default_rng(seed)
    user_f, item_f = rng.integers(1, 100, n_users), rng.integers(1, 100, n_items)
    budget = Budget.from_sparsity(0.9, 32, n_users, n_items)
    candidates = ActionSampler(budget, user_f, item_f).sample(m, rng)
    torch.manual_seed(seed)
    return FitnessPredictor(user_f, item_f, d_max=32), user_f, item_f, candidates


def test_output_and_embedding_shapes():
    predictor, _, _, c = setup()
    assert predictor(c.user_sizes, c.item_sizes).shape == (12,)
    assert predictor.embed(c.user_sizes, c.item_sizes).shape == (12, 64)
    assert predictor.embed(c.user_sizes[0], c.item_sizes[0]).shape == (1, 64)
    assert sum(p.numel() for p in predictor.user_encoder.parameters()) == 1 * 16 + 16 + 16 * 16 + 16


def test_batched_pass_equals_one_action_at_a_time():
    predictor, _, _, c = setup()
    with torch.no_grad():
        batched = predictor(c.user_sizes, c.item_sizes)
        single = torch.cat([predictor(c.user_sizes[i : i + 1], c.item_sizes[i : i + 1]) for i in range(len(c))])
    assert torch.allclose(batched, single, atol=1e-6)


def test_permuting_rows_of_an_action_changes_nothing():
    predictor, user_f, item_f, c = setup()
    rng = np.random.default_rng(1)
    pu, pi = rng.permutation(len(user_f)), rng.permutation(len(item_f))
    permuted = FitnessPredictor(user_f[pu], item_f[pi], d_max=32)
    weights = {k: v for k, v in predictor.state_dict().items() if not k.startswith("group_")}
    permuted.load_state_dict(weights, strict=False)  # same weights; frequencies permuted
    with torch.no_grad():
        assert torch.allclose(predictor(c.user_sizes, c.item_sizes), permuted(c.user_sizes[:, pu], c.item_sizes[:, pi]), atol=1e-6)
        # but which row gets which size matters: sizes alone are not the action
        assert not torch.allclose(predictor(c.user_sizes, c.item_sizes), predictor(c.user_sizes[:, pu], c.item_sizes[:, pi]))


def test_items_are_encoded_by_frequency_not_id():
    predictor, user_f, item_f, c = setup()
    assert torch.equal(predictor.row_frequency[len(user_f) :], torch.tensor(item_f / item_f.max(), dtype=torch.float32))


def test_it_learns_a_toy_fitness():
    predictor, _, item_f, c = setup(m=64)
    # toy fitness: how many dimensions went to the most popular half of the items
    popular = item_f >= np.median(item_f)
    target = torch.tensor(c.item_sizes[:, popular].sum(1) / c.item_sizes.sum(1), dtype=torch.float32)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=0.01)
    losses = []
    for _ in range(150):
        loss = torch.nn.functional.mse_loss(predictor(c.user_sizes, c.item_sizes), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] / 20
