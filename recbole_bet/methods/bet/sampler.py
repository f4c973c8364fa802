"""Budget-aware action sampling (BET, Qu et al., WSDM 2024, section 3.2, Eqs. 4-6).

For each candidate action and each field (users, items):

1. pick one of four distributions, power law, truncated exponential,
   truncated normal or log-normal, with ``beta ~ U(0, beta_max)`` (Eq. 4);
2. draw one value per row and normalise them into fractions (Eq. 5);
3. split the budget between users and items with ``w ~ U(0, 1)`` and give
   each row ``floor(fraction * share)`` dimensions (Eq. 6);
4. give the n-th largest size to the n-th most frequent row (frequencies
   from the training split). The draws come out sorted (order statistics,
   :func:`order_statistics`), so nothing is sorted.

The paper is silent on a draw that gives a row more than d_max. Two ways (``bet_overflow``):

- ``repair`` (the default, this package's first behaviour): the sizes are clamped to ``[1, d_max]`` and the
  excess is handed to the other rows, so the draw is never rejected; it skews the widths (many rows at d_max).
- ``redraw`` (the authors' code, ``bet_profile: paper``): the field's draw, its distribution and beta
  included, is thrown away and drawn again with the same w, at most ``bet_overflow_tries`` times (the
  authors' loop has no bound; a draw still above d_max then is repaired, and counted). The authors redraw
  both fields when either overflows; since the fields are drawn independently given w, redrawing only the
  field that overflowed gives the same law of accepted actions, at less cost.

Either way the action is then **repaired** so that it uses exactly ``min(budget, n_rows * d_max)``
parameters (:func:`~recbole_bet.budget.fit_sorted_to_total`): after a redraw this only fixes the
rounding of the floors (and rows at 0 raised to 1); the authors' code can miss the budget both ways.
All ``m`` candidates are drawn as arrays and repaired as size histograms; the only Python loops run
over the members of the family, the two fields and the redraw tries. :attr:`ActionSampler.counts` says
how often each path ran.

Beyond the paper (``bet_profile: plus``): a fifth member, ``equal`` (every row of the field the same width,
the rest of the division to the most frequent rows), weighed with the others by ``bet_distribution_weights``;
and ``stratified`` shares (:func:`share_fractions`), optionally in a narrowed range (``share_range``).

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

DISTRIBUTIONS = ("powerlaw", "exponential", "normal", "lognormal")  # the paper's four (section 3.2)
#: the members a field's sizes are drawn from: the paper's four and ``equal`` (every row of the field the same width,
#: give or take one); ``bet_distribution_weights`` weighs them in this order
FAMILY = DISTRIBUTIONS + ("equal",)
OVERFLOW = ("repair", "redraw")


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


def floors(distribution: str, exponentials: np.ndarray | None, beta: np.ndarray, total: np.ndarray, n: int) -> np.ndarray:
    """One field's sizes before any repair, for a few actions of one family member (Eqs. 5-6), largest first.

    Args:
        distribution (str): a member of :data:`FAMILY`.
        exponentials (np.ndarray | None): ``[k, n + 1]``, :func:`standard_exponentials` (None for ``equal``,
            which draws nothing).
        beta, total (np.ndarray): ``[k]``, each action's beta and the field's share of the budget.
        n (int): the field's rows.

    Returns:
        np.ndarray: int32 ``[k, n]``, non-increasing along each row; they may exceed d_max or sum below the total.
    """
    if distribution == "equal":  # every row the same width: floor(total / n), the rest handed out by the repair
        return np.repeat((np.asarray(total, dtype=np.int64) // n).astype(np.int32)[:, None], n, axis=1)
    fractions = normalise(quantile(distribution, order_statistics(exponentials), beta))  # Eq. 5, largest first
    return np.floor(fractions * total[:, None].astype(fractions.dtype)).astype(np.int32)  # Eq. 6


def place(drawn: np.ndarray, total: np.ndarray, rank: np.ndarray, d_max: int) -> np.ndarray:
    """Repair sorted sizes to ``[1, d_max]`` and their exact total, and give the r-th largest to the r-th most frequent row.

    Args:
        drawn (np.ndarray): int ``[k, n]`` from :func:`floors`.
        total (np.ndarray): ``[k]``, the field's share of the budget.
        rank (np.ndarray): ``[n]``, :func:`~recbole_bet.budget.frequency_rank`: who gets the r-th largest size.

    Returns:
        np.ndarray: int16 ``[k, n]``, in ``[1, d_max]``, each row summing to its total.
    """
    sizes = np.empty(drawn.shape, dtype=np.int16)
    sizes[:, rank] = fit_sorted_to_total(drawn, total, d_max)  # the n-th largest to the n-th most frequent row
    return sizes


def field_sizes(
    distribution: str, exponentials: np.ndarray, beta: np.ndarray, total: np.ndarray, rank: np.ndarray, d_max: int
) -> np.ndarray:
    """One field's sizes for a few actions of one distribution, from their random draws (Eqs. 5-6 and the repair):
    :func:`floors`, then :func:`place`."""
    return place(floors(distribution, exponentials, beta, total, len(rank)), total, rank, d_max)


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


def share_fractions(m: int, rng: np.random.Generator, sampling: str = "uniform") -> np.ndarray:
    """``m`` numbers in [0, 1): independent uniforms (``uniform``, the paper's ``w ~ U(0, 1)``), or one in each of the
    ``m`` strata ``[k/m, (k+1)/m)``, in random order (``stratified``: a batch of candidates covers every share)."""
    unit = rng.uniform(0, 1, size=m)
    if sampling == "stratified":
        unit = (rng.permutation(m) + unit) / m
    return unit


def empty_counts() -> dict:
    """How often each path of the sampler ran, per field: ``draws`` (first draws), ``overflowed`` (first draws with a
    size above d_max), ``redraws`` (draws made again, ``bet_overflow: redraw``), ``fallbacks`` (draws still above
    d_max after the tries, then repaired) and ``repaired`` (draws whose sizes above d_max the repair clamped)."""
    return {field_name: dict.fromkeys(("draws", "overflowed", "redraws", "fallbacks", "repaired"), 0) for field_name in ("users", "items")}


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
        probabilities (dict[str, float], optional): how often each member of :data:`FAMILY` is
            picked; by default the paper's four, uniformly, and never ``equal``.
        threads (int, optional): threads that turn the draws into sizes (default: the
            cores this process may use). The candidates do not depend on it.
        overflow (str): what happens to a field's draw with a size above d_max: ``repair`` (clamped, the
            excess handed to the other rows) or ``redraw`` (drawn again, distribution and beta included, with
            the same share w, as the authors' code does; after ``overflow_tries`` tries, repaired).
        share_sampling (str): ``uniform`` or ``stratified`` (:func:`share_fractions`).
        dtypes (tuple[str], optional): value dtypes to draw from (``bet_dtypes``): each action draws one first, then
            uses exactly what the (byte) budget holds at it (:meth:`Budget.attainable_for`); None: no precision drawn.

    Attributes:
        counts (dict): :func:`empty_counts`, summed over every call of :meth:`sample`.
    """

    default_beta_max = {"powerlaw": 20.0, "exponential": 5.0, "normal": 20.0, "lognormal": 0.5}

    def __init__(self, budget: Budget, user_frequency, item_frequency, beta_max=None, probabilities=None, threads=None,
                 overflow: str = "repair", overflow_tries: int = 100, share_sampling: str = "uniform", dtypes=None):
        self.budget = budget
        self.dtypes = tuple(dtypes) if dtypes else None
        self.threads = available_cores() if threads is None else threads
        if self.threads < 1:
            raise ValueError(f"threads={threads}: must be at least 1")
        if overflow not in OVERFLOW:
            raise ValueError(f"overflow={overflow!r}; allowed: {', '.join(OVERFLOW)}")
        self.overflow, self.overflow_tries, self.share_sampling = overflow, overflow_tries, share_sampling
        self.beta_max = dict(self.default_beta_max, **(beta_max or {}))
        self.member_beta_max = np.array([self.beta_max.get(name, 0.0) for name in FAMILY])  # equal has no beta: 0
        weights = dict(dict.fromkeys(DISTRIBUTIONS, 1.0), equal=0.0) if probabilities is None else probabilities
        self.probabilities = np.array([weights.get(name, 0.0) for name in FAMILY], dtype=float)
        self.probabilities /= self.probabilities.sum()
        self.user_rank = frequency_rank(user_frequency)
        self.item_rank = frequency_rank(item_frequency)
        self.counts = empty_counts()

    def sample(self, m: int, rng: np.random.Generator, share_range: tuple[float, float] = (0.0, 1.0)) -> Candidates:
        """Draw ``m`` candidate actions, each using exactly ``budget.attainable`` parameters (with ``dtypes``: its
        dtype's, :meth:`Budget.attainable_for`). Each action's dtype is drawn first, then its share; without
        ``dtypes`` nothing is drawn for it, so the random numbers are those of the sampler without precision.

        Args:
            share_range (tuple[float, float]): the user share w is drawn in ``[low, high]`` (the paper: [0, 1]).
        """
        b = self.budget
        dtypes = self.draw_dtypes(m, rng)
        share = share_fractions(m, rng, self.share_sampling)  # w of Eq. 6
        low, high = share_range
        if (low, high) != (0.0, 1.0):
            share = low + (high - low) * share
        totals = self.split_totals(share, dtypes)
        sizes, picks, betas = [], [], []
        with ThreadPoolExecutor(self.threads) as pool:
            for name, n, rank, total in (("users", b.n_users, self.user_rank, totals[0]), ("items", b.n_items, self.item_rank, totals[1])):
                choice, beta, drawn = self.draw_field(pool, n, total, rng, self.counts[name])
                sizes.append(self.place_field(pool, drawn, total, rank))
                picks.append([FAMILY[c] for c in choice])
                betas.append(beta)
        return Candidates(sizes[0], sizes[1], b.d_max, list(zip(*picks)), np.stack(betas, axis=1), share, dtypes)

    def draw_field(self, pool, n: int, total: np.ndarray, rng: np.random.Generator, counts: dict):
        """One field's member, beta and sizes before the repair (:func:`floors`) for each action; with
        ``overflow: redraw``, a draw with a size above d_max is drawn again (the share stays), at most
        ``overflow_tries`` times. Counts each path in ``counts``."""
        d_max = self.budget.d_max
        choice, beta, drawn = self.draw_floors(pool, n, total, rng)
        over = np.flatnonzero(drawn[:, 0] > d_max)  # sorted largest first: column 0 is the largest size
        counts["draws"] += len(total)
        counts["overflowed"] += len(over)
        if self.overflow == "redraw":
            for _ in range(self.overflow_tries):
                if not len(over):
                    break
                choice[over], beta[over], drawn[over] = redrawn = self.draw_floors(pool, n, total[over], rng)
                counts["redraws"] += len(over)
                over = over[redrawn[2][:, 0] > d_max]
            counts["fallbacks"] += len(over)
        counts["repaired"] += len(over)
        return choice, beta, drawn

    def draw_floors(self, pool, n: int, total: np.ndarray, rng: np.random.Generator):
        """A member (Eq. 4's distribution) and beta per action, then the floors of Eqs. 5-6 (:func:`floors`). The
        random numbers are drawn here, in one fixed order; the threads only compute."""
        k = len(total)
        choice = rng.choice(len(FAMILY), size=k, p=self.probabilities)
        beta = rng.uniform(0, 1, size=k) * self.member_beta_max[choice]  # Eq. 4
        drawn = np.empty((k, n), dtype=np.int32)
        pending = []
        for j, name in enumerate(FAMILY):
            rows = np.flatnonzero(choice == j)
            if not len(rows):
                continue
            exponentials = None if name == "equal" else standard_exponentials(len(rows), n, rng)  # drawn here, in this order
            for part in np.array_split(np.arange(len(rows)), min(self.threads, len(rows))):
                part = slice(part[0], part[-1] + 1)  # a view of the draws, not a copy
                values = None if exponentials is None else exponentials[part]
                pending.append((rows[part], pool.submit(floors, name, values, beta[rows[part]], total[rows[part]], n)))
        for rows, job in pending:
            drawn[rows] = job.result()
        return choice, beta, drawn

    def place_field(self, pool, drawn: np.ndarray, total: np.ndarray, rank: np.ndarray) -> np.ndarray:
        """:func:`place` on slices of the actions, on the pool's threads."""
        sizes = np.empty(drawn.shape, dtype=np.int16)
        parts = np.array_split(np.arange(len(drawn)), min(self.threads, len(drawn)))
        jobs = [(part, pool.submit(place, drawn[part[0]:part[-1] + 1], total[part], rank, self.budget.d_max)) for part in parts if len(part)]
        for part, job in jobs:
            sizes[part] = job.result()
        return sizes

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
