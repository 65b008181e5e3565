"""The threads the trust checks share: the checks of one output run side by side.

An enhancement's checks (:mod:`models.trust`) are numpy and scipy.fft work on whole planes,
which release the GIL, while the prediction before them keeps every core busy and they would
otherwise use one. One pool per process, made on first use (a Celery prefork child makes its
own: threads do not survive ``fork``). The price: the checks' temporaries of up to one channel
per thread are held at once, not one channel's.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")

THREAD_PREFIX = "trust-check"
_pool: ThreadPoolExecutor | None = None
_pool_pid: int | None = None


def check_threads() -> ThreadPoolExecutor:
    """This process's pool: one thread per core it may run on, and one more (at least three),
    so that a long task beside short ones does not leave a core idle."""
    global _pool, _pool_pid
    if _pool is None or _pool_pid != os.getpid():
        cores = len(os.sched_getaffinity(0))
        _pool = ThreadPoolExecutor(max_workers=max(3, cores + 1), thread_name_prefix=THREAD_PREFIX)
        _pool_pid = os.getpid()
    return _pool


def _in_pool() -> bool:
    return threading.current_thread().name.startswith(THREAD_PREFIX)


def submit_beside(fn: Callable[..., R], *args: Any, **kwargs: Any) -> Future[R]:
    """``fn(*args, **kwargs)`` started in the pool; run at once when called from one of its
    threads (a task waiting for tasks of a full pool would wait for ever)."""
    if not _in_pool():
        return check_threads().submit(fn, *args, **kwargs)
    done: Future[R] = Future()
    try:
        done.set_result(fn(*args, **kwargs))
    except BaseException as exc:  # delivered by .result(), as the pool would
        done.set_exception(exc)
    return done


def map_beside(fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """``[fn(x) for x in items]``, in the pool, in order; inline when called from one of its
    threads (as :func:`submit_beside`)."""
    if _in_pool():
        return [fn(x) for x in items]
    return list(check_threads().map(fn, items))
