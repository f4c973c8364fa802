"""The compressed embedding table: kept values only, plus one size per row.

A prefix-masked table is stored as the kept values of every row, row-major
and concatenated, and one size per row (``uint8`` while ``d_max <= 255``);
offsets are the running sum of sizes. That is the storage floor of
``4 * kept + n_rows`` bytes in float32 (DESIGN.md, section 3); a CSR matrix
would add a column index per value.

The file is an uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays, no
pickles), readable without torch or RecBole through :func:`read_table`:

    user_sizes   uint8 [n_users]   row sizes, RecBole ids (row 0 is padding, size 0)
    item_sizes   uint8 [n_items]
    <table>      float32 [kept]    e.g. user_embedding, item_embedding
    meta         str               JSON: model, d_max, tables {name: [field, width]}
"""

from __future__ import annotations

import json
import os
import zipfile

import numpy as np
import torch

from recbole_bet.budget import sizes_for_tables
from recbole_bet.model.budgeted import FIELDS


def _size_dtype(d_max: int):
    return np.uint8 if d_max <= np.iinfo(np.uint8).max else np.uint16


def export_table(model, path) -> dict:
    """Write ``model``'s masked tables to ``path`` (``.npz``).

    Returns:
        dict: ``path``, ``bytes`` (file size), ``payload_bytes`` (values + sizes),
        ``kept_params``.
    """
    arrays, tables, kept = {}, {}, 0
    for field in FIELDS:
        names = model.tables(field)
        sizes = sum(model.get_submodule(name).sizes.long() for name in names).cpu().numpy()
        arrays[f"{field}_sizes"] = sizes.astype(_size_dtype(model.d_max))
        for name in names:
            table = model.get_submodule(name)
            values = table.full_weight.detach()[table.mask.bool()]  # row-major prefixes
            arrays[name] = values.cpu().numpy().astype(np.float32)
            tables[name] = [field, table.embedding_dim]
            kept += values.numel()
    meta = {"model": type(model).__name__, "d_max": model.d_max, "tables": tables, "format": 1}
    arrays["meta"] = np.array(json.dumps(meta))
    path = os.fspath(path)
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    payload = sum(a.nbytes for k, a in arrays.items() if k != "meta")
    return {"path": path, "bytes": os.path.getsize(path), "payload_bytes": int(payload), "kept_params": int(kept)}


def read_table(path) -> tuple[dict, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Read an exported table into dense arrays (zeros past each row's size).

    Returns:
        (meta, tables, sizes): ``tables[name]`` is float32 ``[n_rows, width]`` and
        ``sizes[name]`` int64 ``[n_rows]``, the kept prefix of each of its rows.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            data = {key: npz[key] for key in npz.files}
        meta = json.loads(str(data["meta"]))
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
        raise ValueError(f"{path} is not an exported recbole-bet table: {error}") from None
    tables, sizes = {}, {}
    for field in FIELDS:
        names = [name for name, (f, _) in meta["tables"].items() if f == field]
        widths = [meta["tables"][name][1] for name in names]
        for name, width, part in zip(names, widths, sizes_for_tables(data[f"{field}_sizes"], widths)):
            table = np.zeros((len(part), width), dtype=np.float32)
            table[np.arange(width) < part[:, None]] = data[name]
            tables[name], sizes[name] = table, part
    return meta, tables, sizes


@torch.no_grad()
def load_table(path, model) -> None:
    """Rebuild ``model``'s masked tables (values and sizes) from an exported file."""
    meta, tables, sizes = read_table(path)
    expected = {name: [field, model.get_submodule(name).embedding_dim] for name, field in model.budget_tables.items()}
    if meta["tables"] != expected:
        raise ValueError(f"{path} holds tables {meta['tables']}, but the model has {expected}")
    for name, table in tables.items():
        module = model.get_submodule(name)
        if table.shape != tuple(module.full_weight.shape):
            raise ValueError(f"{path}: table {name} is {table.shape}, the model's is {tuple(module.full_weight.shape)}")
        module.full_weight.copy_(torch.from_numpy(table))
        module.set_sizes(torch.from_numpy(sizes[name]))
    model.clear_cached_embeddings()
