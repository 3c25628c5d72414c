"""Reusable building blocks shared by every model (window attention, Swin blocks, IPA, OAF ...)."""

from .drop_path import DropPath, residual_add
from .linear import Linear
from .mlp import Mlp
from .attention_grad import window_attention_train
from .window import window_partition, window_reverse, relative_position_index, shift_mask_windows
from .window_attention import WindowAttention, CrossWindowAttention
from .swin_block import SwinBlock
from .ipa import InteractionPixelAttention, PixelAttention
from .token_exchange import TokenExchange
from .cross_block import CrossSwinBlock
from .oaf import OAFBranches, OAF, ConvFusionHead
from .rope import rope_2d_angles, apply_rope
from .adaln import LoRAAdaLN, modulate
from .nafblock import NAFBlock, LayerNorm2d
from .moe import MoEGLU, SwiGLU, route_topk, load_balance_loss

__all__ = [
    "DropPath", "residual_add", "Linear", "window_attention_train", "Mlp", "window_partition", "window_reverse", "relative_position_index",
    "shift_mask_windows", "WindowAttention", "CrossWindowAttention", "SwinBlock",
    "InteractionPixelAttention", "PixelAttention", "TokenExchange", "CrossSwinBlock",
    "OAFBranches", "OAF", "ConvFusionHead",
    "rope_2d_angles", "apply_rope", "LoRAAdaLN", "modulate", "NAFBlock", "LayerNorm2d",
    "MoEGLU", "SwiGLU", "route_topk", "load_balance_loss",
]
