"""Watching a Prefect server: its events websocket, and a periodic reconciliation.

Every ``prefect.flow-run.*`` event names a flow run; the watcher then brings that run up
to date (``Delivery.sync``): it compares what the run looks like now with what was already
delivered (kept on the run, so a restart neither loses nor repeats a change) and hands the
observer what is new. The websocket makes this prompt; reconciliation makes it complete:
at start and every ``reconcile_seconds`` it lists every paused run and every run that ended
since the last pass, so a dropped connection or a restart misses nothing. A listed run is
synced again only when it changed since its last sync (its state or update time), and runs
named by events go first, so a server with many waiting runs does not delay a new prompt.
Each connection asks the server to replay the events since shortly before the last one
seen (or before connecting, the first time): the server takes a filter some time after
it is sent, and a run that paused in between would otherwise wait for the next pass.
A run whose sync fails is tried again after a growing delay (at least once delivery).
Runs are synced by ``SYNC_THREADS`` threads, one run by one thread at a time, so a run
whose sync is slow (Slack answering its post late, a slow read) holds up no other run's
prompt. A run changed while it is being synced is synced again once that sync is over, by
whichever thread is free: one run's changes are still delivered in order.
Prefect emits no event when a run is deleted: a reconciliation pass also lists the runs
whose records the consumer kept apart from them (``Records.keep``), which a deletion
leaves behind, so a deleted one is synced, found gone, and handed to ``gone`` (which
delivers the deletion) before it is dropped. Its id is remembered (the latest
``GONE_REMEMBERED``): a replay after reconnecting brings the run's old events again, and
each would otherwise cost a read that finds it gone once more.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from websockets.exceptions import ConnectionClosed, WebSocketException
from websockets.sync.client import connect

from signoff.bot.backends.prefect.api import auth_headers
from signoff.bot.errors import BackendUnavailable, ChangeDeferred, RunNotFound

logger = logging.getLogger(__name__)

#: Prefect emits one event per flow run state change under this prefix
EVENT_PREFIX = "prefect.flow-run."
RESOURCE_PREFIX = "prefect.flow-run."


def events_url(api_url: str) -> str:
    """``http://host/api`` -> ``ws://host/api/events/out`` (``https`` -> ``wss``)."""
    scheme, _, rest = api_url.partition("://")
    return f"{'wss' if scheme == 'https' else 'ws'}://{rest.rstrip('/')}/events/out"


#: how far before ``since`` a connection's replay starts: events are stored a little late
#: and clocks differ, and a replayed event costs one read of its run
REPLAY_MARGIN = timedelta(minutes=1)


def event_filter(since: datetime, now: datetime) -> dict[str, object]:
    """The stream's filter: flow run events from a little before ``since`` on (replayed
    when asked for, then live). The server reads a filter without an ``occurred`` end as
    "until the moment it was read", which would match no later event."""
    return {
        "event": {"prefix": [EVENT_PREFIX]},
        "occurred": {
            "since": (since - REPLAY_MARGIN).isoformat(),
            "until": (now + timedelta(days=3650)).isoformat(),
        },
    }


class Watcher:
    """Delivers run changes from a Prefect server until ``stop``.

    ``sync(run_id)`` delivers what is new about one run and returns the run's fingerprint
    (its state and update time), or None when the run is not ready to be read yet (its
    schema not stored yet: try again shortly). ``candidates(since)`` lists the (run id,
    fingerprint) pairs a reconciliation pass considers. ``gone(run_id)`` delivers that a
    run was deleted; raising makes it tried again later, as a failed sync is.
    """

    RETRY_SECONDS = (0.2, 30.0)
    #: how many runs are synced at once: enough that a run whose sync waits (on Slack, on
    #: Prefect) holds up no other. Not for speed on a busy server: 40 runs pausing at once
    #: on a local SQLite server (2 cores) got their last prompt 12-14 s after the first
    #: pause with one thread and 13-16 s with 4, the server being the bottleneck
    #: (bench/prefect_burst.py); more threads would only add to its load
    SYNC_THREADS = 4
    #: how many deleted runs' ids are remembered (a run id is never used again)
    GONE_REMEMBERED = 10_000
    NOT_READY_SECONDS = 0.05
    NOT_READY_MAX_SECONDS = 1.0

    def __init__(
        self,
        *,
        api_url: str,
        api_key: str | None,
        auth_string: str | None = None,
        sync: Callable[[str], str | None],
        candidates: Callable[[datetime | None], list[tuple[str, str]]],
        reconcile_seconds: float,
        gone: Callable[[str], None] = lambda run_id: None,
    ) -> None:
        self.url = events_url(api_url)
        #: the socket's auth message: the auth string as is (a self-hosted server compares
        #: it with its own), else the key, as the HTTP calls choose; the upgrade request
        #: carries the header too, for a proxy in front of the server that asks for it
        self._token = auth_string or api_key
        self._headers = auth_headers(auth_string, api_key)
        #: the setting a refusal of the socket's credentials names
        self._credentials = (
            "PREFECT_API_AUTH_STRING"
            if auth_string
            else "PREFECT_API_KEY"
            if api_key
            else "PREFECT_API_AUTH_STRING or PREFECT_API_KEY (neither is set)"
        )
        self.sync = sync
        self.candidates = candidates
        self.gone = gone
        self.reconcile_seconds = reconcile_seconds
        #: runs to sync first (events, pokes, retries): run id -> when (monotonic)
        self._due: dict[str, float] = {}
        #: runs a reconciliation pass found changed, synced when nothing is due
        self._background: dict[str, None] = {}
        #: run id -> fingerprint at its last successful sync
        self._synced: dict[str, str] = {}
        #: runs a thread is syncing now: no other thread takes them meanwhile
        self._busy: set[str] = set()
        #: per run; only the thread syncing a run reads or writes its entries
        self._failures: dict[str, int] = {}
        self._not_ready: dict[str, int] = {}
        #: runs found deleted, oldest first: their events are ignored
        self._gone: OrderedDict[str, None] = OrderedDict()
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._reconcile_now = threading.Event()
        self._threads: list[threading.Thread] = []
        self._socket: object | None = None
        #: when the latest event seen occurred: the next connection replays from there
        self._seen_until: datetime | None = None
        self.connected = threading.Event()

    def start(self) -> None:
        """Follow events, reconcile and sync in background threads (the first pass at once)."""
        self._stop.clear()
        targets = [(self._listen, "events"), (self._reconciler, "reconcile")]
        targets += [(self._work, f"sync-{n}") for n in range(self.SYNC_THREADS)]
        for target, name in targets:
            # Daemon threads, not a ThreadPoolExecutor: the interpreter joins an executor's
            # threads at exit, and a sync may wait on Slack or Prefect for a while.
            thread = threading.Thread(target=target, name=f"signoff-prefect-{name}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._reconcile_now.set()
        with self._cond:
            self._cond.notify_all()
        socket = self._socket
        if socket is not None:
            try:
                socket.close()  # type: ignore[attr-defined]
            except Exception:  # already closed by the server
                logger.debug("events socket close failed", extra={"action": "events_close"})
        # 5 s in all, not per thread: a stop waits no longer for several busy syncs.
        deadline = time.monotonic() + 5
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads.clear()

    def poke(self, run_id: str, delay: float = 0.0) -> None:
        """Sync ``run_id`` after ``delay`` seconds (sooner if already due sooner)."""
        at = time.monotonic() + delay
        with self._cond:
            if run_id in self._gone:
                return
            if run_id not in self._due or self._due[run_id] > at:
                self._due[run_id] = at
            self._cond.notify_all()

    # -- threads ------------------------------------------------------------------------

    def _listen(self) -> None:
        delay = self.RETRY_SECONDS[0]
        while not self._stop.is_set():
            try:
                with connect(
                    self.url,
                    subprotocols=["prefect"],  # type: ignore[list-item]
                    open_timeout=10,
                    additional_headers=self._headers,
                ) as socket:
                    self._socket = socket
                    socket.send(json.dumps({"type": "auth", "token": self._token}))
                    answer = json.loads(socket.recv(timeout=10))
                    if answer.get("type") != "auth_success":
                        raise ConnectionError(f"event stream refused: {answer.get('reason')}")
                    now = datetime.now(UTC)
                    since = min(self._seen_until or now, now)
                    socket.send(
                        json.dumps(
                            {"type": "filter", "filter": event_filter(since, now), "backfill": True}
                        )
                    )
                    self.connected.set()
                    logger.info("following Prefect events", extra={"action": "prefect_events"})
                    # Anything that happened while disconnected is found by reconciling now.
                    self._reconcile_now.set()
                    delay = self.RETRY_SECONDS[0]
                    for message in socket:
                        self._on_message(message)
            except (OSError, WebSocketException, ValueError, TimeoutError) as exc:
                self.connected.clear()
                if self._stop.is_set():
                    return
                logger.warning(
                    "Prefect event stream lost; reconnecting",
                    extra={"action": "prefect_events_lost", "error": self._why(exc)[:300]},
                )
                self._stop.wait(delay)
                delay = min(delay * 2, self.RETRY_SECONDS[1])
            finally:
                self._socket = None

    def _why(self, exc: Exception) -> str:
        """``exc`` as logged; a refusal of the socket's credentials (Prefect closes it with
        1008 and "Invalid token", "Auth required ...") names the setting to mend."""
        said = str(exc)
        if isinstance(exc, ConnectionClosed) and exc.rcvd is not None and exc.rcvd.code == 1008:
            said = f"Prefect refused the event stream's credentials ({said})"
            said += f": check {self._credentials}"
        return said

    def _on_message(self, message: str | bytes) -> None:
        try:
            data = json.loads(message)
        except ValueError:
            return
        event = data.get("event") or {}
        resource = str((event.get("resource") or {}).get("prefect.resource.id") or "")
        if data.get("type") == "event" and resource.startswith(RESOURCE_PREFIX):
            self.poke(resource.removeprefix(RESOURCE_PREFIX))
            self._saw(event.get("occurred"))

    def _saw(self, occurred: object) -> None:
        try:
            at = datetime.fromisoformat(str(occurred))
        except ValueError:
            return  # an event without a readable time moves nothing
        if at.tzinfo is not None and (self._seen_until is None or at > self._seen_until):
            self._seen_until = at

    def _reconciler(self) -> None:
        since: datetime | None = None
        while not self._stop.is_set():
            began = datetime.now(UTC)
            try:
                found = self.candidates(since)
            except BackendUnavailable as exc:
                # Expected while the server restarts: one line each pass, not a traceback.
                logger.warning(
                    "reconciliation failed: Prefect is unavailable; trying again",
                    extra={"action": "prefect_reconcile_failed", "error": str(exc)[:300]},
                )
            except Exception:
                logger.exception(
                    "reconciliation failed", extra={"action": "prefect_reconcile_failed"}
                )
            else:
                with self._cond:
                    for run_id, fingerprint in found:
                        if run_id not in self._gone and self._synced.get(run_id) != fingerprint:
                            self._background[run_id] = None
                    self._cond.notify_all()
                # Overlap the passes a little: a run that ended during one is in the next.
                since = began - timedelta(seconds=60)
            self._reconcile_now.wait(self.reconcile_seconds)
            self._reconcile_now.clear()

    def _next(self) -> str | None:
        """The next run to sync, marked busy: a due one first, else one reconciliation
        found, of those no other thread is syncing; None to look again (after waiting for
        work)."""
        with self._cond:
            now = time.monotonic()
            free = [(at, run_id) for run_id, at in self._due.items() if run_id not in self._busy]
            due = [(at, run_id) for at, run_id in free if at <= now]
            if due:
                run_id = min(due)[1]
                del self._due[run_id]
                self._background.pop(run_id, None)
                self._busy.add(run_id)
                return run_id
            found = next((r for r in self._background if r not in self._busy), None)
            if found is not None:
                del self._background[found]
                self._busy.add(found)
                return found
            # A busy run's turn comes when its sync ends (``_work`` wakes the others then).
            wake = min((at for at, _ in free), default=now + 1.0) - now
            self._cond.wait(max(0.0, min(wake, 1.0)))
            return None

    def _work(self) -> None:
        while not self._stop.is_set():
            run_id = self._next()
            if run_id is None:
                continue
            try:
                self._sync(run_id)
            finally:
                with self._cond:
                    self._busy.discard(run_id)
                    # Changed meanwhile, it is due again: another thread may take it now.
                    self._cond.notify_all()

    def _sync(self, run_id: str) -> None:
        try:
            fingerprint = self.sync(run_id)
        except RunNotFound:
            self._deleted(run_id)
            return
        except Exception as exc:
            self._retry(run_id, exc)
            return
        self._failures.pop(run_id, None)
        if fingerprint is None:
            # Not ready: look again soon, then less often (each look reads the run's logs).
            tries = self._not_ready.get(run_id, 0)
            self._not_ready[run_id] = tries + 1
            self.poke(run_id, min(self.NOT_READY_SECONDS * 2**tries, self.NOT_READY_MAX_SECONDS))
        else:
            self._not_ready.pop(run_id, None)
            with self._cond:
                self._synced[run_id] = fingerprint

    def _deleted(self, run_id: str) -> None:
        """Deliver the deletion of ``run_id`` (in Prefect's UI, or by a retention policy),
        then stop following it: syncing it again would fail for ever."""
        try:
            self.gone(run_id)
        except Exception as exc:
            self._retry(run_id, exc)
            return
        with self._cond:
            self._due.pop(run_id, None)
            self._background.pop(run_id, None)
            self._synced.pop(run_id, None)
            self._gone[run_id] = None
            if len(self._gone) > self.GONE_REMEMBERED:
                self._gone.popitem(last=False)
        self._failures.pop(run_id, None)
        self._not_ready.pop(run_id, None)
        # Said once it is true: whoever reads the line finds the run no longer followed.
        logger.info(
            "Prefect run is gone; no longer followed",
            extra={"action": "prefect_run_gone", "run_id": run_id},
        )

    def _retry(self, run_id: str, exc: Exception) -> None:
        """Sync ``run_id`` again after a delay growing with its failures."""
        failures = self._failures.get(run_id, 0) + 1
        self._failures[run_id] = failures
        delay = min(self.RETRY_SECONDS[0] * 2**failures, self.RETRY_SECONDS[1])
        extra = {"action": "prefect_sync_failed", "run_id": run_id, "retry_in": delay}
        if isinstance(exc, BackendUnavailable):
            # Expected while the server restarts: one line each try, not a traceback.
            extra["error"] = str(exc)[:300]
            logger.warning("run sync failed: Prefect is unavailable; will retry", extra=extra)
        elif isinstance(exc, ChangeDeferred):
            # Another replica is posting what this change asks for, or Slack asks for a
            # pause: expected, and said in one line.
            delay = max(delay, exc.seconds)
            extra["retry_in"] = delay
            logger.warning("run sync deferred: %s", exc, extra=extra)
        else:
            logger.exception("run sync failed; will retry", extra=extra)
        self.poke(run_id, delay)


__all__ = ["Watcher", "events_url"]
