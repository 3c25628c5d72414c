"""TITA (ICCV 2025) and its ablation variants, registered as ``tita`` / ``tita_*``."""

from __future__ import annotations

from .. import register_model
from .checkpoint import load_tita_weights, save_tita_weights
from .config import VARIANTS, TITAConfig
from .network import TITA

__all__ = ["TITA", "TITAConfig", "VARIANTS", "load_tita_weights", "save_tita_weights"]


def _make_factory(name: str, overrides: dict):
    def factory(**config) -> TITA:
        return TITA(TITAConfig.from_dict({**overrides, **config}))

    factory.model_class = TITA
    factory.__doc__ = f"TITA variant {name!r}: {overrides or 'the paper model'}"
    return factory


for _name, _over in VARIANTS.items():
    register_model(_name, description=("TITA (ICCV 2025) unified fusion network" if _name == "tita"
                                       else f"TITA ablation: {_over}"), family="tita")(_make_factory(_name, _over))
