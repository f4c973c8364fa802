"""Exact top-k of full-ranking scores, screened by an int8 product with a proven error bound.

Full ranking scores every user against every item, ``s = u . v``, and keeps each
row's top k. On a CPU the float32 product is most of that work (29,858 x 40,981
scores of 128 products on full Gowalla: 3.1 s of a 4.2 s floor here), and the
top-k over every row most of the rest. This module computes the same top k from
a product of int8 codes, which int8 matrix kernels (VNNI) do several times
faster and add up *exactly* in int32, and then scores only the few items that
can still be in the top k in float32:

1. **Codes.** A user row becomes ``u ~ a_u q_u`` with one scale ``a_u`` per row,
   every item ``v ~ b q_v`` with one scale ``b`` for the whole item table, both
   rounded to integers in [-127, 127], so ``|u_i - a_u q_ui| <= a_u / 2`` and
   ``|v_i - b q_vi| <= b / 2``. The code score ``c = q_u . q_v`` is exact.
2. **Error bound.** ``u . v - a_u b c = a_u q_u . (v - b q_v) + (u - a_u q_u) . v``,
   so ``|u . v - a_u b c| <= a_u b |q_u|_1 / 2 + a_u max_v |v|_1 / 2``. The float32
   score the reference ranks (any summation order of ``w`` products) lies within
   ``g_w |u|_inf max_v |v|_1`` of ``u . v``, ``g_w = w 2^-24 / (1 - w 2^-24)``, plus
   ``2 w 2^-150`` for products and sums below float32's normal range, whose rounding
   is absolute. Scales and codes are computed in float64, so a subnormal row keeps
   its ``a_u / 2`` bound. Together: ``|s - a_u b c| <= T_u`` for every item of the row.
3. **Screen.** Let ``t`` be any code value with at least k items at or above it
   (here: the k-th largest of the row's maxima over blocks of 16 items, which
   needs no sort of the row). Those k items have ``s >= a_u b t - T_u``, so the
   k-th best float score is at least that, and every item of the float top k
   has ``a_u b c >= a_u b t - 2 T_u``: its code is at least
   ``t - 2 T_u / (a_u b)``. Only items at or above that threshold (a few dozen
   of 40,981 on Gowalla) are candidates.
4. **Rescore.** Candidates get their float32 score ``u . v``; their top k is the
   row's top k.

The items are the float top k's items; only between scores equal up to float
rounding can the order (or, at the k-th place, the item) differ from a full
float32 product, as it can between two batch sizes of that product.
"""

from __future__ import annotations

import functools

import torch

INT32_MIN = torch.iinfo(torch.int32).min
BLOCK = 16  # items per block whose maximum bounds the k-th largest code from below
# Codes are zero-padded to a multiple of this width (the sums are unchanged): torch 2.13's CPU
# _int_mm returns wrong sums for a width of 1 (1 x 1 codes, checked against int64 products).
WIDTH_MULTIPLE = 8


@functools.lru_cache(maxsize=None)
def int_mm_available() -> bool:
    """Whether this torch has a CPU ``torch._int_mm`` that sums int8 codes exactly (checked once on a probe
    against int64 products). torch adds and changes private kernels between releases (tested here: 2.13); where
    it is missing or wrong, full ranking keeps the float32 path."""
    if not hasattr(torch, "_int_mm"):
        return False
    g = torch.Generator().manual_seed(0)
    a = torch.randint(-127, 128, (32, 16), generator=g, dtype=torch.int8)
    b = torch.randint(-127, 128, (16, 64), generator=g, dtype=torch.int8)
    try:
        product = torch._int_mm(a, b)
    except (RuntimeError, TypeError, NotImplementedError):
        return False
    return bool(torch.equal(product.long(), a.long() @ b.long()))


def _codes(vectors: torch.Tensor, scale) -> torch.Tensor:
    """``vectors / scale`` rounded to int8 in [-127, 127], divided in float64: a float32 scale of a row whose
    largest value is subnormal would have lost its precision (and the codes their bound)."""
    return torch.round(vectors.double() / scale).clamp_(-127, 127).to(torch.int8)


def quantize_rows(vectors: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(codes, scales)``: int8 ``codes`` in [-127, 127] and one float64 ``scale`` per row, ``vectors ~ scales[:, None] * codes``.

    Every element is within ``scale / 2`` of ``scale * code``; an all-zero row gets scale 1 (and codes 0).
    """
    scales = vectors.abs().amax(dim=1).double() / 127
    scales = torch.where(scales > 0, scales, torch.ones_like(scales))
    return _codes(vectors, scales[:, None]), scales


class ScreenedItems:
    """The item side of full ranking, ready for :func:`screened_topk`: float32 vectors and their int8 codes.

    Args:
        items: ``[n_items, w]`` float32 item vectors; row 0 is RecBole's padding item.
    """

    def __init__(self, items: torch.Tensor):
        self.vectors = items.contiguous()
        self.n_items = items.shape[0]
        largest = float(items.abs().max()) if items.numel() else 0.0
        self.scale = largest / 127 if largest > 0 else 1.0
        codes = _codes(items, self.scale)
        # rows up to a whole number of blocks (their scores are set to INT32_MIN), columns to WIDTH_MULTIPLE
        padding = (0, (-items.shape[1]) % WIDTH_MULTIPLE, 0, (-self.n_items) % BLOCK)
        self.codes = torch.nn.functional.pad(codes, padding).contiguous()
        self.l1_max = float(items.abs().sum(dim=1).max()) if items.numel() else 0.0


def error_bounds(users: torch.Tensor, codes: torch.Tensor, scales: torch.Tensor, items: ScreenedItems) -> torch.Tensor:
    """``T_u`` of every user row (float64): ``|s - a_u b c| <= T_u`` for every item (step 2 of the module doc)."""
    width = users.shape[1]
    unit = 2.0**-24
    gamma = width * unit / (1 - width * unit)
    quantization = scales * items.scale * codes.abs().sum(dim=1, dtype=torch.int64).double() / 2 + scales * items.l1_max / 2
    # 127 * scale is each row's largest |u_i| up to float rounding (the band's slack covers it; 127 for an
    # all-zero row: looser, still a bound)
    rounding = gamma * 127 * scales * items.l1_max
    # below float32's normal range rounding is absolute, not relative: each of the w products and w - 1 sums
    # of the reference may be off by half the smallest subnormal, 2^-150
    subnormal = 2 * width * 2.0**-150
    return quantization + rounding + subnormal


def screened_topk(
    users: torch.Tensor, items: ScreenedItems, k: int, excluded: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """The ``[n_users, k]`` items of the top-k float32 scores ``users @ items.vectors.T`` of every row, best first.

    Item 0 (RecBole's padding) and the ``(row, item)`` pairs of ``excluded`` (the users' training
    history) are ranked last, as RecBole's ``-inf``. A row with fewer than ``k`` other items gets
    excluded ones after them, as a full float ranking would.
    """
    n_rows, n_items = users.shape[0], items.n_items
    if k > n_items:
        raise ValueError(f"top-{k} of {n_items} items: k must be at most the number of items")
    codes, scales = quantize_rows(users)
    padded = torch.nn.functional.pad(codes, (0, items.codes.shape[1] - codes.shape[1]))
    code_scores = torch._int_mm(padded, items.codes.t())  # [rows, items padded to BLOCK], exact int32
    code_scores[:, 0] = INT32_MIN
    code_scores[:, n_items:] = INT32_MIN
    if excluded is not None:
        code_scores[excluded] = INT32_MIN

    n_blocks = code_scores.shape[1] // BLOCK
    block_max = code_scores.view(n_rows, n_blocks, BLOCK).amax(dim=2)  # [rows, blocks]
    if n_blocks >= k:
        floor = torch.topk(block_max, k, dim=1).values[:, -1]
    else:  # fewer blocks than k: the row's own k-th largest code
        floor = torch.topk(code_scores, k, dim=1).values[:, -1]
    # in code units; 2^-10 and one unit of slack cover the rounding of the scales and bounds themselves
    bounds = error_bounds(users, codes, scales, items)
    band = torch.ceil(2 * (1 + 2.0**-10) * bounds / (scales.double() * items.scale)).long() + 1
    threshold = torch.clamp(floor.long() - band, min=INT32_MIN).int()

    # candidates: blocks whose maximum reaches the threshold, then their items that do
    # (index_select, not advanced indexing: several times faster for gathering rows on CPU)
    block_row, block = (block_max >= threshold[:, None]).nonzero(as_tuple=True)
    block_codes = code_scores.view(-1, BLOCK).index_select(0, block_row * n_blocks + block)
    which, lane = (block_codes >= threshold.index_select(0, block_row)[:, None]).nonzero(as_tuple=True)
    rows, cols = block_row.index_select(0, which), block.index_select(0, which) * BLOCK + lane
    excluded_candidate = block_codes[which, lane] == INT32_MIN
    real = cols < n_items
    rows, cols, excluded_candidate = rows[real], cols[real], excluded_candidate[real]

    scores = (users.index_select(0, rows) * items.vectors.index_select(0, cols)).sum(dim=1)
    scores[excluded_candidate] = -torch.inf

    # each row's candidates side by side (rows ascending, as nonzero gives them), padded with -inf
    counts = torch.bincount(rows, minlength=n_rows)
    starts = torch.cumsum(counts, 0) - counts
    place = torch.arange(len(rows)) - starts[rows]
    width = max(int(counts.max()) if len(rows) else 0, k)
    table = torch.full((n_rows, width), -torch.inf, dtype=scores.dtype)
    table[rows, place] = scores
    table_items = torch.zeros((n_rows, width), dtype=torch.long)
    table_items[rows, place] = cols
    return table_items.gather(1, torch.topk(table, k, dim=1).indices)
