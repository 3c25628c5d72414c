"""Typed configuration of TITA and its ablation variants (defaults = the paper's model)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ...errors import ConfigError

LAYOUTS = ("IeSF", "SF", "IrSF")
INTERACTIONS = ("IPA", "PA", "TE", "none")
HEADS = ("oaf", "1conv")


@dataclass
class TITAConfig:
    """Architecture switches (spec ``tita.md`` §0 and §13).

    Attributes:
        embed_dim: token channels C (60).
        num_heads: heads of every window attention and of IPA (6).
        window_size: Swin window (8); shifted blocks shift by ``window_size // 2``.
        mlp_ratio: MLP hidden = ``C · mlp_ratio`` (2).
        depths_ex: Swin blocks per source in the extraction stage (4).
        depths_fusion: blocks per fusion layer (2 layers × 4).
        depths_re: Swin blocks in the reconstruction stage (4).
        drop_path_rate: max stochastic-depth rate, linear per stage (0.1).
        fusion_layout: ``"IeSF"`` (all inter-domain, TITA), ``"SF"`` (SwinFusion: half
            intra-domain self blocks per source, half cross blocks), ``"IrSF"`` (all intra).
        interaction: module after the window attention of every inter-domain block:
            ``"IPA"`` (TITA), ``"PA"`` (GeminiFusion), ``"TE"`` (token exchange), ``"none"``.
        fusion_head: ``"oaf"`` (TITA) or ``"1conv"`` (SwinFusion).
        oaf_branches: OAF candidates, subset of ``("hpf", "add", "mul")``.
        oaf_dynamic_weights: OAF weight generator on (True) or uniform weights (False).
        carafe_padding: OAF high-pass border, ``"reflect"`` (official default) or ``"zeros"``.
        keep_unused_convs: keep the official, never-used ``conv_first*_B`` parameters so the
            parameter count (1,386,865) and checkpoint keys match the official network.
    """

    embed_dim: int = 60
    num_heads: int = 6
    window_size: int = 8
    mlp_ratio: float = 2.0
    depths_ex: int = 4
    depths_fusion: tuple[int, ...] = (4, 4)
    depths_re: int = 4
    drop_path_rate: float = 0.1
    fusion_layout: str = "IeSF"
    interaction: str = "IPA"
    fusion_head: str = "oaf"
    oaf_branches: tuple[str, ...] = ("hpf", "add", "mul")
    oaf_dynamic_weights: bool = True
    carafe_padding: str = "reflect"
    keep_unused_convs: bool = True

    def __post_init__(self) -> None:
        self.depths_fusion = tuple(int(d) for d in self.depths_fusion)
        self.oaf_branches = tuple(self.oaf_branches)
        checks = [
            (self.embed_dim > 0 and self.num_heads > 0 and self.embed_dim % self.num_heads == 0,
             f"embed_dim ({self.embed_dim}) must be a positive multiple of num_heads ({self.num_heads})"),
            (self.embed_dim % 2 == 0, f"embed_dim must be even, got {self.embed_dim}"),
            (self.window_size >= 2 and self.window_size % 2 == 0, f"window_size must be even and >= 2, got {self.window_size}"),
            (self.fusion_layout in LAYOUTS, f"fusion_layout must be one of {LAYOUTS}, got {self.fusion_layout!r}"),
            (self.interaction in INTERACTIONS, f"interaction must be one of {INTERACTIONS}, got {self.interaction!r}"),
            (self.fusion_head in HEADS, f"fusion_head must be one of {HEADS}, got {self.fusion_head!r}"),
            (self.carafe_padding in ("reflect", "zeros"), f"carafe_padding must be 'reflect' or 'zeros', got {self.carafe_padding!r}"),
            (0.0 <= self.drop_path_rate < 1.0, f"drop_path_rate must be in [0, 1), got {self.drop_path_rate}"),
            (self.depths_ex >= 1 and self.depths_re >= 1 and len(self.depths_fusion) >= 1 and min(self.depths_fusion) >= 1,
             "all depths must be >= 1"),
            (self.fusion_layout != "SF" or all(d % 2 == 0 for d in self.depths_fusion),
             "the SF layout needs even fusion depths (half self, half cross blocks)"),
            (self.fusion_layout != "IrSF" or self.interaction == "none",
             "the IrSF layout has no inter-domain blocks: use interaction='none'"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "TITAConfig":
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown TITA config key(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["depths_fusion"] = list(self.depths_fusion)
        d["oaf_branches"] = list(self.oaf_branches)
        return d


#: the paper's ablation rows (Tables 4–6) as config overrides
VARIANTS: dict[str, dict[str, Any]] = {
    "tita": {},
    "tita_baseline": dict(fusion_layout="SF", interaction="none", fusion_head="1conv"),  # Baseline / Baseline-TS
    "tita_irsf": dict(fusion_layout="IrSF", interaction="none", fusion_head="1conv"),
    "tita_iesf": dict(fusion_layout="IeSF", interaction="none", fusion_head="1conv"),
    "tita_ti": dict(fusion_layout="IeSF", interaction="IPA", fusion_head="1conv"),
    "tita_ta": dict(fusion_layout="SF", interaction="none", fusion_head="oaf"),
    "tita_sf_pa": dict(fusion_layout="SF", interaction="PA", fusion_head="1conv"),
    "tita_sf_ipa": dict(fusion_layout="SF", interaction="IPA", fusion_head="1conv"),
    "tita_sf_te": dict(fusion_layout="SF", interaction="TE", fusion_head="1conv"),
    "tita_no_hpf": dict(oaf_branches=("add", "mul")),
    "tita_no_add": dict(oaf_branches=("hpf", "mul")),
    "tita_no_mul": dict(oaf_branches=("hpf", "add")),
    "tita_no_dw": dict(oaf_dynamic_weights=False),
}
