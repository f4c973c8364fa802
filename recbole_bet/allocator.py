"""Keep freed memory mapped, so that large tensors do not page-fault on every use.

glibc's ``malloc`` serves blocks above a threshold (at most 32 MB, adjusted at
run time) with a fresh ``mmap`` and unmaps them on ``free``. A LightGCN step
on full Gowalla allocates and frees about twenty ``[70,839 x 128]`` float
tensors (36 MB each: layer outputs, their sum, gradients), and every one of
them is new memory that the kernel must zero page by page: on this project's
machine that costs as much as the sparse products themselves.

:func:`keep_freed_memory` raises the mmap threshold and the trim threshold,
so such blocks come from the heap and stay there once freed; the next step
reuses them. It changes no result, only where memory comes from, and it acts
on the whole process (RecBole's own models in the same process gain too).
Elsewhere than glibc it does nothing.
"""

from __future__ import annotations

import ctypes
import ctypes.util

# mallopt parameters, from glibc's malloc.h
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3

INT_MAX = 2**31 - 1
DEFAULT_THRESHOLD = 1 << 30  # 1 GiB: blocks below come from the heap, and up to this much free memory is kept


def keep_freed_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Ask glibc to serve blocks below ``threshold`` bytes from the heap and keep up to ``threshold`` freed bytes.

    Returns:
        bool: True if glibc accepted both settings; False where there is no glibc (nothing changed).

    Raises:
        ValueError: ``threshold`` outside what ``mallopt``'s C int can hold.
    """
    if not 0 < int(threshold) <= INT_MAX:
        raise ValueError(f"threshold={threshold}; allowed: 1 to {INT_MAX} bytes (a C int)")
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
        mallopt = libc.mallopt if libc is not None else None
    except (OSError, AttributeError):
        return False
    if mallopt is None:
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, int(threshold))) and bool(mallopt(M_TRIM_THRESHOLD, int(threshold)))
