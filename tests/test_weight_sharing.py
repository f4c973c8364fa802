"""QR and GraphHash: their layouts within the budget, their shared tables (every id a vector), the exported table
(its bytes, and the same scores), and each end to end on ml-100k."""

import io
import json
import os
import re

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from recbole_bet.budget import VALUE_DTYPES, Budget, FieldBuckets, Partition, SharedBuckets, SharedCost
from recbole_bet.embedding import SharedEmbedding
from recbole_bet.errors import BudgetError, ConfigError
from recbole_bet.export import export_table, load_table, read_table, read_table_masks, table_storage
from recbole_bet.methods.graphhash import (bucket_cost, bucket_targets, fit_buckets, graphhash_layout, graphhash_size,
                                          largest_fitting)
from recbole_bet.methods.qr import qr_divisor, qr_layout, qr_rows
from recbole_bet.model import get_model
from recbole_bet.precision import fake_quantise
from recbole_bet.quick_start import run_recbole_bet, training_frequencies

from conftest import build_data, make_budget, random_tables
from test_bytes import Tables
from test_cli import run_cli

cases = random_tables(60)


def smallest_pair(n: int) -> int:
    return int(qr_rows(n, np.arange(1, n + 1)).min())


# ---- QR ---------------------------------------------------------------------------------------------------


@settings(max_examples=80, deadline=None)
@given(cases, st.sampled_from(["mult", "sum"]))
def test_qr_never_exceeds_the_budget_and_leaves_less_than_one_width(case, combine):
    n_users, n_items, d_max, sparsity, _ = case
    budget = make_budget(n_users, n_items, d_max, sparsity)
    if budget is None:
        return
    user_share = budget.attainable * n_users // budget.n_rows
    try:
        layout = qr_layout(budget, combine)
    except BudgetError as error:  # only where not even one column of the smallest pair of tables fits a field
        assert user_share < smallest_pair(n_users) or budget.attainable - user_share < smallest_pair(n_items), error
        return
    assert layout.check(budget).params <= budget.params
    # the items take what the users leave, unless they are at their most (a field of n rows uses at most n + 1 buckets)
    assert budget.attainable - layout.params < layout.item.width or sum(layout.item.buckets) == n_items + 1
    for field in (layout.user, layout.item):
        index = field.bucket_index()
        assert len({(q, r) for q, r in index.T}) == field.n_rows  # complementary: no two rows share both buckets
        assert all(index[k].max() < p.buckets for k, p in enumerate(field.partitions))
        assert field.index_bytes == 0  # computed from the id: nothing stored
        assert field.combine == combine


@settings(max_examples=100, deadline=None)
@given(st.integers(1, 400), st.integers(0, 900))
def test_qr_divisor_uses_the_most_rows_that_fit(n, rows):
    divisor = qr_divisor(n, rows)
    everything = {m: int(qr_rows(n, np.array([m]))[0]) for m in range(1, n + 1)}
    fitting = [used for used in everything.values() if used <= rows]
    if not fitting:
        assert divisor is None
        return
    assert everything[divisor] == max(fitting)


def test_qr_narrows_the_width_only_where_the_smallest_pair_does_not_fit():
    budget = Budget.from_sparsity(0.99, 128, 10000, 10000)  # 12,800 per field; the smallest pair: 200 rows
    layout = qr_layout(budget)
    assert layout.user.width == 64 and layout.params <= budget.params
    assert qr_layout(Budget.from_sparsity(0.9, 128, 943, 1682)).user.width == 128


# ---- GraphHash --------------------------------------------------------------------------------------------


def random_pairs(rng, n_users, n_items):
    size = int(rng.integers(1, 4 * (n_users + n_items)))
    return rng.integers(0, n_users, size), rng.integers(0, n_items, size)


@settings(max_examples=40, deadline=None)
@given(cases)
def test_graphhash_buckets_times_width_fit_the_budget_and_cover_every_row(case):
    n_users, n_items, d_max, sparsity, seed = case
    budget = make_budget(n_users, n_items, d_max, sparsity)
    if budget is None:
        return
    rng = np.random.default_rng(seed)
    layout, record = graphhash_layout(budget, random_pairs(rng, n_users, n_items), None, seed=seed % 1000, steps=4)
    assert layout.check(budget).params <= budget.params
    width = layout.user.width
    assert layout.item.width == width and width <= d_max
    assert sum(record["buckets"]) == min(budget.attainable // width, budget.n_rows)  # buckets x width: the budget
    assert budget.attainable - layout.params < width or width * budget.n_rows == layout.params
    for field in (layout.user, layout.item):
        (partition,) = field.partitions
        assert partition.kind == "stored" and len(partition.assignment) == field.n_rows
        assert np.array_equal(np.unique(partition.assignment), np.arange(partition.buckets))  # no empty bucket
        assert field.index_bytes == field.n_rows * partition.assignment.itemsize


def test_graphhash_clusters_the_graph_and_is_the_same_for_the_same_seed():
    # two separate blocks of users and items: one cluster each, whatever the seed
    users = np.repeat(np.arange(8), 4)
    items = np.concatenate([np.tile(np.arange(4), 4), np.tile(np.arange(4, 8), 4)])
    budget = Budget.from_sparsity(0.75, 4, 8, 8)  # 16 parameters: 4 buckets of width 4
    layout, _ = graphhash_layout(budget, (users, items), None, seed=1, steps=10)
    assert layout.user.partitions[0].assignment.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert layout.item.partitions[0].assignment.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    rng = np.random.default_rng(5)
    pairs = random_pairs(rng, 40, 50)
    budget = Budget.from_sparsity(0.9, 16, 40, 50)
    first, second = (graphhash_layout(budget, pairs, None, seed=3, steps=5)[0] for _ in range(2))
    for a, b in zip((first.user, first.item), (second.user, second.item)):
        assert np.array_equal(a.partitions[0].assignment, b.partitions[0].assignment)


def test_fit_buckets_merges_the_smallest_and_splits_the_largest():
    labels = np.array([3, 3, 3, 3, 1, 1, -1])
    assert fit_buckets(labels, 3).tolist() == [0, 0, 0, 0, 1, 1, 2]  # as they are, numbered by first row
    assert fit_buckets(labels, 2).tolist() == [0, 0, 0, 0, 1, 1, 1]  # the two smallest merged
    assert fit_buckets(labels, 4).tolist() == [0, 1, 0, 1, 2, 2, 3]  # the largest split, alternate rows
    assert fit_buckets(labels, 7).tolist() == list(range(7))
    assert fit_buckets(labels, 1).tolist() == [0] * 7


# ---- the shared table -------------------------------------------------------------------------------------


def qr_field(n_rows=7, width=3, combine="mult"):
    return FieldBuckets(n_rows, width, (Partition("quotient", -(-n_rows // 3), divisor=3), Partition("remainder", 3, divisor=3)), combine)


@pytest.mark.parametrize("combine", ["mult", "sum"])
def test_shared_embedding_gives_every_id_a_vector_from_its_buckets(combine):
    torch.manual_seed(0)
    field = qr_field(combine=combine)
    table = SharedEmbedding(field, embedding_dim=5, width=3)
    weight = table.weight
    assert weight.shape == (8, 5) and table.kept_params == 3 * (3 + 3)
    assert torch.all(weight[0] == 0) and torch.all(weight[:, 3:] == 0)  # padding row; columns past the width
    q, r = table.tables
    for row in range(1, 8):
        n = row - 1
        expected = q[n // 3] * r[n % 3] if combine == "mult" else q[n // 3] + r[n % 3]
        assert torch.equal(weight[row, :3], expected)
    assert len({tuple(v.tolist()) for v in weight[1:]}) == 7  # every id its own vector
    idx = torch.tensor([[1, 7], [4, 0]])
    assert torch.equal(table(idx), weight[idx])
    assert torch.equal(table.masked_columns(2), weight[:, :2]) and table.masked_columns(6).shape == (8, 6)
    table(torch.tensor([1])).sum().backward()  # row 0: quotient 0, remainder 0
    assert q.grad[0].abs().sum() > 0 and torch.all(q.grad[1:] == 0) and torch.all(r.grad[1:] == 0)


def test_shared_layout_checks_itself():
    with pytest.raises(BudgetError, match="allowed: at most d_max=4"):
        SharedBuckets(qr_field(width=5), qr_field(), d_max=4)
    with pytest.raises(BudgetError, match="has 3 buckets, not 2"):
        FieldBuckets(7, 3, (Partition("quotient", 2, divisor=3),))
    with pytest.raises(BudgetError, match=r"allowed: \[0, 1\]"):
        Partition("stored", 2, assignment=np.array([0, 2]))
    layout = SharedBuckets(qr_field(), qr_field(), d_max=4)
    with pytest.raises(BudgetError, match="over the budget of 30"):
        layout.check(Budget(0.5, 4, 7, 7, 30))
    assert layout.check(Budget(0.5, 4, 7, 7, 36)).params == 36


def shared_model(model_name, make_layout, dtype="float32", kind=""):
    """A backbone of ml-100k with a shared layout: at sparsity 0.9 in parameters at float32, else in bytes at
    ``dtype`` (``kind``'s partitions)."""
    config, train, valid, _ = build_data(model_name)
    model = get_model(model_name)(config, train._dataset).eval()
    users, items = training_frequencies(train._dataset, config)
    if dtype == "float32":
        budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
    else:
        storage = table_storage(model, "shared", PARTITIONS[kind.split("-")[0]])
        budget = Budget.from_bytes(0.9, model.d_max, len(users), len(items), storage, dtype)
    inter = train._dataset.inter_feat
    pairs = inter[config["USER_ID_FIELD"]].numpy() - 1, inter[config["ITEM_ID_FIELD"]].numpy() - 1
    layout = make_layout(budget, pairs)
    layout.check(budget).apply_to(model)
    model.set_value_dtype(dtype)
    return config, train, valid, model, layout, budget


LAYOUTS = {
    "qr": lambda budget, pairs: qr_layout(budget, "mult"),
    "qr-sum": lambda budget, pairs: qr_layout(budget, "sum"),
    "graphhash": lambda budget, pairs: graphhash_layout(budget, pairs, None, seed=0, steps=3)[0],
}


@pytest.mark.parametrize("model_name, kind, dtype", [
    ("LightGCN", "qr", "float32"), ("NeuMF", "qr-sum", "float32"), ("LightGCN", "graphhash", "float32"),
    ("NeuMF", "graphhash", "float32"), ("LightGCN", "qr", "int8"), ("NeuMF", "qr", "int4"),
    ("LightGCN", "graphhash", "int4"), ("NeuMF", "graphhash", "int8"), ("LightGCN", "qr-sum", "float16"),
])
@pytest.mark.slow
def test_exported_shared_table_counts_its_bytes_and_scores_the_same(tmp_path, model_name, kind, dtype):
    """Float32 in parameters, the other precisions in bytes: the file holds what the budget counts, and a model
    loaded from it scores as the trained one (its dequantised bucket rows), bit for bit."""
    config, train, valid, model, layout, budget = shared_model(model_name, LAYOUTS[kind], dtype, kind)
    assert sum(model.get_submodule(name).kept_params for name in model.budget_tables) == layout.params
    batch = next(iter(valid))[0]
    with torch.no_grad():
        expected = model.full_sort_predict(batch).clone()

    info = export_table(model, tmp_path / "table.npz")
    assert info["kept_params"] == layout.params and info["index_bytes"] == layout.index_bytes
    if dtype == "float32":
        assert info["payload_bytes"] == 4 * layout.params + layout.index_bytes  # bucket tables and assignments, nothing per row
    else:  # values at dtype, a scale per bucket row, assignments: all but the container, exactly
        storage = budget.storage
        assert info["payload_bytes"] == storage.shared_bytes(layout, dtype) - storage.fixed_bytes(dtype)
        assert info["bytes"] == (tmp_path / "table.npz").stat().st_size <= storage.shared_bytes(layout, dtype) <= budget.bytes
    rows = {"user": model.n_users - 1, "item": model.n_items - 1}
    stored = sum(rows[f] * p.assignment.itemsize for f, b in zip(rows, (layout.user, layout.item)) for p in b.partitions
                 if p.kind == "stored")
    assert info["index_bytes"] == stored and (stored == 0) == kind.startswith("qr")  # QR: computed from the id

    fresh = get_model(model_name)(config, train._dataset).eval()
    fresh.load_state_dict({k: v for k, v in model.state_dict().items() if "embedding" not in k}, strict=False)
    load_table(tmp_path / "table.npz", fresh)
    assert fresh.value_dtype == dtype
    with torch.no_grad():
        assert torch.equal(fresh.full_sort_predict(batch), expected)
    _, tables, _ = read_table(tmp_path / "table.npz")  # a reader without torch gets every row's vector
    for name, table in tables.items():
        assert np.array_equal(table, model.get_submodule(name).weight.detach().numpy())


# ---- end to end -------------------------------------------------------------------------------------------

BUDGET = 33600  # ml-100k at sparsity 0.9
TINY = {"qr": {}, "graphhash": {"graphhash_search_steps": 3}}


def run(model, method, fast_config, **keys):
    return run_recbole_bet(model, "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.9, method=method, **TINY[method], **keys))


@pytest.mark.parametrize("model, method", [
    ("LightGCN", "qr"), ("NGCF", "qr"), ("NeuMF", "qr"), ("LightGCN", "graphhash"), ("NGCF", "graphhash"), ("NeuMF", "graphhash"),
])
@pytest.mark.slow
def test_each_weight_sharing_method_runs_within_the_budget_and_records_itself(model, method, fast_config, tmp_path):
    result_file = tmp_path / "r.json"
    result = run(model, method, fast_config, result_file=str(result_file))
    assert json.loads(result_file.read_text()) == json.loads(json.dumps(result))
    assert result["budget_params"] == BUDGET and BUDGET - 128 < result["used_params"] <= BUDGET
    assert result["sizes"]["layout"] == "shared" and result["sizes"]["params"] == result["used_params"]
    assert result[method]["settings"] and result[method]["tables"]["params"] == result["used_params"]
    index_bytes = 0 if method == "qr" else 943 + 1682
    assert result["export"]["index_bytes"] == index_bytes and result["export"]["kept_params"] == result["used_params"]
    assert result["bytes"] == result["export"]["bytes"] > 4 * result["used_params"] + index_bytes
    assert all(0 <= v <= 1 for v in result["test"].values())


@pytest.mark.parametrize("method, keys", [
    ("qr", {}), ("graphhash", {}), ("qr", {"budget_unit": "bytes", "value_dtype": "int8"}),
    ("graphhash", {"budget_unit": "bytes", "value_dtype": "int4"}),
])
@pytest.mark.slow
def test_weight_sharing_same_seed_same_result(method, keys, fast_config, tmp_path):
    first, second = (run("LightGCN", method, dict(fast_config, checkpoint_dir=str(tmp_path / f"s{i}")), **keys) for i in range(2))
    assert first["test"] == second["test"] and first["valid"] == second["valid"]
    with np.load(first["export"]["path"]) as a, np.load(second["export"]["path"]) as b:
        assert sorted(a.files) == sorted(b.files) and all(np.array_equal(a[k], b[k]) for k in a.files)


@pytest.mark.parametrize("method, extra", [("qr", []), ("graphhash", ["--graphhash_search_steps=3"]),
                                           pytest.param("qr", ["--ptq=True"], marks=pytest.mark.slow)])
def test_a_byte_budget_run_writes_a_quantised_shared_file_within_it(method, extra, tmp_path):
    """The command line, as the issue's done-when runs it (ml-100k, one epoch): the file on disk is int8, shared,
    and within the budget; under ptq the table trained at float32 and was quantised after."""
    result_file = tmp_path / "r.json"
    done = run_cli("--model=LightGCN", f"--method={method}", "--sparsity=0.9", "--budget_unit=bytes", "--value_dtype=int8",
                   f"--result_file={result_file}", f"--checkpoint_dir={tmp_path / 'saved'}", *extra, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["budget_unit"] == "bytes" and result["value_dtype"] == "int8" and result["ptq"] == bool(extra[:1] == ["--ptq=True"])
    path = result["export"]["path"]
    assert result["used_bytes"] == os.path.getsize(path) <= result["budget_bytes"] == 134400
    assert result["budget_bytes"] - result["used_bytes"] < 2 * 130 + 96  # under a bucket row (128 int8 values, a scale) a field
    assert result["used_params"] == result["sizes"]["params"] <= result["budget_params"]
    meta, tables, _ = read_table(path)
    assert meta["value_dtype"] == "int8" and set(meta["encoding"].values()) == {"shared"}
    assert all(np.isfinite(table).all() for table in tables.values())


@pytest.mark.parametrize("keys, message", [
    ({"method": "qr", "qr_combine": "concat"}, "qr_combine='concat'; allowed: mult, sum"),
    ({"method": "qr", "qr_width": 0}, "qr_width=0; allowed: an integer >= 1 or ~ (none)"),
    ({"method": "graphhash", "graphhash_search_steps": 0}, "graphhash_search_steps=0; allowed: an integer >= 1"),
    ({"method": "graphhash", "graphhash_resolution": 3}, "unknown key 'graphhash_resolution'"),
    ({"method": "dsl", "qr_combine": "sum"}, "key 'qr_combine' belongs to method qr"),
])
def test_bad_keys_are_one_line_errors(keys, message, fast_config):
    with pytest.raises(ConfigError, match=re.escape(message)) as error:
        run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, **keys))
    assert "\n" not in str(error.value)


# ---- bytes and precision ----------------------------------------------------------------------------------

PARTITIONS = {"qr": ("quotient", "remainder"), "graphhash": ("stored",)}


def byte_layout(method, model, room, dtype, seed):
    """``(budget, layout, record)`` of ``method`` under a byte budget of ``model``'s tables, from one value per row
    (``room`` 0) to twice the float32 full table (1); None where the bytes hold not even the method's smallest tables."""
    storage = table_storage(model, "shared", PARTITIONS[method.split("-")[0]])
    n_users, n_items = model.n_users - 1, model.n_items - 1
    low, high = storage.bytes_for(n_users + n_items, dtype), 2 * storage.bytes_for(storage.max_kept, "float32")
    total = int(low + room * (high - low))
    budget = Budget(0.5, model.d_max, n_users, n_items, storage.params_for(total, dtype), "bytes", dtype, total, storage)
    try:
        if method == "graphhash":
            rng = np.random.default_rng(seed)
            return (budget, *graphhash_layout(budget, random_pairs(rng, n_users, n_items), None, seed, 3))
        return budget, qr_layout(budget, "sum" if method == "qr-sum" else "mult"), None
    except BudgetError as error:
        assert re.search(r"QR needs at least \d+ bytes|GraphHash needs \d+ bytes", str(error)), error
        return None


@settings(max_examples=60, deadline=None)
@given(
    n_users=st.integers(1, 60), n_items=st.integers(1, 60), widths=st.sampled_from([[8], [5], [64, 64], [3, 9], [300]]),
    dtype=st.sampled_from(VALUE_DTYPES), method=st.sampled_from(["qr", "qr-sum", "graphhash"]),
    room=st.floats(0, 1), seed=st.integers(0, 2**16),
)
def test_a_shared_file_never_exceeds_the_byte_budget_and_reads_back_as_the_model(n_users, n_items, widths, dtype, method, room, seed):
    """Over random tables, dtypes and both methods: the file fits the bytes, its count is exact but for the meta's
    digits, no bucket more would fit (QR: under one bucket row left; GraphHash: the next split is over), and
    read_table gives the model's dequantised rows."""
    torch.manual_seed(seed)
    model = Tables(n_users, n_items, widths)
    made = byte_layout(method, model, room, dtype, seed % 1000)
    if made is None:
        return
    budget, layout, record = made
    storage, cost = budget.storage, SharedCost(budget)
    layout.check(budget).apply_to(model)
    model.set_value_dtype(dtype)
    with torch.no_grad():
        for name in model.budget_tables:
            for table in model.get_submodule(name).tables:
                table.mul_(float(np.random.default_rng(seed).uniform(0.01, 5)))  # scales of every size
    buffer = io.BytesIO()
    info = export_table(model, buffer)
    assert info["kept_params"] == layout.params and info["value_dtype"] == dtype
    assert info["bytes"] <= storage.shared_bytes(layout, dtype) <= budget.bytes
    assert info["payload_bytes"] == storage.shared_bytes(layout, dtype) - storage.fixed_bytes(dtype)  # all but headers: exact
    assert storage.shared_bytes(layout, dtype) - info["bytes"] <= 96  # the meta's numbers at their most digits
    left = budget.bytes - storage.shared_bytes(layout, dtype)
    if method.startswith("qr"):
        one_row = cost.buckets("item", 1, layout.item.width) + len(widths)  # int4: each table's last nibble
        assert left < one_row or sum(layout.item.buckets) == n_items + 1
    elif sum(record["buckets"]) < budget.n_rows:
        more = bucket_targets(sum(record["buckets"]) + 1, tuple(record["clusters"]), n_users, n_items)
        assert bucket_cost(cost, layout.user.width, more, (n_users, n_items)) > cost.total
    buffer.seek(0)
    meta, tables, _, _ = read_table_masks(buffer)
    assert meta.get("value_dtype", "float32") == dtype
    for name, table in tables.items():
        assert np.array_equal(table, model.get_submodule(name).weight.detach().numpy()), name


@given(st.integers(1, 40), st.integers(0, 60), st.integers(0, 60))
def test_largest_fitting_is_the_last_count_a_downward_scan_would_stop_at(low, extra, limit):
    """Bisection finds what lowering the count one at a time finds, for every threshold (below, inside, above)."""
    high, limit = low + extra, max(low, limit)  # fits(low) holds, as graphhash_size checked
    scan = high
    while scan > low and scan > limit:
        scan -= 1
    assert largest_fitting(low, high, lambda t: t <= limit) == scan


@given(st.integers(2, 400), st.integers(0, 50), st.integers(0, 50), st.integers(1, 300), st.integers(1, 300))
def test_bucket_targets_give_neither_field_fewer_for_one_more_bucket(total, user_clusters, item_clusters, n_users,
                                                                     n_items):
    """What the bisection of the bucket count relies on: a split's cost grows with its total."""
    total = min(total, n_users + n_items - 1)
    assume(total >= 2)  # a bucket per field at least, as graphhash_size checked
    clusters = (user_clusters, item_clusters)
    users, items = bucket_targets(total, clusters, n_users, n_items)
    more_users, more_items = bucket_targets(total + 1, clusters, n_users, n_items)
    assert more_users >= users and more_items >= items and more_users + more_items == total + 1


def test_graphhash_trims_a_split_whose_assignment_widens_until_the_file_fits():
    """700 users at about 300 buckets: their assignment would take uint16, which the first count (every assignment
    at uint8) does not pay; the layout has a bucket fewer until its file fits (here back to 256 user buckets at
    uint8), and no more."""
    torch.manual_seed(0)
    model = Tables(700, 30, [4])
    storage = table_storage(model, "shared", ("stored",))
    budget = Budget(0.5, 4, 700, 30, 0, "bytes", "int8", storage.fixed_bytes("int8") + 700 + 30 + 320 * 6, storage)
    cost = SharedCost(budget)
    _, first = graphhash_size(cost, None, (700, 30))
    rng = np.random.default_rng(0)
    layout, record = graphhash_layout(budget, random_pairs(rng, 700, 30), None, seed=0, steps=3)
    split = bucket_targets(first, tuple(record["clusters"]), 700, 30)
    assert split[0] > 256 and bucket_cost(cost, 4, split, (700, 30)) > cost.total  # the first count does not fit
    assert sum(record["buckets"]) < first and layout.user.buckets == [256]
    layout.check(budget).apply_to(model)
    model.set_value_dtype("int8")
    assert export_table(model, io.BytesIO())["bytes"] <= storage.shared_bytes(layout, "int8") <= budget.bytes
    more = bucket_targets(sum(record["buckets"]) + 1, tuple(record["clusters"]), 700, 30)
    assert bucket_cost(cost, 4, more, (700, 30)) > cost.total


@pytest.mark.parametrize("combine", ["mult", "sum"])
def test_int8_bucket_rows_are_quantised_and_the_gradient_goes_straight_through(combine):
    torch.manual_seed(0)
    table = SharedEmbedding(qr_field(combine=combine), embedding_dim=5, width=3)
    as_float = table.weight.detach().clone()
    table.set_value_dtype("int8")
    q, r = table.tables
    q_hat, r_hat = (fake_quantise(t.detach(), "int8") for t in (q, r))
    assert not torch.equal(q_hat, q.detach())  # quantised (one scale per bucket row) ...
    weight = table.weight
    assert not torch.equal(weight, as_float)
    for row in range(1, 8):  # ... and combined from what the file stores
        n = row - 1
        expected = q_hat[n // 3] * r_hat[n % 3] if combine == "mult" else q_hat[n // 3] + r_hat[n % 3]
        assert torch.equal(weight[row, :3], expected)
    assert torch.equal(table.masked_columns(2), weight[:, :2])  # a cut keeps the full bucket row's scale
    idx = torch.tensor([[3, 1], [7, 0]])
    assert torch.equal(table(idx), weight[idx])
    upstream = torch.randn(8, 5)
    (weight * upstream).sum().backward()
    rows = torch.arange(7)
    expected_q = torch.zeros_like(q)
    expected_r = torch.zeros_like(r)
    for n in rows.tolist():  # straight through: d(row)/d(bucket) of the dequantised buckets
        g = upstream[n + 1, :3]
        expected_q[n // 3] += g * r_hat[n % 3] if combine == "mult" else g
        expected_r[n % 3] += g * q_hat[n // 3] if combine == "mult" else g
    assert torch.allclose(q.grad, expected_q) and torch.allclose(r.grad, expected_r)
    assert q.grad.abs().sum() > 0


def test_float32_shared_rows_are_the_buckets_themselves_bit_for_bit():
    torch.manual_seed(0)
    table = SharedEmbedding(qr_field(), embedding_dim=5, width=3)
    assert all(a is b for a, b in zip(table.bucket_values(), table.tables))
    table.set_value_dtype("int4")
    assert "int4" in repr(table)
    with pytest.raises(BudgetError, match="value_dtype='int5'"):
        table.set_value_dtype("int5")
