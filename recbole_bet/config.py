"""RecBole's Config with recbole-bet's models and property files, and our keys checked once.

Property files are read in RecBole's order, then ours on top:
RecBole's ``overall.yaml``, ``model/<Model>.yaml``, ``dataset/<dataset>.yaml``,
then ``properties/overall.yaml``, ``properties/model/<Model>.yaml``,
``properties/profile/<bet_profile>.yaml`` (when ``bet_profile`` is given) and
``properties/dataset/<dataset>.yaml`` of this package; then the user's
config files, ``config_dict`` and ``--key=value`` arguments, as in RecBole.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, fields
from pathlib import Path

from recbole.config import Config
from recbole.model import general_recommender

from recbole_bet.budget import BudgetError, check_sparsity
from recbole_bet.model import canonical_model_name, get_model


class ConfigError(ValueError):
    """A bad key or value in the configuration; the message names it and what is allowed."""


def properties_dir() -> Path:
    """``properties/``: shipped inside the package when installed, beside it in a checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "properties", here.parent / "properties"):
        if (candidate / "overall.yaml").is_file():
            return candidate
    raise FileNotFoundError(f"recbole-bet's properties/ is missing (looked in {here} and {here.parent})")


def known_datasets() -> list[str]:
    """Datasets with a property file of ours, plus RecBole's bundled ml-100k."""
    names = {p.stem for p in (properties_dir() / "dataset").glob("*.yaml")}
    return sorted(names | {"ml-100k"})


def recbole_model(name: str):
    """One of RecBole's own general recommenders, by name (case as RecBole spells it), or ValueError."""
    model = getattr(general_recommender, str(name), None)
    if not isinstance(model, type):
        raise ValueError(f"unknown RecBole general recommender {name!r} for method=recbole; e.g. BPR, Pop, LightGCN, NGCF, NeuMF")
    return model


class BetConfig(Config):
    """:class:`recbole.config.Config` that finds recbole-bet's models and property files.

    Example::

        >>> config = BetConfig("LightGCN", "ml-100k", config_dict={"sparsity": 0.9})
        >>> config["embedding_size"], config["valid_metric"]
        (128, 'NDCG@20')
    """

    def _get_model_and_dataset(self, model, dataset):
        if model is None:
            model = self.external_config_dict.get("model", "LightGCN")
        if isinstance(model, str):
            try:
                if str(self.external_config_dict.get("method", "")).lower() == "recbole":
                    model = recbole_model(model)  # RecBole's own model, unchanged: the reference rows
                else:
                    model = get_model(canonical_model_name(model))
            except ValueError as error:
                raise ConfigError(str(error)) from None
        if dataset is None:
            dataset = self.external_config_dict.get("dataset", "ml-100k")
        return super()._get_model_and_dataset(model, dataset)

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        ours = properties_dir()
        for file in (ours / "overall.yaml", ours / "model" / f"{model}.yaml"):
            if file.is_file():
                self._update_internal_config_dict(str(file))
        profile = self.external_config_dict.get("bet_profile")
        if profile is not None:
            file = ours / "profile" / f"{profile}.yaml"
            if not file.is_file():
                names = ", ".join(sorted(p.stem for p in (ours / "profile").glob("*.yaml")))
                raise ConfigError(f"unknown bet_profile {profile!r}; allowed: {names}")
            self._update_internal_config_dict(str(file))
        dataset_file = ours / "dataset" / f"{dataset}.yaml"
        if dataset_file.is_file():
            keys = self._update_internal_config_dict(str(dataset_file)) or {}
            self.parameters["Dataset"] += [k for k in keys if k not in self.parameters["Dataset"]]


# ---------------------------------------------------------------------------
# Our own keys, parsed once into a checked dataclass

METHOD_NAMES = ("bet", "full", "es", "mr", "recbole")
RETRAIN_STARTS = ("scratch", "pretrained")

# Integer keys and their least value.
_INT_MIN = {
    "bet_iterations": 1,
    "bet_candidates": 1,
    "bet_predictor_updates": 0,
    "bet_predictor_batch": 1,
    "bet_finetune_epochs": 0,
    "bet_finetune_lr_step": 1,
    "bet_retrain_top": 1,
    "bet_pretrain_stopping_step": 1,
}
# Integer keys that may also be None (null in a property file).
_INT_OPTIONAL = {"bet_pretrain_stopping_step"}
# Real keys: (low, high), low excluded, high included; None = unbounded.
_REAL_RANGE = {
    "bet_predictor_lr": (0, None),
    "bet_finetune_lr": (0, None),
    "bet_finetune_lr_decay": (0, 1),
    "bet_beta_max_powerlaw": (0, None),
    "bet_beta_max_exponential": (0, None),
    "bet_beta_max_normal": (0, None),
    "bet_beta_max_lognormal": (0, None),
}


@dataclass(frozen=True)
class BetSettings:
    """recbole-bet's keys of one run, checked once. RecBole's own keys stay in the Config.

    Attributes:
        method (str): how sizes are chosen: ``bet`` (the search), ``full``, ``es`` or ``mr``;
            or ``recbole``: RecBole's own model (any of them, e.g. BPR, Pop), unchanged, as a reference.
        sparsity (float): fraction of the d_max table removed, in (0, 1).
        result_file (str | None): where to write the run's result JSON.
        export_table (bool): write the compressed table (``.npz``) next to the checkpoint.
        tune_allocator (bool): keep freed memory mapped (:mod:`recbole_bet.allocator`); same
            results, faster steps on large graphs.
        screened_ranking (bool): on the CPU, full-ranking top-k of LightGCN and NGCF through an int8 screen and
            float32 rescoring (:mod:`recbole_bet.ranking`): the same top k, faster.
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
        bet_beta_max_* (float): beta_max of each sampling distribution (20, 5, 20, 0.5).
        bet_retrain_from (str): ``scratch`` (the paper: fresh initial weights) or ``pretrained``
            (warm start from the pretrained full table under the action's masks).
        bet_profile (str | None): a schedule from ``properties/profile/`` laid under the user's keys.
    """

    method: str = "bet"
    sparsity: float = 0.9
    result_file: str | None = None
    export_table: bool = True
    tune_allocator: bool = True
    screened_ranking: bool = True
    bet_iterations: int = 50
    bet_candidates: int = 100
    bet_predictor_updates: int = 2
    bet_predictor_batch: int = 16
    bet_predictor_lr: float = 0.001
    bet_finetune_epochs: int = 10
    bet_finetune_lr: float = 0.03
    bet_finetune_lr_decay: float = 0.98
    bet_finetune_lr_step: int = 200
    bet_retrain_top: int = 5
    bet_pretrain_stopping_step: int | None = None
    bet_beta_max_powerlaw: float = 20.0
    bet_beta_max_exponential: float = 5.0
    bet_beta_max_normal: float = 20.0
    bet_beta_max_lognormal: float = 0.5
    bet_retrain_from: str = "scratch"
    bet_profile: str | None = None

    def __post_init__(self):
        if self.method not in METHOD_NAMES:
            raise ConfigError(f"unknown method {self.method!r}; allowed: {', '.join(METHOD_NAMES)}")
        try:
            object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        except BudgetError as error:
            raise ConfigError(str(error)) from None
        for name in ("export_table", "tune_allocator", "screened_ranking"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"{name}={getattr(self, name)!r}; allowed: True or False")
        if self.bet_retrain_from not in RETRAIN_STARTS:
            raise ConfigError(f"bet_retrain_from={self.bet_retrain_from!r}; allowed: {', '.join(RETRAIN_STARTS)}")
        for name, least in _INT_MIN.items():
            value = getattr(self, name)
            if value is None and name in _INT_OPTIONAL:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != int(value) or value < least:
                none = " or ~ (none)" if name in _INT_OPTIONAL else ""
                raise ConfigError(f"{name}={value!r}; allowed: an integer >= {least}{none}")
            object.__setattr__(self, name, int(value))
        for name, (low, high) in _REAL_RANGE.items():
            value = getattr(self, name)
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            if not ok or value <= low or (high is not None and value > high):
                span = f"in ({low}, {high}]" if high is not None else f"> {low}"
                raise ConfigError(f"{name}={value!r}; allowed: a number {span}")
            object.__setattr__(self, name, float(value))

    @property
    def beta_max(self) -> dict[str, float]:
        return {name: getattr(self, f"bet_beta_max_{name}") for name in ("powerlaw", "exponential", "normal", "lognormal")}

    @classmethod
    def from_config(cls, config: Config) -> "BetSettings":
        """Read our keys from a RecBole Config; any unknown ``bet_`` key is an error."""
        names = [f.name for f in fields(cls)]
        unknown = [key for key in config.final_config_dict if key.startswith("bet_") and key not in names]
        if unknown:
            hint = difflib.get_close_matches(unknown[0], names, n=1)
            allowed = ", ".join(n for n in names if n.startswith("bet_")) or "none yet"
            raise ConfigError(
                f"unknown key {unknown[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "") + f"; allowed bet_ keys: {allowed}"
            )
        values = {name: config[name] for name in names if config[name] is not None or name == "result_file"}
        if isinstance(values.get("method"), str):
            values["method"] = values["method"].lower()
        return cls(**values)


def dataset_file(config: Config) -> Path:
    """The ``.inter`` file RecBole will read for this config."""
    return Path(config["data_path"]) / f"{config['dataset']}.inter"


def check_dataset_present(config: Config) -> None:
    """Raise a ConfigError before RecBole would try to download a missing dataset."""
    path = dataset_file(config)
    if path.is_file():
        return
    name = config["dataset"]
    data_root = os.path.dirname(os.path.normpath(config["data_path"]))
    if name in known_datasets():
        raise ConfigError(
            f"dataset {name!r}: data file {path} not found; put it under --data_path "
            f"(now {data_root!r}), e.g. --data_path=../shared/datasets; dataset/README.md says where to get it"
        )
    raise ConfigError(
        f"unknown dataset {name!r}: no file {path}; known datasets: {', '.join(known_datasets())} "
        f"(or any RecBole atomic dataset <data_path>/<name>/<name>.inter)"
    )
