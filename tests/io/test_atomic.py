"""unifuse.io.atomic: atomic writes with ordinary (umask-based) permissions, nothing left on failure."""

from __future__ import annotations

import os
import stat

import pytest
import torch

from unifuse.io.atomic import atomic_write_text, umask_mode
from unifuse.training.checkpoint import atomic_save_safetensors, save_checkpoint


def _mode(p):
    return stat.S_IMODE(os.stat(p).st_mode)


def test_outputs_get_umask_permissions_not_private(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_text(tmp_path / "a" / "x.txt", "hello")
        atomic_save_safetensors({"w": torch.ones(2)}, tmp_path / "w.safetensors")
        ckpt = save_checkpoint(tmp_path / "ckpt", 5, {"w": torch.ones(1)}, None, {"x": 1})
        assert (tmp_path / "a" / "x.txt").read_text() == "hello"
        assert _mode(tmp_path / "a" / "x.txt") == _mode(tmp_path / "w.safetensors") == 0o644 == umask_mode()
        assert _mode(ckpt) == 0o755 == umask_mode(directory=True)
    finally:
        os.umask(old)


def test_failed_write_leaves_old_file_and_no_temporaries(tmp_path):
    target = tmp_path / "x.txt"
    atomic_write_text(target, "old")

    with pytest.raises(TypeError):
        atomic_write_text(target, 12345)  # type: ignore[arg-type]  (write() needs str)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["x.txt"]
