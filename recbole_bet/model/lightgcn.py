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
        self._scoring = (None, None)  # (restore_item_e it was built from, its used columns transposed)

    def full_sort_predict(self, interaction):
        """RecBole's full-ranking scores, computed on the used width only.

        LightGCN's propagation is linear, so a column no table row keeps stays
        zero in every layer: scores need only the first ``max(sizes)`` columns
        (13 of 128 for equal sizes at sparsity 0.9). The item side is kept
        transposed and contiguous for the matrix product. Exact: the dropped
        columns are zeros.
        """
        user = interaction[self.USER_ID]
        if self.restore_user_e is None or self.restore_item_e is None:
            self.restore_user_e, self.restore_item_e = self.forward()
        if self._scoring[0] is not self.restore_item_e:
            width = max(int(t.sizes.max()) for t in (self.user_embedding, self.item_embedding))
            self._scoring = (self.restore_item_e, self.restore_item_e[:, :width].t().contiguous())
        item_columns = self._scoring[1]
        return (self.restore_user_e[user, : item_columns.shape[0]] @ item_columns).view(-1)
