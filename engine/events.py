"""How applications hear about runs: the ``RunObserver`` protocol and its two deliveries.

- ``Engine.add_observer(o)``: every event this process sees, as it sees it; nothing is kept.
- ``Engine.subscribe("name", o)``: a durable consumer. Its position in the events table
  is stored, so each event is delivered at least once, in order, across restarts and
  outages; among several processes that subscribe under one name, one holds the lease,
  and an observer can check it (``DurableConsumer.check_lease``) before acting. Made with a
  ``backlog`` (say 100), a new consumer first hears the question (``WAITING_FOR_INPUT``)
  of each of the newest 100 pauses that waited when it was made, then what happened after;
  a question edited outside Signoff so that it cannot be read is stepped past, and said
  once (see ``store.backlog_rows``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import TYPE_CHECKING, Protocol

from signoff.engine.errors import DeliverLater, LeaseLost, StoreError
from signoff.engine.outages import Outage
from signoff.engine.runs import Event

if TYPE_CHECKING:
    from signoff.engine.store import SqlStore

logger = logging.getLogger(__name__)


class RunObserver(Protocol):
    """Receives the engine's events. Raising makes a durable consumer retry the same event."""

    def on_event(self, event: Event) -> None: ...


class DurableConsumer:
    """Delivers stored events to one observer from a named, leased cursor.

    The lease is short and renewed every ``RENEW_SECONDS`` by a thread of its own, also
    while a slow batch is in flight, so a live holder keeps it and a dead one loses it
    within ``LEASE_SECONDS``; a process waiting for it tries as often. Each time the lease
    is taken, it is taken under a new token (a fencing token): ``check_lease()`` tells an
    observer, before each action that must not be repeated, whether its delivery still
    holds the lease, and a batch whose lease was lost is given up where it stands.
    """

    LEASE_SECONDS = 3.0
    RENEW_SECONDS = 1.0
    #: how long to wait before retrying an event the observer failed on (doubles, capped)
    RETRY_SECONDS = (0.5, 30.0)
    BATCH = 200
    #: how long stopping waits for a delivery in flight, in all
    STOP_SECONDS = 5.0

    def __init__(
        self, store: SqlStore, name: str, observer: RunObserver, *, backlog: int = 0
    ) -> None:
        self.store = store
        self.name = name
        self.observer = observer
        self.backlog = backlog
        #: whether the cursor may still have a backlog (read until it has none)
        self._behind = True
        self._base = uuid.uuid4().hex
        self._takes = 0
        #: the token this process holds the lease under, or None
        self._token: str | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"signoff-consumer-{name}", daemon=True
        )
        self._keeper = threading.Thread(
            target=self._keep, name=f"signoff-lease-{name}", daemon=True
        )
        self.position: int | None = None
        #: the event the observer is handed now, named when it fails
        self._handing: Event | None = None

    @property
    def owner(self) -> str | None:
        """The fencing token the lease is held under now (None while another holds it)."""
        return self._token

    def start(self) -> None:
        """Take the cursor (creating it at the newest event) before returning, so that every
        event stored after ``subscribe`` returns is delivered."""
        self._try_take()
        self._thread.start()
        self._keeper.start()

    def poke(self) -> None:
        self._wake.set()

    def stop(self, timeout: float | None = None) -> None:
        """Stop delivering; wait up to ``timeout`` (``STOP_SECONDS``) in all for a delivery
        in flight (a post to a slow Slack), and release the lease unless it is still going.
        Stopping again does nothing (the Slack app stops its consumer, then its engine)."""
        if self._stop.is_set():
            return
        self._stop.set()
        self._wake.set()
        deadline = time.monotonic() + (self.STOP_SECONDS if timeout is None else timeout)
        for thread in (self._thread, self._keeper):
            # Not started when ``start`` failed (the database refused the lease's write):
            # the process is stopping with that error, which this must not replace.
            if thread.ident is not None:
                thread.join(max(0.0, deadline - time.monotonic()))
        token, self._token = self._token, None
        if token is None:
            return
        if self._thread.is_alive():
            # Released, the lease would let another replica post the event in flight again
            # before this post lands; it runs out within LEASE_SECONDS instead.
            logger.warning(
                "stopped with a delivery still in flight; its lease is left to run out",
                extra={"action": "consumer_left_busy", "consumer": self.name},
            )
            return
        try:
            # Released at once: another process takes over without waiting for expiry.
            self.store.release_cursor(self.name, token)
        except StoreError:
            logger.warning("could not release cursor", extra={"action": "cursor_release_failed"})

    def check_lease(self) -> None:
        """Raise ``LeaseLost`` unless this delivery still holds the lease (ask the database).

        Call it right before an action that another holder would repeat (posting).
        """
        token = self._token
        if token is None or not self.store.holds_cursor(self.name, token):
            raise LeaseLost(self.name)

    def _try_take(self) -> None:
        """Take the lease under a new token if nobody holds it; renew it if we do."""
        token = self._token
        if token is None:
            self._takes += 1
            token = f"{self._base}.{self._takes}"
        position = self.store.lease_cursor(
            self.name, token, self.LEASE_SECONDS, backlog=self.backlog
        )
        if position is None:
            if self._token is not None:
                logger.warning(
                    "consumer lease lost", extra={"action": "lease_lost", "consumer": self.name}
                )
            self._token = None
            return
        if self._token is None:
            self.position = position
            self._token = token
            logger.info(
                "consumer lease taken", extra={"action": "lease_taken", "consumer": self.name}
            )
            self._wake.set()

    def _keep(self) -> None:
        outage = Outage(
            logger,
            "lease_renew_failed",
            "lease_renew_recovered",
            failed="could not renew or take the lease",
            recovered="lease renewed or taken again after %d failed tries",
            consumer=self.name,
        )
        while not self._stop.wait(self.RENEW_SECONDS):
            try:
                self._try_take()
            except StoreError:
                # Not renewed: if this lasts past the lease, check_lease refuses to post.
                outage.failed()
                continue
            outage.over()

    def _run(self) -> None:
        delay = self.RETRY_SECONDS[0]
        outage = Outage(
            logger,
            "consumer_store_failed",
            "consumer_recovered",
            failed="cannot deliver events: %s; trying again every second",
            recovered="events delivered again after %d failed tries",
            consumer=self.name,
        )
        while not self._stop.is_set():
            token = self._token
            if token is None:
                self._wake.wait(self.RENEW_SECONDS)
                self._wake.clear()
                continue
            try:
                delivered_all = self._deliver(token)
                delay = self.RETRY_SECONDS[0]
                outage.over()
                if delivered_all:
                    self._wake.wait(self.RENEW_SECONDS * 10)
                    self._wake.clear()
            except LeaseLost:
                logger.warning(
                    "lease lost during a batch; batch given up",
                    extra={"action": "batch_given_up", "consumer": self.name},
                )
                if self._token == token:
                    self._token = None
            except DeliverLater as exc:
                logger.warning(
                    "event delivery deferred: %s",
                    exc,
                    extra={
                        "action": "event_delivery_deferred",
                        "consumer": self.name,
                        "run_id": exc.run_id,
                    },
                )
                self._stop.wait(max(delay, exc.seconds))
                delay = min(delay * 2, self.RETRY_SECONDS[1])
            except StoreError as exc:
                # The database is down, most likely: said once, then tried again every
                # second, as the worker does. Backing off (up to 30 s) left the observer
                # (Slack) silent that long after the database came back.
                outage.failed(exc)
                self._stop.wait(self.RENEW_SECONDS)
            except Exception as exc:  # the observer failed: keep the event, retry later
                event, self._handing = self._handing, None
                logger.exception(
                    "event delivery failed; will retry: %s%s",
                    f"{type(exc).__name__}: {str(exc)[:300]}",
                    f" (run {event.run_id}, {event.kind.value})" if event else "",
                    extra={
                        "action": "event_delivery_failed",
                        "consumer": self.name,
                        "run_id": event.run_id if event else None,
                        "event": event.kind.value if event else None,
                    },
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.RETRY_SECONDS[1])

    def _deliver(self, token: str) -> bool:
        if self._behind and not self._deliver_backlog(token):
            return False
        position = self.store.cursor_position(self.name, token)
        if position is None:
            raise LeaseLost(self.name)
        self.position = position
        # An events row edited outside Signoff so that it cannot be read is not delivered:
        # what it says cannot be known, and it held back every event after it for good.
        # The cursor moves past it before the next event is delivered, so that it is said
        # once (``event_unreadable``, by the store) and never read again.
        page = self.store.read_events(position, self.BATCH, reader=f"consumer {self.name}")
        for event in page.events:
            if self._stop.is_set():
                return True
            if self._token != token:
                raise LeaseLost(self.name)
            self._step_past(token, max((s for s in page.skipped if s < event.id), default=0))
            self._handing = event
            self.observer.on_event(event)
            self._handing = None
            if not self.store.advance_cursor(self.name, token, event.id):
                raise LeaseLost(self.name)
            self.position = event.id
        self._step_past(token, page.position)
        return not page.full

    def _step_past(self, token: str, position: int) -> None:
        """Move the cursor to ``position`` if it is ahead (past rows that were skipped)."""
        if self.position is None or position > self.position:
            if not self.store.advance_cursor(self.name, token, position):
                raise LeaseLost(self.name)
            self.position = position

    def _deliver_backlog(self, token: str) -> bool:
        """Deliver a batch of the cursor's backlog; True once it has none left."""
        # A question edited outside Signoff so that it cannot be read is not delivered (it
        # held back every question after it, and the consumer's making): the backlog moves
        # past it before the next is delivered, so that it is said once (by the store).
        page = self.store.read_cursor_backlog(
            self.name, token, limit=self.BATCH, reader=f"consumer {self.name} (backlog)"
        )
        if page is None:
            self._behind = False
            return True
        done = 0
        for event in page.events:
            if self._stop.is_set():
                return False
            if self._token != token:
                raise LeaseLost(self.name)
            done = self._backlog_past(token, done, page.skipped, event.id)
            self._handing = event
            self.observer.on_event(event)
            self._handing = None
            if not self.store.advance_backlog(self.name, token, event.id):
                raise LeaseLost(self.name)
            done = event.id
        if page.full:
            self._backlog_past(token, done, page.skipped, page.position + 1)
            return False
        if not self.store.advance_backlog(self.name, token, None):
            raise LeaseLost(self.name)
        logger.info(
            "caught up on the questions waiting when the consumer was made",
            extra={"action": "backlog_delivered", "consumer": self.name},
        )
        self._behind = False
        return True

    def _backlog_past(self, token: str, done: int, skipped: tuple[int, ...], before: int) -> int:
        """Move the backlog past the rows ``skipped`` before ``before`` (after ``done``)."""
        past = max((s for s in skipped if done < s < before), default=0)
        if past and not self.store.advance_backlog(self.name, token, past):
            raise LeaseLost(self.name)
        return max(done, past)
