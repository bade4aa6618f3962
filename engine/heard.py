"""What this process heard of runs from the events of every process: which were cancelled
and which were asked to suspend, kept as long as it can matter here.

A process hears of every run's cancellation, not only of the runs it executes, and a
long-lived replica would otherwise keep each id it ever heard. What it heard matters to a
run executing here (its flow checks between steps), and briefly to a run about to start
here (the cancellation may be heard before its context exists), so an entry is dropped
once it is older than ``grace`` seconds and no run executing here has its id.
"""

from __future__ import annotations

import contextlib
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from typing import Protocol


class Executing(Protocol):
    """A run executing here, as ``Heard`` sees it (a ``RunContext``)."""

    @property
    def run_id(self) -> str: ...


class Heard:
    """Runs heard cancelled, and suspend requests heard per run, pruned as they lapse.

    >>> heard = Heard()
    >>> heard.cancelled("r1")
    >>> heard.is_cancelled("r1")
    True
    """

    #: the longest a flow waits on a cancel of its run that this process is storing
    STORING_WAIT_SECONDS = 30.0

    def __init__(self, grace: float = 60.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.grace = grace
        self.clock = clock
        self._lock = threading.Lock()
        #: run id -> monotonic time heard
        self._cancelled: dict[str, float] = {}
        #: run id -> set once this process's cancel of it is stored or failed (``cancelling``)
        self._cancelling: dict[str, threading.Event] = {}
        #: run id -> (metadata keys of suspend requests, monotonic time last heard)
        self._suspends: dict[str, tuple[set[str], float]] = {}
        #: the runs executing in this process, by ``id()`` (a context lives as long as its
        #: run executes here; contexts compare by value, so they cannot be set members)
        self._executing: weakref.WeakValueDictionary[int, Executing] = weakref.WeakValueDictionary()
        self._pruned_at = clock()

    def executing(self, ctx: Executing) -> None:
        """Keep what is heard of ``ctx``'s run while it executes here."""
        with self._lock:
            self._executing[id(ctx)] = ctx

    def executing_now(self) -> list[Executing]:
        """The runs executing here now."""
        with self._lock:
            return list(self._executing.values())

    def cancelled(self, run_id: str) -> None:
        with self._lock:
            self._cancelled[run_id] = self.clock()
            self._prune()

    @contextlib.contextmanager
    def cancelling(self, run_id: str) -> Iterator[None]:
        """While this process stores a cancel of ``run_id`` (call ``cancelled`` inside, once
        it is stored): a flow of the run asking ``is_cancelled`` meanwhile waits for the
        outcome, rather than starting its next task in between (stored, not yet heard)."""
        done = threading.Event()
        with self._lock:
            self._cancelling[run_id] = done
        try:
            yield
        finally:
            with self._lock:
                if self._cancelling.get(run_id) is done:
                    del self._cancelling[run_id]
            done.set()

    def is_cancelled(self, run_id: str) -> bool:
        storing = self._cancelling.get(run_id)
        if storing is not None:
            # A commit's wait at most; bounded, should the store hang.
            storing.wait(self.STORING_WAIT_SECONDS)
        return run_id in self._cancelled

    def suspend_requested(self, run_id: str, key: str) -> None:
        with self._lock:
            keys = self._suspends.get(run_id, (set(), 0.0))[0]
            keys.add(key)
            self._suspends[run_id] = (keys, self.clock())
            self._prune()

    def suspend_requests(self, run_id: str) -> set[str]:
        with self._lock:
            entry = self._suspends.get(run_id)
            return set(entry[0]) if entry is not None else set()

    def forget_suspend_request(self, run_id: str, key: str) -> None:
        with self._lock:
            entry = self._suspends.get(run_id)
            if entry is not None:
                entry[0].discard(key)
                if not entry[0]:
                    del self._suspends[run_id]

    def __len__(self) -> int:
        """How many runs something is kept for."""
        return len(self._cancelled.keys() | self._suspends.keys())

    def _prune(self) -> None:
        """Drop what lapsed: at most once per ``grace``, so hearing stays O(1) on average."""
        now = self.clock()
        if now - self._pruned_at < self.grace:
            return
        self._pruned_at = now
        here = {ctx.run_id for ctx in list(self._executing.values())}
        old = now - self.grace
        for run_id in [r for r, at in self._cancelled.items() if at <= old and r not in here]:
            del self._cancelled[run_id]
        for run_id in [r for r, (_, at) in self._suspends.items() if at <= old and r not in here]:
            del self._suspends[run_id]


__all__ = ["Executing", "Heard"]
