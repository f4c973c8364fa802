"""What makes a RecBole model budgeted: masked tables and one call to apply an Action.

BET (Qu et al., WSDM 2024), section 3.1: the backbone ``G_Theta`` keeps its
own forward pass; only its embedding tables are masked.
"""

from __future__ import annotations

import numpy as np
import torch

from recbole_bet.budget import FIELDS, Action, ElementMask, SharedBuckets, sizes_for_tables
from recbole_bet.embedding import MaskedEmbedding, SharedEmbedding, inject_masked_embeddings, swap_tables
from recbole_bet.ranking import ScreenedItems


class BudgetedRecommender:
    """Mixin for a RecBole model subclass, placed before the RecBole class.

    A subclass names its embedding tables in ``budget_tables`` (attribute name
    -> ``"user"`` or ``"item"``) and calls :meth:`inject_budget_tables` at the
    end of ``__init__``. Tables of one field are read as one row, in the order
    given: ``d_max`` is the sum of their widths and a row's size is split
    across them by :func:`recbole_bet.budget.sizes_for_tables`.

    RecBole's padding row (id 0) of every table gets size 0: it is never looked
    up and counts against no budget.
    """

    budget_tables: dict[str, str] = {}
    # Cached propagated embeddings (LightGCN, NGCF) that go stale when masks or weights change.
    cached_embeddings = ("restore_user_e", "restore_item_e")
    # True where full_sort_predict is restore_user_e[user] @ restore_item_e.T (LightGCN, NGCF): see full_sort_factors
    dot_product_scores = False
    # Training makes a GNN's last layer for the batch's rows only when they are at most this share of the nodes.
    last_layer_share = 0.5

    def __init__(self, config, dataset):
        super().__init__(config, dataset)
        # the precision the tables train at (quantisation-aware), from the run's value_dtype; float32 under ptq, whose
        # quantisation comes after training
        self.training_dtype = "float32" if config["ptq"] else (config["value_dtype"] or "float32")

    def inject_budget_tables(self) -> None:
        inject_masked_embeddings(self, list(self.budget_tables))
        widths = {field: [self.get_submodule(n).embedding_dim for n in self.tables(field)] for field in FIELDS}
        if sum(widths["user"]) != sum(widths["item"]):
            raise ValueError(f"user and item rows must have one width, got {widths}")
        self.apply_action(Action.uniform(sum(widths["user"]), self.n_users - 1, self.n_items - 1, sum(widths["user"])))
        self.set_value_dtype(getattr(self, "training_dtype", "float32"))

    @property
    def value_dtype(self) -> str:
        """The precision of the tables' values (every table has one, shared bucket tables too)."""
        return getattr(self.masked_tables("user")[0], "value_dtype", "float32")

    def set_value_dtype(self, dtype: str) -> None:
        """Store and train every table's values at ``dtype`` (:mod:`recbole_bet.precision`); drop cached propagations."""
        for field in FIELDS:
            for table in self.masked_tables(field):
                table.set_value_dtype(dtype)
        self.clear_cached_embeddings()

    def tables(self, field: str) -> list[str]:
        return [name for name, f in self.budget_tables.items() if f == field]

    def masked_tables(self, field: str) -> list[MaskedEmbedding]:
        return [self.get_submodule(name) for name in self.tables(field)]

    @property
    def d_max(self) -> int:
        return sum(t.embedding_dim for t in self.masked_tables("user"))

    @property
    def kept_width(self) -> int:
        """Columns any row of any table keeps: the largest size (1 <= kept_width <= d_max)."""
        return max(1, max(int(t.sizes.max()) for field in FIELDS for t in self.masked_tables(field)))

    def apply_action(self, action: Action) -> None:
        """Mask every table to ``action``'s sizes (and precision, if it carries one) and drop cached propagated
        embeddings."""
        if action.d_max != self.d_max or (len(action.user_sizes), len(action.item_sizes)) != (
            self.n_users - 1,
            self.n_items - 1,
        ):
            raise ValueError(
                f"action for {len(action.user_sizes)} users, {len(action.item_sizes)} items at d_max={action.d_max} "
                f"does not fit this model's {self.n_users - 1} users, {self.n_items - 1} items at d_max={self.d_max}"
            )
        for field, sizes in zip(FIELDS, (action.user_sizes, action.item_sizes)):
            tables = self.masked_tables(field)
            with_padding = np.concatenate([[0], sizes])
            for table, part in zip(tables, sizes_for_tables(with_padding, [t.embedding_dim for t in tables])):
                table.set_sizes(torch.from_numpy(part))
        if getattr(action, "value_dtype", None) is not None:  # an action of BET's search of precision
            self.set_value_dtype(action.value_dtype)
        self.clear_cached_embeddings()

    def apply_element_mask(self, mask: ElementMask) -> None:
        """Keep single weights (PEP, magnitude pruning): a field's ``[rows, d_max]`` mask is split by columns
        across its tables, in ``budget_tables`` order (NeuMF: GMF columns, then MLP)."""
        if mask.d_max != self.d_max or (len(mask.user_mask), len(mask.item_mask)) != (self.n_users - 1, self.n_items - 1):
            raise ValueError(
                f"mask for {len(mask.user_mask)} users, {len(mask.item_mask)} items at d_max={mask.d_max} "
                f"does not fit this model's {self.n_users - 1} users, {self.n_items - 1} items at d_max={self.d_max}"
            )
        for field, rows in zip(FIELDS, (mask.user_mask, mask.item_mask)):
            start = 0
            for table in self.masked_tables(field):
                part = np.zeros((table.num_embeddings, table.embedding_dim), dtype=bool)  # padding row: nothing
                part[1:] = rows[:, start : start + table.embedding_dim]
                table.set_element_mask(torch.from_numpy(part))
                start += table.embedding_dim
        self.clear_cached_embeddings()

    @torch.no_grad()
    def apply_shared_buckets(self, layout: SharedBuckets) -> None:
        """Replace every table by a :class:`~recbole_bet.embedding.SharedEmbedding` of ``layout``'s buckets (QR,
        GraphHash), new bucket vectors drawn at the scale of the table it replaces, at its precision. A field's width
        is split across its tables as a row's size is (NeuMF: GMF, then MLP), every table with the field's partitions."""
        if layout.d_max != self.d_max or (layout.user.n_rows, layout.item.n_rows) != (self.n_users - 1, self.n_items - 1):
            raise ValueError(
                f"layout for {layout.user.n_rows} users, {layout.item.n_rows} items at d_max={layout.d_max} "
                f"does not fit this model's {self.n_users - 1} users, {self.n_items - 1} items at d_max={self.d_max}"
            )
        shared = {}
        for field, buckets in zip(FIELDS, (layout.user, layout.item)):
            names = self.tables(field)
            tables = [self.get_submodule(name) for name in names]
            widths = sizes_for_tables(np.array([buckets.width]), [t.embedding_dim for t in tables])
            for name, table, width in zip(names, tables, widths):
                std = float(table.weight[1:].std()) if table.weight.shape[0] > 2 else 1.0
                shared[name] = SharedEmbedding(buckets, table.embedding_dim, int(width[0]), std).to(table.weight.device)
                shared[name].set_value_dtype(table.value_dtype)  # the precision the run trains at
        swap_tables(self, shared)

    @torch.no_grad()
    def field_weights(self, field: str) -> np.ndarray:
        """A field's unmasked weights as one ``[rows, d_max]`` float array (its tables side by side, padding excluded):
        the columns of an :class:`~recbole_bet.budget.ElementMask`."""
        return torch.cat([t.full_weight[1:] for t in self.masked_tables(field)], dim=1).cpu().numpy()

    def current_action(self) -> Action:
        """The Action the tables are masked to now."""
        per_field = [sum(t.sizes.long() for t in self.masked_tables(field))[1:].cpu().numpy() for field in FIELDS]
        pruned_rows = any(sizes.size and sizes.min() == 0 for sizes in per_field)
        return Action(per_field[0], per_field[1], self.d_max, min_size=0 if pruned_rows else 1)

    @property
    def scoring_width(self) -> int:
        """Columns of the propagated vectors that full-ranking scores use (all; LightGCN: ``kept_width``)."""
        return self.restore_item_e.shape[1]

    def propagated(self) -> tuple[torch.Tensor, torch.Tensor]:
        """RecBole's cache of the propagated ``(user, item)`` vectors for full ranking, filled if empty."""
        if self.restore_user_e is None or self.restore_item_e is None:
            self.restore_user_e, self.restore_item_e = self.forward()
        return self.restore_user_e, self.restore_item_e

    def item_side(self, name: str, build):
        """``build(restore_item_e)``, made once per propagation: kept with the ``restore_item_e`` it was made from."""
        cache = self.__dict__.setdefault("_item_sides", {})
        made_from, value = cache.get(name, (None, None))
        if made_from is not self.restore_item_e:
            value = build(self.restore_item_e)
            cache[name] = (self.restore_item_e, value)
        return value

    def full_sort_factors(self, interaction) -> tuple[torch.Tensor, ScreenedItems]:
        """``(user vectors, items)`` whose dot products are :meth:`full_sort_predict`'s scores, for
        :func:`recbole_bet.ranking.screened_topk`; only for ``dot_product_scores`` models."""
        users, _ = self.propagated()
        width = self.scoring_width
        items = self.item_side("screened", lambda item_e: ScreenedItems(item_e[:, :width]))
        return users[interaction[self.USER_ID], :width], items

    def loss_rows(self, interaction) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor]:
        """A BPR batch's rows of the ``[n_users + n_items]`` node table (LightGCN, NGCF).

        Returns:
            ``(rows, last_rows, position)``: the users', positive items' and negative items' rows, in
            that order (items offset by ``n_users``); the rows to make the last layer for (distinct,
            increasing), or ``None`` for every node; and where each of ``rows`` is in that last layer
            (``rows`` itself when it has every node). ``last_rows`` is ``None`` when the batch holds
            more than ``last_layer_share`` of the nodes: making the last layer for its rows only would
            then cost more than it saves (LightGCN's step, about 80% of ml-100k's nodes a batch: 10% slower; 28% of
            gowalla-s: 10% faster; 8% of Gowalla: 22% faster).
        """
        rows = torch.cat([
            interaction[self.USER_ID],
            interaction[self.ITEM_ID] + self.n_users,
            interaction[self.NEG_ITEM_ID] + self.n_users,
        ])
        distinct, position = torch.unique(rows, return_inverse=True)
        if len(distinct) > self.last_layer_share * (self.n_users + self.n_items):
            return rows, None, rows
        return rows, distinct, position

    def clear_cached_embeddings(self) -> None:
        for name in self.cached_embeddings:
            if hasattr(self, name):
                setattr(self, name, None)

    def load_state_dict(self, state_dict, strict: bool = True, **kwargs):
        result = super().load_state_dict(state_dict, strict=strict, **kwargs)
        self.clear_cached_embeddings()
        return result
