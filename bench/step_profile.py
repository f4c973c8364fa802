"""Where one training step of our LightGCN / NGCF spends its time, by kind of operation.

    python -m bench.step_profile --dataset=gowalla-s --data_path=../shared/datasets --models=LightGCN,NGCF

For each model, with the full table and masked to equal sizes at sparsity 0.9, a
few training batches (loss, backward, Adam step) run under ``torch.profiler``;
each operator's own CPU time is put in one of the groups below. It tells which
lever is left: if the products are a small share of a step, a faster sparse
or dense product cannot make the step much faster.
"""

from __future__ import annotations

import argparse
from collections import Counter

import torch
from torch.profiler import profile

from bench.common import header, markdown_table, mask_to_equal_sizes, recbole_data, write
from recbole_bet.model import get_model
from recbole_bet.quick_start import training_frequencies

#: operator -> group; anything else is "other"
GROUPS = {
    "products (sparse and dense)": {"aten::mm", "aten::addmm", "aten::_sparse_mm", "aten::bmm", "aten::matmul"},
    "dropout masks (random draws)": {"aten::bernoulli_", "aten::uniform_", "aten::normal_"},
    "concatenation, copies, indexing": {
        "aten::cat", "aten::copy_", "aten::index", "aten::_index_put_impl_", "aten::index_select", "aten::embedding_dense_backward",
        "aten::slice_backward", "aten::clone", "aten::contiguous",
    },
    "elementwise (incl. Adam's update)": {
        "aten::mul", "aten::mul_", "aten::div", "aten::div_", "aten::add", "aten::add_", "aten::sub", "aten::neg", "aten::sqrt",
        "aten::fill_", "aten::zero_", "aten::masked_fill_", "aten::leaky_relu", "aten::leaky_relu_backward", "aten::lerp_",
        "aten::addcdiv_", "aten::addcmul_", "aten::clamp_min", "aten::clamp", "aten::where", "aten::sigmoid",
        "aten::sigmoid_backward", "aten::log", "aten::exp", "aten::pow", "aten::linalg_vector_norm", "aten::sum", "aten::mean",
        "aten::norm", "aten::softplus", "aten::softplus_backward", "aten::expand_as", "aten::ge", "aten::gt", "aten::lt",
    },
}


def group_of(name: str) -> str:
    return next((group for group, names in GROUPS.items() if name in names), "other")


def profile_steps(model, batches) -> tuple[Counter, float]:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)

    def step(batch):
        optimizer.zero_grad()
        model.calculate_loss(batch).backward()
        optimizer.step()

    step(batches[0])  # warm-up: first-call allocations
    with profile() as prof:
        for batch in batches[1:]:
            step(batch)
    shares = Counter()
    for event in prof.key_averages():
        shares[group_of(event.key)] += event.self_cpu_time_total / 1e6
    return shares, sum(shares.values()) / (len(batches) - 1)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="gowalla-s")
    parser.add_argument("--data_path", default="../shared/datasets")
    parser.add_argument("--models", default="LightGCN,NGCF")
    parser.add_argument("--batches", type=int, default=6, help="profiled batches (after one warm-up batch)")
    args = parser.parse_args(argv)
    if args.batches < 1:
        parser.error(f"--batches={args.batches}: must be at least 1")

    columns = list(GROUPS) + ["other"]
    rows = []
    for name in args.models.split(","):
        config, train, _, _ = recbole_data(name, args.dataset, args.data_path)
        users, items = training_frequencies(train._dataset, config)
        batches = [batch for _, batch in zip(range(args.batches + 1), train)]
        for label, sparsity in (("full", None), ("ES 0.9", 0.9)):
            torch.manual_seed(config["seed"])
            model = get_model(name)(config, train._dataset)
            if sparsity:
                mask_to_equal_sizes(model, users, items, sparsity)
            shares, per_step = profile_steps(model, batches)
            total = sum(shares.values())
            rows.append([name, label, f"{per_step * 1000:.0f}"] + [f"{100 * shares[c] / total:.0f}%" for c in columns])

    text = header(
        f"One training step by kind of operation ({args.dataset})",
        f"python -m bench.step_profile --dataset={args.dataset} --data_path={args.data_path} --models={args.models}",
        f"torch.profiler over {args.batches} training batches (loss, backward, Adam step; batch {config['train_batch_size']}) "
        "after one warm-up batch; each column is the share of the operators' own CPU time. The ms column is "
        "profiled time per step, which includes the profiler's overhead.",
    ) + markdown_table(["model", "table", "ms / step"] + columns, rows)
    write(f"step_profile-{args.dataset}.md", text)


if __name__ == "__main__":
    main()
