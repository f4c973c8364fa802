"""Top-k recommendations from a model package (:mod:`recbole_bet.package`), with torch and numpy only.

No RecBole on this path: the package holds the budgeted tables, the other weights, the token maps and
the training graph, and the scores are rebuilt here the way the trained model computes them:

* **LightGCN**: the layer mean of ``n_layers`` products with RecBole's normalised adjacency
  ``D^-1/2 A D^-1/2`` (``D`` the degree + 1e-7), on the columns any row keeps; scores are dot products.
* **NGCF**: each layer ``LeakyReLU(W1 (E + LE) + W2 (LE * E) + b1 + b2, 0.2)``, rows scaled to unit length;
  the ego embeddings and every layer side by side; scores are dot products.
* **NeuMF**: ``sigmoid(GMF + MLP)``, the first MLP layer computed once per user and once per item.

LightGCN and NGCF propagate once, at load, a block of ``chunk_rows`` rows of the graph at a time; the
propagated vectors are then all a recommendation needs. Each step is the arithmetic of
:mod:`recbole_bet.model` (same kernels, same order), so the scores equal the trained model's
``full_sort_predict`` (tests/test_serve.py checks it bit for bit on this machine) and so does the top k.

Command line::

    python -m recbole_bet.serve PACKAGE --users 196,186 --k 10      # or --users-file FILE (one token a line)

prints one JSON object a line: ``{"user": ..., "items": [...], "scores": [...]}``.
"""

from __future__ import annotations

import argparse
import json
import sys
import warnings
import zipfile
from dataclasses import dataclass

import numpy as np
import torch

from recbole_bet.export import decode_tables

PACKAGE_FORMAT = 1
# Largest [users, items] block of scores made at once (floats).
BLOCK_FLOATS = 2**24
# Rows of the graph multiplied at once while propagating.
CHUNK_ROWS = 2**16
UNKNOWN = ("error", "popular")


class PackageError(ValueError):
    """A file that is not a readable recbole-bet package."""


class UnknownTokenError(ValueError):
    """A user or item token the package does not know."""


@dataclass
class Recommendations:
    """Top-k items of each user, best first.

    Attributes:
        users (list[str]): the user tokens asked for.
        items (np.ndarray): str ``[n_users, k]``, item tokens.
        scores (np.ndarray): float32 ``[n_users, k]``: the model's scores (an unknown user's popular items:
            their training interactions). ``-inf`` where a user has fewer than ``k`` unseen items.
        known (np.ndarray): bool ``[n_users]``, False where an unknown user got the popular items.
    """

    users: list
    items: np.ndarray
    scores: np.ndarray
    known: np.ndarray

    def rows(self):
        """One dict per user (``user``, ``items``, ``scores``; ``known: false`` for an unknown user), without
        the ``-inf`` places."""
        for user, items, scores, known in zip(self.users, self.items, self.scores, self.known):
            kept = np.isfinite(scores)
            row = {"user": user, "items": items[kept].tolist(), "scores": [float(s) for s in scores[kept]]}
            if not known:
                row["known"] = False
            yield row


def read_package(path) -> tuple[dict, dict[str, np.ndarray]]:
    """``(metadata, arrays)`` of a package, read without pickle.

    Raises:
        PackageError: not a package, or one of a format this version cannot read.
    """
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
        meta = json.loads(str(arrays.pop("package")))
    except (OSError, zipfile.BadZipFile, ValueError, KeyError) as error:
        raise PackageError(f"{path} is not a recbole-bet model package: {error}") from None
    if meta.get("format") != PACKAGE_FORMAT:
        raise PackageError(f"{path} is a package of format {meta.get('format')!r}; this version reads format {PACKAGE_FORMAT}")
    problem = package_problem(meta, arrays)
    if problem:
        raise PackageError(f"{path} is not a consistent recbole-bet model package: {problem}")
    return meta, arrays


def package_problem(meta: dict, arrays: dict) -> str | None:
    """What makes the package's arrays inconsistent (they index one another; the graph is multiplied unchecked), or None."""
    for key in ("user_tokens", "item_tokens", "meta", "user_sizes", "item_sizes"):
        if key not in arrays:
            return f"it has no {key}"
    n_users, n_items = len(arrays["user_tokens"]), len(arrays["item_tokens"])
    if (n_users - 1, n_items - 1) != (meta.get("n_users"), meta.get("n_items")):
        return f"{n_users} user and {n_items} item tokens for {meta.get('n_users')} users and {meta.get('n_items')} items"
    if (len(arrays["user_sizes"]), len(arrays["item_sizes"])) != (n_users, n_items):
        return "its tables' rows do not match its tokens"
    for split in ["train"] + list(meta.get("seen", [])):
        indptr, indices = arrays.get(f"{split}/indptr"), arrays.get(f"{split}/indices")
        if indptr is None or indices is None:
            return f"it has no {split} interactions"
        if indptr.ndim != 1 or len(indptr) != n_users + 1 or indices.ndim != 1 or not (
            np.issubdtype(indptr.dtype, np.integer) and np.issubdtype(indices.dtype, np.integer)):
            return f"its {split} interactions are not a CSR matrix of {n_users} rows"
        if indptr[0] != 0 or (np.diff(indptr) < 0).any() or indptr[-1] != len(indices):
            return f"its {split} row pointers are not increasing from 0 to {len(indices)}"
        if len(indices) and (int(indices.min()) < 1 or int(indices.max()) >= n_items):
            return f"its {split} interactions name items outside 1..{n_items - 1}"
    return None


def tokens(array: np.ndarray) -> np.ndarray:
    """A package's token array (UTF-8 bytes) as str."""
    return np.char.decode(array, "utf-8")


def csr_arrays(arrays: dict, split: str) -> tuple[np.ndarray, np.ndarray]:
    """``(indptr, indices)`` of a split's interactions, int64."""
    return arrays[f"{split}/indptr"].astype(np.int64), arrays[f"{split}/indices"].astype(np.int64)


def seen_items(arrays: dict, splits: list, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """The union of ``splits``' interactions, as one CSR ``(indptr, indices)`` (a pair in both splits is kept twice)."""
    rows, columns = [], []
    for split in splits:
        indptr, indices = csr_arrays(arrays, split)
        rows.append(np.repeat(np.arange(n_users), np.diff(indptr)))
        columns.append(indices)
    rows, columns = np.concatenate(rows), np.concatenate(columns)
    order = np.argsort(rows, kind="stable")
    indptr = np.zeros(n_users + 1, dtype=np.int64)
    np.cumsum(np.bincount(rows, minlength=n_users), out=indptr[1:])
    return indptr, columns[order]


def normalised_adjacency(indptr: np.ndarray, indices: np.ndarray, n_items: int, epsilon: float):
    """RecBole's ``D^-1/2 A D^-1/2`` of the user-item graph, users then items (``N = n_users + n_items`` nodes),
    as CSR ``(crow, col, values)``: rows in order, columns increasing, values rounded once from float64 to
    float32, as RecBole's scipy product makes them."""
    n_users = len(indptr) - 1
    user_degree = np.diff(indptr)
    item_degree = np.bincount(indices, minlength=n_items)
    scale = np.power(np.concatenate([user_degree, item_degree]) + epsilon, -0.5)  # float64, as RecBole's
    # item rows: the transpose, users increasing within an item
    users = np.repeat(np.arange(n_users), user_degree)
    order = np.argsort(indices, kind="stable")
    crow = np.concatenate([indptr, indptr[-1] + np.cumsum(item_degree)])
    col = np.concatenate([indices + n_users, users[order]])
    rows = np.repeat(np.arange(n_users + n_items), np.diff(crow))
    values = (scale[rows] * scale[col]).astype(np.float32)
    return crow, col, values


class Adjacency:
    """A constant sparse ``[N, N]`` matrix in CSR, multiplied a block of rows at a time.

    Each block is a CSR matrix of its rows with int32 indices, as :mod:`recbole_bet.model.propagation`
    stores the whole one; a row's product sums the same terms in the same order either way.
    """

    def __init__(self, crow: np.ndarray, col: np.ndarray, values: np.ndarray, chunk_rows: int = CHUNK_ROWS):
        n = len(crow) - 1
        index = np.int32 if crow[-1] < 2**31 else np.int64
        self.n, self.blocks = n, []
        for start in range(0, n, chunk_rows):
            end = min(n, start + chunk_rows)
            a, b = crow[start], crow[end]
            with warnings.catch_warnings():  # torch calls its CSR support "beta" on first use; tests/test_serve.py checks it
                warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state", category=UserWarning)
                block = torch.sparse_csr_tensor(
                    torch.from_numpy((crow[start : end + 1] - a).astype(index)),
                    torch.from_numpy(col[a:b].astype(index)),
                    torch.from_numpy(values[a:b]),
                    (end - start, n),
                    check_invariants=False,
                )
            self.blocks.append((start, end, block))

    def product(self, dense: torch.Tensor) -> torch.Tensor:
        """``self @ dense``, a block of rows at a time."""
        out = torch.empty(self.n, dense.shape[1], dtype=dense.dtype)
        dense = dense.contiguous()
        for start, end, block in self.blocks:
            # beta=0: out's contents are ignored (the product of recbole_bet.model.propagation)
            torch.addmm(out[start:end], block, dense, beta=0, out=out[start:end])
        return out


def lightgcn_vectors(architecture: dict, tables: dict, masks: dict, adjacency: Adjacency) -> tuple[torch.Tensor, torch.Tensor]:
    """LightGCN's propagated ``(user, item)`` vectors on the columns any row keeps (``kept_width``)."""
    width = kept_width(masks)
    layer = torch.cat([torch.from_numpy(tables["user_embedding"][:, :width]), torch.from_numpy(tables["item_embedding"][:, :width])])
    total = layer
    for _ in range(architecture["n_layers"]):
        layer = adjacency.product(layer)
        total = total + layer
    total = total / (architecture["n_layers"] + 1)
    n_users = tables["user_embedding"].shape[0]
    return total[:n_users], total[n_users:]


def kept_width(masks: dict) -> int:
    """Columns any row of any table keeps: the last kept column + 1 (at least 1), as the model's ``kept_width``."""
    used = [np.flatnonzero(mask.any(0)) for mask in masks.values()]
    return max([1] + [int(columns[-1]) + 1 for columns in used if len(columns)])


def ngcf_vectors(architecture: dict, tables: dict, weights: dict, adjacency: Adjacency, chunk_rows: int = CHUNK_ROWS):
    """NGCF's ``(user, item)`` vectors: the ego embeddings and each layer's output side by side (evaluation:
    no dropout), each layer made ``chunk_rows`` rows at a time."""
    features = torch.cat([torch.from_numpy(tables["user_embedding"]), torch.from_numpy(tables["item_embedding"])])
    outputs = [features]
    slope, eps = architecture["leaky_relu_slope"], architecture["norm_eps"]
    for depth in range(architecture["n_layers"]):
        w1, b1 = weights[f"GNNlayers.{depth}.linear.weight"], weights[f"GNNlayers.{depth}.linear.bias"]
        w2, b2 = weights[f"GNNlayers.{depth}.interActTransform.weight"], weights[f"GNNlayers.{depth}.interActTransform.bias"]
        bias = b1 + b2
        side = adjacency.product(features)
        layer = torch.empty(len(features), w1.shape[0])
        for start in range(0, len(features), chunk_rows):
            rows = slice(start, start + chunk_rows)
            own, near = features[rows], side[rows]
            out = torch.addmm(bias, own + near, w1.t())
            out.addmm_(near * own, w2.t())
            torch.nn.functional.leaky_relu_(out, slope)
            inverse = 1 / torch.linalg.vector_norm(out, dim=1, keepdim=True).clamp_min(eps)
            layer[rows] = out * inverse
        features = layer
        outputs.append(features)
    vectors = torch.cat(outputs, dim=1)
    n_users = tables["user_embedding"].shape[0]
    return vectors[:n_users], vectors[n_users:]


class DotProductScores:
    """Scores ``u . v`` of propagated vectors (LightGCN, NGCF): the trained model's ``full_sort_predict``."""

    dot_product = True

    def __init__(self, users: torch.Tensor, items: torch.Tensor):
        self.users, self.items = users, items
        self.item_columns = items.t().contiguous()  # as the model's scoring keeps them

    def user_vectors(self) -> torch.Tensor:
        return self.users

    def item_vectors(self) -> torch.Tensor:
        return self.items

    def all_items(self, user_ids: torch.Tensor) -> torch.Tensor:
        """``[len(user_ids), n_items + 1]`` (column 0: padding)."""
        return self.users.index_select(0, user_ids) @ self.item_columns



class NeuMFScores:
    """NeuMF's ``sigmoid(h . [u_mf * v_mf ; MLP([u_mlp ; v_mlp])] + b)``, computed as the trained model's
    ``full_sort_predict``: the first MLP layer once per user and once per item, the GMF part as one product."""

    dot_product = False

    def __init__(self, architecture: dict, tables: dict, weights: dict):
        self.width = architecture["mlp_embedding_size"]
        self.n_mf = architecture["mf_embedding_size"]
        self.block_floats = architecture["block_floats"]
        linear = [(weights[f"{name}.weight"], weights[f"{name}.bias"]) for name in architecture["linear_layers"]]
        (self.first, self.first_bias), self.rest = linear[0], linear[1:]
        self.tables = {name: torch.from_numpy(table) for name, table in tables.items()}
        self.predict, self.predict_bias = weights["predict_layer.weight"], weights["predict_layer.bias"]
        self.item_hidden = self.tables["item_mlp_embedding"] @ self.first[:, self.width :].T  # [n_items + 1, hidden]

    def user_vectors(self) -> torch.Tensor:
        return torch.cat([self.tables["user_mf_embedding"], self.tables["user_mlp_embedding"]], dim=1)

    def item_vectors(self) -> torch.Tensor:
        return torch.cat([self.tables["item_mf_embedding"], self.tables["item_mlp_embedding"]], dim=1)

    def all_items(self, user_ids: torch.Tensor) -> torch.Tensor:
        """``[len(user_ids), n_items + 1]`` (column 0: padding)."""
        item_hidden, item_mf = self.item_hidden, self.tables["item_mf_embedding"]
        w_mf, w_mlp = self.predict[0, : self.n_mf], self.predict[0, self.n_mf :]
        chunk = max(1, self.block_floats // (len(item_hidden) * max(self.first.shape[0], 1)))
        scores = []
        for users in user_ids.split(chunk):
            user_hidden = self.tables["user_mlp_embedding"].index_select(0, users) @ self.first[:, : self.width].T + self.first_bias
            hidden = (user_hidden.unsqueeze(1) + item_hidden.unsqueeze(0)).relu_()  # [b, items, hidden]
            for weight, bias in self.rest:
                hidden = torch.nn.functional.linear(hidden, weight, bias).relu_()
            gmf = (self.tables["user_mf_embedding"].index_select(0, users) * w_mf) @ item_mf.T
            scores.append(torch.sigmoid(gmf + hidden @ w_mlp + self.predict_bias))
        return torch.cat(scores)


BACKBONES = ("LightGCN", "NGCF", "NeuMF")


def build_scores(meta: dict, arrays: dict, chunk_rows: int = CHUNK_ROWS):
    """The package's scorer (:class:`DotProductScores` or :class:`NeuMFScores`), propagated where the model propagates."""
    model, architecture = meta["model"], meta["architecture"]
    if model not in BACKBONES:
        raise PackageError(f"the package holds a {model}; this version serves {', '.join(BACKBONES)}")
    try:
        _, tables, _, masks = decode_tables(arrays)
    except (ValueError, KeyError, IndexError) as error:
        raise PackageError(f"the package's tables cannot be read: {error!r}") from None
    weights = {key[len("weight/") :]: torch.from_numpy(value) for key, value in arrays.items() if key.startswith("weight/")}
    if model == "NeuMF":
        return NeuMFScores(architecture, tables, weights)
    indptr, indices = csr_arrays(arrays, "train")
    n_items = tables["item_embedding"].shape[0]
    adjacency = Adjacency(*normalised_adjacency(indptr, indices, n_items, architecture["adjacency"]["degree_epsilon"]), chunk_rows)
    if model == "LightGCN":
        return DotProductScores(*lightgcn_vectors(architecture, tables, masks, adjacency))
    return DotProductScores(*ngcf_vectors(architecture, tables, weights, adjacency, chunk_rows))


class Recommender:
    """A trained model, from its package: top-k items by user token.

    Example::

        >>> rec = Recommender.load("saved/LightGCN-....package.npz")
        >>> top = rec.recommend(["196", "186"], k=5)
        >>> top.items[0], top.scores[0]

    Use :meth:`load`; the constructor takes what it reads.
    """

    def __init__(self, meta: dict, arrays: dict, scores, index=None):
        self.meta = meta
        self.user_tokens, self.item_tokens = tokens(arrays["user_tokens"]), tokens(arrays["item_tokens"])
        self._user_ids = {token: i for i, token in enumerate(self.user_tokens) if i > 0}
        self._item_ids = {token: i for i, token in enumerate(self.item_tokens) if i > 0}
        self.seen = seen_items(arrays, meta["seen"], len(self.user_tokens))
        popularity = np.bincount(csr_arrays(arrays, "train")[1], minlength=len(self.item_tokens)).astype(np.float64)
        popularity[0] = -np.inf  # padding
        self.popular = np.argsort(-popularity, kind="stable")  # most training interactions first, ties by id
        self.popularity = popularity.astype(np.float32)
        self.scores, self.index = scores, index

    @classmethod
    def load(cls, path, index: str | None = None, index_key: str = "Flat", chunk_rows: int = CHUNK_ROWS) -> "Recommender":
        """Read a package (no pickle) and propagate once (LightGCN, NGCF).

        Args:
            index: None (top-k by torch over every item) or ``"faiss"`` (an inner-product faiss index of the item
                vectors; LightGCN and NGCF only; needs ``pip install "recbole-bet[serve]"``).
            index_key: faiss's ``index_factory`` key: ``"Flat"`` (exact, the default) or e.g. ``"HNSW32"`` (approximate).
            chunk_rows: rows of the graph multiplied at once while propagating.
        """
        if index not in (None, "faiss"):
            raise ValueError(f"index={index!r}; allowed: None, 'faiss'")
        meta, arrays = read_package(path)
        scores = build_scores(meta, arrays, chunk_rows)
        built = faiss_index(scores, index_key) if index == "faiss" else None
        return cls(meta, arrays, scores, built)

    @property
    def n_users(self) -> int:
        return len(self.user_tokens) - 1

    @property
    def n_items(self) -> int:
        return len(self.item_tokens) - 1

    def user_ids(self, user_tokens, unknown: str = "error") -> np.ndarray:
        """RecBole ids of ``user_tokens`` (0 for an unknown one with ``unknown="popular"``)."""
        if unknown not in UNKNOWN:
            raise ValueError(f"unknown={unknown!r}; allowed: {', '.join(UNKNOWN)}")
        return self._ids(user_tokens, self._user_ids, "user", fallback=unknown == "popular")

    def item_ids(self, item_tokens) -> np.ndarray:
        return self._ids(item_tokens, self._item_ids, "item", fallback=False)

    def _ids(self, asked, known: dict, what: str, fallback: bool) -> np.ndarray:
        ids = np.zeros(len(asked), dtype=np.int64)
        for place, token in enumerate(asked):
            found = known.get(str(token))
            if found is None and not fallback:
                examples = ", ".join(repr(t) for t in list(known)[:3])
                raise UnknownTokenError(
                    f"unknown {what} token {str(token)!r}: the package knows {len(known)} {what}s (e.g. {examples})"
                    + ("; ask with unknown='popular' (--unknown popular) for the most popular items instead" if what == "user" else "")
                )
            ids[place] = found or 0
        return ids

    def recommend(self, user_tokens, k: int = 20, exclude_seen: bool = True, unknown: str = "error") -> Recommendations:
        """The top ``k`` items of each user, best first.

        Args:
            user_tokens: the dataset's user tokens (a str, or a list of them).
            exclude_seen: leave out the items each user interacted with in training (and validation, when the
                package holds it), as RecBole's ranking does.
            unknown: ``"error"`` (:class:`UnknownTokenError` naming the token) or ``"popular"`` (an unknown
                user gets the items with the most training interactions).
        """
        user_tokens = [user_tokens] if isinstance(user_tokens, (str, bytes)) else list(user_tokens)
        if not (isinstance(k, (int, np.integer)) and 1 <= k <= self.n_items):
            raise ValueError(f"k={k!r}; allowed: an integer in [1, {self.n_items}] (the package's items)")
        ids = self.user_ids(user_tokens, unknown)
        known = ids > 0
        items = np.zeros((len(ids), k), dtype=np.int64)
        scores = np.full((len(ids), k), -np.inf, dtype=np.float32)
        if known.any():
            items[known], scores[known] = self._top(ids[known], k, exclude_seen)
        items[~known], scores[~known] = self.popular[:k], self.popularity[self.popular[:k]]
        return Recommendations([str(t) for t in user_tokens], self.item_tokens[items], scores, known)

    def _top(self, ids: np.ndarray, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        if self.index is not None:
            return self._index_top(ids, k, exclude_seen)
        items, scores = [], []
        block = max(1, BLOCK_FLOATS // (self.n_items + 1))
        for start in range(0, len(ids), block):
            users = ids[start : start + block]
            with torch.no_grad():
                full = self.scores.all_items(torch.from_numpy(users))
            full[:, 0] = -torch.inf  # padding, as RecBole
            if exclude_seen:
                rows, columns = self.seen_pairs(users)
                full[torch.from_numpy(rows), torch.from_numpy(columns)] = -torch.inf
            top = torch.topk(full, k, dim=1)
            items.append(top.indices.numpy())
            scores.append(top.values.numpy())
        return np.concatenate(items), np.concatenate(scores)

    def seen_pairs(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(row, item id)`` of every item the users ``ids`` have seen (row: the place in ``ids``)."""
        indptr, indices = self.seen
        starts, counts = indptr[ids], indptr[ids + 1] - indptr[ids]
        rows = np.repeat(np.arange(len(ids)), counts)
        offsets = np.cumsum(counts) - counts
        return rows, indices[np.arange(int(counts.sum())) + np.repeat(starts - offsets, counts)]

    def _index_top(self, ids: np.ndarray, k: int, exclude_seen: bool) -> tuple[np.ndarray, np.ndarray]:
        """Top-k from the faiss index: ``k`` plus the most seen items of a user in the batch, the seen ones dropped."""
        rows, columns = self.seen_pairs(ids) if exclude_seen else (np.zeros(0, np.int64), np.zeros(0, np.int64))
        extra = int(np.bincount(rows, minlength=len(ids)).max()) if len(rows) else 0
        users = self.scores.user_vectors().index_select(0, torch.from_numpy(ids)).numpy()
        found_scores, found = self.index.search(np.ascontiguousarray(users, dtype=np.float32), min(self.n_items, k + extra))
        found = found.astype(np.int64) + 1  # index row j is item id j + 1; faiss's -1 (nothing) becomes 0
        dropped = (found <= 0) | np.isin(np.arange(len(ids))[:, None] * (self.n_items + 1) + found, rows * (self.n_items + 1) + columns)
        order = np.argsort(dropped, axis=1, kind="stable")[:, :k]  # the kept ones first, in faiss's order
        scores = np.where(dropped, -np.inf, found_scores).astype(np.float32)
        items, scores = np.take_along_axis(found, order, 1), np.take_along_axis(scores, order, 1)
        if scores.shape[1] < k:  # fewer items than k: pad
            pad = k - scores.shape[1]
            items, scores = np.pad(items, ((0, 0), (0, pad))), np.pad(scores, ((0, 0), (0, pad)), constant_values=-np.inf)
        return items, scores

    def score(self, user_tokens, item_tokens) -> np.ndarray:
        """float32 ``[len(user_tokens), len(item_tokens)]``: the model's score of every pair, the very values
        :meth:`recommend` ranks (picked from each user's scores of every item; unknown tokens: an error)."""
        users, items = self.user_ids(list(user_tokens)), torch.from_numpy(self.item_ids(list(item_tokens)))
        block = max(1, BLOCK_FLOATS // (self.n_items + 1))
        with torch.no_grad():
            parts = [self.scores.all_items(torch.from_numpy(users[s : s + block])).index_select(1, items) for s in range(0, len(users), block)]
        return torch.cat(parts).numpy() if parts else np.zeros((0, len(items)), dtype=np.float32)

    def user_vectors(self) -> np.ndarray:
        """float32 ``[n_users, w]``, row ``i`` the user ``user_tokens[i + 1]``: LightGCN's and NGCF's propagated
        vectors (scores are their dot products with :meth:`item_vectors`); NeuMF's GMF and MLP embeddings side by side."""
        return self.scores.user_vectors()[1:].numpy()

    def item_vectors(self) -> np.ndarray:
        """float32 ``[n_items, w]``, row ``i`` the item ``item_tokens[i + 1]`` (see :meth:`user_vectors`)."""
        return self.scores.item_vectors()[1:].numpy()


def faiss_index(scores, key: str = "Flat"):
    """A faiss inner-product index of the item vectors (padding left out: index row ``j`` is item id ``j + 1``).

    Raises:
        ValueError: a model whose scores are not dot products (NeuMF), or faiss missing.
    """
    if not scores.dot_product:
        raise ValueError("index='faiss' needs a dot-product model (LightGCN, NGCF); NeuMF's scores go through its MLP")
    try:
        import faiss  # optional: pip install "recbole-bet[serve]"
    except ImportError:
        raise ValueError('index="faiss" needs faiss: pip install "recbole-bet[serve]" (or faiss-cpu)') from None
    items = np.ascontiguousarray(scores.item_vectors()[1:].numpy(), dtype=np.float32)
    index = faiss.index_factory(items.shape[1], key, faiss.METRIC_INNER_PRODUCT)
    if not index.is_trained:
        index.train(items)
    index.add(items)
    return index


def user_tokens_from(args) -> list[str]:
    if args.users_file:
        with open(args.users_file, encoding="utf-8") as handle:
            return [line.strip() for line in handle if line.strip()]
    return [token for token in args.users.split(",") if token]


def main(argv=None) -> int:
    """Command line: ``python -m recbole_bet.serve PACKAGE --users u1,u2 --k 10``; JSON lines on stdout."""
    parser = argparse.ArgumentParser(prog="python -m recbole_bet.serve", description="Top-k items by user token from a recbole-bet model package.")
    parser.add_argument("package", help="a .package.npz written by a recbole-bet run (or python -m recbole_bet.package)")
    users = parser.add_mutually_exclusive_group(required=True)
    users.add_argument("--users", help="comma-separated user tokens, e.g. 196,186")
    users.add_argument("--users-file", help="a file of user tokens, one a line")
    parser.add_argument("--k", type=int, default=10, help="items per user (default 10)")
    parser.add_argument("--include-seen", action="store_true", help="do not leave out the items a user interacted with")
    parser.add_argument("--unknown", choices=UNKNOWN, default="error", help="an unknown user: an error (default) or the most popular items")
    parser.add_argument("--index", choices=("faiss",), default=None, help="top-k from a faiss inner-product index (LightGCN, NGCF)")
    parser.add_argument("--index-key", default="Flat", help="faiss index_factory key (default Flat: exact)")
    parser.add_argument("--batch", type=int, default=4096, help="users recommended at once (default 4096)")
    args = parser.parse_args(argv)
    try:
        asked = user_tokens_from(args)
        recommender = Recommender.load(args.package, index=args.index, index_key=args.index_key)
        for start in range(0, len(asked), max(1, args.batch)):
            top = recommender.recommend(asked[start : start + args.batch], k=args.k, exclude_seen=not args.include_seen, unknown=args.unknown)
            for row in top.rows():
                print(json.dumps(row))
    except (OSError, ValueError) as error:  # PackageError, UnknownTokenError: one line, no trace
        print(f"recbole_bet.serve: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
