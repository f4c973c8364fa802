"""Our own keys, parsed once into checked dataclasses.

A settings dataclass declares each key's rule in its field's metadata (``integer``, ``real``, ``choice``, ...);
``CheckedSettings.__post_init__`` applies them, so a bad value is one line that names the key and what is allowed. A
method's keys carry its prefix (``bet_``, ``pep_``, ...); the run's general keys are
:class:`recbole_bet.config.RunSettings`. Each field's meaning is written once, in its dataclass's ``Attributes:``;
``docs/configuration.md`` is generated from them and from the property files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import ClassVar

from recbole_bet.errors import ConfigError


def integer(least: int, optional: bool = False) -> dict:
    """An integer key >= ``least``; ``optional``: also None (``~`` in a property file)."""
    return {"rule": "integer", "least": least, "optional": optional}


def real(low: float | None, high: float | None = None, low_open: bool = True) -> dict:
    """A real key in ``(low, high]`` (``[low, high]`` when not ``low_open``); None = unbounded."""
    return {"rule": "real", "low": low, "high": high, "low_open": low_open}


def real_list(low: float, high: float | None = None, distinct: bool = False) -> dict:
    """A non-empty list of reals, each in ``[low, high]`` (and no two equal, if ``distinct``)."""
    return {"rule": "real_list", "low": low, "high": high, "distinct": distinct}


def integer_list(least: int, distinct: bool = False) -> dict:
    """A non-empty list of integers, each >= ``least`` (and no two equal, if ``distinct``)."""
    return {"rule": "integer_list", "least": least, "distinct": distinct}


def choice(*allowed: str, optional: bool = False) -> dict:
    return {"rule": "choice", "allowed": allowed, "optional": optional}


def choice_list(*allowed: str, optional: bool = False) -> dict:
    """A non-empty list of distinct values, each one of ``allowed``; ``optional``: also None."""
    return {"rule": "choice_list", "allowed": allowed, "optional": optional}


def boolean() -> dict:
    return {"rule": "boolean"}


def _is_number(value) -> bool:
    """A finite int or float (not a bool, NaN or infinity)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_key(name: str, value, rule: dict):
    """``value`` converted to the key's type, or a ConfigError naming the key and what is allowed."""
    kind = rule["rule"]
    if value is None:
        if rule.get("optional"):
            return None
        raise ConfigError(f"{name}=~ (none); allowed: a value, e.g. its default in properties/method/")
    if kind == "boolean":
        if not isinstance(value, bool):
            raise ConfigError(f"{name}={value!r}; allowed: True or False")
        return value
    if kind == "choice":
        if value not in rule["allowed"]:
            raise ConfigError(f"{name}={value!r}; allowed: {', '.join(rule['allowed'])}")
        return value
    if kind == "choice_list":
        if isinstance(value, str):  # from the command line: float32,int8 or [float32, int8]
            value = [part.strip(" '\"") for part in value.strip("[]").split(",")]
        values = value if isinstance(value, (list, tuple)) else None
        if not values or any(v not in rule["allowed"] for v in values) or len(set(values)) != len(values):
            raise ConfigError(f"{name}={value!r}; allowed: a list of distinct values of {', '.join(rule['allowed'])}, "
                              f"e.g. [{', '.join(rule['allowed'][:2])}]")
        return tuple(values)
    if kind == "integer":
        if not _is_number(value) or value != int(value) or value < rule["least"]:
            none = " or ~ (none)" if rule["optional"] else ""
            raise ConfigError(f"{name}={value!r}; allowed: an integer >= {rule['least']}{none}")
        return int(value)
    if kind == "real":
        low, high, low_open = rule["low"], rule["high"], rule["low_open"]
        if (
            not _is_number(value)
            or (low is not None and (value <= low if low_open else value < low))
            or (high is not None and value > high)
        ):
            left = "(" if low_open else "["
            span = f"in {left}{low}, {high}]" if high is not None else (f"> {low}" if low_open else f">= {low}")
            raise ConfigError(f"{name}={value!r}; allowed: a number {span}")
        return float(value)
    if kind == "real_list":
        values = value if isinstance(value, (list, tuple)) else None
        high = rule["high"]
        if not values or not all(_is_number(v) and v >= rule["low"] and (high is None or v <= high) for v in values):
            span = f"[{rule['low']}, {high}]" if high is not None else f">= {rule['low']}"
            raise ConfigError(f"{name}={value!r}; allowed: a non-empty list of numbers in {span}, e.g. [0.1, 0.2]")
        if rule.get("distinct") and len(set(values)) != len(values):
            raise ConfigError(f"{name}={value!r} names a value twice; allowed: distinct numbers")
        return tuple(float(v) for v in values)
    if kind == "integer_list":
        values = value if isinstance(value, (list, tuple)) else None
        if not values or not all(_is_number(v) and v == int(v) and v >= rule["least"] for v in values):
            raise ConfigError(f"{name}={value!r}; allowed: a non-empty list of integers >= {rule['least']}, e.g. [0, 2, 4]")
        if rule.get("distinct") and len(set(values)) != len(values):
            raise ConfigError(f"{name}={value!r} names a value twice; allowed: distinct integers")
        return tuple(int(v) for v in values)
    raise AssertionError(kind)


def _has_rule(cls, name: str) -> bool:
    return any(f.name == name and "rule" in f.metadata for f in fields(cls))


@dataclass(frozen=True)
class CheckedSettings:
    """Base of every settings dataclass: checks and converts each field by its metadata rule."""

    #: the prefix of this dataclass's keys ("" for the run's general keys)
    prefix: ClassVar[str] = ""

    def __post_init__(self):
        for f in fields(self):
            if "rule" in f.metadata:
                object.__setattr__(self, f.name, check_key(f.name, getattr(self, f.name), f.metadata))

    @classmethod
    def key_names(cls) -> list[str]:
        return [f.name for f in fields(cls)]

    @classmethod
    def from_config(cls, config):
        """Read this dataclass's keys from a RecBole ``Config`` (a key the config lacks keeps its default)."""
        given = config.final_config_dict
        # a key the config holds is checked even when it is ~ (an error unless optional); one it lacks keeps its default
        return cls(**{name: given[name] for name in cls.key_names() if name in given and (given[name] is not None or _has_rule(cls, name))})
