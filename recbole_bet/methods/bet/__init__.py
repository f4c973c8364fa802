"""BET (Qu et al., "Budgeted Embedding Table For Recommender Systems", WSDM 2024) as a method of the registry.

The paper's parts, each a module here: Algorithm 1 (:mod:`~recbole_bet.methods.bet.search`), the action sampler
(:mod:`~recbole_bet.methods.bet.sampler`, section 3.2), the DeepSets fitness predictor
(:mod:`~recbole_bet.methods.bet.predictor`, section 3.3), selective retraining
(:mod:`~recbole_bet.methods.bet.retraining`) and the ``bet_`` keys (:mod:`~recbole_bet.methods.bet.settings`).
"""

from __future__ import annotations

from recbole_bet.errors import BudgetError, ConfigError
from recbole_bet.methods.base import Method, Outcome, RunContext
from recbole_bet.methods.bet.search import BetTrainer, bet_search
from recbole_bet.methods.bet.settings import BetSettings


def check_dtypes(dtypes, budget, ptq) -> None:
    """``bet_dtypes`` searches precision under a byte budget, quantisation-aware, with one value per row at each."""
    if not dtypes:
        return
    if ptq:
        raise ConfigError("bet_dtypes with ptq=True: the search trains each precision quantisation-aware; allowed: ptq=False")
    if len(dtypes) > 1 and budget.unit != "bytes":
        raise ConfigError(f"bet_dtypes={list(dtypes)} searches precision under a byte budget; allowed with budget_unit=bytes")
    for dtype in dtypes:
        if budget.params_for(dtype) < budget.n_rows:
            raise BudgetError(f"bet_dtypes has {dtype}, but the byte budget of {budget.bytes} holds "
                              f"{budget.params_for(dtype)} {dtype} values for {budget.n_rows} rows, fewer than one a row; "
                              f"allowed: sparsity <= {budget.storage.max_sparsity(dtype):g} at {dtype}, or drop {dtype}")


class Bet(Method):
    name = "bet"
    settings_class = BetSettings

    def budgets_independent(self, settings) -> bool:
        return not settings.bet_share_population  # a later budget's predictor learns from the earlier searches

    def run(self, context: RunContext) -> Outcome:
        check_dtypes(context.settings.bet_dtypes, context.budget, context.config["ptq"])
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
                "sampler": search.sampler,
                "rank_correlation": search.rank_correlation,
                "settings": self.settings_record(context),
            },
        }
        return Outcome(trainer, search.valid, action, search.checkpoint, search.retrained_curve, extra)
