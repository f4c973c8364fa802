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
    <table>      float32 [kept]    e.g. user_embedding, item_embedding (at value_dtype: float16 [kept],
                                   int8 [kept], or int4 two a byte, uint8 [ceil(kept / 2)], low nibble first)
    <table>.scales   float16 [n_rows]   (int8 / int4 only) per-row scale times 1024: a value is q * scales / 1024
    <table>.bitmap   uint8 [n_rows, ceil(width / 8)]   (element masks, bitmap encoding)
    <table>.columns  uint8 [kept], <table>.counts  uint8 [n_rows]   (element masks, columns encoding)
    <table>.bucket<k>      float32 [buckets_k, width]   (shared tables: partition k's bucket vectors; at value_dtype:
                                   float16 or int8 [buckets_k, width], or int4 two a byte, uint8 [ceil(buckets_k * width / 2)])
    <table>.bucket<k>.scales  float16 [buckets_k]        (shared tables at int8 / int4: per-bucket-row scale times 1024;
                                   empty for a bucket table without columns)
    <field>.assignment<k>  uint8/16/32 [rows]           (shared tables: a stored partition's bucket per row, padding excluded)
    meta         str               JSON: model, d_max, tables {name: [field, width]}, encoding {name: prefix|bitmap|columns|shared},
                                   shared {field: {width, combine, partitions: [{kind, buckets, divisor}]}} for shared tables
                                   (below float32, format 3: value_dtype, and scale_dtype, scale_shift for int8 / int4)

Shared tables are stored at the run's ``value_dtype`` as the other tables are, a bucket row standing for a row
(its own scale at int8 / int4); :func:`read_table` combines the dequantised bucket rows as the model does.

:func:`read_table` returns float32 values equal, bit for bit, to the model's dequantised ``.weight``
(:mod:`recbole_bet.precision`). The file's size is the container (:func:`container_bytes`) plus the arrays' data, so a
byte budget can count it before anything is trained (:func:`table_storage`, :class:`recbole_bet.budget.Storage`).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import zipfile

import numpy as np
import torch

from recbole_bet.budget import (
    COMBINERS, FIELDS, VALUE_DTYPES, FieldBuckets, Partition, SharedBuckets, Storage, is_quantised, sizes_for_tables,
)
from recbole_bet.embedding import SharedEmbedding
from recbole_bet.errors import ConfigError
from recbole_bet.precision import SCALE_SHIFT, dequantise, pack_int4, stored_scales


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


def write_npz(file, arrays: dict) -> None:
    """``np.savez(file, **arrays)`` (uncompressed, zip64 records), written here so that :func:`container_bytes`
    counts, byte for byte, what this writes around the arrays."""
    with zipfile.ZipFile(file, mode="w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for key, value in arrays.items():
            with archive.open(key + ".npy", "w", force_zip64=True) as handle:
                np.lib.format.write_array(handle, np.asanyarray(value), allow_pickle=False)


def container_bytes(arrays: dict) -> int:
    """The bytes :func:`write_npz` writes for ``arrays`` beyond their data (the ``meta`` string's data included):
    zip records and ``.npy`` headers. A header does not depend on the length of an array's first axis (numpy pads it),
    so the same names, dtypes and other axes give the same container."""
    stubs = {key: value if key == "meta" else np.empty((0,) + value.shape[1:], value.dtype) for key, value in arrays.items()}
    buffer = io.BytesIO()
    write_npz(buffer, stubs)
    return len(buffer.getvalue())


def _meta(model, encoding: dict, dtype: str, shared: dict | None = None) -> np.ndarray:
    """The ``meta`` entry: JSON of the model, d_max, tables, index encodings, shared fields and, below float32, the
    precision."""
    tables = {name: [field, model.get_submodule(name).embedding_dim] for field in FIELDS for name in model.tables(field)}
    meta = {"model": type(model).__name__, "d_max": model.d_max, "tables": tables, "encoding": encoding, "format": 2}
    if shared:
        meta["shared"] = shared
    if dtype != "float32":
        meta.update(format=3, value_dtype=dtype, **({"scale_dtype": "float16", "scale_shift": SCALE_SHIFT} if is_quantised(dtype) else {}))
    return np.array(json.dumps(meta))


def _values_dtype(dtype: str):
    return {"float32": np.float32, "float16": np.float16, "int8": np.int8, "int4": np.uint8}[dtype]


def _stub_arrays(model, dtype: str, encoding: dict) -> dict:
    """Empty arrays of every name, dtype and trailing shape the export of ``model`` at ``dtype`` writes with the
    index ``encoding`` (table -> prefix, bitmap or columns), and its meta: what :func:`container_bytes` needs."""
    arrays = {}
    for field in FIELDS:
        arrays[f"{field}_sizes"] = np.empty(0, _size_dtype(model.d_max))
        for name in model.tables(field):
            width = model.get_submodule(name).embedding_dim
            arrays[name] = np.empty(0, _values_dtype(dtype))
            if is_quantised(dtype):
                arrays[f"{name}.scales"] = np.empty(0, np.float16)
            if encoding[name] == "bitmap":
                arrays[f"{name}.bitmap"] = np.empty((0, (width + 7) // 8), np.uint8)
            elif encoding[name] == "columns":
                arrays[f"{name}.columns"] = np.empty(0, _size_dtype(width - 1))
                arrays[f"{name}.counts"] = np.empty(0, _size_dtype(width))
    arrays["meta"] = _meta(model, encoding, dtype)
    return arrays


def _shared_record(rows: int, width: int, combine: str, partitions: list[dict]) -> dict:
    """A shared field's entry of the meta: ``rows``, ``width``, ``combine`` and its partitions' records."""
    return {"rows": int(rows), "width": int(width), "combine": combine, "partitions": partitions}


def _shared_stub_arrays(model, dtype: str, partitions: tuple) -> dict:
    """Empty arrays of every name, dtype and trailing shape the export of ``model``'s tables shared with
    ``partitions`` (kinds, each field's) writes at ``dtype``, and its meta at the largest numbers the methods' layouts
    hold (a field's width at most d_max, a partition's buckets and divisor at most the field's rows): the container of
    any such layout is at most theirs (:func:`container_bytes`; a longer number only lengthens the meta)."""
    arrays, encoding, shared = {}, {}, {}
    for field in FIELDS:
        names = model.tables(field)
        rows = model.get_submodule(names[0]).num_embeddings - 1
        records = [{"kind": kind, "buckets": rows, "divisor": 0 if kind == "stored" else rows} for kind in partitions]
        shared[field] = _shared_record(rows, model.d_max, max(COMBINERS, key=len), records)
        for k, kind in enumerate(partitions):
            if kind == "stored":
                arrays[f"{field}.assignment{k}"] = np.empty(0, np.uint32)  # '<u4': as long a header as uint8's '|u1'
        for name in names:
            encoding[name] = "shared"
            width = model.get_submodule(name).embedding_dim
            for k in range(len(partitions)):
                arrays[f"{name}.bucket{k}"] = np.empty(0 if dtype == "int4" else (0, width), _values_dtype(dtype))
                if is_quantised(dtype):
                    arrays[f"{name}.bucket{k}.scales"] = np.empty(0, np.float16)
    arrays["meta"] = _meta(model, encoding, dtype, shared)
    return arrays


def table_storage(model, layout: str, partitions: tuple = ()) -> Storage:
    """What :func:`export_table` stores for ``model``'s tables in ``layout`` (prefix, element, or shared with
    ``partitions``, the kinds of each field's) besides the values, at every precision: the byte count a byte budget is
    made of (:meth:`recbole_bet.budget.Budget.from_bytes`)."""
    if layout not in ("prefix", "element", "shared"):
        raise ConfigError(f"budget_unit=bytes: the export counts prefix, element and shared layouts, not {layout!r}")
    tables = tuple((field, model.get_submodule(name).embedding_dim, model.get_submodule(name).num_embeddings)
                   for field in FIELDS for name in model.tables(field))
    if layout == "shared":
        containers = tuple((dtype, container_bytes(_shared_stub_arrays(model, dtype, tuple(partitions)))) for dtype in VALUE_DTYPES)
        return Storage(layout, model.d_max, tables, containers, tuple(partitions))
    names = [name for field in FIELDS for name in model.tables(field)]
    choices = [("prefix",)] * len(names) if layout == "prefix" else [("bitmap", "columns")] * len(names)
    containers = tuple(
        (dtype, max(container_bytes(_stub_arrays(model, dtype, dict(zip(names, pick)))) for pick in itertools.product(*choices)))
        for dtype in VALUE_DTYPES
    )
    return Storage(layout, model.d_max, tables, containers)


def _stored_values(table, mask: torch.Tensor) -> dict[str, np.ndarray]:
    """``{"values": ..., "scales": ...}``: one table's kept values, row-major, as its precision stores them."""
    dtype = table.value_dtype
    if dtype == "float32":
        return {"values": table.full_weight.detach()[mask].cpu().numpy().astype(np.float32)}
    if dtype == "float16":
        return {"values": table.weight.detach()[mask].cpu().numpy().astype(np.float16)}
    q, scales = table.stored_rows()
    kept = q[mask].cpu().numpy()
    return {"values": pack_int4(kept) if dtype == "int4" else kept, "scales": stored_scales(scales.cpu().numpy())}


def table_arrays(model) -> tuple[dict[str, np.ndarray], dict]:
    """The arrays of ``model``'s masked tables, as :func:`export_table` writes them at the tables' precision (the
    table meta as JSON under ``meta``), and their sizes: ``payload_bytes`` (values, scales, sizes and indices),
    ``index_bytes`` (the element masks' indices, or the shared tables' stored assignments, alone), ``kept_params``,
    ``value_dtype``. A model package (:mod:`recbole_bet.package`) holds the same arrays."""
    arrays, encoding, shared = {}, {}, {}
    kept, index_bytes, dtype = 0, 0, model.value_dtype
    for field in FIELDS:
        names = model.tables(field)
        modules = [model.get_submodule(name) for name in names]
        if all(isinstance(table, SharedEmbedding) for table in modules):
            parts = _shared_arrays(field, names, modules, arrays, encoding, shared)
        else:
            sizes = sum(table.sizes.long() for table in modules).cpu().numpy()
            arrays[f"{field}_sizes"] = sizes.astype(_size_dtype(model.d_max))
            parts = [_masked_arrays(name, table, arrays, encoding) for name, table in zip(names, modules)]
        kept += sum(part[0] for part in parts)
        index_bytes += sum(part[1] for part in parts)
    payload = sum(a.nbytes for a in arrays.values())
    arrays["meta"] = _meta(model, encoding, dtype, shared)
    return arrays, {"payload_bytes": int(payload), "index_bytes": int(index_bytes), "kept_params": int(kept), "value_dtype": dtype}


def export_table(model, path) -> dict:
    """Write ``model``'s masked tables to ``path`` (``.npz`` file or a writable binary file object), at the tables'
    precision.

    Returns:
        dict: ``path`` (None for a file object), ``bytes`` (file size), and :func:`table_arrays`' ``payload_bytes``,
        ``index_bytes``, ``kept_params`` and ``value_dtype``.
    """
    arrays, sizes = table_arrays(model)
    if hasattr(path, "write"):
        write_npz(path, arrays)  # written here, so that container_bytes counts the file exactly
        path, size = None, path.tell()
    else:
        path = os.fspath(path)
        with open(path, "wb") as handle:
            write_npz(handle, arrays)
        size = os.path.getsize(path)
    return {"path": path, "bytes": size, **sizes}


def _masked_arrays(name: str, table, arrays: dict, encoding: dict) -> tuple[int, int]:
    """A masked table's kept values at its precision (and their scales, and an element mask's index) into ``arrays``:
    ``(kept values, index bytes)``."""
    mask = table.mask.bool()
    stored = _stored_values(table, mask)  # row-major: prefixes, or the kept weights of each row
    arrays[name] = stored["values"]
    if "scales" in stored:
        arrays[f"{name}.scales"] = stored["scales"]
    encoding[name] = "prefix"
    index_bytes = 0
    if table.is_element_masked:
        index = element_index(mask.cpu().numpy())
        encoding[name] = next(iter(index))
        for part, array in index.items():
            arrays[f"{name}.{part}"] = array
            index_bytes += array.nbytes
    return int(mask.sum()), index_bytes


def _shared_arrays(field: str, names: list[str], tables: list, arrays: dict, encoding: dict, shared: dict) -> list[tuple[int, int]]:
    """A shared field's bucket tables (at their precision, with their scales) and stored assignments (once for the
    field's tables) into ``arrays``, its partitions into ``shared``: ``[(kept values, index bytes)]``. No size per
    row: every row reads the field's width."""
    buckets = tables[0].field
    shared[field] = _shared_record(buckets.n_rows, buckets.width, buckets.combine, [p.record() for p in buckets.partitions])
    index_bytes = 0
    for k, partition in enumerate(buckets.partitions):
        if partition.kind == "stored":
            arrays[f"{field}.assignment{k}"] = partition.assignment
            index_bytes += partition.assignment.nbytes
    for name, table in zip(names, tables):
        encoding[name] = "shared"
        for k, stored in enumerate(_stored_buckets(table)):
            arrays[f"{name}.bucket{k}"] = stored["values"]
            if "scales" in stored:
                arrays[f"{name}.bucket{k}.scales"] = stored["scales"]
    return [(sum(t.kept_params for t in tables), index_bytes)]


def _stored_buckets(table: SharedEmbedding) -> list[dict[str, np.ndarray]]:
    """``[{"values": ..., "scales": ...}]``: each bucket table of ``table`` as its precision stores it (int8 / int4:
    a scale per bucket row; a table without columns (NeuMF's MLP half of a width-1 field) has no value to scale, and
    its scales are empty, so that every file of a layout has the same arrays)."""
    dtype = table.value_dtype
    if not is_quantised(dtype):
        return [{"values": values.detach().cpu().numpy().astype(_values_dtype(dtype))} for values in table.bucket_values()]
    if table.width == 0:
        return [{"values": np.empty(0 if dtype == "int4" else (len(values), 0), _values_dtype(dtype)),
                 "scales": np.empty(0, np.float16)} for values in table.tables]
    stored = []
    for q, scales in table.stored_buckets():
        q = q.cpu().numpy()
        stored.append({"values": pack_int4(q.ravel()) if dtype == "int4" else q, "scales": stored_scales(scales.cpu().numpy())})
    return stored


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
        if field in meta.get("shared", {}):
            _read_shared(meta, data, field, (tables, sizes, masks))
            continue
        names = [name for name, (f, _) in meta["tables"].items() if f == field]
        widths = [meta["tables"][name][1] for name in names]
        for name, width, part in zip(names, widths, sizes_for_tables(data[f"{field}_sizes"], widths)):
            if encoding.get(name, "prefix") == "prefix":
                kept = np.arange(width) < part[:, None]
            else:
                index = {key[len(name) + 1 :]: array for key, array in data.items() if key in (f"{name}.bitmap", f"{name}.columns", f"{name}.counts")}
                kept = element_mask_from_index(index, len(part), width)
                part = kept.sum(1)
            table = np.zeros((len(part), width), dtype=np.float32)
            table[kept] = dequantise(data[name], meta.get("value_dtype", "float32"), kept, data.get(f"{name}.scales"))
            tables[name], sizes[name], masks[name] = table, part, kept
    return meta, tables, sizes, masks


@torch.no_grad()
def load_table(path, model) -> None:
    """Rebuild ``model``'s masked tables (values, sizes and precision) from an exported file."""
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
        module.set_value_dtype(meta.get("value_dtype", "float32"))  # quantising the dequantised values changes nothing
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


def _read_shared(meta: dict, data: dict, field: str, out: tuple) -> None:
    """A shared field's tables as dense rows, into ``out`` = (tables, sizes, masks) of :func:`read_table_masks`."""
    buckets = shared_field(meta, data, field)
    values = read_buckets(meta, data, field)  # {table: its bucket tables}, the field's tables in the file's order
    widths = [meta["tables"][name][1] for name in values]
    row_widths = sizes_for_tables(np.concatenate([[0], np.full(buckets.n_rows, buckets.width)]), widths)
    for (name, tables), width, part in zip(values.items(), widths, row_widths):
        out[0][name], out[1][name], out[2][name] = shared_dense(buckets, tables, width), part, np.arange(width) < part[:, None]


def read_buckets(meta: dict, data: dict, field: str) -> dict[str, list[np.ndarray]]:
    """A shared field's bucket tables from the file, dequantised: ``{table: [float32 [buckets_k, width]]}``, equal to
    the model's :meth:`~recbole_bet.embedding.SharedEmbedding.bucket_values`."""
    record, dtype = meta["shared"][field], meta.get("value_dtype", "float32")
    names = [name for name, (f, _) in meta["tables"].items() if f == field]
    widths = sizes_for_tables(np.array([record["width"]]), [meta["tables"][name][1] for name in names])
    out = {}
    for name, width in zip(names, widths):
        out[name] = []
        for k, partition in enumerate(record["partitions"]):
            stored, shape = data[f"{name}.bucket{k}"], (partition["buckets"], int(width[0]))
            if not is_quantised(dtype) or shape[1] == 0:
                out[name].append(stored.astype(np.float32).reshape(shape))
            else:
                out[name].append(dequantise(np.ravel(stored), dtype, np.ones(shape, bool), data[f"{name}.bucket{k}.scales"]).reshape(shape))
    return out


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
    values = {name: tables for field in FIELDS for name, tables in read_buckets(meta, data, field).items()}
    for name in model.budget_tables:
        module = model.get_submodule(name)
        for k, table in enumerate(module.tables):
            stored = torch.from_numpy(values[name][k])
            if stored.shape != table.shape:
                raise ValueError(f"{path}: {name}'s bucket table {k} is {tuple(stored.shape)}, the model's is {tuple(table.shape)}")
            table.copy_(stored)
        module.set_value_dtype(meta.get("value_dtype", "float32"))  # quantising the dequantised values changes nothing
    model.clear_cached_embeddings()
