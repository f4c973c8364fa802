"""Prefix-masked embedding tables (BET, Qu et al., WSDM 2024, section 3.1).

Row ``n`` of a :class:`MaskedEmbedding` uses only its first ``d_n`` dimensions:
the binary mask ``M`` of Eq. (3) is a prefix mask, so one size per row
describes it and the kept values can be stored without column indices.
"""

from __future__ import annotations

import math
from functools import reduce

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from recbole_bet.budget import FieldBuckets, check_value_dtype
from recbole_bet.precision import fake_quantise, quantise_rows


class MaskedEmbedding(nn.Module):
    """Drop-in for :class:`torch.nn.Embedding` whose row ``n`` keeps its first ``sizes[n]`` dimensions.

    ``module(idx)`` and ``module.weight`` both return masked values, because
    RecBole's LightGCN and NGCF read ``.weight`` directly. Masked entries get
    exactly zero gradient (they are multiplied by an exact 0), so an optimiser
    never moves them, apart from weight decay on values that are already 0.

    Example::

        >>> emb = MaskedEmbedding(4, 8)
        >>> emb.set_sizes(torch.tensor([8, 3, 1, 0]))
        >>> emb(torch.tensor([1])).shape, int((emb.weight[1] != 0).sum())
        (torch.Size([1, 8]), 3)

    Args:
        num_embeddings (int): rows.
        embedding_dim (int): d_max, the width of the full table.
        sizes (torch.Tensor, optional): int ``[num_embeddings]``; defaults to d_max everywhere.
        weight (torch.Tensor, optional): initial values, copied; default N(0, 1), as ``nn.Embedding``.

    State (saved in ``state_dict``):
        full_weight: float ``[num_embeddings, embedding_dim]``, unmasked storage.
        sizes: int16 ``[num_embeddings]``, the kept prefix of every row.
        element_mask: bool ``[num_embeddings, embedding_dim]`` when single weights are kept
            (:meth:`set_element_mask`), else empty ``[0, embedding_dim]``.

    Precision (not saved: set by the model from the run's ``value_dtype``, or by an action that carries one):
        value_dtype (str): ``float32`` (the default: the values as they are), ``float16``, ``int8`` or ``int4``:
            ``.weight``, ``module(idx)`` and :meth:`masked_columns` return the masked values as a table at that
            precision stores them, with a straight-through gradient (:func:`recbole_bet.precision.fake_quantise`).
    """

    def __init__(
        self, num_embeddings: int, embedding_dim: int, sizes: torch.Tensor | None = None, weight: torch.Tensor | None = None
    ):
        super().__init__()
        self.num_embeddings = num_embeddings
        self.embedding_dim = embedding_dim
        if weight is None:
            self.full_weight = nn.Parameter(torch.empty(num_embeddings, embedding_dim))
            nn.init.normal_(self.full_weight)
        else:  # no random draw: a model that injects masked tables draws what RecBole's model draws
            if weight.shape != (num_embeddings, embedding_dim):
                raise ValueError(f"weight has shape {tuple(weight.shape)}; expected ({num_embeddings}, {embedding_dim})")
            self.full_weight = nn.Parameter(weight.detach().clone())
        self.register_buffer("sizes", torch.full((num_embeddings,), embedding_dim, dtype=torch.int16))
        # An element mask (PEP, magnitude pruning): bool [num_embeddings, embedding_dim]; empty [0, embedding_dim]
        # for a prefix mask. Saved, so a checkpoint of an element-masked model reloads its mask.
        self.register_buffer("element_mask", torch.zeros(0, embedding_dim, dtype=torch.bool))
        # Derived from sizes; not saved, rebuilt on load.
        self.register_buffer("mask", torch.ones(num_embeddings, embedding_dim), persistent=False)
        self._unmasked = True
        self.value_dtype = "float32"
        if sizes is not None:
            self.set_sizes(sizes)

    @classmethod
    def from_embedding(cls, embedding: nn.Embedding) -> "MaskedEmbedding":
        """A masked table holding ``embedding``'s current weights, every row at full size."""
        masked = cls(embedding.num_embeddings, embedding.embedding_dim, weight=embedding.weight)
        return masked.to(embedding.weight.device)

    @torch.no_grad()
    def set_sizes(self, sizes) -> None:
        """Keep the first ``sizes[n]`` dimensions of row ``n`` (0 <= sizes[n] <= embedding_dim)."""
        sizes = torch.as_tensor(sizes, device=self.sizes.device)
        if sizes.shape != (self.num_embeddings,):
            raise ValueError(f"sizes has shape {tuple(sizes.shape)}; expected ({self.num_embeddings},)")
        if sizes.numel() and (int(sizes.min()) < 0 or int(sizes.max()) > self.embedding_dim):
            raise ValueError(
                f"sizes span [{int(sizes.min())}, {int(sizes.max())}]; allowed: [0, {self.embedding_dim}]"
            )
        self.sizes.copy_(sizes.to(torch.int16))
        self.element_mask = self.element_mask.new_zeros(0, self.embedding_dim)
        self._refresh_mask()

    @torch.no_grad()
    def set_element_mask(self, mask) -> None:
        """Keep the weights where ``mask`` (bool ``[num_embeddings, embedding_dim]``) is True.

        ``sizes`` then holds, per row, the prefix that covers its kept weights (last kept column + 1),
        which is what LightGCN's column cut (``kept_width``) needs.
        """
        mask = torch.as_tensor(mask, device=self.sizes.device)
        if mask.shape != (self.num_embeddings, self.embedding_dim) or mask.dtype != torch.bool:
            raise ValueError(f"mask is {mask.dtype} {tuple(mask.shape)}; expected bool ({self.num_embeddings}, {self.embedding_dim})")
        columns = torch.arange(1, self.embedding_dim + 1, device=mask.device)
        self.sizes.copy_((mask * columns).amax(1).to(torch.int16))
        self.element_mask = mask.clone()
        self._refresh_mask()

    def set_value_dtype(self, dtype: str) -> None:
        """Store (and train) the values at ``dtype`` (:data:`recbole_bet.budget.VALUE_DTYPES`)."""
        self.value_dtype = check_value_dtype(dtype)

    @torch.no_grad()
    def stored_rows(self) -> tuple[torch.Tensor, torch.Tensor]:
        """What an int8/int4 table stores: ``(q, scales)``, int8 ``[num_embeddings, embedding_dim]`` (0 where nothing is
        kept) and float32 ``[num_embeddings]`` (2-byte scales, :func:`~recbole_bet.precision.row_scales`), with ``q * scales`` equal to :attr:`weight`."""
        masked = self.full_weight if self._unmasked else self.full_weight * self.mask
        return quantise_rows(masked, self.value_dtype)

    @property
    def is_element_masked(self) -> bool:
        return self.element_mask.numel() > 0

    def _refresh_mask(self) -> None:
        if self.is_element_masked:
            self.mask = self.element_mask.to(self.full_weight.dtype)
            self._unmasked = bool(self.element_mask.all())
            return
        columns = torch.arange(self.embedding_dim, device=self.sizes.device)
        self.mask = (columns < self.sizes.long().unsqueeze(1)).to(self.full_weight.dtype)
        self._unmasked = bool((self.sizes == self.embedding_dim).all())

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        key = prefix + "element_mask"
        if prefix + "sizes" in state_dict:  # this table is being loaded (not a partial load of other modules)
            # a checkpoint from before element masks has none: a prefix mask
            state_dict.setdefault(key, self.element_mask.new_zeros(0, self.embedding_dim))
            # the buffer takes the checkpoint's shape, on this table's device
            self.element_mask = self.element_mask.new_empty(state_dict[key].shape)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._refresh_mask()

    @property
    def weight(self) -> torch.Tensor:
        """Masked table, ``[num_embeddings, embedding_dim]``, at the table's precision."""
        if self._unmasked:
            return fake_quantise(self.full_weight, self.value_dtype)
        return fake_quantise(self.full_weight * self.mask, self.value_dtype)

    def masked_columns(self, width: int) -> torch.Tensor:
        """The first ``width`` columns of :attr:`weight`, ``[num_embeddings, width]``, computed on
        those columns only (the same values; the gradient of the others is zero either way)."""
        if width == self.embedding_dim:
            return self.weight
        # a row's scale is the same on these columns: no row keeps a value beyond them
        return fake_quantise(self.full_weight[:, :width] * self.mask[:, :width], self.value_dtype)

    @property
    def kept_params(self) -> int:
        if self.is_element_masked:
            return int(self.element_mask.sum(dtype=torch.int64))
        return int(self.sizes.sum(dtype=torch.int64))

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (any shape), masked: ``[*idx.shape, embedding_dim]``."""
        rows = self.full_weight[idx]
        if self._unmasked:
            return fake_quantise(rows, self.value_dtype)
        return fake_quantise(rows * self.mask[idx], self.value_dtype)

    def extra_repr(self) -> str:
        precision = f", {self.value_dtype}" if self.value_dtype != "float32" else ""
        return f"{self.num_embeddings}, {self.embedding_dim}, kept={self.kept_params}{precision}"


class SharedEmbedding(nn.Module):
    """Drop-in for :class:`MaskedEmbedding` whose rows share bucket vectors (QR, GraphHash): row ``n`` is
    ``combine_k T_k[p_k(n)]`` in its first ``width`` columns and zero after (:class:`~recbole_bet.budget.FieldBuckets`).

    ``module(idx)``, ``.weight`` (the full ``[num_embeddings, embedding_dim]`` matrix, which RecBole's LightGCN and NGCF
    read) and ``masked_columns`` are computed from the bucket tables, so every row has a vector and the gradient goes
    to the buckets. The padding row (RecBole's id 0) is zero. ``kept_params`` counts the bucket tables only.

    Precision (not saved, as :class:`MaskedEmbedding`'s): ``value_dtype`` (``float32`` by default) is the precision the
    bucket tables are stored at; every bucket row is fake-quantised to it (int8/int4: one scale per bucket row) before
    rows are combined, with a straight-through gradient to the float32 buckets
    (:func:`recbole_bet.precision.fake_quantise`), so a row is combined from what the exported file stores.

    Example::

        >>> from recbole_bet.budget import FieldBuckets, Partition
        >>> field = FieldBuckets(5, 3, (Partition("quotient", 3, divisor=2), Partition("remainder", 2, divisor=2)))
        >>> emb = SharedEmbedding(field, embedding_dim=4, width=3)
        >>> emb.weight.shape, emb.kept_params, float(emb.weight[0].detach().abs().sum())
        (torch.Size([6, 4]), 15, 0.0)

    Args:
        field (FieldBuckets): the field's partitions (the rows are ``field.n_rows`` plus the padding row).
        embedding_dim (int): the width of the table it replaces.
        width (int): columns this table's bucket vectors have (``<= embedding_dim``; NeuMF splits a field's width
            between its GMF and MLP tables).
        std (float): the standard deviation a combined row starts with (each of ``K`` bucket tables is drawn from
            N(0, std^(1/K)) for ``mult``, N(0, std / sqrt(K)) for ``sum``).
    """

    def __init__(self, field: FieldBuckets, embedding_dim: int, width: int, std: float = 1.0):
        super().__init__()
        if not 0 <= width <= embedding_dim:
            raise ValueError(f"width={width}; allowed: [0, embedding_dim={embedding_dim}]")
        self.field, self.num_embeddings, self.embedding_dim, self.width = field, field.n_rows + 1, embedding_dim, width
        parts = len(field.partitions)
        part_std = std ** (1 / parts) if field.combine == "mult" else std / math.sqrt(parts)
        self.tables = nn.ParameterList([nn.Parameter(torch.randn(b, width) * part_std) for b in field.buckets])
        index = np.concatenate([np.zeros((parts, 1), np.int64), field.bucket_index()], axis=1)  # padding: bucket 0, zeroed
        self.register_buffer("bucket_index", torch.from_numpy(index), persistent=False)
        self.register_buffer("sizes", torch.full((self.num_embeddings,), width, dtype=torch.int16), persistent=False)
        self.sizes[0] = 0
        self.register_buffer("row_mask", (torch.arange(self.num_embeddings) > 0).float().unsqueeze(1), persistent=False)
        self.value_dtype = "float32"

    def set_value_dtype(self, dtype: str) -> None:
        """Store (and train) the bucket tables at ``dtype`` (:data:`recbole_bet.budget.VALUE_DTYPES`)."""
        self.value_dtype = check_value_dtype(dtype)

    def bucket_values(self) -> list[torch.Tensor]:
        """The bucket tables as their precision stores them (float32: the parameters themselves), with a
        straight-through gradient; a table without columns as it is."""
        if self.value_dtype == "float32" or self.width == 0:
            return list(self.tables)
        return [fake_quantise(table, self.value_dtype) for table in self.tables]

    @torch.no_grad()
    def stored_buckets(self) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """What an int8/int4 file stores of each bucket table: ``(q, scales)`` (:func:`~recbole_bet.precision.quantise_rows`),
        int8 ``[buckets, width]`` and float32 ``[buckets]``, ``q * scales`` equal to :meth:`bucket_values`."""
        return [quantise_rows(table, self.value_dtype) for table in self.tables]

    def _combine(self, parts: list[torch.Tensor]) -> torch.Tensor:
        return reduce(torch.mul if self.field.combine == "mult" else torch.add, parts)

    def _pad(self, rows: torch.Tensor, width: int) -> torch.Tensor:
        return F.pad(rows, (0, width - rows.shape[-1])) if rows.shape[-1] < width else rows

    def masked_columns(self, width: int) -> torch.Tensor:
        """The first ``width`` columns of :attr:`weight`, ``[num_embeddings, width]``."""
        columns = min(width, self.width)
        # quantised whole, then cut: a bucket row's scale is its full width's
        parts = [table[:, :columns].index_select(0, index) for table, index in zip(self.bucket_values(), self.bucket_index)]
        return self._pad(self._combine(parts) * self.row_mask, width)

    @property
    def weight(self) -> torch.Tensor:
        """Every row's vector, ``[num_embeddings, embedding_dim]``."""
        return self.masked_columns(self.embedding_dim)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        """Rows ``idx`` (any shape): ``[*idx.shape, embedding_dim]``."""
        parts = [table[index[idx]] for table, index in zip(self.bucket_values(), self.bucket_index)]
        return self._pad(self._combine(parts) * self.row_mask[idx], self.embedding_dim)

    @property
    def kept_params(self) -> int:
        return self.width * sum(self.field.buckets)

    def extra_repr(self) -> str:
        precision = f", {self.value_dtype}" if self.value_dtype != "float32" else ""
        return (f"{self.num_embeddings}, {self.embedding_dim}, width={self.width}, buckets={self.field.buckets}, "
                f"{self.field.combine}{precision}")


def inject_masked_embeddings(model: nn.Module, names: list[str]) -> dict[str, MaskedEmbedding]:
    """Replace the ``nn.Embedding`` submodules ``names`` of ``model`` with masked ones, keeping their weights.

    Returns:
        dict[str, MaskedEmbedding]: the new modules by name.
    """
    injected = {}
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        original = getattr(parent, child)
        if isinstance(original, MaskedEmbedding):
            injected[name] = original
            continue
        if not isinstance(original, nn.Embedding):
            raise TypeError(f"{name} is a {type(original).__name__}, not an nn.Embedding")
        masked = MaskedEmbedding.from_embedding(original)
        setattr(parent, child, masked)
        injected[name] = masked
    return injected


def swap_tables(model, tables: dict) -> None:
    """Put ``tables`` (name -> module) into ``model`` in place of its modules of those names."""
    for name, table in tables.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, table)
    model.clear_cached_embeddings()
