"""Budgeted backbones on ml-100k: masks applied to every table, caches dropped, NeuMF's fast full sort."""

import numpy as np
import pytest
import torch

from recbole_bet.methods.mr import mixed_random
from recbole_bet.budget import Budget
from recbole_bet.embedding import MaskedEmbedding
from recbole_bet.model import canonical_model_name, get_model
from recbole_bet.quick_start import training_frequencies
from recbole_bet.reproducibility import deterministic_algorithms

from conftest import build_data


@pytest.fixture(scope="module", params=["LightGCN", "NGCF", "NeuMF"])
def setup(request):
    config, train, valid, test = build_data(request.param)
    model = get_model(request.param)(config, train._dataset)
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
    action = mixed_random(budget, users, items, rng=np.random.default_rng(0))
    return config, model, action, valid


@pytest.mark.slow
def test_action_masks_every_table(setup):
    _, model, action, _ = setup
    model.apply_action(action)
    tables = [m for m in model.modules() if isinstance(m, MaskedEmbedding)]
    assert len(tables) == len(model.budget_tables) and not any(isinstance(m, torch.nn.Embedding) for m in model.modules())
    assert sum(t.kept_params for t in tables) == action.params
    assert model.current_action() == action
    for table in tables:
        assert table.sizes[0] == 0  # padding row keeps nothing
        assert torch.all((table.weight != 0).sum(1) <= table.sizes.long())


def test_apply_action_drops_cached_propagation(setup):
    config, model, action, valid = setup
    if not hasattr(model, "restore_user_e"):
        pytest.skip("NeuMF caches no propagated embeddings")
    model.eval()
    batch = next(iter(valid))[0]
    before = model.full_sort_predict(batch).clone()
    assert model.restore_user_e is not None
    halved = type(action)(np.maximum(action.user_sizes // 2, 1), np.maximum(action.item_sizes // 2, 1), action.d_max)
    model.apply_action(halved)
    assert model.restore_user_e is None
    assert not torch.allclose(model.full_sort_predict(batch), before)
    model.apply_action(action)


def test_neumf_full_sort_matches_pairwise_predict():
    config, train, valid, _ = build_data("NeuMF")
    model = get_model("NCF")(config, train._dataset).eval()
    assert type(model).__name__ == "NeuMF" and model.d_max == 128
    batch = next(iter(valid))[0][torch.arange(3)]
    with torch.no_grad():
        fast = model.full_sort_predict(batch).view(3, -1)
        users = batch[model.USER_ID].repeat_interleave(model.n_items)
        items = torch.arange(model.n_items).repeat(3)
        slow = model.predict({model.USER_ID: users, model.ITEM_ID: items}).view(3, -1)
    assert torch.allclose(fast, slow, atol=1e-6)


def test_neumf_full_sort_in_place_gives_the_plain_layers_values_bit_for_bit(monkeypatch):
    """The in-place ReLUs and skipped dropouts of full_sort_predict change no score: equal to running RecBole's MLP
    layers as they are on the same blocks, bit for bit (runs stay comparable with those scored before)."""
    from recbole_bet.model import neumf

    config, train, valid, _ = build_data("NeuMF")
    model = get_model("NeuMF")(config, train._dataset).eval()
    model.mlp_layers.mlp_layers[0].p = 0.5  # a dropout that is on in training: evaluation must not apply it
    with torch.no_grad():
        for p in model.parameters():  # weights that make some hidden units negative and others positive
            p.add_(torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())) * 0.1)
        batch = next(iter(valid))[0]
        fast = model.full_sort_predict(batch)
        monkeypatch.setattr(neumf, "_run_inplace", lambda layers, x: layers(x))
        plain = model.full_sort_predict(batch)
    assert torch.equal(fast, plain) and fast.std() > 0


def test_model_names_and_alias():
    assert canonical_model_name("ncf") == "NeuMF" and canonical_model_name("lightgcn") == "LightGCN"
    with pytest.raises(ValueError, match="allowed: LightGCN, NGCF, NeuMF"):
        canonical_model_name("BPR")


@pytest.mark.parametrize("name", ["LightGCN", "NGCF"])
def test_csr_propagation_matches_recbole(name):
    """Same weights, same batch: RecBole's COO propagation and our symmetric CSR one agree, forward and backward."""
    from recbole.model.general_recommender import lightgcn, ngcf

    config, train, _, _ = build_data(name, message_dropout=0.0)
    plain = {"LightGCN": lightgcn.LightGCN, "NGCF": ngcf.NGCF}[name](config, train._dataset)
    ours = get_model(name)(config, train._dataset)
    state = {k.replace(".weight", ".full_weight") if "embedding" in k else k: v for k, v in plain.state_dict().items()}
    ours.load_state_dict(state, strict=False)
    batch = next(iter(train))
    losses = []
    for model in (plain, ours):
        model.zero_grad()
        loss = model.calculate_loss(batch)
        loss.backward()
        losses.append(loss.item())
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    assert torch.allclose(plain.user_embedding.weight.grad, ours.user_embedding.full_weight.grad, atol=1e-7)
    assert torch.allclose(plain.item_embedding.weight.grad, ours.item_embedding.full_weight.grad, atol=1e-7)


@pytest.mark.parametrize("share", [1.0, 0.0])  # the last layer on the batch's rows only, or on every node
@pytest.mark.parametrize("node_dropout", [0.0, 0.2])
@pytest.mark.slow
def test_ngcf_training_step_matches_recbole_with_message_dropout(node_dropout, share):
    """Our NGCF's propagation (fused products, in-place LeakyReLU, per-layer gathers in the loss, the last
    layer for the batch's rows only) against RecBole's, message dropout on, node dropout off (our CSR
    product) and on (RecBole's resampled COO matrix): the same seed draws the same masks, so the loss and
    every gradient agree up to float rounding, and the random stream is left where RecBole leaves it."""
    from recbole.model.general_recommender import ngcf

    config, train, _, _ = build_data("NGCF", node_dropout=node_dropout)
    assert config["message_dropout"] > 0
    plain = ngcf.NGCF(config, train._dataset)
    ours = get_model("NGCF")(config, train._dataset)
    ours.last_layer_share = share
    state = {k.replace(".weight", ".full_weight") if "embedding" in k else k: v for k, v in plain.state_dict().items()}
    ours.load_state_dict(state, strict=False)
    batch = next(iter(train))
    assert (ours.loss_rows(batch)[1] is None) == (share == 0.0)
    losses, grads, states = [], [], []
    for model in (plain, ours):
        model.train()
        model.zero_grad()
        torch.manual_seed(7)
        loss = model.calculate_loss(batch)
        loss.backward()
        losses.append(loss.item())
        grads.append({name: p.grad.clone() for name, p in model.named_parameters()})
        states.append(torch.get_rng_state())
    assert torch.equal(states[0], states[1])
    assert losses[0] == pytest.approx(losses[1], rel=1e-5)
    for name, grad in grads[0].items():
        ours_name = name.replace(".weight", ".full_weight") if "embedding" in name else name
        assert torch.allclose(grad, grads[1][ours_name], atol=1e-6), name
    # a different seed draws other masks: the comparison above rests on the same draws
    torch.manual_seed(8)
    assert ours.calculate_loss(batch).item() != pytest.approx(losses[1], rel=1e-5)


def test_topk_collector_gives_recbole_the_same_data():
    from recbole.evaluator import Collector

    from recbole_bet.trainer import TopkCollector

    config, _, valid, _ = build_data("LightGCN")
    torch.manual_seed(0)
    theirs, ours = Collector(config), TopkCollector(config)
    for batch in list(valid)[:2]:
        interaction, _, positive_u, positive_i = batch
        scores = torch.randn(int(positive_u.max()) + 1, valid._dataset.item_num)
        theirs.eval_batch_collect(scores, interaction, positive_u, positive_i)
        ours.eval_batch_collect(scores, interaction, positive_u, positive_i)
    expected, got = theirs.get_data_struct().get("rec.topk"), ours.get_data_struct().get("rec.topk")
    assert got.dtype == expected.dtype and torch.equal(got, expected)
    assert expected[:, :-1].sum() > 0  # some hits, so the comparison means something


def test_lightgcn_scores_on_the_used_width_equal_recbole_scores():
    """Our full sort uses only the kept columns; RecBole's LightGCN with the same (masked) values scores the same."""
    from recbole.model.general_recommender import lightgcn

    config, train, valid, _ = build_data("LightGCN")
    ours = get_model("LightGCN")(config, train._dataset).eval()
    users, items = training_frequencies(train._dataset, config)
    ours.apply_action(mixed_random(Budget.from_sparsity(0.95, 128, len(users), len(items)), users, items, rng=np.random.default_rng(0)))
    plain = lightgcn.LightGCN(config, train._dataset).eval()
    with torch.no_grad():
        plain.user_embedding.weight.copy_(ours.user_embedding.weight)
        plain.item_embedding.weight.copy_(ours.item_embedding.weight)
        batch = next(iter(valid))[0]
        width = ours.full_sort_predict(batch)
        assert ours._item_sides["scoring"][1].shape[0] == max(int(ours.user_embedding.sizes.max()), int(ours.item_embedding.sizes.max())) < 128
        assert torch.allclose(width, plain.full_sort_predict(batch), atol=1e-6)
        ours.apply_action(type(ours.current_action())(np.full(943, 128), np.full(1682, 128), 128))  # cache must follow
        assert ours._item_sides["scoring"][1] is not None and ours.restore_user_e is None
        assert ours.full_sort_predict(batch).shape == width.shape and ours._item_sides["scoring"][1].shape[0] == 128


def test_lightgcn_training_on_the_used_width_matches_recbole():
    """Loss and gradients of our LightGCN (propagating kept_width columns) equal RecBole's on the masked values."""
    from recbole.model.general_recommender import lightgcn

    config, train, _, _ = build_data("LightGCN")
    ours = get_model("LightGCN")(config, train._dataset)
    users, items = training_frequencies(train._dataset, config)
    from recbole_bet.methods.es import equal_sizes

    ours.apply_action(equal_sizes(Budget.from_sparsity(0.9, 128, len(users), len(items)), users, items))
    assert ours.kept_width == 13 and ours.get_ego_embeddings().shape[1] == 13
    plain = lightgcn.LightGCN(config, train._dataset)
    with torch.no_grad():
        plain.user_embedding.weight.copy_(ours.user_embedding.weight)
        plain.item_embedding.weight.copy_(ours.item_embedding.weight)
    batch = next(iter(train))
    ours_loss, plain_loss = ours.calculate_loss(batch), plain.calculate_loss(batch)
    ours_loss.backward()
    plain_loss.backward()
    assert ours_loss.item() == pytest.approx(plain_loss.item(), rel=1e-6)
    mask = ours.user_embedding.mask.bool()
    assert torch.allclose(ours.user_embedding.full_weight.grad[mask], plain.user_embedding.weight.grad[mask], atol=1e-7)


@pytest.mark.parametrize("name", ["LightGCN", "NGCF", "NeuMF"])
@pytest.mark.slow
def test_building_our_model_draws_what_recboles_draws(name):
    """Same seed: our model starts from RecBole's weights and leaves torch's generator where RecBole's
    model leaves it, so dropout and everything drawn later follow RecBole's stream."""
    from recbole.model.general_recommender import lightgcn, neumf, ngcf

    recbole_class = {"LightGCN": lightgcn.LightGCN, "NGCF": ngcf.NGCF, "NeuMF": neumf.NeuMF}[name]
    config, train, _, _ = build_data(name)
    torch.manual_seed(3)
    plain = recbole_class(config, train._dataset)
    plain_state = torch.get_rng_state()
    torch.manual_seed(3)
    ours = get_model(name)(config, train._dataset)
    assert torch.equal(torch.get_rng_state(), plain_state)
    ours_state = ours.state_dict()
    for key, value in plain.state_dict().items():
        assert torch.equal(ours_state[key.replace("embedding.weight", "embedding.full_weight")], value), key


def test_lightgcn_ego_masked_on_the_used_width_trains_bit_for_bit_like_cutting_after():
    """Masking and concatenating only the kept columns gives the weights RecBole's concatenation
    at d_max, cut afterwards, gives: the same after three Adam steps, bit for bit (deterministic kernels)."""
    from recbole.model.general_recommender import lightgcn

    config, train, _, _ = build_data("LightGCN")
    users, items = training_frequencies(train._dataset, config)
    action = mixed_random(Budget.from_sparsity(0.9, 128, len(users), len(items)), users, items, rng=np.random.default_rng(1))
    batches = [batch for _, batch in zip(range(3), train)]

    def cut_after(model):  # RecBole's ego embeddings at d_max, then the used columns
        return lightgcn.LightGCN.get_ego_embeddings(model)[:, : model.kept_width].contiguous()

    trained = []
    for ego in (None, cut_after):
        torch.manual_seed(0)
        model = get_model("LightGCN")(config, train._dataset)
        model.apply_action(action)
        if ego:
            model.get_ego_embeddings = ego.__get__(model)
        assert 1 < model.kept_width < 128 and model.get_ego_embeddings().shape[1] == model.kept_width
        optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
        with deterministic_algorithms(True):
            for batch in batches:
                optimizer.zero_grad()
                model.calculate_loss(batch).backward()
                optimizer.step()
        trained.append(model.state_dict())
    assert all(torch.equal(trained[0][key], trained[1][key]) for key in trained[0])
    torch.manual_seed(0)
    start = get_model("LightGCN")(config, train._dataset)
    assert not torch.equal(start.user_embedding.full_weight, trained[0]["user_embedding.full_weight"])  # it trained


@pytest.mark.parametrize("share", [1.0, 0.0])  # the last layer on the batch's rows only, or on every node
@pytest.mark.parametrize("masked", [False, True])
@pytest.mark.slow
def test_lightgcn_loss_on_the_batch_rows_equals_recboles_loss(masked, share):
    """Training propagates the batch's rows only: RecBole's calculate_loss run on our model (every node
    propagated) gives the same loss bit for bit and the same gradients up to float rounding, full and masked."""
    from recbole.model.general_recommender import lightgcn

    config, train, _, _ = build_data("LightGCN", n_layers=3)
    ours = get_model("LightGCN")(config, train._dataset)
    if masked:
        users, items = training_frequencies(train._dataset, config)
        budget = Budget.from_sparsity(0.9, ours.d_max, len(users), len(items))
        ours.apply_action(mixed_random(budget, users, items, rng=np.random.default_rng(0)))
        assert ours.kept_width < ours.d_max
    ours.last_layer_share = share
    batch = next(iter(train))
    assert (ours.loss_rows(batch)[1] is None) == (share == 0.0)
    losses, grads = [], []
    for calculate_loss in (lightgcn.LightGCN.calculate_loss, type(ours).calculate_loss):
        ours.zero_grad()
        loss = calculate_loss(ours, batch)
        loss.backward()
        losses.append(loss.item())
        grads.append([ours.user_embedding.full_weight.grad.clone(), ours.item_embedding.full_weight.grad.clone()])
    assert losses[0] == losses[1]
    for theirs, mine in zip(*grads):
        assert theirs.abs().sum() > 0 and torch.allclose(theirs, mine, rtol=1e-5, atol=1e-9)


def test_lightgcn_running_sum_forward_equals_recbole_stacked_mean():
    """Our forward (a running sum of the layers) gives RecBole's stacked mean, forward and backward, bit for bit."""
    from recbole.model.general_recommender import lightgcn

    config, train, _, _ = build_data("LightGCN", n_layers=3)
    ours = get_model("LightGCN")(config, train._dataset)
    stacked = [tensor.detach().clone() for tensor in lightgcn.LightGCN.forward(ours)]  # RecBole's code on our model
    summed = ours.forward()
    assert ours.n_layers == 3
    for theirs, mine in zip(stacked, summed):
        assert torch.equal(theirs, mine)
    sum(part.sum() for part in summed).backward()
    ours_grad = ours.user_embedding.full_weight.grad.clone()
    ours.zero_grad()
    sum(part.sum() for part in lightgcn.LightGCN.forward(ours)).backward()
    assert torch.equal(ours.user_embedding.full_weight.grad, ours_grad)


def random_symmetric(n: int, generator: torch.Generator) -> torch.Tensor:
    """A dense symmetric ``[n, n]`` matrix, about 5% nonzero, zero diagonal."""
    upper = torch.triu(torch.rand(n, n, generator=generator) * (torch.rand(n, n, generator=generator) < 0.05), 1)
    return upper + upper.t()


def test_sparse_dense_product_is_torch_sparse_mm_bit_for_bit():
    from recbole_bet.model.propagation import SymmetricAdjacency, sparse_dense_product

    generator = torch.Generator().manual_seed(0)
    n = 300
    symmetric = random_symmetric(n, generator)
    adjacency = SymmetricAdjacency(symmetric.to_sparse())
    assert adjacency.matrix.col_indices().dtype == torch.int32
    dense = torch.randn(n, 17, generator=generator)
    expected = torch.sparse.mm(symmetric.to_sparse_csr(), dense)
    assert torch.equal(sparse_dense_product(adjacency.matrix, dense), expected)
    assert torch.equal(sparse_dense_product(adjacency.matrix, dense.t().contiguous().t()), expected)  # any strides
    assert torch.allclose(expected, symmetric @ dense, atol=1e-5)


def test_rows_product_is_the_whole_product_restricted_bit_for_bit():
    """(L @ X)[rows] from L's slice, forward and backward, equals the whole product's rows, bit for bit."""
    from recbole_bet.model.propagation import SymmetricAdjacency, csr_rows

    generator = torch.Generator().manual_seed(0)
    n = 300
    symmetric = random_symmetric(n, generator)
    symmetric[:, [7, n - 1]] = symmetric[[7, n - 1], :] = 0  # rows with no entry, one of them the last
    adjacency = SymmetricAdjacency(symmetric.to_sparse())
    rows = torch.tensor([0, 3, 7, 8, 41, 150, n - 1])
    weight = torch.randn(len(rows), 17, generator=generator)
    results = []
    for product in (lambda x: torch.sparse.mm(adjacency, x).index_select(0, rows), lambda x: adjacency.rows_product(rows, x)):
        dense = torch.randn(n, 17, generator=torch.Generator().manual_seed(1)).requires_grad_()
        out = product(dense)
        (out * weight).sum().backward()
        results.append((out.detach(), dense.grad))
    assert results[0][0].abs().sum() > 0 and results[0][1].abs().sum() > 0
    assert torch.equal(results[0][0], results[1][0]) and torch.equal(results[0][1], results[1][1])
    shuffled = torch.tensor([150, 3, 3, n - 1, 7])  # any order, repeats allowed
    assert torch.equal(csr_rows(adjacency.matrix, shuffled).to_dense(), symmetric[shuffled])


def test_loss_rows_of_a_batch():
    """The batch's node rows, their distinct values and positions; none when the batch covers most nodes."""
    config, train, _, _ = build_data("LightGCN")
    model = get_model("LightGCN")(config, train._dataset)
    batch = next(iter(train))
    rows, distinct, position = model.loss_rows(batch)
    assert torch.equal(rows[: len(batch)], batch[model.USER_ID])
    assert torch.equal(rows[2 * len(batch):], batch[model.NEG_ITEM_ID] + model.n_users)
    share = len(torch.unique(rows)) / (model.n_users + model.n_items)
    assert share > 0.5 and distinct is None and position is rows  # ml-100k: a batch holds most nodes
    model.last_layer_share = share
    rows, distinct, position = model.loss_rows(batch)
    assert torch.equal(distinct[position], rows) and bool((distinct.diff() > 0).all())


@pytest.mark.parametrize("p", [0.0, 0.3, 1.0])
@pytest.mark.parametrize("training", [True, False])
@pytest.mark.slow
def test_ngcf_dropout_rows_is_message_dropout_on_those_rows(p, training):
    """NGCF's last layer: dropout of a few rows draws the whole layer's mask, as RecBole's module does."""
    config, train, _, _ = build_data("NGCF", message_dropout=p)
    model = get_model("NGCF")(config, train._dataset).train(training)
    layer = torch.randn(40, 6, generator=torch.Generator().manual_seed(0))
    rows = torch.tensor([2, 5, 6, 39])
    torch.manual_seed(3)
    expected = model.emb_dropout(layer).index_select(0, rows)
    state = torch.get_rng_state()
    torch.manual_seed(3)
    assert torch.equal(model.dropout_rows(layer.index_select(0, rows), rows, len(layer)), expected)
    assert torch.equal(torch.get_rng_state(), state)
    if training and p == 0.3:
        assert (expected == 0).any() and (expected != 0).any()


def test_full_table_neumf_is_recboles_neumf():
    """Same weights, dropout off: our NeuMF with every row at d_max gives RecBole's NeuMF loss and scores."""
    from recbole.model.general_recommender import neumf

    config, train, valid, _ = build_data("NeuMF", dropout_prob=0.0)
    plain = neumf.NeuMF(config, train._dataset)
    ours = get_model("NeuMF")(config, train._dataset)
    state = {k.replace(".weight", ".full_weight") if "embedding" in k else k: v for k, v in plain.state_dict().items()}
    missing, unexpected = ours.load_state_dict(state, strict=False)
    assert not unexpected and all(key.endswith((".sizes", ".element_mask")) for key in missing)
    batch = next(iter(train))
    assert plain.calculate_loss(batch).item() == ours.calculate_loss(batch).item()
    pairs = next(iter(valid))[0][torch.arange(2)]
    pairs[plain.ITEM_ID] = torch.tensor([1, 2])
    with torch.no_grad():
        assert torch.equal(plain.predict(pairs), ours.predict(pairs))


def test_unit_rows_is_f_normalize_forward_and_backward():
    from torch.nn import functional as F

    from recbole_bet.model.ngcf import UnitRows

    x = torch.randn(50, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[3] = 0  # a row at the eps clamp
    x[4] = 1e-14
    weight = torch.randn(50, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grads = []
    for normalize in (lambda t: F.normalize(t, p=2, dim=1), UnitRows.apply):
        leaf = x.clone().requires_grad_()
        out = normalize(leaf)
        (out * weight).sum().backward()
        grads.append((out.detach(), leaf.grad))
    assert torch.allclose(grads[0][0], grads[1][0], rtol=1e-12, atol=0)
    assert torch.allclose(grads[0][1], grads[1][1], rtol=1e-10, atol=1e-300)
    assert torch.autograd.gradcheck(UnitRows.apply, (torch.randn(6, 4, dtype=torch.float64, requires_grad=True),))


def test_bi_interaction_gradients():
    """NGCF's layer with its own backward: gradcheck in float64, at points on both sides of LeakyReLU's kink."""
    from recbole_bet.model.ngcf import BiInteraction

    g = torch.Generator().manual_seed(0)
    inputs = [torch.randn(*shape, generator=g, dtype=torch.float64, requires_grad=True)
              for shape in ((9, 5), (9, 5), (4, 5), (4, 5), (4,))]
    out = BiInteraction.apply(*inputs)
    assert (out < 0).any() and (out > 0).any()
    assert torch.autograd.gradcheck(BiInteraction.apply, tuple(inputs))


@pytest.mark.slow
def test_neumf_bpr_trains_on_pairwise_batches_with_the_papers_loss(fast_config):
    """neumf_loss=bpr: RecBole's loaders give (user, positive, negative) triples and the loss is BPR's,
    -log sigmoid(score(u, i) - score(u, j)); bce keeps RecBole's labelled pairs. A bad value is one line."""
    from recbole.utils import InputType

    from recbole_bet.errors import ConfigError
    from recbole_bet.quick_start import run_recbole_bet

    config, train, _, _ = build_data("NeuMF", neumf_loss="bpr")
    assert config["MODEL_INPUT_TYPE"] == InputType.PAIRWISE
    model = get_model("NeuMF")(config, train._dataset).eval()  # no dropout: the two computations see one network
    batch = next(iter(train))
    assert "neg_item_id" in batch.interaction and "label" not in batch.interaction
    user, pos, neg = batch["user_id"], batch["item_id"], batch["neg_item_id"]
    expected = -torch.log(1e-10 + torch.sigmoid(model.forward(user, pos) - model.forward(user, neg))).mean()
    assert torch.allclose(model.calculate_loss(batch), expected)
    pointwise, _, _, _ = build_data("NeuMF")
    assert pointwise["MODEL_INPUT_TYPE"] == InputType.POINTWISE and pointwise["neumf_loss"] == "bce"
    result = run_recbole_bet("NeuMF", "ml-100k", config_dict=dict(fast_config, method="es", epochs=1, neumf_loss="bpr"))
    assert result["used_params"] <= result["budget_params"] and result["test"]["ndcg@20"] > 0
    assert result["protocol"]["neumf_loss"] == "bpr"  # a result file says which loss trained it
    with pytest.raises(ConfigError, match=r"neumf_loss='hinge': allowed: bce, bpr"):
        build_data("NeuMF", neumf_loss="hinge")


def test_neumf_loss_is_refused_for_recboles_own_neumf():
    from recbole_bet.errors import ConfigError

    with pytest.raises(ConfigError, match=r"neumf_loss='bpr': only recbole-bet's NeuMF has it; --method=recbole"):
        build_data("NeuMF", method="recbole", neumf_loss="bpr")
