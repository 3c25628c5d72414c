"""Shared intermediates (``functional.shared``): caching changes no value."""

from __future__ import annotations

import torch

from unifuse import metrics as M
from unifuse.metrics.functional.shared import caching, memo, shared_cache


def _triple(seed=0, h=48, w=52):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, 256, (2, 3, h, w), generator=g).double()
    b = torch.randint(0, 256, (2, 1, h, w), generator=g).double()  # gray source next to RGB
    f = torch.randint(0, 256, (2, 3, h, w), generator=g).double()
    a[..., :12, :12] = 7.0  # flat windows: the ill-conditioned paths must agree too
    return a, b, f


def test_memo_scope():
    calls = []
    x, y = torch.zeros(2), torch.zeros(2)

    def fn():
        calls.append(1)
        return len(calls)

    assert not caching() and memo("op", (x,), None, fn) == 1 and memo("op", (x,), None, fn) == 2
    with shared_cache():
        assert caching()
        assert memo("op", (x,), None, fn) == 3 and memo("op", (x,), None, fn) == 3
        assert memo("op", (y,), None, fn) == 4  # another tensor (same values) is another key
        assert memo("op", (x,), "p", fn) == 5  # other parameters
        with shared_cache():  # nested scopes share the outer store
            assert memo("op", (x,), None, fn) == 3
    assert not caching() and memo("op", (x,), None, fn) == 6


def test_suite_equals_separate_calls():
    # every metric of one evaluate_batch call (shared intermediates) equals its own call
    a, b, f = _triple()
    names = M.list_metrics()
    for mode in ("native", "gray"):
        together = M.evaluate_batch(f, a, b, metrics=names, mode=mode)
        for n in names:
            alone = M.create(n)(a, b, f, mode=mode)
            assert torch.equal(together[n].nan_to_num(123.0), alone.nan_to_num(123.0)), (mode, n)


def test_map_unique_runs_on_distinct_images_only():
    from unifuse.metrics.functional.shared import map_unique, unique_images

    g = torch.Generator().manual_seed(5)
    a = torch.randint(0, 256, (2, 20, 24), generator=g).double()
    x = torch.stack([a[0], a[1], a[0], a[0], a[1]])
    keep, inverse = unique_images(x)
    assert keep == [0, 1] and inverse.tolist() == [0, 1, 0, 0, 1]
    seen = []

    def fn(t):
        seen.append(t.shape[0])
        return t.cumsum(-1), t * 2

    got = map_unique(fn, x)
    ref = (x.cumsum(-1), x * 2)
    assert seen == [2]
    assert all(torch.equal(u, v) for u, v in zip(got, ref))
    assert torch.equal(map_unique(lambda t: t + 1, a), a + 1)  # all distinct: plain call
