"""Reading a Prefect server's runs and their requests for input as Signoff's values.

``RunReading`` holds what every part of ``PrefectBackend`` shares: the REST client, the
records kept on runs, the permissions and rules, and caches of what does not change (flow
and deployment names, a request's schema and description). It reads runs (one, a page, the
detail, the audit trail, the counts by state) and a run's requests (``requests``), each
with the approvers the permissions give it. ``runs`` maps Prefect's JSON; this fetches it.
"""

from __future__ import annotations

import logging
import string
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from signoff.bot.backends.model import (
    Action,
    Actor,
    AuditRecord,
    BackendStats,
    Pause,
    PauseStatus,
    Refusal,
    Run,
    RunDetail,
    RunState,
)
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.api import Doc, PrefectApi
from signoff.bot.backends.prefect.records import Records
from signoff.bot.backends.prefect.requests import read_pauses
from signoff.bot.backends.prefect.rules import Rules
from signoff.bot.backends.prefect.settings import Permission, Permissions, PrefectSettings
from signoff.bot.errors import RunNotFound
from signoff.engine.errors import choices_text

logger = logging.getLogger(__name__)

#: the name of a deployment deleted from Prefect (its runs stay): no entry of the
#: permissions file is known to be its own
DELETED = "(deleted deployment)"

#: the audit trail's records whose actor acted on the run (a refusal is only an attempt)
_ACTING = frozenset(
    {"run.started", "answer.received", "answer.invalid", "pause.reassigned", "run.cancelled"}
)

#: runs of each kind (waiting, newest) a prefix of a run id is looked for among
PREFIX_SCAN = 200

#: schemas and descriptions of requests kept read, the most recently used: a few
#: kilobytes each, and a bot that runs for months sees every run's; enough for the
#: requests a bot shows at once (two per waiting run), so that none is read twice a pass
STATIC_INPUTS = 4096

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


class RunReading:
    """Runs and requests for input read from one Prefect server, named and permissioned."""

    def __init__(self, settings: PrefectSettings, *, demo: str | None = None) -> None:
        self.settings = settings
        #: the demo session this backend plays (``runs.plays``); None for ``signoff serve``
        self.demo = demo
        auth_string, key = settings.credentials()
        self.api = PrefectApi(settings.api_url, key, auth_string=auth_string)
        self.records = Records(self.api)
        self.permissions: Permissions = settings.permissions()
        self.rules = Rules()
        self._names: dict[str, str] = {}
        self._static: OrderedDict[tuple[str, str], Any] = OrderedDict()
        self._static_limit = STATIC_INPUTS
        self._lock = threading.Lock()

    def stats(self) -> BackendStats:
        counts: dict[RunState, int] = {}
        for state in RunState:
            if state is RunState.SUSPENDED:
                continue  # counted with PAUSED: both are Prefect's PAUSED type
            counts[state] = self.api.count_runs(PREFECT_TYPES[state])
        return BackendStats(runs_by_state=counts, waiting_inputs=counts[RunState.PAUSED])

    # -- names and permissions ------------------------------------------------------------

    def _name(self, kind: str, ident: str | None) -> str | None:
        """A flow's or deployment's name; ``DELETED`` for a deployment deleted since it
        made the run (a flow's runs go with it)."""
        if not ident:
            return None
        with self._lock:
            known = self._names.get(f"{kind}:{ident}")
        if known is None:
            doc = self.api.flow(ident) if kind == "flow" else self.api.deployment(ident)
            # DELETED itself, compared by identity: no deployment's own name is that object.
            known = DELETED if doc is None else str(doc.get("name"))
            if doc is None:
                logger.info(
                    "Prefect deployment of a run is deleted",
                    extra={"action": "prefect_deployment_gone", "deployment_id": ident},
                )
            with self._lock:
                self._names[f"{kind}:{ident}"] = known
        return known

    def _run(self, doc: Doc) -> Run:
        run = prefect_runs.to_run(doc, self._name("flow", str(doc["flow_id"])) or "?")
        permission = self._permission(doc)
        return replace(
            run,
            approvers=tuple(permission.approvers or ()),
            cancellers=tuple(permission.cancel or ()),
        )

    def _permission(self, doc: Doc) -> Permission:
        flow = self._name("flow", str(doc["flow_id"])) or "?"
        deployment = self._name("deployment", doc.get("deployment_id"))
        if deployment is DELETED:
            permission = self.permissions.for_unknown_deployment(flow)
        else:
            permission = self.permissions.for_run(flow, deployment)
        tagged = prefect_runs.signoff_tags(list(doc.get("tags") or [])).get("signoff.approvers")
        if tagged:
            names = [p.strip() for p in tagged.split(",") if p.strip()]
            permission = permission.model_copy(update={"approvers": names})
        return permission

    # -- runs ---------------------------------------------------------------------------

    def _doc(self, run_id: str) -> Doc:
        """A run's document by its id, or by a unique prefix of it: Slack shows a run's first
        8 characters, and ``/runs show``, ``cancel`` and ``before=`` take what it shows.

        Prefect cannot filter runs by a prefix of their id, so a prefix is looked for among
        the runs waiting for input and the newest ones (``PREFIX_SCAN`` of each).

        Raises:
            RunNotFound: no such run, or several runs start with the prefix.
        """
        try:
            uuid.UUID(run_id)
        except ValueError:
            pass
        else:
            return self.api.flow_run(run_id)
        wanted = run_id.replace("-", "").lower()
        if not wanted or len(wanted) > 32 or not set(wanted) <= set(string.hexdigits):
            raise RunNotFound(run_id)
        docs = [
            *self.api.flow_runs(state_types=["PAUSED"], limit=PREFIX_SCAN),
            *self.api.flow_runs(limit=PREFIX_SCAN),
        ]
        found = {str(d["id"]): d for d in docs if str(d["id"]).replace("-", "").startswith(wanted)}
        if len(found) > 1:
            raise RunNotFound(run_id, several=True, choices=choices_text(sorted(found)))
        if not found:
            hint = (
                f"a part of an id is looked for among the runs waiting for input and the "
                f"{PREFIX_SCAN} newest only; give the whole id"
            )
            raise RunNotFound(run_id, hint=hint)
        return next(iter(found.values()))

    def get_run(self, run_id: str) -> Run:
        return self._run(self._doc(run_id))

    def list_runs(
        self,
        states: Sequence[RunState] | None = None,
        *,
        flow_name: str | None = None,
        limit: int = 50,
        before: str | None = None,
    ) -> list[Run]:
        types = sorted({t for s in states for t in PREFECT_TYPES[s]}) if states else None
        query = _Query(self.api, types, [flow_name.partition("/")[0]] if flow_name else None)
        after = None if before is None else self._doc(before)
        found: list[Run] = []
        # Prefect reads at most MAX_PAGE runs a request: a longer list is read in pages.
        size = min(limit, MAX_PAGE)
        while len(found) < limit:
            docs = query.page(size, after)
            runs = [self._run(doc) for doc in docs]
            # One Prefect type can hold states not asked for (PAUSED: paused and suspended
            # runs): read on past them, so that a page is short only at the end.
            found += [r for r in runs if states is None or r.state in states]
            if len(docs) < size:
                break
            after = docs[-1]
        return found[:limit]

    def visible(self, actor: Actor, runs: Sequence[Run]) -> list[Run]:
        # One read of the page's documents for their rules; who acted on a run or was
        # handed one of its requests is in records read run by run, so a list leaves
        # out a run those alone would show (``/runs show`` reads them).
        docs = self.api.flow_runs(ids=[r.id for r in runs], limit=len(runs)) if runs else []
        rules = {str(d["id"]): self._permission(d) for d in docs}
        return [r for r in runs if r.id in rules and self.rules.view(actor, r, rules[r.id]) is None]

    def open_to_all(self, runs: Sequence[Run]) -> list[Run]:
        # One read of the page's documents, as ``visible``: a request handed to someone is
        # in the run's records, not read here, so such a run counts as open (shown to fewer).
        docs = self.api.flow_runs(ids=[r.id for r in runs], limit=len(runs)) if runs else []
        rules = {str(d["id"]): self._permission(d) for d in docs}
        return [r for r in runs if r.id in rules and self.rules.open_to_all(rules[r.id])]

    def _may_view(self, actor: Actor, run: Run, doc: Doc) -> Refusal | None:
        """``Rules.view`` for one run, with its requests' approvers and its audit trail."""
        permission = self._permission(doc)
        if self.rules.view(actor, run, permission) is None:
            return None
        approvers = [a for p in self._pauses(doc, self.api.states(run.id)) for a in p.approvers]
        acted = {
            r.actor_id for r in self.records.trail(run.id) if r.actor_id and r.action in _ACTING
        }
        return self.rules.view(actor, run, permission, approvers, acted)

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

    def detail(self, run_id: str) -> RunDetail:
        doc = self._doc(run_id)
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

    def started_by(self, actor_id: str, limit: int = 20) -> list[Run]:
        docs = self.api.flow_runs(tags=[f"signoff.started_by:{actor_id}"], limit=limit)
        return [self._run(doc) for doc in docs]

    # -- requests for input ---------------------------------------------------------------

    def _static_input(self, run_id: str, key: str) -> Any:
        """A schema or description: written once by the flow, so read once."""
        with self._lock:
            if (run_id, key) in self._static:
                self._static.move_to_end((run_id, key))
                return self._static[(run_id, key)]
        value = self.api.read_input(run_id, key)
        if value is not None and not key.endswith("-response"):
            with self._lock:
                self._static[(run_id, key)] = value
                self._static.move_to_end((run_id, key))
                while len(self._static) > self._static_limit:
                    self._static.popitem(last=False)  # the least recently used
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
            schema_wait=timedelta(seconds=self.settings.schema_wait_seconds),
        )

    def _waiting(self, doc: Doc) -> Pause | None:
        if (doc.get("state") or {}).get("type") != "PAUSED":
            return None
        pauses = self._pauses(doc, self.api.states(str(doc["id"])))
        return next((p for p in pauses if p.status is PauseStatus.WAITING), None)

    def get_pause(self, run_id: str, key: str) -> Pause | None:
        doc = self._doc(run_id)
        pauses = self._pauses(doc, self.api.states(str(doc["id"])))
        return next((p for p in pauses if p.key == key), None)

    def waiting_pause(self, run_id: str) -> Pause | None:
        return self._waiting(self._doc(run_id))


#: the most runs Prefect's server reads in one request ("Invalid limit: must be less than or
#: equal to 200")
MAX_PAGE = 200
#: runs read per request when collecting those expected at one moment
_TIED_PAGE = MAX_PAGE


def _moment(doc: Doc) -> datetime:
    """When a run is expected to start (its creation, for a run Prefect gives none)."""
    text = str(doc.get("expected_start_time") or doc.get("created") or "0001-01-01T00:00:00Z")
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def _newest_first(docs: list[Doc]) -> list[Doc]:
    return sorted(docs, key=lambda d: (_moment(d), str(d["id"])), reverse=True)


class _Query:
    """Flow runs of some states and flows, read newest first in a total order."""

    def __init__(self, api: PrefectApi, types: list[str] | None, flows: list[str] | None) -> None:
        self.api, self.types, self.flows = api, types, flows

    def page(self, limit: int, after: Doc | None) -> list[Doc]:
        """The first ``limit`` runs listed after the run ``after`` (from the newest, without).

        Keyset paging on (expected start, id), newest first: runs expected at the same
        moment (a cron tick's) are ordered by id, which Prefect's sort leaves open.
        """
        if after is None:
            return self.newest(limit)
        at = _moment(after)
        docs = [d for d in self.at(at) if str(d["id"]) < str(after["id"])][:limit]
        if len(docs) < limit:
            docs += self.newest(limit - len(docs), before=at)
        return docs

    def newest(self, limit: int, before: datetime | None = None) -> list[Doc]:
        """The first ``limit`` runs expected strictly before ``before`` (any, without)."""
        bound = None if before is None else (before - timedelta(microseconds=1)).isoformat()
        docs = self._read(expected_before=bound, limit=limit)
        if len(docs) == limit:
            # The page may have cut a group of runs expected at its last moment anywhere:
            # take the whole group, in id order, and cut it there instead.
            last = _moment(docs[-1])
            docs = [d for d in docs if _moment(d) > last] + self.at(last)
        return _newest_first(docs)[:limit]

    def at(self, moment: datetime) -> list[Doc]:
        """Every run expected at exactly ``moment``, newest id first."""
        found: list[Doc] = []
        while True:
            page = self._read(
                expected_before=moment.isoformat(),
                expected_after=moment.isoformat(),
                limit=_TIED_PAGE,
                offset=len(found),
            )
            found += page
            if len(page) < _TIED_PAGE:
                return _newest_first(found)

    def _read(self, **bounds: Any) -> list[Doc]:
        return self.api.flow_runs(state_types=self.types, flow_names=self.flows, **bounds)


__all__ = ["PREFECT_TYPES", "PREFIX_SCAN", "RunReading"]
