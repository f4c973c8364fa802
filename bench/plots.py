"""Plots from a folder of result JSONs (matplotlib, PNG).

    python -m bench.plots --results=bench/results/sweep --out=bench/results

* ``sizes-<dataset>-<model>-<sparsity>.png``: embedding size against training
  frequency rank of the chosen action of BET, ES and MR (users and items);
* ``search-<dataset>-<model>-<sparsity>.png``: BET's measured fitness per
  iteration, the best so far, and the predictor's loss;
* ``quality-<dataset>-<model>.png``: test NDCG@20 against sparsity per method
  (mean ± std over seeds), with the full table as a line;
* ``curves-<dataset>-<model>-<sparsity>.png``: validation NDCG@20 per epoch of
  each method's final training (BET: the winning retraining; each ``--variant``
  dashed), at the budget's first seed, with the best
  epoch marked, to show every curve had flattened before early stopping
  (``curves-<dataset>-recbole.png`` for RecBole's own models).

Sizes are read from each run's exported table, frequencies from RecBole's
split of the dataset (the same seed gives the same split).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from bench.table import add_variant_argument, load, load_variants, method_key, order, split_key  # noqa: E402
from bench.table import label as row_label  # noqa: E402

COLORS = {"bet": "tab:red", "es": "tab:blue", "mr": "tab:green", "full": "black", "pep": "tab:purple", "optembed": "tab:orange",
          "magprune": "tab:brown", "mde": "tab:cyan", "esapn": "tab:olive", "ciess": "tab:pink", "qr": "tab:gray",
          "graphhash": "gold", "dsl": "navy"}


def frequencies(dataset: str, data_path: str, seed: int):
    from bench.common import recbole_data
    from recbole_bet.quick_start import training_frequencies

    config, train, _, _ = recbole_data("LightGCN", dataset, data_path, seed=seed)
    return training_frequencies(train._dataset, config)


def has_table(result: dict) -> bool:
    """Whether the run's exported table (kept next to its checkpoint, not committed) is on disk."""
    return bool(result.get("export")) and Path(result["export"]["path"]).is_file()


def plot_sizes(runs: dict, freq, path: Path, title: str) -> None:
    from recbole_bet.export import read_table

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for method in ("bet", "es", "mr"):
        if method not in runs or not runs[method].get("export"):
            continue
        meta, _, sizes = read_table(runs[method]["export"]["path"])
        for axis, field, f in zip(axes, ("user", "item"), freq):
            names = [n for n, (fld, _) in meta["tables"].items() if fld == field]
            row_sizes = sum(sizes[n] for n in names)[1:]  # padding row dropped
            order = np.argsort(-f, kind="stable")
            style = {"lw": 0, "marker": ".", "ms": 2, "alpha": 0.5} if method == "mr" else {"lw": 1.5}
            axis.plot(np.arange(1, len(order) + 1), row_sizes[order], label=method.upper(), color=COLORS[method], **style)
    for axis, field in zip(axes, ("users", "items")):
        axis.set_xscale("log")
        axis.set_xlabel(f"{field} by training frequency rank (1 = most frequent)")
        axis.set_title(field)
    axes[0].set_ylabel("embedding size")
    axes[0].legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_search(result: dict, path: Path, title: str) -> None:
    records = result["search"]
    t = [r["t"] for r in records]
    measured = np.array([r["measured"] for r in records])
    fig, axis = plt.subplots(figsize=(7, 4))
    markers = {"I": "o", "II": "s", "III": "^"}
    for strategy, marker in markers.items():
        idx = [i for i, r in enumerate(records) if r["strategy"] == strategy]
        axis.scatter([t[i] for i in idx], measured[idx], marker=marker, s=18, label=f"measured ({strategy})")
    axis.plot(t, np.maximum.accumulate(measured), color="tab:red", label="best so far")
    axis.set_xlabel("iteration t")
    axis.set_ylabel("fitness r_a (validation, / full table)")
    loss_axis = axis.twinx()
    loss_axis.plot(t, [r["predictor_loss"] for r in records], color="gray", lw=1, ls="--", label="predictor loss")
    loss_axis.set_yscale("log")
    loss_axis.set_ylabel("predictor MSE")
    lines = axis.get_legend_handles_labels()
    extra = loss_axis.get_legend_handles_labels()
    axis.legend(lines[0] + extra[0], lines[1] + extra[1], fontsize=8, loc="lower right")
    axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_quality(results: list[dict], path: Path, title: str) -> list[str]:
    """Test N@20 against sparsity, one line per method and per variant (dashed, ``--variant``); returns the
    lines' labels."""
    by = defaultdict(list)
    for r in results:
        by[(method_key(r), r["sparsity"])].append(r["test"]["ndcg@20"])
    fig, axis = plt.subplots(figsize=(7.5, 4))
    drawn = []
    points = defaultdict(list)  # row key -> [(sparsity, mean, std)]
    for (key, sparsity), values in by.items():
        points[key].append((sparsity, np.mean(values), np.std(values)))
    for key in sorted((k for k in points if k != "full"), key=order):  # the tables' order, each variant after its method
        method, tag = split_key(key)
        s, mean, std = map(np.array, zip(*sorted(points[key])))
        axis.errorbar(s, mean, yerr=std, marker="o", capsize=3, label=row_label(key), color=COLORS[method],
                      ls="--" if tag else "-")
        drawn.append(row_label(key))
    full = [v for (m, _), values in by.items() if m == "full" for v in values]
    if full:
        axis.axhline(np.mean(full), color="black", ls=":", label="full table")
    axis.set_xlabel("sparsity")
    axis.set_ylabel("test NDCG@20")
    axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)  # beside the axes, off the points
    axis.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def plot_curves(runs: dict, path: Path, title: str) -> list[str]:
    """Validation score per epoch, one line per labelled run; a dot marks each run's best epoch. A run whose label is
    a row key of :mod:`bench.table` (``es``, ``bet-scratch``) takes that method's colour, dashed for a variant.
    Returns the labels of the lines drawn."""
    fig, axis = plt.subplots(figsize=(7, 4))
    drawn = []
    for label, result in runs.items():
        curve = result.get("curve")
        if not curve:
            continue
        method, tag = split_key(label)
        epochs = [1 + p["epoch"] for p in curve]
        scores = [p["valid_score"] for p in curve]
        best = len(scores) - 1 - int(np.argmax(scores[::-1]))  # the last of equals, the epoch RecBole kept
        known = method in COLORS  # a method's row key; else a label of its own (RecBole's model names)
        name = row_label(label) if known else label
        (line,) = axis.plot(epochs, scores, lw=1.3, label=f"{name} (best {epochs[best]}, stopped {epochs[-1]})",
                            color=COLORS.get(method), ls="--" if tag and known else "-")
        axis.plot(epochs[best], scores[best], "o", color=line.get_color())
        drawn.append(name)
    metric = next((r["protocol"]["valid_metric"] for r in runs.values() if r.get("protocol")), "validation score")
    axis.set_xlabel("epoch")
    axis.set_ylabel(f"validation {metric}")
    axis.legend(fontsize=7, loc="lower right")
    axis.set_title(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return drawn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="bench/results/sweep")
    parser.add_argument("--out", default="bench/results")
    parser.add_argument("--data_path", default="../shared/datasets")
    add_variant_argument(parser)  # drawn in the quality and curve plots
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    everything = load(args.results)
    variants = load_variants(parser, args.variant)
    results = [r for r in everything if r["method"] != "recbole"]
    written = []
    for dataset in sorted({r["dataset"] for r in everything if r["method"] == "recbole"}):
        reference = [r for r in everything if r["dataset"] == dataset and r["method"] == "recbole" and r.get("curve")]
        if not reference:
            continue
        seed = min(r["seed"] for r in reference)
        path = out / f"curves-{dataset}-recbole.png"
        plot_curves({r["model"]: r for r in reference if r["seed"] == seed}, path, f"RecBole's own models on {dataset}, seed {seed}")
        written.append(path)
    for dataset, model in sorted({(r["dataset"], r["model"]) for r in results + variants}):
        mine = [r for r in results if r["dataset"] == dataset and r["model"] == model]
        theirs = [r for r in variants if r["dataset"] == dataset and r["model"] == model]
        if any(r["method"] != "full" for r in mine + theirs):  # a backbone with only its full table has no curve to draw
            path = out / f"quality-{dataset}-{model}.png"
            plot_quality(mine + theirs, path, f"{model} on {dataset}")
            written.append(path)
        for sparsity in sorted({r["sparsity"] for r in mine + theirs if r["method"] != "full"}):
            here = [r for r in mine + theirs if r["sparsity"] == sparsity]
            seed = min(r["seed"] for r in here)
            runs = {r["method"]: r for r in here if r["seed"] == seed and not r.get("tag")}
            full = next((r for r in mine if r["method"] == "full" and r["seed"] == seed), None)
            # every method's final training at this budget and seed, each variant after its method, the full table last
            final = {method_key(r): r for r in here if r["seed"] == seed and r["method"] != "full"}
            labelled = {key: final[key] for key in sorted(final, key=order)}
            if full:
                labelled["full"] = full
            if any(r.get("curve") for r in labelled.values()):  # runs before curves were recorded have none
                path = out / f"curves-{dataset}-{model}-{sparsity}.png"
                plot_curves(labelled, path, f"Final training, {model} on {dataset}, sparsity {sparsity}, seed {seed}")
                written.append(path)
            if "bet" in runs:
                path = out / f"search-{dataset}-{model}-{sparsity}.png"
                plot_search(runs["bet"], path, f"BET search, {model} on {dataset}, sparsity {sparsity}, seed {seed}")
                written.append(path)
            exported = {m: r for m, r in runs.items() if m in ("bet", "es", "mr") and has_table(r)}
            if len(exported) < len([m for m in ("bet", "es", "mr") if m in runs]):
                print(f"sizes-{dataset}-{model}-{sparsity}.png: skipped, exported tables missing (re-run the sweep to make them)")
            elif exported:
                path = out / f"sizes-{dataset}-{model}-{sparsity}.png"
                plot_sizes(exported, frequencies(dataset, args.data_path, seed), path, f"Chosen sizes, {model} on {dataset}, sparsity {sparsity}, seed {seed}")
                written.append(path)
    for path in written:
        print("written", path)


if __name__ == "__main__":
    main()
