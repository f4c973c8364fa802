"""NGCF (Wang et al., SIGIR 2019) with budgeted user and item tables.

RecBole's NGCF unchanged, but for its two tables and its adjacency matrix,
multiplied as a symmetric CSR matrix (:mod:`recbole_bet.model.propagation`)
unless node dropout is on. RecBole already switches
NGCF's message dropout off in ``eval()`` (an ``nn.Dropout``), which the
authors' BET code did not.
"""

from recbole.model.general_recommender import ngcf

from recbole_bet.model.budgeted import BudgetedRecommender
from recbole_bet.model.propagation import SymmetricAdjacency


class NGCF(BudgetedRecommender, ngcf.NGCF):
    budget_tables = {"user_embedding": "user", "item_embedding": "item"}
    dot_product_scores = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()
        if not self.node_dropout:  # node dropout resamples the COO matrix every batch: keep RecBole's
            self.norm_adj_matrix = SymmetricAdjacency(self.norm_adj_matrix)
