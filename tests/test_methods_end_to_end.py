"""Every method of the registry end to end on ml-100k, through the run script's pipeline, with tiny schedules."""

import json

import numpy as np
import pytest
import torch

import recbole_bet.methods.pep as pep
from recbole_bet.export import read_table_masks
from recbole_bet.quick_start import run_recbole_bet
from recbole_bet.trainer import BudgetTrainer

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

BUDGET = 33600  # ml-100k at sparsity 0.9: floor(0.1 * 128 * (943 + 1682))
TINY = {
    "pep": {"pep_max_epochs": 2},
    "optembed": {"optembed_generations": 2, "optembed_keep": 3, "optembed_mutations": 2, "optembed_crossovers": 2},
    "magprune": {},
    "mde": {"mde_alphas": [0.1, 0.3]},
}


def run(model, method, fast_config, **keys):
    return run_recbole_bet(model, "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.9, method=method, **TINY[method], **keys))


@pytest.mark.parametrize(
    "model, method",
    [("LightGCN", "pep"), ("NeuMF", "pep"), ("LightGCN", "optembed"), ("NGCF", "optembed"), ("LightGCN", "magprune"),
     ("NeuMF", "magprune"), ("LightGCN", "mde"), ("NGCF", "mde")],
)
def test_each_method_runs_within_the_budget_and_records_itself(model, method, fast_config, tmp_path):
    result_file = tmp_path / "r.json"
    result = run(model, method, fast_config, result_file=str(result_file))
    assert json.loads(result_file.read_text()) == json.loads(json.dumps(result))
    assert result["method"] == method and result["budget_params"] == BUDGET
    assert result["threads"] == torch.get_num_threads()  # what the result is bit for bit reproducible at
    assert result["used_params"] <= BUDGET
    if method != "optembed" or "why_not_full" not in result["optembed"]["fill"]:  # OptEmbed: unless it says why
        assert result["used_params"] == BUDGET
    assert method in result and result[method]["settings"]  # the method's own record and keys
    # the exported table holds exactly the weights counted, and its size is reported
    _, tables, sizes, masks = read_table_masks(result["export"]["path"])
    assert sum(int(m[1:].sum()) for m in masks.values()) == result["used_params"]
    assert result["bytes"] == result["export"]["bytes"] > 4 * result["used_params"]
    assert result["sizes"]["layout"] == ("element" if method in ("pep", "magprune") else "prefix")
    assert all(0 <= v <= 1 for v in result["test"].values())


def test_pep_trains_its_thresholds_and_retrains_from_the_initial_weights(fast_config, monkeypatch):
    initial, at_retraining = {}, {}
    original_init, original_fit = pep.SoftThresholdEmbedding.__init__, BudgetTrainer.fit_phase

    def remember_initial(self, table, *args):
        initial.setdefault("table", table.full_weight.detach().clone())  # the user table, before any training
        original_init(self, table, *args)

    def remember_start(self, name, *args, **kwargs):
        at_retraining["table"] = self.model.user_embedding.full_weight.detach().clone()
        return original_fit(self, name, *args, **kwargs)

    monkeypatch.setattr(pep.SoftThresholdEmbedding, "__init__", remember_initial)
    monkeypatch.setattr(BudgetTrainer, "fit_phase", remember_start)
    result = run("LightGCN", "pep", fast_config)
    history = result["pep"]["epochs"]
    start = float(torch.sigmoid(torch.tensor(-15.0)))
    assert [h["epoch"] for h in history] == [0, 1] and not result["pep"]["reached_budget"]
    assert history[0]["threshold_mean"] > 1.2 * start and history[1]["threshold_mean"] > history[0]["threshold_mean"]
    assert result["used_params"] == BUDGET  # exact although training never reached the budget
    assert torch.equal(at_retraining["table"], initial["table"])  # the lottery ticket: the initial weights


def test_pep_stops_where_the_kept_count_reaches_the_budget(fast_config):
    # thresholds that start high prune at once: the first step reaches the budget
    result = run("LightGCN", "pep", fast_config, pep_threshold_init=5.0)
    assert result["pep"]["reached_budget"] and len(result["pep"]["epochs"]) == 1
    assert result["pep"]["epochs"][0]["kept"] <= BUDGET and result["used_params"] == BUDGET


def test_optembed_fills_the_budget_from_its_best_candidate_and_repeats_bit_for_bit(fast_config):
    first = run("LightGCN", "optembed", fast_config, export_table=False)
    record = first["optembed"]
    widths, kept, filled = record["widths"], record["kept_rows"], record["fill"]
    assert all(s["widths"][0] * kept["users"] + s["widths"][1] * kept["items"] <= BUDGET for s in record["scored"])
    best = max(record["scored"], key=lambda s: s["score"])
    assert best["widths"] == [record["evolution_widths"]["users"], record["evolution_widths"]["items"]] == filled["before"]["widths"]
    assert filled["before"]["params"] == kept["users"] * best["widths"][0] + kept["items"] * best["widths"][1] < BUDGET
    # widened the way the supernet scored best, then the rest spread: the budget is used, exactly
    assert filled["way"] == max(filled["options"], key=lambda o: o["score"])["way"]
    assert [widths["users"], widths["items"]] == filled["widened"]["widths"]
    assert first["used_params"] == filled["after"]["params"] == BUDGET
    for field in ("users", "items"):  # every kept row at its field's width or one more
        assert widths[field] <= first["sizes"][field]["min"] and first["sizes"][field]["max"] <= widths[field] + 1
    second = run("LightGCN", "optembed", fast_config, export_table=False)
    assert second["test"] == first["test"] and second["optembed"]["scored"] == record["scored"]
    assert second["optembed"]["fill"] == filled


def starting_weights(monkeypatch) -> dict:
    """Records the model's trainable weights as each ``fit_phase`` starts, by phase name (None: the final training)."""
    starts, real = {}, BudgetTrainer.fit_phase

    def fit_phase(self, name, *args, **kwargs):
        starts[name] = {k: p.detach().clone() for k, p in self.model.named_parameters()}
        return real(self, name, *args, **kwargs)

    monkeypatch.setattr(BudgetTrainer, "fit_phase", fit_phase)
    return starts


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_optembed_thresholds_rise_under_the_regulariser_and_prune_rows_end_to_end(fast_config):
    """With a regulariser strong enough to matter (the code's defaults leave every row, see the module), the
    thresholds rise from 0, the rows whose L1 norm they pass are pruned, and the exported table holds those rows at
    size 0."""
    result = run("LightGCN", "optembed", fast_config, optembed_alpha=3.0, optembed_threshold_lr=1.0)
    record = result["optembed"]
    assert all(t > 1 for t in record["thresholds"].values())  # alpha * exp(-t) pushes them up
    kept, widths = record["kept_rows"], record["widths"]
    assert kept["items"] < 1682 and result["sizes"]["items"]["min"] == 0
    _, _, sizes, masks = read_table_masks(result["export"]["path"])
    assert int((sizes["item_embedding"][1:] == 0).sum()) == 1682 - kept["items"]  # every pruned row, and only those
    # the pruned rows stay pruned; the budget they leave is filled over the kept rows (widths, then one dimension each)
    filled = record["fill"]
    assert filled["widened"]["params"] == kept["users"] * widths["users"] + kept["items"] * widths["items"]
    assert result["used_params"] == filled["after"]["params"] <= BUDGET


def test_mde_keeps_the_alpha_best_on_validation(fast_config, monkeypatch):
    starts = starting_weights(monkeypatch)
    result = run("LightGCN", "mde", fast_config)
    assert list(starts) == ["alpha0", "alpha1"] and same_weights(starts["alpha0"], starts["alpha1"])  # each alpha from the initial weights
    tried = result["mde"]["tried"]
    assert [t["alpha"] for t in tried] == [0.1, 0.3]
    best = max(tried, key=lambda t: t["valid_score"])
    assert result["mde"]["alpha"] == best["alpha"] and result["checkpoint"] == best["checkpoint"]
    assert result["valid"]["ndcg@20"] == pytest.approx(best["valid_score"])
    assert np.isclose(result["sizes"]["users"]["mean"] * 943 + result["sizes"]["items"]["mean"] * 1682, BUDGET)


CIESS_TINY = {"ciess_episodes": 2, "ciess_steps": 2, "ciess_step_epochs": 1, "ciess_batch": 256}


@pytest.mark.parametrize("model", ["LightGCN", "NGCF", "NeuMF"])
def test_ciess_trains_and_measures_only_actions_at_the_budget(model, fast_config):
    result = run_recbole_bet(model, "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.9, method="ciess", **CIESS_TINY))
    steps = result["ciess"]["steps"]
    assert [(s["episode"], s["step"]) for s in steps] == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert all(s["params"] == BUDGET for s in steps)  # every trained and measured action, exactly
    assert any(s["proposed_params"] != BUDGET for s in steps)  # the actor's own proposals are not
    assert all(s["noise_moved"] > 0 for s in steps)  # the exploration noise survives the projection
    assert result["used_params"] == BUDGET and result["ciess"]["best_quality"] == max(s["quality"] for s in steps)
    assert steps[0]["actor_loss"] == {"user": None, "item": None} and steps[1]["actor_loss"]["user"] is not None  # policy delay
    assert all(np.isfinite(s["critic_loss"]["user"]) for s in steps)


def recording_row_qualities(monkeypatch, module) -> list:
    """Records each per-row quality that ``module`` (a method's) measures, as ``nan_to_num`` makes it its reward's."""
    seen, real = [], module.row_qualities

    def row_qualities(*args):
        result, rows = real(*args)
        seen.append(np.nan_to_num(rows))
        return result, rows

    monkeypatch.setattr(module, "row_qualities", row_qualities)
    return seen


def test_ciess_rewards_each_rows_quality_less_its_size_penalty_and_retrains_from_the_initial_weights(fast_config, monkeypatch):
    import recbole_bet.methods.ciess as ciess

    qualities, starts, added = recording_row_qualities(monkeypatch, ciess), starting_weights(monkeypatch), []
    real_add = ciess.ReplayBuffer.add
    monkeypatch.setattr(ciess.ReplayBuffer, "add", lambda self, **batch: (added.append(batch), real_add(self, **batch))[1])
    penalty, d_max = 0.5, 128
    result = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.9, method="ciess",
                                                                     ciess_penalty=penalty, **CIESS_TINY))
    steps = result["ciess"]["steps"]
    assert len(qualities) == 1 + len(steps) and len(added) == 2 * len(steps)  # the pretrained table's, then a step's
    for step, (row_quality, record) in enumerate(zip(qualities[1:], steps)):
        users, items = added[2 * step], added[2 * step + 1]
        sizes = ciess.to_sizes(np.concatenate([users["a"], items["a"]]), d_max)
        size_penalty = penalty * ((sizes - 1) / d_max) ** 2
        reward = np.concatenate([users["r"], items["r"]])
        assert reward == pytest.approx(row_quality - size_penalty, abs=1e-4)  # up to the sizes' float32 round trip
        assert record["reward"] == pytest.approx(float(reward.mean()), abs=1e-4)
        assert row_quality.max() > 0.1 and size_penalty.max() > 0.01  # both terms count
    # the best action is retrained from the initial weights, those the pretraining started from, not its result
    assert set(starts) == {"pretrain", None} and same_weights(starts[None], starts["pretrain"])


ESAPN_TINY = {"esapn_episodes": 6}
RL = {"ciess": ("steps", CIESS_TINY), "esapn": ("episodes", ESAPN_TINY)}


@pytest.mark.parametrize("method", ["ciess", "esapn"])
def test_reinforcement_learning_same_seed_same_result_and_blind_to_the_test_split(method, fast_config, monkeypatch):
    import recbole_bet.quick_start as quick_start

    records, tiny = RL[method]
    keys = dict(fast_config, epochs=1, sparsity=0.9, method=method, **tiny)
    first = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    second = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert first["test"] == second["test"] and first[method][records] == second[method][records]
    real = quick_start.data_preparation
    monkeypatch.setattr(quick_start, "data_preparation", lambda cfg, data: (lambda t, v, _: (t, v, v))(*real(cfg, data)))
    swapped = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    assert swapped[method][records] == first[method][records] and swapped["sizes"] == first["sizes"]
    assert swapped["test"] != first["test"]


@pytest.mark.parametrize("model", ["LightGCN", "NGCF", "NeuMF"])
def test_esapn_trades_within_the_budget_and_updates_its_policy_every_episode(model, fast_config, monkeypatch):
    import recbole_bet.methods.esapn as esapn

    seen, real = [], esapn.Action.from_rows
    monkeypatch.setattr(esapn.Action, "from_rows", lambda sizes, budget: (seen.append(sizes.copy()), real(sizes, budget))[1])
    qualities, starts = recording_row_qualities(monkeypatch, esapn), starting_weights(monkeypatch)
    initial = {}
    real_search = esapn.Esapn.search
    monkeypatch.setattr(esapn.Esapn, "search", lambda self, context, *a: (initial.update(
        {k: p.detach().clone() for k, p in context.model.named_parameters()}), real_search(self, context, *a))[1])
    budget, episodes_run = 16800, 8  # sparsity 0.95: full within a few episodes
    result = run_recbole_bet(model, "ml-100k", config_dict=dict(fast_config, epochs=1, sparsity=0.95, method="esapn",
                                                                 esapn_episodes=episodes_run))
    candidates = np.array(result["esapn"]["candidates"])
    assert len(seen) == 1 + episodes_run + 1 and np.all(seen[0] == candidates[0])  # the start, each episode, the final sizes
    levels = [np.searchsorted(candidates, s) for s in seen[:-1]]
    assert all(np.abs(later - earlier).max() <= 1 for earlier, later in zip(levels, levels[1:]))  # one candidate at most
    assert all(s.sum() <= budget for s in seen) and result["used_params"] == seen[-1].sum() <= budget
    episodes = result["esapn"]["episodes"]
    assert [e["params"] for e in episodes] == [int(s.sum()) for s in seen[1:-1]]
    # every episode is a decision and a policy update of both fields, the first one's reward included
    assert all(e["policy_loss"]["user"] is not None and e["policy_loss"]["item"] is not None for e in episodes)
    assert episodes[0]["reward"] != 0
    # once the budget binds (an enlargement is refused for want of room), the rows trade: some shrink, some grow
    full = [e for e in episodes if e["refused"] > 0]
    assert full and all(e["shrunk"] > 0 and e["grown"] > 0 for e in full)
    assert result["used_params"] >= 0.99 * budget
    # the reward: a row's quality now less the mean of its last esapn_window (5) measurements, the first of them the
    # quality before training (the baseline of the first episode)
    expected = [float(np.mean(qualities[t] - np.mean(qualities[max(0, t - 5):t], axis=0))) for t in range(1, len(qualities))]
    assert [e["reward"] for e in episodes] == pytest.approx(expected, abs=1e-12)
    assert list(starts) == [None] and same_weights(starts[None], initial)  # the final training from the initial weights
