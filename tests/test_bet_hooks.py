"""BetTrainer's hooks one by one, each against the mutant that would break it: greedy selection picks the
maximum, strategy III the nearest neighbour, fine-tuning restarts from the pretrained weights and decays
its learning rate, the fitness is divided by q_full, and the bet_beta_max keys reach the sampler."""

import numpy as np
import pytest
import torch

from recbole_bet.budget import Budget
from recbole_bet.config import BetConfig
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies
from recbole_bet.methods.bet.settings import BetSettings
from recbole_bet.methods.bet.search import BetTrainer, Population, bet_search

from conftest import FAST, build_data


class Fixed(torch.nn.Module):
    """A decoder that predicts ``values`` for the candidates, whatever their embeddings."""

    def __init__(self, values):
        super().__init__()
        self.values = torch.tensor(values, dtype=torch.float32)

    def forward(self, embeddings):
        return self.values[: len(embeddings), None]


def fixed_predictions(trainer, values):
    trainer.predictor.decoder = Fixed(values)


def test_strategy_one_picks_the_largest_predicted_fitness(bet):
    trainer, _, _ = bet()
    candidates = trainer.sample_candidates()
    values = np.random.default_rng(1).permutation(len(candidates))
    fixed_predictions(trainer, values)
    for t in (0, 1, 2, 5):  # strategy I
        chosen, predicted = trainer.select(t, candidates, Population())
        assert chosen == int(np.argmax(values)) and np.array_equal(predicted, values)


def test_strategy_two_is_uniform_on_the_run_generator(bet):
    trainer, _, _ = bet()
    candidates = trainer.sample_candidates()
    state = trainer.rng.bit_generator.state
    chosen, _ = trainer.select(3, candidates, Population())
    twin = np.random.default_rng()
    twin.bit_generator.state = state
    assert chosen == int(twin.integers(len(candidates)))


def test_strategy_three_picks_the_nearest_neighbour_of_the_best_measured_action(bet):
    trainer, _, _ = bet()
    candidates = trainer.sample_candidates()
    population = Population()
    for index, fitness in ((5, 0.9), (2, 0.7)):
        population.add(candidates.action(index), {"measured": fitness})
    # the best measured action is candidate 5 itself: at distance 0 in the predictor's embedding space
    chosen, _ = trainer.select(4, candidates, population)
    assert chosen == 5
    population.records[1]["measured"] = 0.95  # now candidate 2 is the best
    assert trainer.select(9, candidates, population)[0] == 2


def test_fine_tuning_restarts_from_the_pretrained_weights_and_decays_its_learning_rate(bet):
    trainer, train, _ = bet(bet_finetune_epochs=1, bet_finetune_lr_step=1, bet_finetune_lr_decay=0.5)
    model = trainer.model
    trainer.pretrained_state = {k: v.clone() for k, v in model.state_dict().items()}
    action = trainer.sample_candidates().action(0)
    with torch.no_grad():
        model.user_embedding.full_weight.add_(1.0)  # what a previous fine-tuning left behind
    trainer.settings = BetSettings(**dict(vars(trainer.settings), bet_finetune_epochs=0))
    trainer.finetune(action, train)  # zero epochs: only the restart and the masks
    assert torch.equal(model.user_embedding.full_weight, trainer.pretrained_state["user_embedding.full_weight"])
    assert model.current_action() == action
    trainer.settings = BetSettings(**dict(vars(trainer.settings), bet_finetune_epochs=1))
    trainer.finetune(action, train)
    batches = len(train)
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.03 * 0.5**batches)  # x0.5 after every batch


def test_fitness_is_the_measured_quality_divided_by_the_full_tables(bet, monkeypatch):
    trainer, train, valid = bet(bet_iterations=3, bet_candidates=4, bet_retrain_top=1)
    monkeypatch.setattr(trainer, "pretrain", lambda *a: 0.4)  # q_full
    monkeypatch.setattr(trainer, "finetune", lambda *a: None)
    measured = iter([0.1, 0.3, 0.2])
    monkeypatch.setattr(trainer, "measure", lambda *a: next(measured))
    trainer.curve = []
    monkeypatch.setattr(trainer, "selective_retrain", lambda population, *a: (
        population.top(1)[0], "best.pth", {}, [{"checkpoint": "best.pth", "curve": []}]))
    result = bet_search(trainer, train, valid)
    assert [r["measured"] for r in result.records] == pytest.approx([0.25, 0.75, 0.5])
    assert result.full_quality == 0.4
    assert [r["t"] for r in result.records] == [0, 1, 2]


def test_beta_max_keys_reach_the_sampler():
    config = BetConfig("LightGCN", "ml-100k", config_dict=dict(FAST, bet_beta_max_powerlaw=7, bet_beta_max_lognormal=0.25))
    settings = BetSettings.from_config(config)
    assert settings.beta_max == {"powerlaw": 7.0, "exponential": 5.0, "normal": 20.0, "lognormal": 0.25}
    config2, train, _, _ = build_data("LightGCN", bet_beta_max_powerlaw=7, bet_beta_max_lognormal=0.25)
    model = get_model("LightGCN")(config2, train._dataset)
    users, items = training_frequencies(train._dataset, config2)
    budget = Budget.from_sparsity(0.9, model.d_max, len(users), len(items))
    trainer = BetTrainer(config2, model, BetSettings.from_config(config2), budget, users, items, np.random.default_rng(0))
    assert trainer.sampler.beta_max == settings.beta_max


def test_random_selection_draws_every_iteration_on_the_run_generator(bet):
    """bet_selection=random (Table 2's first variant): strategy II at every t, whatever the predictions."""
    trainer, _, _ = bet(bet_selection="random")
    candidates = trainer.sample_candidates()
    fixed_predictions(trainer, np.arange(len(candidates)))  # the greedy choice would be the last candidate
    for t in (0, 1, 2, 4):  # I, I, I and III in the hybrid order
        state = trainer.rng.bit_generator.state
        chosen, _ = trainer.select(t, candidates, Population())
        twin = np.random.default_rng()
        twin.bit_generator.state = state
        assert chosen == int(twin.integers(len(candidates)))


def test_simple_predictor_reads_only_the_sizes(bet):
    """bet_predictor=simple (Table 2's second variant): the frequencies do not reach it; they do reach DeepSets."""
    from recbole_bet.methods.bet.predictor import FitnessPredictor, SizesOnlyPredictor

    trainer, _, _ = bet(bet_predictor="simple")
    assert isinstance(trainer.predictor, SizesOnlyPredictor)
    candidates = trainer.sample_candidates()
    frequencies = [np.arange(1, 6), np.arange(1, 5)], [np.arange(5, 0, -1), np.array([9, 1, 1, 1])]
    users, items = np.array([[1, 2, 3, 4, 5], [5, 4, 3, 2, 1]]), np.array([[8, 1, 2, 3], [1, 8, 3, 2]])
    for kind, differs in ((SizesOnlyPredictor, False), (FitnessPredictor, True)):
        outputs = []
        for user_frequency, item_frequency in frequencies:
            torch.manual_seed(0)
            outputs.append(kind(user_frequency, item_frequency, d_max=8)(users, items))
        assert (not torch.equal(*outputs)) == differs
    predicted = trainer.predictor(candidates.user_sizes, candidates.item_sizes)
    assert predicted.shape == (len(candidates),) and predicted.unique().numel() > 1  # it tells the candidates apart


@pytest.mark.slow
def test_table_2_variants_run_end_to_end(fast_config):
    from recbole_bet.quick_start import run_recbole_bet

    keys = dict(fast_config, method="bet", epochs=1, bet_iterations=5, bet_candidates=4, bet_finetune_epochs=1, bet_retrain_top=1)
    random = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, bet_selection="random"))
    assert [r["strategy"] for r in random["search"]] == ["II"] * 5 and random["used_params"] <= random["budget_params"]
    simple = run_recbole_bet("LightGCN", "ml-100k", config_dict=dict(keys, bet_predictor="simple"))
    assert [r["strategy"] for r in simple["search"]] == ["I", "I", "I", "II", "III"]
    assert simple["bet"]["settings"]["bet_predictor"] == "simple" and simple["used_params"] <= simple["budget_params"]
