"""LightGCN (He et al., SIGIR 2020) with budgeted user and item tables.

RecBole's LightGCN unchanged, but for its two tables, which become
:class:`~recbole_bet.embedding.MaskedEmbedding`, and its adjacency matrix,
multiplied as a symmetric CSR matrix (:mod:`recbole_bet.model.propagation`).
"""

import torch
from recbole.model.general_recommender import lightgcn

from recbole_bet.model.budgeted import BudgetedRecommender
from recbole_bet.model.propagation import SymmetricAdjacency


class LightGCN(BudgetedRecommender, lightgcn.LightGCN):
    budget_tables = {"user_embedding": "user", "item_embedding": "item"}
    dot_product_scores = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()
        self.norm_adj_matrix = SymmetricAdjacency(self.norm_adj_matrix)

    def get_ego_embeddings(self):
        """RecBole's ``[n_users + n_items, d]`` ego embeddings, cut to the used width.

        Propagation is linear, so columns no row keeps stay zero through every
        layer: RecBole's forward then propagates ``kept_width`` columns instead
        of ``d_max`` (13 instead of 128 for equal sizes at sparsity 0.9), with
        the same scores and gradients. The tables are masked and concatenated on
        those columns only, not at ``d_max`` and then cut: the same values and,
        under deterministic kernels, the same gradients bit for bit.
        """
        width = self.kept_width
        return torch.cat([self.user_embedding.masked_columns(width), self.item_embedding.masked_columns(width)], dim=0)

    def forward(self):
        """RecBole's LightGCN forward, the layer mean taken as a running sum.

        RecBole stacks the ``n_layers + 1`` layer outputs into one
        ``[N, n_layers + 1, d]`` tensor and takes its mean: one more copy of every
        layer forward, and as many again backward. Adding each layer to a sum
        as it is made gives the same values (the same additions, in the same
        order, then one division) with neither copy.
        """
        layer = self.get_ego_embeddings()
        total = layer
        for _ in range(self.n_layers):
            layer = torch.sparse.mm(self.norm_adj_matrix, layer)
            total = total + layer
        total = total / (self.n_layers + 1)
        return torch.split(total, [self.n_users, self.n_items])

    @property
    def scoring_width(self) -> int:
        return self.kept_width

    def full_sort_predict(self, interaction):
        """RecBole's full-ranking scores, computed on the used width only.

        Scores need only the first ``kept_width`` columns (see
        :meth:`get_ego_embeddings`). The item side is kept transposed and
        contiguous for the matrix product. Exact: the dropped columns are zeros.
        """
        users, _ = self.propagated()
        width = self.scoring_width
        item_columns = self.item_side("scoring", lambda item_e: item_e[:, :width].t().contiguous())
        return (users[interaction[self.USER_ID], :width] @ item_columns).view(-1)
