"""`unifuse models`: list the registered models."""

from __future__ import annotations

import argparse


def add_parser(sub) -> None:
    p = sub.add_parser("models", help="list available models")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from ..models import MODELS, _ensure_builtin

    _ensure_builtin()
    width = max(len(e.name) for e in MODELS)
    for e in MODELS:
        cls = getattr(e.factory, "model_class", None)
        if cls is not None and getattr(cls, "trainable", False):
            status = "trained weights shipped" if cls.default_weights() else "no shipped weights"
        else:
            status = "training-free"
        print(f"{e.name:<{width}}  [{status}]  {e.description}")
    return 0
