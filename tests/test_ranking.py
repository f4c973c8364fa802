"""Screened full ranking (recbole_bet.ranking): the top k of the float32 scores, found through int8 codes."""

import numpy as np
import pytest
import torch

from recbole_bet.methods.mr import mixed_random
from recbole_bet.budget import Budget
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies
from recbole_bet.ranking import ScreenedItems, quantize_rows, screened_topk
from recbole_bet.trainer import BudgetTrainer

from conftest import build_data


def float_topk(users, items, k, excluded=None):
    """What RecBole ranks: the float32 product, item 0 and the excluded pairs at -inf, then topk."""
    scores = users @ items.t()
    scores[:, 0] = -torch.inf
    if excluded is not None:
        scores[excluded] = -torch.inf
    return torch.topk(scores, k, dim=1)


def assert_same_top(users, items, k, excluded=None):
    expected = float_topk(users, items, k, excluded)
    got = screened_topk(users, ScreenedItems(items), k, excluded)
    assert got.shape == expected.indices.shape
    assert torch.equal(got, expected.indices)


def test_codes_are_within_half_a_step_of_the_vectors():
    vectors = torch.randn(50, 13, generator=torch.Generator().manual_seed(0))
    vectors[3] = 0  # an all-zero row gets scale 1, not a division by zero
    codes, scales = quantize_rows(vectors)
    assert codes.dtype == torch.int8 and int(codes.abs().max()) == 127
    assert torch.all((vectors - scales[:, None] * codes.double()).abs() <= scales[:, None] / 2 * (1 + 1e-6))
    assert scales[3] == 1 and not codes[3].any()


@pytest.mark.parametrize("width", [128, 13, 1])
def test_screened_top_k_is_the_float_top_k(width):
    g = torch.Generator().manual_seed(width)
    users, items = torch.randn(300, width, generator=g), torch.randn(2000, width, generator=g)
    rows = torch.randint(0, 300, (3000,), generator=g)
    cols = torch.randint(0, 2000, (3000,), generator=g)
    assert_same_top(users, items, 20, (rows, cols))


@pytest.mark.parametrize("exponent", [-149, -140, -130, -126, 0])
def test_subnormal_vectors_keep_the_bound_and_the_float_top_k(exponent):
    """A row whose largest value is subnormal: its float32 scale would lose its precision (and a code its
    half-step bound), and the reference's products round absolutely. The issue's case first: the user
    [178, 100] * 2^-149 scores item 1 (178) above item 2 (150)."""
    users = torch.tensor([[178.0, 100.0]]) * 2.0**-149
    items = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.5]])
    assert screened_topk(users, ScreenedItems(items), 1).tolist() == [[1]]
    g = torch.Generator().manual_seed(-exponent)
    users = (torch.randn(64, 16, generator=g) * 2.0**exponent).float()
    items = torch.randn(500, 16, generator=g)
    codes, scales = quantize_rows(users)
    assert torch.all((users.double() - scales[:, None] * codes.double()).abs() <= scales[:, None] / 2)
    for rows, table in ((users, items), (items[:64], users.repeat(8, 1))):  # subnormal users, then items
        # tiny values tie often: the top k's scores are the float top k's (which of equal items may differ)
        expected = float_topk(rows, table, 10).values
        got = screened_topk(rows, ScreenedItems(table), 10)
        scores = rows @ table.t()
        assert torch.equal(scores.gather(1, got), expected)


def test_scores_closer_than_the_int8_step_are_still_ranked_exactly():
    """Items that differ by less than one int8 step (one shared vector plus perturbations of at most half a
    step): their codes tie or invert, so the top k rests on the error band, not on the codes' order. Checked
    against float64 scores, on the rows whose top k + 1 are apart by more than float32 rounding."""
    g = torch.Generator().manual_seed(1)
    step, k = 1 / 127, 10
    items = torch.ones(300, 32) + (torch.rand(300, 32, generator=g) - 0.5) * step
    users = torch.rand(200, 32, generator=g) + 0.5
    truth = users.double() @ items.double().t()
    truth[:, 0] = -torch.inf
    best = torch.topk(truth, k + 1, dim=1)
    clear = (best.values[:, :-1] - best.values[:, 1:]).min(dim=1).values > 1e-4
    assert clear.sum() >= 50
    codes = ScreenedItems(items).codes[: len(items), :32].int()
    by_codes = torch.topk((quantize_rows(users)[0].int() @ codes.t()).float().index_fill_(1, torch.tensor([0]), -1e9), k, dim=1)
    # the codes alone would rank other items: the case the band exists for
    assert not all(set(a.tolist()) == set(b.tolist()) for a, b in zip(best.indices[clear, :k], by_codes.indices[clear]))
    got = screened_topk(users, ScreenedItems(items), k)
    assert torch.equal(got[clear], best.indices[clear, :k])


def test_rows_with_fewer_items_than_k_rank_excluded_items_last():
    g = torch.Generator().manual_seed(2)
    users, items = torch.randn(3, 8, generator=g), torch.randn(30, 8, generator=g)
    # row 0 may rank only items 1..5: 25 excluded, item 0 padding
    excluded = (torch.zeros(24, dtype=torch.long), torch.arange(6, 30))
    top = screened_topk(users, ScreenedItems(items), 10, excluded)
    expected = float_topk(users, items, 10, excluded)
    assert set(top[0, :5].tolist()) == set(range(1, 6))
    assert torch.equal(top[0, :5], expected.indices[0, :5])
    assert torch.equal(top[1:], expected.indices[1:])


def test_k_larger_than_the_items_is_refused():
    with pytest.raises(ValueError, match="top-20 of 10 items"):
        screened_topk(torch.randn(2, 4), ScreenedItems(torch.randn(10, 4)), 20)


def evaluate(model, config, valid, screened: bool):
    config["screened_ranking"] = screened
    trainer = BudgetTrainer(config, model)
    model.restore_user_e = model.restore_item_e = None
    return dict(trainer.evaluate(valid, load_best_model=False))


@pytest.mark.parametrize("model_name, sparsity", [("LightGCN", None), ("LightGCN", 0.95), ("NGCF", 0.9), ("NeuMF", 0.9)])
@pytest.mark.slow
def test_screened_evaluation_gives_recbole_path_metrics(model_name, sparsity, monkeypatch):
    """Validation metrics through the screen equal the float path's, digit for digit; NeuMF (not a dot
    product) keeps RecBole's path."""
    import recbole_bet.trainer as trainer_module

    config, train, valid, _ = build_data(model_name)
    model = get_model(model_name)(config, train._dataset).eval()
    if sparsity:
        users, items = training_frequencies(train._dataset, config)
        budget = Budget.from_sparsity(sparsity, model.d_max, len(users), len(items))
        model.apply_action(mixed_random(budget, users, items, rng=np.random.default_rng(0)))
    calls = []
    monkeypatch.setattr(trainer_module, "screened_topk", lambda *a, **kw: calls.append(1) or screened_topk(*a, **kw))

    plain = evaluate(model, config, valid, screened=False)
    assert not calls
    screened = evaluate(model, config, valid, screened=True)
    assert bool(calls) == (model_name != "NeuMF")
    assert screened == plain
    assert plain["ndcg@20"] > 0


@pytest.mark.parametrize("broken", ["missing", "wrong sums", "raises"])
@pytest.mark.slow
def test_a_torch_without_a_working_int_mm_keeps_the_float_path(broken, monkeypatch):
    """setup.py allows torch >= 2.0; the screen needs torch._int_mm on the CPU (tested on 2.13). Where it is
    missing, raises or sums wrongly, evaluation takes the float32 path, with the same metrics."""
    import recbole_bet.ranking as ranking
    import recbole_bet.trainer as trainer_module

    assert ranking.int_mm_available()  # this machine's torch
    config, train, valid, _ = build_data("LightGCN")
    model = get_model("LightGCN")(config, train._dataset).eval()
    expected = evaluate(model, config, valid, screened=True)
    try:
        with monkeypatch.context() as patch:
            if broken == "missing":
                patch.delattr(torch, "_int_mm")
            elif broken == "wrong sums":
                patch.setattr(torch, "_int_mm", lambda a, b: (a.long() @ b.long() + 1).int())
            else:
                patch.setattr(torch, "_int_mm", lambda a, b: (_ for _ in ()).throw(RuntimeError("no kernel")))
            ranking.int_mm_available.cache_clear()
            calls = []
            patch.setattr(trainer_module, "screened_topk", lambda *a, **kw: calls.append(1))
            assert not ranking.int_mm_available()
            assert evaluate(model, config, valid, screened=True) == expected and not calls
    finally:
        ranking.int_mm_available.cache_clear()
