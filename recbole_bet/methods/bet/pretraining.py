"""BET's pretraining (Algorithm 1, line 2) with random prefix widths (``bet_pretrain_prefix: random``), beyond the paper.

The paper pretrains the full table, then measures an action by masking it to the action's prefixes and fine-tuning
``h`` epochs. A table trained at full width spreads what a row knows over all its columns, so a short prefix of it is
a poor start, and ``h`` short epochs must repair that before the measure means anything. OptEmbed's supernet
(Lyu et al., CIKM 2022) trains each row cut to a random prefix width at every step, so that every prefix is a usable
embedding. Here the same idea serves only Algorithm 1's line 2: while training, every row of every budgeted table
keeps a prefix of width uniform in ``[1, d_max]``, drawn again after each optimiser step from a generator of its
own; validation (eval mode) reads every column, so ``q_full`` keeps its meaning. Nothing else of the search changes.
"""

from __future__ import annotations

from contextlib import contextmanager

import torch

from recbole_bet.embedding import MaskedEmbedding, swap_tables


class RandomPrefixEmbedding(MaskedEmbedding):
    """A table that, while training, cuts row ``n`` to its first ``widths[n]`` columns (:meth:`draw_widths`);
    shares ``full_weight`` with the table it stands in for, whose state-dict keys it keeps."""

    def __init__(self, table: MaskedEmbedding):
        super().__init__(table.num_embeddings, table.embedding_dim, weight=table.full_weight)
        self.full_weight = table.full_weight  # shared: what is trained here is the table's
        self.to(table.full_weight.device)
        self.widths = None  # int [rows, 1] while training
        self.width_mask = None

    def draw_widths(self, generator: torch.Generator) -> None:
        """A width per row, uniform in ``[1, d_max]``, for the next training step."""
        self.set_widths(torch.randint(1, self.embedding_dim + 1, (self.num_embeddings, 1), generator=generator))

    def set_widths(self, widths: torch.Tensor) -> None:
        self.widths = widths.cpu()
        columns = torch.arange(self.embedding_dim, device=self.full_weight.device)
        self.width_mask = (columns < widths.to(self.full_weight.device)).to(self.full_weight.dtype)

    @property
    def cut(self) -> bool:
        return self.training and self.width_mask is not None

    @property
    def weight(self) -> torch.Tensor:
        return self.full_weight * self.width_mask if self.cut else self.full_weight

    def masked_columns(self, width: int) -> torch.Tensor:
        return self.weight[:, :width]

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        rows = self.full_weight[idx]
        return rows * self.width_mask[idx] if self.cut else rows


class PrefixStreams:
    """What a random-prefix pretraining carries from one epoch to the next beside the model, its optimiser and the
    global random streams: the width generator and the widths drawn for the next step (``fit_phase(carried=...)``,
    so that a killed pretraining goes on as it would have)."""

    def __init__(self, generator: torch.Generator, tables: dict):
        self.generator, self.tables = generator, tables

    def state_dict(self) -> dict:
        return {"generator": self.generator.get_state(), "widths": {name: t.widths for name, t in self.tables.items()}}

    def load_state_dict(self, state: dict) -> None:
        self.generator.set_state(state["generator"])
        for name, table in self.tables.items():
            table.set_widths(state["widths"][name])


@contextmanager
def random_prefixes(model, optimizer: torch.optim.Optimizer, seed: int):
    """Within the block, ``model``'s budgeted tables train at random prefix widths, drawn again after each step of
    ``optimizer``; yields the :class:`PrefixStreams` to carry. The model's own tables are back after the block, holding
    what was trained."""
    originals = {name: model.get_submodule(name) for name in model.budget_tables}
    tables = {name: RandomPrefixEmbedding(table) for name, table in originals.items()}
    generator = torch.Generator().manual_seed(seed)

    def draw(*_):
        for table in tables.values():
            table.draw_widths(generator)

    draw()  # the first step's widths
    swap_tables(model, tables)
    hook = optimizer.register_step_post_hook(draw)
    try:
        yield PrefixStreams(generator, tables)
    finally:
        hook.remove()
        swap_tables(model, originals)
