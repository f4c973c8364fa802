"""Recommendation quality as BET measures it: ``eval()`` of Qu et al., WSDM 2024, Eq. 13, the mean of Recall@k and
NDCG@k over k in {5, 10, 20}; for a whole run (BET's fitness, the quality of a measured action) and for each user
(the per-row state and reward of CIESS and ESAPN)."""

from __future__ import annotations

import numpy as np
import torch

QUALITY_METRICS = tuple(f"{metric}@{k}" for metric in ("recall", "ndcg") for k in (5, 10, 20))


def quality(result: dict) -> float:
    """``eval()`` of Eq. 13: the mean of Recall@k and NDCG@k over k in {5, 10, 20}, from RecBole's result dict."""
    missing = [name for name in QUALITY_METRICS if name not in result]
    if missing:
        raise KeyError(f"BET's fitness needs {', '.join(missing)}: set metrics: [Recall, NDCG] and topk: [5, 10, 20]")
    return float(np.mean([result[name] for name in QUALITY_METRICS]))


def row_quality(topk: torch.Tensor, ks=(5, 10, 20)) -> torch.Tensor:
    """Each evaluated user's ``eval()`` of Eq. 13 (BET's fitness; CIESS's per-row quality): the mean of
    Recall@k and NDCG@k over ``ks``, from the collector's ``rec.topk`` (hits of the top ``max(ks)``, then
    the number of positives), computed as RecBole's metrics are, so their mean over users is RecBole's.

    Args:
        topk (torch.Tensor): int ``[users, max(ks) + 1]``.

    Returns:
        torch.Tensor: float64 ``[users]``.
    """
    hits, positives = topk[:, :-1].double(), topk[:, -1].double()
    discounts = 1.0 / torch.log2(torch.arange(2, hits.shape[1] + 2, dtype=torch.float64))
    ideal = torch.cumsum(discounts, 0)
    parts = []
    for k in ks:
        parts.append(hits[:, :k].sum(1) / positives)
        parts.append((hits[:, :k] * discounts[:k]).sum(1) / ideal[positives.clamp(max=k).long() - 1])
    return torch.stack(parts).mean(0)
