"""Budgets in bytes (issue 35): every method at float32, int8 and int4 under one byte budget, BET searching precision,
and post-training quantisation, on one dataset and seed; a table of N@20, R@20, bytes and wall time, and a plot of
quality against bytes.

    python -m bench.bytes_budget --run [--prefix=/path/to/slot-wrapper] [--only=es-int8,bet-dtypes]
    python -m bench.bytes_budget --table

``--run`` runs, one at a time, each planned run whose result JSON is missing (``bench/results/bytes/<dataset>/``);
``--prefix`` is put before each command (a wrapper that waits for a CPU slot). ``--table`` writes
``bench/results/bytes-<dataset>.md`` and ``.png`` from the result JSONs, with the float32 rows of the parameter-budget
sweep (``bench/results/sweep/``, same seed) beside them for reference.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

from bench.common import RESULTS, header, markdown_table, write

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
]
LABELS = {"es": "ES", "bet": "BET (fast)", "pep": "PEP", "optembed": "OptEmbed", "magprune": "magnitude pruning"}


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


def reference_rows(args) -> list[dict]:
    """The parameter-budget sweep's float32 runs of the same dataset, sparsity and seed (the paper's unit)."""
    rows = []
    for method in LABELS:
        path = RESULTS / "sweep" / args.dataset / f"LightGCN-{method}-{args.sparsity}-s{args.seed}.json"
        if path.is_file():
            result = json.loads(path.read_text())
            rows.append(dict(result, name=f"{method}-float32-params", value_dtype="float32", budget_unit="params",
                             used_bytes=(result.get("export") or {}).get("bytes")))
    return rows


def row(result: dict, budget_bytes: int) -> list:
    method = LABELS[result["method"]]
    dtype = result["value_dtype"]
    if result.get("ptq"):
        dtype += " (PTQ)"
    if result["method"] == "bet" and (result.get("bet", {}).get("settings", {}).get("bet_dtypes") or ()):
        dtype = f"searched → {dtype}"
    unit = "bytes" if result.get("budget_unit") == "bytes" else "params (reference)"
    used = result.get("used_bytes")
    share = f"{used / budget_bytes:.3f}" if used else "-"
    return [method, dtype, unit, f"{result['test']['ndcg@20']:.4f}", f"{result['test']['recall@20']:.4f}",
            f"{result['used_params']:,}", f"{used:,}" if used else "-", share, f"{result['seconds']:.0f}",
            result.get("measured", "")[:10]]


def table(args) -> None:
    order = {name: k for k, (name, *_) in enumerate(PLAN)}
    found = {p: json.loads(p.read_text()) for p in (OUT / args.dataset).glob("*.json")}
    named = {path.stem.removeprefix("LightGCN-").rsplit(f"-{args.sparsity}-s", 1)[0]: r for path, r in found.items()}
    results = [named[name] for name in sorted(named, key=lambda n: (list(LABELS).index(named[n]["method"]), order.get(n, 99)))]
    if not results:
        raise SystemExit(f"no results in {OUT / args.dataset}")
    budget_bytes = results[0]["budget_bytes"]
    references = reference_rows(args)
    columns = ["method", "values", "budget", "N@20", "R@20", "params", "file bytes", "÷ budget", "s", "measured"]
    rows = [row(r, budget_bytes) for r in results] + [row(r, budget_bytes) for r in references]
    best = max(results, key=lambda r: r["test"]["ndcg@20"])
    best_float = max((r for r in results if r["value_dtype"] == "float32" and not r.get("ptq")), key=lambda r: r["test"]["ndcg@20"], default=None)
    note = (f"LightGCN on {args.dataset}, sparsity {args.sparsity} of the float32 table's bytes: a budget of {budget_bytes:,} bytes "
            f"for the exported file (values at their precision, per-row scales, size index, element index, headers); seed "
            f"{args.seed}, one run each, test split. The machines: {', '.join(sorted({r['machine'] for r in results}))}.\n\n"
            f"Best: {LABELS[best['method']]} at {best['value_dtype']}, N@20 {best['test']['ndcg@20']:.4f}"
            + (f"; best float32 under the same bytes: {LABELS[best_float['method']]}, N@20 {best_float['test']['ndcg@20']:.4f} "
               f"({best['test']['ndcg@20'] / best_float['test']['ndcg@20']:.3f}x)" if best_float else "") + ".")
    text = header(f"Budgets in bytes: {args.dataset}", "python -m bench.bytes_budget --run; python -m bench.bytes_budget --table", note)
    write(f"bytes-{args.dataset}.md", text + markdown_table(columns, rows))
    plot(results + references, RESULTS / f"bytes-{args.dataset}.png", budget_bytes, args)


def plot(results: list[dict], path: Path, budget_bytes: int, args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"float32": "o", "float16": "D", "int8": "s", "int4": "^"}
    colours = dict(zip(LABELS, plt.rcParams["axes.prop_cycle"].by_key()["color"]))
    figure, axes = plt.subplots(figsize=(7, 4.5))
    for r in results:
        if not r.get("used_bytes"):
            continue
        params = r.get("budget_unit") != "bytes"
        searched = r["method"] == "bet" and bool(r.get("bet", {}).get("settings", {}).get("bet_dtypes"))
        axes.scatter(r["used_bytes"] / 1e3, r["test"]["ndcg@20"], marker=markers[r["value_dtype"]], s=70 if searched else 40,
                     facecolors="none" if params else colours[r["method"]], edgecolors="k" if searched else colours[r["method"]])
    axes.axvline(budget_bytes / 1e3, color="grey", linestyle="--", linewidth=1)
    for method, colour in colours.items():
        axes.scatter([], [], color=colour, label=LABELS[method])
    for dtype, marker in markers.items():
        axes.scatter([], [], marker=marker, color="grey", label=dtype)
    axes.scatter([], [], facecolors="none", edgecolors="grey", label="float32, parameter budget")
    axes.set_xlabel("exported table, kB (dashed: the byte budget)")
    axes.set_ylabel("test N@20")
    axes.set_title(f"LightGCN, {args.dataset}, {args.sparsity} of the float32 bytes, seed {args.seed}")
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
