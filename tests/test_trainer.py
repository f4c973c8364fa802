"""BudgetTrainer.load_best_model: the best checkpoint scores the test, for our models and RecBole's own."""

import numpy as np
import pytest
import torch
from recbole.model.general_recommender import LightGCN as RecBoleLightGCN

from recbole_bet.model import get_model
from recbole_bet.trainer import BudgetTrainer

from conftest import build_data


@pytest.mark.parametrize("ours", [True, False], ids=["recbole-bet LightGCN", "RecBole LightGCN"])
@pytest.mark.slow
def test_loaded_checkpoint_scores_with_its_own_weights_not_a_stale_cache(ours, tmp_path):
    config, train, valid, _ = build_data("LightGCN")
    config["checkpoint_dir"] = str(tmp_path)
    model = (get_model("LightGCN") if ours else RecBoleLightGCN)(config, train._dataset)
    trainer = BudgetTrainer(config, model)
    trainer.saved_model_file = str(tmp_path / "best.pth")
    best = trainer.evaluate(valid, load_best_model=False)  # fills the full-ranking cache
    trainer._save_checkpoint(0)  # as fit does after a new best validation

    # A later epoch moves the weights (and its training step drops the cache, as RecBole's
    # calculate_loss does); its validation fills the cache again.
    with torch.no_grad():
        users = model.user_embedding
        weight = users.full_weight if ours else users.weight
        weight.copy_(torch.randn(weight.shape, generator=torch.Generator().manual_seed(0)))
    model.restore_user_e = model.restore_item_e = None
    later = trainer.evaluate(valid, load_best_model=False)
    assert later != best

    trainer.load_best_model()
    assert trainer.evaluate(valid, load_best_model=False) == best


def test_runs_started_in_the_same_second_get_their_own_checkpoint_names(tmp_path, monkeypatch):
    import numpy as np

    import recbole.trainer.trainer as recbole_trainer
    from recbole_bet.budget import Budget
    from recbole_bet.methods.bet.settings import BetSettings
    from recbole_bet.quick_start import training_frequencies
    from recbole_bet.methods.bet.search import BetTrainer

    monkeypatch.setattr(recbole_trainer, "get_local_time", lambda: "Nov-25-2026_12-00-00")  # one second for all
    config, train, _, _ = build_data("LightGCN")
    config["checkpoint_dir"] = str(tmp_path)
    model = get_model("LightGCN")(config, train._dataset)
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))

    def bet():
        return BetTrainer(config, model, BetSettings.from_config(config), budget, users, items, np.random.default_rng(0))

    plain = [BudgetTrainer(config, model).saved_model_file for _ in range(3)]
    searches = [str(bet().run_name) for _ in range(2)]
    stem = str(tmp_path / "LightGCN-Nov-25-2026_12-00-00")
    assert plain == [f"{stem}.pth", f"{stem}-2.pth", f"{stem}-3.pth"]
    assert searches == [stem, f"{stem}-2"]  # their files are <run_name>-pretrain.pth, -retrain0.pth, ...
    assert (tmp_path / "LightGCN-Nov-25-2026_12-00-00-population.npz").is_file()


def test_a_kept_best_checkpoint_is_never_rewritten_under_it(tmp_path, monkeypatch):
    """KeptEpochs.keep keeps the best checkpoint as a hard link, so the next best must replace the checkpoint file,
    not rewrite it: the kept epoch stays whole, and a kill inside RecBole's write leaves the checkpoint as it was."""
    from recbole_bet.resume import RunState

    config, train, _, _ = build_data("LightGCN")
    config["checkpoint_dir"] = str(tmp_path)
    model = get_model("LightGCN")(config, train._dataset)
    trainer = BudgetTrainer(config, model)
    trainer._save_checkpoint(0)
    state = RunState(tmp_path / "unfinished-run")
    state.folder.mkdir()
    state.keep_file("final-epochs-best", trainer.saved_model_file)
    kept = state.kept_file("final-epochs-best")
    first = kept.read_bytes()

    with torch.no_grad():
        model.user_embedding.full_weight.add_(1.0)
    trainer._save_checkpoint(1)  # the next best
    assert kept.read_bytes() == first
    assert torch.load(trainer.saved_model_file, weights_only=False)["epoch"] == 1

    def killed_while_writing(obj, path, **kwargs):
        open(path, "wb").write(b"half a checkpo")
        raise KeyboardInterrupt  # stands for kill -9 in the middle of torch.save

    monkeypatch.setattr(torch, "save", killed_while_writing)
    with pytest.raises(KeyboardInterrupt):
        trainer._save_checkpoint(2)
    assert torch.load(trainer.saved_model_file, weights_only=False)["epoch"] == 1


def recall_ndcg_per_user(model, eval_data, users, ks=(5, 10, 20)):
    """Each user's mean of Recall@k and NDCG@k (Eq. 13), from the model's full-ranking scores by brute force:
    the reference for ``evaluate_rows``, written apart from RecBole's collector."""
    with torch.no_grad():
        scores = model.full_sort_predict({model.USER_ID: torch.as_tensor(users)}).view(len(users), -1).clone()
    scores[:, 0] = -torch.inf  # the padding item
    out = []
    for row, user in enumerate(users):
        history = eval_data.uid2history_item[user]
        if history is not None:
            scores[row, history] = -torch.inf
        positives = set(eval_data.uid2positive_item[user].tolist())
        top = torch.topk(scores[row], max(ks)).indices.tolist()
        hits = np.array([item in positives for item in top], dtype=np.float64)
        discount = 1 / np.log2(np.arange(2, max(ks) + 2))
        parts = []
        for k in ks:
            parts += [hits[:k].sum() / len(positives), (hits[:k] * discount[:k]).sum() / discount[: min(len(positives), k)].sum()]
        out.append(np.mean(parts))
    return np.array(out)


def test_evaluate_rows_gives_each_user_its_own_quality(ml100k_lightgcn):
    """Row ``i`` of ``evaluate_rows`` is user ``i + 1``'s quality (NaN for a user without validation positives), as a
    brute-force ranking of that user's scores gives it; with ``user_ids``, those users' in that order."""
    config, train, valid, _ = ml100k_lightgcn
    torch.manual_seed(3)
    model = get_model("LightGCN")(config, train._dataset)
    trainer = BudgetTrainer(config, model)
    result, quality = trainer.evaluate_rows(valid)
    assert quality.shape == (model.n_users - 1,)
    evaluated = set(np.asarray(valid.uid_list).tolist())
    assert [u for u in range(1, model.n_users) if np.isnan(quality[u - 1])] == sorted(set(range(1, model.n_users)) - evaluated)
    users = np.array(sorted(evaluated))
    expected = recall_ndcg_per_user(model, valid, users)
    assert len(set(np.round(expected, 6))) > 50  # users differ: a row given to its neighbour would show
    assert quality[users - 1] == pytest.approx(expected, abs=1e-9)
    metrics = [result[f"{m}@{k}"] for m in ("recall", "ndcg") for k in (5, 10, 20)]
    assert np.nanmean(quality) == pytest.approx(np.mean(metrics), abs=5e-5)  # RecBole rounds to 4 decimals
    some = np.array([users[7], users[0], users[3]])
    assert trainer.evaluate_rows(valid, some)[1] == pytest.approx(expected[[7, 0, 3]], abs=1e-9)


def test_row_qualities_give_an_item_the_mean_of_its_training_users_with_a_quality():
    from types import SimpleNamespace

    from recbole_bet.methods.base import row_qualities

    users = np.array([0.2, np.nan, 0.6])  # user 1 (row 1) has no validation positives
    trainer = SimpleNamespace(evaluate_rows=lambda valid: ({"ndcg@20": 0.4}, users))
    context = SimpleNamespace(valid_data=None, item_frequency=np.zeros(4))
    # (user row, item row) training pairs: item 0 bought by users 0 and 2, item 1 by user 1 only, item 2 by 0 and 1
    pairs = (np.array([0, 2, 1, 0, 1]), np.array([0, 0, 1, 2, 2]))
    result, rows = row_qualities(trainer, context, pairs)
    assert result == {"ndcg@20": 0.4}
    assert rows[:3] == pytest.approx([0.2, np.nan, 0.6], nan_ok=True)
    assert rows[3:].tolist() == pytest.approx([0.4, 0.0, 0.2, 0.0])  # item 3: no buyers
