"""DeepSets fitness predictor (BET, Qu et al., WSDM 2024, section 3.3, Eqs. 7-10; sizes in 4.3).

An action is the collection of sets ``S_d`` of users and items with size ``d``.
Each row is encoded from its normalised training frequency (Eq. 7), each set
by the mean of its rows' codes and ``d / d_max`` (Eq. 8), the action by the
mean over all ``d_max`` sets (Eq. 9), and the fitness decoded from that (Eq. 10).

Items are encoded by their frequency (the authors' code fed the item id).
All ``m`` candidates are scored in one batched pass: the set means are
``index_add`` scatters over ``action * d_max + (d - 1)`` buckets.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

# Largest [actions x rows, code] block scattered at once (floats).
_BLOCK_FLOATS = 2**24


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
    """

    def __init__(self, user_frequency, item_frequency, d_max: int, code_size: int = 16, hidden_size: int = 64):
        super().__init__()
        self.d_max = d_max
        for name, freq in (("user_frequency", user_frequency), ("item_frequency", item_frequency)):
            freq = torch.as_tensor(np.asarray(freq), dtype=torch.float32)
            self.register_buffer(name, (freq / freq.max().clamp(min=1)).unsqueeze(1))  # Eq. 7: f / max f
        self.user_encoder = mlp(1, code_size, code_size)  # rho_U
        self.item_encoder = mlp(1, code_size, code_size)  # rho_V
        self.size_encoder = mlp(code_size + 1, hidden_size, hidden_size)  # mu
        self.decoder = mlp(hidden_size, hidden_size, 1)  # pi

    def embed(self, user_sizes, item_sizes) -> torch.Tensor:
        """Action embeddings ``h_a`` (Eq. 9).

        Args:
            user_sizes: int ``[m, n_users]`` (or ``[n_users]`` for one action).
            item_sizes: int ``[m, n_items]``.

        Returns:
            torch.Tensor: ``[m, hidden_size]``.
        """
        device = self.user_frequency.device
        sizes = torch.cat(
            [torch.as_tensor(np.asarray(user_sizes)), torch.as_tensor(np.asarray(item_sizes))], dim=-1
        ).to(device=device, dtype=torch.long)
        if sizes.dim() == 1:
            sizes = sizes.unsqueeze(0)
        m, n = sizes.shape
        codes = torch.cat([self.user_encoder(self.user_frequency), self.item_encoder(self.item_frequency)])  # [n, code]

        # Eq. 8: mean code of each set S_d, scattered into m * d_max buckets.
        buckets = sizes - 1 + self.d_max * torch.arange(m, device=device).unsqueeze(1)  # [m, n]
        sums = codes.new_zeros(m * self.d_max, codes.shape[1])
        chunk = max(1, _BLOCK_FLOATS // (n * codes.shape[1]))
        for start in range(0, m, chunk):
            block = buckets[start : start + chunk]
            sums = sums.index_add(0, block.reshape(-1), codes.repeat(len(block), 1))
        counts = torch.bincount(buckets.reshape(-1), minlength=m * self.d_max).clamp(min=1).unsqueeze(1)
        means = sums / counts  # empty sets have mean 0
        ratio = (torch.arange(1, self.d_max + 1, device=device, dtype=codes.dtype) / self.d_max).repeat(m).unsqueeze(1)
        set_embeddings = self.size_encoder(torch.cat([means, ratio], dim=1))  # s_d, [m * d_max, hidden]
        return set_embeddings.view(m, self.d_max, -1).mean(1)  # Eq. 9

    def forward(self, user_sizes, item_sizes) -> torch.Tensor:
        """Predicted fitness ``r_hat`` of each action (Eq. 10): ``[m]``."""
        return self.decoder(self.embed(user_sizes, item_sizes)).squeeze(1)
