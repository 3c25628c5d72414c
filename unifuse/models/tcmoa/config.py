"""Typed configuration of TC-MoA (spec ``tcmoa.md``): presets and the official hyperparameter names."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from ...errors import ConfigError

COMBINES = ("logsumexp", "linear")
RESIZES = ("nearest", "area")
GEOMETRIES = ("official", "pad", "tile")
MIX_MODES = ("gates", "logits")


@dataclass
class TCMoAConfig:
    """Architecture and compatibility switches. Defaults = the paper's ``large`` model.

    Backbone (an MAE ViT; spec §2):
        patch_size: ViT patch size P (16).
        embed_dim / depth / num_heads: encoder width D, blocks, heads (1024 / 24 / 16).
        decoder_embed_dim / decoder_depth / decoder_num_heads: MAE decoder (512 / 8 / 16).
        mlp_ratio: MLP hidden = width · ratio (4).
        norm_eps: LayerNorm eps of the backbone (1e-6).
        pos_grid: side of the stored sin-cos position tables (14: 197 rows with the cls row).
        window_size / shift_size: attention window (tokens) and the shift of odd blocks
            (14 / 7, the official values for encoder and decoder).
        upsample: bilinear ×2 of the inputs before the patch embedding (True).
    TC-MoA (spec §3–§4):
        interval_tau / tau_shift: a module follows block i when
            ``(i + tau_shift) % interval_tau == interval_tau - 1`` (4 / 2).
        task_num: routers (3: VIF, MEF, MFF). num_adapters: N_A (4). top_k: K (2).
        adapter_ratio / adapter_min_hidden: adapter bottleneck ``max(C // ratio, min)``
            (32 / 1; the spec's proposal 8 is used by the ``tiny`` / ``small`` presets).
        gate_threshold: gates at or below it are dropped before dispatch (1e-4).
        noise_epsilon: the constant added to the softplus noise std in training (0.1).
        aux_loss_coef: load-balancing loss factor (1e-3).
        alpha_init: initial blend α of every module (0.5).
        combine: ``"logsumexp"`` (official log-space mixture) or ``"linear"`` (paper Eq. 4).
        source_embed_seed: seed of the N(0, 0.02²) source embeddings, which official
            checkpoints do not contain (spec §4.5).
        router_mix_mode: how router weights mix: ``"gates"`` (default) or ``"logits"`` (§8.2).
    Compatibility / geometry:
        compat_pos_embed_transpose: reproduce the official transposed position table on
            non-square token grids (False: the correct orientation).
        swin_mask: mask the wrapped-around regions of shifted windows (False = official).
        output_resize: 2× prediction -> input size: ``"nearest"`` (official) or ``"area"``.
        geometry: sizes that are not multiples of the unit: ``"official"`` (resize, or 4-unit
            tiles when both sides exceed them), ``"pad"`` (reflect pad, crop) or ``"tile"``
            (overlapping 4-unit tiles, Hann blending); see :mod:`.geometry`.
        tile_overlap: overlap of ``geometry="tile"`` in pixels (a multiple of the unit is used).
        packed_linear: CPU fp32 inference (no autograd) runs the backbone's linear layers
            through oneDNN with weights reordered once at the first call (≈1.2-1.5× per matmul;
            results equal up to float rounding) at the cost of a second copy of those weights
            in memory (+0.45 GB for ``base``, +1.3 GB for ``large``). On by default; training,
            GPUs and bf16 never use it.
    """

    patch_size: int = 16
    embed_dim: int = 1024
    depth: int = 24
    num_heads: int = 16
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    mlp_ratio: float = 4.0
    norm_eps: float = 1e-6
    pos_grid: int = 14
    window_size: int = 14
    shift_size: int = 7
    upsample: bool = True
    interval_tau: int = 4
    tau_shift: int = 2
    task_num: int = 3
    num_adapters: int = 4
    top_k: int = 2
    adapter_ratio: int = 32
    adapter_min_hidden: int = 1
    gate_threshold: float = 1e-4
    noise_epsilon: float = 0.1
    aux_loss_coef: float = 1e-3
    alpha_init: float = 0.5
    combine: str = "logsumexp"
    source_embed_seed: int = 0
    router_mix_mode: str = "gates"
    compat_pos_embed_transpose: bool = False
    swin_mask: bool = False
    output_resize: str = "nearest"
    geometry: str = "official"
    tile_overlap: int = 112
    packed_linear: bool = True

    def __post_init__(self) -> None:
        checks = [
            (self.embed_dim % self.num_heads == 0, f"embed_dim ({self.embed_dim}) must be a multiple of num_heads ({self.num_heads})"),
            (self.decoder_embed_dim % self.decoder_num_heads == 0,
             f"decoder_embed_dim ({self.decoder_embed_dim}) must be a multiple of decoder_num_heads ({self.decoder_num_heads})"),
            (self.embed_dim % 8 == 0 and self.decoder_embed_dim % 8 == 0, "embed_dim and decoder_embed_dim must be multiples of 8"),
            (self.window_size >= 1 and 0 <= self.shift_size < self.window_size,
             f"need window_size >= 1 and 0 <= shift_size < window_size, got {self.window_size} / {self.shift_size}"),
            (self.interval_tau >= 1 and 0 <= self.tau_shift, "interval_tau must be >= 1 and tau_shift >= 0"),
            (self.depth >= 1 and self.decoder_depth >= 1, "depths must be >= 1"),
            (self.task_num >= 1, f"task_num must be >= 1, got {self.task_num}"),
            (1 <= self.top_k <= self.num_adapters, f"need 1 <= top_k <= num_adapters, got {self.top_k} / {self.num_adapters}"),
            (self.combine in COMBINES, f"combine must be one of {COMBINES}, got {self.combine!r}"),
            (self.output_resize in RESIZES, f"output_resize must be one of {RESIZES}, got {self.output_resize!r}"),
            (self.geometry in GEOMETRIES, f"geometry must be one of {GEOMETRIES}, got {self.geometry!r}"),
            (self.router_mix_mode in MIX_MODES, f"router_mix_mode must be one of {MIX_MODES}, got {self.router_mix_mode!r}"),
            (self.tile_overlap >= 0, "tile_overlap must be >= 0"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    # geometry -----------------------------------------------------------------
    @property
    def unit(self) -> int:
        """Input sides must be multiples of this many pixels: ``ws·P / (2 if upsample else 1)``."""
        n = self.window_size * self.patch_size
        return n // 2 if self.upsample and n % 2 == 0 else n

    def module_positions(self, depth: int) -> list[int]:
        """Blocks (0-based) followed by a TC-MoA module (spec §3)."""
        t = self.interval_tau
        return [i for i in range(depth) if (i + self.tau_shift) % t == t - 1]

    # (de)serialisation ----------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "TCMoAConfig":
        d = dict(d or {})
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown TC-MoA config key(s): {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_official_config(cls, cfg: dict[str, Any], **overrides: Any) -> "TCMoAConfig":
        """Config from the official hyperparameter names (the reference file's ``config``).

        Accepted keys: ``patch_size, embed_dim, depth, num_heads, decoder_embed_dim,
        decoder_depth, decoder_num_heads, mlp_ratio, norm_eps, interval_tau,
        tau_shift_value, shift_window_size, upsample, task_num`` (all required) and
        ``warmup_epochs`` (a training setting, ignored here). The official code shifts by
        7 tokens whatever the window (and its decoder only runs with a 14-token window).
        The result reproduces the official network exactly, quirks included: it sets
        ``compat_pos_embed_transpose=True`` (pass ``compat_pos_embed_transpose=False`` in
        ``overrides`` for the corrected position table on non-square inputs).
        """
        cfg = dict(cfg or {})
        required = ("patch_size", "embed_dim", "depth", "num_heads", "decoder_embed_dim", "decoder_depth",
                    "decoder_num_heads", "mlp_ratio", "norm_eps", "interval_tau", "tau_shift_value",
                    "shift_window_size", "upsample", "task_num")
        known = set(required) | set(OFFICIAL_IGNORED)
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise ConfigError(f"unknown official TC-MoA config key(s): {', '.join(unknown)}; valid: {', '.join(sorted(known))}")
        missing = [k for k in required if k not in cfg]
        if missing:
            raise ConfigError(f"official TC-MoA config lacks key(s): {', '.join(missing)}")
        ws = int(cfg["shift_window_size"])
        mine = dict(
            patch_size=int(cfg["patch_size"]), embed_dim=int(cfg["embed_dim"]), depth=int(cfg["depth"]),
            num_heads=int(cfg["num_heads"]), decoder_embed_dim=int(cfg["decoder_embed_dim"]),
            decoder_depth=int(cfg["decoder_depth"]), decoder_num_heads=int(cfg["decoder_num_heads"]),
            mlp_ratio=float(cfg["mlp_ratio"]), norm_eps=float(cfg["norm_eps"]), interval_tau=int(cfg["interval_tau"]),
            tau_shift=int(cfg["tau_shift_value"]), window_size=ws, shift_size=min(7, ws - 1),
            upsample=bool(cfg["upsample"]), task_num=int(cfg["task_num"]), adapter_min_hidden=1,
            compat_pos_embed_transpose=True,
        )
        return cls.from_dict({**mine, **overrides})


#: official config keys that do not describe the network
OFFICIAL_IGNORED = ("warmup_epochs",)

#: spec §2.1 presets (``large`` = the paper's model; ``tiny`` / ``small`` are CPU proposals)
PRESETS: dict[str, dict[str, Any]] = {
    "large": dict(),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "small": dict(patch_size=8, embed_dim=192, depth=8, num_heads=6, decoder_embed_dim=128, decoder_depth=4,
                  decoder_num_heads=4, window_size=7, shift_size=3, upsample=False, adapter_min_hidden=8),
    "tiny": dict(patch_size=8, embed_dim=96, depth=8, num_heads=4, decoder_embed_dim=64, decoder_depth=4,
                 decoder_num_heads=4, window_size=4, shift_size=2, upsample=False, adapter_min_hidden=8),
}


def preset_config(preset: str = "large", **overrides: Any) -> TCMoAConfig:
    """The config of a preset (``tiny``, ``small``, ``base``, ``large``) with overrides."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown TC-MoA preset {preset!r}; choose one of {', '.join(PRESETS)}")
    return TCMoAConfig.from_dict({**PRESETS[preset], **overrides})
