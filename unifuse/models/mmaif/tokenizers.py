"""Latent tokenizers behind one interface (spec ``mmaif.md`` §3).

A tokenizer maps RGB images ``(B, 3, H, W)`` in ``[−1, 1]`` (H, W multiples of ``f``) to
latents ``(B, z_ch, H/f, W/f)`` and back. The DiT sees *normalised* latents
``(z − shift)/scale`` (per-channel buffers; :meth:`Tokenizer.fit_stats` sets them from data).

Built in: ``haar`` (orthonormal 3-level Haar, f = 8, 192 channels, exact, no weights),
``pixel_unshuffle`` (space-to-depth, z = 3f², exact) and ``small_kl_vae`` (trainable KL-VAE,
f = 8, z = 16). Register your own with :func:`register_tokenizer`::

    @register_tokenizer("mine")
    class Mine(Tokenizer): ...
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...errors import ConfigError
from ...registry import Registry

TOKENIZERS: Registry[nn.Module] = Registry("tokenizer")


def register_tokenizer(name: str, description: str = ""):
    """Class decorator: register a :class:`Tokenizer` subclass under ``name``."""
    return TOKENIZERS.register(name, description)


def create_tokenizer(name: str, **kwargs) -> "Tokenizer":
    """Build a registered tokenizer; bad keyword arguments raise a one-line :class:`ConfigError`."""
    factory = TOKENIZERS.get(name).factory
    try:
        return factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"tokenizer {name!r}: bad tokenizer_kwargs {kwargs} ({exc})") from None


class Tokenizer(nn.Module):
    """Base class. Subclasses set ``f`` and ``z_ch`` and implement ``_encode``/``_decode``.

    ``encode(img, sample=False)`` returns *normalised* latents; ``decode`` takes normalised
    latents. ``raw_encode``/``raw_decode`` skip the normalisation.
    """

    f: int = 1
    z_ch: int = 3

    def _init_stats(self) -> None:
        self.register_buffer("shift", torch.zeros(self.z_ch))
        self.register_buffer("scale", torch.ones(self.z_ch))

    def _encode(self, img: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        raise NotImplementedError

    def _decode(self, z: Tensor) -> Tensor:
        raise NotImplementedError

    def raw_encode(self, img: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        return self._encode(img, sample, generator)

    def raw_decode(self, z: Tensor) -> Tensor:
        return self._decode(z)

    def encode(self, img: Tensor, sample: bool = False, generator: torch.Generator | None = None) -> Tensor:
        """``(B, 3, H, W)`` in [−1, 1] -> normalised ``(B, z_ch, H/f, W/f)``."""
        z = self._encode(img, sample, generator)
        return (z - self.shift.view(1, -1, 1, 1)) / self.scale.view(1, -1, 1, 1)

    def decode(self, z: Tensor) -> Tensor:
        """Normalised latents -> ``(B, 3, H, W)`` (nominally [−1, 1], not clamped)."""
        return self._decode(z * self.scale.view(1, -1, 1, 1) + self.shift.view(1, -1, 1, 1))

    @torch.no_grad()
    def fit_stats(self, images: Tensor, min_std: float = 1e-4) -> None:
        """Set ``shift``/``scale`` to the per-channel mean/std of the raw latents of ``images``."""
        z = self._encode(images).transpose(0, 1).flatten(1)
        self.shift.copy_(z.mean(1))
        self.scale.copy_(z.std(1).clamp_min(min_std))


@register_tokenizer("pixel_unshuffle", "space-to-depth, z = 3·f², lossless")
class PixelUnshuffleTokenizer(Tokenizer):
    def __init__(self, f: int = 4):
        super().__init__()
        self.f, self.z_ch = int(f), 3 * int(f) ** 2
        self._init_stats()

    def _encode(self, img, sample=False, generator=None):
        return F.pixel_unshuffle(img, self.f)

    def _decode(self, z):
        return F.pixel_shuffle(z, self.f)


def haar_step(x: Tensor) -> Tensor:
    """One orthonormal 2-D Haar level: ``(B, C, H, W)`` -> ``(B, 4C, H/2, W/2)`` as [LL, LH, HL, HH] blocks of C."""
    a, b = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    c, d = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    return torch.cat([a + b + c + d, a - b + c - d, a + b - c - d, a - b - c + d], dim=1) * 0.5


def haar_step_inverse(y: Tensor) -> Tensor:
    ll, lh, hl, hh = y.chunk(4, dim=1)
    a, b = (ll + lh + hl + hh) * 0.5, (ll - lh + hl - hh) * 0.5
    c, d = (ll + lh - hl - hh) * 0.5, (ll - lh - hl + hh) * 0.5
    B, C, h, w = ll.shape
    x = torch.stack([torch.stack([a, b], -1), torch.stack([c, d], -1)], -3)  # (B, C, h, 2, w, 2)
    return x.reshape(B, C, 2 * h, 2 * w)


@register_tokenizer("haar", "orthonormal recursive 2-D Haar, f = 2^levels, z = 3·4^levels, lossless")
class HaarTokenizer(Tokenizer):
    """``levels`` recursive Haar levels on every band (a full wavelet-packet tree), LL first."""

    def __init__(self, levels: int = 3):
        super().__init__()
        self.levels = int(levels)
        self.f, self.z_ch = 2 ** self.levels, 3 * 4 ** self.levels
        self._init_stats()

    def _encode(self, img, sample=False, generator=None):
        for _ in range(self.levels):
            img = haar_step(img)
        return img

    def _decode(self, z):
        for _ in range(self.levels):
            z = haar_step_inverse(z)
        return z


class ResBlock(nn.Module):
    """GN, SiLU, conv3×3, GN, SiLU, conv3×3 plus a skip (1×1 conv when the width changes)."""

    def __init__(self, cin: int, cout: int, groups: int = 8):
        super().__init__()
        self.body = nn.Sequential(nn.GroupNorm(min(groups, cin), cin), nn.SiLU(), nn.Conv2d(cin, cout, 3, padding=1),
                                  nn.GroupNorm(min(groups, cout), cout), nn.SiLU(), nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x):
        return self.skip(x) + self.body(x)


@register_tokenizer("small_kl_vae", "trainable KL autoencoder, f = 2^levels (8), z = 16")
class SmallKLVAE(Tokenizer):
    """Spec §3.3 item 2: encoder conv3×3(3→c0), ``levels`` × (ResBlock, stride-2 conv) with
    widths (c0, 2c0, 4c0), a middle ResBlock, GN, SiLU, conv3×3 → 2·z (mean, log-variance
    clamped to [−30, 20]); the decoder mirrors it with nearest ×2 up-sampling + conv3×3."""

    def __init__(self, c0: int = 32, z_ch: int = 16, levels: int = 3, groups: int = 8):
        super().__init__()
        self.f, self.z_ch = 2 ** levels, int(z_ch)
        widths = [c0 * 2 ** min(i, 2) for i in range(levels)]
        enc: list[nn.Module] = [nn.Conv2d(3, c0, 3, padding=1)]
        cin = c0
        for w in widths:
            enc += [ResBlock(cin, w, groups), nn.Conv2d(w, w, 3, stride=2, padding=1)]
            cin = w
        enc += [ResBlock(cin, cin, groups), nn.GroupNorm(min(groups, cin), cin), nn.SiLU(), nn.Conv2d(cin, 2 * z_ch, 3, padding=1)]
        self.encoder = nn.Sequential(*enc)
        dec: list[nn.Module] = [nn.Conv2d(z_ch, cin, 3, padding=1), ResBlock(cin, cin, groups)]
        for w in reversed(widths):
            dec += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(cin, w, 3, padding=1), ResBlock(w, w, groups)]
            cin = w
        dec += [nn.GroupNorm(min(groups, cin), cin), nn.SiLU(), nn.Conv2d(cin, 3, 3, padding=1)]
        self.decoder = nn.Sequential(*dec)
        self._init_stats()

    def posterior(self, img: Tensor) -> tuple[Tensor, Tensor]:
        """``(mean, logvar)``, each ``(B, z_ch, H/f, W/f)``."""
        mean, logvar = self.encoder(img).chunk(2, dim=1)
        return mean, logvar.clamp(-30.0, 20.0)

    def _encode(self, img, sample=False, generator=None):
        mean, logvar = self.posterior(img)
        if not sample:
            return mean
        noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        return mean + (0.5 * logvar).exp() * noise

    def _decode(self, z):
        return self.decoder(z)
