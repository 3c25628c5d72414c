"""Coarse-grained CPU parallelism: independent pieces of work (the metrics of one
:func:`unifuse.metrics.evaluate_batch` call, the phase congruency of each image, the window
pieces of a Swin block in TITA's inference) run on several threads, each running its torch
operations single-threaded. One pool per process, shared by models and metrics.

Why: these operations are small or cache-blocked (banded filters, per-row bands, one FFT
plane stack per image, a few windows of 64 tokens × 60 channels), so torch's intra-op
threading of each operation gains little and, on a loaded machine, every per-op barrier
waits for a descheduled thread; running whole independent pieces side by side keeps every
core busy.

    with parallel_scope(2):                          # caller + 1 helper thread
        results = parallel_map(fn, items)            # = [fn(x) for x in items], in order

* Work sharing: every :func:`parallel_map` call is a *job*; the calling thread runs items of
  its own job while helper threads take items of any open job, newest job first, so
  nested maps (phase-congruency images inside the Qp metric inside the suite) are helped
  as soon as a helper finishes its current item. A caller runs only its own job's items
  (never an unrelated item that might wait on a value the caller
  itself is computing) and blocks only when all of them are taken: no deadlock.
* Inside a scope torch runs single-threaded in the participating threads (helper threads
  call ``torch.set_num_threads(1)`` once; the caller's setting is restored on exit).
* Outside a scope, :func:`parallel_map` opens one with ``torch.get_num_threads()`` workers
  (CPU). With one worker everything is a plain sequential loop.
* Torch's thread-local modes of the calling thread (grad mode, inference mode, CPU
  autocast) hold for its items in the helper threads too.
* Results do not depend on the number of threads: each item is computed by the same code,
  single-threaded, whichever thread runs it; results are returned in item order and the
  first exception raised by an item is re-raised in the caller.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import threading
from typing import Any, Callable, Iterator, List, Optional, Sequence

import torch

__all__ = ["parallel_scope", "parallel_map", "workers"]

_WORKERS: contextvars.ContextVar[int] = contextvars.ContextVar("unifuse_workers", default=0)
_COND = threading.Condition()
_JOBS: List["_Job"] = []  # open jobs, oldest first
_HELPERS: List[threading.Thread] = []


def _torch_modes() -> tuple:
    """The calling thread's thread-local torch modes: (inference mode, grad mode, CPU autocast, its dtype)."""
    return (torch.is_inference_mode_enabled(), torch.is_grad_enabled(), torch.is_autocast_enabled("cpu"),
            torch.get_autocast_dtype("cpu"))


def _call_with_modes(modes: tuple, fn: Callable, x: Any) -> Any:
    inference, grad, cast, dtype = modes
    # inference_mode(False) switches grad mode on, so grad mode is set inside it
    with torch.inference_mode(inference), torch.set_grad_enabled(grad), torch.autocast("cpu", dtype=dtype, enabled=cast):
        return fn(x)


class _Job:
    __slots__ = ("fn", "items", "ctx", "modes", "next", "pending", "results", "error")

    def __init__(self, fn: Callable, items: Sequence, ctx: contextvars.Context):
        self.fn, self.items, self.ctx, self.modes = fn, items, ctx, _torch_modes()
        self.next = 0
        self.pending = len(items)
        self.results: List[Any] = [None] * len(items)
        self.error: Optional[BaseException] = None

    def claim(self) -> Optional[int]:
        """Index of the next unclaimed item (call with ``_COND`` held)."""
        if self.next >= len(self.items):
            return None
        i = self.next
        self.next += 1
        return i


def _run(job: _Job, i: int, in_caller: bool) -> None:
    """Run item ``i`` of ``job`` (without the lock) and record its result."""
    try:
        if job.error is None:
            fn, x = job.fn, job.items[i]
            res = fn(x) if in_caller else job.ctx.copy().run(_call_with_modes, job.modes, fn, x)
        else:
            res = None
    except BaseException as exc:  # noqa: BLE001 - re-raised in the caller
        with _COND:
            if job.error is None:
                job.error = exc
            job.pending -= 1 + (len(job.items) - job.next)  # this item and the unclaimed ones
            job.next = len(job.items)
            _COND.notify_all()
        return
    with _COND:
        job.results[i] = res
        job.pending -= 1
        if job.pending == 0:
            _COND.notify_all()


def _claim_any() -> Optional[tuple]:
    """An unclaimed item of the newest open job that has one (call with ``_COND`` held)."""
    for job in reversed(_JOBS):
        i = job.claim()
        if i is not None:
            return job, i
    return None


def _helper_loop() -> None:
    torch.set_num_threads(1)
    while True:
        with _COND:
            got = _claim_any()
            while got is None:
                _COND.wait()
                got = _claim_any()
        _run(*got, in_caller=False)


def _ensure_helpers(n: int) -> None:
    """Start helper threads until there are ``n`` (daemon threads, started once per process)."""
    started = []
    with _COND:
        while len(_HELPERS) < n:
            ev = threading.Event()

            def target(ev=ev):
                torch.set_num_threads(1)
                ev.set()
                _helper_loop()

            t = threading.Thread(target=target, name=f"unifuse-worker-{len(_HELPERS)}", daemon=True)
            _HELPERS.append(t)
            started.append((t, ev))
    for t, ev in started:
        t.start()
        ev.wait()


def _after_fork_in_child() -> None:
    """A forked child has none of the parent's helper threads: start afresh."""
    global _COND
    _COND = threading.Condition()
    _JOBS.clear()
    _HELPERS.clear()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def workers() -> int:
    """Threads available to :func:`parallel_map` in the current scope (0 outside a scope)."""
    return _WORKERS.get()


@contextlib.contextmanager
def parallel_scope(n: Optional[int] = None) -> Iterator[int]:
    """Scope in which :func:`parallel_map` uses ``n`` threads (the caller and ``n - 1``
    helpers; default ``torch.get_num_threads()``), each running torch single-threaded.
    A nested scope keeps the outer one's setting."""
    if _WORKERS.get():
        yield _WORKERS.get()
        return
    n = max(1, int(torch.get_num_threads() if n is None else n))
    saved = torch.get_num_threads()
    token = _WORKERS.set(n)
    try:
        if n > 1:
            torch.set_num_threads(1)
            _ensure_helpers(n - 1)
        yield n
    finally:
        _WORKERS.reset(token)
        if n > 1:
            torch.set_num_threads(saved)


def parallel_map(fn: Callable[[Any], Any], items: Sequence, device: Optional[torch.device] = None) -> list:
    """``[fn(x) for x in items]``, the items spread over the threads of the current
    :func:`parallel_scope` (one is opened with ``torch.get_num_threads()`` threads when none
    is open and ``device`` is a CPU device or ``None``). Sequential for one item, one
    worker, or a non-CPU ``device``."""
    items = list(items)
    if len(items) <= 1 or (device is not None and torch.device(device).type != "cpu"):
        return [fn(x) for x in items]
    if not _WORKERS.get():
        if torch.get_num_threads() <= 1:
            return [fn(x) for x in items]
        with parallel_scope():
            return parallel_map(fn, items)
    if _WORKERS.get() <= 1:
        return [fn(x) for x in items]
    job = _Job(fn, items, contextvars.copy_context())
    with _COND:
        _JOBS.append(job)
        _COND.notify_all()
    try:
        while True:
            with _COND:
                if job.pending == 0:
                    break
                i = job.claim()
                if i is None:  # every item is taken: wait for the other threads
                    _COND.wait()
                    continue
            _run(job, i, in_caller=True)
    finally:
        with _COND:
            _JOBS.remove(job)
    if job.error is not None:
        raise job.error
    return job.results
