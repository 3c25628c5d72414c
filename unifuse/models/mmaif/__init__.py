"""MMAIF (arXiv 2503.14944): degradation-aware, text-guided fusion with a latent DiT,
registered as ``mmaif`` (default: the ``small`` preset; ``preset="tiny"|"small"|"paper"``
or any :class:`MMAIFConfig` field as keyword). ``load_model("mmaif")`` loads the shipped
CPU-trained ``small`` regression weights (``docs/mmaif_model_card.md``); ``weights=FILE|RUN_DIR``
another model (a file's stored config is adopted), ``weights="random"`` none."""

from __future__ import annotations

from .. import register_model
from .checkpoint import load_mmaif_weights, save_mmaif_weights
from .config import PRESETS, MMAIFConfig
from .network import MMAIF
from .text import TEXT_ENCODERS, HashTextEncoder, MiniLMEncoder, PromptCache, TextEncoder, register_text_encoder
from .tokenizers import TOKENIZERS, HaarTokenizer, PixelUnshuffleTokenizer, SmallKLVAE, Tokenizer, register_tokenizer

__all__ = ["MMAIF", "MMAIFConfig", "PRESETS", "load_mmaif_weights", "save_mmaif_weights", "Tokenizer", "TOKENIZERS",
           "register_tokenizer", "HaarTokenizer", "PixelUnshuffleTokenizer", "SmallKLVAE", "TextEncoder", "TEXT_ENCODERS",
           "register_text_encoder", "HashTextEncoder", "MiniLMEncoder", "PromptCache"]


def _factory(**config) -> MMAIF:
    return MMAIF(MMAIFConfig.from_dict({"preset": "small", **config}))


_factory.model_class = MMAIF
register_model("mmaif", description="MMAIF (arXiv 2503.14944): degradation-aware, text-guided latent-DiT fusion "
               "(reg / flow; ships a CPU-trained small reg model, see docs/mmaif_model_card.md)", family="mmaif", input_mode="rgb", trainable=True)(_factory)
