"""The method registry: every way to fill a budget, found by name.

Adding a method is one module here (a :class:`~recbole_bet.methods.base.Method` subclass and the
dataclass of its ``<name>_`` keys), one ``properties/method/<name>.yaml`` with its defaults, and one
line in ``REGISTRY``.
"""

from __future__ import annotations

from recbole_bet.methods.base import Method, Outcome, RunContext
from recbole_bet.methods.bet import Bet
from recbole_bet.methods.ciess import Ciess
from recbole_bet.methods.dsl import Dsl
from recbole_bet.methods.es import EqualSizes
from recbole_bet.methods.esapn import Esapn
from recbole_bet.methods.full import Full
from recbole_bet.methods.graphhash import GraphHash
from recbole_bet.methods.magprune import MagnitudePruning
from recbole_bet.methods.mde import PowerRule
from recbole_bet.methods.mr import MixedRandom
from recbole_bet.methods.optembed import OptEmbed
from recbole_bet.methods.pep import Pep
from recbole_bet.methods.qr import QuotientRemainder
from recbole_bet.methods.recbole import RecBoleModel

REGISTRY: dict[str, type[Method]] = {
    "bet": Bet,
    "full": Full,
    "es": EqualSizes,
    "mr": MixedRandom,
    "pep": Pep,
    "optembed": OptEmbed,
    "magprune": MagnitudePruning,
    "mde": PowerRule,
    "esapn": Esapn,
    "ciess": Ciess,
    "qr": QuotientRemainder,
    "graphhash": GraphHash,
    "dsl": Dsl,
    "recbole": RecBoleModel,
}

__all__ = ["REGISTRY", "Method", "Outcome", "RunContext", "get_method", "method_names", "key_owners"]


def method_names() -> list[str]:
    return list(REGISTRY)


def get_method(name: str) -> Method:
    """The method called ``name``, or a ValueError that lists the allowed ones."""
    try:
        return REGISTRY[name]()
    except KeyError:
        raise ValueError(f"unknown method {name!r}; allowed: {', '.join(REGISTRY)}") from None


def key_owners() -> dict[str, str]:
    """``{key prefix: method}`` for every method that has keys (``bet_`` -> ``bet``, ``pep_`` -> ``pep``, ...)."""
    return {cls.settings_class.prefix: name for name, cls in REGISTRY.items() if cls.settings_class is not None}
