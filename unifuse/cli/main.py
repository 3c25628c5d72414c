"""`unifuse` console command: a thin dispatcher over sub-command modules.

Each sub-command lives in its own module ``unifuse.cli.<name>`` exposing
``add_parser(subparsers)`` which registers the sub-parser and sets ``func`` (a callable
taking the parsed ``argparse.Namespace`` and returning an exit code).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from ..errors import UnifuseError

#: sub-command modules, in help order
COMMANDS = ["fuse", "models", "demo", "eval", "train", "plot_training", "degrade", "tcmoa_maps", "mmaif_prompts"]


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="unifuse", description="Unified image fusion.")
    parser.add_argument("--version", action="version", version=f"unifuse {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            mod = importlib.import_module(f".{name}", __package__)
        except ModuleNotFoundError as exc:  # sub-command not part of this build
            if exc.name == f"{__package__}.{name}":
                continue
            raise
        mod.add_parser(sub)
    return parser


def _note(message, file=None) -> None:
    """One line on the command line: ``unifuse: note: ...`` (no source location)."""
    print(f"unifuse: note: {message}", file=file or sys.stderr)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Warnings as :func:`_note` lines."""
    _note(message, file)


class _NoteHandler(logging.Handler):
    """Log records of :mod:`unifuse.native` (a kernel being built, or unavailable) as :func:`_note` lines."""

    def emit(self, record: logging.LogRecord) -> None:
        _note(record.getMessage())


def _show_native_notes() -> None:
    log = logging.getLogger("unifuse.native")
    if not any(isinstance(h, _NoteHandler) for h in log.handlers):
        log.addHandler(_NoteHandler())
    log.setLevel(logging.INFO)
    log.propagate = False


def main(argv: list[str] | None = None) -> int:
    import warnings

    warnings.showwarning = _one_line_warning
    _show_native_notes()
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except UnifuseError as exc:
        print(f"unifuse: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("unifuse: interrupted", file=sys.stderr)
        return 130
    except MemoryError:
        print("unifuse: error: out of memory (try a smaller --tile)", file=sys.stderr)
        return 1
    except Exception as exc:  # a bug, not a user error: short message, traceback on request
        if os.environ.get("UNIFUSE_DEBUG"):
            raise
        print(f"unifuse: internal error: {type(exc).__name__}: {exc} (set UNIFUSE_DEBUG=1 for the traceback)", file=sys.stderr)
        return 3


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
