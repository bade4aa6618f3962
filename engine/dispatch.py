"""Noticing new events, from this process at once and from other processes promptly.

Writers in this process call ``poke()`` after they commit; other processes' commits poke it
too: by LISTEN/NOTIFY on PostgreSQL, and by a local datagram on SQLite
(``engine.store.wakeups``). The first poke after a quiet spell is served at once, and a
burst of them by one read every 20 ms: under load, one read serves many
commits, from whichever process. A poke for events that a waiting flow needs (an answer, a
pause's timeout, a cancellation) is served at once, paced or not, while a flow waits in
this process; where none waits (a process that only answers), paced reads serve it. A
slow poll is the safety net for a lost signal (on SQLite, a query for the newest event
id; where local wake-ups cannot be had, that poll runs every 2 ms at most). Every new event is handed, in id order, to one
callback on the dispatcher's thread. A process that offers no one every event (no
observers) reads only the events it acts on (its ``Interest``); the callback then learns of
the others only that they came, by being called.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from signoff.engine.errors import StoreError
from signoff.engine.outages import Outage
from signoff.engine.runs import Event, EventKind, RunState
from signoff.engine.store import SqlStore
from signoff.engine.store.base import NOTIFY_CHANNEL
from signoff.engine.store.database import pg_connection_options
from signoff.engine.store.urgency import PROMPT_NOTICE
from signoff.engine.store.wakeups import PROMPT_SIGNAL

logger = logging.getLogger(__name__)

#: PostgreSQL pushes; this only covers a dropped LISTEN connection.
_PG_SAFETY_POLL = 1.0
#: The least time between two paced reads. What waits on a paced read is bookkeeping
#: (observers, a worker's claims, timers): a flow waiting for an answer, a timeout or a
#: cancellation is read for at once. 20 ms rather than 5 cut a busy worker's reads, and
#: their CPU, by three quarters (1,000 runs through one worker: 9.3 s -> 7.6-8.2 s).
_MIN_INTERVAL = 0.02
#: seconds between tries to read events while the database fails (it used to be ten
#: polls: on PostgreSQL, a flow heard its answer up to 10 s after an outage ended)
_READ_RETRY_SECONDS = 1.0
#: SQLite without local wake-ups: the poll is all there is, so it must be short
_SQLITE_POLL_WITHOUT_WAKEUPS = 0.002
#: events read at a time
_PAGE = 500
#: how often a blocked listener looks whether the dispatcher stopped (stop() wakes it too)
_LISTEN_TIMEOUT = 5.0


@dataclass(frozen=True)
class Interest:
    """The events a process acts on: these kinds, and changes into these run states."""

    kinds: frozenset[EventKind]
    states: frozenset[RunState] = frozenset()


class Dispatcher:
    """Reads new events in order and hands them to ``handle``.

    ``interest`` says, before each read, which events are wanted (None: every one). When
    the events read are fewer than those stored, ``handle`` may get an empty list: events
    came, none of interest. ``someone_waits`` says whether a flow here waits for an answer,
    a timeout or a cancellation: only then is a prompt poke read at once.
    """

    def __init__(
        self,
        store: SqlStore,
        handle: Callable[[list[Event]], None],
        poll_seconds: float,
        interest: Callable[[], Interest | None] = lambda: None,
        someone_waits: Callable[[], bool] = lambda: True,
    ) -> None:
        self.store = store
        self.handle = handle
        self.interest = interest
        self.someone_waits = someone_waits
        first = interest()
        if first is not None:
            store.expect_events_of(first.kinds, first.states)
        self._inbox = store.wakeups.listen() if store.wakeups is not None else None
        if not store.is_sqlite:
            poll_seconds = _PG_SAFETY_POLL
        elif self._inbox is None:
            poll_seconds = min(poll_seconds, _SQLITE_POLL_WITHOUT_WAKEUPS)
        self.poll_seconds = poll_seconds
        self.position = store.last_event_id()
        self._wake = threading.Event()
        #: set with _wake on stop: no delay then
        self._urgent = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="signoff-dispatch", daemon=True)
        #: PostgreSQL: where stop() tells this dispatcher's listener, and no other, to return
        self._stop_channel = f"signoff_stop_{store.origin}"
        self._listener: threading.Thread | None = None
        # SQLite: a connection of our own, outside the pool, to ask for the newest event id.
        self._probe: Any = store.engine.raw_connection() if store.is_sqlite else None

    def start(self) -> None:
        self._thread.start()
        listen = self._listen if not self.store.is_sqlite else self._listen_local
        if not self.store.is_sqlite or self._inbox is not None:
            self._listener = threading.Thread(target=listen, name="signoff-listen", daemon=True)
            self._listener.start()

    def poke(self, *, prompt: bool = False) -> None:
        """New events are in; with ``prompt``, a waiting flow may need them: read at once,
        without the pause between reads that spares a busy process, if one waits here."""
        # A process where no flow waits has no one to hurry for. Reading at once after
        # every answer it gave cost an answering process a round trip per answer and a
        # quarter of its CPU (PostgreSQL: 1.6-1.8 -> 1.2 ms per answer; bench/HISTORY.md).
        if prompt and self.someone_waits():
            self._urgent.set()
        self._wake.set()

    def stop(self) -> None:
        self._stop.set()
        self._urgent.set()
        self._wake.set()
        self._thread.join(5)
        if self._inbox is not None and self.store.wakeups is not None:
            self.store.wakeups.wake_self()
            if self._listener is not None:
                self._listener.join(5)
        if not self.store.is_sqlite and self._listener is not None:
            # The LISTEN connection blocks until a notification: send it its own.
            with contextlib.suppress(StoreError):
                self.store.notify(self._stop_channel)
            self._listener.join(5)
        if self._probe is not None:
            self._probe.close()

    def _run(self) -> None:
        drained_at = 0.0
        outage = Outage(
            logger,
            "event_read_failed",
            "event_read_recovered",
            failed="could not read events",
            recovered="events read again after %d failed tries",
        )
        while not self._stop.is_set():
            poked = self._wake.wait(self.poll_seconds)
            if poked:
                # A busy process pokes after every commit. Reading on each poke would take
                # the GIL from the very code that commits; after a quiet spell the first
                # poke is served at once, and a burst is served by one read per interval.
                rest = _MIN_INTERVAL - (time.monotonic() - drained_at)
                if rest > 0:
                    self._urgent.wait(rest)
            self._wake.clear()
            self._urgent.clear()
            try:
                if poked or self._changed():
                    drained_at = time.monotonic()
                    self._drain()
            except StoreError:
                # Said once per outage, then tried again each second: a flow waiting here
                # hears nothing (its answer, a cancel) until a read works again.
                outage.failed()
                self._stop.wait(_READ_RETRY_SECONDS)
                self._wake.set()  # the next try reads, whatever the poll would say
                continue
            except Exception:
                logger.exception("event handler failed", extra={"action": "dispatch_failed"})
            outage.over()

    def _changed(self) -> bool:
        """Whether the database may hold events not yet handed on (always, on PostgreSQL's
        slow poll)."""
        if self._probe is None:
            return True
        # On the raw connection, this costs microseconds. Events are appended in id order
        # (SQLite has one writer at a time), so a larger newest id means something new, and
        # our own commits, already drained when they poked us, cause no second read.
        row = self._probe.execute("SELECT max(id) FROM events").fetchone()
        return row[0] is not None and int(row[0]) > self.position

    def _drain(self) -> None:
        while True:
            interest = self.interest()
            # A row edited outside Signoff so that it cannot be read is stepped past (and
            # said once): it stopped every later event here for good (``event_rows``).
            reader = "the dispatcher"
            if interest is None:
                page = self.store.read_events(self.position, _PAGE, reader=reader)
            else:
                # Most events are bookkeeping no one here acts on: not decoding them saves
                # a busy worker about half the CPU its reads cost.
                page = self.store.read_events_of(
                    self.position, interest.kinds, interest.states, _PAGE, reader=reader
                )
            if page.position > self.position:
                self.position = page.position
                self.handle(page.events)
            # A short page is everything so far; a commit after the read pokes us again
            # (the wake-up was cleared before this drain), so no second read to find none.
            if not page.full:
                return

    def _listen_local(self) -> None:
        inbox = self._inbox
        assert inbox is not None
        inbox.settimeout(_LISTEN_TIMEOUT)
        while not self._stop.is_set():
            try:
                signals = [inbox.recv(16)]
            except TimeoutError:
                continue
            except OSError:
                return  # closed with the store
            # One read serves every wake-up queued so far.
            inbox.setblocking(False)
            with contextlib.suppress(OSError):
                while signal := inbox.recv(16):
                    signals.append(signal)
            inbox.settimeout(_LISTEN_TIMEOUT)
            self.poke(prompt=PROMPT_SIGNAL in signals)

    def _listen(self) -> None:
        import psycopg  # the ``postgres`` extra; only PostgreSQL stores get here

        url = self.store.engine.url
        # From the URL's parts, as the pool's connections get them: a URL rendered again
        # writes a space in a parameter (options=-c TimeZone=UTC) as "+", which libpq
        # does not read back as a space, and every LISTEN connection was refused.
        parts = url.translate_connect_args(username="user", database="dbname")
        given = {
            name: value if isinstance(value, str) else value[-1]
            for name, value in url.query.items()
        }
        rendered = url.render_as_string(hide_password=False)
        conninfo = psycopg.conninfo.make_conninfo(
            "", **{**parts, **given, **pg_connection_options(rendered)}
        )
        outage = Outage(
            logger,
            "listen_reconnect",
            "listen_reconnected",
            failed="LISTEN connection lost",
            recovered="LISTEN connection back after %d tries",
        )
        while not self._stop.is_set():
            try:
                with psycopg.connect(conninfo, autocommit=True) as conn:
                    conn.execute(f"LISTEN {NOTIFY_CHANNEL}")
                    conn.execute(f"LISTEN {self._stop_channel}")
                    if outage.failures:
                        outage.over()
                        # What was notified while it was down is read now, not at the poll.
                        self.poke(prompt=True)
                    while not self._stop.is_set():
                        for note in conn.notifies(timeout=_LISTEN_TIMEOUT, stop_after=1):
                            self.poke(prompt=note.payload.endswith(f" {PROMPT_NOTICE}"))
            except psycopg.Error:
                if self._stop.is_set():
                    return
                outage.failed()
                self._stop.wait(1.0)
