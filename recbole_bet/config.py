"""RecBole's Config with recbole-bet's models and property files, and our keys checked once.

Property files are read in RecBole's order, then ours on top:
RecBole's ``overall.yaml``, ``model/<Model>.yaml``, ``dataset/<dataset>.yaml``,
then this package's ``properties/overall.yaml``, ``properties/method/<method>.yaml``
(the method's defaults), ``properties/model/<Model>.yaml``,
``properties/method/<method>/<profile>.yaml`` (when ``<method>_profile`` is
given, e.g. ``bet_profile: fast``) and ``properties/dataset/<dataset>.yaml``;
then the user's config files, ``config_dict`` and ``--key=value`` arguments,
as in RecBole. A profile loads after the model's file only for the keys it
names, and a key the model's file sets too must be given per backbone
(``bet_finetune_epochs: {default: 2, NGCF: 3}``, :func:`profile_keys`), so a
profile never silently replaces a backbone's own value.
"""

from __future__ import annotations

import difflib
import os
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path

import yaml
from recbole.config import Config
from recbole.model import general_recommender

from recbole_bet.budget import VALUE_DTYPES, check_sparsity
from recbole_bet.errors import BudgetError, ConfigError
from recbole_bet.settings import CheckedSettings, boolean, choice, integer
from recbole_bet.methods import REGISTRY, key_owners, method_name
from recbole_bet.model import MODELS, canonical_model_name, get_model


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
        # the method's name, parsed once (the registry's key); every later step reads config["method"]
        self.external_config_dict["method"] = method_name(self.external_config_dict.get("method", "bet"))
        if model is None:
            model = self.external_config_dict.get("model", "LightGCN")
        if isinstance(model, str):
            try:
                if self.external_config_dict["method"] == "recbole":
                    model = recbole_model(model)  # RecBole's own model, unchanged: the reference rows
                else:
                    model = get_model(canonical_model_name(model))
            except ValueError as error:
                raise ConfigError(str(error)) from None
        if dataset is None:
            dataset = self.external_config_dict.get("dataset", "ml-100k")
        return super()._get_model_and_dataset(model, dataset)

    def _set_default_parameters(self):
        super()._set_default_parameters()
        configure = getattr(self.model_class, "configure", None)  # a backbone's own keys (NeuMF's loss)
        if configure is not None:
            configure(self.final_config_dict)
        elif str(self.final_config_dict.get("neumf_loss") or "bce").lower() != "bce":
            raise ConfigError(f"neumf_loss={self.final_config_dict['neumf_loss']!r}: only recbole-bet's NeuMF has it; "
                              "--method=recbole runs RecBole's own NeuMF unchanged, with its BCE loss")

    def _load_internal_config_dict(self, model, model_class, dataset):
        super()._load_internal_config_dict(model, model_class, dataset)
        ours = properties_dir()
        method = self.external_config_dict["method"]
        # the method's defaults come before the model's, which may set a method key per backbone (NGCF's h)
        for file in (ours / "overall.yaml", ours / "method" / f"{method}.yaml"):
            if file.is_file():
                self._update_internal_config_dict(str(file))
        model_file = ours / "model" / f"{model}.yaml"
        model_keys = (self._update_internal_config_dict(str(model_file)) or {}) if model_file.is_file() else {}
        profile = self.external_config_dict.get(f"{method}_profile")
        if profile is not None:
            self.internal_config_dict.update(profile_keys(ours / "method" / method, method, profile, model, model_keys, self.yaml_loader))
        dataset_file = ours / "dataset" / f"{dataset}.yaml"
        if dataset_file.is_file():
            keys = self._update_internal_config_dict(str(dataset_file)) or {}
            self.parameters["Dataset"] += [k for k in keys if k not in self.parameters["Dataset"]]


def config_from_keys(model: str, dataset: str, keys: dict) -> BetConfig:
    """A :class:`BetConfig` of ``keys`` alone: RecBole's Config also reads ``sys.argv``, which in a tool or a benchmark
    is that tool's command line, not the run's."""
    argv, sys.argv = sys.argv, sys.argv[:1]
    try:
        return BetConfig(model, dataset, config_dict=keys)
    finally:
        sys.argv = argv


def per_backbone(value) -> bool:
    """Whether a profile's value is given per backbone: a mapping with a ``default`` or only backbone names as keys."""
    return isinstance(value, dict) and bool(value) and ("default" in value or all(k in MODELS for k in value))


def profile_keys(folder: Path, method: str, profile: str, model: str, model_keys: dict, loader) -> dict:
    """The keys of the profile ``<folder>/<profile>.yaml`` for the backbone ``model``.

    A profile loads after ``properties/model/<model>.yaml`` only for the keys it names, and never silently replaces
    a backbone's own value: a key the backbone's file sets too must be given per backbone, ``{default: 2, NGCF: 3}``
    (the backbone's entry, else ``default``, else the key is left as it was); a plain value of such a key is refused.

    Raises:
        ConfigError: an unknown profile, a backbone name a per-backbone value does not know, or a plain value of a
            key the backbone's own file sets.
    """
    profiles = {p.stem: p for p in folder.glob("*.yaml")}  # a name, not a path: ../x stays out
    if str(profile) not in profiles:
        raise ConfigError(f"unknown {method}_profile {profile!r}; allowed: {', '.join(sorted(profiles)) or 'none'}")
    file = profiles[str(profile)]
    keys = {}
    for key, value in (yaml.load(file.read_text(encoding="utf-8"), Loader=loader) or {}).items():
        if per_backbone(value):
            unknown = [name for name in value if name != "default" and name not in MODELS]
            if unknown:
                raise ConfigError(f"{method}_profile {profile!r}: {key} names backbone {unknown[0]!r}; allowed: default, {', '.join(MODELS)}")
            if model in value or "default" in value:
                keys[key] = value.get(model, value.get("default"))
        elif key in model_keys:
            raise ConfigError(
                f"{method}_profile {profile!r} sets {key}={value!r} for every backbone, but model/{model}.yaml sets "
                f"{model_keys[key]!r}: give it per backbone, e.g. {key}: {{default: {value!r}, {model}: {model_keys[key]!r}}}"
            )
        else:
            keys[key] = value
    return keys


@dataclass(frozen=True)
class RunSettings(CheckedSettings):
    """The run's general keys, whatever the method. RecBole's own keys stay in the Config.

    Attributes:
        method (str): how the table is filled: a name of the registry :mod:`recbole_bet.methods` (``bet``, the
            search, by default), or ``recbole``: RecBole's own model (any of them, e.g. BPR, Pop), unchanged, as a
            reference.
        sparsity (float | tuple[float]): fraction of the d_max table removed, in (0, 1); several
            (``--sparsity=0.8,0.9,0.95``) run one after the other on one data split, sharing what does not
            depend on the budget (:attr:`sparsities`).
        result_file (str | None): where to write the run's result JSON.
        export_table (bool): write the compressed table (``.npz``) next to the checkpoint.
        tune_allocator (bool): keep freed memory mapped (:mod:`recbole_bet.allocator`); same
            results, faster steps on large graphs.
        screened_ranking (bool): on the CPU, full-ranking top-k of LightGCN and NGCF through an int8 screen and
            float32 rescoring (:mod:`recbole_bet.ranking`): the same top k, faster.
        fresh (bool): start this run over: discard what a killed run of the same keys kept in the checkpoint folder
            (:mod:`recbole_bet.resume`; other runs' state there is left alone).
        keep_every (int): inside a training, keep its progress for a killed run's rerun every this many validations
            (1: after each; a kill then loses at most this many validations' epochs).
        ray (bool): run BET's selective retrainings, and the budgets of a run of several after its first, as ray
            tasks, one CPU (or one GPU) each (:mod:`recbole_bet.fanout`).
        ray_address (str | None): join this ray cluster instead of starting a local instance.
        start (str): the backbone's weights before the method runs: ``initial``, the seed's random initialisation
            (every method's paper), or ``pretrained``, the full table trained to convergence first (once per run),
            so every method's table is masked from the same trained one (the fairness ablation of docs/results.md).
        budget_unit (str): what the sparsity is a share of: ``params``, the full table's parameters (the paper), or
            ``bytes``, the float32 full table's bytes, counting everything the exported table stores (values at their
            precision, per-row (shared tables: per-bucket-row) scales, the size index, an element mask's index, a
            shared table's bucket of every row (GraphHash), the file's headers):
            ``--sparsity=0.9`` then allows a file of 10% of ``4 * d_max * (users + items)`` bytes.
        value_dtype (str): the precision the table's values are stored and trained at: ``float32``, ``float16``,
            ``int8`` or ``int4`` (per-row float16 scale; int4 two a byte), trained quantisation-aware (fake
            quantisation with a straight-through gradient, :mod:`recbole_bet.precision`), every method alike.
        ptq (bool): train at float32 and quantise the finished table to ``value_dtype`` (post-training quantisation,
            the simplest baseline) instead of training quantisation-aware.
    """

    method: str = "bet"
    sparsity: float = 0.9
    result_file: str | None = None
    export_table: bool = field(default=True, metadata=boolean())
    tune_allocator: bool = field(default=True, metadata=boolean())
    screened_ranking: bool = field(default=True, metadata=boolean())
    fresh: bool = field(default=False, metadata=boolean())
    keep_every: int = field(default=1, metadata=integer(1))
    ray: bool = field(default=False, metadata=boolean())
    ray_address: str | None = None
    start: str = field(default="initial", metadata=choice("initial", "pretrained"))
    budget_unit: str = field(default="params", metadata=choice("params", "bytes"))
    value_dtype: str = field(default="float32", metadata=choice(*VALUE_DTYPES))
    ptq: bool = field(default=False, metadata=boolean())

    def __post_init__(self):
        object.__setattr__(self, "method", method_name(self.method))
        if self.start == "pretrained" and self.method == "recbole":
            raise ConfigError("start='pretrained' masks a budgeted table from a trained full one; method=recbole has none")
        try:
            if isinstance(self.sparsity, (list, tuple)):
                if not self.sparsity:
                    raise BudgetError("sparsity=[] names no budget; allowed: a number in (0, 1) or several, e.g. 0.8,0.9")
                values = tuple(check_sparsity(s) for s in self.sparsity)
                if len(set(values)) != len(values):
                    raise BudgetError(f"sparsity={','.join(map(str, values))} names a budget twice")
                object.__setattr__(self, "sparsity", values if len(values) > 1 else values[0])
            else:
                object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        except BudgetError as error:
            raise ConfigError(str(error)) from None
        super().__post_init__()
        self.check_precision()

    def check_precision(self) -> None:
        """Refuse a precision or byte budget for RecBole's own models, and ptq with nothing to quantise."""
        if self.method == "recbole" and (self.value_dtype != "float32" or self.budget_unit != "params" or self.ptq):
            given = f"value_dtype={self.value_dtype}" if self.value_dtype != "float32" else (
                f"budget_unit={self.budget_unit}" if self.budget_unit != "params" else "ptq=True")
            raise ConfigError(f"{given}: method=recbole runs RecBole's own model unchanged, float32 and without a budget; "
                              "allowed: value_dtype=float32, budget_unit=params, ptq=False (or another method)")
        if self.ptq and self.value_dtype == "float32":
            raise ConfigError("ptq=True quantises the finished table to value_dtype, which is float32; allowed: "
                              f"value_dtype={', '.join(VALUE_DTYPES[1:])} with ptq=True")

    @property
    def sparsities(self) -> tuple[float, ...]:
        """Every budget of the run, in the order given."""
        return self.sparsity if isinstance(self.sparsity, tuple) else (self.sparsity,)

    def for_sparsity(self, sparsity: float) -> "RunSettings":
        """These settings for one of the run's budgets; with several, each writes ``<result_file>-sparsity<s>.json``."""
        result_file = self.result_file
        if result_file and len(self.sparsities) > 1:
            path = Path(result_file)
            result_file = str(path.with_name(f"{path.stem}-sparsity{sparsity:g}{path.suffix or '.json'}"))
        return replace(self, sparsity=sparsity, result_file=result_file)

    @classmethod
    def from_config(cls, config: Config) -> "RunSettings":
        """The general keys; a key with another method's prefix, or an unknown key with this method's
        prefix, is an error."""
        run = super().from_config(config)
        method = run.method
        own = REGISTRY[method].settings_class
        owners = key_owners()
        for key in config.external_config_dict:  # the user's keys: another method's is refused
            owner = next((name for prefix, name in owners.items() if str(key).startswith(prefix)), None)
            if owner is not None and owner != method:
                raise ConfigError(
                    f"key {key!r} belongs to method {owner}; this run's method is {method} (drop the key or set --method={owner})"
                )
        if own is not None:
            names = own.key_names()
            unknown = [key for key in config.final_config_dict if str(key).startswith(own.prefix) and key not in names]
            if unknown:
                hint = difflib.get_close_matches(unknown[0], names, n=1)
                raise ConfigError(
                    f"unknown key {unknown[0]!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                    + f"; allowed {own.prefix} keys: {', '.join(names)}"
                )
        return run


def method_settings(config: Config):
    """The checked settings of the config's method (None for a method without keys)."""
    own = REGISTRY[method_name(config["method"])].settings_class
    return own.from_config(config) if own is not None else None


def dataset_file(config: Config) -> Path:
    """The ``.inter`` file RecBole will read for this config."""
    return Path(config["data_path"]) / f"{config['dataset']}.inter"


ATOMIC_TYPES = ("token", "token_seq", "float", "float_seq")


def check_config_files(files) -> None:
    """Raise a ConfigError naming a ``--config_files`` entry that is missing or is not a YAML mapping
    (RecBole would end in a traceback)."""
    for file in files or []:
        path = Path(file)
        if not path.is_file():
            raise ConfigError(f"config file {file!r} does not exist (--config_files takes existing YAML files, space-separated)")
        try:
            content = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
            reason = str(error).splitlines()[0]
            raise ConfigError(f"config file {file!r} is not valid YAML: {reason}") from None
        if content is not None and not isinstance(content, dict):
            raise ConfigError(f"config file {file!r} holds a {type(content).__name__}, not key: value lines")


def check_atomic_file(path: Path, config: Config) -> None:
    """Raise a ConfigError unless ``path`` looks like a RecBole atomic ``.inter`` file: a tab-separated header of
    ``name:type`` columns holding the user and item id fields, and at least one row."""
    with open(path, encoding=config["encoding"] or "utf-8", errors="replace") as handle:
        header = handle.readline().rstrip("\r\n")
        first_row = handle.readline()
    if not header:
        raise ConfigError(f"dataset file {path} is empty: a RecBole atomic file starts with a header such as user_id:token<TAB>item_id:token")
    columns = header.split(config["field_separator"] or "\t")
    bad = [c for c in columns if c.count(":") != 1 or c.split(":")[1] not in ATOMIC_TYPES]
    if bad:
        raise ConfigError(
            f"dataset file {path} is not a RecBole atomic file: header column {bad[0][:60]!r} is not name:type "
            f"(types: {', '.join(ATOMIC_TYPES)}), e.g. user_id:token<TAB>item_id:token"
        )
    names = {c.split(":")[0] for c in columns}
    missing = [f for f in (config["USER_ID_FIELD"], config["ITEM_ID_FIELD"]) if f not in names]
    if missing:
        raise ConfigError(f"dataset file {path} has no column {missing[0]!r} (its columns: {', '.join(sorted(names))})")
    if not first_row.strip():
        raise ConfigError(f"dataset file {path} has a header and no interactions")


def check_dataset_present(config: Config) -> None:
    """Raise a ConfigError before RecBole would try to download a missing dataset, or read one that is empty or
    not a RecBole atomic file."""
    path = dataset_file(config)
    if path.is_file():
        check_atomic_file(path, config)
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
