"""What a process does with the runs' events it hears: it wakes the flows waiting here,
notes cancellations and requests to suspend (checked at the runs' boundaries), wakes
workers and timers, and hands each event on to observers and durable consumers."""

from __future__ import annotations

import logging
from collections.abc import Callable

from signoff.engine.dispatch import Dispatcher, Interest
from signoff.engine.events import DurableConsumer, RunObserver
from signoff.engine.heard import Heard
from signoff.engine.runs import Event, EventKind, RunState
from signoff.engine.store import SqlStore
from signoff.engine.timers import Timers
from signoff.engine.waiters import Delivered, Waiters

logger = logging.getLogger(__name__)

#: The events ``Hearing._dispatch`` acts on without observers (keep the two together).
_ACTED_ON = Interest(
    kinds=frozenset(
        {
            EventKind.INPUT_RECEIVED,
            EventKind.PAUSE_TIMED_OUT,
            EventKind.WAITING_FOR_INPUT,
            EventKind.SUSPEND_REQUESTED,
        }
    ),
    states=frozenset({RunState.CANCELLED, RunState.SCHEDULED}),
)


class Hearing:
    """The events half of ``Engine``."""

    store: SqlStore
    process_id: str
    waiters: Waiters
    timers: Timers
    heard: Heard
    dispatcher: Dispatcher
    _observers: list[RunObserver]
    _consumers: list[DurableConsumer]
    _schedule_listeners: list[Callable[[], None]]

    def add_observer(self, observer: RunObserver) -> None:
        """Offer every event this process sees to ``observer`` (not durable; see subscribe)."""
        self._observers.append(observer)

    def remove_observer(self, observer: RunObserver) -> None:
        self._observers.remove(observer)

    def subscribe(
        self, consumer: str, observer: RunObserver, *, start: bool = True, backlog: int = 0
    ) -> DurableConsumer:
        """Deliver stored events to ``observer`` at least once, in order, from a named cursor.

        A new consumer starts with the events stored after it first subscribes. With a
        ``backlog`` (a number), a new consumer is first handed the question
        (``WAITING_FOR_INPUT``) of each pause waiting when it first subscribes, the newest
        ``backlog`` of them: an application that posts questions also posts those asked
        before it first ran (not thousands of old ones, which are for listing). With
        ``start=False`` nothing is delivered until ``start()`` is called on the result, so
        the observer can be handed its ``check_lease`` first::

            durable = engine.subscribe("slack", notifier, start=False)
            notifier.fence = durable.check_lease
            durable.start()
        """
        durable = DurableConsumer(self.store, consumer, observer, backlog=backlog)
        self._consumers.append(durable)
        if start:
            durable.start()
        return durable

    def on_scheduled(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` whenever a run becomes scheduled (workers use this to wake)."""
        self._schedule_listeners.append(callback)

    def notify(self) -> None:
        """Tell this process's dispatcher that new events were stored."""
        self.dispatcher.poke()

    def _deliver(self, event: Event) -> None:
        """Hand an answer that another process stored to the flow waiting for it here, so
        that the flow need not read it back (an event from before answers rode along, or
        a quorum's, carries none: the flow reads its pause)."""
        if "response" not in event.data or event.data.get("owner") != self.process_id:
            # Not for a flow waiting here (or from before answers named their process):
            # a waiter woken by the event reads its pause and its run.
            return
        waiter = self.waiters.waiting_for(event.run_id, str(event.data.get("key")))
        if waiter is not None and waiter.answer is None:
            responder = event.data.get("responder")
            waiter.delivered = Delivered(
                event.data["response"], None if responder is None else str(responder)
            )

    def _interest(self) -> Interest | None:
        """Every event while an observer is to see each; else only what ``_dispatch`` acts on."""
        return None if self._observers else _ACTED_ON

    def _dispatch(self, events: list[Event]) -> None:
        for event in events:
            if event.kind is EventKind.INPUT_RECEIVED:
                self._deliver(event)
                self.waiters.wake(event.run_id)
            elif event.kind is EventKind.PAUSE_TIMED_OUT:
                self.waiters.wake(event.run_id)
            elif event.kind is EventKind.STATE_CHANGED:
                state = event.data.get("state")
                if state == RunState.CANCELLED.value:
                    self.heard.cancelled(event.run_id)
                    self.waiters.wake(event.run_id)
                elif state == RunState.SCHEDULED.value:
                    for callback in self._schedule_listeners:
                        callback()
            elif event.kind is EventKind.WAITING_FOR_INPUT and event.data.get("timed", True):
                self.timers.wakeup()
            elif event.kind is EventKind.SUSPEND_REQUESTED:
                self.heard.suspend_requested(event.run_id, str(event.data.get("key")))
            for observer in list(self._observers):
                try:
                    observer.on_event(event)
                except Exception:
                    logger.exception("observer failed", extra={"action": "observer_failed"})
        for consumer in self._consumers:
            consumer.poke()

    def is_cancelled(self, run_id: str) -> bool:
        return self.heard.is_cancelled(run_id)

    def suspend_requests(self, run_id: str) -> set[str]:
        """Metadata keys of requests to suspend ``run_id`` that this process has heard of."""
        return self.heard.suspend_requests(run_id)

    def heard_suspend_request(self, run_id: str, key: str) -> None:
        """Note a request to suspend ``run_id`` made in this process, before its event comes
        back: a run here that ends right after the request then suspends, as asked."""
        self.heard.suspend_requested(run_id, key)

    def forget_suspend_request(self, run_id: str, key: str) -> None:
        self.heard.forget_suspend_request(run_id, key)
