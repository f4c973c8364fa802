"""BET (Qu et al., "Budgeted Embedding Table For Recommender Systems", WSDM 2024): the search of
:mod:`recbole_bet.search` (Algorithm 1) as a method of the registry."""

from __future__ import annotations

from recbole_bet.methods.base import Method, Outcome, RunContext
from recbole_bet.search import BetSettings, BetTrainer, bet_search


class Bet(Method):
    name = "bet"
    settings_class = BetSettings

    def budgets_independent(self, settings) -> bool:
        return not settings.bet_share_population  # a later budget's predictor learns from the earlier searches

    def run(self, context: RunContext) -> Outcome:
        trainer = BetTrainer(
            context.config, context.model, context.settings, context.budget, context.user_frequency,
            context.item_frequency, context.rng, context.shared, context.resume, context.budget_key,
        )
        search = bet_search(trainer, context.train_data, context.valid_data)
        action = search.action.check(context.budget)
        context.model.apply_action(action)
        trainer.load_best_model(search.checkpoint)
        extra = {
            "search": search.records,
            "bet": {
                "full_quality": search.full_quality,
                "pretrain_curve": search.pretrain_curve,
                "retrained": search.retrained,
                "seconds": search.seconds,
                "warm_start": search.warm_start,
                "settings": self.settings_record(context),
            },
        }
        return Outcome(trainer, search.valid, action, search.checkpoint, search.retrained_curve, extra)
