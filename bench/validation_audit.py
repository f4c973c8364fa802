"""Issue 33's validation audit: every committed choice of a method's setting redone on validation only.

    python -m bench.validation_audit [--results=bench/results] [--out=bench/results]

Reads the committed result files (bench/results/**/*.json; each run records its validation and test metrics, its
method's settings and its seconds) and trains nothing. Two parts:

1. Selective retraining, on the same search: in every BET run that retrained more than one action, the actions are
   the search's best measured ones in order (rank 0 = the best searched action, the one a single retraining keeps).
   The run keeps the action with the best validation quality (mean of R@{5,10,20} and N@{5,10,20}). Per run: which
   rank validation picks, what the further retrainings gain in validation N@20 over rank 0, and their epochs. A
   loser's test metrics are never recorded, so what the pick gained on test is known only where rank 0 won (zero).
2. Settings chosen by comparing runs (the list ``CHOICES``, each with the commit or file that made it): the runs of
   the option taken and of the alternative, paired by (dataset, model, method, sparsity, seed); the option a
   validation-only choice takes (higher mean validation N@20 over the pairs), beside what test N@20 says.
"""

from __future__ import annotations

import argparse
import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from bench.common import RESULTS, header, markdown_table, write
from recbole_bet.quality import quality

METRIC = "ndcg@20"


@dataclass(frozen=True)
class Selector:
    """Runs under ``folder`` (relative to the results root) whose settings have the given values; a tuple of values
    allows any of them, None matches a key the run does not record."""

    folder: str
    where: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Choice:
    name: str        # the setting and the option taken
    made: str        # where and on what it was decided
    taken: Selector
    other: Selector
    caveat: str = ""


FAST_TOP1 = {"method": "bet", "bet_profile": "fast", "bet_retrain_top": 1}
CHOICES = [
    Choice("`fast`: one retraining (patience 5, pretraining patience 10) instead of the top 2 (patience 20)",
           "commit 2b48593 (2026-12-03): test N@20 of three budgets in one run within or above the sweep's test range "
           "(whole_run-gowalla-s-0.8-0.9-0.95.md)",
           Selector("whole_run", dict(FAST_TOP1, bet_retrain_stopping_step=5, bet_share_population=False)),
           Selector("sweep", {"method": "bet", "bet_profile": "fast", "bet_retrain_top": 2}),
           "the two sides also differ in pretraining patience, one run for three budgets and the machine"),
    Choice("`fast`: pretraining patience 10 instead of 20 (one retraining)",
           "bench/README.md's whole-run row (2026-11-26): test N@20 0.1415 / 0.1289 against 0.1411 / 0.1294",
           Selector("whole_run", dict(FAST_TOP1, bet_pretrain_stopping_step=10, bet_retrain_stopping_step=None)),
           Selector("whole_run", dict(FAST_TOP1, bet_pretrain_stopping_step=None, bet_retrain_stopping_step=None))),
    Choice("`fast` (one retraining, pretraining patience 10) accepted against the paper's schedule",
           "bench/README.md's whole-run row: target 'quality >= the paper schedule', read on test N@20",
           Selector("whole_run", dict(FAST_TOP1, bet_pretrain_stopping_step=10, bet_retrain_stopping_step=None)),
           Selector("whole_run", {"method": "bet", "bet_profile": "paper"})),
    Choice("`bet_share_population` stays off",
           "commit 2b48593: 'hurts at 0.95', test N@20 (whole_run-gowalla-s-0.8-0.9-0.95-share.md)",
           Selector("whole_run", dict(FAST_TOP1, bet_retrain_stopping_step=5, bet_share_population=False)),
           Selector("whole_run", dict(FAST_TOP1, bet_retrain_stopping_step=5, bet_share_population=True)),
           "0.8 is the first budget of the run: the same run on both sides"),
    Choice("NeuMF's gowalla-s rows train with `neumf_loss=bpr`, not RecBole's BCE",
           "docs/results.md, 'NeuMF's loss': 'BPR is 12% better on N@20', test N@20 of the full table",
           Selector("sweep/gowalla-s", {"model": "NeuMF", "neumf_loss": "bpr"}),
           Selector("neumf-bce/gowalla-s", {"model": "NeuMF", "neumf_loss": ("bce", None)})),
    Choice("`fast` retrains from the pretrained table (warm start), not from scratch; both top 2",
           "commit b5cfd2d set it without a comparison; README 'The warm start matters' reads test N@20",
           Selector("sweep", {"method": "bet", "bet_retrain_top": 2, "bet_retrain_from": "pretrained"}),
           Selector("ablation-retrain-scratch", {"method": "bet", "bet_retrain_top": 2, "bet_retrain_from": "scratch"})),
    Choice("the same warm start against BET from scratch as the tables run it (one retraining)",
           "docs/results.md: 'BET' (warm, top 2) beside 'BET (scratch)', test N@20",
           Selector("sweep", {"method": "bet", "bet_retrain_top": 2, "bet_retrain_from": "pretrained"}),
           Selector("bet-scratch", {"method": "bet", "bet_retrain_from": "scratch"}),
           "the scratch side also retrains one action and pretrains with patience 10"),
]


def load(root: Path) -> dict[str, dict]:
    """Every result file under ``root`` that holds one run (a dict with validation and test metrics), by its path
    relative to ``root``."""
    runs = {}
    for path in sorted(root.rglob("*.json")):
        result = json.loads(path.read_text())
        if isinstance(result, dict) and "valid" in result and "test" in result:
            runs[path.relative_to(root).as_posix()] = result
    return runs


def setting(result: dict, key: str):
    """A run's value of ``key``: the run's own field, its method's settings, then its training protocol."""
    if key in result:
        return result[key]
    for part in ((result.get("bet") or {}).get("settings") or {}, result.get("protocol") or {}):
        if key in part:
            return part[key]
    return None


def matches(name: str, result: dict, selector: Selector) -> bool:
    if not name.startswith(selector.folder.rstrip("/") + "/"):
        return False
    for key, wanted in selector.where.items():
        allowed = wanted if isinstance(wanted, tuple) else (wanted,)
        if setting(result, key) not in allowed:
            return False
    return True


def pair_key(result: dict) -> tuple:
    return tuple(result.get(k) for k in ("dataset", "model", "method", "sparsity", "seed"))


def pairs(runs: dict, choice: Choice) -> list[tuple[str, dict, str, dict]]:
    """(taken file, run, other file, run) for every pair key both sides ran; a key run twice on one side keeps the
    first file by name."""
    sides = []
    for selector in (choice.taken, choice.other):
        side = {}
        for name, result in runs.items():
            if matches(name, result, selector):
                side.setdefault(pair_key(result), (name, result))
        sides.append(side)
    taken, other = sides
    return [(*taken[key], *other[key]) for key in sorted(taken, key=str) if key in other]


def training_epochs(result: dict) -> int:
    """Epochs of the run's final training(s): every selective retraining of a BET run, else the final training."""
    retrained = (result.get("bet") or {}).get("retrained")
    if retrained:
        return sum(len(r.get("curve") or []) for r in retrained)
    return len(result.get("curve") or [])


def verdict(matched: list) -> dict:
    """Means over the pairs and the option each split picks (higher mean N@20; a tie keeps the option taken)."""
    out = {"pairs": len(matched)}
    for split in ("valid", "test"):
        taken = [t[split][METRIC] for _, t, _, _ in matched]
        other = [o[split][METRIC] for _, _, _, o in matched]
        out[split] = (statistics.fmean(taken), statistics.fmean(other))
        out[f"{split}_wins"] = sum(a > b for a, b in zip(taken, other))
        out[f"{split}_pick"] = "taken" if out[split][0] >= out[split][1] else "other"
    out["epochs"] = (statistics.fmean(training_epochs(t) for _, t, _, _ in matched),
                     statistics.fmean(training_epochs(o) for _, _, _, o in matched))
    return out


def pick_by_validation(retrained: list) -> int:
    """The rank BET keeps: best validation quality (recorded, else recomputed as BET does), the first of equals."""
    scores = [r["quality"] if "quality" in r else quality(r["valid"]) for r in retrained]
    return max(range(len(scores)), key=lambda rank: scores[rank])


def retraining_rows(runs: dict) -> list[dict]:
    """One record per run that retrained more than one action."""
    rows = []
    for name, result in runs.items():
        retrained = (result.get("bet") or {}).get("retrained") or []
        if len(retrained) < 2:
            continue
        pick = pick_by_validation(retrained)
        by_metric = max(range(len(retrained)), key=lambda rank: retrained[rank]["valid"][METRIC])
        first, chosen = retrained[0]["valid"][METRIC], retrained[pick]["valid"][METRIC]
        rows.append({"file": name, "k": len(retrained), "pick": pick, "pick_metric": by_metric, "first": first,
                     "chosen": chosen, "gain": chosen - first, "test": result["test"][METRIC],
                     "epochs": (len(retrained[0].get("curve") or []), training_epochs(result)),
                     "group": f"{name.rsplit('/', 1)[0]} {result.get('model')}"})
    return rows


def retraining_summary(rows: list[dict]) -> list[list]:
    groups = {}
    for row in rows:
        groups.setdefault((row["group"], row["k"]), []).append(row)
    table = []
    for (group, k), members in sorted(groups.items()):
        later = [r for r in members if r["pick"] > 0]
        gains = [r["gain"] for r in members]
        first_epochs = sum(r["epochs"][0] for r in members)
        epochs = f"{sum(r['epochs'][1] for r in members) / first_epochs:.2f}x" if first_epochs else "not recorded"
        table.append([group, k, len(members), len(members) - len(later), len(later),
                      f"{statistics.fmean(gains):+.4f}", f"{max(gains):+.4f}",
                      sum(r["pick"] != r["pick_metric"] for r in members), epochs])
    return table


def retraining_table(rows: list[dict]) -> list[list]:
    return [[f"`{r['file']}`", r["k"], r["pick"], f"{r['first']:.4f}", f"{r['chosen']:.4f}", f"{r['gain']:+.4f}",
             f"{r['epochs'][0]} / {r['epochs'][1]}", f"{r['test']:.4f}" + ("" if r["pick"] else " (= one retraining)")]
            for r in rows]


def choice_rows(runs: dict) -> tuple[list[list], list[str]]:
    table, notes = [], []
    for number, choice in enumerate(CHOICES, 1):
        matched = pairs(runs, choice)
        if not matched:
            table.append([number, choice.name, 0, "-", "-", "-", "-", "-", "no pairs in these files"])
            continue
        v = verdict(matched)
        agrees = "agrees" if v["valid_pick"] == "taken" else "**disagrees**: validation picks the alternative"
        table.append([number, choice.name, v["pairs"],
                      f"{v['valid'][0]:.4f} / {v['valid'][1]:.4f} ({v['valid_wins']} of {v['pairs']})",
                      f"{v['valid'][0] - v['valid'][1]:+.5f}",
                      f"{v['test'][0]:.4f} / {v['test'][1]:.4f} ({v['test_wins']} of {v['pairs']})",
                      f"{v['epochs'][0]:.0f} / {v['epochs'][1]:.0f}",
                      "taken" if v["test_pick"] == "taken" else "alternative", agrees])
        notes.append(f"{number}. {choice.name}. Decided: {choice.made}."
                     + (f" Caveat: {choice.caveat}." if choice.caveat else "") + "\n\n" + pair_table(matched))
    return table, notes


def pair_table(matched: list) -> str:
    rows = [[" ".join(str(part) for part in pair_key(t)), f"`{a}`", f"`{b}`",
             f"{t['valid'][METRIC]:.4f} / {o['valid'][METRIC]:.4f}", f"{t['test'][METRIC]:.4f} / {o['test'][METRIC]:.4f}"]
            for a, t, b, o in matched]
    return markdown_table(["run", "taken", "alternative", "valid N@20", "test N@20"], rows)


def report(runs: dict, command: str) -> str:
    rows = retraining_rows(runs)
    choices, notes = choice_rows(runs)
    text = header("Validation audit: every committed setting choice redone on validation only (issue 33)", command,
                  "From the committed result files only; nothing trained. N@20 is NDCG@20. 'rank 0' is the search's "
                  "best measured action, the one a single retraining keeps. Not listed: choices every run makes on "
                  "validation itself (BET's kept retraining, MDE's alpha, magnitude pruning's minimum width, CIESS's "
                  "and ESAPN's final action, early stopping), the CPU profiles of ESAPN and CIESS (sized to BET's "
                  "fine-tuning work, not compared on a metric), and the draft profiles plus / plus-fast (issue 33's "
                  "ablations, not decided yet).")
    text += "## 1. Selective retraining, on the same search\n\n"
    text += ("BET keeps the retrained action with the best validation quality (mean of R@ and N@ at 5, 10, 20). "
             "'later wins': runs where a further retraining beat rank 0 on validation; 'gain': the kept action's "
             "validation N@20 less rank 0's (zero where rank 0 won); 'N@20 disagrees': runs where the best "
             "validation N@20 is another rank than the best quality; 'epochs': retraining epochs of all k ÷ rank 0's. "
             "A loser's test N@20 is not recorded, so the test cost of retraining one action is known only where "
             "rank 0 won (none there).\n\n")
    text += markdown_table(["folder, model", "k", "runs", "rank 0 wins", "later wins", "mean gain (valid N@20)", "max gain",
                            "N@20 disagrees", "epochs"], retraining_summary(rows))
    text += "\nPer run:\n\n" + markdown_table(["file", "k", "rank kept (validation)", "rank 0 valid N@20",
                                                 "kept valid N@20", "gain", "epochs rank 0 / all", "test N@20 (kept)"],
                                                retraining_table(rows))
    text += "\n## 2. Settings chosen by comparing runs\n\n"
    text += ("Pairs: the same dataset, model, method, sparsity and seed on both sides. Means over the pairs; in "
             "brackets, pairs where the option taken is higher. 'epochs': final-training epochs (BET: all its "
             "retrainings), a machine-free cost. 'validation-only choice': the option with the higher mean "
             "validation N@20 (a tie keeps the option taken).\n\n")
    text += markdown_table(["#", "choice (option taken)", "pairs", "valid N@20 taken / alternative", "valid difference",
                            "test N@20 taken / alternative", "epochs taken / alternative", "test picks",
                            "validation-only choice"], choices)
    text += "\n### Where each choice was made, and its pairs\n\n" + "\n\n".join(notes) + "\n"
    return text


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default=str(RESULTS), help="the folder of committed result files")
    parser.add_argument("--out", default=None, help="where validation-audit.md goes (default: bench/results)")
    args = parser.parse_args(argv)
    command = "python -m bench.validation_audit" + (f" --results={args.results}" if args.results != str(RESULTS) else "")
    write("validation-audit.md", report(load(Path(args.results)), command), args.out)


if __name__ == "__main__":
    main()
