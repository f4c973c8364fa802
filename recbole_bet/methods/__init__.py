"""The method registry: every way to fill a budget, found by its key (``--method=<key>``).

Adding a method is one module here (a :class:`~recbole_bet.methods.base.Method` subclass, whose ``name`` is its key,
and the dataclass of its ``<key>_`` keys), one ``properties/method/<key>.yaml`` with its defaults, and one entry in
``METHODS``. The registry is built from the classes, so a method's key is written once.
"""

from __future__ import annotations

from recbole_bet.errors import ConfigError
from recbole_bet.methods.base import Method, Outcome, RunContext
from recbole_bet.methods.bet import Bet
from recbole_bet.methods.ciess import Ciess
from recbole_bet.methods.dsl import Dsl
from recbole_bet.methods.es import EqualSizes
from recbole_bet.methods.esapn import Esapn
from recbole_bet.methods.full import Full
from recbole_bet.methods.graphhash import GraphHash
from recbole_bet.methods.magprune import MagnitudePruning
from recbole_bet.methods.mde import MixedDimensionEmbeddings
from recbole_bet.methods.mr import MixedRandom
from recbole_bet.methods.optembed import OptEmbed
from recbole_bet.methods.pep import Pep
from recbole_bet.methods.qr import QuotientRemainder
from recbole_bet.methods.recbole import RecBoleModel

METHODS: tuple[type[Method], ...] = (
    Bet, Full, EqualSizes, MixedRandom, Pep, OptEmbed, MagnitudePruning, MixedDimensionEmbeddings, Esapn, Ciess,
    QuotientRemainder, GraphHash, Dsl, RecBoleModel,
)
REGISTRY: dict[str, type[Method]] = {cls.name: cls for cls in METHODS}

__all__ = ["METHODS", "REGISTRY", "Method", "Outcome", "RunContext", "get_method", "method_name", "key_owners"]


def method_name(value) -> str:
    """The registry's key for ``value`` as a user typed it (``--method=PEP`` is ``pep``), or a ConfigError that lists
    the allowed ones. The one place a method's name is parsed."""
    name = str(value).lower()
    if name not in REGISTRY:
        raise ConfigError(f"unknown method {value!r}; allowed: {', '.join(REGISTRY)}")
    return name


def get_method(value) -> Method:
    """The method ``value`` names (:func:`method_name`)."""
    return REGISTRY[method_name(value)]()


def key_owners() -> dict[str, str]:
    """``{key prefix: method}`` for every method that has keys (``bet_`` -> ``bet``, ``pep_`` -> ``pep``, ...)."""
    return {cls.settings_class.prefix: name for name, cls in REGISTRY.items() if cls.settings_class is not None}
