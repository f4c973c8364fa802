"""Tables from a folder of result JSONs: mean ± std over seeds, BET's ratios and paired t-tests.

    python -m bench.table --results=bench/results/sweep --out=bench/results
    python -m bench.table --results=bench/results/sweep --variant=scratch=bench/results/bet-scratch --out=bench/results

``--variant=TAG=FOLDER`` adds the runs of another folder as a variant of their method (BET retrained from scratch,
swept with other keys into its own folder): rows ``<method>-<tag>`` beside the plain ones, and for a BET variant its
own ratios and t-test against the best baseline, and its ratio and t-test against BET as it is (an ablation's question:
Table 2's variants, BET from scratch against warm-started). ``--compare=TAG`` also writes, per dataset and backbone,
each method's TAG variant beside its headline row with each one's rank (``--headline_variant=scratch``: BET's headline
row is BET from scratch): the fairness ablation, every method started from the pretrained table; the other tables of
such a run cover only the datasets and backbones the TAG variant ran on.

For each dataset one Markdown file and one CSV, and ``headline.md``: test N@20
of every method per dataset, model and sparsity on one line (docs/results.md's headline). Per backbone, rows are methods
grouped by sparsity, columns R@5, N@5, R@10, N@10, R@20, N@20 (test split,
mean ± std over seeds), the parameters used against the budget and the wall
time; under each sparsity BET ÷ ES, BET ÷ the best baseline (ES or MR, by mean
N@20) and the paired t-test p-value of BET against that baseline
(``scipy.stats.ttest_rel`` over seeds, as the paper does). RecBole's own models
(``method=recbole``) come first as reference rows.

The column "epochs" gives, as mean over seeds, the epoch whose validation was
best and the epoch where early stopping ended training (for BET: of the winning
retraining), from each run's ``curve``; "stopped" short of the epoch cap with
``stopping_step`` epochs after the best means the curve had flattened.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
from scipy import stats

METRICS = ["recall@5", "ndcg@5", "recall@10", "ndcg@10", "recall@20", "ndcg@20"]
LABELS = ["R@5", "N@5", "R@10", "N@10", "R@20", "N@20"]
METHOD_ORDER = ["full", "es", "mr", "mde", "magprune", "pep", "dsl", "qr", "graphhash", "optembed", "esapn", "ciess", "bet"]
# the budgeted baselines BET is compared with: the best of them (by mean test N@20) in each cell
BASELINES = ["es", "mr", "mde", "magprune", "pep", "optembed", "esapn", "ciess"]
LABEL = {"full": "full", "es": "ES", "mr": "MR", "mde": "MDE", "magprune": "magnitude pruning", "pep": "PEP",
         "optembed": "OptEmbed", "esapn": "ESAPN", "ciess": "CIESS", "bet": "BET", "qr": "QR", "graphhash": "GraphHash",
         "dsl": "DSL"}


def load(folder, tag: str | None = None) -> list[dict]:
    """The complete results under ``folder``; with ``tag``, each marked as that variant of its method (its rows are
    ``<method>-<tag>``, apart from the untagged runs of the same method)."""
    results = []
    for path in sorted(Path(folder).rglob("*.json")):
        if path.name.endswith(".error.json"):
            continue
        try:
            result = json.loads(path.read_text())
        except ValueError:
            continue
        if isinstance(result, dict) and result.get("test") and "method" in result:
            if tag:
                result["tag"] = tag
            results.append(result)
    return results


def row_key(method: str, tag: str | None = None) -> str:
    """A row: ``method``, or ``<method>-<tag>`` for a variant (``bet-scratch``); :func:`split_key` undoes it."""
    return f"{method}-{tag}" if tag else method


def method_key(result: dict) -> str:
    """A result's row (:func:`row_key` of its method and variant tag)."""
    return row_key(result["method"], result.get("tag"))


def split_key(key: str) -> tuple[str, str]:
    """A row key's method and variant tag: ``bet-scratch`` -> (``bet``, ``scratch``), ``pep`` -> (``pep``, ``""``)."""
    method, _, tag = key.partition("-")
    return method, tag


def label(key: str) -> str:
    """A row's name for readers: ``BET``, ``BET (scratch)``."""
    base, tag = split_key(key)
    return LABEL.get(base, base) + (f" ({tag})" if tag else "")


def order(key: str) -> tuple:
    """Rows in METHOD_ORDER, each method's variants after it."""
    base, tag = split_key(key)
    return (METHOD_ORDER.index(base) if base in METHOD_ORDER else len(METHOD_ORDER), tag)


def bet_rows(keys) -> list[str]:
    """BET and its variants among ``keys``."""
    return sorted((k for k in keys if split_key(k)[0] == "bet"), key=order)


def cell_key(result: dict) -> tuple:
    """A result's cell: ``(dataset, model, method or variant, sparsity)``."""
    return result["dataset"], result["model"], method_key(result), float(result["sparsity"])


def group(results) -> dict:
    """{(dataset, model, method, sparsity): {seed: result}}"""
    groups = defaultdict(dict)
    for r in results:
        groups[cell_key(r)][r["seed"]] = r
    return groups


def summary(runs: dict) -> dict:
    seeds = sorted(runs)
    values = {m: np.array([runs[s]["test"][m] for s in seeds]) for m in METRICS}
    return {
        "seeds": seeds,
        "values": values,
        "mean": {m: float(v.mean()) for m, v in values.items()},
        "std": {m: float(v.std(ddof=1)) if len(v) > 1 else 0.0 for m, v in values.items()},
        "used": int(np.mean([runs[s]["used_params"] for s in seeds])),
        "bytes": exported_bytes([runs[s] for s in seeds]),
        "budget": int(np.mean([runs[s]["budget_params"] for s in seeds])),
        "seconds": float(np.mean([runs[s]["seconds"] for s in seeds])),
        "epochs": epochs([runs[s] for s in seeds]),
    }


def exported_bytes(runs: list[dict]) -> int | None:
    """Mean size of the exported table file over runs (None where a run exported none)."""
    sizes = [(r.get("export") or {}).get("bytes") for r in runs]
    return int(np.mean(sizes)) if sizes and None not in sizes else None


def best_point(curve: list[dict]) -> dict:
    """The point RecBole kept: the highest validation score, the last of equals (its early stopping
    saves on ``score >= best``)."""
    return max(reversed(curve), key=lambda p: p["valid_score"])


def epochs(runs: list[dict]) -> str:
    """"best / stopped" epoch (1-based), means over runs, from each run's validation curve; "" without curves."""
    curves = [r["curve"] for r in runs if r.get("curve")]
    if not curves:
        return ""
    best = np.mean([1 + best_point(c)["epoch"] for c in curves])
    last = np.mean([1 + c[-1]["epoch"] for c in curves])
    return f"{best:.0f} / {last:.0f}"


def common_seeds(a: dict, b: dict) -> list:
    """The seeds two summaries both have, in ``a``'s order."""
    return [seed for seed in a["seeds"] if seed in b["seeds"]]


def on_seeds(s: dict, seeds: list, metric: str = "ndcg@20") -> np.ndarray:
    """A summary's per-seed values of ``metric`` for ``seeds`` (a subset of its own), in that order."""
    return np.array([s["values"][metric][s["seeds"].index(seed)] for seed in seeds])


def paired_p(a: dict, b: dict, metric: str) -> float | None:
    """Two-sided paired t-test over the seeds both have; None with fewer than 2 pairs or no variance."""
    seeds = common_seeds(a, b)
    if len(seeds) < 2:
        return None
    x, y = on_seeds(a, seeds, metric), on_seeds(b, seeds, metric)
    if np.allclose(x - y, (x - y)[0]):
        return None
    return float(stats.ttest_rel(x, y).pvalue)


def seed_names(seeds: list) -> str:
    """``seed 0``, ``seeds 0, 1``."""
    return ("seed " if len(seeds) == 1 else "seeds ") + ", ".join(str(seed) for seed in seeds)


def ratio_on_common_seeds(a: dict, b: dict, name: str) -> str:
    """Test N@20 of ``a`` ÷ ``b``'s, means over the seeds both have, ``"1.012 (OptEmbed)"``; where either has seeds
    the other lacks, the seeds are named (``"1.012 (OptEmbed, seed 0)"``): a mean over one seed is not set against a
    mean over three."""
    common = common_seeds(a, b)
    if not common:
        return "n/a"
    named = "" if set(common) == set(a["seeds"]) == set(b["seeds"]) else f", {seed_names(common)}"
    return f"{on_seeds(a, common).mean() / on_seeds(b, common).mean():.3f} ({name}{named})"


def fmt(s: dict, metric: str) -> str:
    return f"{s['mean'][metric]:.4f} ± {s['std'][metric]:.4f}" if len(s["seeds"]) > 1 else f"{s['mean'][metric]:.4f}"


def protocol_line(results) -> str:
    p = next((r.get("protocol") for r in results if r.get("protocol")), None)
    if not p:
        return ""
    return (
        f"Protocol of every final model: {p.get('learner')} lr {p.get('learning_rate')}, batch {p.get('train_batch_size')}, "
        f"at most {p.get('epochs')} epochs, early stopping on validation {p.get('valid_metric')} with patience "
        f"{p.get('stopping_step')}; split {p.get('split')}; full ranking; d_max {p.get('embedding_size')}."
        + neumf_loss_note(results)
    )


def neumf_loss_note(results) -> str:
    """Which loss NeuMF's rows trained with: recorded in each result since 2026-12-03, RecBole's BCE before
    (the only loss there was)."""
    losses = sorted({(r.get("protocol") or {}).get("neumf_loss", "bce") for r in results if r.get("model") == "NeuMF"})
    return f" NeuMF's loss: {' and '.join(loss.upper() for loss in losses)}." if losses else ""


def schedule_lines(results) -> list[str]:
    """One line per distinct BET schedule among the results."""
    lines = []
    for settings in {json.dumps(r["bet"]["settings"], sort_keys=True) for r in results if r.get("bet")}:
        b = json.loads(settings)
        lines.append(
            f"BET schedule (profile {b.get('bet_profile') or 'paper'}): T={b['bet_iterations']} iterations, m={b['bet_candidates']} "
            f"candidates, h={b['bet_finetune_epochs']} fine-tuning epochs at lr {b['bet_finetune_lr']}, "
            f"N={b['bet_predictor_updates']} predictor updates, top-{b['bet_retrain_top']} retrained from "
            f"{b.get('bet_retrain_from', 'scratch')}"
            + (f" with patience {b['bet_retrain_stopping_step']}" if b.get("bet_retrain_stopping_step") else "")
            + f"; selection {b.get('bet_selection', 'hybrid')}, predictor {b.get('bet_predictor', 'deepsets')}."
        )
    return sorted(lines)


def dataset_tables(dataset: str, results: list[dict], machine: str = "") -> tuple[str, list[dict]]:
    groups = group(results)
    lines = [f"# {dataset}", ""]
    stamps = sorted(r["measured"] for r in results if r.get("measured"))
    if stamps:
        first, last = stamps[0][:10], stamps[-1][:10]
        recorded = sorted({r["machine"] for r in results if r.get("machine")})  # where the runs say they ran
        where = "; ".join(recorded) if recorded else machine
        lines.append(f"Measured {first}" + (f" to {last}" if last != first else "") + (f" on {where}" if where else "") + ".")
    line = protocol_line(results)
    if line:
        lines += [line, ""]
    lines += [line + "  " for line in schedule_lines(results)]
    seeds = sorted({r["seed"] for r in results})
    lines += [f"Test split, mean ± std over seeds {seeds}.", ""]
    rerun = sorted({(r["model"], label(method_key(r)), float(r["sparsity"])) for r in results if r.get("rerun")})
    if rerun:
        lines += ["Re-run after a fix, in place of the sweep's rows (which stay in the history): "
                  + ", ".join(f"{model} {method} {sparsity}" for model, method, sparsity in rerun) + ".", ""]
    csv_rows = []

    reference = sorted((k for k in groups if k[2] == "recbole"), key=lambda k: k[1])
    if reference:
        lines += ["## RecBole's own models (unchanged, full tables)", ""]
        lines += ["| model | " + " | ".join(LABELS) + " | embedding params | epochs | s |", "|---" * (len(LABELS) + 4) + "|"]
        for key in reference:
            s = summary(groups[key])
            lines.append(f"| {key[1]} | " + " | ".join(fmt(s, m) for m in METRICS) + f" | {s['used']:,} | {s['epochs']} | {s['seconds']:.0f} |")
            csv_rows.append(csv_row(key, s))
        lines.append("")

    for model in sorted({k[1] for k in groups if k[2] != "recbole"}):
        lines += [f"## {model}", ""]
        lines += ["| sparsity | method | " + " | ".join(LABELS) + " | used / budget | table bytes | epochs | s | s ÷ full |",
                  "|---" * (len(LABELS) + 7) + "|"]
        full = [k for k in groups if k[1] == model and k[2] == "full"]
        full_seconds = summary(groups[full[0]])["seconds"] if full else None
        for key in full:
            s = summary(groups[key])
            lines.append("| 0 | full | " + " | ".join(fmt(s, m) for m in METRICS) + f" | {s['used']:,} / {s['budget']:,} | {cell_bytes(s)} | {s['epochs']} | {s['seconds']:.0f} | 1.0 |")
            csv_rows.append(csv_row(key, s))
        for sparsity in sorted({k[3] for k in groups if k[1] == model and k[2] not in ("full", "recbole")}):
            here = {k[2]: summary(groups[k]) for k in groups if k[1] == model and k[3] == sparsity and k[2] not in ("full", "recbole")}
            for method in sorted(here, key=order):
                s = here[method]
                ratio = f"{s['seconds'] / full_seconds:.1f}" if full_seconds else "-"
                lines.append(
                    f"| {sparsity} | {method} | " + " | ".join(fmt(s, m) for m in METRICS)
                    + f" | {s['used']:,} / {s['budget']:,} | {cell_bytes(s)} | {s['epochs']} | {s['seconds']:.0f} | {ratio} |"
                )
                csv_rows.append(csv_row((dataset, model, method, sparsity), s))
            lines += comparison_rows(sparsity, here)
        lines.append("")
    return "\n".join(lines), csv_rows


def cell_bytes(s: dict) -> str:
    return f"{s['bytes']:,}" if s.get("bytes") else "-"


COMPARISON_BLANK = " |" + " |" * 5  # a comparison row's empty cells: used / budget, bytes, epochs, s, s ÷ full


def ratio_row(sparsity, caption: str, a: dict, b: dict) -> str:
    """``a``'s mean ÷ ``b``'s, per metric."""
    return f"| {sparsity} | {caption} | " + " | ".join(f"{a['mean'][m] / b['mean'][m]:.3f}" for m in METRICS) + COMPARISON_BLANK


def p_row(sparsity, caption: str, a: dict, b: dict) -> str:
    """The paired t-test p-value of ``a`` against ``b``, per metric."""
    p = [paired_p(a, b, m) for m in METRICS]
    return f"| {sparsity} | {caption} | " + " | ".join("n/a" if v is None else f"{v:.4f}" for v in p) + COMPARISON_BLANK


def best_of(values: dict, methods) -> tuple[str, float] | None:
    """The (method, value) with the highest value among ``methods`` present in ``values`` (method -> value); None if
    none is present. Ties go to the earlier method."""
    present = [(m, values[m]) for m in methods if m in values]
    return max(present, key=lambda mv: mv[1]) if present else None


def best_baseline(here: dict) -> str | None:
    """The baseline with the highest mean test N@20 among those in ``here``; None if there is none."""
    best = best_of({m: s["mean"]["ndcg@20"] for m, s in here.items()}, BASELINES)
    return best[0] if best else None


def comparison_rows(sparsity, here: dict) -> list[str]:
    """For BET and each of its variants: ÷ ES, ÷ the best baseline and the paired t-test against it; for a variant
    also ÷ BET and the paired t-test against BET."""
    rows, best = [], best_baseline(here)
    for key in bet_rows(here):
        bet, name = here[key], label(key)
        if "es" in here:
            rows.append(ratio_row(sparsity, f"{name} ÷ ES", bet, here["es"]))
        if best:
            rows.append(ratio_row(sparsity, f"{name} ÷ best ({LABEL[best]})", bet, here[best]))
            rows.append(p_row(sparsity, f"p, {name} vs {LABEL[best]}", bet, here[best]))
        if key != "bet" and "bet" in here:  # a variant against BET as it is: the ablation's question (Table 2)
            rows.append(ratio_row(sparsity, f"{name} ÷ BET", bet, here["bet"]))
            rows.append(p_row(sparsity, f"p, {name} vs BET", bet, here["bet"]))
    return rows


def headline(results: list[dict]) -> str:
    """One line per (dataset, model, sparsity): test N@20 of each method (mean over seeds), BET ÷ the best
    of the baselines, and the paired t-test p-value on N@20; RecBole's own models' N@20 in a last column."""
    groups = group(results)
    variants = {k[2] for k in groups if "-" in k[2]}
    ran = {k[2] for k in groups}  # the weight-sharing and sparse-training methods get a column where they ran
    budgeted = sorted({m for m in METHOD_ORDER if m != "full" and (m in BASELINES + ["bet"] or m in ran)} | variants, key=order)
    bets = bet_rows({"bet"} | variants)
    compared = " | ".join(f"{label(b)} ÷ best | p (N@20)" for b in bets)
    lines = [
        "| dataset | model | sparsity | seeds | full | " + " | ".join(label(m) for m in budgeted) + f" | {compared} | RecBole's own (N@20) |",
        "|---" * (6 + 2 * len(bets) + len(budgeted)) + "|",
    ]
    for dataset, model in sorted({(k[0], k[1]) for k in groups if k[2] != "recbole"}):
        full = next((summary(groups[k]) for k in groups if k[:3] == (dataset, model, "full")), None)
        reference = ", ".join(
            f"{k[1]} {summary(groups[k])['mean']['ndcg@20']:.4f}" for k in sorted(groups) if k[0] == dataset and k[2] == "recbole"
        )
        for sparsity in sorted({k[3] for k in groups if k[:2] == (dataset, model) and k[2] not in ("full", "recbole")}):
            here = {k[2]: summary(groups[k]) for k in groups if k[:2] == (dataset, model) and k[3] == sparsity}
            seeds = len(here["bet"]["seeds"]) if "bet" in here else max(len(v["seeds"]) for v in here.values())

            def cell(m):  # a method run on fewer seeds than the row's names them
                if m not in here:
                    return "-"
                fewer = len(here[m]["seeds"]) < seeds
                return f"{here[m]['mean']['ndcg@20']:.4f}" + (f" ({seed_names(here[m]['seeds'])})" if fewer else "")

            comparisons = []
            best = best_baseline(here)
            for bet in bets:
                ratio, p = "-", "-"
                if bet in here and best:
                    ratio = ratio_on_common_seeds(here[bet], here[best], LABEL[best])
                    value = paired_p(here[bet], here[best], "ndcg@20")
                    p = "n/a" if value is None else f"{value:.3f}"
                comparisons += [ratio, p]
            full_cell = f"{full['mean']['ndcg@20']:.4f}" if full else "-"
            lines.append(
                f"| {dataset} | {model} | {sparsity} | {seeds} | {full_cell} | " + " | ".join(cell(m) for m in budgeted)
                + f" | {' | '.join(comparisons)} | {reference} |"
            )
    return "\n".join(lines) + "\n"


def profiles(runs: list[dict]) -> str:
    """The CPU profile the runs' method ran with (its ``<method>_profile`` key, in the settings it records: BET,
    ESAPN and CIESS have one), "-" for a method without profiles; several, where the seeds differ, joined by "/"."""
    names = sorted({((r.get(r["method"]) or {}).get("settings") or {}).get(f"{r['method']}_profile") or "-" for r in runs})
    return "/".join(names)


def minutes(seconds: float) -> str:
    """Wall time in minutes: one decimal under 10 minutes, whole minutes above."""
    return f"{seconds / 60:.1f}" if seconds < 600 else f"{seconds / 60:.0f}"


def methods_table(results: list[dict], dataset: str, model: str) -> str:
    """Every method at every budget for one dataset and backbone, compact: the profile each ran with, test N@20 and
    R@20 (mean ± std over seeds, and how many), the epochs (best / stopped), the exported table's bytes, the wall time
    in minutes, ÷ the full table's and ÷ OptEmbed's at the same budget (the search methods' cost against the
    strongest baseline's); the best N@20 and the best R@20 of each budget in bold."""
    groups = group(r for r in results if r["dataset"] == dataset and r["model"] == model)
    full_key = next((k for k in groups if k[2] == "full"), None)
    full = summary(groups[full_key]) if full_key else None
    lines = ["| sparsity | method | profile | seeds | N@20 | R@20 | epochs (best / stopped) | table bytes | minutes | s ÷ full "
             "| s ÷ OptEmbed |", "|---|---|---|---|---|---|---|---|---|---|---|"]

    def row(sparsity, method, runs, s, best=None, optembed=None):
        cells = [f"**{fmt(s, m)}**" if best and method in best[m] else fmt(s, m) for m in ("ndcg@20", "recall@20")]
        ratio = f"{s['seconds'] / full['seconds']:.1f}" if full else "-"
        to_optembed = f"{s['seconds'] / optembed['seconds']:.2f}" if optembed else "-"
        return (f"| {sparsity} | {label(method)} | {profiles(list(runs.values()))} | {len(s['seeds'])} | {cells[0]} | {cells[1]} | "
                f"{s['epochs'] or '-'} | {cell_bytes(s)} | {minutes(s['seconds'])} | {ratio} | {to_optembed} |")

    if full:
        lines.append(row(0, "full", groups[full_key], full))  # alone at its sparsity: nothing to bold
    for sparsity in sorted({k[3] for k in groups if k[2] not in ("full", "recbole")}):
        here = {k[2]: (groups[k], summary(groups[k])) for k in groups if k[3] == sparsity and k[2] not in ("full", "recbole")}
        best = {}  # metric -> the methods with the best mean (all of them, on a tie)
        for m in ("ndcg@20", "recall@20"):
            top = max(s["mean"][m] for _, s in here.values())
            best[m] = {method for method, (_, s) in here.items() if s["mean"][m] == top}
        optembed = here["optembed"][1] if "optembed" in here else None
        for method in sorted(here, key=order):
            lines.append(row(sparsity, method, *here[method], best, optembed))
    return "\n".join(lines) + "\n"


def layout_of(result: dict) -> dict | None:
    """A run's chosen layout: the users' share of the used parameters and each field's width spread (min, max, mean
    over rows; an element mask's kept weights per row); for shared bucket tables the buckets per field instead.
    None where the result records no sizes (RecBole's own models, the full table's older files)."""
    sizes = result.get("sizes") or {}
    users, items = sizes.get("users"), sizes.get("items")
    if not users or not items:
        return None
    if sizes.get("layout") == "shared":
        count = lambda f: sum(p["buckets"] for p in f["partitions"])  # noqa: E731
        return {"share": users["params"] / (users["params"] + items["params"]), "users": f"{count(users):,} buckets",
                "items": f"{count(items):,} buckets"}
    user_params, item_params = users["mean"] * result["n_users"], items["mean"] * result["n_items"]
    spread = lambda f: (f["min"], f["max"], f["mean"])  # noqa: E731
    return {"share": user_params / (user_params + item_params), "users": spread(users), "items": spread(items)}


def layouts_table(results: list[dict], dataset: str, model: str) -> str:
    """Each method's chosen layout at every budget, one dataset and backbone: the users' share of the parameters
    (mean over seeds) and each field's widths, min-max over the seeds' rows and the mean width (issue 33: which
    layouts win)."""
    groups = group(r for r in results if r["dataset"] == dataset and r["model"] == model and r["method"] != "recbole")
    lines = ["| sparsity | method | seeds | user share | users: widths min-max (mean) | items: widths min-max (mean) |",
             "|---|---|---|---|---|---|"]

    def cell(values: list) -> str:
        if isinstance(values[0], str):
            return " / ".join(sorted(set(values)))
        return f"{min(v[0] for v in values)}-{max(v[1] for v in values)} ({np.mean([v[2] for v in values]):.1f})"

    for key in sorted(groups, key=lambda k: (k[3], order(k[2]))):
        layouts = [layout for layout in map(layout_of, groups[key].values()) if layout]
        if layouts:
            share = np.mean([layout["share"] for layout in layouts])
            lines.append(f"| {key[3]} | {label(key[2])} | {len(layouts)} | {share:.2f} | {cell([x['users'] for x in layouts])} | "
                         f"{cell([x['items'] for x in layouts])} |")
    return "\n".join(lines) + "\n"


def compare_table(results: list[dict], dataset: str, model: str, tag: str, headline_tag: str | None = None) -> str:
    """Each method's ``tag`` variant against its headline row (``<method>-<headline_tag>`` where that exists, else the
    plain ``<method>``), one dataset and backbone: test N@20 of each on the seeds both ran, each one's rank among the
    methods compared at that sparsity, the ratio and the paired t-test. Where the ranks differ, a conclusion changes
    with the variant (the fairness ablation: every method started from the pretrained table)."""
    groups = group(r for r in results if r["dataset"] == dataset and r["model"] == model)
    lines = [f"| sparsity | method | seeds | N@20, headline | rank | N@20, {tag} | rank | {tag} ÷ headline | p (N@20) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for sparsity in sorted({k[3] for k in groups}):
        here = {k[2]: groups[k] for k in groups if k[3] == sparsity}
        pairs = {}  # method -> (headline row, variant row) on the seeds both ran
        for key in here:
            method, this = split_key(key)
            if this != tag:
                continue
            headline = row_key(method, headline_tag)
            base = headline if headline in here else method
            seeds = sorted(set(here[key]) & set(here.get(base, {})))
            if seeds:
                pairs[method] = (base, summary({s: here[base][s] for s in seeds}), summary({s: here[key][s] for s in seeds}))
        rank = {side: {m: 1 + i for i, m in enumerate(sorted(pairs, key=lambda m: -pairs[m][side]["mean"]["ndcg@20"]))}
                for side in (1, 2)}
        for method in sorted(pairs, key=order):
            base, headline_row, variant_row = pairs[method]
            p = paired_p(variant_row, headline_row, "ndcg@20")
            lines.append(
                f"| {sparsity} | {label(base)} | {len(variant_row['seeds'])} | {fmt(headline_row, 'ndcg@20')} | {rank[1][method]} | "
                f"{fmt(variant_row, 'ndcg@20')} | {rank[2][method]} | "
                f"{variant_row['mean']['ndcg@20'] / headline_row['mean']['ndcg@20']:.3f} | {'n/a' if p is None else f'{p:.3f}'} |"
            )
    return "\n".join(lines) + "\n"


def csv_row(key, s) -> dict:
    dataset, model, method, sparsity = key
    row = {"dataset": dataset, "model": model, "method": method, "sparsity": sparsity, "seeds": len(s["seeds"])}
    for m in METRICS:
        row[f"{m}_mean"], row[f"{m}_std"] = round(s["mean"][m], 6), round(s["std"][m], 6)
    row.update(used_params=s["used"], budget_params=s["budget"], table_bytes=s["bytes"], epochs_best_stopped=s["epochs"],
               seconds=round(s["seconds"], 1))
    return row


def add_variant_argument(parser) -> None:
    parser.add_argument("--variant", action="append", default=[], metavar="TAG=FOLDER",
                        help="more results, each run a variant of its method (rows <method>-<tag>), e.g. "
                             "scratch=bench/results/bet-scratch; repeatable")


def load_variants(parser, variants: list[str]) -> list[dict]:
    """The results of every ``--variant=TAG=FOLDER``, tagged; a malformed one is a one-line usage error."""
    results = []
    for variant in variants:
        tag, _, folder = variant.partition("=")
        if not tag or not folder:
            parser.error(f"--variant={variant!r}: expected TAG=FOLDER (e.g. scratch=bench/results/bet-scratch)")
        results += load(folder, tag)
    return results


def apply_reruns(results: list[dict], reruns: list[dict]) -> tuple[list[dict], list[str]]:
    """Re-run rows in place of the rows they re-ran, one cell (dataset, backbone, method or variant, sparsity) at a
    time, and only where every seed of the old cell was re-run: a mean never mixes a method before and after a fix.
    Returns the results and one line per cell, ``"<dataset> <model> <method> <sparsity>: replaced"`` (``added`` for a
    cell with no earlier rows) or ``"...: kept, seeds [..] of [..] re-run"``."""
    old, new = group(results), group(reruns)
    notes, replaced = [], set()
    for key in sorted(new, key=lambda k: (k[0], k[1], order(k[2]), k[3])):
        name = f"{key[0]} {key[1]} {label(key[2])} {key[3]}"
        if set(old.get(key, {})) <= set(new[key]):
            replaced.add(key)
            notes.append(f"{name}: replaced" if key in old else f"{name}: added (no earlier rows)")
        else:
            notes.append(f"{name}: kept, seeds {sorted(new[key])} of {sorted(old[key])} re-run")
    kept = [r for r in results if cell_key(r) not in replaced]
    return kept + [dict(r, rerun=True) for r in reruns if cell_key(r) in replaced], notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="bench/results/sweep")
    parser.add_argument("--out", default="bench/results")
    add_variant_argument(parser)
    parser.add_argument("--compare", default=None, metavar="TAG",
                        help="also write compare-TAG-<dataset>-<model>.md: each method's TAG variant against its headline "
                             "row, with each one's rank (the fairness ablation: --compare=pretrained); the other tables "
                             "then cover only the datasets and backbones the TAG variant ran on")
    parser.add_argument("--headline_variant", default=None, metavar="TAG",
                        help="with --compare: a method's headline row is its TAG variant where it has one (scratch: BET "
                             "retrained from scratch, the headline's protocol)")
    parser.add_argument("--rerun", action="append", default=[], metavar="FOLDER",
                        help="runs re-run after a fix (bench/results/sweep-v2): each cell whose every seed was re-run "
                             "shows the new runs instead of the old (which stay in --results, the history); repeatable")
    parser.add_argument("--machine", default=None, help="the machine line for runs that do not record one (default: this machine's)")
    args = parser.parse_args(argv)
    if args.machine is None:
        from bench.common import machine

        args.machine = machine()
    results = load(args.results) + load_variants(parser, args.variant)
    for folder in args.rerun:
        if not Path(folder).is_dir():
            parser.error(f"--rerun={folder!r}: not a folder of result files")
        results, notes = apply_reruns(results, load(folder))
        for note in notes:
            print(f"--rerun={folder}: {note}")
    tags = sorted({r["tag"] for r in results if r.get("tag")})
    for name, tag in (("--compare", args.compare), ("--headline_variant", args.headline_variant)):
        if tag is not None and tag not in tags:
            parser.error(f"{name}={tag!r}: no --variant has that tag; tags given: {tags or 'none'}")
    if args.headline_variant and not args.compare:
        parser.error(f"--headline_variant={args.headline_variant!r} needs --compare=TAG, the variant to compare")
    if args.compare:  # an ablation's folder: the tables of the datasets and backbones its variant ran on, no others
        ran = {(r["dataset"], r["model"]) for r in results if r.get("tag") == args.compare}
        results = [r for r in results if (r["dataset"], r["model"]) in ran]
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for dataset in sorted({r["dataset"] for r in results}):
        mine = [r for r in results if r["dataset"] == dataset]
        text, rows = dataset_tables(dataset, mine, args.machine)
        (out / f"table-{dataset}.md").write_text(text + "\n")
        with open(out / f"table-{dataset}.csv", "w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
        print(text)
        print(f"written to {out / f'table-{dataset}.md'} and .csv")
    if results:
        (out / "headline.md").write_text(headline(results))
        print(f"written to {out / 'headline.md'}")
    for dataset, model in sorted({(r["dataset"], r["model"]) for r in results if r["method"] not in ("recbole",)}):
        methods = {r["method"] for r in results if (r["dataset"], r["model"]) == (dataset, model)}
        if methods - {"full", "es", "mr", "bet", "recbole"}:  # the every-method table, where other methods ran
            path = out / f"methods-{dataset}-{model}.md"
            path.write_text(methods_table(results, dataset, model))
            (out / f"layouts-{dataset}-{model}.md").write_text(layouts_table(results, dataset, model))
            print(f"written to {path} and layouts-{dataset}-{model}.md")
    if args.compare:
        for dataset, model in sorted({(r["dataset"], r["model"]) for r in results if r.get("tag") == args.compare}):
            path = out / f"compare-{args.compare}-{dataset}-{model}.md"
            path.write_text(compare_table(results, dataset, model, args.compare, args.headline_variant))
            print(f"written to {path}")


if __name__ == "__main__":
    main()
