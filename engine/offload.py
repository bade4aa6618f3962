"""Store calls made for async flows, run on a few threads so the event loop never waits.

The store speaks blocking database drivers. An async flow that called it on its loop
would hold every other coroutine on that loop for the length of a write (longer while
queued behind other writers), so a thousand runs waking together would wake one by one.
Instead each call runs on this pool and the flow awaits it; the loop runs on meanwhile.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")


class StoreThreads:
    """A small thread pool for blocking store calls awaited by coroutines.

    Example::

        threads = StoreThreads(4)
        run = await threads.call(store.get_run, run_id)
    """

    def __init__(self, workers: int) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="signoff-store")

    async def call(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> R:
        """Run ``fn`` on the pool, in a copy of the caller's context, and await its result."""
        context = contextvars.copy_context()
        call = functools.partial(context.run, fn, *args, **kwargs)
        return await asyncio.get_running_loop().run_in_executor(self._pool, call)

    def start(self, fn: Callable[P, R], /, *args: P.args, **kwargs: P.kwargs) -> Future[R]:
        """Run ``fn`` on the pool, in a copy of the caller's context, without awaiting it
        (from code that may not await: a coroutine being cancelled)."""
        call = functools.partial(contextvars.copy_context().run, fn, *args, **kwargs)
        return self._pool.submit(call)

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


__all__ = ["StoreThreads"]
