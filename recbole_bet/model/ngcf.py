"""NGCF (Wang et al., SIGIR 2019) with budgeted user and item tables.

RecBole's NGCF unchanged, but for its two tables. RecBole already switches
NGCF's message dropout off in ``eval()`` (an ``nn.Dropout``), which the
authors' BET code did not.
"""

from recbole.model.general_recommender import ngcf

from recbole_bet.model.budgeted import BudgetedRecommender


class NGCF(BudgetedRecommender, ngcf.NGCF):
    budget_tables = {"user_embedding": "user", "item_embedding": "item"}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()
