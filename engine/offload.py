"""Store calls made for async flows, run on a few threads so the event loop never waits.

The store speaks blocking database drivers. An async flow that called it on its loop
would hold every other coroutine on that loop for the length of a write (longer while
queued behind other writers), so a thousand runs waking together would wake one by one.
Instead each call runs on this pool and the flow awaits it; the loop runs on meanwhile.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextvars
import functools
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, ParamSpec, TypeVar

from signoff.engine.signals import EngineClosed

P = ParamSpec("P")
R = TypeVar("R")

#: how long closing waits for the store calls already made (a run's end, say) to finish
SETTLE_SECONDS = 10.0


class StoreThreads:
    """A small thread pool for blocking store calls awaited by coroutines.

    Example::

        threads = StoreThreads(4)
        run = await threads.call(store.get_run, run_id)
    """

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signoff-store")
        self._lock = threading.Lock()
        self._pending: set[Future[Any]] = set()

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` on the pool, in a copy of the caller's context, and await its result."""
        return await asyncio.wrap_future(self.start(fn, *args, **kwargs))

    async def finishing(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """``call`` for a write that must be made once begun (a run's end): a cancellation
        of the awaiting coroutine (``asyncio.run`` ending its leftover tasks) does not take
        it off the pool's queue, where it would be dropped and the run left running."""
        return await asyncio.shield(asyncio.wrap_future(self.start(fn, *args, **kwargs)))

    def start(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn`` on the pool, in a copy of the caller's context, without awaiting it
        (from code that may not await: a coroutine being cancelled). Raises
        ``EngineClosed`` once ``close`` stopped the pool."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        try:
            future = self._pool.submit(call)
        except RuntimeError:  # "cannot schedule new futures after shutdown": said why
            raise EngineClosed from None
        with self._lock:
            self._pending.add(future)
        future.add_done_callback(self._done)
        return future

    def _done(self, future: Future[Any]) -> None:
        with self._lock:
            self._pending.discard(future)

    def close(self, settle: float = SETTLE_SECONDS) -> None:
        """Let the calls already made finish (for up to ``settle`` seconds), then stop."""
        with self._lock:
            pending = list(self._pending)
        if pending:
            concurrent.futures.wait(pending, timeout=settle)
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["StoreThreads"]
