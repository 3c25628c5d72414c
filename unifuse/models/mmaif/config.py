"""Typed configuration of MMAIF (spec ``mmaif.md`` §2–§7, §11) and its presets.

Defaults are the paper's DiT (16 layers, hidden 576, 12 heads, LoRA rank 128, RoPE base
2000, 4 routed experts top-2 + 1 shared). Every choice the paper leaves open ([PROPOSAL] in
the spec) is a field here. Presets (:data:`PRESETS`): ``paper`` (≈281.5 M DiT parameters),
``small`` (CPU training) and ``tiny`` (tests).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ...errors import ConfigError

VARIANTS = ("reg", "flow")
SAMPLERS = ("midpoint", "euler")
PRIORS = ("gaussian", "source_a", "source_b", "mean")
#: config fields that only steer flow sampling (no parameter depends on them)
SAMPLING_FIELDS = ("sampler", "steps", "reuse", "g", "prior", "t_eps", "midpoint_update")


@dataclass
class MMAIFConfig:
    """MMAIF architecture and sampling defaults.

    Attributes:
        depth, hidden, heads: DiT layers, width and attention heads (head width must be a
            multiple of 4 for 2-D RoPE).
        patch: patch size on the latent grid (2).
        lora_rank: rank d′ of LoRA-AdaLN (128).
        adaln_form: ``"one_plus"`` (``LN·(1+γ)+β``, identity at init) or ``"plain"`` (paper Eq. 3).
        rope_base: 2-D RoPE base (2000).
        value_residual: mix each layer's values with the previous layer's (η init 0).
        image_cond_in_attention: also append the image-condition tokens to the keys/values.
        n_experts, top_k, n_shared: routed experts, experts per token, shared experts.
        expert_hidden: routed expert SwiGLU width; ``shared_hidden`` (``None`` = same).
        router_std: router weight init std (0.02).
        nafblock: a NAFBlock before every attention; ``naf_dw_expand``/``naf_ffn_expand``.
        pe_hidden, pe_scale: per-block positional-embedding MLP width and index divisor.
        time_freq_dim: sinusoidal timestep features (flow only).
        tokenizer: tokenizer registry name (``haar``, ``pixel_unshuffle``, ``small_kl_vae``, or
            one registered by the user) and ``tokenizer_kwargs``.
        text_encoder: text-encoder registry name (``hash`` or ``minilm``), ``d_text`` its
            width, ``text_max_len`` the token limit, ``hash_buckets`` for ``hash``,
            ``text_cache`` a prompt-embedding cache file for a frozen encoder
            (``unifuse mmaif-prompts`` writes one).
        variants: which DiTs the model holds: ``("reg",)``, ``("flow",)`` or both (one
            weights file can carry both modes; they are trained separately).
        sampler, steps, reuse, g, prior, t_eps: flow sampling defaults (midpoint, 5 steps,
            velocity reuse, diffusion norm 1.0, Gaussian prior, t clamp 1e-4).
        midpoint_update: ``"paper"`` (second half step from Z_mid, spec §5.3) or
            ``"classic"`` (full step from Z with the midpoint drift; see sampling.py).
    """

    depth: int = 16
    hidden: int = 576
    heads: int = 12
    patch: int = 2
    lora_rank: int = 128
    adaln_form: str = "one_plus"
    rope_base: float = 2000.0
    value_residual: bool = True
    image_cond_in_attention: bool = False
    n_experts: int = 4
    top_k: int = 2
    n_shared: int = 1
    expert_hidden: int = 1536
    shared_hidden: int | None = None
    router_std: float = 0.02
    nafblock: bool = True
    naf_dw_expand: int = 2
    naf_ffn_expand: int = 2
    pe_hidden: int = 256
    pe_scale: float = 64.0
    time_freq_dim: int = 256
    tokenizer: str = "small_kl_vae"
    tokenizer_kwargs: dict = field(default_factory=lambda: {"c0": 64, "z_ch": 16})
    text_encoder: str = "hash"
    d_text: int = 768
    text_max_len: int = 77
    text_cache: str | None = None
    hash_buckets: int = 4096
    variants: tuple[str, ...] = ("flow",)
    sampler: str = "midpoint"
    steps: int = 5
    reuse: bool = True
    g: float = 1.0
    midpoint_update: str = "paper"
    prior: str = "gaussian"
    t_eps: float = 1e-4

    def __post_init__(self) -> None:
        self.variants = tuple(self.variants)
        self.tokenizer_kwargs = dict(self.tokenizer_kwargs or {})
        checks = [
            (self.depth >= 1 and self.hidden > 0 and self.heads > 0, "depth, hidden and heads must be positive"),
            (self.hidden % self.heads == 0, f"hidden ({self.hidden}) must be a multiple of heads ({self.heads})"),
            ((self.hidden // max(self.heads, 1)) % 4 == 0, f"head width hidden/heads must be a multiple of 4 for 2-D RoPE, "
                                                           f"got {self.hidden}/{self.heads}"),
            (self.patch >= 1, f"patch must be >= 1, got {self.patch}"),
            (self.lora_rank >= 1, f"lora_rank must be >= 1, got {self.lora_rank}"),
            (self.adaln_form in ("one_plus", "plain"), f"adaln_form must be 'one_plus' or 'plain', got {self.adaln_form!r}"),
            (1 <= self.top_k <= self.n_experts, f"top_k must be in [1, n_experts], got {self.top_k} of {self.n_experts}"),
            (len(self.variants) >= 1 and all(v in VARIANTS for v in self.variants) and len(set(self.variants)) == len(self.variants),
             f"variants must be a non-empty subset of {VARIANTS}, got {self.variants}"),
            (self.sampler in SAMPLERS, f"sampler must be one of {SAMPLERS}, got {self.sampler!r}"),
            (self.steps >= 1, f"steps must be >= 1, got {self.steps}"),
            (self.g >= 0, f"g must be >= 0, got {self.g}"),
            (self.midpoint_update in ("paper", "classic"), f"midpoint_update must be 'paper' or 'classic', got {self.midpoint_update!r}"),
            (self.prior in PRIORS, f"prior must be one of {PRIORS}, got {self.prior!r}"),
            (self.prior == "gaussian" or self.g == 0,
             f"prior {self.prior!r} needs g: 0 (the sampler's noise term assumes the Gaussian prior), got g = {self.g}"),
            (0 <= self.t_eps < 0.5, f"t_eps must be in [0, 0.5), got {self.t_eps}"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ConfigError(msg)

    @property
    def head_dim(self) -> int:
        return self.hidden // self.heads

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "MMAIFConfig":
        """Build from a dict; a ``preset`` key (``tiny``/``small``/``paper``) supplies the defaults."""
        d = dict(d or {})
        preset = d.pop("preset", None)
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown MMAIF config key(s): {', '.join(unknown)}; valid: preset, {', '.join(sorted(names))}")
        if preset is not None and preset not in PRESETS:
            raise ConfigError(f"unknown MMAIF preset {preset!r}; available: {', '.join(PRESETS)}")
        base = dict(PRESETS[preset]) if preset else {}
        if "tokenizer" in d and "tokenizer_kwargs" not in d:  # the preset's kwargs belong to its own tokenizer
            base.pop("tokenizer_kwargs", None)
            if d["tokenizer"] != cls.tokenizer:
                d["tokenizer_kwargs"] = {}
        return cls(**{**base, **d})

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["variants"] = list(self.variants)
        return d


#: spec §11. ``paper`` is the dataclass default; the text width 768 is Flan-T5-base's.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {},
    "small": dict(depth=6, hidden=192, heads=6, expert_hidden=384, lora_rank=48, d_text=384,
                  tokenizer="small_kl_vae", tokenizer_kwargs={"c0": 32, "z_ch": 16}, variants=("reg", "flow")),
    "tiny": dict(depth=4, hidden=128, heads=4, expert_hidden=256, lora_rank=32, d_text=384, hash_buckets=1024,
                 tokenizer="pixel_unshuffle", tokenizer_kwargs={"f": 4}, variants=("reg", "flow")),
}
