"""--method=bet on ml-100k with a tiny schedule: result contents, determinism, blindness to the test split."""

import json
import re

import numpy as np
import pytest

import recbole_bet.quick_start as quick_start
from recbole_bet.errors import ConfigError
from recbole_bet.export import read_table
from recbole_bet.quick_start import run_recbole_bet

pytestmark = pytest.mark.slow  # end-to-end runs: `pytest -m "not slow"` leaves them out

TINY = {
    "method": "bet",
    "bet_iterations": 5,
    "bet_candidates": 8,
    "bet_finetune_epochs": 1,
    "bet_retrain_top": 2,
    "epochs": 2,
    "sparsity": 0.9,
}


def chosen_sizes(result):
    _, _, sizes = read_table(result["export"]["path"])
    return {name: s.tolist() for name, s in sizes.items()}


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("bet")
    config = dict(TINY, show_progress=False, state="WARNING", checkpoint_dir=str(folder / "saved"), result_file=str(folder / "r.json"))
    result = run_recbole_bet("LightGCN", "ml-100k", config_dict=config)
    return result, config, folder


def test_result_file_holds_the_search(first_run):
    result, config, folder = first_run
    on_disk = json.loads((folder / "r.json").read_text())
    assert on_disk["method"] == "bet" and on_disk["used_params"] == on_disk["budget_params"] == 33600
    assert [r["t"] for r in on_disk["search"]] == [0, 1, 2, 3, 4]
    assert [r["strategy"] for r in on_disk["search"]] == ["I", "I", "I", "II", "III"]
    for record in on_disk["search"]:
        assert {"t", "strategy", "predicted", "measured", "seconds"} <= set(record)
        assert 0 < record["measured"] < 3 and record["seconds"] > 0
    sizes = on_disk["sizes"]
    assert {"users", "items"} <= set(sizes) and {"min", "median", "max"} <= set(sizes["users"])
    bet = on_disk["bet"]
    assert len(bet["retrained"]) == 2 and set(bet["seconds"]) == {"pretrain", "search", "retrain"}
    assert bet["full_quality"] > 0
    # the winner is the retrained action with the best validation quality
    qualities = [r["quality"] for r in bet["retrained"]]
    assert on_disk["checkpoint"] == bet["retrained"][int(np.argmax(qualities))]["checkpoint"]
    # the curve reported is the winner's retraining, one point per epoch, restarted for each retraining
    winner = bet["retrained"][int(np.argmax(qualities))]
    assert on_disk["curve"] == winner["curve"] and [p["epoch"] for p in on_disk["curve"]] == [0, 1]
    assert max(p["valid_score"] for p in on_disk["curve"]) == pytest.approx(on_disk["valid"]["ndcg@20"])
    # the population is on disk, one row per iteration
    population = np.load(on_disk["checkpoint"].rsplit("-retrain", 1)[0] + "-population.npz")
    assert population["user_sizes"].shape == (5, 943) and np.allclose(population["measured"], [r["measured"] for r in on_disk["search"]])
    assert np.all(population["user_sizes"].sum(1) + population["item_sizes"].sum(1) == 33600)


def test_same_seed_same_action_and_metrics(first_run, tmp_path):
    result, config, _ = first_run
    again = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(config, checkpoint_dir=str(tmp_path), result_file=None))
    assert chosen_sizes(again) == chosen_sizes(result)
    assert again["test"] == result["test"] and again["search"] == [
        dict(r, seconds=a["seconds"]) for r, a in zip(result["search"], again["search"])
    ]


def test_test_split_never_influences_the_choice(first_run, tmp_path, monkeypatch):
    """Swap the test split for another one: the same action is chosen; only the test metrics move."""
    result, config, _ = first_run
    real = quick_start.data_preparation

    def other_test_split(cfg, data):
        train, valid, test = real(cfg, data)
        return train, valid, valid  # the 'test' split is now a different set of interactions

    monkeypatch.setattr(quick_start, "data_preparation", other_test_split)
    swapped = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(config, checkpoint_dir=str(tmp_path), result_file=None))
    assert chosen_sizes(swapped) == chosen_sizes(result)
    assert swapped["valid"] == result["valid"]
    assert swapped["test"] != result["test"]


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("bet_iterations", 0, "bet_iterations=0; allowed: an integer >= 1"),
        ("bet_candidates", 2.5, "bet_candidates=2.5; allowed: an integer >= 1"),
        ("bet_finetune_lr_decay", 1.5, "allowed: a number in (0, 1]"),
        ("bet_beta_max_normal", -1, "allowed: a number > 0"),
        ("bet_candidate", 10, "unknown key 'bet_candidate' (did you mean 'bet_candidates'?)"),
        ("bet_pretrain_stopping_step", 0, "bet_pretrain_stopping_step=0; allowed: an integer >= 1"),
        ("bet_pretrain_stopping_step", "soon", "bet_pretrain_stopping_step='soon'; allowed: an integer >= 1"),
    ],
)
def test_bad_bet_keys_are_refused_before_any_work(key, value, message, fast_config):
    with pytest.raises(ConfigError) as error:
        run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(fast_config, **{key: value}))
    assert message in str(error.value)


def test_pretraining_patience_is_its_own_and_the_retraining_keeps_stopping_step(first_run, fast_config):
    """With bet_pretrain_stopping_step=1 the pretraining stops at its second validation without
    improvement (RecBole stops when more than stopping_step validations in a row did not improve;
    a tie counts as an improvement); the retraining still runs under stopping_step (20)."""
    assert [p["epoch"] for p in first_run[0]["bet"]["pretrain_curve"]] == [0, 1]  # default: stopping_step (20)
    keys = dict(fast_config, **dict(TINY, epochs=25, bet_iterations=1, bet_retrain_top=1, bet_pretrain_stopping_step=1))
    result = run_recbole_bet("LightGCN", "ml-100k", config_dict=keys)
    scores = [p["valid_score"] for p in result["bet"]["pretrain_curve"]]
    best = len(scores) - 1 - scores[::-1].index(max(scores))  # RecBole's best: the last of equals
    assert len(scores) == best + 3 < 25
    assert len(result["curve"]) == 25  # the retraining: no 21 validations in a row without improvement in 25


def test_profiles_set_the_schedule_and_user_keys_win(fast_config):
    import sys

    from recbole_bet.config import BetConfig
    from recbole_bet.methods.bet.settings import BetSettings

    sys.argv = ["pytest"]
    fast = BetSettings.from_config(BetConfig("NGCF", "ml-100k", config_dict={"bet_profile": "fast", "bet_iterations": 7}))
    assert (fast.bet_iterations, fast.bet_finetune_epochs, fast.bet_retrain_from) == (7, 3, "pretrained")  # NGCF's h per backbone
    assert (fast.bet_retrain_top, fast.bet_retrain_stopping_step, fast.bet_pretrain_stopping_step) == (1, 5, 10)
    paper = BetSettings.from_config(BetConfig("NGCF", "ml-100k"))
    assert (paper.bet_iterations, paper.bet_finetune_epochs, paper.bet_retrain_top) == (50, 15, 5)
    for profile in ("paper", "paper-gpu"):  # the paper's h: 15 for NGCF, 10 for the others
        named = BetSettings.from_config(BetConfig("NGCF", "ml-100k", config_dict={"bet_profile": profile}))
        assert (named.bet_iterations, named.bet_finetune_epochs, named.bet_retrain_top) == (50, 15, 5)
    lightgcn = BetConfig("LightGCN", "ml-100k", config_dict={"bet_profile": "paper-gpu"})
    assert BetSettings.from_config(lightgcn).bet_finetune_epochs == 10 and lightgcn["eval_batch_size"] == 16777216
    with pytest.raises(ConfigError, match="unknown bet_profile 'slow'; allowed: fast, paper, paper-gpu, plus, plus-fast"):
        BetConfig("LightGCN", "ml-100k", config_dict={"bet_profile": "slow"})
    # a profile is a name of properties/method/<method>/, never a path: each of these files exists
    for method, profile in (("bet", "../bet"), ("bet", "../../overall"), ("ciess", "../ciess"), ("esapn", "fast.yaml/../fast")):
        with pytest.raises(ConfigError, match=f"unknown {method}_profile '{re.escape(profile)}'; allowed: "):
            BetConfig("LightGCN", "ml-100k", config_dict={"method": method, f"{method}_profile": profile})
