"""DSL: exactly the budget kept after every prune-and-regrow step, the paper's pruning and growth rules and schedule,
pruned weights kept at zero with their optimiser state, and a run end to end."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recbole_bet.budget import Budget
from recbole_bet.methods.dsl import DslSettings, DslTrainer, DynamicSparsity, model_mask, prune_and_regrow, random_mask
from recbole_bet.model import get_model
from recbole_bet.quick_start import run_recbole_bet, training_frequencies
from recbole_bet.resume import KeptEpochs
from recbole_bet.trainer import BudgetTrainer

from conftest import build_data


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 30), st.integers(1, 16), st.floats(0, 1), st.sampled_from(["gradient", "random"]), st.integers(0, 2**32 - 1))
def test_prune_and_regrow_keeps_the_count_prunes_the_smallest_and_grows_the_largest_gradients(rows, width, share, growth, seed):
    rng = np.random.default_rng(seed)
    kept = rng.random((rows, width)) < rng.uniform(0.05, 0.95)
    weights, gradients = rng.normal(size=(rows, width)), rng.normal(size=(rows, width))
    k = int(share * kept.sum())
    new = prune_and_regrow(kept, weights, gradients if growth == "gradient" else None, k, np.random.default_rng(seed))
    assert new.sum() == kept.sum()  # a mutant that prunes without regrowing loses k weights here
    w, g = np.abs(weights.ravel()), np.abs(gradients.ravel())
    pruned = sorted(np.flatnonzero(kept.ravel()), key=lambda i: (w[i], i))[:k]  # the k smallest kept, earlier first
    after_prune = kept.ravel().copy()
    after_prune[pruned] = False
    assert np.all(new.ravel()[after_prune])  # what pruning left stays
    if growth == "gradient":
        grown = sorted(np.flatnonzero(~after_prune), key=lambda i: (-g[i], i))[:k]  # the k largest gradients left
        expected = after_prune.copy()
        expected[grown] = True
        assert np.array_equal(new.ravel(), expected)


def test_the_update_share_anneals_by_a_cosine_and_updates_stop_at_the_end():
    budget = Budget.from_sparsity(0.9, 16, 50, 50)  # 160 weights
    sparsity = DynamicSparsity(DslSettings(dsl_update_ratio=0.5, dsl_update_interval=4, dsl_end_epoch=2), budget, 10, 0)
    assert sparsity.end == 20 and sparsity.moved(0) == 80 and sparsity.moved(10) == 40 and sparsity.moved(20) == 0
    due = []
    for _ in range(30):
        due.append(sparsity.due())
        sparsity.step += 1
    assert [i + 1 for i, d in enumerate(due) if d] == [4, 8, 12, 16]  # every 4th step, before step 20
    state = sparsity.state_dict()
    copy = DynamicSparsity(DslSettings(), budget, 10, 99)
    copy.load_state_dict(state)
    assert copy.step == 30 and copy.rng.integers(10**9) == sparsity.rng.integers(10**9)


def test_random_mask_keeps_exactly_the_budget():
    budget = Budget.from_sparsity(0.8, 8, 30, 20)
    mask = random_mask(budget, np.random.default_rng(0))
    assert mask.check(budget).params == budget.params == 80
    assert not np.array_equal(mask.user_mask, random_mask(budget, np.random.default_rng(1)).user_mask)


@pytest.mark.parametrize("model_name, growth", [("LightGCN", "gradient"), ("NeuMF", "random"), ("NGCF", "gradient")])
@pytest.mark.slow
def test_every_update_keeps_exactly_the_budget_and_pruned_weights_stay_zero(model_name, growth):
    config, train, _, _ = build_data(model_name)
    model = get_model(model_name)(config, train._dataset)
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
    random_mask(budget, np.random.default_rng(0)).apply_to(model)
    with torch.no_grad():
        for name in model.budget_tables:
            model.get_submodule(name).full_weight.mul_(model.get_submodule(name).mask)
    settings_ = DslSettings(dsl_update_ratio=0.5, dsl_update_interval=3, dsl_end_epoch=2, dsl_growth=growth)
    sparsity = DynamicSparsity(settings_, budget, len(train), 0)
    trainer = DslTrainer(config, model, sparsity)
    seen = []
    explore = trainer._explore

    def checked(optimizer, args, kwargs):
        before = model_mask(model) if trainer.lifted is not None else None
        explore(optimizer, args, kwargs)
        if before is None:
            return
        after = model_mask(model)
        seen.append(int((after.user_mask != before.user_mask).sum() + (after.item_mask != before.item_mask).sum()))
        assert after.params == budget.attainable  # after every prune-and-regrow step, exactly the budget
        for name in model.budget_tables:
            table = model.get_submodule(name)
            off = ~table.element_mask
            assert torch.all(table.full_weight[off] == 0) and torch.all(table.full_weight.grad[off] == 0)
            for value in optimizer.state.get(table.full_weight, {}).values():
                if torch.is_tensor(value) and value.shape == table.full_weight.shape:
                    assert torch.all(value[off] == 0)

    trainer._explore = checked  # the optimiser's hook calls whatever _explore is now
    for epoch in range(2):
        trainer._train_epoch(train, epoch)
    steps = 2 * len(train)
    assert len(seen) == len(range(3, min(steps + 1, sparsity.end), 3)) and len(seen) >= 3
    assert all(moved > 0 for moved in seen[:-1])  # the masks move, then less and less
    assert seen[0] >= seen[-1]
    assert model_mask(model).params == budget.attainable
    for name in model.budget_tables:  # after training, pruned weights are still exactly zero
        table = model.get_submodule(name)
        assert torch.all(table.full_weight[~table.element_mask] == 0)


BUDGET = 33600


def run(model, fast_config, **keys):
    config = dict(fast_config, epochs=2, sparsity=0.9, method="dsl", dsl_update_interval=4, dsl_end_epoch=2, **keys)
    return run_recbole_bet(model, "ml-100k", config_dict=config)


@pytest.mark.parametrize("model", ["LightGCN", "NGCF", "NeuMF"])
@pytest.mark.slow
def test_dsl_runs_at_exactly_the_budget_and_records_its_updates(model, fast_config, tmp_path):
    result = run(model, fast_config, result_file=str(tmp_path / "r.json"))
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(result))
    assert result["used_params"] == result["budget_params"] == BUDGET and result["sizes"]["layout"] == "element"
    updates = result["dsl"]["updates"]
    assert len(updates) >= 2 and all(u["kept"] == BUDGET for u in updates) and updates[0]["moved"] > updates[-1]["moved"] > 0
    assert result["export"]["kept_params"] == BUDGET and result["export"]["index_bytes"] > 0


@pytest.mark.slow
def test_dsl_same_seed_same_result(fast_config, tmp_path):
    first, second = (run("LightGCN", dict(fast_config, checkpoint_dir=str(tmp_path / f"s{i}"))) for i in range(2))
    assert first["test"] == second["test"] and first["dsl"]["updates"] == second["dsl"]["updates"]
    with np.load(first["export"]["path"]) as a, np.load(second["export"]["path"]) as b:
        assert all(np.array_equal(a[k], b[k]) for k in a.files)
    other = run("LightGCN", dict(fast_config, checkpoint_dir=str(tmp_path / "s3")), seed=7)
    assert other["test"] != first["test"]


class Killed(Exception):
    """Stands for kill -9 between two statements."""


@pytest.mark.slow
def test_a_killed_dsl_run_goes_on_with_its_schedule_and_ends_as_the_uninterrupted_one(fast_config, tmp_path, monkeypatch):
    """The prune-and-regrow schedule (steps taken, growth stream, updates) is kept with each epoch: the rerun of a run
    killed after its second epoch trains only the third and ends bit for bit where the whole run did."""
    keys = dict(fast_config, epochs=3, sparsity=0.9, method="dsl", dsl_update_interval=5, dsl_end_epoch=3, dsl_growth="random")
    whole = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, checkpoint_dir=str(tmp_path / "whole")))
    real_keep = KeptEpochs.keep

    def keep(self, trainer, epoch):
        real_keep(self, trainer, epoch)
        if self.unit == "sparsity0.9/final-epochs" and epoch == 1:
            raise Killed()

    with monkeypatch.context() as patch:
        patch.setattr(KeptEpochs, "keep", keep)
        with pytest.raises(Killed):
            run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    epochs, real_epoch = [], BudgetTrainer._train_epoch
    monkeypatch.setattr(BudgetTrainer, "_train_epoch", lambda self, data, epoch, *a, **kw: epochs.append(epoch) or real_epoch(
        self, data, epoch, *a, **kw))
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert epochs == [2] and len(whole["curve"]) == 3
    assert (again["test"], again["valid"], again["dsl"]["updates"]) == (whole["test"], whole["valid"], whole["dsl"]["updates"])
