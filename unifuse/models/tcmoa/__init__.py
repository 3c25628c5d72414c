"""TC-MoA (CVPR 2024, Task-Customized Mixture of Adapters), registered as ``tcmoa``.

>>> net = unifuse.load_model("tcmoa", weights="TC-MoA_L.pth", preset="large")
>>> fused = net(a, b, task="mef")          # (N,3,H,W) in [0,1] -> (N,3,H,W) in [0,1]
"""

from __future__ import annotations

from typing import Any

from .. import register_model
from .checkpoint import load_tcmoa_weights, save_tcmoa_weights
from .config import PRESETS, TCMoAConfig, preset_config
from .module import PromptControl
from .network import TASKS, TCMoA, TCMoAOutput, parse_task

__all__ = ["TCMoA", "TCMoAConfig", "TCMoAOutput", "PromptControl", "PRESETS", "TASKS", "preset_config",
           "parse_task", "load_tcmoa_weights", "save_tcmoa_weights", "build_tcmoa"]


def build_tcmoa(preset: str | None = None, official_config: dict[str, Any] | None = None, **overrides: Any) -> TCMoA:
    """A TC-MoA network from a preset (default ``large``, the paper's model) or from the official
    hyperparameter dict (``official_config``), with :class:`TCMoAConfig` overrides."""
    if official_config is not None:
        if preset is not None:
            from ...errors import ConfigError

            raise ConfigError("give either preset or official_config, not both")
        return TCMoA(TCMoAConfig.from_official_config(official_config, **overrides))
    return TCMoA(preset_config(preset or "large", **overrides))


build_tcmoa.model_class = TCMoA
register_model("tcmoa", description="TC-MoA (CVPR 2024) task-customized mixture of adapters on a frozen MAE ViT, "
               "RGB; preset large (paper) unless preset=/official_config= is given", family="tcmoa")(build_tcmoa)


def _preset_class(preset: str) -> type:
    """A subclass of :class:`TCMoA` per preset entry, whose ``default_weights()`` looks for
    ``weights/tcmoa_<preset>.safetensors`` (so ``tcmoa_small`` can ship weights while ``tcmoa``,
    the large preset, ships none and refuses to fuse without ``weights=``)."""
    name = f"tcmoa_{preset}"

    def default_weights():
        from .checkpoint import shipped_weights_path

        return shipped_weights_path(name)

    cls = type(f"TCMoA{preset.capitalize()}", (TCMoA,), {
        "__doc__": f"TC-MoA built by the ``{name}`` registry entry (preset {preset!r}).",
        "__module__": __name__, "default_weights": staticmethod(default_weights)})
    globals()[cls.__name__] = cls  # importable by name (pickling, copies)
    return cls


def _preset_factory(preset: str):
    cls = _preset_class(preset)

    def factory(**config: Any) -> TCMoA:
        p = config.pop("preset", preset)
        if p != preset:  # another preset: this entry's shipped weights would not fit
            return build_tcmoa(preset=p, **config)
        return cls(preset_config(p, **config))

    factory.model_class = cls
    return factory


for _p in ("base", "small", "tiny"):
    register_model(f"tcmoa_{_p}", description=f"TC-MoA, preset {_p!r} (spec §2.1)", family="tcmoa")(_preset_factory(_p))
