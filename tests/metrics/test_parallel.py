"""The metrics on :mod:`unifuse.parallel`: a memo computed once across threads, suite values
independent of the number of workers."""

from __future__ import annotations

import time

import torch

from unifuse import metrics as M
from unifuse.metrics.functional.shared import memo, shared_cache
from unifuse.parallel import parallel_map, parallel_scope


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
