"""BudgetTrainer.load_best_model: the best checkpoint scores the test, for our models and RecBole's own."""

import pytest
import torch
from recbole.model.general_recommender import LightGCN as RecBoleLightGCN

from recbole_bet.model import get_model
from recbole_bet.trainer import BudgetTrainer

from conftest import build_data


@pytest.mark.parametrize("ours", [True, False], ids=["recbole-bet LightGCN", "RecBole LightGCN"])
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
