"""LightGCN (He et al., SIGIR 2020) with budgeted user and item tables.

RecBole's LightGCN, but for its two tables, which become
:class:`~recbole_bet.embedding.MaskedEmbedding`, its adjacency matrix,
multiplied as a symmetric CSR matrix (:mod:`recbole_bet.model.propagation`),
and a propagation with the same values that training runs for the batch's
rows only (:meth:`LightGCN.propagate`).
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

    def package_architecture(self) -> dict:
        """What :mod:`recbole_bet.serve` needs besides the weights to rebuild the scores: the layer count and
        RecBole's normalisation of the training graph, ``D^-1/2 A D^-1/2`` with ``D = degree + 1e-7``."""
        return {"n_layers": self.n_layers, "adjacency": {"normalisation": "symmetric", "degree_epsilon": 1e-7}}

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

    def propagate(self, rows: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of the ``n_layers + 1`` layer outputs, of every node or, with ``rows``, of those rows only.

        RecBole stacks the layer outputs into one ``[N, n_layers + 1, d]`` tensor and takes its mean:
        one more copy of every layer forward, and as many again backward. Adding each layer to a
        sum as it is made gives the same values (the same additions, in the same order, then one
        division) with neither copy. With ``rows`` (distinct, increasing; training's batch rows)
        each layer's rows are added and the last layer is made for those rows only
        (:meth:`~recbole_bet.model.propagation.SymmetricAdjacency.rows_product`): nothing else reads
        it. A row's value is the same either way.
        """
        layer = self.get_ego_embeddings()
        total = layer if rows is None else layer.index_select(0, rows)
        for depth in range(1, self.n_layers + 1):
            if rows is not None and depth == self.n_layers:
                total = total + self.norm_adj_matrix.rows_product(rows, layer)
            else:
                layer = torch.sparse.mm(self.norm_adj_matrix, layer)
                total = total + (layer if rows is None else layer.index_select(0, rows))
        return total / (self.n_layers + 1)

    def forward(self):
        """RecBole's LightGCN forward: the layer mean of every node (:meth:`propagate`), split into users and items."""
        return torch.split(self.propagate(), [self.n_users, self.n_items])

    def calculate_loss(self, interaction):
        """RecBole's LightGCN loss (BPR on the propagated vectors, L2 on the ego ones), propagated for the
        batch's rows only (:meth:`propagate`) unless they are most of the graph (:meth:`loss_rows`): the
        same values without the last layer's other rows."""
        self.restore_user_e = self.restore_item_e = None  # as RecBole: training makes the cache stale
        user, pos_item, neg_item = interaction[self.USER_ID], interaction[self.ITEM_ID], interaction[self.NEG_ITEM_ID]
        _, last_rows, position = self.loss_rows(interaction)
        picked = self.propagate(last_rows).index_select(0, position)
        u_embeddings, pos_embeddings, neg_embeddings = picked.split(len(user))
        pos_scores = torch.mul(u_embeddings, pos_embeddings).sum(dim=1)
        neg_scores = torch.mul(u_embeddings, neg_embeddings).sum(dim=1)
        mf_loss = self.mf_loss(pos_scores, neg_scores)
        reg_loss = self.reg_loss(
            self.user_embedding(user), self.item_embedding(pos_item), self.item_embedding(neg_item), require_pow=self.require_pow
        )
        return mf_loss + self.reg_weight * reg_loss

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
