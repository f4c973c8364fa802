"""BET's profiles (issue 33): the load-order rule (a profile loads after the backbone's file only for the keys it names,
and never silently replaces a backbone's own value), the paper profile's schedule, and the new keys' checks."""

import pytest
import yaml

from recbole_bet.config import BetConfig, profile_keys, properties_dir
from recbole_bet.errors import ConfigError
from recbole_bet.methods.bet.settings import BetSettings
from recbole_bet.model import MODELS


def bet_settings(model: str, **keys) -> BetSettings:
    return BetSettings.from_config(BetConfig(model, "ml-100k", config_dict=keys))


def write_profile(tmp_path, text: str):
    (tmp_path / "mine.yaml").write_text(text)
    return tmp_path


def test_a_profile_loads_after_the_models_file_only_for_the_keys_it_names(tmp_path):
    folder = write_profile(tmp_path, "bet_iterations: 7\nbet_finetune_epochs: {default: 2, NGCF: 4}\nbet_retrain_top: {NeuMF: 3}\n")
    ngcf_file = {"bet_finetune_epochs": 15, "hidden_size_list": [64, 64, 64]}
    loader = yaml.SafeLoader
    assert profile_keys(folder, "bet", "mine", "NGCF", ngcf_file, loader) == {"bet_iterations": 7, "bet_finetune_epochs": 4}
    assert profile_keys(folder, "bet", "mine", "LightGCN", {}, loader) == {"bet_iterations": 7, "bet_finetune_epochs": 2}
    assert profile_keys(folder, "bet", "mine", "NeuMF", {}, loader) == {"bet_iterations": 7, "bet_finetune_epochs": 2, "bet_retrain_top": 3}
    # a plain value of a key the backbone's file sets too is refused, with the way to say it
    plain = write_profile(tmp_path, "bet_finetune_epochs: 2\n")
    with pytest.raises(ConfigError, match=r"bet_profile 'mine' sets bet_finetune_epochs=2 for every backbone, but model/NGCF.yaml "
                                          r"sets 15: give it per backbone, e.g. bet_finetune_epochs: \{default: 2, NGCF: 15\}"):
        profile_keys(plain, "bet", "mine", "NGCF", ngcf_file, loader)
    assert profile_keys(plain, "bet", "mine", "LightGCN", {}, loader) == {"bet_finetune_epochs": 2}
    typo = write_profile(tmp_path, "bet_finetune_epochs: {default: 2, NGFC: 4}\n")
    with pytest.raises(ConfigError, match="bet_finetune_epochs names backbone 'NGFC'; allowed: default, LightGCN, NGCF, NeuMF"):
        profile_keys(typo, "bet", "mine", "LightGCN", {}, loader)


def test_ngcf_keeps_its_h_under_paper_and_every_shipped_profile_loads_for_every_backbone():
    profiles = sorted(p.stem for p in (properties_dir() / "method" / "bet").glob("*.yaml"))
    assert {"paper", "paper-gpu", "fast", "plus", "plus-fast"} <= set(profiles)
    for model in MODELS:
        for profile in profiles:
            bet_settings(model, bet_profile=profile)  # no shipped profile sets a backbone's key for every backbone
    assert bet_settings("NGCF", bet_profile="paper").bet_finetune_epochs == 15
    assert bet_settings("NGCF").bet_finetune_epochs == 15
    assert bet_settings("LightGCN", bet_profile="paper").bet_finetune_epochs == 10
    assert (bet_settings("NGCF", bet_profile="fast").bet_finetune_epochs, bet_settings("NeuMF", bet_profile="fast").bet_finetune_epochs) == (3, 2)
    assert bet_settings("NGCF", bet_profile="fast", bet_finetune_epochs=9).bet_finetune_epochs == 9  # the user's key wins
    with pytest.raises(ConfigError, match="unknown bet_profile 'papr'; allowed: fast, paper, paper-gpu, plus, plus-fast"):
        bet_settings("LightGCN", bet_profile="papr")


def test_the_paper_profile_is_the_papers_schedule():
    paper = bet_settings("LightGCN", bet_profile="paper")
    assert (paper.bet_iterations, paper.bet_candidates, paper.bet_predictor_updates, paper.bet_predictor_batch) == (50, 100, 2, 1)
    assert (paper.bet_finetune_epochs, paper.bet_finetune_lr, paper.bet_finetune_lr_decay, paper.bet_finetune_lr_step) == (10, 0.03, 0.98, 200)
    assert (paper.bet_retrain_top, paper.bet_retrain_from, paper.bet_retrain_stopping_step, paper.bet_pretrain_stopping_step) == (5, "scratch", None, None)
    assert (paper.bet_overflow, paper.bet_selection, paper.bet_predictor) == ("redraw", "hybrid", "deepsets")
    defaults = BetSettings()  # every key beyond the paper is off unless a profile turns it on
    for key in ("bet_distribution_weights", "bet_share_sampling", "bet_share_narrow", "bet_remeasure_top", "bet_pretrain_prefix",
                "bet_retrain_rank_epochs"):
        assert getattr(paper, key) == getattr(defaults, key), key
    gpu = bet_settings("NGCF", bet_profile="paper-gpu")
    assert {k: v for k, v in vars(gpu).items() if k != "bet_profile"} == {k: v for k, v in vars(bet_settings("NGCF", bet_profile="paper")).items() if k != "bet_profile"}


PLUS_PARTS = {"bet_overflow": "redraw", "bet_distribution_weights": (1.0, 1.0, 1.0, 1.0, 1.0), "bet_share_sampling": "stratified",
              "bet_share_narrow": 0.5, "bet_pretrain_prefix": "random"}
LEFT_OUT = ("bet_remeasure_top", "bet_retrain_rank_epochs", "bet_predictor_updates")  # the ablation's parts that did not pay


@pytest.mark.parametrize("plus, base", [("plus", "paper"), ("plus-fast", "fast")])
@pytest.mark.parametrize("model", ["LightGCN", "NGCF"])
def test_the_plus_profiles_are_their_schedule_with_the_kept_parts_of_the_ablation(plus, base, model):
    """plus = paper's schedule, plus-fast = fast's search schedule with the protocol's final training (from scratch,
    RecBole's patience); both with exactly the parts that paid, none of those that did not."""
    mine, schedule = vars(bet_settings(model, bet_profile=plus)), vars(bet_settings(model, bet_profile=base))
    for key, value in PLUS_PARTS.items():
        assert (tuple(mine[key]) if isinstance(mine[key], (list, tuple)) else mine[key]) == value, key
    for key in LEFT_OUT:
        assert mine[key] == schedule[key], key
    same = ("bet_iterations", "bet_candidates", "bet_finetune_epochs", "bet_finetune_lr", "bet_pretrain_stopping_step")
    assert {k: mine[k] for k in same} == {k: schedule[k] for k in same}
    assert (mine["bet_retrain_from"], mine["bet_retrain_stopping_step"]) == ("scratch", None)
    assert mine["bet_retrain_top"] == (5 if plus == "plus" else 1)


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("bet_overflow", "clamp", "bet_overflow='clamp'; allowed: repair, redraw"),
        ("bet_overflow_tries", 0, "bet_overflow_tries=0; allowed: an integer >= 1"),
        ("bet_distribution_weights", [1, 1, 1, 1], "bet_distribution_weights=[1.0, 1.0, 1.0, 1.0]; allowed: 5 numbers >= 0, not all 0, "
                                                   "for powerlaw, exponential, normal, lognormal, equal"),
        ("bet_distribution_weights", [0, 0, 0, 0, 0], "allowed: 5 numbers >= 0, not all 0"),
        ("bet_distribution_weights", [1, -1, 1, 1, 1], "bet_distribution_weights=[1, -1, 1, 1, 1]; allowed: a non-empty list of numbers in >= 0"),
        ("bet_share_sampling", "sobol", "bet_share_sampling='sobol'; allowed: uniform, stratified"),
        ("bet_share_narrow", 1.5, "bet_share_narrow=1.5; allowed: a number in [0, 1]"),
        ("bet_remeasure_top", -1, "bet_remeasure_top=-1; allowed: an integer >= 0"),
        ("bet_remeasure_repeats", 0, "bet_remeasure_repeats=0; allowed: an integer >= 1"),
        ("bet_pretrain_prefix", "half", "bet_pretrain_prefix='half'; allowed: full, random"),
        ("bet_retrain_rank_epochs", 2.5, "bet_retrain_rank_epochs=2.5; allowed: an integer >= 0"),
    ],
)
def test_each_new_key_is_checked_with_one_line(key, value, message):
    with pytest.raises(ConfigError) as error:
        BetSettings(**{key: value})
    assert message in str(error.value) and "\n" not in str(error.value)
    with pytest.raises(ConfigError):  # and through the config, as a run reads it
        bet_settings("LightGCN", **{key: value})
