"""BET's keys (``bet_``), checked once: Qu et al., "Budgeted Embedding Table For Recommender Systems", WSDM 2024.

The defaults are the paper's schedule (``properties/method/bet.yaml``); a profile of ``properties/method/bet/`` lays
another under the user's keys (``bet_profile``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recbole_bet.budget import VALUE_DTYPES
from recbole_bet.errors import ConfigError
from recbole_bet.methods.bet.sampler import FAMILY
from recbole_bet.settings import CheckedSettings, boolean, choice, choice_list, integer, real, real_list


@dataclass(frozen=True)
class BetSettings(CheckedSettings):
    """BET's keys (``bet_``), checked once; defaults in ``properties/method/bet.yaml``.

    Attributes:
        bet_iterations (int): T, search iterations (paper: 50).
        bet_candidates (int): m, actions drawn per iteration (paper: 100).
        bet_predictor_updates (int): N, predictor updates per iteration (paper: 2).
        bet_predictor_batch (int): population records per predictor update.
        bet_predictor_lr (float): Adam learning rate of the fitness predictor.
        bet_finetune_epochs (int): h, fine-tuning epochs per measured action (10; NGCF 15).
        bet_finetune_lr (float): fine-tuning learning rate (paper: 0.03) ...
        bet_finetune_lr_decay (float): ... multiplied by this (0.98) ...
        bet_finetune_lr_step (int): ... every this many batches (200).
        bet_retrain_top (int): k, measured actions retrained from scratch at the end (paper: 5).
        bet_pretrain_stopping_step (int | None): patience of the pretraining (line 2), in validations;
            None: RecBole's ``stopping_step``, as for every other training.
        bet_retrain_stopping_step (int | None): patience of each selective retraining (line 22); None: RecBole's.
        bet_selection (str): ``hybrid``, strategies I/II/III in turn (the paper), or ``random``, strategy II only
            (the paper's Table 2 variant "random selection").
        bet_predictor (str): ``deepsets``, the fitness predictor of section 3.3, or ``simple``, an MLP that reads
            only the sizes of every user and item (Table 2's "simple fitness prediction").
        bet_share_population (bool): in a run of several budgets, train each later budget's fitness predictor
            first on the actions the earlier budgets measured (their sizes and fitness; the predictor reads no ids).
        bet_beta_max_* (float): beta_max of each sampling distribution (20, 5, 20, 0.5).
        bet_retrain_from (str): ``scratch`` (the paper: fresh initial weights) or ``pretrained``
            (warm start from the pretrained full table under the action's masks).
        bet_overflow (str): a field's draw with a size above d_max (the paper is silent): ``repair``, clamp it and
            hand the excess to the other rows (the default; this package's first behaviour), or ``redraw``, draw
            it again with the same user share, as the authors' code does (``bet_profile: paper``).
        bet_overflow_tries (int): redraws of one field's draw at most (``redraw``); a draw still above d_max then is
            repaired, and counted in the result file's ``bet.sampler.<field>.fallbacks``.
        bet_distribution_weights (list[float]): how often each member of the family is drawn, in the order power
            law, truncated exponential, truncated normal, log-normal, equal widths (every row of a field the same
            width); the paper's four uniformly by default, never ``equal``.
        bet_share_sampling (str): the user share w of a batch of m candidates: ``uniform``, m independent draws
            (the paper), or ``stratified``, one in each of the m strata of the range.
        bet_share_narrow (float): 0 (the paper): w over [0, 1] throughout. s > 0: at iteration t of T, w is drawn in
            a window of width ``1 - s * t / T`` around the mean w of the 3 best measured actions (kept inside [0, 1]).
        bet_remeasure_top (int): after the search, fine-tune and measure the k best measured actions again
            (``bet_remeasure_repeats`` times each) and rank them by their mean fitness; the retraining then takes
            its top from these k. 0: off (the paper).
        bet_remeasure_repeats (int): extra measurements of each re-measured action.
        bet_pretrain_prefix (str): the pretraining (line 2): ``full``, every row at d_max (the paper), or
            ``random``, every row cut to a random prefix width in [1, d_max] at each training batch (OptEmbed's
            supernet), so that the prefixes an action keeps are meaningful before its fine-tuning.
        bet_retrain_rank_epochs (int): 0 (the paper): each of the top ``bet_retrain_top`` is trained to convergence.
            E > 0: each is first trained E epochs from its start, and only the best of them on validation goes on
            from there to convergence (one by one, also with ``ray``).
        bet_profile (str | None): a schedule from ``properties/method/bet/`` laid under the user's keys.
        bet_dtypes (tuple[str] | None): search precision with sizes (``budget_unit: bytes``): each candidate draws
            one of these value dtypes, then its sizes under what the byte budget holds at that precision, and the
            fitness predictor reads the dtype; None: every action at the run's ``value_dtype`` (the paper's search).
    """

    prefix = "bet_"

    bet_iterations: int = field(default=50, metadata=integer(1))
    bet_candidates: int = field(default=100, metadata=integer(1))
    bet_predictor_updates: int = field(default=2, metadata=integer(0))
    bet_predictor_batch: int = field(default=16, metadata=integer(1))
    bet_predictor_lr: float = field(default=0.001, metadata=real(0))
    bet_finetune_epochs: int = field(default=10, metadata=integer(0))
    bet_finetune_lr: float = field(default=0.03, metadata=real(0))
    bet_finetune_lr_decay: float = field(default=0.98, metadata=real(0, 1))
    bet_finetune_lr_step: int = field(default=200, metadata=integer(1))
    bet_retrain_top: int = field(default=5, metadata=integer(1))
    bet_pretrain_stopping_step: int | None = field(default=None, metadata=integer(1, optional=True))
    bet_retrain_stopping_step: int | None = field(default=None, metadata=integer(1, optional=True))
    bet_share_population: bool = field(default=False, metadata=boolean())
    bet_selection: str = field(default="hybrid", metadata=choice("hybrid", "random"))
    bet_predictor: str = field(default="deepsets", metadata=choice("deepsets", "simple"))
    bet_beta_max_powerlaw: float = field(default=20.0, metadata=real(0))
    bet_beta_max_exponential: float = field(default=5.0, metadata=real(0))
    bet_beta_max_normal: float = field(default=20.0, metadata=real(0))
    bet_beta_max_lognormal: float = field(default=0.5, metadata=real(0))
    bet_retrain_from: str = field(default="scratch", metadata=choice("scratch", "pretrained"))
    bet_overflow: str = field(default="repair", metadata=choice("repair", "redraw"))
    bet_overflow_tries: int = field(default=100, metadata=integer(1))
    bet_distribution_weights: tuple = field(default=(1.0, 1.0, 1.0, 1.0, 0.0), metadata=real_list(0))
    bet_share_sampling: str = field(default="uniform", metadata=choice("uniform", "stratified"))
    bet_share_narrow: float = field(default=0.0, metadata=real(0, 1, low_open=False))
    bet_remeasure_top: int = field(default=0, metadata=integer(0))
    bet_remeasure_repeats: int = field(default=1, metadata=integer(1))
    bet_pretrain_prefix: str = field(default="full", metadata=choice("full", "random"))
    bet_retrain_rank_epochs: int = field(default=0, metadata=integer(0))
    bet_profile: str | None = None
    bet_dtypes: tuple | None = field(default=None, metadata=choice_list(*VALUE_DTYPES, optional=True))

    def __post_init__(self):
        super().__post_init__()
        weights = self.bet_distribution_weights
        if len(weights) != len(FAMILY) or not sum(weights) > 0:
            raise ConfigError(f"bet_distribution_weights={list(weights)}; allowed: {len(FAMILY)} numbers >= 0, not all 0, "
                              f"for {', '.join(FAMILY)}")

    @property
    def distribution_weights(self) -> dict[str, float]:
        return dict(zip(FAMILY, self.bet_distribution_weights))

    @property
    def beta_max(self) -> dict[str, float]:
        return {name: getattr(self, f"bet_beta_max_{name}") for name in ("powerlaw", "exponential", "normal", "lognormal")}
