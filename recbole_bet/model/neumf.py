"""NeuMF / NCF (He et al., WWW 2017) with budgeted GMF and MLP tables.

All four tables count against the budget. A user's (or item's) row is its
GMF and MLP embeddings side by side, so ``d_max = mf_embedding_size +
mlp_embedding_size`` (64 + 64 = 128 by default) and a row of size ``d``
keeps ``ceil(d / 2)`` GMF and ``floor(d / 2)`` MLP dimensions (for unequal
widths, the proportional split of :func:`recbole_bet.budget.sizes_for_tables`).

RecBole's NeuMF has no ``full_sort_predict``: its evaluator falls back to
scoring every (user, item) pair through the whole network. The version here
computes the first MLP layer once per user and once per item, since it is
linear in ``[e_u ; e_v]``, and the GMF part as one matrix product.
"""

import torch
from recbole.model.general_recommender import neumf
from torch import nn

from recbole_bet.model.budgeted import BudgetedRecommender

# Largest [users, items, hidden] block full_sort_predict builds at once (floats).
_BLOCK_FLOATS = 2**25


class NeuMF(BudgetedRecommender, neumf.NeuMF):
    budget_tables = {
        "user_mf_embedding": "user",
        "user_mlp_embedding": "user",
        "item_mf_embedding": "item",
        "item_mlp_embedding": "item",
    }

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()

    def full_sort_predict(self, interaction):
        """Scores of every item for the users in ``interaction``: ``[n_users_in_batch * n_items]``."""
        if self.training or not (self.mf_train and self.mlp_train):
            raise NotImplementedError  # RecBole's trainer then scores pair by pair
        user = interaction[self.USER_ID]
        layers = list(self.mlp_layers.mlp_layers)
        first = next(i for i, layer in enumerate(layers) if isinstance(layer, nn.Linear))
        linear, rest = layers[first], nn.Sequential(*layers[first + 1 :])
        width = self.user_mlp_embedding.embedding_dim
        w_user, w_item = linear.weight[:, :width], linear.weight[:, width:]
        item_hidden = self.item_mlp_embedding.weight @ w_item.T  # [n_items, hidden]
        n_mf = self.mf_embedding_size
        w_mf, w_mlp = self.predict_layer.weight[0, :n_mf], self.predict_layer.weight[0, n_mf:]
        item_mf = self.item_mf_embedding.weight  # [n_items, mf]

        chunk = max(1, _BLOCK_FLOATS // (self.n_items * max(linear.out_features, 1)))
        scores = []
        for users in user.split(chunk):
            user_hidden = self.user_mlp_embedding(users) @ w_user.T + linear.bias  # [b, hidden]
            mlp_out = rest(user_hidden.unsqueeze(1) + item_hidden.unsqueeze(0))  # [b, n_items, last]
            gmf = (self.user_mf_embedding(users) * w_mf) @ item_mf.T  # [b, n_items]
            scores.append(torch.sigmoid(gmf + mlp_out @ w_mlp + self.predict_layer.bias))
        return torch.cat(scores).view(-1)
