"""Faster graph propagation for LightGCN and NGCF: the normalised adjacency as a symmetric CSR matrix.

RecBole multiplies ``D^-1/2 A D^-1/2`` (a COO tensor) with the embeddings
``n_layers`` times per batch, forward and backward. Three facts make that
cheaper without touching RecBole's forward code:

* CSR is the layout CPU sparse kernels (MKL) are fast on;
* the matrix is symmetric, so the backward product ``L^T @ grad`` is
  ``L @ grad``: no transpose of the sparse matrix per batch;
* on the CPU, ``torch.sparse.mm`` spends about as long around the kernel as in
  it: it casts the int64 indices to int32 for MKL on every call, zero-fills
  a result and copies it out. The indices are stored as int32 once, and the
  product is written straight into a fresh tensor (``addmm`` with ``beta=0``
  and ``out=``): the same kernel on the same inputs, so the same values, bit
  for bit, in about half the time (``bench/epoch_time.py``).

:class:`SymmetricAdjacency` stands in for the tensor in
``model.norm_adj_matrix``; through ``__torch_function__`` it turns RecBole's
own ``torch.sparse.mm(self.norm_adj_matrix, x)`` into :class:`SymmetricSpmm`.

A model that writes its own propagation can also skip rows: a GNN's last
layer feeds only the loss, which reads the batch's rows (a few thousand of
Gowalla's 70,839 nodes). :meth:`SymmetricAdjacency.rows_product` multiplies
only those rows of the matrix (:class:`SymmetricRowsSpmm`), with the same
values as the whole product's rows, forward and backward.
"""

from __future__ import annotations

import warnings

import torch


# What torch.sparse.mm (and torch.mm / matmul) reach __torch_function__ as.
_PRODUCTS = {"_sparse_mm", "mm", "matmul"}


def sparse_dense_product(matrix: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``matrix @ dense`` for a sparse CSR ``matrix``; on the CPU without the zero-fill and copy of
    ``torch.sparse.mm`` (module docstring), elsewhere ``torch.sparse.mm`` itself."""
    if matrix.device.type != "cpu":
        return torch.sparse.mm(matrix, dense)
    out = torch.empty(matrix.shape[0], dense.shape[1], dtype=dense.dtype, device=dense.device)
    return torch.addmm(out, matrix, dense.contiguous(), beta=0, out=out)  # beta=0: out's contents are ignored


class SymmetricSpmm(torch.autograd.Function):
    """``matrix @ dense`` for a constant symmetric sparse ``matrix``: backward is ``matrix @ grad``."""

    @staticmethod
    def forward(ctx, matrix, dense):
        ctx.matrix = matrix
        return sparse_dense_product(matrix, dense)

    @staticmethod
    def backward(ctx, grad):
        return None, sparse_dense_product(ctx.matrix, grad)


def csr_rows(matrix: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """The rows ``rows`` of the sparse CSR ``matrix``, in that order, as a CSR matrix ``[len(rows), N]``."""
    crow = matrix.crow_indices()
    starts = crow.index_select(0, rows)
    counts = crow.index_select(0, rows + 1) - starts
    offsets = torch.zeros(len(rows) + 1, dtype=crow.dtype, device=crow.device)
    torch.cumsum(counts, 0, out=offsets[1:])
    # position in matrix of each kept entry: its slice offset plus its row's shift from the slice to the matrix
    picked = torch.arange(int(offsets[-1]), dtype=crow.dtype, device=crow.device)
    picked += torch.repeat_interleave(starts - offsets[:-1], counts)
    return torch.sparse_csr_tensor(
        offsets, matrix.col_indices().index_select(0, picked), matrix.values().index_select(0, picked), (len(rows), matrix.shape[1])
    )


class SymmetricRowsSpmm(torch.autograd.Function):
    """``(matrix @ dense)[rows]`` for a constant symmetric CSR ``matrix``, multiplying only the slice ``matrix[rows]``.

    Backward is ``matrix[rows].T @ grad``, the slice's transpose made by torch's CSC-to-CSR conversion,
    which keeps each row's entries in increasing column order. For distinct increasing ``rows`` each of
    its sums then has the terms of the whole matrix's backward ``matrix @ G`` (``G`` the gradient
    scattered to ``rows``, zero elsewhere) in the same order, less the zeros: the same values, without
    the other rows' work.
    """

    @staticmethod
    def forward(ctx, matrix, rows, dense):
        sliced = csr_rows(matrix, rows)
        ctx.sliced = sliced
        return sparse_dense_product(sliced, dense)

    @staticmethod
    def backward(ctx, grad):
        return None, None, sparse_dense_product(ctx.sliced.t().to_sparse_csr(), grad)


class SymmetricAdjacency:
    """A constant symmetric sparse matrix in CSR that ``torch.sparse.mm`` multiplies with :class:`SymmetricSpmm`.

    Args:
        matrix (torch.Tensor): sparse ``[N, N]``, symmetric (checked), any layout.
    """

    def __init__(self, matrix: torch.Tensor):
        coo = matrix.coalesce() if matrix.layout == torch.sparse_coo else matrix.to_sparse_coo().coalesce()
        transposed = coo.t().coalesce()
        if not (torch.equal(coo.indices(), transposed.indices()) and torch.allclose(coo.values(), transposed.values())):
            raise ValueError("SymmetricAdjacency needs a symmetric matrix")
        with warnings.catch_warnings():
            # torch calls its CSR support "beta" on every first use; ours is tested (tests/test_models.py)
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)
            csr = coo.to_sparse_csr()
        if coo._nnz() < 2**31 - 1:  # int32 indices, as MKL takes them, instead of a cast per product
            # the arrays are torch's own conversion's: their invariants hold, so checking them would only cost
            csr = torch.sparse_csr_tensor(
                csr.crow_indices().int(), csr.col_indices().int(), csr.values(), csr.shape, check_invariants=False
            )
        self.matrix = csr
        self.shape = self.matrix.shape

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if getattr(func, "__name__", None) in _PRODUCTS and len(args) == 2 and not kwargs:
            left, right = args
            if isinstance(left, cls) and not isinstance(right, cls):
                return SymmetricSpmm.apply(left.matrix, right)
        return NotImplemented

    def rows_product(self, rows: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
        """``(self @ dense)[rows]`` (:class:`SymmetricRowsSpmm`): a GNN's last layer, where a loss needs a batch's rows only."""
        return SymmetricRowsSpmm.apply(self.matrix, rows, dense)

    def to(self, device):
        moved = object.__new__(type(self))
        moved.matrix, moved.shape = self.matrix.to(device), self.shape
        return moved

    def to_dense(self) -> torch.Tensor:
        return self.matrix.to_dense()
