"""The compressed table: payload size, and scores from the reloaded table equal the trained model's."""

import numpy as np
import pytest
import torch

from recbole_bet.methods.mr import mixed_random
from recbole_bet.budget import Budget
from recbole_bet.export import export_table, load_table, read_table
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies

from conftest import build_data

HEADER_BYTES = 4096  # zip and .npy headers of a handful of arrays, plus the JSON meta


@pytest.mark.parametrize("model_name", ["LightGCN", "NeuMF"])
@pytest.mark.slow
def test_export_round_trip(tmp_path, model_name):
    config, train, valid, _ = build_data(model_name)
    model = get_model(model_name)(config, train._dataset).eval()
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(0.95, model.d_max, len(users), len(items))
    action = mixed_random(budget, users, items, rng=np.random.default_rng(3))
    model.apply_action(action)
    batch = next(iter(valid))[0]
    with torch.no_grad():
        expected = model.full_sort_predict(batch).clone()

    info = export_table(model, tmp_path / "table.npz")
    n_rows = model.n_users + model.n_items  # padding rows included, size 0
    assert info["payload_bytes"] == 4 * action.params + n_rows
    assert info["payload_bytes"] < info["bytes"] < info["payload_bytes"] + HEADER_BYTES

    fresh = get_model(model_name)(config, train._dataset).eval()
    # the rest of the network (NeuMF's MLP) comes from the checkpoint, the tables from the file
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "embedding" not in k}, strict=False)
    load_table(tmp_path / "table.npz", fresh)
    assert fresh.current_action() == action
    with torch.no_grad():
        assert torch.equal(fresh.full_sort_predict(batch), expected)

    meta, tables, sizes = read_table(tmp_path / "table.npz")
    assert meta["d_max"] == model.d_max and set(tables) == set(model.budget_tables)
    for name, table in tables.items():
        assert np.array_equal(table, model.get_submodule(name).weight.detach().numpy())


def test_reading_a_file_that_is_not_a_table_is_a_clear_error(tmp_path):
    bogus = tmp_path / "x.npz"
    bogus.write_text("hello")
    with pytest.raises(ValueError, match="is not an exported recbole-bet table"):
        read_table(bogus)


@pytest.mark.parametrize("model_name, density, encoding", [("LightGCN", 0.05, "columns"), ("LightGCN", 0.5, "bitmap"), ("NeuMF", 0.1, "columns"), ("NeuMF", 0.3, "bitmap")])
@pytest.mark.slow
def test_element_mask_export_reloads_to_the_same_scores(tmp_path, model_name, density, encoding):
    """PEP's and magnitude pruning's layout: single weights kept, stored with the smaller index."""
    from recbole_bet.budget import ElementMask

    config, train, valid, _ = build_data(model_name)
    model = get_model(model_name)(config, train._dataset).eval()
    rng = np.random.default_rng(1)
    mask = ElementMask(rng.random((model.n_users - 1, model.d_max)) < density, rng.random((model.n_items - 1, model.d_max)) < density, model.d_max)
    model.apply_element_mask(mask)
    batch = next(iter(valid))[0]
    with torch.no_grad():
        expected = model.full_sort_predict(batch).clone()
    info = export_table(model, tmp_path / "table.npz")
    n_rows = model.n_users + model.n_items
    widths = [model.get_submodule(n).embedding_dim for n in model.budget_tables]
    index = {"bitmap": sum(w // 8 for w in widths) // 2 * n_rows, "columns": mask.params + len(widths) // 2 * n_rows}[encoding]
    assert info["index_bytes"] == index and info["payload_bytes"] == 4 * mask.params + n_rows + index
    assert info["kept_params"] == mask.params

    fresh = get_model(model_name)(config, train._dataset).eval()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "embedding" not in k}, strict=False)
    load_table(tmp_path / "table.npz", fresh)
    with torch.no_grad():
        assert torch.equal(fresh.full_sort_predict(batch), expected)
    for name in model.budget_tables:
        assert torch.equal(fresh.get_submodule(name).element_mask, model.get_submodule(name).element_mask)


def test_pruned_rows_export_and_reload(tmp_path):
    """OptEmbed's layout: one width per field, pruned rows at size 0."""
    from recbole_bet.methods.optembed import optembed_action

    config, train, valid, _ = build_data("LightGCN")
    model = get_model("LightGCN")(config, train._dataset).eval()
    rng = np.random.default_rng(2)
    action = optembed_action(rng.random(model.n_users - 1) < 0.7, rng.random(model.n_items - 1) < 0.4, (12, 20), model.d_max)
    model.apply_action(action)
    batch = next(iter(valid))[0]
    with torch.no_grad():
        expected = model.full_sort_predict(batch).clone()
    info = export_table(model, tmp_path / "table.npz")
    assert info["payload_bytes"] == 4 * action.params + model.n_users + model.n_items and info["index_bytes"] == 0
    fresh = get_model("LightGCN")(config, train._dataset).eval()
    load_table(tmp_path / "table.npz", fresh)
    assert fresh.current_action() == action
    with torch.no_grad():
        assert torch.equal(fresh.full_sort_predict(batch), expected)
