"""Intermediates shared between metrics within one evaluation call.

Many metrics derive the same quantities from the same images (``normalize1`` images and
their joint histograms for MI/NMI/TE/Qncie, the 7x7 Gaussian moments of Qc and Qy, the
VIF pyramid statistics of VIF and VIFF, the per-channel views of the RGB wrapper).
:func:`shared_cache` opens a scope in which :func:`memo` computes each of them once::

    with shared_cache():
        for m in metrics:
            m(a, b, f)

Keys are an operation name, hashable parameters and the **identity** of the input tensors
(the cache holds references to them, so an identity cannot be reused by another tensor
while the scope is open). Outside a scope :func:`memo` simply calls the function, so the
cores behave exactly as without caching. Cached results must be treated as read-only.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
from typing import Any, Callable, Dict, Hashable, Iterator, Optional, Sequence

import torch

Tensor = torch.Tensor

_LOCK = threading.Lock()
_CACHE: contextvars.ContextVar[Optional[Dict[Any, Any]]] = contextvars.ContextVar("unifuse_metric_cache", default=None)


@contextlib.contextmanager
def shared_cache() -> Iterator[Dict[Any, Any]]:
    """Scope in which :func:`memo` results are kept (nested scopes reuse the outer one)."""
    if _CACHE.get() is not None:
        yield _CACHE.get()
        return
    store: Dict[Any, Any] = {}
    token = _CACHE.set(store)
    try:
        yield store
    finally:
        _CACHE.reset(token)
        store.clear()


def memo(name: str, tensors: Sequence[Tensor], params: Hashable, fn: Callable[[], Any]) -> Any:
    """``fn()`` computed once per (``name``, ``params``, identities of ``tensors``) inside a
    :func:`shared_cache` scope; a plain call outside one.

    Thread-safe (metrics of one call may run on several threads, see
    :mod:`.parallel`): a thread asking for a value another thread is computing waits for it."""
    store = _CACHE.get()
    if store is None:
        return fn()
    key = (name, params, tuple(id(t) for t in tensors))
    while True:
        with _LOCK:
            hit = store.get(key)
            if hit is None:
                pending = threading.Event()
                store[key] = (tuple(tensors), pending, None)  # the references pin the identities
                break
        if not hit[1].is_set():
            hit[1].wait()
            continue  # re-read: the value, or a failed computation (entry removed)
        return hit[2]
    try:
        value = fn()
    except BaseException:
        with _LOCK:
            del store[key]
        pending.set()
        raise
    with _LOCK:
        store[key] = (tuple(tensors), pending, value)
    pending.set()
    return value


def unique_images(x: Tensor):
    """Indices of the distinct images of ``(N, H, W)`` and, for every image, the position of
    its copy among them (e.g. a gray source replicated over the RGB channels by the metric
    wrapper). Candidates are grouped by cheap signatures, then compared exactly."""
    n = x.shape[0]
    w = torch.linspace(1.0, 2.0, x.shape[-1], dtype=x.dtype, device=x.device)
    sig = torch.stack([x.sum(dim=(-2, -1)), (x * x).sum(dim=(-2, -1)), (x * w).sum(dim=(-2, -1))], dim=1)
    sig = sig.tolist()
    keep: list = []
    inverse = []
    for i in range(n):  # N is small (images x channels); the exact test runs only on equal signatures
        for pos, k in enumerate(keep):
            if sig[i] == sig[k] and torch.equal(x[i], x[k]):
                inverse.append(pos)
                break
        else:
            inverse.append(len(keep))
            keep.append(i)
    return keep, torch.tensor(inverse, device=x.device)


def map_unique(fn: Callable[[Tensor], Any], x: Tensor) -> Any:
    """``fn(x)`` for a per-image function ``fn`` (``(N, H, W)`` -> a tensor or tuple of tensors
    with leading dim N, each image's result depending on that image only), evaluated on the
    distinct images of ``x`` only and expanded back (same values)."""
    if x.shape[0] <= 1:
        return fn(x)
    keep, inverse = unique_images(x)
    if len(keep) == x.shape[0]:
        return fn(x)
    out = fn(x[keep])
    if isinstance(out, tuple):
        return type(out)(*(t[inverse] for t in out)) if hasattr(out, "_fields") else tuple(t[inverse] for t in out)
    return out[inverse]


def caching() -> bool:
    """Whether a :func:`shared_cache` scope is open."""
    return _CACHE.get() is not None


__all__ = ["shared_cache", "memo", "caching", "unique_images", "map_unique"]
