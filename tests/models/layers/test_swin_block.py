"""When a Swin block runs piece by piece (blockwise) and when on the whole map."""

from __future__ import annotations

import torch

from unifuse.models.layers import swin_block
from unifuse.models.layers.swin_block import WHOLE_MAP_MAX_TOKENS, blockwise_ok
from unifuse.backend import accelerator_paths
from unifuse.parallel import parallel_scope


def _with_threads(n, fn):
    saved = torch.get_num_threads()
    try:
        torch.set_num_threads(n)
        return fn()
    finally:
        torch.set_num_threads(saved)


def test_never_with_autograd():
    with torch.enable_grad():
        assert not _with_threads(2, lambda: blockwise_ok(10**9))


def test_one_thread_small_maps_take_the_whole_map_path():
    with torch.no_grad():
        assert not _with_threads(1, lambda: blockwise_ok(2 * 64 * 64))
        assert not _with_threads(1, lambda: blockwise_ok(WHOLE_MAP_MAX_TOKENS))
        assert _with_threads(1, lambda: blockwise_ok(WHOLE_MAP_MAX_TOKENS + 1))


def test_several_threads_share_out_pieces():
    with torch.no_grad():
        assert _with_threads(2, lambda: blockwise_ok(64))


def test_workers_of_an_open_scope_count_as_threads():
    def inside():
        with parallel_scope(2):
            assert torch.get_num_threads() == 1  # the scope runs torch single-threaded
            return blockwise_ok(64)

    with torch.no_grad():
        assert _with_threads(2, inside)


def test_threshold_is_a_module_setting(monkeypatch):
    monkeypatch.setattr(swin_block, "WHOLE_MAP_MAX_TOKENS", 0)
    with torch.no_grad():
        assert _with_threads(1, lambda: blockwise_ok(1))


def test_accelerators_run_maps_whole_unless_they_are_large():
    """An accelerator's pieces would run one after the other as small kernels: whole maps,
    except above the memory bound; accelerator_paths() makes the CPU follow that rule."""
    with torch.no_grad():
        assert _with_threads(2, lambda: blockwise_ok(64, "cpu"))
        assert not _with_threads(2, lambda: blockwise_ok(64, "cuda"))
        assert _with_threads(2, lambda: blockwise_ok(WHOLE_MAP_MAX_TOKENS + 1, "cuda"))
        with accelerator_paths():
            assert not _with_threads(2, lambda: blockwise_ok(64, "cpu"))
