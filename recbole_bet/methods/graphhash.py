"""GraphHash: rows hashed to the clusters of the user-item interaction graph.

Wu, Loveland, Chen, Liu, Chen, Neves, Jadbabaie, Ju, Shah, Zhao, "GraphHash: Graph Clustering Enables Parameter
Efficiency in Recommender Systems", WWW 2025 (code: ``snap-research/GraphHash``, read, not copied). The training
split's bipartite user-item graph is clustered by modularity (Louvain); every user (item) of a cluster shares one
vector of the user (item) table. The bucket of each row is stored: it is part of the exported table, and its bytes
are counted (:class:`~recbole_bet.budget.Partition`).

Where this differs from the code, which clusters once at a resolution given per dataset (``sknetwork``'s Louvain,
``force_bipartite``) and lets the table size follow the cluster count:

* the budget fixes the size: ``buckets x width = budget`` with ``width = graphhash_width`` (d_max by default, the
  code's choice of the model's width), so ``floor(budget / width)`` buckets in all; under a byte budget
  (``budget_unit: bytes``), the most buckets whose file fits the bytes (:class:`~recbole_bet.budget.SharedCost`): the
  bucket tables at ``value_dtype`` with a scale per bucket row for int8 / int4, and each field's assignment, one
  uint8 a row up to 256 buckets, uint16 above, after the file's headers (split as below; a bucket fewer while the
  split does not fit);
* the resolution is searched (bisection on its logarithm, ``graphhash_search_steps`` Louvain runs at most) for the
  largest cluster count within that number, and the rest is made exact: the field's buckets split in proportion
  to their clusters, the largest bucket split in two (alternate rows, by id) while a field has too few, the two
  smallest merged while it has too many (only when even the coarsest clustering has too many clusters);
* the library is networkx's ``louvain_communities`` (standard modularity on the bipartite graph, edges weighted by
  their interaction counts, as the code's sparse matrix sums repeats), seeded with the run's seed; rows without a
  training interaction, which the code would leave as singleton clusters, share one bucket per field.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field
from logging import getLogger

import networkx as nx
import numpy as np
from networkx.algorithms.community import louvain_communities
from recbole.utils import set_color

from recbole_bet.budget import Budget, FieldBuckets, Partition, SharedBuckets, SharedCost
from recbole_bet.errors import BudgetError
from recbole_bet.methods.base import Method, Outcome, RunContext, train_final, training_pairs
from recbole_bet.settings import CheckedSettings, integer

#: log10 of the resolutions the search starts between
RESOLUTION_SPAN = (-3.0, 5.0)


@dataclass(frozen=True)
class GraphhashSettings(CheckedSettings):
    """GraphHash's keys.

    Attributes:
        graphhash_width (int | None): columns of a bucket vector; ~ (none): d_max. The buckets are
            ``floor(budget / width)`` in all.
        graphhash_search_steps (int): Louvain runs of the resolution search at most.
    """

    prefix = "graphhash_"

    graphhash_width: int | None = field(default=None, metadata=integer(1, optional=True))
    graphhash_search_steps: int = field(default=10, metadata=integer(1))


def interaction_graph(pairs: tuple[np.ndarray, np.ndarray], n_users: int) -> nx.Graph:
    """The training split's bipartite graph: users ``0 .. n_users - 1``, item ``j`` as node ``n_users + j``, an edge
    per interacting pair weighted by its interactions. Rows without an interaction are not in it."""
    users, items = pairs
    edges, counts = np.unique(np.stack([users, items + n_users], axis=1), axis=0, return_counts=True)
    graph = nx.Graph()
    graph.add_weighted_edges_from((int(u), int(v), int(c)) for (u, v), c in zip(edges, counts))
    return graph


def louvain_labels(graph: nx.Graph, n_rows: int, resolution: float, seed: int) -> np.ndarray:
    """Each row's Louvain community, int64 ``[n_rows]`` (users then items), numbered by their smallest row;
    -1 for a row without training interactions."""
    communities = louvain_communities(graph, weight="weight", resolution=resolution, seed=seed)
    labels = np.full(n_rows, -1, dtype=np.int64)
    for number, members in enumerate(sorted(communities, key=min)):
        labels[list(members)] = number
    return labels


def field_clusters(labels: np.ndarray, n_users: int) -> tuple[int, int]:
    """Distinct buckets per field: its communities, plus one for its rows without interactions."""
    return tuple(len(np.unique(part)) for part in (labels[:n_users], labels[n_users:]))


def search_resolution(graph: nx.Graph, n_users: int, n_rows: int, target: int, seed: int, steps: int):
    """Louvain at the resolution, found by bisection on its logarithm, whose bucket count is the largest within
    ``target`` (or the smallest tried, if every one is over). Returns ``(labels, resolution, tried)``, ``tried`` a
    ``{resolution, buckets}`` record per run."""
    def preference(count: int) -> tuple:  # within the target and the most buckets; else the fewest
        return (count <= target, count if count <= target else -count)

    low, high = RESOLUTION_SPAN
    tried, best = [], None
    for _ in range(steps):
        middle = (low + high) / 2
        labels = louvain_labels(graph, n_rows, 10**middle, seed)
        count = sum(field_clusters(labels, n_users))
        tried.append({"resolution": 10**middle, "buckets": count})
        if best is None or preference(count) > preference(best[2]):
            best = (labels, 10**middle, count)
        if count == target:
            break
        low, high = (middle, high) if count < target else (low, middle)
    return best[0], best[1], tried


def fit_buckets(labels: np.ndarray, target: int) -> np.ndarray:
    """Exactly ``target`` buckets (``1 <= target <= len(labels)``) from a field's labels: while there are too many,
    the two smallest are merged; while too few, the largest is split in two (every second of its rows, by id). Ties
    go to the bucket of the smallest first row. Returns the bucket of every row, numbered by first row."""
    _, first, assignment = np.unique(labels, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # number buckets by their first row
    assignment = np.argsort(order)[assignment]
    members = {b: rows for b, rows in enumerate(np.split(np.argsort(assignment, kind="stable"),
                                                         np.cumsum(np.bincount(assignment))[:-1]))}
    if len(members) > target:
        heap = [(len(rows), int(rows[0]), b) for b, rows in members.items()]
        heapq.heapify(heap)
        while len(heap) > target:
            _, _, a = heapq.heappop(heap)
            _, _, b = heapq.heappop(heap)
            merged = np.sort(np.concatenate([members.pop(a), members.pop(b)]))
            members[a] = merged
            heapq.heappush(heap, (len(merged), int(merged[0]), a))
    else:
        heap = [(-len(rows), int(rows[0]), b) for b, rows in members.items()]
        heapq.heapify(heap)
        while len(members) < target:
            _, _, b = heapq.heappop(heap)
            rows, new = members[b], len(members)
            members[b], members[new] = rows[0::2], rows[1::2]
            for bucket in (b, new):
                heapq.heappush(heap, (-len(members[bucket]), int(members[bucket][0]), bucket))
    out = np.empty(len(labels), dtype=np.int64)
    for number, rows in enumerate(sorted(members.values(), key=lambda rows: rows[0])):
        out[rows] = number
    return out


def bucket_targets(total: int, clusters: tuple[int, int], n_users: int, n_items: int) -> tuple[int, int]:
    """``total`` buckets split between the fields in proportion to their clusters, each in ``[1, its rows]``."""
    users = round(total * clusters[0] / max(sum(clusters), 1))
    users = min(max(users, 1, total - n_items), n_users, total - 1)
    return users, total - users


def bucket_cost(cost: SharedCost, width: int, targets: tuple[int, int], rows: tuple[int, int]) -> int:
    """What ``targets`` buckets (users, items) of ``width`` cost, with the assignment of each field's ``rows``."""
    return sum(cost.buckets(field, target, width) + cost.assignment(n, target)
               for field, target, n in zip(("user", "item"), targets, rows))


def largest_fitting(low: int, high: int, fits) -> int:
    """The largest ``t`` in ``[low, high]`` with ``fits(t)``, by bisection: ``fits`` holds up to some count and not
    above it (a split's cost grows with its buckets: :func:`bucket_targets` gives neither field fewer for one more),
    and ``fits(low)`` holds (graphhash_size checked a bucket per field)."""
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle):
            low = middle
        else:
            high = middle - 1
    return low


def graphhash_size(cost: SharedCost, width: int | None, rows: tuple[int, int]) -> tuple[int, int]:
    """``(width, buckets in all)``: the widest width up to ``width`` (d_max by default) that holds a bucket per field
    and the field's assignment, and the most buckets of it (at most one a row) that may fit: exactly
    ``floor(budget / width)`` in parameters, an upper bound in bytes, which :func:`graphhash_layout` lowers while
    its split of them does not fit."""
    budget = cost.budget
    width = min(width or budget.d_max, budget.d_max)
    while width > 0 and bucket_cost(cost, width, (1, 1), rows) > cost.total:
        width -= 1
    if width < 1:
        raise BudgetError(f"GraphHash needs {bucket_cost(cost, 1, (1, 1), rows)} {cost.unit} for a bucket of one column "
                          f"per field and its assignment; the budget leaves {cost.total}")
    # the most buckets a split might hold: two buckets cost, in either field, twice what one costs at least (int4 packs
    # an even count exactly), and an assignment costs at least one byte a row
    narrowest = sum(cost.assignment(n, 1) for n in rows)
    pair = min(cost.buckets(field, 2, width) for field in ("user", "item"))
    total = min(budget.n_rows, 2 * (cost.total - narrowest) // pair)
    return width, total


def graphhash_layout(budget: Budget, pairs, width: int | None, seed: int, steps: int) -> tuple[SharedBuckets, dict]:
    """GraphHash's tables for ``budget`` from the training pairs: ``(layout, record)``; never over the budget (in
    parameters, or the exported file's bytes under a byte budget)."""
    cost, rows = SharedCost(budget), (budget.n_users, budget.n_items)
    width, total = graphhash_size(cost, width, rows)
    graph = interaction_graph(pairs, budget.n_users)
    labels, resolution, tried = search_resolution(graph, budget.n_users, budget.n_rows, total, seed, steps)
    clusters = field_clusters(labels, budget.n_users)
    split = lambda t: bucket_targets(t, clusters, budget.n_users, budget.n_items)  # noqa: E731
    # bytes: the rounding and wider assignments of a split may not fit the upper bound; the most buckets that do
    total = largest_fitting(min(2, total), total, lambda t: bucket_cost(cost, width, split(t), rows) <= cost.total)
    targets = split(total)
    fields = []
    for part, target in zip((labels[: budget.n_users], labels[budget.n_users :]), targets):
        fields.append(FieldBuckets(len(part), width, (Partition("stored", target, assignment=fit_buckets(part, target)),)))
    record = {"resolution": resolution, "clusters": list(clusters), "buckets": list(targets), "tried": tried,
              "library": f"networkx {nx.__version__} louvain_communities", "seed": seed}
    return SharedBuckets(fields[0], fields[1], budget.d_max), record


class GraphHash(Method):
    name = "graphhash"
    settings_class = GraphhashSettings
    layout_kind = "shared"  # bucket tables and assignments: what a byte budget counts
    shared_partitions = ("stored",)

    def run(self, context: RunContext) -> Outcome:
        settings = context.settings
        layout, record = graphhash_layout(context.budget, training_pairs(context), settings.graphhash_width,
                                          int(context.config["seed"]), settings.graphhash_search_steps)
        getLogger().info(set_color("GraphHash", "green") + f": resolution {record['resolution']:.4g}, clusters "
                         f"{record['clusters']}, buckets {record['buckets']} of width {layout.user.width}")
        outcome = train_final(context, layout)
        outcome.extra = {"graphhash": dict(record, settings=self.settings_record(context), tables=layout.summary())}
        return outcome
