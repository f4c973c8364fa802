"""Does BET's fitness predictor rank actions it has not seen? Held-out Spearman against predictor updates per iteration.

    python -m bench.predictor_updates --dataset=gowalla-s --data_path=../shared/datasets \
        --populations='bench/out/issue33/*/*-population.npz'

Offline, on the measured actions of finished searches (their ``*-population.npz``; searches of one dataset, budget and
pretraining, so that their fitness is comparable). For each seed, a quarter of the actions is held out; a fresh
DeepSets predictor (section 3.3) is trained as a search trains it, one action at a time in a random order, with N
Adam steps of ``--batch`` records after each; then Spearman's rho between its prediction and the measured fitness of
the held-out actions. The paper's N is 2; with T=20 iterations that is 40 steps in all.
"""

from __future__ import annotations

import argparse
import glob

import numpy as np
import torch
from scipy import stats

from bench.common import header, markdown_table, recbole_data, write
from recbole_bet.methods.bet.predictor import FitnessPredictor
from recbole_bet.quick_start import training_frequencies


def held_out_rho(users, items, sizes, fitness, steps: int, lr: float, batch: int, seed: int) -> float:
    user_sizes, item_sizes = sizes
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(fitness))
    test, seen_order = order[: len(fitness) // 4], order[len(fitness) // 4:]
    torch.manual_seed(seed)
    predictor = FitnessPredictor(users, items, 128)
    optimizer = torch.optim.Adam(predictor.parameters(), lr=lr)
    for k in range(1, len(seen_order) + 1):  # one more measured action per iteration, then N steps
        for _ in range(steps):
            picks = seen_order[:k][rng.integers(k, size=min(batch, k))]
            target = torch.tensor(fitness[picks], dtype=torch.float32)
            loss = torch.nn.functional.mse_loss(predictor(user_sizes[picks], item_sizes[picks]), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    with torch.no_grad():
        predicted = predictor(user_sizes[test], item_sizes[test]).numpy()
    return float(stats.spearmanr(predicted, fitness[test]).statistic)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--populations", default="bench/out/issue33/*/*-population.npz")
    parser.add_argument("--updates", default="2,20,50")
    parser.add_argument("--lrs", default="0.001,0.01")
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seeds", type=int, default=5)
    args = parser.parse_args(argv)

    config, train, _, _ = recbole_data("LightGCN", args.dataset, args.data_path)
    users, items = training_frequencies(train._dataset, config)
    files = sorted(glob.glob(args.populations))
    loaded = [np.load(f) for f in files]
    sizes = (np.concatenate([z["user_sizes"] for z in loaded]).astype(np.int16), np.concatenate([z["item_sizes"] for z in loaded]).astype(np.int16))
    fitness = np.concatenate([z["measured"] for z in loaded])
    rows = []
    for steps in map(int, args.updates.split(",")):
        for lr in map(float, args.lrs.split(",")):
            rhos = [held_out_rho(users, items, sizes, fitness, steps, lr, args.batch, seed) for seed in range(args.seeds)]
            rows.append([steps, lr, f"{np.mean(rhos):.2f} ± {np.std(rhos):.2f}", " ".join(f"{r:.2f}" for r in rhos)])
    text = header(
        f"BET's fitness predictor: held-out Spearman against updates per iteration ({args.dataset})",
        f"python -m bench.predictor_updates --dataset={args.dataset} --data_path={args.data_path} --populations='{args.populations}'",
        f"{len(fitness)} measured actions from {len(files)} searches ({', '.join(f.split('/')[-2] for f in files)}); fitness "
        f"{fitness.min():.3f}-{fitness.max():.3f}. {args.seeds} seeds, each holding out {len(fitness) // 4} actions; batch {args.batch}.",
    ) + markdown_table(["N (updates per iteration)", "Adam lr", "held-out rho (mean ± std)", "per seed"], rows)
    write(f"predictor_updates-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
