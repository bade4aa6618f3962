"""``PrefectBackend``: the ``Backend`` over a Prefect server's REST API.

Runs are Prefect flow runs; a request for input is a ``PAUSED`` state (``requests``);
answering resumes the run through Prefect's resume endpoint, whose own schema check
decides, and whose refusal comes back naming the field; the Slack side's records, audit
entries and timers are kept on the run as flow run inputs (``records``), so they live as
long as the run and are shared by every bot process. Changes come from Prefect's event
stream plus periodic reconciliation (``watcher``), judged against what was delivered
already (``delivery``).

The backend is assembled from its parts: reading runs and requests (``reading``),
starting and cancelling runs (``control``), answering and handing over requests
(``answering``); this module adds its lifecycle, the change watch, and the records and
timers the Slack side keeps.

Why httpx against the REST API rather than Prefect's client: the bot's threads call it
synchronously and concurrently, which one thread-safe ``httpx.Client`` does directly,
while Prefect's client is async-first and importing ``prefect`` loads its settings,
logging and server models into the bot; the REST endpoints used here are the ones Prefect
documents for its UI and clients.

Example::

    backend = PrefectBackend(PrefectSettings.load())  # PREFECT_API_URL, its credentials
    Server(backend, BotSettings.load()).start()
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from signoff.bot.backends.interface import LISTED_RECORDS, ChangeObserver, GroupDirectory, Watch
from signoff.bot.backends.model import JSON, Pause, Run
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.answering import Answering
from signoff.bot.backends.prefect.api import Doc
from signoff.bot.backends.prefect.control import RunControl
from signoff.bot.backends.prefect.delivery import Delivery
from signoff.bot.backends.prefect.records import record_label
from signoff.bot.backends.prefect.refusals import field_errors
from signoff.bot.backends.prefect.settings import PrefectSettings
from signoff.bot.backends.prefect.timers import Timers
from signoff.bot.backends.prefect.watcher import Watcher
from signoff.bot.errors import BackendUnavailable, CredentialsRefused

#: run ids looked up per request when checking which kept runs still exist
_IDS_PAGE = 200


class _Watch:
    def __init__(self, watcher: Watcher, check: Callable[[], None]) -> None:
        self.watcher = watcher
        self.check = check

    def start(self) -> None:
        # Checked first: serve starts its watch before the backend, and a watcher would
        # otherwise log the refusal each pass until serve stopped on it.
        self.check()
        self.watcher.start()

    def check_lease(self) -> None:
        """Every replica may deliver: posts are claimed per run, so none is made twice."""

    def stop(self) -> None:
        self.watcher.stop()


class PrefectBackend(RunControl, Answering):
    """The ``Backend`` over one Prefect server (or Prefect Cloud workspace)."""

    name = "prefect"
    answerable_elsewhere = True
    deletes_runs = True

    def __init__(self, settings: PrefectSettings, *, demo: str | None = None) -> None:
        """``demo`` names the ``signoff demo`` session this backend plays: the runs it
        starts are tagged with it, and it handles no other run (``runs.plays``)."""
        super().__init__(settings, demo=demo)
        self.timers = Timers(self._store_call, self._forget_call, self._stored_calls)
        self._watchers: list[Watcher] = []
        #: consumer -> the record keys it keeps past a run's deletion (``watch``)
        self._kept: dict[str, frozenset[str]] = {}
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.check_credentials()
        self.timers.start()
        self._started = True

    def check_credentials(self) -> None:
        """Raise ``CredentialsRefused`` if Prefect refuses the credentials (a wrong or
        missing ``PREFECT_API_AUTH_STRING`` or ``PREFECT_API_KEY``), so that ``serve``
        stops as it starts, naming the setting. A server that cannot be reached yet is
        waited for, as before: the watcher keeps trying, a line a try."""
        try:
            self.api.check_access()
        except CredentialsRefused:
            raise
        except BackendUnavailable:
            pass

    def stop(self) -> None:
        self._started = False
        for watcher in list(self._watchers):
            watcher.stop()
        self._watchers.clear()
        self.timers.stop()

    def close(self) -> None:
        """Stop, and close the HTTP client."""
        self.stop()
        self.api.close()

    def check(self) -> None:
        self.api.health()

    def not_ready(self) -> str | None:
        if not self._started:
            return "the Prefect backend is not started"
        # Refused since start (a rotated key, a changed auth string): nothing can be read.
        return str(self.api.refused) if self.api.refused is not None else None

    def on_timer_fired(self, listener: Callable[[str, float], None]) -> None:
        self.timers.on_fired(listener)

    def set_group_directory(self, directory: GroupDirectory) -> None:
        self.rules.directory = directory

    # -- changes ------------------------------------------------------------------------

    def watch(
        self, consumer: str, observer: ChangeObserver, *, kept: Collection[str] = ()
    ) -> Watch:
        auth_string, key = self.settings.credentials()
        delivery = Delivery(
            self.current,
            self.records,
            self.timers.restore,
            consumer,
            observer,
            plays=lambda run: prefect_runs.plays(run, self.demo),
        )
        self._kept[consumer] = frozenset(kept)
        watcher = Watcher(
            api_url=self.settings.api_url,
            api_key=key,
            auth_string=auth_string,
            sync=delivery.sync,
            candidates=lambda since: self._candidates(consumer, since),
            reconcile_seconds=self.settings.reconcile_seconds,
            gone=delivery.gone,
        )
        self._watchers.append(watcher)
        return _Watch(watcher, self.check_credentials)

    def _candidates(self, consumer: str, since: datetime | None) -> list[tuple[str, str]]:
        """Runs a reconciliation pass syncs: every paused run, and runs that ended since
        ``since``. The first pass of a process starts where the consumer's last pass (in
        any process) began, or a day back; expired claims are swept meanwhile."""
        self.records.sweep()
        began = datetime.now(UTC)
        after = since or self.records.reconciled(consumer) or began - timedelta(days=1)
        paused = self.api.flow_runs(state_types=["PAUSED"], limit=200)
        ended = self.api.flow_runs(ended_after=after.isoformat(), limit=200)
        self.records.set_reconciled(consumer, began - timedelta(seconds=60))
        found = {str(doc["id"]): prefect_runs.fingerprint(doc) for doc in [*paused, *ended]}
        found.update(self._kept_runs(consumer, set(found)))
        return list(found.items())

    def _kept_runs(self, consumer: str, listed: set[str]) -> dict[str, str]:
        """Runs whose records ``consumer`` kept (it posted about them and their end was
        not delivered) that are neither paused nor just ended: a deleted one is listed
        (as ``deleted``), to be found gone; one that still exists, by its fingerprint."""
        missing = [r for r in self.records.kept_runs(consumer) if r not in listed]
        found: dict[str, str] = {}
        for start in range(0, len(missing), _IDS_PAGE):
            some = missing[start : start + _IDS_PAGE]
            docs = {str(d["id"]): d for d in self.api.flow_runs(ids=some, limit=len(some))}
            found.update(
                {r: prefect_runs.fingerprint(docs[r]) if r in docs else "deleted" for r in some}
            )
        return found

    def current(self, run_id: str) -> tuple[Run, Doc, list[Pause]]:
        """The run, its Prefect document and its requests, read now (for ``Delivery``)."""
        doc = self.api.flow_run(run_id)
        return self._run(doc), doc, self._pauses(doc, self.api.states(run_id))

    # -- records and timers -------------------------------------------------------------

    def get_record(self, run_id: str, key: str) -> JSON:
        return self.records.get(run_id, key)

    def get_records(self, run_ids: Sequence[str], key: str) -> dict[str, JSON]:
        # A run's inputs are read run by run; the copies in its labels come with the page.
        ids = list(dict.fromkeys(run_ids))
        docs = self.api.flow_runs(ids=ids, limit=len(ids)) if ids else []
        found: dict[str, JSON] = {}
        for doc in docs:
            copy = (doc.get("labels") or {}).get(record_label(key))
            if isinstance(copy, str):
                try:
                    found[str(doc["id"])] = json.loads(copy)
                except ValueError:
                    continue
        return found

    def set_record(self, run_id: str, key: str, value: JSON) -> None:
        # Kept first: a run deleted just now refuses the record, and its deletion is then
        # delivered with the copy, which says where the message just posted is.
        self._keep(run_id, key, value)
        self.records.set(run_id, key, value)
        self._label(run_id, key, value)

    def add_record(self, run_id: str, key: str, value: JSON) -> bool:
        added = self.records.add(run_id, key, value)
        if added:
            self._keep(run_id, key, value)
            self._label(run_id, key, value)
        return added

    def _label(self, run_id: str, key: str, value: JSON) -> None:
        """Copy a record ``get_records`` reads for a page into the run's labels."""
        if key in LISTED_RECORDS:
            self.api.set_labels(
                run_id, {record_label(key): json.dumps(value, separators=(",", ":"))}
            )

    def _keep(self, run_id: str, key: str, value: JSON) -> None:
        """Copy a record a consumer keeps past the run's deletion (``watch``'s ``kept``)."""
        for consumer, keys in list(self._kept.items()):
            if key in keys:
                self.records.keep(consumer, run_id, key, value)

    def claim_once(self, key: str, seconds: float, *, within: float | None = None) -> bool:
        # No write turn to wait for here: the claim is one request to Prefect's API, bounded
        # by the client's timeout, and one that fails is kept by this process alone.
        return self.records.claim_once(key, seconds)

    def call_at(self, job_id: str, when: datetime, job: str, kwargs: Mapping[str, JSON]) -> None:
        self.timers.call_at(job_id, when, job, kwargs)

    def cancel_call(self, job_id: str) -> None:
        self.timers.cancel(job_id)

    def _store_call(self, run_id: str, job_id: str, call: dict[str, Any]) -> None:
        self.records.set(run_id, f"timer.{job_id}", call)

    def _forget_call(self, run_id: str, job_id: str) -> None:
        self.records.drop(run_id, f"timer.{job_id}")

    def _stored_calls(self, run_id: str) -> list[dict[str, Any]]:
        return [c for c in self.records.with_prefix(run_id, "timer.") if isinstance(c, dict)]


__all__ = ["PrefectBackend", "field_errors"]
