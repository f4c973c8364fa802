"""The model package and recbole_bet.serve: the trained model's top k without RecBole, from one file, without pickle."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from recbole.data.interaction import Interaction

from recbole_bet.budget import Budget, ElementMask
from recbole_bet.methods.mr import mixed_random
from recbole_bet.model import get_model
from recbole_bet.package import write_package
from recbole_bet.quick_start import training_frequencies
from recbole_bet.serve import PackageError, Recommender, UnknownTokenError, read_package

from conftest import ROOT, build_data

# A fresh interpreter in which importing recbole (or anything under it) fails.
BLOCK_RECBOLE = """
import sys
class Block:
    def find_spec(self, name, path=None, target=None):
        if name == "recbole" or name.startswith("recbole."):
            raise ImportError(f"{name} is blocked in this test")
        return None
sys.meta_path.insert(0, Block())
"""


def budgeted_model(model_name: str, layout: str, seed: int = 0):
    """(config, train, valid, model): an ml-100k backbone at sparsity 0.9, with random weights, in ``layout``:
    ``prefix`` (mixed sizes, the layout of ES, BET, MR) or ``element`` (single weights, PEP's and magprune's)."""
    config, train, valid, _ = build_data(model_name)
    torch.manual_seed(seed)
    model = get_model(model_name)(config, train._dataset).eval()
    with torch.no_grad():  # off the initialisation, so that scores are spread (NeuMF's start near 0.5)
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.1)
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
    rng = np.random.default_rng(seed)
    if layout == "prefix":
        model.apply_action(mixed_random(budget, users, items, rng=rng))
    else:
        mask = ElementMask(rng.random((len(users), model.d_max)) < 0.1, rng.random((len(items), model.d_max)) < 0.1, model.d_max)
        model.apply_element_mask(mask)
    return config, train, valid, model


def reference_top(model, train, valid, k: int):
    """The trained model's top k, as RecBole ranks: full_sort_predict, padding and seen items (training and
    validation, read from RecBole's datasets, not from the package) at -inf."""
    users = torch.arange(1, model.n_users)
    with torch.no_grad():
        scores = model.full_sort_predict(Interaction({model.USER_ID: users})).view(len(users), -1).clone()
    scores[:, 0] = -torch.inf
    for data in (train, valid):
        inter = data._dataset.inter_feat
        scores[inter[model.USER_ID] - 1, inter[model.ITEM_ID]] = -torch.inf
    top = torch.topk(scores, k, dim=1)
    return top.indices.numpy(), top.values.numpy()


@pytest.mark.parametrize("layout", ["prefix", "element"])
@pytest.mark.parametrize("model_name", ["LightGCN", "NGCF", "NeuMF"])
@pytest.mark.slow
def test_top_k_equals_the_trained_models(tmp_path, model_name, layout):
    config, train, valid, model = budgeted_model(model_name, layout)
    info = write_package(model, train._dataset, {"method": "test"}, tmp_path / "m.package.npz", valid=valid._dataset)
    assert info["bytes"] > info["parts"]["table"] > 0
    rec = Recommender.load(info["path"], chunk_rows=500)  # several blocks of the graph
    k = 20
    expected_items, expected_scores = reference_top(model, train, valid, k)
    tokens = list(rec.user_tokens[1:])
    top = rec.recommend(tokens, k=k)
    assert np.array_equal(top.scores, expected_scores)  # bit for bit
    assert np.array_equal(top.items, rec.item_tokens[expected_items])
    # the token maps are RecBole's
    field2id = train._dataset.field2id_token
    assert list(rec.user_tokens) == list(field2id["user_id"]) and list(rec.item_tokens) == list(field2id["item_id"])


def test_scores_vectors_and_the_unseen_option(tmp_path):
    config, train, valid, model = budgeted_model("LightGCN", "prefix", seed=1)
    path = write_package(model, train._dataset, None, tmp_path / "m.npz", valid=valid._dataset)["path"]
    rec = Recommender.load(path)
    users, items = ["196", "186", "22"], ["242", "302", "377", "51"]
    ids = lambda field, tokens: torch.tensor([train._dataset.token2id(field, t) for t in tokens])  # noqa: E731
    with torch.no_grad():
        full = model.full_sort_predict(Interaction({"user_id": ids("user_id", users)})).view(len(users), -1)
    assert np.array_equal(rec.score(users, items), full[:, ids("item_id", items)].numpy())
    # the vectors' dot products are the scores; row i is token i + 1
    u, v = rec.user_vectors(), rec.item_vectors()
    assert u.shape == (model.n_users - 1, v.shape[1]) and v.shape[0] == model.n_items - 1
    np.testing.assert_allclose(u[ids("user_id", users) - 1] @ v[ids("item_id", items) - 1].T, rec.score(users, items), rtol=1e-5, atol=1e-6)
    # with the seen items: the full ranking of everything but padding
    top = rec.recommend(users, k=5, exclude_seen=False)
    scores = full.clone()
    scores[:, 0] = -torch.inf
    assert np.array_equal(top.items, rec.item_tokens[torch.topk(scores, 5).indices.numpy()])
    every = rec.recommend(users, k=rec.n_items, exclude_seen=False)  # every item once, padding never
    assert all(sorted(row) == sorted(rec.item_tokens[1:]) for row in every.items)
    some = list(rec.user_tokens[100:140])
    seen = rec.recommend(some, k=50)
    for row, user in enumerate(some):
        history = set(train._dataset.inter_feat["item_id"][train._dataset.inter_feat["user_id"] == int(ids("user_id", [user]))].tolist())
        assert not history & {train._dataset.token2id("item_id", t) for t in seen.items[row]}


def test_unknown_users_error_or_popular_items(tmp_path):
    config, train, valid, model = budgeted_model("NeuMF", "prefix")
    rec = Recommender.load(write_package(model, train._dataset, None, tmp_path / "m.npz")["path"])
    with pytest.raises(UnknownTokenError, match="unknown user token 'nobody'"):
        rec.recommend(["196", "nobody"], k=3)
    with pytest.raises(UnknownTokenError, match="unknown item token '99999'"):
        rec.score(["196"], ["99999"])
    top = rec.recommend(["nobody", "196"], k=400, unknown="popular")  # ties among them: by item id
    counts = np.bincount(train._dataset.inter_feat["item_id"].numpy(), minlength=model.n_items)
    counts[0] = -1
    popular = np.argsort(-counts, kind="stable")[:400]
    assert list(top.items[0]) == list(rec.item_tokens[popular]) and list(top.scores[0]) == list(counts[popular].astype(np.float32))
    assert list(top.known) == [False, True] and list(top.items[1]) == list(rec.recommend(["196"], k=400).items[0])
    with pytest.raises(ValueError, match="k=0; allowed"):
        rec.recommend(["196"], k=0)


def test_the_package_holds_the_exported_table_and_no_pickle(tmp_path):
    from recbole_bet.export import export_table, read_table

    config, train, valid, model = budgeted_model("NGCF", "element")
    info = write_package(model, train._dataset, {"method": "pep", "sparsity": 0.9, "test": {"recall@20": 0.1}}, tmp_path / "m.npz")
    exported = export_table(model, tmp_path / "table.npz")
    assert info["parts"]["table"] == exported["payload_bytes"]
    with np.load(info["path"], allow_pickle=False) as package, np.load(exported["path"], allow_pickle=False) as table:
        for key in table.files:  # the table's arrays, as exported
            assert np.array_equal(package[key], table[key]), key
        assert all(package[key].dtype != object for key in package.files)
        assert package["train/indices"].dtype == np.uint16 and package["train/indptr"].dtype == np.int32
    assert read_table(info["path"])[0]["tables"] == read_table(exported["path"])[0]["tables"]
    meta, arrays = read_package(info["path"])
    assert meta["model"] == "NGCF" and meta["method"] == "pep" and meta["metrics"]["test"] == {"recall@20": 0.1}
    assert meta["used_params"] == sum(model.get_submodule(n).kept_params for n in model.budget_tables)
    assert {f"weight/GNNlayers.{i}.linear.weight" for i in range(3)} <= set(arrays)
    assert "valid/indptr" not in arrays and meta["seen"] == ["train"]


def test_a_pickle_bearing_or_foreign_file_is_refused(tmp_path):
    marker = tmp_path / "ran"
    evil = tmp_path / "evil.npz"

    class Payload:
        def __reduce__(self):
            return (Path.touch, (marker,))

    np.savez(evil, package=np.array([Payload()], dtype=object))
    with pytest.raises(PackageError, match="is not a recbole-bet model package"):
        Recommender.load(evil)
    assert not marker.exists()
    other = tmp_path / "other.npz"
    np.savez(other, package=np.array(json.dumps({"format": 99})))
    with pytest.raises(PackageError, match="format 99"):
        read_package(other)
    (tmp_path / "text.npz").write_text("hello")
    with pytest.raises(PackageError):
        read_package(tmp_path / "text.npz")
    assert zipfile.is_zipfile(evil)


def test_an_inconsistent_package_is_refused_before_its_graph_is_multiplied(tmp_path):
    """The graph is multiplied without torch's checks: a package whose interactions point outside its items (or
    whose row pointers do not add up) is refused with one clear error, not a crash."""
    config, train, valid, model = budgeted_model("LightGCN", "prefix")
    path = write_package(model, train._dataset, None, tmp_path / "m.npz")["path"]
    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    broken = {
        "items": dict(arrays, **{"train/indices": arrays["train/indices"].copy()}),
        "pointers": dict(arrays, **{"train/indptr": arrays["train/indptr"][::-1].copy()}),
        "tokens": dict(arrays, user_tokens=arrays["user_tokens"][:-1]),
        "table": dict(arrays, user_embedding=arrays["user_embedding"][:-5]),
    }
    broken["items"]["train/indices"][7] = model.n_items + 5
    messages = {"items": "name items outside", "pointers": "row pointers", "tokens": "user and", "table": "tables cannot be read"}
    for name, changed in broken.items():
        np.savez(tmp_path / f"{name}.npz", **changed)
        with pytest.raises(PackageError, match=messages[name]):
            Recommender.load(tmp_path / f"{name}.npz")


def test_faiss_exact_index_gives_torchs_top_k(tmp_path):
    pytest.importorskip("faiss")
    config, train, valid, model = budgeted_model("LightGCN", "prefix", seed=2)
    path = write_package(model, train._dataset, None, tmp_path / "m.npz", valid=valid._dataset)["path"]
    plain, indexed = Recommender.load(path), Recommender.load(path, index="faiss")
    tokens = list(plain.user_tokens[1:])
    k = 20
    expected, got = plain.recommend(tokens, k=k), indexed.recommend(tokens, k=k)
    np.testing.assert_allclose(got.scores, expected.scores, rtol=1e-5, atol=1e-6)
    # the same items, but where two scores are equal up to rounding (then their order may differ)
    gaps, tolerance = np.diff(expected.scores, axis=1), 1e-4 * np.abs(expected.scores).max()
    distinct = np.ones_like(expected.scores, dtype=bool)
    distinct[:, 1:] &= gaps < -tolerance
    distinct[:, :-1] &= gaps < -tolerance
    assert distinct.mean() > 0.9 and np.array_equal(got.items[distinct], expected.items[distinct])
    approximate = Recommender.load(path, index="faiss", index_key="HNSW32").recommend(tokens[:50], k=k)
    assert np.isfinite(approximate.scores).all()
    with pytest.raises(ValueError, match="dot-product model"):
        _, train, _, neumf = budgeted_model("NeuMF", "prefix")
        Recommender.load(write_package(neumf, train._dataset, None, tmp_path / "n.npz")["path"], index="faiss")


def serve(package, *arguments, block_recbole=True):
    """``python -m recbole_bet.serve`` in a fresh interpreter, RecBole unimportable there."""
    code = (BLOCK_RECBOLE if block_recbole else "") + "import runpy, sys; sys.argv[0] = 'serve'; runpy.run_module('recbole_bet.serve', run_name='__main__')"
    return subprocess.run([sys.executable, "-c", code, str(package), *arguments], capture_output=True, text=True, cwd=ROOT,
                          env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})


@pytest.mark.slow
def test_the_command_line_serves_without_recbole(tmp_path):
    config, train, valid, model = budgeted_model("NGCF", "prefix", seed=3)
    path = write_package(model, train._dataset, None, tmp_path / "m.npz", valid=valid._dataset)["path"]
    (tmp_path / "users.txt").write_text("196\n186\n\n")
    expected = Recommender.load(path).recommend(["196", "186"], k=5)
    for arguments in (["--users", "196,186", "--k", "5"], ["--users-file", str(tmp_path / "users.txt"), "--k", "5"]):
        done = serve(path, *arguments)
        assert done.returncode == 0, done.stderr
        rows = [json.loads(line) for line in done.stdout.splitlines()]
        assert [r["user"] for r in rows] == ["196", "186"]
        assert [r["items"] for r in rows] == expected.items.tolist()
        assert [r["scores"] for r in rows] == [[float(s) for s in row] for row in expected.scores]
    done = serve(path, "--users", "196,nobody")
    assert done.returncode == 2 and done.stderr.strip().count("\n") == 0 and "unknown user token 'nobody'" in done.stderr
    done = serve(path, "--users", "nobody", "--unknown", "popular", "--k", "3")
    assert done.returncode == 0 and json.loads(done.stdout)["known"] is False
    done = serve(tmp_path / "missing.npz", "--users", "196")
    assert done.returncode == 2 and done.stderr.startswith("recbole_bet.serve: error:") and "Traceback" not in done.stderr
    # the hook does block RecBole: the same interpreter cannot import it
    blocked = subprocess.run([sys.executable, "-c", BLOCK_RECBOLE + "import recbole"], capture_output=True, text=True, cwd=ROOT)
    assert blocked.returncode != 0 and "recbole is blocked" in blocked.stderr


@pytest.mark.slow
@pytest.mark.parametrize("model_name, method", [("LightGCN", "es"), ("NeuMF", "magprune")])
def test_a_trained_run_serves_its_top_k_without_recbole_or_the_dataset(tmp_path, fast_config, model_name, method):
    """Train a tiny run, package it, delete the dataset, and serve the trained model's top k from a fresh
    interpreter in which RecBole cannot be imported."""
    import shutil

    import recbole

    from recbole_bet.package import package_from_result
    from recbole_bet.quick_start import run_recbole_bet
    from recbole_bet.trainer import load_checkpoint

    data = tmp_path / "data"
    shutil.copytree(Path(recbole.__file__).parent / "dataset_example" / "ml-100k", data / "ml-100k")
    keys = dict(fast_config, epochs=1, sparsity=0.9, method=method, data_path=str(data), result_file=str(tmp_path / "r.json"))
    result = run_recbole_bet(model_name, "ml-100k", config_dict=keys)
    package = result["package"]  # written by the run, beside its result file
    assert package == str(tmp_path / "r.package.npz") and json.loads((tmp_path / "r.json").read_text())["package"] == package
    with np.load(package, allow_pickle=False) as written:
        run_arrays = {key: written[key] for key in written.files if key != "package"}
    again = package_from_result(tmp_path / "r.json", tmp_path / "again.npz")["path"]  # on demand, from the checkpoint
    with np.load(again, allow_pickle=False) as rewritten:
        assert set(rewritten.files) == set(run_arrays) | {"package"}
        assert all(np.array_equal(rewritten[key], value) for key, value in run_arrays.items())

    # the trained model's own top k, from its checkpoint, on RecBole's data
    config, train, valid, _ = build_data(model_name, data_path=str(data))
    model = get_model(model_name)(config, train._dataset).eval()
    model.load_state_dict(load_checkpoint(result["checkpoint"])["state_dict"])
    k = 10
    expected, _ = reference_top(model, train, valid, k)
    users = list(train._dataset.field2id_token["user_id"][1:])
    items = train._dataset.field2id_token["item_id"]

    shutil.rmtree(data)
    (tmp_path / "users.txt").write_text("\n".join(users))
    done = serve(package, "--users-file", str(tmp_path / "users.txt"), "--k", str(k))
    assert done.returncode == 0, done.stderr
    rows = [json.loads(line) for line in done.stdout.splitlines()]
    assert [r["user"] for r in rows] == users
    assert [r["items"] for r in rows] == items[expected].tolist()
    meta, _ = read_package(package)
    assert meta["method"] == method and meta["metrics"]["test"] == result["test"] and meta["used_params"] == result["used_params"]
