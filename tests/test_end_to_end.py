"""One short run per backbone on ml-100k through the run script's pipeline."""

import json

import numpy as np
import pytest
import torch

from recbole_bet.export import read_table
from recbole_bet.quick_start import run_recbole_bet
from recbole_bet.trainer import load_checkpoint

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

METRICS = {f"{m}@{k}" for m in ("recall", "ndcg") for k in (5, 10, 20)}


@pytest.mark.parametrize(
    "model, method", [("LightGCN", "es"), ("NGCF", "mr"), ("NeuMF", "es"), ("LightGCN", "full")]
)
def test_one_epoch_run_fits_budget_and_reports_all_metrics(model, method, fast_config, tmp_path):
    result_file = tmp_path / "out" / "result.json"
    result = run_recbole_bet(
        model,
        "ml-100k",
        config_dict=dict(fast_config, epochs=1, sparsity=0.9, method=method, result_file=str(result_file)),
    )
    on_disk = json.loads(result_file.read_text())
    assert on_disk == json.loads(json.dumps(result))
    for key in ("model", "dataset", "method", "sparsity", "seed", "budget_params", "used_params", "valid", "test", "seconds", "export", "machine"):
        assert key in on_disk, key
    assert set(result["test"]) == METRICS and set(result["valid"]) == METRICS
    assert all(0 <= v <= 1 for v in result["test"].values())
    assert (result["n_users"], result["n_items"]) == (943, 1682)
    if method == "full":
        assert result["used_params"] == result["budget_params"] == 128 * (943 + 1682)
    else:
        assert result["budget_params"] == 33600 and result["used_params"] == result["budget_params"]
    assert result["export"]["payload_bytes"] == 4 * result["used_params"] + (944 + 1683)
    meta, tables, sizes = read_table(result["export"]["path"])
    assert sum(int(s.sum()) for s in sizes.values()) == result["used_params"]
    # one validation per epoch on the curve; the best point is the one reported as "valid"
    assert [point["epoch"] for point in result["curve"]] == [0]
    assert result["curve"][0]["valid_score"] == pytest.approx(result["valid"]["ndcg@20"])
    assert np.isfinite(result["curve"][0]["train_loss"])


@pytest.fixture
def two_threads():
    """torch on two threads, where its parallel kernels may add in any order (restored afterwards)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_same_seed_same_weights_bit_for_bit(fast_config, two_threads):
    """Two runs of one seed train the same weights, bit for bit, on two threads (with torch's default
    kernels the loss curve already differs in its 8th digit after one epoch of this run)."""
    config = dict(fast_config, epochs=2, method="mr", export_table=False)
    first = run_recbole_bet("LightGCN", "ml-100k", config_dict=config)
    second = run_recbole_bet("LightGCN", "ml-100k", config_dict=config)
    assert first["curve"] == second["curve"] and first["test"] == second["test"] and first["sizes"] == second["sizes"]
    weights = [load_checkpoint(run["checkpoint"])["state_dict"] for run in (first, second)]
    assert first["checkpoint"] != second["checkpoint"] and all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.are_deterministic_algorithms_enabled()  # the run's setting does not outlive it
    third = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(config, seed=7))
    assert third["sizes"] != first["sizes"]


@pytest.mark.parametrize("reproducibility", [True, False])
def test_deterministic_algorithms_follow_reproducibility_and_are_restored(reproducibility):
    from recbole_bet.reproducibility import deterministic_algorithms

    assert not torch.are_deterministic_algorithms_enabled()
    with deterministic_algorithms(reproducibility):
        assert torch.are_deterministic_algorithms_enabled() is reproducibility
    assert not torch.are_deterministic_algorithms_enabled()


@pytest.mark.parametrize("model, params", [("BPR", 128 * (943 + 1682)), ("Pop", 0)])
def test_recbole_reference_models_run_under_the_same_protocol(model, params, fast_config):
    result = run_recbole_bet(model, "ml-100k", config_dict=dict(fast_config, epochs=1, method="recbole"))
    assert result["method"] == "recbole" and result["model"] == model
    assert result["used_params"] == result["budget_params"] == params and result["export"] is None
    assert set(result["test"]) == METRICS and result["protocol"]["learning_rate"] == 0.01


def test_unknown_recbole_model_is_a_clear_error(fast_config):
    from recbole_bet.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown RecBole general recommender 'Nope'"):
        run_recbole_bet("Nope", "ml-100k", config_dict=dict(fast_config, method="recbole"))
