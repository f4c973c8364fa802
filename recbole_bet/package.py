"""A trained model as one self-contained file: what :mod:`recbole_bet.serve` needs to recommend, without RecBole.

A package is an uncompressed ``.npz`` (numpy's zip of ``.npy`` arrays), written and read with
``allow_pickle=False``: opening one runs no code. ``.npz`` rather than ``safetensors``: the budgeted
tables are already exported as ``.npz`` (:mod:`recbole_bet.export`), numpy alone reads it, and it
holds the token maps as string arrays, which safetensors (numeric tensors only) would need encoded
by hand. Its arrays:

    meta, user_sizes, item_sizes, <table>[.bitmap|.columns|.counts]
        the budgeted tables exactly as :func:`recbole_bet.export.export_table` writes them
        (:func:`recbole_bet.export.read_table` reads a package as it reads a table)
    weight/<name>        float32, every other trained weight of the backbone, by its ``state_dict`` name
    user_tokens          bytes ``S<n>`` ``[n_users + 1]``: RecBole id -> the dataset's token, UTF-8 (row 0: ``[PAD]``)
    item_tokens          the same for items
    train/indptr, train/indices
        the training interactions as a CSR matrix ``[n_users + 1, n_items + 1]`` of RecBole ids, each
        (user, item) pair once, items increasing within a user: the smallest exact form of the graph
        LightGCN and NGCF propagate over (the normalisation is recomputed from it; its constants are in
        the metadata). ``indptr`` int32 (int64 past 2^31 pairs), ``indices`` uint16 while the item ids fit,
        else uint32.
    valid/indptr, valid/indices
        the validation interactions, in the same form (when written): with the training ones, what
        ``exclude_seen`` leaves out, as RecBole's test ranking does
    package              JSON: format, model, architecture, dataset, fields, method, sparsity, budget and used
                         parameters, d_max, users and items, the run's metrics, versions, written

``python -m recbole_bet.package --result_file r.json`` writes the package of a finished run from its
checkpoint (RecBole rebuilds the dataset from the run's configuration); a checkpoint in RecBole's own format
(a pickled Config) is read only with ``--trust_pickle``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from recbole.data import create_dataset, data_preparation
from recbole.utils import init_seed

from recbole_bet.config import check_dataset_present, config_from_keys
from recbole_bet.errors import ConfigError
from recbole_bet.export import table_arrays
from recbole_bet.model import get_model
from recbole_bet.serve import PACKAGE_FORMAT
from recbole_bet.trainer import load_checkpoint


def write_package(model, dataset, result: dict | None, path, valid=None) -> dict:
    """Write ``model``'s package to ``path`` (``.npz``).

    Args:
        model: a budgeted LightGCN, NGCF or NeuMF (:mod:`recbole_bet.model`), as trained.
        dataset: RecBole's training dataset (``train_data._dataset``): the token maps and the graph.
        result (dict, optional): the run's result (:func:`recbole_bet.quick_start.run_recbole_bet`): method,
            budget and metrics for the metadata.
        valid: RecBole's validation dataset, optional: its interactions are excluded from recommendations too.

    Returns:
        dict: ``path``, ``bytes`` (the file), ``parts`` (bytes of the arrays by kind: table, weights, tokens, seen).
    """
    arrays, parts = package_arrays(model, dataset, valid)
    arrays["package"] = np.array(json.dumps(package_meta(model, dataset, result, valid is not None)))
    path = os.fspath(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    tmp = f"{path}.tmp"
    with open(tmp, "wb") as handle:
        np.savez(handle, **arrays)
    os.replace(tmp, path)
    return {"path": path, "bytes": os.path.getsize(path), "parts": parts}


def package_arrays(model, dataset, valid=None) -> tuple[dict[str, np.ndarray], dict[str, int]]:
    """The package's arrays but its metadata, and their bytes by kind."""
    arrays, table = table_arrays(model)
    parts = {"table": table["payload_bytes"]}
    tables = tuple(f"{name}." for name in model.budget_tables)
    weights = {
        f"weight/{name}": value.detach().cpu().numpy().astype(np.float32)
        for name, value in model.state_dict().items()
        if not name.startswith(tables)
    }
    arrays.update(weights)
    parts["weights"] = sum(a.nbytes for a in weights.values())
    tokens = {f"{field}_tokens": token_array(dataset.field2id_token[dataset_field(dataset, field)]) for field in ("user", "item")}
    arrays.update(tokens)
    parts["tokens"] = sum(a.nbytes for a in tokens.values())
    seen = {}
    for split, data in (("train", dataset), ("valid", valid)):
        if data is not None:
            seen[f"{split}/indptr"], seen[f"{split}/indices"] = interaction_csr(data)
    arrays.update(seen)
    parts["seen"] = sum(a.nbytes for a in seen.values())
    return arrays, parts


def dataset_field(dataset, field: str) -> str:
    """RecBole's name of the user or item id field (``user_id``, ``item_id``, ...)."""
    return dataset.uid_field if field == "user" else dataset.iid_field


def token_array(tokens) -> np.ndarray:
    """RecBole's ``field2id_token`` (an object array of str) as a fixed-width UTF-8 bytes array: no objects, no pickle."""
    encoded = [str(token).encode("utf-8") for token in tokens]
    if any(token.endswith(b"\0") for token in encoded):  # numpy strips trailing NULs of S arrays
        raise ValueError("a token ends with a NUL byte, which a package cannot store")
    return np.array(encoded, dtype=f"S{max(1, max(map(len, encoded), default=1))}")


def interaction_csr(dataset) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)``: ``dataset``'s (user, item) pairs, each once, as a CSR matrix of RecBole ids, items
    increasing within a user (the layout of RecBole's graph, whose entries are 1 whatever the repeats)."""
    users = dataset.inter_feat[dataset.uid_field].numpy().astype(np.int64)
    items = dataset.inter_feat[dataset.iid_field].numpy().astype(np.int64)
    n_users, n_items = dataset.user_num, dataset.item_num
    pairs = np.unique(users * n_items + items)
    rows, columns = np.divmod(pairs, n_items)
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    indptr = indptr.astype(np.int32 if len(pairs) < 2**31 else np.int64)
    return indptr, columns.astype(np.uint16 if n_items <= 2**16 else np.uint32)


def package_meta(model, dataset, result: dict | None, with_valid: bool) -> dict:
    """The package's metadata (the ``package`` array), JSON-ready."""
    result = result or {}
    return {
        "format": PACKAGE_FORMAT,
        "model": type(model).__name__,
        "architecture": model.package_architecture(),
        "dot_product_scores": bool(model.dot_product_scores),
        "dataset": result.get("dataset", getattr(dataset, "dataset_name", None)),
        "fields": {"user": dataset.uid_field, "item": dataset.iid_field},
        "n_users": int(model.n_users - 1),  # padding excluded
        "n_items": int(model.n_items - 1),
        "d_max": int(model.d_max),
        "method": result.get("method"),
        "sparsity": result.get("sparsity"),
        "budget_params": result.get("budget_params"),
        "used_params": int(sum(model.get_submodule(name).kept_params for name in model.budget_tables)),
        "seed": result.get("seed"),
        "metrics": {"valid": result.get("valid", {}), "test": result.get("test", {})},
        "seen": ["train", "valid"] if with_valid else ["train"],
        "versions": versions(),
        "written": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def versions() -> dict:
    """Versions of what wrote the package."""
    found = {"python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__}
    for name in ("recbole-bet", "recbole"):
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def package_path(beside) -> Path:
    """Where a run's package goes: beside its result file (or checkpoint), ``<stem>.package.npz``."""
    return Path(beside).with_suffix(".package.npz")


def package_from_result(result_file, path=None, trust_pickle: bool = False) -> dict:
    """Write the package of a finished run from its result file and checkpoint; RecBole rebuilds the run's
    dataset and split from the configuration saved with the checkpoint. Returns :func:`write_package`'s dict.

    Args:
        trust_pickle: also read a checkpoint that pickles RecBole's Config (RecBole's own format, or ours from before
            2026-12-07) with torch's full unpickler (:func:`recbole_bet.trainer.load_checkpoint`): only a file you trust.

    Raises:
        ConfigError: a result file without a readable result of one budgeted run and its checkpoint, or a dataset
            that is no longer where the run read it.
        UnsafeFileError: a checkpoint that pickles objects, without ``trust_pickle``.
    """
    try:
        result = json.loads(Path(result_file).read_text())
    except (OSError, ValueError) as error:
        raise ConfigError(f"cannot read result file {result_file}: {error}") from None
    if isinstance(result, list):
        raise ConfigError(f"{result_file} holds {len(result)} budgets; pass one budget's file (<result>-sparsity<s>.json)")
    checkpoint = result.get("checkpoint")
    if checkpoint and not Path(checkpoint).is_file() and (Path(result_file).parent / Path(checkpoint).name).is_file():
        checkpoint = Path(result_file).parent / Path(checkpoint).name  # a relative path, from another folder: beside the result
    if not checkpoint or not Path(checkpoint).is_file():
        raise ConfigError(f"{result_file} names no checkpoint that exists (checkpoint={checkpoint!r}); a run with saved=True "
                          "writes one (a relative path is read from the folder this command runs in: the run's, usually)")
    saved = load_checkpoint(checkpoint, trust_pickle=trust_pickle)
    config = checkpoint_config(saved)
    check_dataset_present(config)
    init_seed(config["seed"], config["reproducibility"])  # the run's split, as quick_start makes it
    train_data, valid_data, _ = data_preparation(config, create_dataset(config))
    model = get_model(config["model"])(config, train_data._dataset)
    model.load_state_dict(saved["state_dict"])
    model.eval()
    return write_package(model, train_data._dataset, result, path or package_path(result_file), valid=valid_data._dataset)


def checkpoint_config(saved: dict):
    """The run's Config, from a checkpoint: rebuilt from its plain record (:func:`recbole_bet.trainer.config_record`),
    or the pickled Config of a checkpoint read with ``trust_pickle``."""
    record = saved["config"]
    if not isinstance(record, dict):
        return record
    return config_from_keys(record["model"], record["dataset"], record["keys"])


def main(argv=None) -> int:
    """Command line: ``python -m recbole_bet.package --result_file r.json [--output p.package.npz]``."""
    parser = argparse.ArgumentParser(prog="python -m recbole_bet.package", description="Write a finished run's model package.")
    parser.add_argument("--result_file", required=True, help="the run's result JSON (it names the checkpoint)")
    parser.add_argument("--output", default=None, help="the package's path (default: beside the result file, <stem>.package.npz)")
    parser.add_argument("--trust_pickle", action="store_true",
                        help="also read a checkpoint that pickles RecBole's Config (RecBole's own format): only a file you trust")
    args = parser.parse_args(argv)
    try:
        info = package_from_result(args.result_file, args.output, trust_pickle=args.trust_pickle)
    except ValueError as error:  # ConfigError, UnsafeFileError, a bad package
        print(f"recbole_bet.package: error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
