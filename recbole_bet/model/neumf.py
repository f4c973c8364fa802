"""NeuMF / NCF (He et al., WWW 2017) with budgeted GMF and MLP tables.

All four tables count against the budget. A user's (or item's) row is its
GMF and MLP embeddings side by side, so ``d_max = mf_embedding_size +
mlp_embedding_size`` (64 + 64 = 128 by default) and a row of size ``d``
keeps ``ceil(d / 2)`` GMF and ``floor(d / 2)`` MLP dimensions (for unequal
widths, the proportional split of :func:`recbole_bet.budget.sizes_for_tables`).

The loss is RecBole's, pointwise BCE on one sampled negative per positive (``neumf_loss: bce``), or
the paper's BPR (its Eq. 2, as for every backbone: ``neumf_loss: bpr``), on RecBole's pairwise
loader: the key switches the model's input type before the data are prepared.

RecBole's NeuMF has no ``full_sort_predict``: its evaluator falls back to
scoring every (user, item) pair through the whole network. The version here
computes the first MLP layer once per user and once per item, since it is
linear in ``[e_u ; e_v]``, and the GMF part as one matrix product. On the
``[users, items, hidden]`` blocks it builds, the ReLUs run in place and the
dropouts (identities in evaluation) are skipped: the same values, bit for bit,
and fewer fresh blocks of memory (bench/neumf_scoring.py: 1.5-2x faster scoring
under the default allocator; only a few percent under the one run_recbole_bet
sets, which already reuses freed blocks).
"""

import torch
from recbole.model.general_recommender import neumf
from recbole.model.loss import BPRLoss
from recbole.utils import InputType
from torch import nn

from recbole_bet.errors import ConfigError
from recbole_bet.model.budgeted import BudgetedRecommender

LOSSES = ("bce", "bpr")

# Largest [users, items, hidden] block full_sort_predict builds at once (floats).
_BLOCK_FLOATS = 2**25


class NeuMF(BudgetedRecommender, neumf.NeuMF):
    budget_tables = {
        "user_mf_embedding": "user",
        "user_mlp_embedding": "user",
        "item_mf_embedding": "item",
        "item_mlp_embedding": "item",
    }

    @staticmethod
    def configure(final_config: dict) -> None:
        """Check ``neumf_loss`` and give RecBole's loaders the input type it needs (pairwise for BPR)."""
        loss = final_config.get("neumf_loss") or "bce"
        if not isinstance(loss, str) or loss.lower() not in LOSSES:
            raise ConfigError(f"neumf_loss={loss!r}: allowed: {', '.join(LOSSES)}")
        final_config["neumf_loss"] = loss.lower()
        final_config["MODEL_INPUT_TYPE"] = InputType.PAIRWISE if loss.lower() == "bpr" else InputType.POINTWISE

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()
        self.neumf_loss = config["neumf_loss"] or "bce"
        self.bpr_loss = BPRLoss()

    def package_architecture(self) -> dict:
        """What :mod:`recbole_bet.serve` needs besides the weights: the GMF and MLP widths, the MLP's linear layers
        in order (each followed by a ReLU; dropouts are identities in evaluation) and the scoring block size.

        Raises:
            ValueError: a NeuMF that trains only one tower, or whose MLP is not RecBole's Linear/ReLU/Dropout stack.
        """
        if not (self.mf_train and self.mlp_train):
            raise ValueError("a NeuMF package needs both towers (mf_train and mlp_train)")
        layers = list(self.mlp_layers.mlp_layers)
        if not all(isinstance(layer, (nn.Linear, nn.ReLU, nn.Dropout)) for layer in layers):
            raise ValueError(f"a NeuMF package needs an MLP of Linear, ReLU and Dropout layers, got {self.mlp_layers}")
        linear = [f"mlp_layers.mlp_layers.{i}" for i, layer in enumerate(layers) if isinstance(layer, nn.Linear)]
        relu = [isinstance(after, nn.ReLU) for layer, after in zip(layers, layers[1:] + [None]) if isinstance(layer, nn.Linear)]
        if not all(relu):
            raise ValueError(f"a NeuMF package needs a ReLU after every linear layer of the MLP, got {self.mlp_layers}")
        return {
            "mf_embedding_size": self.mf_embedding_size,
            "mlp_embedding_size": self.mlp_embedding_size,
            "linear_layers": linear,
            "block_floats": _BLOCK_FLOATS,
        }

    def calculate_loss(self, interaction):
        """RecBole's BCE on labelled pairs, or BPR on (user, positive, sampled negative) triples."""
        if self.neumf_loss != "bpr":
            return super().calculate_loss(interaction)
        user = interaction[self.USER_ID]
        return self.bpr_loss(self.forward(user, interaction[self.ITEM_ID]), self.forward(user, interaction[self.NEG_ITEM_ID]))

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
            mlp_out = _run_inplace(rest, user_hidden.unsqueeze(1) + item_hidden.unsqueeze(0))  # [b, n_items, last]
            gmf = (self.user_mf_embedding(users) * w_mf) @ item_mf.T  # [b, n_items]
            scores.append(torch.sigmoid(gmf + mlp_out @ w_mlp + self.predict_layer.bias))
        return torch.cat(scores).view(-1)


def _run_inplace(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` in evaluation, with ``x`` a temporary the caller gives up: ReLUs in place on it and on each
    layer's output, dropouts skipped (evaluation's identity); any other layer as it is."""
    for layer in layers:
        if isinstance(layer, nn.ReLU):
            x = x.relu_()
        elif not isinstance(layer, nn.Dropout):
            x = layer(x)
    return x
