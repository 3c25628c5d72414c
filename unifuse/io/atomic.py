"""Atomic file writing: write a temporary file beside the target, then ``os.replace`` it.

A run killed at any moment leaves either the old file or the new one, never a half-written
one. Temporary files are created with ``os.open(..., 0o666)`` so that the result gets the
usual umask-based permissions (``tempfile.mkstemp`` would make every output private, 0600).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Optional


def create_temp(path: str | os.PathLike) -> tuple[int, str]:
    """Create and open (write-only, binary) a new hidden temporary file in ``path``'s folder.

    Returns ``(fd, temp_path)``; the folder is created if needed. Raises ``OSError``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = str(path.parent / f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666)
    return fd, tmp


def discard(tmp: str) -> None:
    """Remove a temporary file left by a failed write (no error if it is gone)."""
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass


def atomic_write_text(path: str | os.PathLike, text: str, newline: Optional[str] = None) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically, fsync'ed before the rename."""
    fd, tmp = create_temp(path)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        discard(tmp)
        raise


def umask_mode(directory: bool = False) -> int:
    """The permissions a new file (0o666) or folder (0o777) gets under the current umask."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask
