"""The engine's side of oversight: who may act (asked without acting), the audit trail, and
what a person's home view needs (what waits on them, what they started, what they decided).

``Engine`` inherits these methods; they only read, except ``record_once``.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Literal, TextIO

from signoff.engine.actors import SYSTEM, Actor, GroupDirectory
from signoff.engine.audit import (
    AuditAction,
    AuditEntry,
    AuditRecord,
    ChainBreak,
    Verification,
    verify,
)
from signoff.engine.audit_export import export_csv, export_jsonl
from signoff.engine.errors import FlowNotFound, RunNotFound
from signoff.engine.permissions import Action, Permissions, Refusal
from signoff.engine.registry import FlowRegistry
from signoff.engine.runs import JSON, Involvement, Pause, PauseStatus, Run, run_id_text
from signoff.engine.settings import EngineSettings
from signoff.engine.store import SqlStore

#: a run's whole id (a pruned run's audit records are found by it alone)
_WHOLE_ID = re.compile(r"[0-9a-f]{32}")

#: what counts as a person's decision on their home view
DECISIONS = (
    AuditAction.ANSWER_RECEIVED.value,
    AuditAction.REASSIGNED.value,
    AuditAction.RUN_CANCELLED.value,
)


class Oversight:
    """Permission queries, the audit trail and per-person views, over the engine's store."""

    settings: EngineSettings
    store: SqlStore
    flows: FlowRegistry
    permissions: Permissions

    def _run(self, run_id: str | uuid.UUID) -> Run:
        run_id = run_id_text(run_id)
        try:
            return self.store.get_run(run_id)
        except RunNotFound:
            return self.store.find_run(run_id)

    def set_group_directory(self, directory: GroupDirectory | None) -> None:
        """Tell the engine who belongs to which group (the Slack bot installs its own)."""
        self.permissions.directory = directory

    def operator(self, name: str | None = None, groups: Iterable[str] = ()) -> Actor:
        """The CLI's named local operator: ``name``, ``SIGNOFF_OPERATOR``, or the login name."""
        return Actor.operator(name or self.settings.operator, groups=tuple(groups))

    def refusal(
        self,
        action: Action,
        actor: Actor | None,
        run_id: str,
        key: str | None = None,
        *,
        record: bool = False,
    ) -> Refusal | None:
        """Why ``actor`` may not do ``action`` to a run now, or None.

        Applications use it to show only the buttons a person may use, and to explain. With
        ``record``, a refusal is an attempt (a click on a button) and goes in the audit trail.
        """
        run = self._run(run_id)
        found: Refusal | None
        if action is Action.VIEW:
            found = self._may_view(actor, run, self.store.involvement([run.id])[run.id])
            if found is not None and record:
                self._record_refusal(action, actor, run, None, found)
            return found
        pause = self.store.get_pause(run.id, key) if key else self.store.waiting_pause(run.id)
        if action is Action.CANCEL:
            found = self.permissions.cancel(actor, run, run.cancellers, self._deciding(run, pause))
        elif pause is None and key and run.state.is_waiting:
            return Refusal(f"run {run.id} has asked for no input named {key[:100]!r}")
        elif pause is None:
            return Refusal(f"run {run.id} is not waiting for input")
        elif action is Action.REASSIGN:
            found = self.permissions.reassign(actor, run, pause)
        else:
            found = self.permissions.answer(actor, run, pause, pause.answered_by)
        if found is not None and record:
            self._record_refusal(action, actor, run, pause, found)
        return found

    def _record_refusal(
        self, action: Action, actor: Actor | None, run: Run, pause: Pause | None, found: Refusal
    ) -> None:
        self.store.record_audit(
            AuditEntry(
                AuditAction.REFUSED,
                run.id,
                run.flow_name,
                actor,
                pause.key if pause is not None else None,
                {"action": action.value, "rule": found.reason},
            )
        )

    def _may_view(self, actor: Actor | None, run: Run, involvement: Involvement) -> Refusal | None:
        # The flow's starters and viewers as loaded now: a run does not store them (a flow
        # not loaded in this process names none).
        flow = self.flows.get(run.flow_name)
        if flow is None:
            return self.permissions.view(actor, run, (), involvement)
        return self.permissions.view(actor, run, flow.starters, involvement, flow.viewers)

    def open_to_all(self, runs: Sequence[Run]) -> list[Run]:
        """The runs of ``runs`` that the view rule lets anyone view (their flow and pauses
        name nobody), in their order; read as ``visible`` reads them, for a page at once."""
        involved = self.store.involvement([r.id for r in runs])
        found = []
        for run in runs:
            flow = self.flows.get(run.flow_name)
            starters, viewers = (flow.starters, flow.viewers) if flow is not None else ((), ())
            if self.permissions.open_to_all(run, starters, involved[run.id], viewers):
                found.append(run)
        return found

    def visible(self, actor: Actor | None, runs: Sequence[Run]) -> list[Run]:
        """The runs of ``runs`` that ``actor`` may view (the view rule), in their order; two
        reads for them all (a listing's page), none per run. Records nothing."""
        involved = self.store.involvement([r.id for r in runs])
        return [r for r in runs if self._may_view(actor, r, involved[r.id]) is None]

    def _deciding(self, run: Run, waiting: Pause | None) -> Pause | None:
        """The pause whose approvers may cancel ``run``: ``waiting``, the one it waits on,
        else the one a flow it called waits on, else its newest. Between pauses, the
        people its last decision named keep that right; the flow's approvers (often none,
        when each pause names its own) are not the run's."""
        # Cancelling a run cancels the runs of the flows it called: one that waits on a
        # decision is stopped only by whoever may stop that decision.
        return waiting or self._waiting_below(run.id) or self.store.latest_pause(run.id)

    def _waiting_below(self, run_id: str) -> Pause | None:
        """The pause an unfinished run of a flow ``run_id``'s flow called (or theirs) waits on."""
        children = self.store.unfinished_children(run_id)
        for child in children:
            pause = self.store.waiting_pause(child)
            if pause is not None:
                return pause
        for child in children:
            pause = self._waiting_below(child)
            if pause is not None:
                return pause
        return None

    def may_start(self, actor: Actor | None, flow_name: str) -> Refusal | None:
        """Why ``actor`` may not start ``flow_name``, or None; records nothing."""
        flow = self.flows.get(flow_name)
        if flow is None:
            raise FlowNotFound(flow_name, suggestions=self.flows.similar(flow_name))
        return self.permissions.start(actor, flow.name, flow.starters)

    def record_once(
        self,
        run_id: str,
        claim: str,
        action: AuditAction,
        *,
        key: str | None = None,
        data: Mapping[str, JSON] | None = None,
        actor: Actor | None = SYSTEM,
    ) -> bool:
        """Claim metadata ``claim`` on a run and record ``action`` with it, unless claimed.

        Of several processes doing the same thing (workers firing one reminder), exactly
        one gets True; only that one should act::

            if engine.record_once(run.id, "reminded:1", AuditAction.REMINDER_SENT, key="1"):
                post_reminder(run)
        """
        run = self._run(run_id)
        entry = AuditEntry(action, run.id, run.flow_name, actor, key, dict(data or {}))
        return self.store.claim_and_record(run.id, claim, entry)

    def audit_trail(self, run_id: str) -> list[AuditRecord]:
        """Every audit record of one run, oldest first; for a run pruned since
        (``prune_finished``), by its whole id."""
        try:
            found = self._run(run_id).id
        except RunNotFound:
            whole = run_id_text(run_id)
            if not _WHOLE_ID.fullmatch(whole):
                raise
            kept = list(self.store.audit_records(run_id=whole))
            if not kept:
                raise
            return kept
        return list(self.store.audit_records(run_id=found))

    def audit_records(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        flow_name: str | None = None,
    ) -> Iterator[AuditRecord]:
        """Audit records in order, read a page at a time (constant memory), filtered by time
        (``since`` inclusive, ``until`` exclusive) and flow."""
        return self.store.audit_records(since=since, until=until, flow_name=flow_name)

    def export_audit(
        self,
        out: TextIO,
        *,
        fmt: Literal["jsonl", "csv"] = "jsonl",
        since: datetime | None = None,
        until: datetime | None = None,
        flow_name: str | None = None,
    ) -> int:
        """Write the audit records (filtered as ``audit_records``) to ``out`` as JSON lines or
        CSV, oldest first, a page at a time; returns how many. Memory stays flat::

            with open("trail.jsonl", "w") as out:
                engine.export_audit(out, since=datetime(2026, 11, 1, tzinfo=UTC))
        """
        pages = self.store.audit_export_pages(since=since, until=until, flow_name=flow_name)
        return (export_csv if fmt == "csv" else export_jsonl)(pages, out)

    def verify_audit(self, heads: Mapping[int, str] | None = None) -> Verification:
        """Check the whole chain; says where it first breaks, if it does.

        A hash chain alone cannot show that its newest records were deleted. ``heads``
        (record number -> hash, such as the last hash an earlier check reported, kept
        elsewhere) must still be there; and every run created since the trail began must
        still have the record of its start, or the chain breaks after its last record.
        """
        found = verify(self.store.audit_records(), self.store.audit_secret, heads)
        if found.broken is not None:
            return found
        unrecorded = self.store.runs_without_start_record(limit=4)
        if not unrecorded:
            return found
        shown = ", ".join(unrecorded[:3]) + (" and more" if len(unrecorded) > 3 else "")
        why = (
            f"runs {shown} have no record of their start"
            if len(unrecorded) > 1
            else f"run {shown} has no record of its start"
        )
        if found.checked:
            why += (
                f", though records 1-{found.checked} hold: records after {found.checked} "
                "were deleted"
            )
        else:
            why += (
                ": the trail holds no records (were they deleted? runs started before "
                "Signoff kept an audit trail have none)"
            )
        return replace(found, broken=ChainBreak(found.checked + 1, why))

    # -- a person's view ------------------------------------------------------------------

    def waiting_on(self, actor: Actor, limit: int = 20) -> list[tuple[Run, Pause]]:
        """Runs waiting for input that ``actor`` may give now, newest first, at most ``limit``.

        Waiting pauses are read a page at a time and checked against the rules, so the cost
        follows how many runs wait, not how many are stored.
        """
        found: list[tuple[Run, Pause]] = []
        for waiting in self.store.waiting_inputs():
            if self.permissions.answer_waiting(actor, waiting) is not None:
                continue
            pause = self.store.get_pause(waiting.run_id, waiting.key)
            if pause is None or pause.status is not PauseStatus.WAITING:
                continue  # answered since the scan read it
            found.append((self.store.get_run(waiting.run_id), pause))
            if len(found) >= limit:
                break
        return found

    def started_by(self, actor_id: str, limit: int = 20) -> list[Run]:
        """The newest runs ``actor_id`` started."""
        return self.store.runs_started_by(actor_id, limit)

    def decisions_by(self, actor_id: str, limit: int = 20) -> list[AuditRecord]:
        """``actor_id``'s newest answers, reassignments and cancels, from the audit trail."""
        return self.store.recent_audit(actor_id=actor_id, actions=DECISIONS, limit=limit)


__all__ = ["DECISIONS", "Oversight"]
