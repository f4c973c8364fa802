"""RecBole's Config with recbole-bet's models and property files, and our keys checked once.

Property files are read in RecBole's order, then ours on top:
RecBole's ``overall.yaml``, ``model/<Model>.yaml``, ``dataset/<dataset>.yaml``,
then ``properties/overall.yaml``, ``properties/model/<Model>.yaml`` and
``properties/dataset/<dataset>.yaml`` of this package; then the user's
config files, ``config_dict`` and ``--key=value`` arguments, as in RecBole.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass, fields
from pathlib import Path

from recbole.config import Config

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
        dataset_file = ours / "dataset" / f"{dataset}.yaml"
        if dataset_file.is_file():
            keys = self._update_internal_config_dict(str(dataset_file)) or {}
            self.parameters["Dataset"] += [k for k in keys if k not in self.parameters["Dataset"]]


# ---------------------------------------------------------------------------
# Our own keys, parsed once into a checked dataclass

METHOD_NAMES = ("full", "es", "mr")


@dataclass(frozen=True)
class BetSettings:
    """recbole-bet's keys of one run, checked. RecBole's own keys stay in the Config.

    Attributes:
        method (str): how the embedding sizes are chosen: ``full``, ``es`` or ``mr``.
        sparsity (float): fraction of the d_max table removed, in (0, 1).
        result_file (str | None): where to write the run's result JSON.
        export_table (bool): write the compressed table (``.npz``) next to the checkpoint.
    """

    method: str = "es"
    sparsity: float = 0.9
    result_file: str | None = None
    export_table: bool = True

    def __post_init__(self):
        if self.method not in METHOD_NAMES:
            raise ConfigError(f"unknown method {self.method!r}; allowed: {', '.join(METHOD_NAMES)}")
        try:
            object.__setattr__(self, "sparsity", check_sparsity(self.sparsity))
        except BudgetError as error:
            raise ConfigError(str(error)) from None
        if not isinstance(self.export_table, bool):
            raise ConfigError(f"export_table={self.export_table!r}; allowed: True or False")

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
