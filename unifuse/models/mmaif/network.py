"""MMAIF end to end: tokenizer + prompt encoder + DiT(s), as a fusion model.

``MMAIF(cfg)(a, b, prompt="", mode=None, steps=None, seed=0)``: two RGB images
``(N, 3, H, W)`` in ``[0, 1]`` (any size: reflect-padded to a multiple of ``f·patch`` and
cropped back) -> the fused ``(N, 3, H, W)`` in ``[0, 1]``. ``mode`` is ``"reg"`` (one DiT
pass) or ``"flow"`` (sampled with the configured sampler, ``steps`` evaluations, noise from
``seed``); ``None`` = the first of ``cfg.variants``. An empty prompt = automatic mode.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from ...errors import ConfigError, InputMismatchError
from ..tita.network import pad_to_multiple
from .config import MMAIFConfig
from .dit import DiTOutput, MMAIFDiT
from .sampling import sample
from .text import TextBatch, create_text_encoder
from .tokenizers import create_tokenizer


class MMAIF(nn.Module):
    """Attributes: ``input_mode = "rgb"``, ``trainable = True``, ``config``, ``tokenizer``,
    ``text_encoder``, ``dits`` (``{"reg": ..., "flow": ...}``, as configured)."""

    input_mode = "rgb"
    trainable = True
    call_options = ("prompt", "mode", "steps", "seed")
    call_option_flags = {
        "prompt": {"type": str, "help": "text instruction, e.g. 'remove the haze and brighten it' (empty = automatic)"},
        "mode": {"choices": ["reg", "flow"], "help": "MMAIF variant: one-pass regression or flow matching"},
        "steps": {"type": int, "help": "flow sampler steps (velocity evaluations; default 5)"},
        "seed": {"type": int, "help": "seed of the flow sampler's noise (default 0)"},
    }

    def __init__(self, config: MMAIFConfig | None = None, **overrides: Any):
        super().__init__()
        cfg = config if config is not None else MMAIFConfig.from_dict(overrides)
        if config is not None and overrides:
            cfg = MMAIFConfig.from_dict({**config.to_dict(), **overrides})
        self.config = cfg
        self.tokenizer = create_tokenizer(cfg.tokenizer, **cfg.tokenizer_kwargs)
        text_kw = {"dim": cfg.d_text, "max_len": cfg.text_max_len}
        if cfg.text_encoder == "hash":
            text_kw["buckets"] = cfg.hash_buckets
        elif cfg.text_cache:
            text_kw["cache"] = cfg.text_cache
        self.text_encoder = create_text_encoder(cfg.text_encoder, **text_kw)
        if self.text_encoder.dim != cfg.d_text:
            raise ConfigError(f"text encoder {cfg.text_encoder!r} is {self.text_encoder.dim}-d but d_text={cfg.d_text}")
        self.dits = nn.ModuleDict({v: MMAIFDiT(cfg, self.tokenizer.z_ch, cfg.d_text, v) for v in cfg.variants})
        self._precision = torch.float32

    # ------------------------------------------------------------------ pieces
    @property
    def pad_multiple(self) -> int:
        """Image sides are padded to a multiple of this (tokenizer factor × patch size)."""
        return self.tokenizer.f * self.config.patch

    def encode_images(self, *images: Tensor, sample: bool = False) -> list[Tensor]:
        """``[0, 1]`` images (sides multiples of :attr:`pad_multiple`) -> normalised latents."""
        return [self.tokenizer.encode(x * 2 - 1, sample=sample) for x in images]

    def decode(self, z: Tensor) -> Tensor:
        """Normalised latent -> image in ``[0, 1]`` (not clamped)."""
        return (self.tokenizer.decode(z) + 1) / 2

    def encode_prompts(self, prompts: Sequence[str], device: torch.device | None = None) -> TextBatch:
        tb = self.text_encoder.encode(list(prompts))
        return TextBatch(*(t.to(device) for t in tb)) if device is not None else tb

    def dit(self, mode: str) -> MMAIFDiT:
        if mode not in self.dits:
            raise ConfigError(f"this MMAIF model has no {mode!r} variant (it holds: {', '.join(self.dits)}); "
                              f"use --mode {list(self.dits)[0]}")
        return self.dits[mode]

    def predict(self, z_a: Tensor, z_b: Tensor, text: TextBatch) -> DiTOutput:
        """Regression: the fused latent."""
        return self.dit("reg")(None, z_a, z_b, text)

    def velocity(self, z_t: Tensor, t: Tensor, z_a: Tensor, z_b: Tensor, text: TextBatch) -> DiTOutput:
        """Flow: the velocity at ``(z_t, t)``."""
        return self.dit("flow")(z_t, z_a, z_b, text, t)

    def prior_sample(self, z_a: Tensor, z_b: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """The flow's start ``Z_0``: Gaussian noise (default) or a source latent (experimental)."""
        prior = self.config.prior
        if prior == "source_a":
            return z_a.clone()
        if prior == "source_b":
            return z_b.clone()
        if prior == "mean":
            return (z_a + z_b) / 2
        return torch.randn(z_a.shape, generator=generator, dtype=z_a.dtype, device=z_a.device)

    def sample_latent(self, z_a: Tensor, z_b: Tensor, text: TextBatch, steps: int | None = None,
                      generator: torch.Generator | None = None, z0: Tensor | None = None, **sampler_kw: Any) -> Tensor:
        """Flow sampling from ``z0`` (default :meth:`prior_sample`); sampler options default to the config."""
        cfg = self.config
        kw = dict(sampler=cfg.sampler, g=cfg.g, reuse=cfg.reuse, t_eps=cfg.t_eps, update=cfg.midpoint_update)
        kw.update(sampler_kw)
        z0 = self.prior_sample(z_a, z_b, generator) if z0 is None else z0
        return sample(lambda z, t: self.velocity(z, t, z_a, z_b, text).out, z0, steps=steps or cfg.steps,
                      generator=generator, **kw)

    # ------------------------------------------------------------------ fusion
    def _autocast(self, x: Tensor):
        if self._precision == torch.float32:
            return contextlib.nullcontext()
        return torch.autocast(x.device.type, dtype=self._precision)

    def forward(self, a: Tensor, b: Tensor, prompt: str | Sequence[str] = "", mode: str | None = None,
                steps: int | None = None, seed: int | None = 0) -> Tensor:
        if a.ndim != 4 or a.shape != b.shape or a.shape[1] != 3:
            raise InputMismatchError(f"MMAIF expects two (N, 3, H, W) tensors of equal shape, got {tuple(a.shape)} and {tuple(b.shape)}")
        mode = mode or self.config.variants[0]
        if mode not in ("reg", "flow"):
            raise ConfigError(f"--mode must be 'reg' or 'flow', got {mode!r}")
        self.dit(mode)
        if steps is not None and steps < 1:
            raise ConfigError(f"--steps must be >= 1, got {steps}")
        prompts = [prompt] * a.shape[0] if isinstance(prompt, str) else list(prompt)
        if len(prompts) != a.shape[0]:
            raise InputMismatchError(f"{len(prompts)} prompts for a batch of {a.shape[0]} image pairs")
        H, W = a.shape[-2:]
        m = self.pad_multiple
        with self._autocast(a):
            z_a, z_b = self.encode_images(pad_to_multiple(a, m), pad_to_multiple(b, m))
            text = self.encode_prompts(prompts, a.device)
            if mode == "reg":
                z = self.predict(z_a, z_b, text).out
            else:
                gen = torch.Generator(device=a.device).manual_seed(int(seed)) if seed is not None else None
                z = self.sample_latent(z_a, z_b, text, steps=steps, generator=gen)
            out = self.decode(z.float() if self._precision != torch.float32 else z)
        return out.float()[..., :H, :W].clamp(0, 1)

    # ------------------------------------------------------------------ utilities
    def set_precision(self, precision: str) -> "MMAIF":
        """``"fp32"`` (default), ``"bf16"`` or ``"fp16"``: internal compute dtype (autocast)."""
        from .. import PRECISIONS

        self._precision = PRECISIONS[precision]
        return self

    def load_weights(self, weights: Any, strict: bool = True, adopt_config: bool = True) -> "MMAIF":
        """Load a safetensors file written by :func:`save_mmaif_weights` or a state dict.

        With ``adopt_config`` (default) a file whose stored config differs from this model's
        rebuilds the model with the file's config first (so ``load_model("mmaif", FILE)``
        works for any preset); otherwise the difference is an error.
        """
        from .checkpoint import load_mmaif_weights, read_weights

        if adopt_config and isinstance(weights, (str, Path)):
            _, cfg, _ = read_weights(weights)
            if cfg is not None and cfg != self.config.to_dict():
                precision = self._precision
                self.__init__(MMAIFConfig.from_dict(cfg))
                self._precision = precision
        load_mmaif_weights(self, weights, strict=strict)
        return self

    @staticmethod
    def default_weights():
        """The shipped CPU-trained ``small`` weights (``docs/mmaif_model_card.md``) or ``None``
        (then ``--weights`` is required)."""
        from .checkpoint import shipped_weights_path

        return shipped_weights_path()
