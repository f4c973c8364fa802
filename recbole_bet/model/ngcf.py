"""NGCF (Wang et al., SIGIR 2019) with budgeted user and item tables.

RecBole's NGCF, but for its two tables and its adjacency matrix, multiplied as
a symmetric CSR matrix (:mod:`recbole_bet.model.propagation`) unless node
dropout is on, and a propagation that does the same arithmetic with fewer
passes over the ``[n_users + n_items, d]`` tensors (:meth:`NGCF.layer_outputs`).
RecBole already switches NGCF's message dropout off in ``eval()`` (an
``nn.Dropout``), which the authors' BET code did not.
"""

import torch
import torch.nn.functional as F
from recbole.model.general_recommender import ngcf

from recbole_bet.model.budgeted import BudgetedRecommender
from recbole_bet.model.propagation import SymmetricAdjacency


class UnitRows(torch.autograd.Function):
    """``F.normalize(x, p=2, dim=1)`` (rows over ``max(|row|, eps)``) as one product by the inverse norms, with its
    own backward: ``r * (g - y * (g . y))`` per row, ``y`` the output and ``r`` the inverse norm (``r * g`` for a
    row at the ``eps`` clamp, whose norm gets no gradient). Autograd's backward of the division makes several
    full-size quotients and a negation; this makes two products, a row sum and one fused update."""

    @staticmethod
    def forward(ctx, x, eps: float = 1e-12):
        norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
        inverse = 1 / norms.clamp_min(eps)
        out = x * inverse
        ctx.save_for_backward(out, inverse, norms > eps)
        return out

    @staticmethod
    def backward(ctx, grad):
        out, inverse, unclamped = ctx.saved_tensors
        along = (grad * out).sum(dim=1, keepdim=True) * unclamped
        return torch.addcmul(grad, out, along, value=-1).mul_(inverse), None


class BiInteraction(torch.autograd.Function):
    """One NGCF layer before dropout, ``LeakyReLU(W1 (E + LE) + W2 (LE * E) + b, 0.2)``, with its own backward.

    Forward: the second product accumulates into the first (``addmm_``) and LeakyReLU works in
    place. Backward: the gradients of ``E`` and ``LE`` are each one fused ``g1 + g2 * other``
    (``addcmul``) where autograd makes the two products of the elementwise term and then adds
    each to the linear term's gradient: fewer full-size passes and tensors, the same sums.
    """

    SLOPE = 0.2

    @staticmethod
    def forward(ctx, features, side, w1, w2, bias):
        summed, product = features + side, side * features
        out = torch.addmm(bias, summed, w1.t())
        out.addmm_(product, w2.t())
        F.leaky_relu_(out, BiInteraction.SLOPE)
        ctx.save_for_backward(features, side, summed, product, w1, w2, out)
        return out

    @staticmethod
    def backward(ctx, grad):
        features, side, summed, product, w1, w2, out = ctx.saved_tensors
        grad = torch.ops.aten.leaky_relu_backward(grad, out, BiInteraction.SLOPE, True)
        grad_summed, grad_product = grad @ w1, grad @ w2
        grad_features = torch.addcmul(grad_summed, grad_product, side)
        grad_side = grad_summed.addcmul_(grad_product, features)
        return grad_features, grad_side, grad.t() @ summed, grad.t() @ product, grad.sum(dim=0)


class NGCF(BudgetedRecommender, ngcf.NGCF):
    budget_tables = {"user_embedding": "user", "item_embedding": "item"}
    dot_product_scores = True

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        self.inject_budget_tables()
        if not self.node_dropout:  # node dropout resamples the COO matrix every batch: keep RecBole's
            self.norm_adj_matrix = SymmetricAdjacency(self.norm_adj_matrix)

    def package_architecture(self) -> dict:
        """What :mod:`recbole_bet.serve` needs besides the weights (``GNNlayers.<i>.{linear,interActTransform}``):
        the layer count, LeakyReLU's slope, the normalisation's clamp and the graph's normalisation, RecBole's
        ``D^-1/2 A D^-1/2`` with ``D = degree + 1e-7``. Dropouts are identities in evaluation."""
        return {
            "n_layers": len(self.GNNlayers),
            "leaky_relu_slope": BiInteraction.SLOPE,
            "norm_eps": 1e-12,
            "adjacency": {"normalisation": "symmetric", "degree_epsilon": 1e-7},
        }

    def layer_outputs(self, last_rows: torch.Tensor | None = None) -> list[torch.Tensor]:
        """The ego embeddings and each GNN layer's output, as RecBole's ``forward`` makes them before concatenating.

        A layer is RecBole's ``BiGNNLayer``, ``W1 (E + LE) + b1 + W2 (LE * E) + b2``, then LeakyReLU
        (0.2), message dropout and L2 normalisation. Here the layer and its LeakyReLU are
        :class:`BiInteraction`, the biases are added once, and the normalisation is
        :class:`UnitRows`: the same terms, rounded in another order. Dropout is RecBole's module,
        called in the same order on tensors of the same shapes, so it draws the same masks.

        With ``last_rows`` (distinct node indices, increasing), the last layer is made for those rows only
        (``outputs[-1][i]`` is node ``last_rows[i]``): nothing feeds on it but the loss, which needs only
        the batch's rows. Each of its rows is computed from the same terms as the whole layer's, with
        the same dropout mask (:meth:`dropout_rows`).
        """
        adjacency = self.sparse_dropout(self.norm_adj_matrix) if self.node_dropout != 0 else self.norm_adj_matrix
        features = self.get_ego_embeddings()
        outputs = [features]
        for depth, gnn in enumerate(self.GNNlayers, start=1):
            bias = gnn.linear.bias + gnn.interActTransform.bias
            weights = gnn.linear.weight, gnn.interActTransform.weight
            if last_rows is not None and depth == len(self.GNNlayers):
                if isinstance(adjacency, SymmetricAdjacency):
                    side = adjacency.rows_product(last_rows, features)
                else:  # node dropout's resampled COO matrix
                    side = torch.sparse.mm(adjacency, features).index_select(0, last_rows)
                layer = BiInteraction.apply(features.index_select(0, last_rows), side, *weights, bias)
                features = UnitRows.apply(self.dropout_rows(layer, last_rows, len(features)))
            else:
                side = torch.sparse.mm(adjacency, features)
                layer = BiInteraction.apply(features, side, *weights, bias)
                features = UnitRows.apply(self.emb_dropout(layer))
            outputs.append(features)
        return outputs

    def dropout_rows(self, layer: torch.Tensor, rows: torch.Tensor, n_rows: int) -> torch.Tensor:
        """``self.emb_dropout`` applied to an ``[n_rows, d]`` tensor whose rows ``rows`` are ``layer``, restricted to those rows.

        The mask is drawn as torch's dropout draws it on the CPU, ``bernoulli_(1 - p)`` over all
        ``n_rows x d`` entries and divided by ``1 - p`` (nothing drawn when ``p`` is 0 or 1, or in
        ``eval()``): the same random stream and, on the kept rows, the same values as RecBole's
        dropout of the whole layer. Only the multiplication is restricted to ``rows``.
        """
        p = self.emb_dropout.p
        if not self.emb_dropout.training or p == 0:
            return layer
        if p == 1:
            return layer * 0
        noise = layer.new_empty(n_rows, layer.shape[1]).bernoulli_(1 - p)
        return layer * noise.index_select(0, rows).div_(1 - p)

    def forward(self):
        user_all, item_all = torch.cat(self.layer_outputs(), dim=1).split([self.n_users, self.n_items])
        return user_all, item_all

    def calculate_loss(self, interaction):
        """RecBole's NGCF loss, with each layer's rows of the batch gathered before concatenating.

        RecBole concatenates every layer of every node (``[n_users + n_items, 320]``) and then
        picks the batch's rows; the loss needs only those rows, so they are picked from each
        layer and only they are concatenated, and the last layer is made for the batch's distinct
        rows only (:meth:`layer_outputs`) unless they are most of the graph (:meth:`loss_rows`): the
        same values, a fraction of the work.
        """
        self.restore_user_e = self.restore_item_e = None  # as RecBole: training makes the cache stale
        batch = len(interaction[self.USER_ID])
        rows, last_rows, position = self.loss_rows(interaction)
        *inner, last = self.layer_outputs(last_rows)
        picked = torch.cat([layer.index_select(0, rows) for layer in inner] + [last.index_select(0, position)], dim=1)
        u_embeddings, pos_embeddings, neg_embeddings = picked.split(batch)
        pos_scores = torch.mul(u_embeddings, pos_embeddings).sum(dim=1)
        neg_scores = torch.mul(u_embeddings, neg_embeddings).sum(dim=1)
        mf_loss = self.mf_loss(pos_scores, neg_scores)
        reg_loss = self.reg_loss(u_embeddings, pos_embeddings, neg_embeddings)
        return mf_loss + self.reg_weight * reg_loss
