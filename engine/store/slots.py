"""PostgreSQL: how many pooled connections this process's threads use at once.

The pool keeps ``pool_size`` connections open and, past them, opens one per checkout and
closes it on return: a new server process each time. With a hundred threads answering at
once, each transaction and read took a connection of its own: a burst of 100 answers
opened 48 server sessions and closed them again, and the processes spent their CPU on
that. So each checkout first takes a slot, and there are as many slots as pooled
connections: past that, threads wait for a connection to come back to the pool.

A thread that already holds a slot takes another connection without waiting (a read
inside a transaction), so no thread waits for a slot it holds itself. One that waits
longer than ``WAIT_LIMIT`` goes ahead without a slot (the pool's overflow), and says so in
the log: a bound on the cost of anything that waits on another thread while it holds a
slot.

Example::

    slots = ConnectionSlots(10)
    with slots.taken():
        with engine.connect() as conn:
            ...
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

#: seconds a thread waits for a slot before it takes a connection past the pool
WAIT_LIMIT = 5.0


class ConnectionSlots:
    """At most ``size`` connections in use at once, counting one per thread; no bound with
    ``size`` None."""

    def __init__(self, size: int | None) -> None:
        self.size = size
        self._free = threading.BoundedSemaphore(size) if size is not None else None
        self._holding = threading.local()

    @contextmanager
    def taken(self) -> Iterator[None]:
        """Hold a slot (or the one this thread holds already) for the block."""
        if self._free is None:
            yield
            return
        depth: int = getattr(self._holding, "depth", 0)
        acquired = depth == 0 and self._free.acquire(timeout=WAIT_LIMIT)
        if depth == 0 and not acquired:
            logger.warning(
                "no free connection slot; using one past the pool",
                extra={"action": "connection_slot_timeout", "slots": self.size},
            )
        self._holding.depth = depth + 1
        try:
            yield
        finally:
            self._holding.depth = depth
            if acquired:
                self._free.release()


__all__ = ["WAIT_LIMIT", "ConnectionSlots"]
