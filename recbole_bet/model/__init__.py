"""Budgeted backbones, found by name like RecBole's own models."""

from recbole_bet.model.lightgcn import LightGCN
from recbole_bet.model.neumf import NeuMF
from recbole_bet.model.ngcf import NGCF

MODELS = {"LightGCN": LightGCN, "NGCF": NGCF, "NeuMF": NeuMF}
ALIASES = {"NCF": "NeuMF"}


def canonical_model_name(name: str) -> str:
    """``name`` as spelled in MODELS (case-insensitive, aliases resolved), or ValueError."""
    lookup = {key.lower(): key for key in MODELS}
    lookup.update({alias.lower(): target for alias, target in ALIASES.items()})
    try:
        return lookup[str(name).lower()]
    except KeyError:
        allowed = ", ".join(list(MODELS) + [f"{a} (= {t})" for a, t in ALIASES.items()])
        raise ValueError(f"unknown model {name!r}; allowed: {allowed}") from None


def get_model(name: str):
    return MODELS[canonical_model_name(name)]
