"""``PrefectBackend``: the ``Backend`` over a Prefect server's REST API.

Runs are Prefect flow runs; a request for input is a ``PAUSED`` state (``requests``);
answering resumes the run through Prefect's resume endpoint, whose own schema check
decides, and whose refusal comes back naming the field; the Slack side's records, audit
entries and timers are kept on the run as flow run inputs (``records``), so they live as
long as the run and are shared by every bot process. Changes come from Prefect's event
stream plus periodic reconciliation (``watcher``), judged against what was delivered
already (``delivery``).

Why httpx against the REST API rather than Prefect's client: the bot's threads call it
synchronously and concurrently, which one thread-safe ``httpx.Client`` does directly,
while Prefect's client is async-first and importing ``prefect`` loads its settings,
logging and server models into the bot; the REST endpoints used here are the ones Prefect
documents for its UI and clients.

Example::

    backend = PrefectBackend(PrefectSettings.load())  # PREFECT_API_URL, PREFECT_API_KEY
    Server(backend, BotSettings.load()).start()
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from signoff.bot.backends.interface import ChangeObserver, GroupDirectory, Watch
from signoff.bot.backends.model import (
    JSON,
    SYSTEM,
    Accepted,
    Action,
    Actor,
    Answer,
    AuditRecord,
    BackendStats,
    Delegation,
    Denied,
    Pause,
    PauseStatus,
    Refusal,
    Refused,
    Run,
    RunDetail,
    RunState,
    Stale,
    StartForm,
)
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.api import Doc, PrefectApi
from signoff.bot.backends.prefect.delivery import Delivery
from signoff.bot.backends.prefect.records import Records
from signoff.bot.backends.prefect.requests import answer_record, delegation_record, read_pauses
from signoff.bot.backends.prefect.rules import Rules
from signoff.bot.backends.prefect.settings import Permission, Permissions, PrefectSettings
from signoff.bot.backends.prefect.timers import Timers
from signoff.bot.backends.prefect.watcher import Watcher
from signoff.bot.errors import (
    BackendError,
    FlowUnknown,
    NotPermitted,
    ParametersInvalid,
    RunNotChangeable,
)

logger = logging.getLogger(__name__)

#: Signoff's state filter -> Prefect state types
PREFECT_TYPES = {
    RunState.SCHEDULED: ("SCHEDULED", "PENDING"),
    RunState.RUNNING: ("RUNNING", "CANCELLING"),
    RunState.PAUSED: ("PAUSED",),
    RunState.SUSPENDED: ("PAUSED",),
    RunState.COMPLETED: ("COMPLETED",),
    RunState.FAILED: ("FAILED",),
    RunState.CANCELLED: ("CANCELLED",),
    RunState.CRASHED: ("CRASHED",),
}
#: Prefect's schema check names the field: "Validation failed for field 'size'. Failure
#: reason: 'tiny' is not one of [...]"
_FIELD_REJECTED = re.compile(
    r"Validation failed for field '(?P<field>[^']+)'\. Failure reason: (?P<why>.*)", re.S
)
_WHOLE_REJECTED = re.compile(r"Validation failed\. Failure reason: (?P<why>.*)", re.S)
#: tag naming who answered a run (App Home's "your recent decisions")
ANSWERED_BY = "signoff.answered_by"


def field_errors(reason: str) -> dict[str, str]:
    """Prefect's refusal of an answer as field path -> message (``""``: the whole input)."""
    text = reason.removeprefix("Reason: ")
    match = _FIELD_REJECTED.search(text)
    if match:
        path = match["field"].replace("[", ".").replace("]", "")
        return {path: match["why"].strip()}
    match = _WHOLE_REJECTED.search(text)
    return {"": (match["why"] if match else text).strip()}


class _Watch:
    def __init__(self, watcher: Watcher) -> None:
        self.watcher = watcher

    def start(self) -> None:
        self.watcher.start()

    def check_lease(self) -> None:
        """Every replica may deliver: posts are claimed per run, so none is made twice."""

    def stop(self) -> None:
        self.watcher.stop()


class PrefectBackend:
    """The ``Backend`` over one Prefect server (or Prefect Cloud workspace)."""

    name = "prefect"

    def __init__(self, settings: PrefectSettings) -> None:
        self.settings = settings
        key = settings.api_key.get_secret_value() if settings.api_key else None
        self.api = PrefectApi(settings.api_url, key)
        self.records = Records(self.api)
        self.permissions: Permissions = settings.permissions()
        self.rules = Rules()
        self.timers = Timers(self._store_call, self._forget_call, self._stored_calls)
        self._names: dict[str, str] = {}
        self._static: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()
        self._watchers: list[Watcher] = []
        self._started = False

    # -- lifecycle ----------------------------------------------------------------------

    def start(self) -> None:
        self.timers.start()
        self._started = True

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
        return None if self._started else "the Prefect backend is not started"

    def stats(self) -> BackendStats:
        counts: dict[RunState, int] = {}
        for state in RunState:
            if state is RunState.SUSPENDED:
                continue  # counted with PAUSED: both are Prefect's PAUSED type
            counts[state] = self.api.count_runs(PREFECT_TYPES[state])
        return BackendStats(runs_by_state=counts, waiting_inputs=counts[RunState.PAUSED])

    def on_timer_fired(self, listener: Callable[[str, float], None]) -> None:
        self.timers.on_fired(listener)

    # -- names and rules ----------------------------------------------------------------

    def _name(self, kind: str, ident: str | None) -> str | None:
        if not ident:
            return None
        with self._lock:
            known = self._names.get(f"{kind}:{ident}")
        if known is None:
            doc = self.api.flow(ident) if kind == "flow" else self.api.deployment(ident)
            known = str(doc.get("name"))
            with self._lock:
                self._names[f"{kind}:{ident}"] = known
        return known

    def _run(self, doc: Doc) -> Run:
        run = prefect_runs.to_run(doc, self._name("flow", str(doc["flow_id"])) or "?")
        return replace(run, approvers=tuple(self._permission(doc).approvers or ()))

    def _permission(self, doc: Doc) -> Permission:
        flow = self._name("flow", str(doc["flow_id"])) or "?"
        permission = self.permissions.for_run(
            flow, self._name("deployment", doc.get("deployment_id"))
        )
        tagged = prefect_runs.signoff_tags(list(doc.get("tags") or [])).get("signoff.approvers")
        if tagged:
            names = [p.strip() for p in tagged.split(",") if p.strip()]
            permission = permission.model_copy(update={"approvers": names})
        return permission

    def set_group_directory(self, directory: GroupDirectory) -> None:
        self.rules.directory = directory

    # -- runs ---------------------------------------------------------------------------

    def get_run(self, run_id: str) -> Run:
        return self._run(self.api.flow_run(run_id))

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        *,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        types = sorted({t for s in states for t in PREFECT_TYPES[s]}) if states else None
        after: Doc | None = self.api.flow_run(before) if before else None
        docs = self.api.flow_runs(
            state_types=types,
            flow_names=[flow_name.partition("/")[0]] if flow_name else None,
            expected_before=str(after["expected_start_time"]) if after else None,
            # The bound is inclusive: room for ``before`` itself and runs tied with it.
            limit=limit if after is None else limit + 10,
        )
        if after is not None:
            ids = [str(d["id"]) for d in docs]
            if str(after["id"]) in ids:
                docs = docs[ids.index(str(after["id"])) + 1 :]
        docs = docs[:limit]
        found = [self._run(doc) for doc in docs]
        return [r for r in found if states is None or r.state in states]

    def detail(self, run_id: str) -> RunDetail:
        doc = self.api.flow_run(run_id)
        states = self.api.states(str(doc["id"]))
        logs = self.api.logs(str(doc["id"]))
        return RunDetail(
            run=self._run(doc),
            history=prefect_runs.history(states),
            tasks=(),
            pauses=tuple(self._pauses(doc, states, logs)),
            logs=prefect_runs.log_entries(logs),
        )

    def audit_trail(self, run_id: str) -> list[AuditRecord]:
        return self.records.trail(self.get_run(run_id).id)

    def flow_names(self) -> list[str]:
        deployments = self.api.deployments()
        if not deployments:
            return []
        flows = {
            str(f["id"]): str(f["name"])
            for f in self.api.flows([str(d["flow_id"]) for d in deployments])
        }
        return sorted(f"{flows.get(str(d['flow_id']), '?')}/{d['name']}" for d in deployments)

    def _deployment(self, name: str) -> Doc | None:
        flow, sep, deployment = name.partition("/")
        if not sep:
            # A flow with exactly one deployment may be named alone.
            matches = [n for n in self.flow_names() if n.partition("/")[0] == flow]
            if len(matches) != 1:
                return None
            flow, _, deployment = matches[0].partition("/")
        return self.api.deployment_by_name(flow, deployment)

    def _deployment_name(self, deployment: Doc) -> str:
        return f"{self._name('flow', str(deployment['flow_id']))}/{deployment['name']}"

    def start_form(self, flow: str) -> StartForm | None:
        deployment = self._deployment(flow)
        if deployment is None:
            return None
        schema = dict(deployment.get("parameter_openapi_schema") or {})
        schema.setdefault("type", "object")
        schema.setdefault("properties", {})
        return StartForm(
            name=self._deployment_name(deployment),
            schema=schema,
            description=deployment.get("description") or None,
        )

    def may_start(self, actor: Actor, flow: str) -> Refusal | None:
        deployment = self._deployment(flow)
        if deployment is None:
            raise FlowUnknown(flow, tuple(self.flow_names()))
        name = self._deployment_name(deployment)
        permission = self.permissions.for_run(name.partition("/")[0], str(deployment["name"]))
        return self.rules.start(actor, name, permission)

    def start_run(
        self,
        flow: str,
        parameters: Mapping[str, JSON],
        *,
        started_by: Actor,
        tags: Mapping[str, str] | None = None,
    ) -> Run:
        deployment = self._deployment(flow)
        if deployment is None:
            raise FlowUnknown(flow, tuple(self.flow_names()))
        name = self._deployment_name(deployment)
        refused = self.may_start(started_by, name)
        if refused is not None:
            raise NotPermitted("start", started_by.id, refused.reason, allowed=refused.allowed)
        run_tags = [f"signoff.started_by:{started_by.id}"]
        run_tags += [f"{k}:{v}" for k, v in (tags or {}).items() if v]
        response = self.api.create_run_from_deployment(str(deployment["id"]), parameters, run_tags)
        if response.status_code >= 400:
            detail = str(response.json().get("detail") if response.content else response.text)
            raise ParametersInvalid(
                name, field_errors(detail), f"Prefect refused to start {name}: {detail[:500]}"
            )
        created = self._run(response.json())
        self.records.audit(
            created.id,
            "run.started",
            started_by,
            data={"parameters": dict(parameters)},
        )
        logger.info(
            "Prefect run created",
            extra={"action": "prefect_run_created", "run_id": created.id, "flow": name},
        )
        return created

    def cancel(self, run_id: str, *, by: Actor, reason: str | None = None) -> Run:
        doc = self.api.flow_run(run_id)
        run = self._run(doc)
        if run.state.is_final:
            raise RunNotChangeable(run.id, run.state.value, RunState.CANCELLED.value)
        refused = self.rules.cancel(by, run, self._permission(doc), self._waiting(doc))
        if refused is not None:
            raise NotPermitted(
                "cancel", by.id, refused.reason, allowed=refused.allowed, run_id=run.id
            )
        state = doc.get("state") or {}
        # A run with a live process (running, or paused in its process) is asked to stop
        # (Cancelling, which its runner or worker acts on); one without is cancelled outright.
        live = state.get("type") in ("RUNNING", "CANCELLING") or (
            state.get("type") == "PAUSED"
            and not (state.get("state_details") or {}).get("pause_reschedule")
        )
        kind, label = ("CANCELLING", "Cancelling") if live else ("CANCELLED", "Cancelled")
        message = reason or f"cancelled by {by.id}"
        result = self.api.set_state(
            run.id, {"type": kind, "name": label, "message": message}, force=not live
        )
        if result.get("status") != "ACCEPT":
            why = (result.get("details") or {}).get("reason") or result.get("status")
            raise BackendError(f"Prefect did not cancel run {run.id}: {why}")
        self.records.audit(
            run.id,
            "run.cancelled",
            by,
            data={"reason": message},
        )
        logger.info(
            "Prefect run cancelled", extra={"action": "prefect_run_cancelled", "run_id": run.id}
        )
        return self.get_run(run.id)

    # -- requests for input ---------------------------------------------------------------

    def _static_input(self, run_id: str, key: str) -> Any:
        """A schema or description: written once by the flow, so read once."""
        with self._lock:
            if (run_id, key) in self._static:
                return self._static[(run_id, key)]
        value = self.api.read_input(run_id, key)
        if value is not None and not key.endswith("-response"):
            with self._lock:
                self._static[(run_id, key)] = value
        return value

    def _pauses(self, doc: Doc, states: list[Doc], logs: list[Doc] | None = None) -> list[Pause]:
        run = self._run(doc)
        return read_pauses(
            run,
            doc,
            states,
            permission=self._permission(doc),
            read_input=lambda key: self._static_input(run.id, key),
            read_record=lambda key: self.records.get(run.id, key),
            logs=(lambda: logs) if logs is not None else (lambda: self.api.logs(run.id)),
        )

    def _waiting(self, doc: Doc) -> Pause | None:
        if (doc.get("state") or {}).get("type") != "PAUSED":
            return None
        pauses = self._pauses(doc, self.api.states(str(doc["id"])))
        return next((p for p in pauses if p.status is PauseStatus.WAITING), None)

    def get_pause(self, run_id: str, key: str) -> Pause | None:
        doc = self.api.flow_run(run_id)
        pauses = self._pauses(doc, self.api.states(str(doc["id"])))
        return next((p for p in pauses if p.key == key), None)

    def waiting_pause(self, run_id: str) -> Pause | None:
        return self._waiting(self.api.flow_run(run_id))

    def refusal(
        self, action: Action, actor: Actor, run_id: str, key: str | None = None
    ) -> Refusal | None:
        doc = self.api.flow_run(run_id)
        run = self._run(doc)
        pause = self.get_pause(run.id, key) if key else self._waiting(doc)
        found: Refusal | None
        if action is Action.CANCEL:
            found = self.rules.cancel(actor, run, self._permission(doc), pause)
        elif pause is None:
            return Refusal(f"run {run.id} is not waiting for input")
        elif action is Action.REASSIGN:
            found = self.rules.reassign(actor, run, pause)
        else:
            found = self.rules.answer(actor, run, pause)
        if found is not None:
            self._audit_refusal(run.id, actor, pause.key if pause else None, action, found)
        return found

    def _audit_refusal(
        self, run_id: str, actor: Actor, key: str | None, action: Action, refusal: Refusal
    ) -> None:
        """Keep who was refused what, and by which rule, in the run's audit trail."""
        self.records.audit(
            run_id,
            "refused",
            actor,
            key=key,
            data={"action": action.value, "rule": refusal.reason},
        )

    def answer(
        self, run_id: str, key: str, values: Mapping[str, JSON], *, responder: Actor
    ) -> Answer:
        doc = self.api.flow_run(run_id)
        run = self._run(doc)
        pause = self.get_pause(run.id, key)
        if pause is None or pause.status is not PauseStatus.WAITING:
            return Stale(f"run {run.id} is {run.state_name} and does not wait for input {key!r}")
        if pause.deadline is not None and pause.deadline <= datetime.now(UTC):
            return Stale(f"input {key!r} of run {run.id} closed at {pause.deadline:%H:%M} UTC")
        refused = self.rules.answer(responder, run, pause)
        if refused is not None:
            self._audit_refusal(run.id, responder, key, Action.ANSWER, refused)
            return Denied(refused)
        payload = dict(values)
        # The first to claim the request answers it; a second submission finds the claim.
        claim = {
            "responder": responder.id,
            "name": responder.name,
            "at": datetime.now(UTC).isoformat(),
            "input": payload if pause.wants_input else None,
        }
        if not self.records.add(run.id, answer_record(key), claim):
            return Stale(f"input {key!r} of run {run.id} was already answered")
        try:
            result = self.api.resume(run.id, payload if pause.wants_input else None)
        except BaseException:
            self.records.drop(run.id, answer_record(key))
            raise
        status = result.get("status")
        if status != "ACCEPT":
            self.records.drop(run.id, answer_record(key))
            reason = str((result.get("details") or {}).get("reason") or status)
            if status == "REJECT":
                return Refused(field_errors(reason), reason.removeprefix("Reason: "))
            return Stale(reason)
        self.records.audit(
            run.id,
            "answer.received",
            responder,
            key=key,
            data={"input": claim["input"]},
        )
        self.api.add_tags(run.id, [f"{ANSWERED_BY}:{responder.id}"])
        logger.info(
            "Prefect run resumed",
            extra={"action": "prefect_run_resumed", "run_id": run.id, "key": key},
        )
        return Accepted(
            replace(
                pause,
                status=PauseStatus.ANSWERED,
                response=claim["input"],
                responder=responder.id,
                answered_at=datetime.now(UTC),
            )
        )

    def reassign(self, run_id: str, to: str, by: Actor, *, key: str) -> Pause:
        doc = self.api.flow_run(run_id)
        run = self._run(doc)
        pause = self.get_pause(run.id, key)
        if pause is None or pause.status is not PauseStatus.WAITING:
            raise BackendError(f"input {key!r} of run {run.id} does not wait any more")
        refused = self.rules.reassign(by, run, pause)
        if refused is not None:
            raise NotPermitted(
                "reassign", by.id, refused.reason, allowed=refused.allowed, run_id=run.id
            )
        handed = [*({"by": d.by, "to": d.to, "at": d.at.isoformat()} for d in pause.delegations)]
        handed.append({"by": by.id, "to": to, "at": datetime.now(UTC).isoformat()})
        self.records.set(run.id, delegation_record(key), handed)
        self.records.audit(
            run.id,
            "pause.reassigned",
            by,
            key=key,
            data={"to": to},
        )
        for watcher in self._watchers:
            watcher.poke(run.id)  # no Prefect event follows a hand-over: tell the Slack side
        found = self.get_pause(run.id, key)
        return found or replace(
            pause, delegations=(*pause.delegations, Delegation(by.id, to, datetime.now(UTC)))
        )

    def waiting_on(self, actor: Actor, limit: int = 20) -> list[tuple[Run, Pause]]:
        found: list[tuple[Run, Pause]] = []
        for doc in self.api.flow_runs(state_types=["PAUSED"], limit=100):
            pause = self._waiting(doc)
            if pause is not None and self.rules.answer(actor, self._run(doc), pause) is None:
                found.append((self._run(doc), pause))
            if len(found) >= limit:
                break
        return found

    def started_by(self, actor_id: str, limit: int = 20) -> list[Run]:
        docs = self.api.flow_runs(tags=[f"signoff.started_by:{actor_id}"], limit=limit)
        return [self._run(doc) for doc in docs]

    def decisions_by(self, actor_id: str, limit: int = 20) -> list[AuditRecord]:
        found: list[AuditRecord] = []
        for doc in self.api.flow_runs(tags=[f"{ANSWERED_BY}:{actor_id}"], limit=limit):
            found += [
                r
                for r in self.records.trail(str(doc["id"]))
                if r.actor_id == actor_id and r.action == "answer.received"
            ]
        return sorted(found, key=lambda r: r.at, reverse=True)[:limit]

    def claim_reminder(
        self, run_id: str, key: str, claim: str, *, deadline: datetime | None
    ) -> bool:
        if not self.records.add(run_id, claim, None):
            return False
        self.records.audit(
            run_id,
            "reminder.sent",
            SYSTEM,
            key=key,
            data={"deadline": deadline.isoformat() if deadline else None},
        )
        return True

    # -- changes ------------------------------------------------------------------------

    def watch(self, consumer: str, observer: ChangeObserver) -> Watch:
        key = self.settings.api_key.get_secret_value() if self.settings.api_key else None
        delivery = Delivery(self.current, self.records, self.timers.restore, consumer, observer)
        watcher = Watcher(
            api_url=self.settings.api_url,
            api_key=key,
            sync=delivery.sync,
            candidates=lambda since: self._candidates(consumer, since),
            reconcile_seconds=self.settings.reconcile_seconds,
        )
        self._watchers.append(watcher)
        return _Watch(watcher)

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
        return list(found.items())

    def current(self, run_id: str) -> tuple[Run, Doc, list[Pause]]:
        """The run, its Prefect document and its requests, read now (for ``Delivery``)."""
        doc = self.api.flow_run(run_id)
        return self._run(doc), doc, self._pauses(doc, self.api.states(run_id))

    # -- records and timers -------------------------------------------------------------

    def get_record(self, run_id: str, key: str) -> JSON:
        return self.records.get(run_id, key)

    def set_record(self, run_id: str, key: str, value: JSON) -> None:
        self.records.set(run_id, key, value)

    def add_record(self, run_id: str, key: str, value: JSON) -> bool:
        return self.records.add(run_id, key, value)

    def claim_once(self, key: str, seconds: float) -> bool:
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
