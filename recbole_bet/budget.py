"""Budget arithmetic and the table-level Action.

Qu et al., "Budgeted Embedding Table For Recommender Systems", WSDM 2024,
section 3.1, Eq. (3): a sparsity ``c`` keeps at most
``budget = floor((1 - c) * d_max * (|U| + |V|))`` embedding parameters.

Everything here is pure numpy arithmetic, apart from the models and from I/O,
so that it can be tested on its own.

Rows of RecBole's tables include a padding row (id 0) for users and items.
It is never looked up, so the budget and an Action count only the real rows:
``n_users`` and ``n_items`` below exclude padding, which makes the counts the
paper's (e.g. 29,858 + 40,981 on Gowalla).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar
from fractions import Fraction

import numpy as np

from recbole_bet.errors import BudgetError

# The two fields a budgeted table has rows for, in the order an Action lists them.
FIELDS = ("user", "item")


def budget_params(sparsity: float, d_max: int, n_rows: int) -> int:
    """Number of embedding parameters a sparsity allows.

    ``floor((1 - sparsity) * d_max * n_rows)`` computed exactly: the sparsity is read
    as the decimal the user typed, so 0.9 gives exactly a tenth of the table
    (binary floating point would round 0.1 * 128 * N down by one now and then).

    Args:
        sparsity (float): fraction of the full table removed, in (0, 1).
        d_max (int): width of the full table.
        n_rows (int): users plus items (padding excluded).

    Raises:
        BudgetError: sparsity outside (0, 1) or a non-positive d_max / n_rows.
    """
    check_sparsity(sparsity)
    if d_max < 1:
        raise BudgetError(f"embedding size d_max={d_max} must be at least 1")
    if n_rows < 1:
        raise BudgetError(f"n_rows={n_rows} must be at least 1")
    keep = 1 - Fraction(str(sparsity))
    return math.floor(keep * d_max * n_rows)


def check_sparsity(sparsity) -> float:
    """Return ``sparsity`` as a float, or raise if it is not a number in (0, 1)."""
    try:
        value = float(sparsity)
    except (TypeError, ValueError):
        raise BudgetError(f"sparsity={sparsity!r} is not a number; allowed: a number in (0, 1), e.g. 0.9") from None
    if not 0 < value < 1:
        raise BudgetError(f"sparsity={sparsity!r} is outside (0, 1); e.g. 0.9 keeps 10% of the full table")
    return value


def max_sparsity(d_max: int) -> float:
    """Largest sparsity that still gives every row one dimension: ``(1 - c) * d_max >= 1``."""
    return 1 - 1 / d_max


def check_budget_fits(budget: int, n_rows: int, d_max: int, sparsity: float | None = None) -> None:
    """Raise unless every row can have at least one dimension."""
    if budget < n_rows:
        what = f"sparsity={sparsity} leaves" if sparsity is not None else "the budget is"
        raise BudgetError(
            f"{what} {budget} parameters for {n_rows} user and item rows, but every row needs at least 1; "
            f"allowed: sparsity <= {max_sparsity(d_max):.6g} (at d_max={d_max})"
        )


# ---------------------------------------------------------------------------
# Bytes: the exported table's values at their precision, and what is stored beside them

#: the precisions a table's values may be stored at (``value_dtype``)
VALUE_DTYPES = ("float32", "float16", "int8", "int4")
#: bits of one stored value
VALUE_BITS = {"float32": 32, "float16": 16, "int8": 8, "int4": 4}
#: the largest ``|q|`` of a quantised value: symmetric, zero point 0, ``q`` in ``[-qmax, qmax]``
QUANT_MAX = {"int8": 127, "int4": 7}
#: bytes of the per-row scale (float16 of 1024 times it) that an int8 or int4 table stores for every row
SCALE_BYTES = 2


def check_value_dtype(dtype) -> str:
    """``dtype`` if it is one of :data:`VALUE_DTYPES`, else a BudgetError naming the allowed ones."""
    if dtype not in VALUE_DTYPES:
        raise BudgetError(f"value_dtype={dtype!r}; allowed: {', '.join(VALUE_DTYPES)}")
    return dtype


def array_bytes(values, dtype: str):
    """Bytes of one stored array of ``values`` values (an int or an int array) at ``dtype``: int4 packs two a byte,
    the odd last one in a byte of its own."""
    if dtype == "int4":
        return (values + 1) // 2
    return values * VALUE_BITS[check_value_dtype(dtype)] // 8


def is_quantised(dtype: str) -> bool:
    """Whether values at ``dtype`` are integers with a per-row scale (int8, int4)."""
    return check_value_dtype(dtype) in QUANT_MAX


def index_itemsize(largest: int) -> int:
    """Bytes of one entry of a size or column index holding numbers up to ``largest``: uint8, else uint16."""
    return 1 if largest <= 255 else 2


def budget_bytes(sparsity: float, d_max: int, n_rows: int) -> int:
    """Bytes a sparsity allows: ``floor((1 - sparsity) * 4 * d_max * n_rows)``, a share of the float32 full table's
    values, computed exactly from the decimal typed (see :func:`budget_params`)."""
    check_sparsity(sparsity)
    return math.floor((1 - Fraction(str(sparsity))) * 4 * d_max * n_rows)


@dataclass(frozen=True, eq=False)
class Storage:
    """What an exported table's bytes are made of besides its kept values (:func:`recbole_bet.export.table_storage`
    builds it from a model): the byte count of :func:`recbole_bet.export.export_table`'s file, as a pure function of
    the number of kept values.

    For ``kept`` values at ``dtype`` the file holds (:meth:`bytes_for`): the container (the ``.npz``'s zip records,
    ``.npy`` headers and JSON meta); one size per row of each field, padding included; for int8/int4 one float16 scale
    per row of each table; the values, ``kept * bits / 8`` bytes (int4: two a byte, per table, so at most
    ``(kept + tables) // 2``); for an element mask, each table's smaller index (:func:`recbole_bet.export.element_index`),
    at most the smaller of every table as a bitmap and every table as columns. Each part is exact or an upper bound,
    so a file never exceeds :meth:`bytes_for`.

    A ``shared`` layout (QR, GraphHash: :class:`SharedBuckets`) stores no size per row: its file is the container,
    each bucket table's values at ``dtype`` (int4 packed per bucket table), for int8/int4 one scale per bucket row, and
    a stored partition's assignment; :meth:`shared_bytes` counts it for a given layout, exactly but for the container,
    an upper bound (the meta's numbers at their most digits). :meth:`bytes_for` then counts the container and the
    values alone (the smallest file of ``kept`` bucket values): what a budget's ``params`` holds at most.

    Attributes:
        layout (str): ``prefix`` (BET, ES, MR, MDE, OptEmbed, ...), ``element`` (PEP, magnitude pruning) or ``shared``.
        d_max (int): width of a row of a field (the sum of its tables' widths).
        tables (tuple): ``(field, width, rows)`` of every table, rows with padding, in the export's order.
        containers (tuple): ``(dtype, bytes)``: the container's bytes at each value dtype, the largest over the
            index encodings an element mask may take, or over the numbers a shared layout's meta may hold.
        partitions (tuple): a shared layout's partition kinds (:data:`PARTITION_KINDS`), the same for each field; empty
            for the other layouts.
    """

    layout: str
    d_max: int
    tables: tuple
    containers: tuple
    partitions: tuple = ()

    def __post_init__(self):
        if self.layout not in ("prefix", "element", "shared"):
            raise BudgetError(f"Storage.layout={self.layout!r}; allowed: prefix, element, shared")
        if (self.layout == "shared") != bool(self.partitions):
            raise BudgetError(f"Storage.partitions={self.partitions!r}: a shared layout, and only it, names its partitions")

    @property
    def field_rows(self) -> dict:
        """``{field: rows}``, padding included (every table of a field has its rows)."""
        return {field: rows for field, _, rows in self.tables}

    @property
    def max_kept(self) -> int:
        """Values of the full table (padding rows excluded): every row at d_max."""
        return sum((rows - 1) * width for _, width, rows in self.tables)

    def fixed_bytes(self, dtype: str) -> int:
        """Bytes whatever is kept: the container, the size index and, for int8/int4, the scales (a shared layout: the
        container alone)."""
        if self.layout == "shared":
            return dict(self.containers)[dtype]
        sizes = sum(self.field_rows.values()) * index_itemsize(self.d_max)
        scales = sum(rows for _, _, rows in self.tables) * SCALE_BYTES if is_quantised(dtype) else 0
        return dict(self.containers)[dtype] + sizes + scales

    def value_bytes(self, kept: int, dtype: str) -> int:
        """Bytes of ``kept`` values at ``dtype``, whichever tables hold them (an upper bound for int4)."""
        if dtype == "int4":  # each of the arrays packs on its own: at most one half-used byte each
            return (kept + len(self.tables) * max(len(self.partitions), 1)) // 2
        return array_bytes(kept, dtype)

    def index_bytes(self, kept: int) -> int:
        """An element mask's index for ``kept`` weights (0 for a prefix layout): at most every table as a bitmap or
        every table as columns, whichever is smaller."""
        if self.layout != "element":
            return 0
        bitmap = sum(rows * ((width + 7) // 8) for _, width, rows in self.tables)
        column = max(index_itemsize(width - 1) for _, width, _ in self.tables)
        columns = kept * column + sum(rows * index_itemsize(width) for _, width, rows in self.tables)
        return min(bitmap, columns)

    def bytes_for(self, kept: int, dtype: str) -> int:
        """The exported file's bytes for ``kept`` values at ``dtype``, at most (exact but for int4's last nibble of each
        table and an element mask's choice of index)."""
        return self.fixed_bytes(dtype) + self.value_bytes(kept, dtype) + self.index_bytes(kept)

    def table_columns(self) -> list[tuple[int, str, int, int]]:
        """``(table, field, first column, width)`` of each table: a field's row is its tables side by side."""
        out, start = [], {}
        for number, (field, width, _) in enumerate(self.tables):
            out.append((number, field, start.get(field, 0), width))
            start[field] = start.get(field, 0) + width
        return out

    def element_bytes(self, kept, dtype: str):
        """The exported file of an element mask that keeps ``kept[..., t]`` weights in table ``t`` (an int array, the
        last axis over :attr:`tables`), at most: exact but for the container. Each table's index is the smaller of its
        bitmap and its columns, as :func:`recbole_bet.export.element_index` picks it; :meth:`bytes_for` bounds every
        table by one choice, since it does not know how the kept weights fall."""
        kept = np.asarray(kept, dtype=np.int64)
        total = np.full(kept.shape[:-1], self.fixed_bytes(dtype), dtype=np.int64)
        for number, (_, width, rows) in enumerate(self.tables):
            count = kept[..., number]
            bitmap = rows * ((width + 7) // 8)
            columns = count * index_itemsize(width - 1) + rows * index_itemsize(width)
            total = total + array_bytes(count, dtype) + np.minimum(bitmap, columns)
        return total if total.ndim else int(total)

    def element_kept(self, user_mask: np.ndarray, item_mask: np.ndarray) -> np.ndarray:
        """Kept weights per table (:attr:`tables`' order) of the ``[rows, d_max]`` masks of each field."""
        masks = {"user": np.asarray(user_mask), "item": np.asarray(item_mask)}
        return np.array([int(masks[field][:, start : start + width].sum()) for _, field, start, width in self.table_columns()])

    def element_fill(self, scores: list[np.ndarray], total_bytes: int, dtype: str) -> int:
        """The most weights that :func:`keep_largest` may keep of ``scores`` (users', items' ``[rows, d_max]``) whose
        file fits ``total_bytes`` (:meth:`element_bytes`), for the tables' actual mix of indices. A mask's file grows
        with every weight it keeps, so this is the last ``k`` of the ranking whose file fits."""
        if self.layout != "element":
            raise BudgetError(f"element_fill counts element masks, not a {self.layout} layout")
        table = []
        for field, field_scores in zip(FIELDS, scores):
            ids = np.zeros(self.d_max, dtype=np.int8)
            for number, owner, start, width in self.table_columns():
                if owner == field:
                    ids[start : start + width] = number
            table.append(np.broadcast_to(ids, np.shape(field_scores)).ravel())
        flat = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores])
        ranked = np.concatenate(table)[np.argsort(-flat, kind="stable")]  # the order keep_largest keeps in
        kept = np.zeros((flat.size + 1, len(self.tables)), dtype=np.int64)
        for number in range(len(self.tables)):
            np.cumsum(ranked == number, out=kept[1:, number])
        sizes = self.element_bytes(kept, dtype)  # non-decreasing in k
        return int(np.searchsorted(sizes, total_bytes, side="right")) - 1

    def params_for(self, total_bytes: int, dtype: str) -> int:
        """The most values at ``dtype`` whose file fits in ``total_bytes`` (at most the full table; 0 if nothing fits)."""
        low, high = 0, self.max_kept  # bytes_for grows with kept: the largest kept that fits, by bisection
        if self.bytes_for(low, dtype) > total_bytes:
            return 0
        while low < high:
            middle = (low + high + 1) // 2
            if self.bytes_for(middle, dtype) <= total_bytes:
                low = middle
            else:
                high = middle - 1
        return low

    def field_widths(self, field: str, width: int) -> list[int]:
        """The widths of ``field``'s tables when its rows read ``width`` columns (split as a row's size is)."""
        widths = [w for f, w, _ in self.tables if f == field]
        return [int(part[0]) for part in sizes_for_tables(np.array([width]), widths)]

    def bucket_bytes(self, field: str, buckets, width: int, dtype: str):
        """Bytes of one partition's bucket tables of ``field`` (one per table of the field) with ``buckets`` rows
        (an int, or an int array: one count each) read ``width`` columns wide: their values at ``dtype`` (int4 two a
        byte, each table packed on its own) and, for int8/int4, a scale per bucket row of a table with columns."""
        buckets = np.asarray(buckets, dtype=np.int64)
        total = np.zeros_like(buckets)
        for columns in self.field_widths(field, width):
            values = buckets * columns
            total = total + array_bytes(values, dtype)
            if is_quantised(dtype) and columns > 0:
                total = total + buckets * SCALE_BYTES
        return total if total.ndim else int(total)

    def shared_bytes(self, layout: "SharedBuckets", dtype: str) -> int:
        """The exported file of a shared ``layout`` at ``dtype``, at most: the container and both fields
        (:func:`shared_field_bytes`)."""
        return self.fixed_bytes(dtype) + sum(shared_field_bytes(self, f, b, dtype) for f, b in zip(FIELDS, (layout.user, layout.item)))

    def max_sparsity(self, dtype: str) -> float:
        """The largest sparsity (6 decimals, rounded down) whose byte budget holds one value per row at ``dtype``."""
        n_rows = sum(rows - 1 for rows in self.field_rows.values())
        need = self.bytes_for(n_rows, dtype)
        return math.floor((1 - Fraction(need, 4 * self.d_max * n_rows)) * 10**6) / 10**6


def check_bytes_fit(total_bytes: int, storage: Storage, dtype: str, n_rows: int, sparsity: float) -> None:
    """Raise unless ``total_bytes`` hold one value per row at ``dtype``, naming the sparsity that would (and the
    smallest precision's, when it is another)."""
    if storage.params_for(total_bytes, dtype) >= n_rows:
        return
    need = storage.bytes_for(n_rows, dtype)
    allowed = f"sparsity <= {storage.max_sparsity(dtype):g} at {dtype}"
    smallest = VALUE_DTYPES[-1]
    if dtype != smallest:
        allowed += f", or <= {storage.max_sparsity(smallest):g} at {smallest}"
    parts = "its file headers" if storage.layout == "shared" else (
        f"its size index{', scales' if is_quantised(dtype) else ''} and file headers")
    raise BudgetError(
        f"sparsity={sparsity} leaves {total_bytes} bytes for {n_rows} user and item rows, but one {dtype} value per row "
        f"needs {need} bytes with {parts}; allowed: {allowed}"
    )


def assignment_bytes(n_rows: int, buckets) -> int:
    """Bytes of a stored partition's assignment: ``n_rows`` bucket ids in :func:`index_dtype` of ``buckets``."""
    return n_rows * np.dtype(index_dtype(int(buckets))).itemsize


def shared_field_bytes(storage: Storage, field: str, buckets: "FieldBuckets", dtype: str) -> int:
    """What a shared field stores at ``dtype``: each partition's bucket tables (:meth:`Storage.bucket_bytes`) and a
    stored partition's assignment; nothing per row otherwise."""
    total = 0
    for partition in buckets.partitions:
        total += storage.bucket_bytes(field, partition.buckets, buckets.width, dtype)
        if partition.kind == "stored":
            total += assignment_bytes(buckets.n_rows, partition.buckets)
    return total


@dataclass(frozen=True)
class Budget:
    """The parameter budget of one run.

    Example::

        >>> b = Budget.from_sparsity(0.9, d_max=128, n_users=943, n_items=1682)
        >>> b.params          # floor(0.1 * 128 * 2625)
        33600
    """

    sparsity: float
    d_max: int
    n_users: int
    n_items: int
    params: int
    #: ``params`` (the paper: kept parameters) or ``bytes`` (the exported file, :meth:`from_bytes`)
    unit: str = "params"
    #: the precision the run's values are stored at (:data:`VALUE_DTYPES`)
    value_dtype: str = "float32"
    #: the byte budget (``unit == "bytes"``), else None
    bytes: int | None = None
    #: what the exported file stores besides the values (``unit == "bytes"``), else None
    storage: Storage | None = None

    @classmethod
    def from_bytes(cls, sparsity: float, d_max: int, n_users: int, n_items: int, storage: Storage, value_dtype: str) -> "Budget":
        """The budget of ``1 - sparsity`` of the float32 full table's bytes: ``params`` is then the most values at
        ``value_dtype`` whose exported file fits in those bytes (:meth:`Storage.params_for`).

        Raises:
            BudgetError: a bad sparsity or dtype, or bytes too few for one value per row at ``value_dtype``.
        """
        check_value_dtype(value_dtype)
        n_rows = n_users + n_items
        total = budget_bytes(sparsity, d_max, n_rows)
        check_bytes_fit(total, storage, value_dtype, n_rows, sparsity)
        params = storage.params_for(total, value_dtype)
        return cls(float(sparsity), int(d_max), int(n_users), int(n_items), params, "bytes", value_dtype, total, storage)

    def params_for(self, dtype: str | None = None) -> int:
        """Parameters a layout at ``dtype`` may keep: ``params`` for a parameter budget or the budget's own dtype;
        under a byte budget, what its bytes hold at that precision (BET's search of precision)."""
        if dtype is None or self.unit == "params" or dtype == self.value_dtype:
            return self.params
        return self.storage.params_for(self.bytes, dtype)

    def attainable_for(self, dtype: str | None = None) -> int:
        """:attr:`attainable` at ``dtype`` (:meth:`params_for`)."""
        return min(self.params_for(dtype), self.n_rows * self.d_max)

    @classmethod
    def from_sparsity(cls, sparsity: float, d_max: int, n_users: int, n_items: int) -> "Budget":
        n_rows = n_users + n_items
        params = budget_params(sparsity, d_max, n_rows)
        check_budget_fits(params, n_rows, d_max, sparsity)
        return cls(float(sparsity), int(d_max), int(n_users), int(n_items), params)

    @classmethod
    def full(cls, d_max: int, n_users: int, n_items: int) -> "Budget":
        """The unbudgeted table: every row at d_max (sparsity 0)."""
        return cls(0.0, int(d_max), int(n_users), int(n_items), int(d_max) * (n_users + n_items))

    @property
    def n_rows(self) -> int:
        return self.n_users + self.n_items

    @property
    def attainable(self) -> int:
        """What an exact method uses: the budget, unless even d_max everywhere is smaller."""
        return min(self.params, self.n_rows * self.d_max)

    @property
    def counts_element_bytes(self) -> bool:
        """Whether an element mask is held to this budget's bytes (a byte budget for element layouts), not its
        parameters."""
        return self.unit == "bytes" and self.storage is not None and self.storage.layout == "element"

    def element_keep(self, scores: list[np.ndarray]) -> int:
        """How many of ``scores`` (users', items' ``[rows, d_max]``) an element mask keeps, its largest: the attainable
        parameters; under a byte budget, the most whose file fits the bytes for where they fall
        (:meth:`Storage.element_fill`; never fewer than the attainable parameters, which fit wherever they fall)."""
        if not self.counts_element_bytes:
            return self.attainable
        return max(self.attainable, self.storage.element_fill(scores, self.bytes, self.value_dtype))


def size_stats(sizes: np.ndarray) -> dict:
    """min / median / max / mean of kept parameters per row."""
    return {"min": int(sizes.min()), "median": float(np.median(sizes)), "max": int(sizes.max()), "mean": float(sizes.mean())}


class TableLayout:
    """What every layout of a budgeted table offers: the budget check and a summary for logs and result
    files. A subclass has ``user_sizes`` / ``item_sizes`` (kept parameters per row), ``params`` and ``d_max``."""

    #: "prefix" (a prefix per row) or "element" (single weights)
    layout: ClassVar[str] = ""

    def check(self, budget: Budget):
        """Raise unless the layout matches the budget's tables and fits in it; return self."""
        self.check_shape(budget)
        dtype = getattr(self, "value_dtype", None)
        limit = budget.params_for(dtype)
        if self.params > limit:
            at = f" at {dtype}" if dtype is not None and budget.unit == "bytes" else ""
            raise BudgetError(f"{self.layout} layout keeps {self.params} parameters, over the budget of {limit}{at}")
        return self

    def check_shape(self, budget: Budget) -> None:
        """Raise unless the layout is for the budget's users, items and d_max."""
        shape = (len(self.user_sizes), len(self.item_sizes), self.d_max)
        if shape != (budget.n_users, budget.n_items, budget.d_max):
            raise BudgetError(
                f"{self.layout} layout for {shape[0]} users, {shape[1]} items at d_max={self.d_max} "
                f"does not match the budget's {budget.n_users} users, {budget.n_items} items at d_max={budget.d_max}"
            )

    def summary(self) -> dict:
        """Kept parameters per row (min / median / max / mean) per field, and in all (and the precision, when the
        layout carries one)."""
        summary = {"layout": self.layout, "users": size_stats(self.user_sizes), "items": size_stats(self.item_sizes), "params": self.params}
        if getattr(self, "value_dtype", None) is not None:
            summary["value_dtype"] = self.value_dtype
        return summary


@dataclass(frozen=True, eq=False)
class Action(TableLayout):
    """One embedding size per user and per item (section 3.2): a table-level action.

    Attributes:
        user_sizes (np.ndarray): int16 ``[n_users]``, user id ``u`` (RecBole's id minus 1,
            padding excluded) keeps the first ``user_sizes[u]`` dimensions.
        item_sizes (np.ndarray): int16 ``[n_items]``, the same for items.
        d_max (int): width of the full table.
        min_size (int): 1 (BET, ES, MR: every row keeps a dimension) or 0 (OptEmbed prunes whole rows).
        value_dtype (str | None): the precision of the values (BET searching precision, ``bet_dtypes``): applying the
            action sets its tables to it; None leaves the tables' precision as it is.
    """

    user_sizes: np.ndarray
    item_sizes: np.ndarray
    d_max: int
    min_size: int = 1
    value_dtype: str | None = None

    layout = "prefix"

    def __post_init__(self):
        if self.min_size not in (0, 1):
            raise BudgetError(f"Action.min_size={self.min_size}; allowed: 1 (every row kept) or 0 (rows may be pruned)")
        if self.value_dtype is not None:
            check_value_dtype(self.value_dtype)
        for name in ("user_sizes", "item_sizes"):
            sizes = np.asarray(getattr(self, name))
            if sizes.ndim != 1 or not np.issubdtype(sizes.dtype, np.integer):
                raise BudgetError(f"Action.{name} must be a 1-d integer array, got {sizes.dtype} {sizes.shape}")
            if sizes.size and (sizes.min() < self.min_size or sizes.max() > self.d_max):
                raise BudgetError(
                    f"Action.{name} has sizes in [{sizes.min()}, {sizes.max()}]; allowed: [{self.min_size}, d_max={self.d_max}]"
                )
            sizes = sizes.astype(np.int16)
            sizes.setflags(write=False)
            object.__setattr__(self, name, sizes)

    @classmethod
    def uniform(cls, size: int, n_users: int, n_items: int, d_max: int) -> "Action":
        return cls(np.full(n_users, size, np.int16), np.full(n_items, size, np.int16), d_max)

    @classmethod
    def full(cls, budget: "Budget") -> "Action":
        """The full table: every row of ``budget``'s table at d_max."""
        return cls.uniform(budget.d_max, budget.n_users, budget.n_items, budget.d_max)

    @classmethod
    def from_rows(cls, sizes: np.ndarray, budget: "Budget", min_size: int = 1) -> "Action":
        """An Action from one size per row of ``budget``'s table, users then items ``[n_users + n_items]``."""
        return cls(sizes[: budget.n_users], sizes[budget.n_users :], budget.d_max, min_size)

    @property
    def params(self) -> int:
        """Parameters the action keeps: the sum of all sizes."""
        return int(self.user_sizes.sum(dtype=np.int64) + self.item_sizes.sum(dtype=np.int64))

    @property
    def sizes(self) -> np.ndarray:
        """Users then items, ``[n_users + n_items]``."""
        return np.concatenate([self.user_sizes, self.item_sizes])

    def apply_to(self, model) -> None:
        """Mask a budgeted model's tables to this action."""
        model.apply_action(self)

    def __eq__(self, other):
        return (
            isinstance(other, Action)
            and self.d_max == other.d_max
            and self.value_dtype == other.value_dtype
            and np.array_equal(self.user_sizes, other.user_sizes)
            and np.array_equal(self.item_sizes, other.item_sizes)
        )

    __hash__ = None


@dataclass(frozen=True, eq=False)
class ElementMask(TableLayout):
    """Single kept weights anywhere in the table: the layout of PEP and magnitude pruning.

    A row of a field is the field's tables side by side (NeuMF: GMF then MLP columns), so each
    mask is ``[n_rows, d_max]``; ``True`` keeps a weight. The budget counts kept weights; the
    index that says where they are is paid in the exported table's bytes (:mod:`recbole_bet.export`).

    Example::

        >>> mask = ElementMask(np.eye(3, 4, dtype=bool), np.zeros((2, 4), dtype=bool), d_max=4)
        >>> mask.params
        3

    Attributes:
        user_mask (np.ndarray): bool ``[n_users, d_max]``, padding excluded.
        item_mask (np.ndarray): bool ``[n_items, d_max]``.
        d_max (int): width of a row.
    """

    user_mask: np.ndarray
    item_mask: np.ndarray
    d_max: int

    layout = "element"

    def __post_init__(self):
        for name in ("user_mask", "item_mask"):
            mask = np.asarray(getattr(self, name))
            if mask.dtype != np.bool_ or mask.ndim != 2 or mask.shape[1] != self.d_max:
                raise BudgetError(f"ElementMask.{name} must be bool [rows, d_max={self.d_max}], got {mask.dtype} {mask.shape}")
            mask = mask.copy()
            mask.setflags(write=False)
            object.__setattr__(self, name, mask)

    @property
    def user_sizes(self) -> np.ndarray:
        """Kept weights per user row, ``[n_users]``."""
        return self.user_mask.sum(1)

    @property
    def item_sizes(self) -> np.ndarray:
        return self.item_mask.sum(1)

    @property
    def params(self) -> int:
        return int(self.user_mask.sum(dtype=np.int64) + self.item_mask.sum(dtype=np.int64))

    def check(self, budget: Budget):
        """Raise unless the masks match the budget's tables and fit: its parameters, or under a byte budget the bytes
        of the file they export (:meth:`Storage.element_bytes`); return self."""
        if not budget.counts_element_bytes:
            return super().check(budget)
        self.check_shape(budget)
        used = budget.storage.element_bytes(budget.storage.element_kept(self.user_mask, self.item_mask), budget.value_dtype)
        if used > budget.bytes:
            raise BudgetError(f"element layout keeps {self.params} parameters in {used} bytes, over the byte budget of {budget.bytes}")
        return self

    def apply_to(self, model) -> None:
        model.apply_element_mask(self)


# ---------------------------------------------------------------------------
# Shared rows: the weight-sharing layouts (QR, GraphHash)

PARTITION_KINDS = ("quotient", "remainder", "stored")
COMBINERS = ("mult", "sum")


def index_dtype(buckets: int):
    """The narrowest unsigned integer type that holds bucket ids ``0 .. buckets - 1``."""
    for dtype in (np.uint8, np.uint16, np.uint32):
        if buckets - 1 <= np.iinfo(dtype).max:
            return dtype
    return np.uint64


@dataclass(frozen=True, eq=False)
class Partition:
    """One way to put a field's rows into buckets: a rule on the row id, which nothing stores (QR's
    ``quotient`` ``n // divisor`` and ``remainder`` ``n % divisor``, Shi et al., KDD 2020), or a
    ``stored`` assignment (GraphHash's clusters), whose bytes the exported table pays.

    Attributes:
        kind (str): ``quotient``, ``remainder`` or ``stored``.
        buckets (int): how many buckets (rows of the partition's table).
        divisor (int): the rule's divisor (0 for ``stored``).
        assignment (np.ndarray | None): ``stored``: the bucket of every row ``[n_rows]``, in :func:`index_dtype`.
    """

    kind: str
    buckets: int
    divisor: int = 0
    assignment: np.ndarray | None = None

    def __post_init__(self):
        if self.kind not in PARTITION_KINDS:
            raise BudgetError(f"Partition.kind={self.kind!r}; allowed: {', '.join(PARTITION_KINDS)}")
        if self.buckets < 1:
            raise BudgetError(f"a partition needs at least one bucket, got {self.buckets}")
        if self.kind == "stored":
            assignment = np.asarray(self.assignment)
            if assignment.ndim != 1 or not np.issubdtype(assignment.dtype, np.integer):
                raise BudgetError(f"a stored partition needs a 1-d integer assignment, got {assignment.dtype} {assignment.shape}")
            if assignment.size and (assignment.min() < 0 or assignment.max() >= self.buckets):
                raise BudgetError(f"assignment holds buckets in [{assignment.min()}, {assignment.max()}]; allowed: [0, {self.buckets - 1}]")
            assignment = assignment.astype(index_dtype(self.buckets))
            assignment.setflags(write=False)
            object.__setattr__(self, "assignment", assignment)
        elif self.divisor < 1:
            raise BudgetError(f"a {self.kind} partition needs a divisor >= 1, got {self.divisor}")

    def bucket_of(self, rows: np.ndarray) -> np.ndarray:
        """The bucket of each of ``rows`` (0-based, padding excluded), int64."""
        rows = np.asarray(rows, dtype=np.int64)
        if self.kind == "quotient":
            return rows // self.divisor
        if self.kind == "remainder":
            return rows % self.divisor
        return self.assignment[rows].astype(np.int64)

    @property
    def index_bytes(self) -> int:
        """What the exported table stores to find a row's bucket: the assignment, or nothing for a rule."""
        return int(self.assignment.nbytes) if self.kind == "stored" else 0

    def record(self) -> dict:
        """The partition without its assignment: ``kind``, ``buckets``, ``divisor``."""
        return {"kind": self.kind, "buckets": int(self.buckets), "divisor": int(self.divisor)}


@dataclass(frozen=True, eq=False)
class FieldBuckets:
    """A field's rows (users or items) as combinations of shared bucket vectors: row ``n`` is
    ``combine_k T_k[p_k(n)]`` over the partitions ``p_k``, each with a ``[buckets_k, width]`` table ``T_k``;
    the kept parameters are ``width * sum_k buckets_k``, whatever the number of rows.

    Attributes:
        n_rows (int): the field's rows, padding excluded.
        width (int): columns of every bucket vector (the row keeps these; the rest of d_max is zero).
        partitions (tuple[Partition]): one (GraphHash) or complementary ones (QR: quotient and remainder).
        combine (str): how a row's bucket vectors make it: ``mult`` (element-wise product) or ``sum``.
    """

    n_rows: int
    width: int
    partitions: tuple
    combine: str = "mult"

    def __post_init__(self):
        object.__setattr__(self, "partitions", tuple(self.partitions))
        if not self.partitions:
            raise BudgetError("a shared field needs at least one partition")
        if self.combine not in COMBINERS:
            raise BudgetError(f"combine={self.combine!r}; allowed: {', '.join(COMBINERS)}")
        if self.width < 1:
            raise BudgetError(f"a shared field's width must be at least 1, got {self.width}")
        for partition in self.partitions:
            if partition.kind == "stored" and len(partition.assignment) != self.n_rows:
                raise BudgetError(f"assignment for {len(partition.assignment)} rows; the field has {self.n_rows}")
            expected = {"quotient": -(-self.n_rows // max(partition.divisor, 1)), "remainder": partition.divisor}.get(partition.kind)
            if expected is not None and partition.buckets != expected:
                raise BudgetError(f"{partition.kind} partition of {self.n_rows} rows at divisor {partition.divisor} has "
                                  f"{expected} buckets, not {partition.buckets}")

    @property
    def buckets(self) -> list[int]:
        return [p.buckets for p in self.partitions]

    @property
    def params(self) -> int:
        return self.width * sum(self.buckets)

    @property
    def index_bytes(self) -> int:
        return sum(p.index_bytes for p in self.partitions)

    def bucket_index(self) -> np.ndarray:
        """Every row's bucket in every partition, int64 ``[n_partitions, n_rows]``."""
        rows = np.arange(self.n_rows)
        return np.stack([p.bucket_of(rows) for p in self.partitions]) if self.n_rows else np.zeros((len(self.partitions), 0), np.int64)

    def summary(self) -> dict:
        return {"width": int(self.width), "combine": self.combine, "partitions": [p.record() for p in self.partitions],
                "params": self.params, "index_bytes": self.index_bytes}


@dataclass(frozen=True, eq=False)
class SharedBuckets(TableLayout):
    """Rows that share weights (QR, GraphHash): each field a :class:`FieldBuckets`. A parameter budget counts the
    bucket tables' parameters (a stored assignment is paid in the exported table's bytes, as an element mask's index
    is); a byte budget counts the file: values, per-bucket-row scales and assignments (:meth:`Storage.shared_bytes`).

    Example::

        >>> users = FieldBuckets(10, 4, (Partition("quotient", 4, divisor=3), Partition("remainder", 3, divisor=3)))
        >>> items = FieldBuckets(6, 4, (Partition("stored", 2, assignment=np.array([0, 0, 1, 1, 0, 1])),))
        >>> SharedBuckets(users, items, d_max=8).params   # 4 * (4 + 3) + 4 * 2
        36

    Attributes:
        user, item (FieldBuckets): the two fields.
        d_max (int): width of the full table; each field's width is at most this.
    """

    user: FieldBuckets
    item: FieldBuckets
    d_max: int

    layout = "shared"

    def __post_init__(self):
        for name, field in (("user", self.user), ("item", self.item)):
            if field.width > self.d_max:
                raise BudgetError(f"SharedBuckets.{name} has width {field.width}; allowed: at most d_max={self.d_max}")

    @property
    def user_sizes(self) -> np.ndarray:
        """The columns each user row reads (its field's width), ``[n_users]``: not parameters of its own."""
        return np.full(self.user.n_rows, self.user.width, dtype=np.int64)

    @property
    def item_sizes(self) -> np.ndarray:
        return np.full(self.item.n_rows, self.item.width, dtype=np.int64)

    @property
    def params(self) -> int:
        return self.user.params + self.item.params

    @property
    def index_bytes(self) -> int:
        return self.user.index_bytes + self.item.index_bytes

    def check(self, budget: Budget):
        """Raise unless the layout matches the budget's tables and fits in it (under a byte budget: its exported file,
        :meth:`Storage.shared_bytes`, at the budget's precision); return self."""
        if budget.unit != "bytes":
            return super().check(budget)
        self.check_shape(budget)
        used = SharedCost(budget).layout(self)
        if used > budget.bytes:
            raise BudgetError(f"shared layout takes {used} bytes at {budget.value_dtype}, over the byte budget of {budget.bytes}")
        return self

    def summary(self) -> dict:
        return {"layout": self.layout, "users": self.user.summary(), "items": self.item.summary(), "params": self.params,
                "index_bytes": self.index_bytes}

    def apply_to(self, model) -> None:
        model.apply_shared_buckets(self)


@dataclass(frozen=True)
class SharedCost:
    """What a shared layout's buckets cost against ``budget``, for the methods that choose their bucket counts (QR,
    GraphHash): in parameters (the paper's unit), ``width`` a bucket row, nothing for an assignment; under a byte
    budget, the bytes the export writes (:meth:`Storage.bucket_bytes`, :func:`assignment_bytes`) at the budget's
    precision, with the container paid first.

    Example::

        >>> SharedCost(Budget.from_sparsity(0.5, 8, 10, 10)).buckets("user", np.array([1, 3]), 4).tolist()
        [4, 12]
    """

    budget: Budget

    @property
    def in_bytes(self) -> bool:
        return self.budget.unit == "bytes"

    @property
    def unit(self) -> str:
        return "bytes" if self.in_bytes else "parameters"

    @property
    def total(self) -> int:
        """What the buckets and assignments of both fields may cost: the attainable parameters, or the bytes less the
        container."""
        if self.in_bytes:
            return self.budget.bytes - self.budget.storage.fixed_bytes(self.budget.value_dtype)
        return self.budget.attainable

    def buckets(self, field: str, buckets, width: int):
        """One partition of ``field`` with ``buckets`` rows (int or int array) of ``width`` columns."""
        if self.in_bytes:
            return self.budget.storage.bucket_bytes(field, buckets, width, self.budget.value_dtype)
        return np.asarray(buckets, dtype=np.int64) * width if np.ndim(buckets) else int(buckets) * width

    def assignment(self, n_rows: int, buckets: int) -> int:
        """A stored partition's bucket per row (nothing in parameters)."""
        return assignment_bytes(n_rows, buckets) if self.in_bytes else 0

    def field(self, field: str, buckets: FieldBuckets) -> int:
        """All of a field: its partitions' buckets and a stored one's assignment (:func:`shared_field_bytes`)."""
        if self.in_bytes:
            return shared_field_bytes(self.budget.storage, field, buckets, self.budget.value_dtype)
        return buckets.params

    def layout(self, layout: SharedBuckets) -> int:
        """Both fields, plus the container under a byte budget: :meth:`Storage.shared_bytes`, or the parameters."""
        if self.in_bytes:
            return self.budget.storage.shared_bytes(layout, self.budget.value_dtype)
        return layout.params


def keep_largest(scores: list[np.ndarray], k: int) -> list[np.ndarray]:
    """Masks that keep exactly the ``k`` largest scores over all arrays together (PEP's margins,
    magnitude pruning's ``|w|``); among equal scores the earlier (array order, then row-major) wins.

    Args:
        scores (list[np.ndarray]): float arrays of any shapes.
        k (int): how many to keep, ``0 <= k <= total size``.

    Returns:
        list[np.ndarray]: bool arrays of the same shapes, ``k`` True in all.
    """
    flat = np.concatenate([np.asarray(s, dtype=np.float64).ravel() for s in scores])
    if not 0 <= k <= flat.size:
        raise BudgetError(f"cannot keep {k} of {flat.size} weights")
    if np.isnan(flat).any():
        raise BudgetError("scores hold NaN: the weights diverged; lower the learning rate")
    keep = np.zeros(flat.size, dtype=bool)
    keep[np.argsort(-flat, kind="stable")[:k]] = True
    out, start = [], 0
    for s in scores:
        out.append(keep[start : start + np.size(s)].reshape(np.shape(s)))
        start += np.size(s)
    return out


# ---------------------------------------------------------------------------
# Exact fitting: the repair step shared by every method


def frequency_rank(frequency: np.ndarray) -> np.ndarray:
    """Row indices from most to least frequent; ties keep id order (stable)."""
    return np.argsort(-np.asarray(frequency), kind="stable")


def hand_out(sizes: np.ndarray, amount, d_max: int, order: np.ndarray) -> np.ndarray:
    """Add ``amount`` parameters, one per row per pass, to rows in ``order`` that are below d_max.

    A pass adds one dimension to every row that still has room, in ``order``,
    until the amount is used. The passes are not looped: ``K`` whole passes add
    ``min(K, room)`` to every row, and the largest affordable ``K`` comes from a
    histogram of the rooms; the last, partial pass goes to the first rows in
    order that still have room. Works on one size vector ``[n]`` or a batch
    ``[m, n]`` (then ``amount`` is ``[m]``).

    Args:
        sizes (np.ndarray): int ``[n]`` or ``[m, n]``, changed on a copy.
        amount (int | np.ndarray): parameters to add, at most the room left.
        d_max (int): cap per row.
        order (np.ndarray): int ``[n]`` row indices, first gets first.
    """
    single = np.ndim(sizes) == 1
    sizes = np.atleast_2d(np.asarray(sizes, dtype=np.int64))[:, order]
    m, n = sizes.shape
    amount = np.broadcast_to(np.asarray(amount, dtype=np.int64), (m,))
    room = d_max - sizes
    if np.any(amount > room.sum(1)) or np.any(amount < 0):
        bad = int(np.argmax((amount > room.sum(1)) | (amount < 0)))
        raise BudgetError(f"cannot add {amount[bad]} parameters to rows with room for {room[bad].sum()}")
    # added[k] = sum(min(k, room)) for k = 0..d_max, from each row's histogram of rooms
    counts = np.bincount((room + (d_max + 1) * np.arange(m)[:, None]).ravel(), minlength=m * (d_max + 1))
    counts = counts.reshape(m, d_max + 1)
    k = np.arange(d_max + 1)
    below = np.cumsum(counts * k, axis=1) - counts * k  # sum of rooms smaller than k
    at_least = counts[:, ::-1].cumsum(1)[:, ::-1]  # rows with room >= k
    added = below + k * at_least
    passes = (added <= amount[:, None]).sum(1) - 1  # K, the whole passes affordable
    sizes = sizes + np.minimum(room, passes[:, None])
    rest = amount - added[np.arange(m), passes]
    still_open = room > passes[:, None]
    sizes += still_open & (np.cumsum(still_open, axis=1, dtype=np.int32) <= rest[:, None])
    out = np.empty_like(sizes)
    out[:, order] = sizes
    return out[0] if single else out


def fit_to_total(sizes: np.ndarray, total, d_max: int, order: np.ndarray) -> np.ndarray:
    """Repair integer sizes so that they lie in ``[1, d_max]`` and sum to exactly ``total``.

    Over the total, the part above 1 is scaled down (``1 + floor((s - 1) * k)``),
    which keeps the shape of the draw and never exceeds the total; what is then
    left (less than one per row) is handed to rows in ``order``, as is any
    shortfall of a draw under the total. Monotone in ``sizes``: a size vector
    sorted along ``order`` stays sorted.

    Args:
        sizes (np.ndarray): int ``[n]``, or a batch ``[m, n]``, proposed sizes (any integers).
        total (int | np.ndarray): target sum (``[m]`` for a batch), ``n <= total <= n * d_max``.
        d_max (int): cap per row.
        order (np.ndarray): int ``[n]``, who receives leftovers first.

    Returns:
        np.ndarray: int64, the shape of ``sizes``.
    """
    single = np.ndim(sizes) == 1
    sizes = np.clip(np.atleast_2d(np.asarray(sizes, dtype=np.int64)), 1, d_max)
    n = sizes.shape[1]
    total = np.broadcast_to(np.asarray(total, dtype=np.int64), sizes.shape[:1])
    if np.any(total < n) or np.any(total > n * d_max):
        bad = total[(total < n) | (total > n * d_max)][0]
        raise BudgetError(f"total={bad} is outside [{n}, {n * d_max}] for {n} rows at d_max={d_max}")
    current = sizes.sum(1)
    over = current > total
    if over.any():
        scale_num, scale_den = (total - n)[over, None], (current - n)[over, None]
        sizes[over] = 1 + (sizes[over] - 1) * scale_num // scale_den
    sizes = hand_out(sizes, total - sizes.sum(1), d_max, order)
    return sizes[0] if single else sizes


def fit_sorted_to_total(sizes: np.ndarray, total, d_max: int) -> np.ndarray:
    """:func:`fit_to_total` for a batch whose rows are sorted largest first, in O(m * d_max) after one pass.

    A sorted size vector is fully described by its histogram (how many rows
    have each size), and every repair step (clamp, scale-down, hand-out in
    rank order) maps a histogram to a histogram, so only the histogram is
    repaired; the sorted sizes are expanded from it at the end. The result
    equals ``fit_to_total(sizes, total, d_max, np.arange(n))`` row for row.

    Args:
        sizes (np.ndarray): int ``[m, n]``, each row non-increasing.
        total (int | np.ndarray): target sums ``[m]``, ``n <= total <= n * d_max``.
        d_max (int): cap per row.

    Returns:
        np.ndarray: int16 ``[m, n]``, each row non-increasing, in ``[1, d_max]``, summing to its total.
    """
    sizes = np.asarray(sizes)
    m, n = sizes.shape
    total = np.broadcast_to(np.asarray(total, dtype=np.int64), (m,))
    if np.any(total < n) or np.any(total > n * d_max):
        bad = total[(total < n) | (total > n * d_max)][0]
        raise BudgetError(f"total={bad} is outside [{n}, {n * d_max}] for {n} rows at d_max={d_max}")
    values = np.arange(d_max + 1)  # histogram bins 0..d_max; bin 0 stays empty
    rows = np.arange(m)[:, None]
    clipped = np.clip(sizes, 1, d_max).astype(np.int64)
    hist = np.bincount((clipped + (d_max + 1) * rows).ravel(), minlength=m * (d_max + 1)).reshape(m, d_max + 1)

    # Over the total: v -> 1 + (v - 1) * (total - n) // (current - n), a monotone remap of the bins.
    current = hist @ values
    over = current > total
    if over.any():
        target = 1 + (values[None, :] - 1).clip(0) * (total - n)[over, None] // (current - n)[over, None]
        remapped = np.zeros_like(hist[over])
        np.add.at(remapped, (np.arange(over.sum())[:, None], target), hist[over])
        hist[over] = remapped
        hist[:, 0] = 0

    # Hand the rest out in rank order: K whole passes, then a partial pass to the largest open sizes.
    amount = total - hist @ values
    room = d_max - values  # room of a row in each bin
    passes_cost = np.minimum(room[None, :], values[:, None])  # [K, bin]: min(K, room)
    added = hist @ passes_cost.T  # [m, K]
    passes = (added <= amount[:, None]).sum(1) - 1
    rest = amount - added[np.arange(m), passes]
    shifted = np.zeros_like(hist)
    target = np.minimum(values[None, :] + passes[:, None], d_max)
    np.add.at(shifted, (np.broadcast_to(rows, target.shape), target), hist)
    open_bins = values[None, :] < d_max
    # largest open size first: how many rows of each bin move up by one
    open_hist = np.where(open_bins, shifted, 0)
    before = np.cumsum(open_hist[:, ::-1], axis=1)[:, ::-1] - open_hist  # open rows in larger bins
    move = np.clip(rest[:, None] - before, 0, open_hist)
    shifted -= move
    shifted[:, 1:] += move[:, :-1]

    by_value = shifted[:, ::-1][:, :-1]  # bins d_max..1
    expanded = np.repeat(np.tile(values[::-1][:-1], m), by_value.ravel())
    return expanded.reshape(m, n).astype(np.int16)


def split_total(total: int, share, n_users: int, n_items: int, d_max: int):
    """Split ``total`` parameters into a user part near ``share * total`` and an item part.

    Each part is kept feasible (at least one dimension per row, at most d_max),
    and whatever one field cannot hold goes to the other, so the parts always
    sum to ``min(total, (n_users + n_items) * d_max)``. ``share`` may be an array.
    """
    total = min(total, (n_users + n_items) * d_max)
    users = np.floor(np.asarray(share, dtype=np.float64) * total).astype(np.int64)
    users = np.minimum(np.maximum(users, max(n_users, total - n_items * d_max)), min(n_users * d_max, total - n_items))
    if users.ndim == 0:
        return int(users), int(total - users)
    return users, total - users


def sizes_for_tables(sizes: np.ndarray, widths: list[int]) -> list[np.ndarray]:
    """Split one size per row across several tables of the given widths.

    Used by NeuMF, whose row is its GMF and MLP embeddings together
    (``d_max = sum(widths)``). Table ``k`` gets
    ``ceil(d * W_k / W) - ceil(d * W_{k-1} / W)`` with ``W_k`` the running sum
    of widths: the parts sum to ``d`` exactly, each part is at most its width,
    and equal widths split a size evenly (GMF takes the odd dimension).

    Args:
        sizes (np.ndarray): int ``[n]`` with ``0 <= d <= sum(widths)``.
        widths (list[int]): widths of the tables.

    Returns:
        list[np.ndarray]: one int64 ``[n]`` array per table.
    """
    sizes = np.asarray(sizes, dtype=np.int64)
    total_width = sum(widths)
    bounds = np.cumsum([0] + list(widths))
    cum = [-((-sizes * b) // total_width) for b in bounds]  # integer ceil
    return [cum[k + 1] - cum[k] for k in range(len(widths))]
