"""Coarse-grained parallelism (``functional.parallel``): same results, in order, any nesting."""

from __future__ import annotations

import threading
import time

import pytest
import torch

from unifuse import metrics as M
from unifuse.metrics.functional.parallel import parallel_map, parallel_scope, workers
from unifuse.metrics.functional.shared import memo, shared_cache


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


def test_memo_computed_once_across_threads():
    calls = []
    x = torch.zeros(3)

    def slow():
        calls.append(1)
        time.sleep(0.05)
        return 42

    with shared_cache(), parallel_scope(2):
        got = parallel_map(lambda _: memo("slow", (x,), None, slow), range(4))
    assert got == [42] * 4 and len(calls) == 1


def test_suite_values_do_not_depend_on_workers():
    g = torch.Generator().manual_seed(3)
    a = torch.randint(0, 256, (1, 3, 48, 52), generator=g).double()
    b = torch.randint(0, 256, (1, 1, 48, 52), generator=g).double()
    f = torch.randint(0, 256, (1, 3, 48, 52), generator=g).double()
    names = M.default_metrics()
    one = M.evaluate_batch(f, a, b, metrics=names, workers=1)
    two = M.evaluate_batch(f, a, b, metrics=names, workers=2)
    assert list(one) == list(two) == names  # keys in the requested order
    for n in names:
        assert torch.equal(one[n].nan_to_num(123.0), two[n].nan_to_num(123.0)), n


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
