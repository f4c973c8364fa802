"""LightGCN (He et al., SIGIR 2020) with budgeted user and item tables.

RecBole's LightGCN unchanged, but for its two tables, which become
:class:`~recbole_bet.embedding.MaskedEmbedding`, and its adjacency matrix,
multiplied as a symmetric CSR matrix (:mod:`recbole_bet.model.propagation`).
"""

from recbole.model.general_recommender import lightgcn

from recbole_bet.model.budgeted import BudgetedRecommender
from recbole_bet.model.propagation import SymmetricAdjacency


class LightGCN(BudgetedRecommender, lightgcn.LightGCN):
    budget_tables = {"user_embedding": "user", "item_embedding": "item"}

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()
        self.norm_adj_matrix = SymmetricAdjacency(self.norm_adj_matrix)
