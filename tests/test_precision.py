"""Low-precision values (issue 35): quantisation, int4 packing, straight-through gradients, the exported table equal
to what the model scores with, and the same seed giving the same run."""

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from recbole_bet.budget import QUANT_MAX, Action
from recbole_bet.embedding import MaskedEmbedding
from recbole_bet.export import export_table, load_table, read_table
from recbole_bet.methods.mr import mixed_random
from recbole_bet.model import get_model
from recbole_bet.precision import (
    fake_quantise, pack_int4, quantise_rows, row_scales, scales_from_stored, stored_scales, unpack_int4,
)
from recbole_bet.quick_start import run_recbole_bet, training_frequencies

from conftest import build_data


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(-8, 7), max_size=41))
def test_int4_packing_round_trips(values):
    q = np.array(values, dtype=np.int8)
    packed = pack_int4(q)
    assert packed.dtype == np.uint8 and len(packed) == (len(q) + 1) // 2
    assert np.array_equal(unpack_int4(packed, len(q)), q)


def test_int4_packing_puts_the_first_value_in_the_low_nibble():
    assert pack_int4(np.array([1, -1, 7])).tolist() == [0xF1, 0x07]


@pytest.mark.parametrize("dtype", ["int8", "int4"])
def test_rows_are_quantised_symmetrically_with_a_2_byte_scale_rounded_up(dtype):
    torch.manual_seed(0)
    values = torch.randn(500, 24) * torch.logspace(-9, 2, 500).unsqueeze(1)
    values[7] = 0  # a row with nothing kept
    qmax = QUANT_MAX[dtype]
    amax = values.abs().amax(1)
    normal = amax >= qmax * 2.0**-24  # the stored grid's normal range; below, subnormal scales
    assert normal.sum() > 300 and (~normal).sum() > 20
    scale = row_scales(values, dtype)
    assert torch.equal(scale, torch.from_numpy(scales_from_stored(stored_scales(scale.numpy()))))  # 2 bytes, exact
    assert torch.all(scale * qmax >= amax) and scale[7] == 1  # rounded up: nothing clipped
    q, stored_scale = quantise_rows(values, dtype)
    assert q.abs().max() <= qmax and torch.all(q.abs().amax(1)[normal] == qmax)
    dequantised = fake_quantise(values, dtype)
    assert torch.equal(q.float() * stored_scale.unsqueeze(1), dequantised)
    assert torch.all((dequantised - values).abs() <= scale.unsqueeze(1) / 2)
    # the table read back and quantised again is the same table (load_table relies on it), in the normal range
    assert torch.equal(fake_quantise(dequantised, dtype)[normal], dequantised[normal])
    # a row's values do not depend on the rows beside it (an embedding lookup gives the table's rows)
    assert torch.equal(fake_quantise(values[[3, 400]], dtype), dequantised[[3, 400]])


def test_float16_rounds_to_nearest_and_float32_is_untouched():
    values = torch.randn(10, 8)
    assert fake_quantise(values, "float32") is values
    assert torch.equal(fake_quantise(values, "float16"), values.half().float())


@pytest.mark.parametrize("dtype", ["float16", "int8", "int4"])
def test_straight_through_gradients_reach_the_kept_weights(dtype):
    """The gradient of a quantised table is the gradient of its float32 weights where they are kept: a forward pass
    that detached the quantised values (or its gradient) would leave them untrained."""
    torch.manual_seed(0)
    table = MaskedEmbedding(6, 8)
    table.set_sizes(torch.tensor([0, 8, 3, 1, 5, 8]))
    table.set_value_dtype(dtype)
    upstream = torch.randn(6, 8)
    (table.weight * upstream).sum().backward()
    assert torch.equal(table.full_weight.grad, upstream * table.mask)
    table.full_weight.grad = None
    idx = torch.tensor([[1, 2], [2, 5]])
    table(idx).sum().backward()
    expected = torch.zeros(6, 8).index_add_(0, idx.ravel(), table.mask[idx.ravel()])
    assert torch.equal(table.full_weight.grad, expected)
    table.full_weight.grad = None
    table.masked_columns(5).sum().backward()
    assert torch.equal(table.full_weight.grad[:, :5], table.mask[:, :5]) and not table.full_weight.grad[:, 5:].any()


def test_the_quantised_forward_is_what_lightgcn_trains_through(ml100k_lightgcn):
    config, train, _, _ = ml100k_lightgcn
    torch.manual_seed(0)
    model = get_model("LightGCN")(config, train._dataset)
    model.set_value_dtype("int4")
    model.apply_action(Action.uniform(5, model.n_users - 1, model.n_items - 1, model.d_max))
    batch = next(iter(train))
    model.calculate_loss(batch).backward()
    grad = model.user_embedding.full_weight.grad
    assert grad[:, :5].abs().sum() > 0 and not grad[:, 5:].any()
    assert torch.equal(model.get_ego_embeddings()[: model.n_users], fake_quantise(model.user_embedding.weight[:, :5], "int4"))


@pytest.mark.parametrize("model_name, dtype", [("LightGCN", "int8"), ("LightGCN", "int4"), ("LightGCN", "float16"), ("NeuMF", "int4")])
@pytest.mark.slow
def test_the_exported_table_scores_as_the_quantised_model(tmp_path, model_name, dtype):
    """Fake quantisation in the forward pass and the exported table agree: the file's float32 values are the model's
    dequantised weights, and a model that loads them (at float32 or at the file's precision) scores the same."""
    config, train, valid, _ = build_data(model_name)
    torch.manual_seed(0)
    model = get_model(model_name)(config, train._dataset).eval()
    users, items = training_frequencies(train._dataset, config)
    from recbole_bet.budget import Budget

    budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
    model.apply_action(mixed_random(budget, users, items, rng=np.random.default_rng(3)))
    model.set_value_dtype(dtype)
    batch = next(iter(valid))[0]
    with torch.no_grad():
        expected = model.full_sort_predict(batch).clone()
        float32_scores = (model.set_value_dtype("float32"), model.full_sort_predict(batch).clone())[1]
        model.set_value_dtype(dtype)
    assert not torch.equal(expected, float32_scores)  # the quantisation is seen by the scores
    export_table(model, tmp_path / "table.npz")

    meta, tables, _ = read_table(tmp_path / "table.npz")
    assert meta["value_dtype"] == dtype
    for name, table in tables.items():
        assert np.array_equal(table, model.get_submodule(name).weight.detach().numpy())
    for loaded_dtype in (None, "float32"):
        fresh = get_model(model_name)(config, train._dataset).eval()
        fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "embedding" not in k}, strict=False)
        load_table(tmp_path / "table.npz", fresh)
        if loaded_dtype:
            fresh.set_value_dtype(loaded_dtype)
        with torch.no_grad():
            assert torch.equal(fresh.full_sort_predict(batch), expected)
    export_table(fresh.set_value_dtype(dtype) or fresh, tmp_path / "again.npz")
    with np.load(tmp_path / "table.npz") as first, np.load(tmp_path / "again.npz") as second:
        assert all(np.array_equal(first[key], second[key]) for key in first.files)


@pytest.mark.slow
def test_same_seed_same_quantised_run_and_table(fast_config, tmp_path):
    """Two runs of ES at int4 under a byte budget: the same test result and the same table, byte for byte of data."""
    results = []
    for k in range(2):
        keys = dict(fast_config, method="es", budget_unit="bytes", value_dtype="int4", sparsity=0.9, epochs=2,
                    checkpoint_dir=str(tmp_path / f"run{k}"))
        results.append(run_recbole_bet("LightGCN", "ml-100k", config_dict=keys))
    assert results[0]["test"] == results[1]["test"] and results[0]["used_bytes"] == results[1]["used_bytes"]
    assert results[0]["used_bytes"] <= results[0]["budget_bytes"] and results[0]["value_dtype"] == "int4"
    with np.load(results[0]["export"]["path"]) as first, np.load(results[1]["export"]["path"]) as second:
        assert all(np.array_equal(first[key], second[key]) for key in first.files)
    assert json.loads(str(np.load(results[0]["export"]["path"])["meta"]))["value_dtype"] == "int4"
