"""Reading Prefect's flow runs, states and logs as Signoff's run values.

Pure functions over Prefect's JSON; no HTTP here (``backend`` fetches, this maps).

A Prefect run waits for a person while its state is ``PAUSED``: named "Paused" when the
flow process waits, "Suspended" (``pause_reschedule``) when it exited and answering
schedules it again. Each pause has a key (``state_details.pause_key``); a pause that
wants input also has a ``run_input_keyset`` naming the flow run inputs that hold its JSON
schema, its description and, once answered, the response. Signoff names a pause
``"<state name>-<pause key>"`` (``paused-1``), which is also the keyset's prefix. Prefect
forgets the keys that fired when it retries a run, so a retried flow asks ``paused-1``
again: that second request is ``paused-1-try2`` to Signoff, with its own prompt and
records, so that the first request's button cannot answer it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from signoff.bot.backends.model import LogEntry, Run, RunState, StateChange

Doc = dict[str, Any]

#: Prefect state type -> Signoff run state (PAUSED is split by ``pause_reschedule``)
STATE_TYPES = {
    "SCHEDULED": RunState.SCHEDULED,
    "PENDING": RunState.SCHEDULED,
    "RUNNING": RunState.RUNNING,
    "CANCELLING": RunState.RUNNING,
    "COMPLETED": RunState.COMPLETED,
    "FAILED": RunState.FAILED,
    "CANCELLED": RunState.CANCELLED,
    "CRASHED": RunState.CRASHED,
}
#: tags Signoff puts on runs it starts: "signoff.started_by:U0CAROL", "slack.channel:C0..."
TAG = re.compile(r"^(?P<key>(?:signoff|slack)\.[a-z_.]+):(?P<value>.*)$")
#: the tag on the runs ``signoff demo --backend prefect`` starts, naming its session: a bot
#: serving the same server leaves them to the demo (``plays``), and the demo leaves that
#: bot's runs alone
DEMO_TAG = "signoff.demo"
LEVELS = {10: "DEBUG", 20: "INFO", 30: "WARNING", 40: "ERROR", 50: "CRITICAL"}


def parse_time(text: str | None) -> datetime | None:
    if not text:
        return None
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def run_state(state: Doc | None) -> RunState:
    if not state:
        return RunState.SCHEDULED
    if state.get("type") == "PAUSED":
        details = state.get("state_details") or {}
        return RunState.SUSPENDED if details.get("pause_reschedule") else RunState.PAUSED
    return STATE_TYPES.get(str(state.get("type")), RunState.RUNNING)


def signoff_tags(tags: list[str]) -> dict[str, str]:
    """The ``key:value`` tags Signoff reads (others are the user's and left alone)."""
    found: dict[str, str] = {}
    for tag in tags:
        match = TAG.match(tag)
        if match:
            found[match["key"]] = match["value"]
    return found


def plays(run: Run, demo: str | None) -> bool:
    """True if a bot playing the demo session ``demo`` (None: no demo, ``signoff serve``)
    handles ``run``: a demo's runs are its own, every other run is the served bot's."""
    return run.tags.get(DEMO_TAG) == demo


def to_run(doc: Doc, flow_name: str) -> Run:
    state = doc.get("state") or {}
    tags = signoff_tags(list(doc.get("tags") or []))
    created = parse_time(doc.get("created")) or datetime.now(UTC)
    return Run(
        id=str(doc["id"]),
        flow_name=flow_name,
        state=run_state(state),
        state_name=str(state.get("name") or doc.get("state_name") or "Scheduled"),
        state_message=state.get("message") or None,
        parameters=dict(doc.get("parameters") or {}),
        created_at=created,
        updated_at=parse_time(doc.get("updated")) or created,
        started_by=tags.get("signoff.started_by"),
        tags=tags,
    )


def fingerprint(doc: Doc) -> str:
    """What changes whenever the run does: its state and its update time."""
    return f"{doc.get('state_id')}:{doc.get('updated')}"


def history(states: list[Doc]) -> tuple[StateChange, ...]:
    return tuple(
        StateChange(
            state=run_state(s),
            name=str(s.get("name") or s.get("type")),
            message=s.get("message") or None,
            at=parse_time(s.get("timestamp")) or datetime.now(UTC),
        )
        for s in states
    )


def log_entries(logs: list[Doc]) -> tuple[LogEntry, ...]:
    return tuple(
        LogEntry(
            at=parse_time(entry.get("timestamp")) or datetime.now(UTC),
            level=LEVELS.get(int(entry.get("level") or 20), str(entry.get("level"))),
            message=str(entry.get("message") or ""),
        )
        for entry in logs
    )


@dataclass(frozen=True)
class PauseState:
    """One pause of a run, as its ``PAUSED`` state records it."""

    #: Signoff's name for it (``paused-1``, ``paused-1-try2`` when Prefect asks again)
    key: str
    suspend: bool
    #: flow run input keys (schema, description, response); None for a pause without input
    keyset: dict[str, str] | None
    created_at: datetime
    deadline: datetime | None
    #: the name Prefect's state gives it (``paused-1``)
    asked_as: str = ""


def pause_of(state: Doc) -> PauseState | None:
    """The pause a ``PAUSED`` state stands for (None for any other state)."""
    if state.get("type") != "PAUSED":
        return None
    details = state.get("state_details") or {}
    keyset = details.get("run_input_keyset") or None
    name = str(state.get("name") or "Paused").lower()
    key = (
        str(keyset["schema"]).removesuffix("-schema")
        if keyset
        else f"{name}-{details.get('pause_key')}"
    )
    return PauseState(
        key=key,
        suspend=bool(details.get("pause_reschedule")),
        keyset=dict(keyset) if keyset else None,
        created_at=parse_time(state.get("timestamp")) or datetime.now(UTC),
        deadline=parse_time(details.get("pause_timeout")),
        asked_as=key,
    )


def pauses(states: list[Doc]) -> list[PauseState]:
    """Each pause once, in the order the run paused; a key Prefect asks again once the run
    went on (it forgets fired keys on a retry) is a new pause, ``<key>-try<n>``."""
    found: list[PauseState] = []
    tries: dict[str, int] = {}
    went_on = True
    for state in states:
        pause = pause_of(state)
        if pause is None:
            went_on = True
            continue
        if went_on or pause.key != found[-1].asked_as:
            tries[pause.key] = tries.get(pause.key, 0) + 1
            n = tries[pause.key]
            found.append(replace(pause, key=f"{pause.key}-try{n}") if n > 1 else pause)
        went_on = False
    return found


def waiting_in(doc: Doc, found: list[PauseState]) -> PauseState | None:
    """Which of ``found`` (``pauses``) the run waits in now: the last Prefect's current
    state names."""
    current = pause_of(doc.get("state") or {})
    if current is None:
        return None
    return next((p for p in reversed(found) if p.asked_as == current.key), None)


def initial_values(schema: Doc | None) -> dict[str, Any]:
    """The form's starting values: the schema's defaults (``with_initial_data`` puts its
    values there)."""
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return {}  # a malformed schema (stored by the flow): the form says what is wrong
    return {
        name: node["default"]
        for name, node in props.items()
        if isinstance(node, dict) and "default" in node
    }
