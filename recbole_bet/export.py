"""The compressed embedding table: kept values only, plus the smallest index that places them.

A prefix-masked table (BET, ES, MR, MDE, OptEmbed) is stored as the kept values of
every row, row-major and concatenated, and one size per row (``uint8`` while ``d_max <= 255``);
offsets are the running sum of sizes. That is the storage floor of ``4 * kept + n_rows`` bytes in
float32 (DESIGN.md, section 3); a CSR matrix would add a column index per value.

A table that keeps single weights (PEP, magnitude pruning) needs an index of where they are. Of
the two encodings below, the smaller one is written for each table:

* ``bitmap``: one bit per weight, ``ceil(width / 8)`` bytes a row (16 for 128 columns), whatever it keeps;
* ``columns``: the column of every kept value (``uint8``) and the count per row, ``kept + n_rows`` bytes.

A table whose rows share bucket vectors (QR, GraphHash: :class:`~recbole_bet.embedding.SharedEmbedding`) is stored as
its bucket tables and, for a partition that no rule on the id gives (GraphHash's clusters), the bucket of every row in
the narrowest unsigned integer type; QR's quotient and remainder are computed from the id, so only their divisor is
written (in ``meta``).

The file is an uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays, no pickles), readable
without torch or RecBole through :func:`read_table`:

    user_sizes   uint8 [n_users]   prefix sizes, RecBole ids (row 0 is padding, size 0); for an element
    item_sizes   uint8 [n_items]   mask, the prefix that covers each row's kept weights
    <table>      float32 [kept]    e.g. user_embedding, item_embedding
    <table>.bitmap   uint8 [n_rows, ceil(width / 8)]   (element masks, bitmap encoding)
    <table>.columns  uint8 [kept], <table>.counts  uint8 [n_rows]   (element masks, columns encoding)
    <table>.bucket<k>      float32 [buckets_k, width]   (shared tables: partition k's bucket vectors)
    <field>.assignment<k>  uint8/16/32 [rows]           (shared tables: a stored partition's bucket per row, padding excluded)
    meta         str               JSON: model, d_max, tables {name: [field, width]}, encoding {name: prefix|bitmap|columns|shared},
                                   shared {field: {width, combine, partitions: [{kind, buckets, divisor}]}} for shared tables
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import torch

from recbole_bet.budget import FIELDS, FieldBuckets, Partition, SharedBuckets, sizes_for_tables
from recbole_bet.embedding import SharedEmbedding


def _size_dtype(d_max: int):
    return np.uint8 if d_max <= np.iinfo(np.uint8).max else np.uint16


def element_index(mask: np.ndarray) -> dict[str, np.ndarray]:
    """The smaller index of a bool ``[n_rows, width]`` element mask: ``{"bitmap": ...}`` or ``{"columns": ..., "counts": ...}``."""
    rows, width = mask.shape
    column_dtype, count_dtype = _size_dtype(width - 1), _size_dtype(width)
    kept = int(mask.sum())
    bitmap_bytes = rows * ((width + 7) // 8)
    columns_bytes = kept * np.dtype(column_dtype).itemsize + rows * np.dtype(count_dtype).itemsize
    if bitmap_bytes <= columns_bytes:
        return {"bitmap": np.packbits(mask, axis=1)}
    return {"columns": np.nonzero(mask)[1].astype(column_dtype), "counts": mask.sum(1).astype(count_dtype)}


def element_mask_from_index(index: dict[str, np.ndarray], rows: int, width: int) -> np.ndarray:
    """The bool ``[rows, width]`` mask back from :func:`element_index`'s arrays."""
    if "bitmap" in index:
        return np.unpackbits(index["bitmap"], axis=1, count=width).astype(bool)
    mask = np.zeros((rows, width), dtype=bool)
    mask[np.repeat(np.arange(rows), index["counts"].astype(np.int64)), index["columns"].astype(np.int64)] = True
    return mask


def table_arrays(model) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of ``model``'s masked tables, as :func:`export_table` writes them (the table meta as JSON under
    ``meta``), and their sizes: ``payload_bytes`` (values, sizes and indices), ``index_bytes`` (the element masks'
    indices, or the shared tables' stored assignments, alone), ``kept_params``. A model package
    (:mod:`recbole_bet.package`) holds the same arrays."""
    arrays, meta = {}, {"model": type(model).__name__, "d_max": model.d_max, "tables": {}, "encoding": {}, "format": 2}
    kept, index_bytes = 0, 0
    for field in FIELDS:
        names = model.tables(field)
        modules = [model.get_submodule(name) for name in names]
        for name, table in zip(names, modules):
            meta["tables"][name] = [field, table.embedding_dim]
        if all(isinstance(table, SharedEmbedding) for table in modules):
            parts = _shared_arrays(field, names, modules, arrays, meta)
        else:
            sizes = sum(table.sizes.long() for table in modules).cpu().numpy()
            arrays[f"{field}_sizes"] = sizes.astype(_size_dtype(model.d_max))
            parts = [_masked_arrays(name, table, arrays, meta) for name, table in zip(names, modules)]
        kept += sum(part[0] for part in parts)
        index_bytes += sum(part[1] for part in parts)
    payload = sum(a.nbytes for a in arrays.values())
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays, {"payload_bytes": int(payload), "index_bytes": int(index_bytes), "kept_params": int(kept)}


def export_table(model, path) -> dict:
    """Write ``model``'s masked tables to ``path`` (``.npz``).

    Returns:
        dict: ``path``, ``bytes`` (file size), and :func:`table_arrays`' ``payload_bytes``, ``index_bytes`` and
        ``kept_params``.
    """
    arrays, sizes = table_arrays(model)
    path = os.fspath(path)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return {"path": path, "bytes": os.path.getsize(path), **sizes}


def _masked_arrays(name: str, table, arrays: dict, meta: dict) -> tuple[int, int]:
    """A masked table's kept values (and an element mask's index) into ``arrays``: ``(kept values, index bytes)``."""
    mask = table.mask.bool()
    values = table.full_weight.detach()[mask]  # row-major: prefixes, or the kept weights of each row
    arrays[name] = values.cpu().numpy().astype(np.float32)
    meta["encoding"][name] = "prefix"
    index_bytes = 0
    if table.is_element_masked:
        index = element_index(mask.cpu().numpy())
        meta["encoding"][name] = next(iter(index))
        for part, array in index.items():
            arrays[f"{name}.{part}"] = array
            index_bytes += array.nbytes
    return values.numel(), index_bytes


def _shared_arrays(field: str, names: list[str], tables: list, arrays: dict, meta: dict) -> list[tuple[int, int]]:
    """A shared field's bucket tables and stored assignments (once for the field's tables) into ``arrays``, its
    partitions into ``meta``: ``[(kept values, index bytes)]``. No size per row: every row reads the field's width."""
    buckets = tables[0].field
    meta.setdefault("shared", {})[field] = {"rows": buckets.n_rows, "width": buckets.width, "combine": buckets.combine,
                                            "partitions": [p.record() for p in buckets.partitions]}
    index_bytes = 0
    for k, partition in enumerate(buckets.partitions):
        if partition.kind == "stored":
            arrays[f"{field}.assignment{k}"] = partition.assignment
            index_bytes += partition.assignment.nbytes
    for name, table in zip(names, tables):
        meta["encoding"][name] = "shared"
        for k, values in enumerate(table.tables):
            arrays[f"{name}.bucket{k}"] = values.detach().cpu().numpy().astype(np.float32)
    return [(sum(t.kept_params for t in tables), index_bytes)]


def read_table(path) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read an exported table into dense arrays (zeros where nothing is kept); see :func:`read_table_masks`."""
    meta, tables, sizes, _ = read_table_masks(path)
    return meta, tables, sizes


def read_table_masks(path) -> tuple[dict, dict, dict, dict]:
    """Read an exported table (or a model package, which holds one) into dense arrays; see :func:`decode_tables`."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
        return decode_tables(data)
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
        raise ValueError(f"{path} is not an exported recbole-bet table: {error}") from None


def decode_tables(data: dict[str, np.ndarray]) -> tuple[dict, dict, dict, dict]:
    """The tables of :func:`table_arrays`' arrays (read from a file), as dense arrays (zeros where nothing is kept).

    Returns:
        (meta, tables, sizes, masks): ``tables[name]`` is float32 ``[n_rows, width]``,
        ``sizes[name]`` int64 ``[n_rows]`` the kept prefix of each of its rows (for an
        element-masked table, the number of kept weights of each row) and ``masks[name]``
        bool ``[n_rows, width]`` where weights are kept. A shared table's rows are made from its buckets; its
        sizes and masks are the columns every row reads.
    """
    meta = json.loads(str(data["meta"]))
    tables, sizes, masks = {}, {}, {}
    encoding = meta.get("encoding", {})  # format 1 (prefix tables only) has none
    for field in FIELDS:
        names = [name for name, (f, _) in meta["tables"].items() if f == field]
        widths = [meta["tables"][name][1] for name in names]
        if field in meta.get("shared", {}):
            _read_shared(meta, data, field, names, widths, (tables, sizes, masks))
            continue
        for name, width, part in zip(names, widths, sizes_for_tables(data[f"{field}_sizes"], widths)):
            if encoding.get(name, "prefix") == "prefix":
                kept = np.arange(width) < part[:, None]
            else:
                index = {key[len(name) + 1 :]: array for key, array in data.items() if key in (f"{name}.bitmap", f"{name}.columns", f"{name}.counts")}
                kept = element_mask_from_index(index, len(part), width)
                part = kept.sum(1)
            table = np.zeros((len(part), width), dtype=np.float32)
            table[kept] = data[name]
            tables[name], sizes[name], masks[name] = table, part, kept
    return meta, tables, sizes, masks


@torch.no_grad()
def load_table(path, model) -> None:
    """Rebuild ``model``'s masked tables (values and sizes) from an exported file."""
    meta, tables, sizes, masks = read_table_masks(path)
    expected = {name: [field, model.get_submodule(name).embedding_dim] for name, field in model.budget_tables.items()}
    if meta["tables"] != expected:
        raise ValueError(f"{path} holds tables {meta['tables']}, but the model has {expected}")
    if "shared" in meta:
        load_shared(path, model, meta)
        return
    for name, table in tables.items():
        module = model.get_submodule(name)
        if table.shape != tuple(module.full_weight.shape):
            raise ValueError(f"{path}: table {name} is {table.shape}, the model's is {tuple(module.full_weight.shape)}")
        module.full_weight.copy_(torch.from_numpy(table))
        if meta.get("encoding", {}).get(name, "prefix") == "prefix":
            module.set_sizes(torch.from_numpy(sizes[name]))
        else:
            module.set_element_mask(torch.from_numpy(masks[name]))
    model.clear_cached_embeddings()


def shared_field(meta: dict, data: dict, field: str) -> FieldBuckets:
    """A shared field's buckets back from the file: its partitions from ``meta``, a stored one's assignment from ``data``."""
    record = meta["shared"][field]
    partitions = [Partition(p["kind"], p["buckets"], p["divisor"], data.get(f"{field}.assignment{k}"))
                  for k, p in enumerate(record["partitions"])]
    return FieldBuckets(record["rows"], record["width"], partitions, record["combine"])


def _read_shared(meta: dict, data: dict, field: str, names: list[str], widths: list[int], out: tuple) -> None:
    """A shared field's tables as dense rows, into ``out`` = (tables, sizes, masks) of :func:`read_table_masks`."""
    buckets = shared_field(meta, data, field)
    row_widths = sizes_for_tables(np.concatenate([[0], np.full(buckets.n_rows, buckets.width)]), widths)
    for name, width, part in zip(names, widths, row_widths):
        values = [data[f"{name}.bucket{k}"] for k in range(len(buckets.partitions))]
        out[0][name], out[1][name], out[2][name] = shared_dense(buckets, values, width), part, np.arange(width) < part[:, None]


def shared_dense(buckets: FieldBuckets, values: list[np.ndarray], width: int) -> np.ndarray:
    """A shared table's rows, float32 ``[n_rows + 1, width]`` (row 0, padding, zero), from its bucket tables:
    the same element-wise products or sums the model computes."""
    index = buckets.bucket_index()
    rows = values[0][index[0]]
    for part, bucket in zip(values[1:], index[1:]):
        rows = rows * part[bucket] if buckets.combine == "mult" else rows + part[bucket]
    table = np.zeros((buckets.n_rows + 1, width), dtype=np.float32)
    table[1:, : rows.shape[1]] = rows
    return table


@torch.no_grad()
def load_shared(path, model, meta: dict) -> None:
    """Put an exported shared table (QR, GraphHash) into ``model``: its buckets as the model's tables."""
    with np.load(path, allow_pickle=False) as npz:
        data = {key: npz[key] for key in npz.files}
    fields = [shared_field(meta, data, field) for field in FIELDS]
    model.apply_shared_buckets(SharedBuckets(*fields, model.d_max))
    for name in model.budget_tables:
        module = model.get_submodule(name)
        for k, table in enumerate(module.tables):
            values = torch.from_numpy(data[f"{name}.bucket{k}"])
            if values.shape != table.shape:
                raise ValueError(f"{path}: {name}'s bucket table {k} is {tuple(values.shape)}, the model's is {tuple(table.shape)}")
            table.copy_(values)
    model.clear_cached_embeddings()
