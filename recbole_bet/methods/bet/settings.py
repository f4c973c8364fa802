"""BET's keys (``bet_``), checked once: Qu et al., "Budgeted Embedding Table For Recommender Systems", WSDM 2024.

The defaults are the paper's schedule (``properties/method/bet.yaml``); a profile of ``properties/method/bet/`` lays
another under the user's keys (``bet_profile``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from recbole_bet.budget import VALUE_DTYPES
from recbole_bet.settings import CheckedSettings, boolean, choice, choice_list, integer, real


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
    bet_profile: str | None = None
    bet_dtypes: tuple | None = field(default=None, metadata=choice_list(*VALUE_DTYPES, optional=True))

    @property
    def beta_max(self) -> dict[str, float]:
        return {name: getattr(self, f"bet_beta_max_{name}") for name in ("powerlaw", "exponential", "normal", "lognormal")}
