"""DeepSets fitness predictor (BET, Qu et al., WSDM 2024, section 3.3, Eqs. 7-10; sizes in 4.3).

An action is the collection of sets ``S_d`` of users and items with size ``d``.
Each row is encoded from its normalised training frequency (Eq. 7), each set
by the mean of its rows' codes and ``d / d_max`` (Eq. 8), the action by the
mean over all ``d_max`` sets (Eq. 9), and the fitness decoded from that (Eq. 10).

Items are encoded by their frequency (the authors' code fed the item id).
All ``m`` candidates are scored in one batched pass. Rows with the same field
and frequency have the same code, so a set's sum of codes is a count of its
rows per frequency group times the group codes: one ``bincount`` over
``(action, size, group)`` and one matrix product, rather than a scatter of
``m * n_rows`` code vectors.

When the search draws precision too (``bet_dtypes``), the action embedding is followed by a one-hot of the
action's value dtype, and the decoder reads both.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Largest (actions x sizes x frequency groups) count block built at once.
_BLOCK_BINS = 2**23


def with_dtypes(embeddings: torch.Tensor, dtypes, allowed) -> torch.Tensor:
    """``embeddings`` ``[m, h]`` followed by a one-hot ``[m, len(allowed)]`` of each action's dtype; unchanged when
    the search does not draw precision (``allowed`` None)."""
    if allowed is None:
        return embeddings
    if dtypes is None or isinstance(dtypes, str):
        dtypes = [dtypes] * len(embeddings)
    if len(dtypes) != len(embeddings) or any(d not in allowed for d in dtypes):
        raise ValueError(f"dtypes {list(dtypes)[:3]}... for {len(embeddings)} actions; allowed: {', '.join(allowed)}")
    codes = torch.tensor([[float(d == a) for a in allowed] for d in dtypes], dtype=embeddings.dtype, device=embeddings.device)
    return torch.cat([embeddings, codes], dim=1)


def mlp(*widths: int) -> nn.Sequential:
    """Linear layers with LeakyReLU between them (none after the last)."""
    layers = []
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            layers.append(nn.LeakyReLU())
    return nn.Sequential(*layers)


class FitnessPredictor(nn.Module):
    """``F_Phi``: predicted fitness of table-level actions.

    Example::

        >>> predictor = FitnessPredictor(user_frequency, item_frequency, d_max=128)
        >>> predictor(user_sizes, item_sizes).shape   # [m, n_users], [m, n_items] ->
        torch.Size([m])

    Args:
        user_frequency (array-like): ``[n_users]`` training interactions per user.
        item_frequency (array-like): ``[n_items]`` training interactions per item.
        d_max (int): width of the full table; sizes are in ``[1, d_max]``.
        code_size (int): width of row codes ``q_n`` (16 in the paper).
        hidden_size (int): width of set and action embeddings (64 in the paper).
        dtypes (tuple[str], optional): the value dtypes the search draws (``bet_dtypes``): the action embedding then
            ends with a one-hot of the action's dtype. None: sizes only (the paper).
    """

    def __init__(self, user_frequency, item_frequency, d_max: int, code_size: int = 16, hidden_size: int = 64,
                 dtypes=None):
        super().__init__()
        self.d_max = d_max
        self.dtypes = tuple(dtypes) if dtypes else None
        groups, group_frequency = [], []
        for freq in (user_frequency, item_frequency):
            freq = np.asarray(freq, dtype=np.float64)
            unique, inverse = np.unique(freq, return_inverse=True)
            groups.append(inverse + sum(len(g) for g in group_frequency))
            group_frequency.append(unique / max(freq.max(), 1))  # Eq. 7: f / max f
        self.n_user_groups = len(group_frequency[0])
        self.group_of_row = np.concatenate(groups).astype(np.int32)  # [n_users + n_items], fixed: not a parameter
        self.register_buffer("group_frequency", torch.tensor(np.concatenate(group_frequency), dtype=torch.float32).unsqueeze(1))
        self.user_encoder = mlp(1, code_size, code_size)  # rho_U
        self.item_encoder = mlp(1, code_size, code_size)  # rho_V
        self.size_encoder = mlp(code_size + 1, hidden_size, hidden_size)  # mu
        self.decoder = mlp(hidden_size + len(self.dtypes or ()), hidden_size, 1)  # pi

    @property
    def row_frequency(self) -> torch.Tensor:
        """Normalised frequency of every row, users then items: ``[n_users + n_items]``."""
        return self.group_frequency[torch.from_numpy(self.group_of_row).long(), 0]

    def embed(self, user_sizes, item_sizes, dtypes=None) -> torch.Tensor:
        """Action embeddings ``h_a`` (Eq. 9).

        Args:
            user_sizes: int ``[m, n_users]`` (or ``[n_users]`` for one action).
            item_sizes: int ``[m, n_items]``.
            dtypes (list[str] | str | None): each action's value dtype, read when the predictor has ``dtypes``.

        Returns:
            torch.Tensor: ``[m, hidden_size]`` (``+ len(self.dtypes)`` with precision).
        """
        device = self.group_frequency.device
        user_sizes, item_sizes = np.atleast_2d(np.asarray(user_sizes)), np.atleast_2d(np.asarray(item_sizes))
        m, n_users = user_sizes.shape
        user_freq, item_freq = self.group_frequency.split([self.n_user_groups, len(self.group_frequency) - self.n_user_groups])
        codes = torch.cat([self.user_encoder(user_freq), self.item_encoder(item_freq)])  # [groups, code]
        n_groups = len(codes)
        group_of_row = self.group_of_row

        # Eq. 8: rows of each set S_d counted per frequency group; a set's mean code = counts @ codes / |S_d|.
        # Bins are (action, size, group), built in place in int32 in blocks of actions.
        chunk = max(1, _BLOCK_BINS // (self.d_max * n_groups))
        sums, sizes_of_sets = [], []
        for start in range(0, m, chunk):
            stop = min(start + chunk, m)
            bins = np.empty((stop - start, len(group_of_row)), dtype=np.int32)
            bins[:, :n_users] = user_sizes[start:stop]
            bins[:, n_users:] = item_sizes[start:stop]
            bins += (np.arange(stop - start, dtype=np.int32) * self.d_max - 1)[:, None]
            bins *= n_groups
            bins += group_of_row
            counts = np.bincount(bins.ravel(), minlength=(stop - start) * self.d_max * n_groups)
            counts = torch.from_numpy(counts.astype(np.float32)).to(device).view(-1, n_groups)
            sums.append(counts @ codes)
            sizes_of_sets.append(counts.sum(1, keepdim=True))
        means = torch.cat(sums) / torch.cat(sizes_of_sets).clamp(min=1)  # empty sets have mean 0
        ratio = (torch.arange(1, self.d_max + 1, device=device, dtype=codes.dtype) / self.d_max).repeat(m).unsqueeze(1)
        set_embeddings = self.size_encoder(torch.cat([means, ratio], dim=1))  # s_d, [m * d_max, hidden]
        return with_dtypes(set_embeddings.view(m, self.d_max, -1).mean(1), dtypes, self.dtypes)  # Eq. 9

    def forward(self, user_sizes, item_sizes, dtypes=None) -> torch.Tensor:
        """Predicted fitness ``r_hat`` of each action (Eq. 10): ``[m]``."""
        return self.decoder(self.embed(user_sizes, item_sizes, dtypes)).squeeze(1)


class SizesOnlyPredictor(nn.Module):
    """The "simple fitness prediction" of the paper's Table 2: an MLP that reads only the embedding size of every
    user and item (``d / d_max``, users then items), with neither frequencies nor sets. The same interface as
    :class:`FitnessPredictor` (``embed``, ``decoder``, ``forward``), so the search runs unchanged with it.

    Args:
        user_frequency, item_frequency (array-like): only their lengths are read.
        d_max (int): width of the full table.
        hidden_size (int): width of the action embedding (64, as the DeepSets predictor's).
        dtypes (tuple[str], optional): as :class:`FitnessPredictor`'s.
    """

    def __init__(self, user_frequency, item_frequency, d_max: int, hidden_size: int = 64, dtypes=None):
        super().__init__()
        self.d_max = d_max
        self.dtypes = tuple(dtypes) if dtypes else None
        self.encoder = mlp(len(user_frequency) + len(item_frequency), hidden_size, hidden_size)
        self.decoder = mlp(hidden_size + len(self.dtypes or ()), hidden_size, 1)

    def embed(self, user_sizes, item_sizes, dtypes=None) -> torch.Tensor:
        """``[m, hidden_size]`` embeddings of ``m`` actions (or of one, from 1-d sizes)."""
        sizes = np.concatenate([np.atleast_2d(np.asarray(user_sizes)), np.atleast_2d(np.asarray(item_sizes))], axis=1)
        device = next(self.parameters()).device
        return with_dtypes(self.encoder(torch.from_numpy(sizes.astype(np.float32) / self.d_max).to(device)), dtypes, self.dtypes)

    def forward(self, user_sizes, item_sizes, dtypes=None) -> torch.Tensor:
        return self.decoder(self.embed(user_sizes, item_sizes, dtypes)).squeeze(1)
