"""Low-precision values of an embedding table: what a table stores at ``value_dtype`` and what training sees of it.

* ``float32``: the values as they are (the paper's tables).
* ``float16``: each value rounded to the nearest float16.
* ``int8`` / ``int4``: per row, symmetric: ``q = round(w / s)`` in ``[-qmax, qmax]`` (127; 7), zero point 0,
  one scale ``s`` per row, 2 bytes: a float16 of ``1024 * s`` (float16's normal range moved down to
  ``s`` in ``[2^-24, 64)``, where embedding rows live), the row's largest ``|w|`` over ``qmax`` rounded **up**
  to that grid (by less than 2^-10): no kept value is clipped, the largest ``|q|`` of a row is ``qmax``, and
  ``q * s`` is exact in float32, so a table read back and quantised again gives the same values. (A row whose
  largest ``|w|`` is below ``qmax * 2^-24`` gets a subnormal scale and loses these guarantees, but not its
  correctness; above ``qmax * 64`` its values are clipped.) A row with nothing kept has scale 1. int4 values are
  packed two to a byte (:func:`pack_int4`).

Training is quantisation-aware: :func:`fake_quantise` gives the dequantised values ``q * s`` in the forward pass
and passes the gradient straight through to the float32 weights (for int8/int4 by torch's own
``fake_quantize_per_channel_affine``, which also zeroes it outside ``[-qmax, qmax]``; the scale, a max of the
weights, is a constant of the step). :class:`~recbole_bet.embedding.MaskedEmbedding` applies it to ``.weight``,
to its rows and to its column cut, so every backbone and every method trains through it. A learned step size
(LSQ, ALPT) is not implemented: the max-abs scale has no parameter to tune.

The numpy half (:func:`pack_int4`, :func:`unpack_int4`, :func:`dequantise`) is what :func:`recbole_bet.export.read_table`
uses to turn a file back into float32 values equal to the model's dequantised weights.
"""

from __future__ import annotations

import numpy as np
import torch

from recbole_bet.budget import QUANT_MAX, check_value_dtype, is_quantised

#: a stored scale is ``float16(SCALE_SHIFT * s)``: float16's normal range, moved down by 2^10
SCALE_SHIFT = 1024.0


def row_scales(values: torch.Tensor, dtype: str) -> torch.Tensor:
    """Per-row scales of ``values`` (``[..., width]``, rows along the last dimension) at an int dtype: ``[...]``
    float32, ``max |w| / qmax`` rounded up to the stored grid (:data:`SCALE_SHIFT`); 1 for a row of zeros. No
    gradient."""
    amax = values.detach().abs().amax(-1)
    raw = amax / QUANT_MAX[dtype] * SCALE_SHIFT
    half = raw.to(torch.float16)
    # a positive float16's next value up is its bit pattern plus one
    half = torch.where(half.to(raw.dtype) < raw, (half.view(torch.int16) + 1).view(torch.float16), half)
    scale = half.to(raw.dtype).clamp(min=2.0**-24, max=65504.0) / SCALE_SHIFT
    return torch.where(amax > 0, scale, torch.ones_like(scale))


def stored_scales(scales: np.ndarray) -> np.ndarray:
    """Scales (float32 from :func:`row_scales`) as the file stores them: float16 ``SCALE_SHIFT * s``, exact."""
    return (np.asarray(scales, dtype=np.float32) * np.float32(SCALE_SHIFT)).astype(np.float16)


def scales_from_stored(stored: np.ndarray) -> np.ndarray:
    """:func:`stored_scales` back to float32."""
    return np.asarray(stored).astype(np.float32) / np.float32(SCALE_SHIFT)


class _Float16RoundTrip(torch.autograd.Function):
    """float16 rounding in the forward pass, the identity backward (straight through, no float16 gradient)."""

    @staticmethod
    def forward(ctx, values):
        return values.to(torch.float16).to(values.dtype)

    @staticmethod
    def backward(ctx, grad):
        return grad


def fake_quantise(values: torch.Tensor, dtype: str) -> torch.Tensor:
    """``values`` as a table at ``dtype`` stores them, dequantised to ``values.dtype``, with a straight-through
    gradient; ``values`` itself at float32. Rows along the last dimension (a row's scale is its own, so a row
    gives the same values alone or in its table)."""
    if dtype == "float32":
        return values
    if dtype == "float16":
        return _Float16RoundTrip.apply(values)
    qmax = QUANT_MAX[check_value_dtype(dtype)]
    rows = values.reshape(-1, values.shape[-1])
    if rows.shape[0] == 0:
        return values
    scale = row_scales(rows, dtype)
    zero_point = torch.zeros(rows.shape[0], dtype=torch.int32, device=values.device)
    return torch.fake_quantize_per_channel_affine(rows, scale, zero_point, 0, -qmax, qmax).reshape(values.shape)


@torch.no_grad()
def quantise_rows(values: torch.Tensor, dtype: str) -> tuple[torch.Tensor, torch.Tensor]:
    """What an int8/int4 table stores for ``values`` ``[rows, width]``: ``(q, scales)``, int8 ``[rows, width]`` and
    float32 ``[rows]`` (:func:`row_scales`), with ``q * scales`` equal to :func:`fake_quantise`'s values bit for bit."""
    scale = row_scales(values, dtype)
    dequantised = fake_quantise(values, dtype)
    q = torch.round(dequantised / scale.unsqueeze(-1))  # exact: q * s is exact in float32 and s is not 0
    return q.to(torch.int8), scale


def pack_int4(q: np.ndarray) -> np.ndarray:
    """int4 values (int ``[n]`` in ``[-8, 7]``) two to a byte, the first in the low nibble: uint8 ``[ceil(n / 2)]``."""
    nibbles = (np.asarray(q, dtype=np.int16) & 0xF).astype(np.uint8)
    if len(nibbles) % 2:
        nibbles = np.append(nibbles, np.uint8(0))
    return nibbles[0::2] | (nibbles[1::2] << 4)


def unpack_int4(packed: np.ndarray, count: int) -> np.ndarray:
    """The first ``count`` int4 values of :func:`pack_int4`'s bytes, int8 ``[count]``."""
    packed = np.asarray(packed, dtype=np.uint8)
    nibbles = np.stack([packed & 0xF, packed >> 4], axis=1).ravel()[:count]
    return ((nibbles.astype(np.int16) ^ 8) - 8).astype(np.int8)  # sign-extend the nibble


def dequantise(stored: np.ndarray, dtype: str, mask: np.ndarray, scales: np.ndarray | None = None) -> np.ndarray:
    """The float32 values ``[kept]`` of one table's stored values at ``dtype``, row-major over ``mask`` (bool
    ``[rows, width]``); ``scales`` (float16 ``[rows]``, :func:`stored_scales`) for int8/int4."""
    if not is_quantised(dtype):
        return np.asarray(stored).astype(np.float32)
    rows = np.nonzero(mask)[0]
    q = unpack_int4(stored, len(rows)) if dtype == "int4" else np.asarray(stored)
    return q.astype(np.float32) * scales_from_stored(scales)[rows]
