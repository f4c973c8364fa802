"""Byte budgets (issue 35): the arithmetic alone, then the exported file against it over random tables, dtypes and
layouts, then bad input."""

import io
import json
import os
from dataclasses import replace
from fractions import Fraction

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from recbole_bet.budget import (
    VALUE_DTYPES, Action, Budget, ElementMask, Storage, budget_bytes, fit_to_total, index_itemsize, keep_largest,
)
from recbole_bet.errors import BudgetError
from recbole_bet.export import container_bytes, export_table, read_table_masks, table_storage
from recbole_bet.model.budgeted import BudgetedRecommender

from test_cli import run_cli


class Tables(BudgetedRecommender, nn.Module):
    """Just budgeted tables: ``widths`` tables per field (a row of a field is its tables side by side, as NeuMF's)."""

    def __init__(self, n_users: int, n_items: int, widths: list[int]):
        nn.Module.__init__(self)
        self.n_users, self.n_items = n_users + 1, n_items + 1  # RecBole's padding row 0
        self.budget_tables = {}
        for k, width in enumerate(widths):
            for field, rows in (("user", self.n_users), ("item", self.n_items)):
                setattr(self, f"{field}_table{k}", nn.Embedding(rows, width))
                self.budget_tables[f"{field}_table{k}"] = field
        self.inject_budget_tables()


def storage_of(layout="prefix", tables=(("user", 8, 4), ("item", 8, 6)), container=100) -> Storage:
    return Storage(layout, sum(w for f, w, _ in tables if f == "user"), tables, tuple((d, container) for d in VALUE_DTYPES))


# ---------------------------------------------------------------------------
# the arithmetic


def test_budget_bytes_is_the_share_of_the_float32_table_typed():
    assert budget_bytes(0.9, 128, 2625) == 134400  # 0.1 * 4 * 128 * 2625, exactly
    assert budget_bytes(0.7, 3, 7) == 25  # floor(0.3 * 84) = floor(25.2); binary 0.7 would not change it, 0.3 * 84 is exact
    assert budget_bytes(0.99, 128, 17227) == int(Fraction(1, 100) * 4 * 128 * 17227)


def test_bytes_for_counts_values_scales_sizes_and_index():
    # 3 users + 5 items (padding: 4 and 6 rows), d_max 8, a container of 100 bytes
    prefix = storage_of()
    assert prefix.bytes_for(20, "float32") == 100 + 10 + 80
    assert prefix.bytes_for(20, "float16") == 100 + 10 + 40
    assert prefix.bytes_for(20, "int8") == 100 + 10 + 2 * 10 + 20  # one float16 scale a row, padding too
    assert prefix.bytes_for(21, "int4") == 100 + 10 + 2 * 10 + 11  # (21 + 2 tables) // 2: each table's last nibble
    element = storage_of("element")
    # bitmap 10 rows x 1 byte; columns: one byte a kept value + one count a row
    assert element.index_bytes(3) == min(10, 3 + 10) and element.index_bytes(0) == 10
    wide = storage_of("element", (("user", 300, 4), ("item", 300, 6)))
    assert index_itemsize(300) == 2 and wide.index_bytes(5) == min(10 * 38, 5 * 2 + 10 * 2)


@given(
    total=st.integers(0, 2000), dtype=st.sampled_from(VALUE_DTYPES), layout=st.sampled_from(["prefix", "element"]),
    widths=st.lists(st.integers(1, 40), min_size=1, max_size=2),
)
def test_params_for_is_the_most_values_that_fit(total, dtype, layout, widths):
    tables = tuple((f, w, r) for w in widths for f, r in (("user", 4), ("item", 6)))
    storage = storage_of(layout, tables)
    kept = storage.params_for(total, dtype)
    assert 0 <= kept <= storage.max_kept
    if kept > 0:
        assert storage.bytes_for(kept, dtype) <= total
    if kept < storage.max_kept:
        assert storage.bytes_for(kept + 1, dtype) > total


def test_from_bytes_keeps_more_parameters_at_lower_precision_and_refuses_too_few_bytes():
    storage = storage_of(tables=(("user", 128, 944), ("item", 128, 1683)), container=2814)
    budgets = {d: Budget.from_bytes(0.9, 128, 943, 1682, storage, d) for d in VALUE_DTYPES}
    assert [budgets[d].params for d in VALUE_DTYPES] == sorted(budgets[d].params for d in VALUE_DTYPES)
    assert budgets["int8"].params == 134400 - 2814 - 2627 - 2 * 2627  # the ES run of ml-100k at int8 fills it exactly
    assert budgets["int8"].params_for("int4") == budgets["int4"].params and budgets["int8"].unit == "bytes"
    with pytest.raises(BudgetError, match=r"sparsity=0.999 leaves 1344 bytes for 2625 user and item rows.*allowed: sparsity <= "):
        Budget.from_bytes(0.999, 128, 943, 1682, storage, "int4")
    with pytest.raises(BudgetError, match=r"one float32 value per row needs 15941 bytes .*; allowed: sparsity <= 0.988139 at float32, or <= 0.991065 at int4"):
        Budget.from_bytes(0.99, 128, 943, 1682, storage, "float32")
    with pytest.raises(BudgetError, match="value_dtype='int3'; allowed: float32, float16, int8, int4"):
        Budget.from_bytes(0.9, 128, 943, 1682, storage, "int3")


def test_a_layout_over_its_dtypes_budget_is_refused():
    storage = storage_of(tables=(("user", 8, 4), ("item", 8, 6)), container=0)
    budget = Budget.from_bytes(0.5, 8, 3, 5, storage, "float32")  # 128 bytes - 10 sizes: 29 float32 values
    assert budget.params == 29 and budget.params_for("int8") == 64  # capped at the full table's 64
    Action.uniform(3, 3, 5, 8).check(budget)  # 24 float32 values
    fp32 = Action(np.full(3, 8, np.int16), np.full(5, 1, np.int16), 8, value_dtype="float32")  # 29
    fp32.check(budget)
    with pytest.raises(BudgetError, match="keeps 64 parameters, over the budget of 29$"):
        Action.uniform(8, 3, 5, 8).check(budget)
    full = np.full(3, 8, np.int16), np.full(5, 8, np.int16)
    with pytest.raises(BudgetError, match="keeps 64 parameters, over the budget of 59 at float16"):
        Action(*full, 8, value_dtype="float16").check(budget)
    Action(*full, 8, value_dtype="int8").check(budget)


# ---------------------------------------------------------------------------
# the file against the budget


def random_layout(model, kept: int, layout: str, rng):
    n_users, n_items, d_max = model.n_users - 1, model.n_items - 1, model.d_max
    if layout == "prefix":
        drawn = rng.integers(1, d_max + 1, n_users + n_items)
        sizes = fit_to_total(drawn, kept, d_max, rng.permutation(n_users + n_items))
        return Action(sizes[:n_users], sizes[n_users:], d_max)
    flat = np.zeros((n_users + n_items) * d_max, dtype=bool)
    flat[rng.choice(flat.size, kept, replace=False)] = True
    mask = flat.reshape(n_users + n_items, d_max)
    return ElementMask(mask[:n_users], mask[n_users:], d_max)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_users=st.integers(1, 25), n_items=st.integers(1, 25), widths=st.sampled_from([[8], [5], [64, 64], [3, 9], [300]]),
    dtype=st.sampled_from(VALUE_DTYPES), layout=st.sampled_from(["prefix", "element"]), room=st.floats(0, 1),
    seed=st.integers(0, 2**16),
)
def test_the_exported_file_never_exceeds_the_byte_budget(n_users, n_items, widths, dtype, layout, room, seed):
    """Over random tables (one or two per field, narrow to wider than 255), dtypes and layouts: the file of exactly
    the budget's kept values fits the bytes, to the byte for a prefix layout (but int4's last nibbles), and reads back
    as the model's dequantised weights."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = Tables(n_users, n_items, widths)
    storage = table_storage(model, layout)
    n_rows = n_users + n_items
    low, high = storage.bytes_for(n_rows, dtype), storage.bytes_for(storage.max_kept, dtype)
    total = int(low + room * (high - low))
    kept = storage.params_for(total, dtype)
    assert n_rows <= kept <= storage.max_kept
    random_layout(model, kept, layout, rng).apply_to(model)
    model.set_value_dtype(dtype)
    with torch.no_grad():
        for table in model.masked_tables("user") + model.masked_tables("item"):
            table.full_weight.mul_(rng.uniform(0.01, 5))  # scales of every size
    buffer = io.BytesIO()
    info = export_table(model, buffer)
    assert info["kept_params"] == kept
    assert info["bytes"] == len(buffer.getvalue()) <= storage.bytes_for(kept, dtype) <= total
    if layout == "prefix" and dtype != "int4":
        assert info["bytes"] == storage.bytes_for(kept, dtype)  # exact to the byte
    elif layout == "prefix":
        assert storage.bytes_for(kept, dtype) - info["bytes"] <= len(widths)  # at most half a byte a table, rounded
    buffer.seek(0)
    meta, tables, _, masks = read_table_masks(buffer)
    for name, table in tables.items():
        assert np.array_equal(table, model.get_submodule(name).weight.detach().numpy()), name


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    n_users=st.integers(1, 25), n_items=st.integers(1, 25), widths=st.sampled_from([[8], [64, 64], [3, 9], [300]]),
    dtype=st.sampled_from(VALUE_DTYPES), sparsity=st.sampled_from([0.5, 0.8, 0.9, 0.95]), skew=st.floats(0, 6),
    seed=st.integers(0, 2**16),
)
def test_an_element_mask_fills_the_bytes_its_indices_leave(n_users, n_items, widths, dtype, sparsity, skew, seed):
    """Magnitude pruning's and PEP's mask under a byte budget keeps the most of its ranking whose file fits, for the
    indices the tables actually take: never fewer than the budget's parameters, the file within the bytes, one more
    weight over them; the count of the file is exact but for the container."""
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    model = Tables(n_users, n_items, widths)
    storage = table_storage(model, "element")
    d_max = model.d_max
    try:
        budget = Budget.from_bytes(sparsity, d_max, n_users, n_items, storage, dtype)
    except BudgetError:
        return  # too few bytes for one value a row: refused elsewhere
    scores = [rng.random((n_users, d_max)) * np.exp(skew), rng.random((n_items, d_max))]  # users ranked first as skew grows
    keep = budget.element_keep(scores)
    assert budget.attainable <= keep <= budget.n_rows * d_max
    mask = ElementMask(*keep_largest(scores, keep), d_max)
    mask.check(budget)
    mask.apply_to(model)
    model.set_value_dtype(dtype)
    buffer = io.BytesIO()
    info = export_table(model, buffer)
    counted = storage.element_bytes(storage.element_kept(mask.user_mask, mask.item_mask), dtype)
    assert info["bytes"] <= counted <= budget.bytes
    assert info["payload_bytes"] == counted - dict(storage.containers)[dtype]  # exact but for the container's bound
    if keep < budget.n_rows * d_max:
        more = ElementMask(*keep_largest(scores, keep + 1), d_max)
        with pytest.raises(BudgetError, match=r"element layout keeps \d+ parameters in \d+ bytes, over the byte budget of"):
            more.check(budget)


def test_an_element_mask_keeps_more_than_the_bound_where_one_field_is_dense():
    """gowalla-s's shape in small: at 95% of the bytes at int4, the budget's parameters bound both tables' indices by
    their columns; a mask whose items keep few weights and users many can give the users a bitmap and keep more."""
    n_users, n_items = 40, 200
    model = Tables(n_users, n_items, [128])
    storage = table_storage(model, "element")
    budget = Budget.from_bytes(0.95, 128, n_users, n_items, storage, "int4")
    scores = [np.full((n_users, 128), 2.0), np.random.default_rng(0).random((n_items, 128))]
    keep = budget.element_keep(scores)
    assert keep > budget.attainable * 1.1
    mask = ElementMask(*keep_largest(scores, keep), 128)
    assert mask.params > budget.params
    mask.check(budget)  # over the parameters, within the bytes
    with pytest.raises(BudgetError, match="over the budget of"):
        ElementMask(*keep_largest(scores, keep), 128).check(replace(budget, unit="params"))


@pytest.mark.parametrize("dtype", VALUE_DTYPES)
@pytest.mark.parametrize("encoding", ["bitmap", "columns"])
def test_the_container_is_the_file_less_the_arrays(dtype, encoding):
    """A file's size is the container (zip and .npy headers, meta) plus the arrays' data, whichever index it holds;
    the storage's container is an upper bound over both indices."""
    torch.manual_seed(0)
    model = Tables(30, 40, [64, 64])
    density = 0.05 if encoding == "columns" else 0.6
    rng = np.random.default_rng(0)
    ElementMask(rng.random((30, 128)) < density, rng.random((40, 128)) < density, 128).apply_to(model)
    model.set_value_dtype(dtype)
    buffer = io.BytesIO()
    info = export_table(model, buffer)
    meta, _, _, _ = read_table_masks(io.BytesIO(buffer.getvalue()))
    assert set(meta["encoding"].values()) == {encoding}
    with np.load(io.BytesIO(buffer.getvalue())) as npz:
        arrays = {key: npz[key] for key in npz.files}
    assert info["bytes"] == container_bytes(arrays) + info["payload_bytes"]
    assert info["bytes"] - info["payload_bytes"] <= dict(table_storage(model, "element").containers)[dtype]


def test_only_prefix_element_and_shared_layouts_are_counted():
    from recbole_bet.errors import ConfigError

    with pytest.raises(ConfigError, match="budget_unit=bytes: the export counts prefix, element and shared layouts, not 'hash'"):
        table_storage(Tables(2, 2, [4]), "hash")
    with pytest.raises(BudgetError, match="a shared layout, and only it, names its partitions"):
        table_storage(Tables(2, 2, [4]), "shared")


# ---------------------------------------------------------------------------
# bad input: one clear line


@pytest.mark.parametrize(
    "args, message",
    [
        (["--value_dtype=int3"], "value_dtype='int3'; allowed: float32, float16, int8, int4"),
        (["--budget_unit=kilobytes"], "budget_unit='kilobytes'; allowed: params, bytes"),
        (["--method=es", "--budget_unit=bytes", "--value_dtype=int4", "--sparsity=0.999"],
         "sparsity=0.999 leaves 1344 bytes for 2625 user and item rows, but one int4 value per row needs"),
        (["--method=es", "--budget_unit=bytes", "--sparsity=0.99"], "allowed: sparsity <= 0.9"),
        (["--method=recbole", "--model=BPR", "--value_dtype=int8"], "value_dtype=int8: method=recbole runs RecBole's own model unchanged"),
        (["--method=recbole", "--model=BPR", "--budget_unit=bytes"], "budget_unit=bytes: method=recbole"),
        (["--method=es", "--ptq=True"], "ptq=True quantises the finished table to value_dtype, which is float32"),
        (["--bet_dtypes=[int8,int5]"], "bet_dtypes=['int8', 'int5']; allowed: a list of distinct values of float32"),
        (["--bet_dtypes=float32,int8"], "bet_dtypes=['float32', 'int8'] searches precision under a byte budget"),
        (["--method=full", "--budget_unit=bytes", "--value_dtype=int4", "--ptq=True", "--sparsity=0.9"],
         "the full table at int4 takes"),
        (["--method=qr", "--budget_unit=bytes", "--value_dtype=int4", "--sparsity=0.999"],
         "sparsity=0.999 leaves 1344 bytes for 2625 user and item rows, but one int4 value per row needs"),
        (["--method=graphhash", "--budget_unit=bytes", "--sparsity=0.99"],
         "one float32 value per row needs 13658 bytes with its file headers; allowed: sparsity <= 0.989837 at float32, or <= 0.996027 at int4"),
    ],
)
@pytest.mark.slow
def test_bad_precision_input_exits_with_one_clear_line(args, message, tmp_path):
    result = run_cli(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("run_recbole_bet: error:")]
    assert len(errors) == 1 and message in errors[0], result.stderr[-2000:]


# ---------------------------------------------------------------------------
# BET searching precision with sizes


def byte_budget(n_users=40, n_items=60, d_max=16, sparsity=0.8, dtype="float32") -> Budget:
    storage = storage_of(tables=(("user", d_max, n_users + 1), ("item", d_max, n_items + 1)), container=50)
    return Budget.from_bytes(sparsity, d_max, n_users, n_items, storage, dtype)


def test_each_candidate_draws_a_dtype_then_fills_what_the_bytes_hold_at_it():
    from recbole_bet.methods.bet.sampler import ActionSampler

    budget = byte_budget()
    rng = np.random.default_rng(0)
    frequencies = rng.integers(1, 50, 40), rng.integers(1, 50, 60)
    sampler = ActionSampler(budget, *frequencies, dtypes=("float32", "int8", "int4"), threads=1)
    candidates = sampler.sample(30, np.random.default_rng(1))
    assert set(candidates.dtypes) == {"float32", "int8", "int4"}
    for k in range(len(candidates)):
        action = candidates.action(k)
        assert action.value_dtype == candidates.dtypes[k]
        assert action.params == budget.attainable_for(action.value_dtype)
        action.check(budget)
    assert budget.attainable_for("int4") > budget.attainable_for("int8") > budget.attainable_for("float32")
    again = ActionSampler(budget, *frequencies, dtypes=("float32", "int8", "int4"), threads=2).sample(30, np.random.default_rng(1))
    assert again.dtypes == candidates.dtypes and np.array_equal(again.user_sizes, candidates.user_sizes)
    # without dtypes: no draw of precision, the paper's candidates
    plain = ActionSampler(budget, *frequencies, threads=1).sample(5, np.random.default_rng(1))
    assert plain.dtypes is None and plain.action(0).value_dtype is None and plain.action(0).params == budget.attainable


def test_the_dtype_draw_combines_with_redraw_stratified_shares_and_a_share_range():
    from recbole_bet.methods.bet.sampler import FAMILY, ActionSampler

    budget = byte_budget(sparsity=0.6)
    rng = np.random.default_rng(0)
    frequencies = rng.integers(1, 50, 40), rng.integers(1, 50, 60)
    sampler = ActionSampler(budget, *frequencies, dtypes=("float32", "int4"), threads=1, overflow="redraw",
                            share_sampling="stratified", probabilities=dict(zip(FAMILY, (1, 1, 1, 1, 1))))
    candidates = sampler.sample(40, np.random.default_rng(2), share_range=(0.25, 0.5))
    assert set(candidates.dtypes) == {"float32", "int4"}
    assert ((candidates.user_share >= 0.25) & (candidates.user_share <= 0.5)).all()
    assert sampler.counts["users"]["draws"] == 40 and sampler.counts["items"]["draws"] == 40
    for k in range(len(candidates)):
        action = candidates.action(k)
        assert action.params == budget.attainable_for(action.value_dtype)
        assert action.user_sizes.max() <= budget.d_max and action.item_sizes.min() >= 1
        action.check(budget)


def test_the_fitness_predictor_reads_the_dtype_only_when_it_is_searched():
    from recbole_bet.methods.bet.predictor import FitnessPredictor, SizesOnlyPredictor

    rng = np.random.default_rng(0)
    users, items = rng.integers(1, 9, (3, 40)), rng.integers(1, 9, (3, 60))
    for predictor_class in (FitnessPredictor, SizesOnlyPredictor):
        torch.manual_seed(0)
        plain = predictor_class(rng.integers(1, 50, 40), rng.integers(1, 50, 60), 16)
        torch.manual_seed(0)
        searched = predictor_class(rng.integers(1, 50, 40), rng.integers(1, 50, 60), 16, dtypes=("float32", "int4"))
        assert plain.embed(users, items).shape == (3, 64) and searched.embed(users, items, ["int4"] * 3).shape == (3, 66)
        as_float, as_int4 = searched(users, items, ["float32"] * 3), searched(users, items, ["int4"] * 3)
        assert not torch.equal(as_float, as_int4)  # the same sizes at another precision: another prediction
        with pytest.raises(ValueError, match="allowed: float32, int4"):
            searched(users, items, ["int8"] * 3)


def test_an_action_carrying_a_dtype_sets_its_tables_precision():
    model = Tables(4, 5, [8])
    assert model.value_dtype == "float32"
    Action.uniform(3, 4, 5, 8).apply_to(model)
    assert model.value_dtype == "float32"  # no dtype: the tables' stays
    action = Action(np.full(4, 3, np.int16), np.full(5, 3, np.int16), 8, value_dtype="int4")
    action.apply_to(model)
    assert model.value_dtype == "int4" and all(t.value_dtype == "int4" for t in model.masked_tables("item"))
    assert model.current_action() == Action.uniform(3, 4, 5, 8) != action  # the dtype is part of an action


@pytest.mark.slow
def test_ptq_quantises_the_finished_table_into_the_byte_budget(fast_config):
    from recbole_bet.quick_start import run_recbole_bet

    keys = dict(fast_config, method="es", budget_unit="bytes", value_dtype="int8", ptq=True, sparsity=0.9, epochs=1)
    result = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert result["ptq"] and result["value_dtype"] == "int8" and result["budget_unit"] == "bytes"
    assert result["used_bytes"] == result["export"]["bytes"] <= result["budget_bytes"] == 134400
    meta, _, _, _ = read_table_masks(result["export"]["path"])
    assert meta["value_dtype"] == "int8"


def test_magnitude_pruning_fills_its_byte_budget_on_the_command_line(tmp_path):
    """ml-100k at 95% of the bytes at int4, one epoch: the mask keeps more than the budget's parameters (the item
    table's index is cheaper than its bound), the file on disk is within the bytes, and its fill leaves a few hundred
    bytes where the parameter count leaves thousands."""
    result_file = tmp_path / "r.json"
    done = run_cli("--model=LightGCN", "--method=magprune", "--sparsity=0.95", "--budget_unit=bytes", "--value_dtype=int4",
                   f"--result_file={result_file}", f"--checkpoint_dir={tmp_path / 'saved'}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["used_bytes"] == os.path.getsize(result["export"]["path"]) <= result["budget_bytes"]
    assert result["used_params"] > result["budget_params"]
    # what is left: under one kept weight, and the container's bound over the indices the tables did not take (the
    # headers of a columns index's two arrays, and the meta naming it)
    assert result["budget_bytes"] - result["used_bytes"] <= 2 + 400
