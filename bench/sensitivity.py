"""The paper's Figures 4-6 on our protocol: BET's test quality against m (candidates per iteration) and against T
(selective retraining of the population as it stood after t iterations), and the fitness predictor's loss per
iteration.

    python -m bench.sensitivity --dataset=gowalla-s --data_path=../shared/datasets --sparsity=0.9 --seed=0 \\
        --candidates=20,40,60,80,100 --every=5 \\
        --keys="--bet_profile=fast --bet_retrain_from=scratch --bet_retrain_stopping_step=20"

(the committed figure's command: the headline's BET, retrained from scratch; the default ``--keys`` is the fast
profile as it is, retrained from the pretrained table)

* m: one BET run per value of ``--candidates`` (``--bet_candidates=m``), everything else as ``--keys``.
* T: from the run with the largest m, the top-k of its population's first t records (t = every, 2 every, ..., T)
  are retrained as the run retrains (``BetTrainer.selective_retrain``, the same seeds and start), the best on
  validation is tested. At t = T this is the run itself.
* the predictor's loss: each run's per-iteration ``predictor_loss`` (its search records).

Runs and retrainings land in ``bench/results/sensitivity/runs/`` and are skipped when there; the table goes to
``bench/results/sensitivity-<dataset>-<sparsity>.md`` and the figure to ``...png``.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from bench.common import RESULTS, header, markdown_table

ROOT = Path(__file__).resolve().parents[1]
OUT = RESULTS / "sensitivity" / "runs"


def run_bet(args, m: int) -> dict:
    """The BET run with ``m`` candidates per iteration (read back if it ran before)."""
    name = f"{args.dataset}-{args.sparsity}-s{args.seed}-m{m}"
    result_file = OUT / f"{name}.json"
    if not result_file.is_file():
        OUT.mkdir(parents=True, exist_ok=True)
        command = [sys.executable, str(ROOT / "run_recbole_bet.py"), "--model=LightGCN", f"--dataset={args.dataset}",
                   f"--data_path={Path(args.data_path).resolve()}", "--method=bet", f"--sparsity={args.sparsity}",
                   f"--seed={args.seed}", f"--bet_candidates={m}", "--show_progress=False", f"--result_file={result_file}",
                   f"--checkpoint_dir={OUT / 'saved' / name}", *args.keys.split()]
        print("running", " ".join(command), flush=True)
        subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    return json.loads(result_file.read_text())


def population_of(result: dict):
    """The run's measured actions in the order they were measured, from ``<run_name>-population.npz``."""
    from recbole_bet.budget import Action
    from recbole_bet.methods.bet.search import Population

    run_name = result["bet"]["retrained"][0]["checkpoint"].rsplit("-retrain", 1)[0]
    saved = np.load(f"{run_name}-population.npz")
    d_max = result["d_max"]
    records = json.loads(str(saved["records"]))
    actions = [Action(u.astype(np.int16), i.astype(np.int16), d_max) for u, i in zip(saved["user_sizes"], saved["item_sizes"])]
    return Population(actions, records), run_name


def retrain_prefix(args, result: dict, t: int) -> dict:
    """Selective retraining of the population as it stood after ``t`` iterations, as the run does it; the winner's
    test metrics (read back if computed before)."""
    target = OUT / f"{args.dataset}-{args.sparsity}-s{args.seed}-m{max(args.m)}-t{t}.json"
    if target.is_file():
        return json.loads(target.read_text())
    from recbole.utils import init_seed

    from bench.common import recbole_data
    from recbole_bet.budget import Budget
    from recbole_bet.model import get_model
    from recbole_bet.quick_start import training_frequencies
    from recbole_bet.methods.bet.settings import BetSettings
    from recbole_bet.methods.bet.search import BetTrainer, Population
    from recbole_bet.trainer import load_checkpoint

    population, run_name = population_of(result)
    keys = dict(arg.lstrip("-").split("=", 1) for arg in args.keys.split())
    config, train, valid, test = recbole_data("LightGCN", args.dataset, str(Path(args.data_path).resolve()),
                                              seed=args.seed, bet_candidates=max(args.m), sparsity=args.sparsity,
                                              checkpoint_dir=str(OUT / "saved" / "tcurve"), **keys)
    init_seed(config["seed"], config["reproducibility"])  # as the run: the seed's initial weights
    for loader in (train, valid, test):
        loader.generator.manual_seed(config["seed"])
    model = get_model("LightGCN")(config, train._dataset).to(config["device"])
    users, items = training_frequencies(train._dataset, config)
    budget = Budget.from_sparsity(args.sparsity, model.d_max, len(users), len(items))
    trainer = BetTrainer(config, model, BetSettings.from_config(config), budget, users, items, np.random.default_rng(args.seed))
    trainer.pretrained_state = load_checkpoint(f"{run_name}-pretrain.pth")["state_dict"]
    prefix = Population(population.actions[:t], population.records[:t])
    index, checkpoint, valid_result, _ = trainer.selective_retrain(prefix, train, valid)
    model.apply_action(prefix.actions[index])
    test_result = trainer.evaluate(test, model_file=checkpoint)
    record = {"t": t, "index": int(index), "valid": dict(valid_result), "test": {k: float(v) for k, v in test_result.items()}}
    target.write_text(json.dumps(record, indent=1))
    return record


def figure(path: Path, by_m: dict, by_t: list, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(15, 4))
    ms = sorted(by_m)
    for metric, label in (("recall@20", "R@20"), ("ndcg@20", "N@20")):
        axes[0].plot(ms, [by_m[m]["test"][metric] for m in ms], marker="o", label=label)
        axes[1].plot([r["t"] for r in by_t], [r["test"][metric] for r in by_t], marker="o", label=label)
    axes[0].set(xlabel="m, candidates per iteration", ylabel="test", title="against m (Figure 4)")
    axes[1].set(xlabel="t, iterations before the selective retraining", ylabel="test", title="against T (Figure 5)")
    for m in ms:
        losses = [r["predictor_loss"] for r in by_m[m]["search"]]
        axes[2].plot(range(len(losses)), losses, label=f"m={m}")
    axes[2].set(xlabel="iteration", ylabel="MSE", yscale="log", title="fitness predictor's loss (Figure 6)")
    for ax in axes:
        ax.legend()
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--sparsity", type=float, default=0.9)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--candidates", default="20,40,60,80,100", help="values of m")
    parser.add_argument("--every", type=int, default=5, help="retrain the population after every this many iterations")
    parser.add_argument("--keys", default="--bet_profile=fast", help="more --key=value for every run")
    args = parser.parse_args(argv)
    try:
        args.m = sorted(int(m) for m in args.candidates.split(","))
    except ValueError:
        parser.error(f"--candidates={args.candidates}: comma-separated integers, e.g. 20,40,60,80,100")
    if args.every < 1:
        parser.error(f"--every={args.every}: a positive number of iterations")
    by_m = {m: run_bet(args, m) for m in args.m}
    largest = by_m[max(args.m)]
    iterations = len(largest["search"])
    by_t = [retrain_prefix(args, largest, t) for t in range(args.every, iterations + 1, args.every)]
    title = f"BET sensitivity, {args.dataset}, LightGCN, sparsity {args.sparsity}, seed {args.seed}"
    text = header(title, "python -m bench.sensitivity " + " ".join(argv if argv is not None else sys.argv[1:]))
    text += "## Against m\n\n" + markdown_table(
        ["m", "test R@20", "test N@20", "best fitness", "final predictor loss", "s"],
        [[m, f"{r['test']['recall@20']:.4f}", f"{r['test']['ndcg@20']:.4f}", f"{max(x['measured'] for x in r['search']):.4f}",
          f"{r['search'][-1]['predictor_loss']:.5f}", f"{r['seconds']:.0f}"] for m, r in sorted(by_m.items())])
    text += f"\n## Against T (m = {max(args.m)})\n\n" + markdown_table(
        ["t", "retrained action (record)", "test R@20", "test N@20"],
        [[r["t"], r["index"], f"{r['test']['recall@20']:.4f}", f"{r['test']['ndcg@20']:.4f}"] for r in by_t])
    stem = f"sensitivity-{args.dataset}-{args.sparsity}"
    (RESULTS / f"{stem}.md").write_text(text)
    figure(RESULTS / f"{stem}.png", by_m, by_t, title)
    print(text)
    print(f"written to {RESULTS / stem}.md and .png")


if __name__ == "__main__":
    main()
