"""Flows waiting for input in this process, and how they are woken.

A waiter mostly learns "look again": it then re-reads its pause from the store, so a
spurious or duplicate wake-up is harmless and a missed one is impossible (the waiter
registers before the pause is stored). Two wake-ups carry the answer itself, so that the
waiter has nothing to read: an answer validated by a resumer in this process (``Answer``),
and an answer another process stored, as its event told this process (``Delivered``).
A waiter that reads its answer before the resumer here hands it over takes what that
resumer judged (``Judged``): the model's validators run once per answer.
One tells it to stop: this process runs its run again (``Waiters.run_again``), or its
engine closes (``Waiters.stop_all``).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections import defaultdict
from dataclasses import dataclass
from typing import Any, Protocol

from signoff.engine.runs import Pause


class Answer:
    """An answer handed straight to a waiter in this process, already validated."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value = value
        self.error = error


@dataclass(frozen=True)
class Judged:
    """An answer a resumer in this process judged for a waiter, before storing it."""

    input: Any
    answer: Answer


@dataclass(frozen=True)
class Delivered:
    """An answer another process stored for a waiter's pause, as the event it committed
    with the answer carries it (the same transaction wrote both)."""

    response: Any
    responder: str | None


@dataclass(frozen=True)
class Asked:
    """What a waiting flow asked, as it stored it: its pause, and its run's flow and
    starter. With it, a resumer in this process judges an answer without reading the run
    back; storing the answer then checks that nothing of it changed since
    (``SqlStore.answer_pause``'s ``still_paused_by``)."""

    pause: Pause
    flow_name: str
    started_by: str | None


class Waiter(Protocol):
    key: str
    model: Any
    answer: Answer | None
    delivered: Delivered | None
    #: set once the pause is stored
    asked: Asked | None
    #: what a resumer in this process judged, with the input it judged: set before that
    #: answer is stored, so a wake-up that beats its hand-over does not judge it again
    judged: Judged | None
    #: the waiting flow's context, as it was when it started waiting: a resumer in this
    #: process judges an answer in a copy of it, as though the flow loaded the answer
    context: contextvars.Context
    #: this process claimed the run again: the waiting flow was taken for dead, and stops
    taken_over: bool

    def wake(self) -> None: ...


class ThreadWaiter:
    """Blocks a thread until woken."""

    def __init__(self, key: str = "", model: Any = None) -> None:
        self.key = key
        self.model = model
        self.answer: Answer | None = None
        self.delivered: Delivered | None = None
        self.asked: Asked | None = None
        self.judged: Judged | None = None
        self.context = contextvars.copy_context()
        self.taken_over = False
        self._event = threading.Event()

    def wake(self) -> None:
        self._event.set()

    def wait(self, timeout: float | None) -> bool:
        woke = self._event.wait(timeout)
        self._event.clear()
        return woke


class LoopWaiter:
    """Suspends a coroutine until woken from any thread."""

    def __init__(self, key: str = "", model: Any = None) -> None:
        self.key = key
        self.model = model
        self.answer: Answer | None = None
        self.delivered: Delivered | None = None
        self.asked: Asked | None = None
        self.judged: Judged | None = None
        self.context = contextvars.copy_context()
        self.taken_over = False
        self._loop = asyncio.get_running_loop()
        self._event = asyncio.Event()

    def wake(self) -> None:
        # Its loop closed: the flow read its answer itself and is done.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._event.set)

    def gone(self) -> bool:
        """Whether its loop was closed with the flow still awaiting: it never runs again."""
        return self._loop.is_closed()

    async def wait(self, timeout: float | None) -> bool:
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        self._event.clear()
        return True


class Waiters:
    """Waiters by run id."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_run: defaultdict[str, set[Waiter]] = defaultdict(set)

    def add(self, run_id: str, waiter: Waiter) -> None:
        with self._lock:
            self._by_run[run_id].add(waiter)

    def remove(self, run_id: str, waiter: Waiter) -> None:
        with self._lock:
            waiting = self._by_run.get(run_id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._by_run[run_id]

    def wake(self, run_id: str) -> None:
        with self._lock:
            waiting = list(self._by_run.get(run_id, ()))
        for waiter in waiting:
            waiter.wake()

    def run_again(self, run_id: str) -> None:
        """This process claimed ``run_id`` to run it again: a flow of it still waiting here
        stood still long enough to be taken for dead (its answer, if any, is the new
        execution's). Such waiters are told to stop, and no answer is handed to them.

        Owner checks cannot tell the two apart: both executions belong to this process."""
        with self._lock:
            stale = self._by_run.pop(run_id, ())
        for waiter in stale:
            waiter.taken_over = True
            waiter.wake()

    def stop_all(self) -> None:
        """The engine closes: every flow waiting here stops (``taken_over``), as for
        ``run_again``; none waits on until its timeout for what cannot come now."""
        with self._lock:
            stale, self._by_run = self._by_run, defaultdict(set)
        for waiting in stale.values():
            for waiter in waiting:
                waiter.taken_over = True
                waiter.wake()

    def take_gone(self) -> list[tuple[str, Waiter]]:
        """Remove and return the waiters whose event loop was closed under them (the loop
        dropped with the flow still awaiting its pause): nothing will ever wake them."""
        with self._lock:
            gone: list[tuple[str, Waiter]] = [
                (run_id, waiter)
                for run_id, waiting in self._by_run.items()
                for waiter in waiting
                if isinstance(waiter, LoopWaiter) and waiter.gone()
            ]
        for run_id, waiter in gone:
            self.remove(run_id, waiter)
        return gone

    def waiting_for(self, run_id: str, key: str | None) -> Waiter | None:
        """The waiter in this process for pause ``key`` of ``run_id``, if any; with
        ``key`` None, the run's one waiter (None if it has several)."""
        with self._lock:
            waiting = self._by_run.get(run_id, ())
            if key is None:
                return next(iter(waiting)) if len(waiting) == 1 else None
            return next((w for w in waiting if w.key == key), None)

    def any_waiting(self) -> bool:
        """Whether any flow of this process waits."""
        with self._lock:
            return bool(self._by_run)

    def __contains__(self, run_id: str) -> bool:
        with self._lock:
            return run_id in self._by_run
