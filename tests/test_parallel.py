"""Coarse-grained CPU parallelism (:mod:`unifuse.parallel`): same results, in order, any nesting;
torch's thread-local modes carried into the helper threads."""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
import torch

from unifuse.parallel import parallel_map, parallel_scope, workers


def test_map_in_order_on_several_threads_and_nested():
    seen = set()

    def inner(x):
        seen.add(threading.get_ident())
        time.sleep(0.002)  # lets the helper take items
        return x * x

    def outer(k):
        return parallel_map(inner, range(k, k + 5))

    with parallel_scope(2):
        assert workers() == 2
        assert torch.get_num_threads() == 1  # ops single-threaded inside the scope
        got = parallel_map(outer, range(6))
    assert got == [[x * x for x in range(k, k + 5)] for k in range(6)]
    assert len(seen) == 2  # the caller and the helper both ran items
    assert workers() == 0


def test_scope_restores_threads_and_one_worker_is_sequential():
    before = torch.get_num_threads()
    with parallel_scope(2):
        pass
    assert torch.get_num_threads() == before
    with parallel_scope(1):
        ids = parallel_map(lambda _: threading.get_ident(), range(4))
    assert set(ids) == {threading.get_ident()}


def test_first_error_is_raised_and_scope_survives():
    def fn(x):
        if x == 3:
            raise ValueError("item 3")
        return x

    with parallel_scope(2):
        with pytest.raises(ValueError, match="item 3"):
            parallel_map(fn, range(8))
        assert parallel_map(fn, [0, 1, 2]) == [0, 1, 2]


def test_forked_child_runs_alone():
    import multiprocessing as mp

    if "fork" not in mp.get_all_start_methods():
        pytest.skip("no fork on this platform")
    with parallel_scope(2):
        parallel_map(lambda x: x, range(4))  # helpers exist in the parent
    ctx = mp.get_context("fork")
    with ctx.Pool(1) as pool:
        assert pool.apply(_child_map, ()) == [0, 1, 4, 9]


def _child_map():
    with parallel_scope(2):
        return parallel_map(lambda x: x * x, range(4))


def test_torch_modes_of_the_caller_hold_in_the_helpers():
    def run(ctx):
        meet = threading.Barrier(2, timeout=30)  # items 0 and 1 run at once: one in the caller, one in the helper

        def modes(i):
            if i < 2:
                meet.wait()
            return (threading.get_ident(), torch.is_grad_enabled(), torch.is_inference_mode_enabled(),
                    torch.is_autocast_enabled("cpu"), torch.get_autocast_dtype("cpu"))

        with ctx:
            got = parallel_map(modes, range(6))
        assert len({g[0] for g in got[:2]}) == 2
        return {g[1:] for g in got}

    with parallel_scope(2):
        assert run(torch.autocast("cpu", dtype=torch.bfloat16)) == {(True, False, True, torch.bfloat16)}
        with torch.no_grad():
            assert {m[:3] for m in run(torch.inference_mode())} == {(False, True, False)}
        assert {m[:3] for m in run(torch.no_grad())} == {(False, False, False)}
        assert {m[:3] for m in run(contextlib.nullcontext())} == {(True, False, False)}  # defaults again
