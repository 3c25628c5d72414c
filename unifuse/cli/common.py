"""Argument helpers shared by CLI sub-commands."""

from __future__ import annotations

import argparse

from ..errors import ConfigError
from ..io import CHROMA_RULES
from ..models import PRECISIONS


def add_model_args(p: argparse.ArgumentParser, default_model: str = "tita") -> None:
    p.add_argument("--model", default=default_model, help=f"model name (see `unifuse models`; default {default_model})")
    p.add_argument("--weights", default=None, help="weights file (.safetensors, or an official .pth); default: shipped weights")
    p.add_argument("--device", default="cpu", help="torch device, e.g. cpu, cuda, cuda:1 (default cpu)")
    p.add_argument("--precision", default="fp32", choices=sorted(PRECISIONS), help="internal precision (default fp32)")


def add_fuse_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--color", "--colour", dest="color", default="weighted", choices=CHROMA_RULES,
                   help="chroma rule: weighted (official |c-128| rule, default), from-a, from-b, gray")
    p.add_argument("--tile", type=int, default=None,
                   help="tile size in pixels for large images (default: auto above 1024x1024; 0 = never tile)")
    p.add_argument("--overlap", type=int, default=64, help="tile overlap in pixels (default 64)")
    p.add_argument("--resize-to", choices=("a", "b"), default=None,
                   help="resize the other source to this one's size when sizes differ (default: error)")


def add_threads_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--threads", type=int, default=None,
                   help="torch CPU threads (default: torch's choice; on a busy machine 1 is often fastest)")


def apply_threads(args: argparse.Namespace) -> None:
    """Set torch's intra-op thread count from ``--threads`` (if given)."""
    n = getattr(args, "threads", None)
    if n is None:
        return
    if n < 1:
        raise ConfigError(f"--threads must be a positive integer, got {n}")
    import torch

    torch.set_num_threads(n)
