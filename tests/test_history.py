"""Evaluation batches gathered by numpy are RecBole's batches, tensor for tensor, and give RecBole's metrics."""

import numpy as np
import torch
from recbole.data.dataloader import FullSortEvalDataLoader
from recbole.trainer import Trainer

from recbole_bet.history import IndexedCollate, UserItemIndex, index_user_items
from recbole_bet.model import get_model
from recbole_bet.trainer import BudgetTrainer

from conftest import build_data


def test_gather_takes_each_users_items_in_order():
    index = UserItemIndex(np.array([None, torch.tensor([5, 3]), torch.tensor([], dtype=torch.int64), torch.tensor([7])], dtype=object))
    rows, items = index.gather(np.array([3, 1, 2, 1]))
    assert rows.tolist() == [0, 1, 1, 3, 3] and items.tolist() == [7, 5, 3, 5, 3]
    assert rows.dtype == items.dtype == torch.int64


def test_indexed_batches_equal_recboles_batches():
    config, train, valid, test = build_data("LightGCN", eval_batch_size=97 * 1683)  # 97 users a batch: 10 batches
    for loader in (valid, test):
        ours = IndexedCollate(loader)
        batches = [list(range(start, min(start + 97, loader.sample_size))) for start in range(0, loader.sample_size, 97)]
        assert len(batches) > 2
        for index in batches:
            theirs = FullSortEvalDataLoader.collate_fn(loader, index)
            mine = ours(index)
            assert torch.equal(mine[0][loader.uid_field], theirs[0][loader.uid_field])
            for got, expected in zip((*mine[1], mine[2], mine[3]), (*theirs[1], theirs[2], theirs[3])):
                assert got.dtype == expected.dtype and torch.equal(got, expected)
        assert ours(batches[0])[1][1].numel() > 0  # histories are not empty: the comparison means something
    index_user_items(train)  # a training loader is left alone
    assert not isinstance(train.collate_fn, IndexedCollate)


def test_budget_trainer_evaluates_with_the_index_and_recboles_metrics():
    config, train, valid, _ = build_data("LightGCN", eval_batch_size=50 * 1683)
    model = get_model("LightGCN")(config, train._dataset).eval()
    expected = Trainer(config, model).evaluate(valid, load_best_model=False)
    assert not isinstance(valid.collate_fn, IndexedCollate)
    model.restore_user_e = model.restore_item_e = None
    got = BudgetTrainer(config, model).evaluate(valid, load_best_model=False)
    assert isinstance(valid.collate_fn, IndexedCollate)
    assert got == expected and expected["ndcg@20"] > 0
