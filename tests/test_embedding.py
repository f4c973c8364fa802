"""MaskedEmbedding: values, .weight, gradients past the size, state_dict, injection."""

import pytest
import torch
from torch import nn

from recbole_bet.embedding import MaskedEmbedding, inject_masked_embeddings


@pytest.fixture
def table():
    torch.manual_seed(0)
    emb = MaskedEmbedding(5, 6)
    emb.set_sizes(torch.tensor([6, 3, 1, 0, 2]))
    return emb


def test_forward_and_weight_are_masked_to_the_prefix(table):
    expected = table.full_weight.detach().clone()
    for row, size in enumerate([6, 3, 1, 0, 2]):
        expected[row, size:] = 0
    assert torch.equal(table.weight, expected)
    assert torch.equal(table(torch.tensor([[1, 4], [0, 3]])), expected[torch.tensor([[1, 4], [0, 3]])])
    assert table.kept_params == 12


def test_gradients_past_the_size_are_exactly_zero(table):
    loss = (table.weight**2).sum() + table(torch.tensor([1, 2, 2, 4])).sum() * 3
    loss.backward()
    grad = table.full_weight.grad
    mask = torch.arange(6) < torch.tensor([6, 3, 1, 0, 2]).unsqueeze(1)
    assert torch.all(grad[~mask] == 0)
    assert torch.all(grad[mask] != 0)


def test_optimizer_never_moves_masked_values(table):
    before = table.full_weight.detach().clone()
    opt = torch.optim.Adam(table.parameters(), lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        table(torch.arange(5)).pow(2).sum().backward()
        opt.step()
    mask = table.mask.bool()
    assert torch.equal(table.full_weight.detach()[~mask], before[~mask])
    assert not torch.equal(table.full_weight.detach()[mask], before[mask])


def test_state_dict_round_trip_keeps_sizes_and_values(table):
    state = table.state_dict()
    assert set(state) == {"full_weight", "sizes", "element_mask"} and state["element_mask"].shape == (0, 6)  # prefix: empty
    other = MaskedEmbedding(5, 6)
    other.load_state_dict(state)
    assert torch.equal(other.sizes, table.sizes)
    assert torch.equal(other.weight, table.weight)


def test_unmasked_table_behaves_like_nn_embedding():
    torch.manual_seed(0)
    plain = nn.Embedding(4, 3)
    masked = MaskedEmbedding.from_embedding(plain)
    idx = torch.tensor([3, 0, 3])
    assert torch.equal(masked(idx), plain(idx))
    assert torch.equal(masked.weight, plain.weight)


def test_from_embedding_draws_nothing_and_copies():
    plain = nn.Embedding(4, 3)
    state = torch.get_rng_state()
    masked = MaskedEmbedding.from_embedding(plain)
    assert torch.equal(torch.get_rng_state(), state)
    assert torch.equal(masked.full_weight, plain.weight) and masked.full_weight.data_ptr() != plain.weight.data_ptr()
    with pytest.raises(ValueError, match=r"expected \(4, 5\)"):
        MaskedEmbedding(4, 5, weight=plain.weight)


def test_set_sizes_rejects_bad_shapes_and_values(table):
    with pytest.raises(ValueError, match=r"expected \(5,\)"):
        table.set_sizes(torch.tensor([1, 2]))
    with pytest.raises(ValueError, match=r"allowed: \[0, 6\]"):
        table.set_sizes(torch.tensor([1, 2, 7, 0, 0]))


def test_inject_replaces_embeddings_and_keeps_weights():
    torch.manual_seed(0)
    model = nn.Module()
    model.user_embedding = nn.Embedding(3, 4)
    model.tower = nn.Module()
    model.tower.item_embedding = nn.Embedding(2, 4)
    old = model.tower.item_embedding.weight.detach().clone()
    injected = inject_masked_embeddings(model, ["user_embedding", "tower.item_embedding"])
    assert isinstance(model.tower.item_embedding, MaskedEmbedding)
    assert injected["tower.item_embedding"] is model.tower.item_embedding
    assert torch.equal(model.tower.item_embedding.weight, old)
    with pytest.raises(TypeError, match="not an nn.Embedding"):
        inject_masked_embeddings(model, ["tower"])
