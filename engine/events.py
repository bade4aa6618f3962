"""How applications hear about runs: the ``RunObserver`` protocol and its two deliveries.

- ``Engine.add_observer(o)``: every event this process sees, as it sees it; nothing is kept.
- ``Engine.subscribe("name", o)``: a durable consumer. Its position in the events table
  is stored, so each event is delivered at least once, in order, across restarts and
  outages; among several processes that subscribe under one name, one holds the lease.
"""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Protocol

from engine.errors import StoreError
from engine.runs import Event

if TYPE_CHECKING:
    from engine.store import SqlStore

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Receives the engine's events. Raising makes a durable consumer retry the same event."""

    def on_event(self, event: Event) -> None: ...


class DurableConsumer:
    """Delivers stored events to one observer from a named, leased cursor."""

    LEASE_SECONDS = 30.0
    #: how long to wait before retrying an event the observer failed on (doubles, capped)
    RETRY_SECONDS = (0.5, 30.0)

    def __init__(self, store: SqlStore, name: str, observer: RunObserver) -> None:
        self.store = store
        self.name = name
        self.observer = observer
        self.owner = uuid.uuid4().hex
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"signoff-consumer-{name}", daemon=True
        )
        self.position: int | None = None

    def start(self) -> None:
        """Take the cursor (creating it at the newest event) before returning, so that every
        event stored after ``subscribe`` returns is delivered."""
        self.position = self.store.lease_cursor(self.name, self.owner, self.LEASE_SECONDS)
        self._thread.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout)
        try:
            self.store.release_cursor(self.name, self.owner)
        except StoreError:
            logger.warning("could not release cursor", extra={"action": "cursor_release_failed"})

    def _run(self) -> None:
        delay = self.RETRY_SECONDS[0]
        while not self._stop.is_set():
            try:
                position = self.store.lease_cursor(self.name, self.owner, self.LEASE_SECONDS)
                if position is None:
                    # Another process holds this consumer; check again before its lease ends.
                    self._wake.wait(self.LEASE_SECONDS / 3)
                    self._wake.clear()
                    continue
                self.position = position
                delivered_all = self._deliver(position)
                delay = self.RETRY_SECONDS[0]
                if delivered_all:
                    self._wake.wait(self.LEASE_SECONDS / 3)
                    self._wake.clear()
            except Exception:  # the observer or the store failed: keep the event, retry later
                logger.exception(
                    "event delivery failed; will retry",
                    extra={"action": "event_delivery_failed", "consumer": self.name},
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.RETRY_SECONDS[1])

    def _deliver(self, position: int) -> bool:
        events = self.store.events_after(position, limit=200)
        for event in events:
            if self._stop.is_set():
                return True
            self.observer.on_event(event)
            if not self.store.advance_cursor(self.name, self.owner, event.id):
                return True  # lost the lease; the loop leases again
            self.position = event.id
        return len(events) < 200
