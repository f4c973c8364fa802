"""Budget-aware action sampling (BET, Qu et al., WSDM 2024, section 3.2, Eqs. 4-6).

For each candidate action and each field (users, items):

1. pick one of four distributions, power law, truncated exponential,
   truncated normal or log-normal, with ``beta ~ U(0, beta_max)`` (Eq. 4);
2. draw one value per row and normalise them into fractions (Eq. 5);
3. split the budget between users and items with ``w ~ U(0, 1)`` and give
   each row ``floor(fraction * share)`` dimensions (Eq. 6), clamped to
   ``[1, d_max]``;
4. give the n-th largest size to the n-th most frequent row (frequencies
   from the training split). The draws come out sorted (order statistics,
   :func:`order_statistics`), so nothing is sorted.

Unlike the authors' code, a draw is then **repaired** so that the action uses
exactly ``min(budget, n_rows * d_max)`` parameters (:func:`fit_to_total`): the
clamp can neither overshoot the budget nor waste it, and no draw is ever
rejected, so there is no redraw loop. All ``m`` candidates are drawn as arrays
and repaired as size histograms (:func:`fit_sorted_to_total`); the only Python
loops run over the four distributions and two fields.

The random numbers are drawn on the calling thread, in one fixed order; what
is computed from them (quantiles, normalisation, flooring, repair, placing
by rank) is row by row, so it runs on a few threads (numpy releases the GIL)
on slices of candidates, and gives the same candidates whatever the number
of threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from recbole_bet.budget import Action, Budget, fit_sorted_to_total, frequency_rank, split_total

DISTRIBUTIONS = ("powerlaw", "exponential", "normal", "lognormal")


def quantile(distribution: str, q: np.ndarray, beta: np.ndarray) -> np.ndarray:
    """Inverse CDF of each distribution at ``q``, one beta per action (row).

    Parameterised as in the paper's section 4.3 and the scipy.stats laws
    ``powerlaw(a=beta)``, ``truncexpon(b=beta)``, ``truncnorm(a=0, b=beta)`` and
    ``lognorm(s=beta)``, in closed form: scipy's generic ``ppf`` gives the same
    values (tested) at 30-200 times the cost.

    Args:
        q (np.ndarray): ``[k, n]`` probabilities in (0, 1).
        beta (np.ndarray): ``[k]`` shape parameters.
    """
    beta = np.asarray(beta, dtype=np.float64)[:, None]
    with np.errstate(divide="ignore", over="ignore", under="ignore", invalid="ignore"):
        if distribution == "powerlaw":
            return q ** (1 / beta)
        if distribution == "exponential":
            return -np.log1p(q * np.expm1(-beta))
        if distribution == "normal":
            lower = special.ndtr(0.0)
            return special.ndtri(lower + q * (special.ndtr(beta) - lower))
        if distribution == "lognormal":
            return np.exp(beta * special.ndtri(q))
    raise ValueError(f"unknown distribution {distribution!r}; allowed: {', '.join(DISTRIBUTIONS)}")


_BELOW_ONE = np.nextafter(np.float32(1), np.float32(0))


def order_statistics(exponentials: np.ndarray) -> np.ndarray:
    """The order statistics of ``n`` uniforms, largest first, from ``[k, n + 1]`` standard exponential draws: ``[k, n]``.

    Normalised sums of exponential spacings have exactly the law of sorted
    uniforms, so no sort is needed: the sizes drawn from ``quantile(q)`` come
    out already ordered, ready to be given by frequency rank.
    """
    cumulative = np.cumsum(exponentials, axis=1)
    n = exponentials.shape[1] - 1
    uniforms = cumulative[:, :n]
    uniforms /= cumulative[:, n:]
    np.minimum(uniforms, _BELOW_ONE, out=uniforms)  # rounding must not reach 1 (lognormal's quantile is inf there)
    return uniforms[:, ::-1]


def standard_exponentials(m: int, n: int, rng: np.random.Generator) -> np.ndarray:
    """The draws :func:`order_statistics` needs for ``m`` rows of ``n``: ``[m, n + 1]`` float32."""
    # float32 halves the cost; its rounding (~1e-7) is far below the resolution of an embedding size.
    return rng.standard_exponential((m, n + 1), dtype=np.float32)


def normalise(values: np.ndarray) -> np.ndarray:
    """Rows of ``values`` as fractions summing to 1 (Eq. 5); a degenerate row (all 0, or not finite) becomes uniform."""
    values = np.asarray(values)
    sums = values.sum(1, keepdims=True, dtype=np.float64).astype(values.dtype)
    good = np.isfinite(sums) & (sums > 0)
    fractions = values / np.where(good, sums, 1.0)
    if not good.all():
        fractions[~good[:, 0]] = 1.0 / values.shape[1]
    return fractions


def field_sizes(
    distribution: str, exponentials: np.ndarray, beta: np.ndarray, total: np.ndarray, rank: np.ndarray, d_max: int
) -> np.ndarray:
    """One field's sizes for a few actions of one distribution, from their random draws (Eqs. 5-6 and the repair).

    Args:
        exponentials (np.ndarray): ``[k, n + 1]``, :func:`standard_exponentials`.
        beta, total (np.ndarray): ``[k]``, each action's beta and the field's share of the budget.
        rank (np.ndarray): ``[n]``, :func:`~recbole_bet.budget.frequency_rank`: who gets the r-th largest size.

    Returns:
        np.ndarray: int16 ``[k, n]``, in ``[1, d_max]``, each row summing to its total.
    """
    fractions = normalise(quantile(distribution, order_statistics(exponentials), beta))  # Eq. 5, largest first
    drawn = np.floor(fractions * total[:, None].astype(fractions.dtype)).astype(np.int32)  # Eq. 6
    sizes = np.empty(drawn.shape, dtype=np.int16)
    sizes[:, rank] = fit_sorted_to_total(drawn, total, d_max)  # the n-th largest to the n-th most frequent row
    return sizes


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity on Linux, else every core): the sampler's default threads."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@dataclass
class Candidates:
    """``m`` actions drawn together.

    Attributes:
        user_sizes (np.ndarray): int16 ``[m, n_users]``.
        item_sizes (np.ndarray): int16 ``[m, n_items]``.
        distributions (list[tuple[str, str]]): (user, item) distribution of each action.
        betas (np.ndarray): float ``[m, 2]``, the user and item beta.
        user_share (np.ndarray): float ``[m]``, w of Eq. 6.
        dtypes (list[str] | None): the value dtype of each action when the search draws precision (``bet_dtypes``),
            else None.
    """

    user_sizes: np.ndarray
    item_sizes: np.ndarray
    d_max: int
    distributions: list = field(default_factory=list)
    betas: np.ndarray | None = None
    user_share: np.ndarray | None = None
    dtypes: list | None = None

    def __len__(self) -> int:
        return len(self.user_sizes)

    def action(self, index: int) -> Action:
        dtype = self.dtypes[index] if self.dtypes is not None else None
        return Action(self.user_sizes[index], self.item_sizes[index], self.d_max, value_dtype=dtype)


class ActionSampler:
    """Draws table-level actions that use a budget exactly (section 3.2).

    Example::

        >>> budget = Budget.from_sparsity(0.9, 128, n_users=943, n_items=1682)
        >>> sampler = ActionSampler(budget, user_frequency, item_frequency)
        >>> candidates = sampler.sample(100, np.random.default_rng(0))
        >>> candidates.user_sizes.shape, int(candidates.action(0).params) == budget.params
        ((100, 943), True)

    Args:
        budget (Budget): the run's budget.
        user_frequency, item_frequency (np.ndarray): training interactions per row.
        beta_max (dict[str, float]): the largest beta of each distribution.
        probabilities (dict[str, float], optional): how often each distribution is
            picked; uniform by default.
        threads (int, optional): threads that turn the draws into sizes (default: the
            cores this process may use). The candidates do not depend on it.
        dtypes (tuple[str], optional): value dtypes to draw from (``bet_dtypes``): each action draws one first, then
            uses exactly what the (byte) budget holds at it (:meth:`Budget.attainable_for`); None: no precision drawn.
    """

    default_beta_max = {"powerlaw": 20.0, "exponential": 5.0, "normal": 20.0, "lognormal": 0.5}

    def __init__(self, budget: Budget, user_frequency, item_frequency, beta_max=None, probabilities=None, threads=None,
                 dtypes=None):
        self.budget = budget
        self.dtypes = tuple(dtypes) if dtypes else None
        self.threads = available_cores() if threads is None else threads
        if self.threads < 1:
            raise ValueError(f"threads={threads}: must be at least 1")
        self.beta_max = dict(self.default_beta_max, **(beta_max or {}))
        self.probabilities = np.array([(probabilities or {}).get(d, 1.0) for d in DISTRIBUTIONS], dtype=float)
        self.probabilities /= self.probabilities.sum()
        self.user_rank = frequency_rank(user_frequency)
        self.item_rank = frequency_rank(item_frequency)

    def sample(self, m: int, rng: np.random.Generator) -> Candidates:
        """Draw ``m`` candidate actions, each using exactly ``budget.attainable`` parameters (at its dtype's, with
        ``dtypes``)."""
        b = self.budget
        dtypes = self.draw_dtypes(m, rng)
        share = rng.uniform(0, 1, size=m)  # w of Eq. 6
        totals = self.split_totals(share, dtypes)
        sizes, picks, betas, pending = [], [], [], []
        with ThreadPoolExecutor(self.threads) as pool:
            for n, rank, total in ((b.n_users, self.user_rank, totals[0]), (b.n_items, self.item_rank, totals[1])):
                choice = rng.choice(len(DISTRIBUTIONS), size=m, p=self.probabilities)
                beta_max = np.array([self.beta_max[DISTRIBUTIONS[c]] for c in choice])
                beta = rng.uniform(0, 1, size=m) * beta_max  # Eq. 4
                sizes.append(np.empty((m, n), dtype=np.int16))
                for k, name in enumerate(DISTRIBUTIONS):
                    rows = np.flatnonzero(choice == k)
                    if not len(rows):
                        continue
                    exponentials = standard_exponentials(len(rows), n, rng)  # drawn here, in this order
                    for part in np.array_split(np.arange(len(rows)), min(self.threads, len(rows))):
                        part = slice(part[0], part[-1] + 1)  # a view of the draws, not a copy
                        job = pool.submit(field_sizes, name, exponentials[part], beta[rows[part]], total[rows[part]], rank, b.d_max)
                        pending.append((sizes[-1], rows[part], job))
                picks.append([DISTRIBUTIONS[c] for c in choice])
                betas.append(beta)
            for out, rows, job in pending:
                out[rows] = job.result()
        return Candidates(
            sizes[0], sizes[1], b.d_max, list(zip(*picks)), np.stack(betas, axis=1), share, dtypes
        )

    def draw_dtypes(self, m: int, rng: np.random.Generator) -> list | None:
        """Each action's value dtype, uniform over ``dtypes`` (no draw for one dtype or none)."""
        if self.dtypes is None:
            return None
        if len(self.dtypes) == 1:
            return [self.dtypes[0]] * m
        return [self.dtypes[k] for k in rng.integers(len(self.dtypes), size=m)]

    def split_totals(self, share: np.ndarray, dtypes: list | None) -> tuple[np.ndarray, np.ndarray]:
        """The users' and items' parameters of each action (Eq. 6): its dtype's attainable total, split by ``share``."""
        b = self.budget
        if dtypes is None:
            return split_total(b.attainable, share, b.n_users, b.n_items, b.d_max)
        users, items = np.empty(len(share), np.int64), np.empty(len(share), np.int64)
        for dtype in dict.fromkeys(dtypes):  # in order of first appearance
            rows = np.array([d == dtype for d in dtypes])
            users[rows], items[rows] = split_total(b.attainable_for(dtype), share[rows], b.n_users, b.n_items, b.d_max)
        return users, items
