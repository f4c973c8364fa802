"""Budgets in bytes (issue 35): every method at float32, int8 and int4 under one byte budget, BET searching precision,
and post-training quantisation, on one dataset and sparsity, one seed a run; a table over the seeds of N@20, R@20,
bytes and wall time with paired tests, and a plot of quality against bytes.

    python -m bench.bytes_budget --run --dataset=gowalla-s --sparsity=0.9 --seed=0 [--prefix=/path/to/slot-wrapper] [--only=es-int8,bet-dtypes]
    python -m bench.bytes_budget --table --dataset=gowalla-s --sparsity=0.9

``--run`` runs, one at a time, each planned run whose result JSON is missing (``bench/results/bytes/<dataset>/``);
``--prefix`` is put before each command (a wrapper that waits for a CPU slot). ``--table`` writes
``bench/results/bytes-<dataset>-<sparsity>.md`` and ``.png`` from the result JSONs of every seed, with the float32
rows of the parameter-budget sweep (``bench/results/sweep/``, same seeds) beside them for reference, and where BET's
precision search spent its fine-tuned actions (:func:`search_trace`).
"""

from __future__ import annotations

import argparse
import json
import shlex
import re
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, header, markdown_table, write
from bench.table import common_seeds, fmt, on_seeds, paired_p, summary
from recbole_bet.budget import VALUE_DTYPES

ROOT = Path(__file__).resolve().parents[1]
OUT = RESULTS / "bytes"

#: (name, method, value_dtype, more keys), in the order they run
PLAN = [
    ("es-int8", "es", "int8", []),
    ("es-int4", "es", "int4", []),
    ("es-float32", "es", "float32", []),
    ("bet-int8", "bet", "int8", ["--bet_profile=fast"]),
    ("bet-int4", "bet", "int4", ["--bet_profile=fast"]),
    ("bet-dtypes", "bet", "float32", ["--bet_profile=fast", "--bet_dtypes=float32,int8,int4"]),
    ("bet-float32", "bet", "float32", ["--bet_profile=fast"]),
    ("magprune-int8", "magprune", "int8", []),
    ("magprune-int4", "magprune", "int4", []),
    ("pep-int8", "pep", "int8", []),
    ("pep-int4", "pep", "int4", []),
    ("optembed-int8", "optembed", "int8", []),
    ("optembed-int4", "optembed", "int4", []),
    ("es-int4-ptq", "es", "int4", ["--ptq=True"]),
    ("magprune-float32", "magprune", "float32", []),
    ("pep-float32", "pep", "float32", []),
    ("optembed-float32", "optembed", "float32", []),
    ("graphhash-int8", "graphhash", "int8", []),
    ("qr-int8", "qr", "int8", []),
    ("dsl-int8", "dsl", "int8", []),
]
LABELS = {"es": "ES", "bet": "BET (fast)", "pep": "PEP", "optembed": "OptEmbed", "magprune": "magnitude pruning",
          "graphhash": "GraphHash", "qr": "QR", "dsl": "DSL"}


def result_file(dataset: str, name: str, sparsity: float, seed: int) -> Path:
    return OUT / dataset / f"LightGCN-{name}-{sparsity}-s{seed}.json"


def command(args, name: str, method: str, dtype: str, keys: list[str]) -> list[str]:
    return [
        sys.executable, str(ROOT / "run_recbole_bet.py"), "--model=LightGCN", f"--dataset={args.dataset}",
        f"--data_path={args.data_path}", f"--method={method}", f"--sparsity={args.sparsity}", "--budget_unit=bytes",
        f"--value_dtype={dtype}", f"--seed={args.seed}", "--show_progress=False",
        f"--result_file={result_file(args.dataset, name, args.sparsity, args.seed)}",
        f"--checkpoint_dir={OUT / args.dataset / 'saved' / name}", *keys,
    ]


def run(args) -> None:
    only = set(args.only.split(",")) if args.only else None
    for name, method, dtype, keys in PLAN:
        if (only and name not in only) or result_file(args.dataset, name, args.sparsity, args.seed).is_file():
            continue
        line = shlex.split(args.prefix or "") + command(args, name, method, dtype, keys)
        print("running:", " ".join(line), flush=True)
        code = subprocess.run(line, cwd=ROOT).returncode
        print(f"{name}: exit {code}", flush=True)


def collect(folder: Path, sparsity: float) -> dict[str, dict[int, dict]]:
    """{run name: {seed: result}} of the result files in ``folder`` at one sparsity (error files left out)."""
    pattern = re.compile(rf"LightGCN-(.+)-{re.escape(str(sparsity))}-s(\d+)\.json")
    runs: dict[str, dict[int, dict]] = {}
    for path in sorted(folder.glob("*.json")):
        match = pattern.fullmatch(path.name)
        if match:
            runs.setdefault(match[1], {})[int(match[2])] = json.loads(path.read_text())
    return runs


def reference_runs(dataset: str, sparsity: float, seeds: set[int]) -> dict[str, dict[int, dict]]:
    """The parameter-budget sweep's float32 runs (the paper's unit) of the same dataset, sparsity and seeds."""
    runs = {}
    for method in LABELS:
        for seed in sorted(seeds):
            path = RESULTS / "sweep" / dataset / f"LightGCN-{method}-{sparsity}-s{seed}.json"
            if path.is_file():
                result = json.loads(path.read_text())
                runs.setdefault(f"{method}-float32-params", {})[seed] = dict(
                    result, value_dtype="float32", budget_unit="params", used_bytes=(result.get("export") or {}).get("bytes"))
    return runs


def searches_precision(result: dict) -> bool:
    """Whether ``result`` is a BET run that searched the dtype with the sizes (``bet_dtypes``)."""
    return result["method"] == "bet" and bool(result.get("bet", {}).get("settings", {}).get("bet_dtypes"))


def values(result: dict) -> str:
    """What the table's values are: the dtype, '(PTQ)' after post-training quantisation, 'searched' for BET's dtype search."""
    dtype = result["value_dtype"] + (" (PTQ)" if result.get("ptq") else "")
    return f"searched → {dtype}" if searches_precision(result) else dtype


def describe(runs: dict[int, dict]) -> dict:
    """One row's figures over its seeds: bench.table's summary (means, std, per-seed values) plus bytes and labels."""
    first = runs[min(runs)]
    chosen = sorted({runs[s]["value_dtype"] for s in runs})
    return dict(summary(runs), method=first["method"], budget_unit=first.get("budget_unit"), ptq=bool(first.get("ptq")),
                values_label=values(first) if len(chosen) == 1 else values(first).replace(first["value_dtype"], "/".join(chosen)),
                value_dtype=first["value_dtype"] if len(chosen) == 1 else "mixed",
                used_bytes=max((runs[s].get("used_bytes") or 0) for s in runs) or None,
                searched=searches_precision(first))


def row(d: dict, budget_bytes: int, best: dict) -> list:
    unit = "bytes" if d["budget_unit"] == "bytes" else "params (reference)"
    used = d["used_bytes"]
    p = None if d is best else paired_p(best, d, "ndcg@20")
    return [LABELS[d["method"]], d["values_label"], unit, len(d["seeds"]), fmt(d, "ndcg@20"), fmt(d, "recall@20"),
            f"{d['used']:,}", f"{used:,}" if used else "-", f"{used / budget_bytes:.3f}" if used else "-",
            f"{d['seconds'] / 60:.1f}", "best" if d is best else ("-" if p is None else f"{p:.3f}")]


def against(row: dict, other: dict) -> str:
    """``row``'s mean N@20 over ``other``'s: the ratio and the paired t-test over the seeds both have."""
    p = paired_p(row, other, "ndcg@20")
    return (f"{LABELS[other['method']]} at {other['values_label']}, {other['mean']['ndcg@20']:.4f} "
            f"({row['mean']['ndcg@20'] / other['mean']['ndcg@20']:.3f}x, paired t-test over common seeds p = "
            + ("n/a (fewer than 2)" if p is None else f"{p:.3f}") + ")")


def best_row(rows: list[dict]) -> dict | None:
    """The row of highest mean N@20 among those over the most seeds: a mean over fewer seeds is not ranked against a
    mean over more (:func:`fewer_seeds_above` names those that score higher on the seeds they have)."""
    if not rows:
        return None
    most = max(len(d["seeds"]) for d in rows)
    return max((d for d in rows if len(d["seeds"]) == most), key=lambda d: d["mean"]["ndcg@20"])


def fewer_seeds_above(rows: list[dict], best: dict) -> list[str]:
    """Each row over fewer seeds than ``best`` whose mean N@20 is above ``best``'s on the same seeds."""
    out = []
    for d in rows:
        common = common_seeds(d, best)
        if d is best or len(d["seeds"]) >= len(best["seeds"]) or not common:
            continue
        mine, theirs = float(on_seeds(d, common).mean()), float(on_seeds(best, common).mean())
        if mine > theirs:
            out.append(f"{LABELS[d['method']]} at {d['values_label']}, {mine:.4f} against {theirs:.4f} "
                       f"on seed{'s' if len(common) > 1 else ''} {', '.join(map(str, common))}")
    return out


def verdict(rows: dict[str, dict], best: dict | None = None) -> str:
    """Which (method, values) wins, and by how much over the best float32 table under the same bytes; then BET's
    precision search against that float32 table (the issue's question), each with a paired test. The best of a kind
    is the best of the rows over the most seeds (:func:`best_row`); rows over fewer seeds that score above it on
    their seeds are named. ``best``: the table's best row where the caller has it."""
    best = best or best_row(list(rows.values()))
    floats = [d for d in rows.values() if d["value_dtype"] == "float32" and not d["ptq"] and not d["searched"]]
    top = best_row(floats)
    text = f"Best: {LABELS[best['method']]} at {best['values_label']}, mean N@20 {best['mean']['ndcg@20']:.4f} over {len(best['seeds'])} seed(s)"
    above = fewer_seeds_above(list(rows.values()), best)
    if above:
        text += f" (of the rows over {len(best['seeds'])} seed(s); above it on fewer seeds: {'; '.join(above)})"
    if top is not None and top is not best:
        text += f"; best float32 table under the same bytes: {against(best, top)}"
    searched = [d for d in rows.values() if d["searched"]]
    if top is not None and searched:
        text += f". BET searching precision ({searched[0]['values_label']}), {searched[0]['mean']['ndcg@20']:.4f}, against the best float32 table: "
        text += against(searched[0], top)
    return text + "."


def search_trace(found: dict[str, dict[int, dict]]) -> str:
    """Where BET's precision search spent its iterations, per seed: how many fine-tuned actions carried each dtype
    (with the best fitness measured among them), the dtype of the retrained action, and its test N@20 beside BET held
    at that dtype on the same seed. Empty without a search row."""
    searched = {s: r for runs in found.values() for s, r in runs.items() if searches_precision(r)}
    if not searched:
        return ""
    lines = []
    for seed in sorted(searched):
        result = searched[seed]
        tried: dict[str, list[float]] = {}
        for action in result["search"]:
            tried.setdefault(action["value_dtype"], []).append(action["measured"])
        held = found.get(f"bet-{result['value_dtype']}", {}).get(seed)
        spent = ", ".join(f"{d} {len(tried[d])} ({max(tried[d]):.3f})" for d in sorted(tried, key=VALUE_DTYPES.index))
        lines.append([seed, spent, result["value_dtype"], f"{result['test']['ndcg@20']:.4f}",
                      f"{held['test']['ndcg@20']:.4f}" if held else "-"])
    return ("\n\nBET's precision search, per seed: the actions fine-tuned at each dtype (in brackets the best fitness "
            "measured among them), the dtype of the action retrained, its test N@20, and BET held at that dtype on the "
            "same seed.\n\n" + markdown_table(["seed", "actions fine-tuned per dtype (best fitness)", "retrained at",
                                                "N@20", "BET held at that dtype"], lines))


def table(args) -> None:
    order = {name: k for k, (name, *_) in enumerate(PLAN)}
    found = collect(OUT / args.dataset, args.sparsity)
    if not found:
        raise SystemExit(f"no results at sparsity {args.sparsity} in {OUT / args.dataset}")
    rows = {name: describe(runs) for name, runs in found.items()}
    rows = {n: rows[n] for n in sorted(rows, key=lambda n: (list(LABELS).index(rows[n]["method"]), order.get(n, 99), n))}
    budget_bytes = next(iter(next(iter(found.values())).values()))["budget_bytes"]
    seeds = {s for runs in found.values() for s in runs}
    references = {name: describe(runs) for name, runs in reference_runs(args.dataset, args.sparsity, seeds).items()}
    best = best_row(list(rows.values()))
    columns = ["method", "values", "budget", "seeds", "N@20", "R@20", "params", "file bytes", "÷ budget", "min", "p vs best"]
    machines = sorted({r["machine"] for runs in found.values() for r in runs.values()})
    note = (f"LightGCN on {args.dataset}, sparsity {args.sparsity} of the float32 table's bytes: a budget of {budget_bytes:,} bytes "
            f"for the exported file (values at their precision, per-row scales, size index, element index, headers); test "
            f"split, mean ± std over the seeds each row has; file bytes: the largest over its seeds; min: mean wall minutes "
            f"(one thread, the other core busy with another run). p vs best: two-sided paired t-test of N@20 over the seeds "
            f"a row shares with the best row ('-': fewer than 2); the best row is the best of the rows over the most seeds. The machines: {', '.join(machines)}.\n\n" + verdict(rows, best))
    text = header(f"Budgets in bytes: {args.dataset} at {args.sparsity}",
                  f"python -m bench.bytes_budget --table --dataset={args.dataset} --sparsity={args.sparsity}", note)
    name = f"bytes-{args.dataset}-{args.sparsity}"
    write(f"{name}.md", text + markdown_table(columns, [row(d, budget_bytes, best) for d in [*rows.values(), *references.values()]])
          + search_trace(found))
    plot([*rows.values(), *references.values()], RESULTS / f"{name}.png", budget_bytes, args, sorted(seeds))


def plot(rows: list[dict], path: Path, budget_bytes: int, args, seeds: list[int]) -> None:
    """Mean test N@20 against the largest file of each row (bars: std over seeds); BET's dtype search as a star."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"float32": "o", "float16": "D", "int8": "s", "int4": "^", "mixed": "*"}
    colours = dict(zip(LABELS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for d in rows:
        if not d["used_bytes"]:
            continue
        params = d["budget_unit"] != "bytes"
        marker = "*" if d["searched"] else markers[d["value_dtype"]]
        axes.errorbar(d["used_bytes"] / 1e3, d["mean"]["ndcg@20"], yerr=d["std"]["ndcg@20"], fmt="none",
                      ecolor=colours[d["method"]], elinewidth=0.8)
        axes.scatter(d["used_bytes"] / 1e3, d["mean"]["ndcg@20"], marker=marker, s=110 if d["searched"] else 40,
                     facecolors="none" if params else colours[d["method"]], edgecolors="k" if d["searched"] else colours[d["method"]])
    axes.axvline(budget_bytes / 1e3, color="grey", linestyle="--", linewidth=1)
    for method, colour in colours.items():
        axes.scatter([], [], color=colour, label=LABELS[method])
    for dtype, marker in markers.items():
        axes.scatter([], [], marker=marker, color="grey", label="BET, dtype searched" if dtype == "mixed" else dtype)
    axes.scatter([], [], facecolors="none", edgecolors="grey", label="float32, parameter budget")
    axes.set_xlabel("exported table, kB (dashed: the byte budget)")
    axes.set_ylabel("test N@20, mean over seeds")
    axes.set_title(f"LightGCN, {args.dataset}, {args.sparsity} of the float32 bytes, seeds {','.join(map(str, seeds))}")
    axes.legend(fontsize=7, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    print(f"written to {path}")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true")
    parser.add_argument("--table", action="store_true")
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default=str(ROOT.parent / "shared" / "datasets"))
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefix", default="", help="a command put before each run, e.g. a CPU-slot wrapper")
    parser.add_argument("--only", default="", help="comma-separated names of PLAN to run")
    args = parser.parse_args(argv)
    if args.run:
        run(args)
    if args.table:
        table(args)


if __name__ == "__main__":
    main()
