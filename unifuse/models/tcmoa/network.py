"""The TC-MoA network (CVPR 2024), computed as the official implementation (spec §1–§4, §7–§8).

Data flow (both sources share every backbone weight; the two streams are stacked on the
batch axis so each shared block runs once):

``x, y (B,3,H,W)`` normalised -> ×2 bilinear -> patch embed + resized sin-cos positions
-> encoder blocks (windowed, odd blocks shifted), a TC-MoA module after blocks
``i ≡ 1 (mod 4)`` -> LN -> ``decoder_embed`` + positions -> decoder blocks with TC-MoA
modules (plus statistic re-standardisation) -> ``decoder_norm`` -> ``decoder_pred`` ->
unpatchify ``(B,3,2H,2W)`` -> nearest resize to ``H×W`` -> de-normalise.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ...errors import ConfigError, InputMismatchError
from .backbone import Block, PatchEmbed, RelativePositionTable
from .config import TCMoAConfig
from .geometry import run_with_geometry
from .module import BiMixtureOfAdapters, ConvFusionLayer, ModuleOutput, PromptControl
from .pos_embed import resized_pos_embed, sincos_2d_table

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: task names -> router index (spec §0); zero-shot tasks use the VIF router
TASKS = {"ivf": 0, "vif": 0, "mef": 1, "mff": 2, "medical": 0, "med": 0, "pan": 0}
#: parameter-name prefixes of the frozen MAE backbone (spec §6)
BACKBONE_PREFIXES = ("cls_token", "pos_embed", "patch_embed.", "blocks.", "norm.", "decoder_embed.",
                     "decoder_pos_embed", "decoder_blocks.", "decoder_norm.", "decoder_pred.", "mask_token")


@dataclass
class TCMoAOutput:
    """Everything one forward pass produced (normalised space).

    Attributes:
        decoder: ``(B, 3, pH·P, pW·P)`` prediction in ImageNet-normalised space (the
            official ``pred``; ``2H × 2W`` with the ×2 upsampling).
        modules: ``{"enc0": ModuleOutput, …, "dec0": …}`` prompts ``(B, N, 1)`` and routing
            of every module, in execution order.
        aux_loss: load-balancing loss summed over all modules (scalar tensor).
        grid: ``(pH, pW)`` token grid.
    """

    decoder: torch.Tensor
    modules: dict[str, ModuleOutput] = field(default_factory=dict)
    aux_loss: torch.Tensor | float = 0.0
    grid: tuple[int, int] = (0, 0)

    def prompts(self, part: str, source: str) -> list[torch.Tensor]:
        """Prompts ``(B, N, 1)`` of every ``part`` (``"enc"``/``"dec"``) module for ``source`` ``"x"``/``"y"``."""
        attr = "prompt_x" if source == "x" else "prompt_y"
        return [getattr(m, attr) for k, m in self.modules.items() if k.startswith(part)]


def parse_task(task: Any, task_num: int = 3) -> int | torch.Tensor:
    """``"ivf" | "mef" | "mff" | int | weights`` -> a router index or a ``(task_num,)`` weight tensor.

    Weights (a sequence, tensor, or ``"0.2,0.5,0.3"``) must be ≥ 0 and sum to 1 (±1e-6); a
    one-hot weight vector is returned as the index (identical result, cheaper).
    """
    if isinstance(task, str):
        key = task.strip().lower()
        if key in TASKS:
            return TASKS[key]
        if "," in key:
            try:
                task = [float(v) for v in key.split(",")]
            except ValueError:
                raise ConfigError(f"task weights must be numbers, got {task!r}") from None
        elif key.isdigit():
            task = int(key)
        else:
            raise ConfigError(f"unknown task {task!r}: use ivf, mef, mff (or medical/pan = ivf), "
                              f"a router index or router weights such as 0.2,0.5,0.3")
    if isinstance(task, bool):
        raise ConfigError(f"task must be a name, a router index or weights, got {task!r}")
    if isinstance(task, int):
        if not 0 <= task < task_num:
            raise ConfigError(f"router index must be in [0, {task_num - 1}], got {task}")
        return task
    w = torch.as_tensor(task, dtype=torch.float32).flatten()
    if w.numel() != task_num or not torch.isfinite(w).all() or (w < 0).any() or abs(float(w.sum()) - 1) > 1e-6:
        raise ConfigError(f"router weights must be {task_num} non-negative numbers summing to 1, got {w.tolist()}")
    nz = torch.nonzero(w).flatten()
    if nz.numel() == 1 and float(w[nz[0]]) == 1.0:
        return int(nz[0])
    return w


class TCMoA(nn.Module):
    """TC-MoA fusion network.

    ``forward(a, b, task="ivf", alpha=None, beta=None, prompt_where="all")``: ``a`` (the
    official ``x`` slot: visible / over-exposed / far-focus) and ``b`` (``y``: infrared /
    under-exposed / near-focus), float ``(N, 3 or 1, H, W)`` in ``[0, 1]``, any ``H, W``
    (spec §2.5 geometry, ``config.geometry``) -> fused RGB ``(N, 3, H, W)`` in ``[0, 1]``.

    For training and analysis use :meth:`forward_features` on normalised inputs; it returns
    the decoder output, every module's prompts and routing, and the load-balancing loss
    (also kept in ``self.aux_loss`` after every forward).

    Attributes: ``input_mode = "rgb"``, ``trainable = True``, ``config``.
    """

    input_mode = "rgb"
    trainable = True
    call_options = ("task", "alpha", "beta", "prompt_where")
    call_option_flags = {
        "task": {"type": str, "help": "task router: ivf, mef, mff (medical/pan use ivf) or router weights "
                                      "'w_ivf,w_mef,w_mff' summing to 1"},
        "alpha": {"type": float, "help": "prompt contrast slider alpha (1 = unchanged, 0 = all prompts 0.5)"},
        "beta": {"type": float, "help": "prompt bias slider beta (> 0 favours source A, < 0 source B; 0 = unchanged)"},
        "prompt_where": {"choices": ("all", "encoder", "decoder"), "help": "modules the prompt sliders act on (default all)"},
    }

    def __init__(self, config: TCMoAConfig | None = None, **overrides: Any):
        super().__init__()
        cfg = config or TCMoAConfig()
        if overrides:
            cfg = TCMoAConfig.from_dict({**cfg.to_dict(), **overrides})
        self.config = cfg
        D, Dd, eps = cfg.embed_dim, cfg.decoder_embed_dim, cfg.norm_eps
        rows = 1 + cfg.pos_grid**2
        moa_kw = dict(task_num=cfg.task_num, num_adapters=cfg.num_adapters, top_k=cfg.top_k,
                      noise_epsilon=cfg.noise_epsilon, gate_threshold=cfg.gate_threshold,
                      loss_coef=cfg.aux_loss_coef, combine=cfg.combine, mix_mode=cfg.router_mix_mode)
        hid = lambda c: max(c // cfg.adapter_ratio, cfg.adapter_min_hidden)  # noqa: E731

        self.patch_embed = PatchEmbed(cfg.patch_size, D)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, D))  # unused (MAE key parity)
        self.pos_embed = nn.Parameter(torch.zeros(1, rows, D), requires_grad=False)
        self.en_relative_position = nn.ModuleList(
            RelativePositionTable(cfg.window_size, cfg.num_heads) for _ in range((cfg.depth + 1) // 2))
        self.blocks = nn.ModuleList(Block(D, cfg.num_heads, cfg.mlp_ratio, eps) for _ in range(cfg.depth))
        self.norm = nn.LayerNorm(D, eps=eps)
        n_enc = len(cfg.module_positions(cfg.depth))
        self.blocks_MoA = nn.ModuleList(BiMixtureOfAdapters(D, hid(D), **moa_kw) for _ in range(n_enc))
        self.FusionLayer = nn.ModuleList(ConvFusionLayer(D) for _ in range(n_enc))

        self.decoder_embed = nn.Linear(D, Dd)
        self.decoder_pos_embed = nn.Parameter(torch.zeros(1, rows, Dd), requires_grad=False)
        self.de_relative_position = nn.ModuleList(
            RelativePositionTable(cfg.window_size, cfg.decoder_num_heads) for _ in range((cfg.decoder_depth + 1) // 2))
        self.decoder_blocks = nn.ModuleList(
            Block(Dd, cfg.decoder_num_heads, cfg.mlp_ratio, eps) for _ in range(cfg.decoder_depth))
        n_dec = len(cfg.module_positions(cfg.decoder_depth))
        self.decoder_blocks_MoA = nn.ModuleList(BiMixtureOfAdapters(Dd, hid(Dd), **moa_kw) for _ in range(n_dec))
        self.de_FusionLayer = nn.ModuleList(ConvFusionLayer(Dd) for _ in range(n_dec))
        self.decoder_norm = nn.LayerNorm(Dd, eps=eps)
        self.decoder_pred = nn.Linear(Dd, cfg.patch_size**2 * 3)

        self.Alpha_encoder = nn.Parameter(torch.full((n_enc,), float(cfg.alpha_init)))
        self.Alpha_decoder = nn.Parameter(torch.full((n_dec,), float(cfg.alpha_init)))
        self.register_buffer("img_mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("img_std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)
        self._precision = torch.float32
        self.aux_loss: torch.Tensor | float = 0.0
        self.last_output: TCMoAOutput | None = None
        self._initialize()

    # ------------------------------------------------------------------ init
    def _initialize(self) -> None:
        """Official MAE init (xavier Linear/patch conv, LN 1/0, cls N(0, 0.02)) and sin-cos tables."""
        cfg = self.config
        if self.pos_embed.is_meta:  # shapes only (parameter counting): nothing to initialise
            return
        with torch.no_grad():
            self.pos_embed.copy_(sincos_2d_table(cfg.embed_dim, cfg.pos_grid)[None])
            self.decoder_pos_embed.copy_(sincos_2d_table(cfg.decoder_embed_dim, cfg.pos_grid)[None])
        w = self.patch_embed.proj.weight
        nn.init.xavier_uniform_(w.view(w.shape[0], -1))
        nn.init.normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        g = torch.Generator().manual_seed(cfg.source_embed_seed)
        for mod in self.moa_modules().values():
            mod.reset_source_embeddings(g)

    def moa_modules(self) -> dict[str, BiMixtureOfAdapters]:
        """``{"enc0": …, "dec0": …}`` in execution order."""
        out = {f"enc{j}": m for j, m in enumerate(self.blocks_MoA)}
        out.update({f"dec{j}": m for j, m in enumerate(self.decoder_blocks_MoA)})
        return out

    # ------------------------------------------------------------------ parameters
    @staticmethod
    def is_backbone_key(name: str) -> bool:
        """Whether a parameter/state-dict key belongs to the MAE backbone (frozen in training)."""
        return name.startswith(BACKBONE_PREFIXES)

    def freeze_backbone(self, frozen: bool = True) -> "TCMoA":
        """Set ``requires_grad = not frozen`` on the backbone; TC-MoA parts, α and the
        relative-position tables stay trainable (spec §6). ``pos_embed`` tables are always frozen."""
        for name, p in self.named_parameters():
            if name in ("pos_embed", "decoder_pos_embed"):
                p.requires_grad_(False)
            elif self.is_backbone_key(name):
                p.requires_grad_(not frozen)
            else:
                p.requires_grad_(True)
        return self

    def trainable_parameters(self) -> list[nn.Parameter]:
        """The parameters with ``requires_grad`` (what the optimizer should get)."""
        return [p for p in self.parameters() if p.requires_grad]

    def parameter_summary(self) -> str:
        """One line: total, trainable and frozen parameter counts."""
        total = sum(p.numel() for p in self.parameters())
        train = sum(p.numel() for p in self.trainable_parameters())
        return f"TC-MoA: {total:,} parameters, {train:,} trainable, {total - train:,} frozen"

    # ------------------------------------------------------------------ forward pieces
    def _positions(self, table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        return resized_pos_embed(table, self.config.pos_grid, grid, self.config.compat_pos_embed_transpose)

    def forward_features(self, x: torch.Tensor, y: torch.Tensor, task: Any = 0,
                         control: PromptControl | None = None) -> TCMoAOutput:
        """Normalised sources ``(B, 3, H, W)`` (sides multiples of ``config.unit``) -> :class:`TCMoAOutput`.

        ``task``: router index / name / weights (see :func:`parse_task`). In training mode
        the routers add the official gating noise.
        """
        cfg = self.config
        task = parse_task(task, cfg.task_num)
        if isinstance(task, torch.Tensor):
            task = task.to(x.device)
        B, _, H, W = x.shape
        u = cfg.unit
        if H % u or W % u:
            raise InputMismatchError(f"TC-MoA needs sides that are multiples of {u} here, got {H}x{W}")
        both = torch.cat([x, y], dim=0)
        if cfg.upsample:
            both = F.interpolate(both, scale_factor=2, mode="bilinear")
        f, grid = self.patch_embed(both)
        f = f + self._positions(self.pos_embed, grid)
        record: dict[str, ModuleOutput] = {}
        # encoder: both streams throughout (the decoder modules need y)
        enc_pos = cfg.module_positions(cfg.depth)
        aux = 0.0
        for i, blk in enumerate(self.blocks):
            f = blk(f, grid, self.en_relative_position[i // 2](), cfg.window_size,
                    cfg.shift_size if i % 2 else 0, cfg.swin_mask, cfg.packed_linear)
            if i in enc_pos:
                f, a = self._module_step(f, grid, B, i // cfg.interval_tau, "enc", task, control, record, False)
                aux = aux + a
        f = self.decoder_embed(self.norm(f))
        f = f + self._positions(self.decoder_pos_embed, grid)
        dec_pos = cfg.module_positions(cfg.decoder_depth)
        last = dec_pos[-1] if dec_pos else -1
        if last < 0:
            f = f[:B]
        for i, blk in enumerate(self.decoder_blocks):
            f = blk(f, grid, self.de_relative_position[i // 2](), cfg.window_size, cfg.shift_size if i % 2 else 0,
                    cfg.swin_mask, cfg.packed_linear)
            if i in dec_pos:
                f, a = self._module_step(f, grid, B, i // cfg.interval_tau, "dec", task, control, record, True)
                aux = aux + a
            if i == last:  # only the x stream makes the output
                f = f[:B]
        img = self._unpatchify(self.decoder_pred(self.decoder_norm(f)), grid)
        out = TCMoAOutput(img, record, aux, grid)
        self.aux_loss = aux
        return out

    def forward_backbone(self, x: torch.Tensor, token_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The MAE backbone alone on one normalised source ``(B, 3, H, W)``: no TC-MoA module
        -> reconstruction ``(B, 3, pH·P, pW·P)`` in normalised space (stage-0 pretraining, spec §9.3).

        ``token_mask``: optional ``(B, N)`` bool, True = hide the token (its patch embedding is
        zeroed before the position embedding is added; the windowed blocks need the full grid).
        """
        cfg = self.config
        B, _, H, W = x.shape
        if H % cfg.unit or W % cfg.unit:
            raise InputMismatchError(f"TC-MoA needs sides that are multiples of {cfg.unit} here, got {H}x{W}")
        if cfg.upsample:
            x = F.interpolate(x, scale_factor=2, mode="bilinear")
        f, grid = self.patch_embed(x)
        if token_mask is not None:
            f = f * (~token_mask.bool()).unsqueeze(-1).to(f.dtype)
        f = f + self._positions(self.pos_embed, grid)
        for i, blk in enumerate(self.blocks):
            f = blk(f, grid, self.en_relative_position[i // 2](), cfg.window_size, cfg.shift_size if i % 2 else 0, cfg.swin_mask)
        f = self.decoder_embed(self.norm(f)) + self._positions(self.decoder_pos_embed, grid)
        for i, blk in enumerate(self.decoder_blocks):
            f = blk(f, grid, self.de_relative_position[i // 2](), cfg.window_size, cfg.shift_size if i % 2 else 0, cfg.swin_mask)
        return self._unpatchify(self.decoder_pred(self.decoder_norm(f)), grid)

    def _unpatchify(self, pred: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
        """``(B, N, P·P·3)`` ordered ``(p, q, channel)`` -> image ``(B, 3, pH·P, pW·P)``."""
        P = self.config.patch_size
        pH, pW = grid
        return pred.view(pred.shape[0], pH, pW, P, P, 3).permute(0, 5, 1, 3, 2, 4).reshape(pred.shape[0], 3, pH * P, pW * P)

    def _module_step(self, f, grid, b, j, part, task, control, record, restandardise):
        """TC-MoA module ``part``/``j`` on stacked streams ``(2B, N, C)`` and the α blend."""
        modules, fusions, alphas = ((self.blocks_MoA, self.FusionLayer, self.Alpha_encoder) if part == "enc" else
                                    (self.decoder_blocks_MoA, self.de_FusionLayer, self.Alpha_decoder))
        name = f"{part}{j}"
        ctl = control if control is not None and control.applies_to(name) else None
        with _no_autocast(f):
            hx, hy, rec = modules[j](f[:b].float(), f[b:].float(), task, ctl)
        record[name] = rec
        fused = fusions[j](hx + hy, grid).to(f.dtype)
        a = alphas[j]
        # the fused feature goes into both streams
        new = (fused * a + (1 - a) * f.view(2, b, *f.shape[1:])).view_as(f)
        if restandardise:
            new = _restandardise(new, f)
        return new, rec.routing.aux_loss

    def decoder_to_image(self, decoder: torch.Tensor, size: tuple[int, int], clip: bool = True) -> torch.Tensor:
        """Decoder output ``(B, 3, 2H, 2W)`` (normalised) -> image ``(B, 3, H, W)``: resize
        (``config.output_resize``) then de-normalise, clipped to ``[0, 1]`` when ``clip``."""
        if self.config.output_resize == "area":
            z = F.interpolate(decoder, size=size, mode="area")
        else:
            z = F.interpolate(decoder, size=size)
        z = z * self.img_std.to(z.dtype) + self.img_mean.to(z.dtype)
        return z.clamp(0, 1) if clip else z

    def normalize(self, img: torch.Tensor) -> torch.Tensor:
        """``[0, 1]`` RGB -> ImageNet-normalised (1-channel inputs are repeated to 3)."""
        if img.shape[1] == 1:
            img = img.expand(-1, 3, -1, -1)
        return (img - self.img_mean.to(img.dtype)) / self.img_std.to(img.dtype)

    # ------------------------------------------------------------------ public forward
    pad_multiple = property(lambda self: self.config.unit)

    def fuse_normalized(self, x: torch.Tensor, y: torch.Tensor, task: Any = 0,
                        control: PromptControl | None = None) -> torch.Tensor:
        """Normalised sources of a size the network takes -> fused RGB in ``[0, 1]`` at that size."""
        with self._autocast(x):
            out = self.forward_features(x, y, task, control)
        self.last_output = out
        return self.decoder_to_image(out.decoder.float(), x.shape[-2:])

    def forward(self, a: torch.Tensor, b: torch.Tensor, task: Any = "ivf", alpha: float | None = None,
                beta: float | None = None, prompt_where: str | Sequence[str] | None = None,
                control: PromptControl | None = None) -> torch.Tensor:
        if a.ndim != 4 or a.shape[0] != b.shape[0] or a.shape[-2:] != b.shape[-2:] or a.shape[1] not in (1, 3) \
                or b.shape[1] not in (1, 3):
            raise InputMismatchError(f"TC-MoA expects two (N, 3 or 1, H, W) tensors of equal size, got "
                                     f"{tuple(a.shape)} and {tuple(b.shape)}")
        if control is None and (alpha is not None or beta is not None or prompt_where is not None):
            control = PromptControl(alpha=1.0 if alpha is None else float(alpha), beta=0.0 if beta is None else float(beta),
                                    where="all" if prompt_where is None else
                                    (prompt_where if isinstance(prompt_where, str) else tuple(prompt_where)))
            if isinstance(control.where, str) and control.where not in ("all", "encoder", "decoder"):
                raise ConfigError(f"prompt_where must be all, encoder, decoder or module names, got {control.where!r}")
        task = parse_task(task, self.config.task_num)
        x, y = self.normalize(a.float()), self.normalize(b.float())
        out = run_with_geometry(lambda xx, yy: self.fuse_normalized(xx, yy, task, control), x, y,
                                self.config.unit, self.config.geometry, self.config.tile_overlap)
        return out.to(a.dtype)

    # ------------------------------------------------------------------ utilities
    def _autocast(self, x: torch.Tensor):
        if self._precision == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(x.device.type, dtype=self._precision)

    def set_precision(self, precision: str) -> "TCMoA":
        """``"fp32"`` (default), ``"bf16"`` or ``"fp16"``: backbone compute dtype (autocast);
        the TC-MoA modules always run in fp32 (as the official code)."""
        from .. import PRECISIONS

        self._precision = PRECISIONS[precision]
        return self

    def load_weights(self, weights: Any, strict: bool = True) -> "TCMoA":
        """Load an official TC-MoA checkpoint (either key layout), an MAE checkpoint (backbone
        only), our safetensors file, or a state dict (see :mod:`.checkpoint`)."""
        from .checkpoint import load_tcmoa_weights

        load_tcmoa_weights(self, weights, strict=strict)
        return self

    @staticmethod
    def default_weights():
        from .checkpoint import shipped_weights_path

        return shipped_weights_path()


def _no_autocast(t: torch.Tensor):
    """Disable autocast (the TC-MoA modules run in fp32, as the official code)."""
    return torch.autocast(t.device.type, enabled=False)


def _restandardise(new: torch.Tensor, old: torch.Tensor) -> torch.Tensor:
    """Give every sample of ``new`` the scalar mean and (unbiased) std of ``old`` over tokens and channels."""
    m0, s0 = old.mean(dim=(1, 2), keepdim=True), old.std(dim=(1, 2), keepdim=True)
    m1, s1 = new.mean(dim=(1, 2), keepdim=True), new.std(dim=(1, 2), keepdim=True)
    return (new - m1) * (s0 / (s1 + 1e-12)) + m0
