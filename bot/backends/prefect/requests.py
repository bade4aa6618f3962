"""A Prefect run's requests for input, read from its states, inputs, logs and Signoff's records.

Each ``PAUSED`` state is one request (``runs.pause_of``). Where it stands is judged from the
run as it is now:

- the run's current state is that pause and no response is stored -> ``WAITING``;
- the run went on after it with a response, an answer record (an answer's claim: one on
  the current pause holds it while its lease lasts, ``claims``), or simply resumed ->
  ``ACCEPTED``; but if the flow then logged a warning or an error and asked for the same
  model again with the same description (the reference's validation loop), or failed on
  a validation error -> ``REJECTED`` with that message as the error;
- nobody answered before its deadline -> ``TIMED_OUT``; otherwise -> ``CANCELLED``.

A request that asks again for a model whose answer was refused starts from the refused
values, so the person corrects rather than retypes.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

from signoff.bot.backends.model import Delegation, GivenAnswer, Pause, PauseStatus, Run, RunState
from signoff.bot.backends.prefect import runs as prefect_runs
from signoff.bot.backends.prefect.api import Doc
from signoff.bot.backends.prefect.settings import Permission
from signoff.engine import hide_secrets

#: log levels that may carry the flow's reason for refusing an answer (WARNING and up)
REFUSAL_LEVEL = 30

#: how long after a flow asks again for the same model the log line saying why it refused the
#: last answer may still be on its way (Prefect ships a run's logs in batches, 2 s apart by
#: default); until then the last answer is neither accepted nor refused
REFUSAL_LOG_GRACE = timedelta(seconds=10)

#: reads a flow run input by key (None when absent)
ReadInput = Callable[[str], Any]
#: reads one of Signoff's records on the run (None when absent)
ReadRecord = Callable[[str], Any]


def answer_record(key: str) -> str:
    """The record naming who answered request ``key`` (claimed before resuming)."""
    return f"answer.{key}"


def delegation_record(key: str) -> str:
    """The record listing who handed request ``key`` to whom."""
    return f"delegations.{key}"


#: the lease of an answer's claim that names none (made before claims had one)
DEFAULT_LEASE = timedelta(seconds=60)


def lapsed(claim: Any, now: datetime | None = None) -> bool:
    """True for an answer's claim (``answer_record``) past its lease: ``until``, or ``at``
    and ``DEFAULT_LEASE`` for one made before claims had one. One on a request the run still
    waits on is an answer that never took effect (``claims``), and counts for nothing."""
    if not isinstance(claim, dict):
        return False
    until = prefect_runs.parse_time(claim.get("until"))
    if until is None:
        at = prefect_runs.parse_time(claim.get("at"))
        if at is None:
            return False
        until = at + DEFAULT_LEASE
    return until <= (now or datetime.now(UTC))


def approvers_after(approvers: tuple[str, ...], delegations: list[Delegation]) -> tuple[str, ...]:
    """``approvers`` with each hand-over applied: ``to`` in, ``by`` out (a request anyone
    could answer becomes ``to``'s)."""
    found = list(approvers)
    for delegation in delegations:
        found = [a for a in found if a != delegation.by]
        if delegation.to not in found:
            found.append(delegation.to)
    return tuple(found)


def delegations_of(value: Any) -> list[Delegation]:
    found: list[Delegation] = []
    for item in value if isinstance(value, list) else []:
        at = prefect_runs.parse_time(str(item.get("at") or "")) or datetime.now(UTC)
        found.append(Delegation(by=str(item["by"]), to=str(item["to"]), at=at))
    return found


def read_pauses(
    run: Run,
    doc: Doc,
    states: list[Doc],
    *,
    permission: Permission,
    read_input: ReadInput,
    read_record: ReadRecord,
    logs: Callable[[], list[Doc]],
    schema_wait: timedelta = timedelta(seconds=30),
) -> list[Pause]:
    """Every request for input the run made, oldest first, with where each stands now.

    A request whose schema the flow has not stored yet is left out for ``schema_wait``
    after it was made, and then listed as waiting but ``unanswerable``; so is one whose
    stored schema is not a JSON object at once."""
    pauses = prefect_runs.pauses(states)
    current = prefect_runs.waiting_in(doc, pauses)
    found: list[Pause] = []
    log_cache: list[list[Doc]] = []

    def cached_logs() -> list[Doc]:
        if not log_cache:
            log_cache.append(logs())
        return log_cache[0]

    for index, pause in enumerate(pauses):
        keyset = pause.keyset or {}
        schema = read_input(keyset["schema"]) if keyset else None
        description = read_input(keyset["description"]) if keyset.get("description") else None
        later = pauses[index + 1] if index + 1 < len(pauses) else None
        # A key Prefect asked again (a retry) has one response, the last request's.
        asked_again = any(p.keyset == pause.keyset for p in pauses[index + 1 :])
        response = (
            read_input(keyset["response"]) if keyset.get("response") and not asked_again else None
        )
        current_one = current is not None and current.key == pause.key
        answer = read_record(answer_record(pause.key)) or {}
        if current_one and lapsed(answer):
            answer = {}  # the claim of an answer that never took effect
        errors: dict[str, str] = {}
        waiting = current_one and not answer
        unanswerable = None
        if waiting and keyset and schema is None:
            # The flow pauses first and stores the schema just after: until then there is
            # no form to show, and Prefect would refuse any answer ("schema not found").
            if datetime.now(UTC) - pause.created_at < schema_wait:
                continue
            # Past the wait, the flow is not going to store it (its process stopped, most
            # likely): say so rather than keep the request out of sight.
            unanswerable = (
                f"the flow paused for input but did not store the input's schema within "
                f"{schema_wait.total_seconds():g} s (its process may have stopped), so "
                "Prefect cannot take an answer"
            )
        elif waiting and keyset and not isinstance(schema, dict):
            # Prefect's server fails on every answer to such a schema (and its UI cannot
            # show it): no form could help, so say so rather than offer an empty one.
            shown = json.dumps(schema)
            unanswerable = (
                f"the schema the flow stored for the input is not a JSON object "
                f"({shown if len(shown) <= 40 else shown[:39] + '…'}), so Prefect cannot "
                "take an answer"
            )
        if waiting:
            status = PauseStatus.WAITING
        elif response is not None or answer or resumed_after(states, pause):
            status = PauseStatus.ACCEPTED
            reason = _refusal(run, pause, later, schema, states, read_input, cached_logs)
            if reason is not None:
                status, errors = PauseStatus.REJECTED, {"": reason}
        elif pause.deadline is not None and pause.deadline <= (
            _left_at(states, pause) or datetime.now(UTC)
        ):
            status = PauseStatus.TIMED_OUT
        else:
            status = PauseStatus.CANCELLED
        schema = schema if isinstance(schema, dict) else None
        answered_at = prefect_runs.parse_time(answer.get("at")) if answer else None
        responder = answer.get("responder") if answer else None
        delegations = delegations_of(read_record(delegation_record(pause.key)))
        found.append(
            Pause(
                run_id=run.id,
                key=pause.key,
                suspend=pause.suspend,
                status=status,
                schema=schema,
                title=schema.get("title") if schema else None,
                description=description if isinstance(description, str) else None,
                initial=prefect_runs.initial_values(schema),
                approvers=approvers_after(tuple(permission.approvers or ()), delegations),
                forbid_starter=bool(permission.forbid_starter),
                created_at=pause.created_at,
                deadline=pause.deadline,
                # Shown, never answered with: a secret field's value is masked.
                response=hide_secrets(
                    schema, response if response is not None else answer.get("input")
                ),
                responder=responder,
                answered_at=answered_at,
                errors=errors,
                answers=(
                    (
                        GivenAnswer(
                            responder=responder,
                            name=answer.get("name"),
                            via="slack",
                            input=hide_secrets(schema, answer.get("input")),
                            at=answered_at,
                        ),
                    )
                    if responder and answered_at
                    else ()
                ),
                delegations=tuple(delegations),
                unanswerable=unanswerable,
                answered_outside=status in (PauseStatus.ACCEPTED, PauseStatus.REJECTED)
                and not responder,
            )
        )
    return _prefill_asked_again(found)


def _refusal(
    run: Run,
    pause: prefect_runs.PauseState,
    later: prefect_runs.PauseState | None,
    schema: Any,
    states: list[Doc],
    read_input: ReadInput,
    logs: Callable[[], list[Doc]],
) -> str | None:
    """The flow's reason for refusing the answer to ``pause``, if it refused it: after the
    answer it logged a warning or an error and then asked the same again
    (``same_question``), or it failed on a validation error."""
    title = schema.get("title") if isinstance(schema, dict) else None
    left = _left_at(states, pause)
    if later is not None:
        if title is None or later.keyset is None or pause.keyset is None:
            return None
        again = read_input(later.keyset["schema"])
        if not isinstance(again, dict) or not same_question(
            schema,
            _description(pause.keyset, read_input),
            again,
            _description(later.keyset, read_input),
        ):
            return None
        for entry in reversed(logs()):
            at = prefect_runs.parse_time(entry.get("timestamp"))
            if (
                at is not None
                and (left is None or at >= left - timedelta(seconds=1))
                and at <= later.created_at + timedelta(seconds=1)
                and int(entry.get("level") or 0) >= REFUSAL_LEVEL
            ):
                return str(entry.get("message"))[:1500]
        return None
    if run.state is RunState.FAILED and "validation error" in (run.state_message or "").lower():
        return run.state_message
    return None


def same_question(
    schema: Any, description: str | None, again: Any, described_again: str | None
) -> bool:
    """True when a later request asks what an earlier one asked: the same model (its
    defaults aside: a loop may start from the refused values) and the same description, as
    the reference's validation loop asks again. Two decisions on one model (``Approval``
    for the build, then for the deploy) differ in their description, or in the model's."""
    if not isinstance(schema, dict) or not isinstance(again, dict):
        return False
    return bool(schema.get("title")) and (
        _without_defaults(schema) == _without_defaults(again) and description == described_again
    )


def _without_defaults(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _without_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_without_defaults(v) for v in node]
    return node


def _description(keyset: dict[str, str], read_input: ReadInput) -> str | None:
    found = read_input(keyset["description"]) if keyset.get("description") else None
    return found if isinstance(found, str) else None


def refusal_pending(pauses: Sequence[Pause], now: datetime | None = None) -> bool:
    """True while an answer looks accepted only because the flow's reason for refusing it may
    not have reached the server yet: the flow asked the same again moments ago."""
    moment = now or datetime.now(UTC)
    return any(
        earlier.status is PauseStatus.ACCEPTED
        and same_question(earlier.schema, earlier.description, later.schema, later.description)
        and moment - later.created_at < REFUSAL_LOG_GRACE
        for earlier, later in pairwise(pauses)
    )


def resumed_after(states: list[Doc], pause: prefect_runs.PauseState) -> bool:
    """True when the run went on after ``pause`` (running again, or rescheduled by a resumed
    suspend) rather than ending where it waited."""
    for state in states:
        moment = prefect_runs.parse_time(state.get("timestamp"))
        if moment is None or moment <= pause.created_at or state.get("type") == "PAUSED":
            continue
        return state.get("type") in ("RUNNING", "SCHEDULED", "PENDING", "COMPLETED")
    return False


def _left_at(states: list[Doc], pause: prefect_runs.PauseState) -> datetime | None:
    """When the run left ``pause`` (its first state after it), if it has."""
    for state in states:
        moment = prefect_runs.parse_time(state.get("timestamp"))
        if moment is not None and moment > pause.created_at and state.get("type") != "PAUSED":
            return moment
    return None


def _prefill_asked_again(pauses: list[Pause]) -> list[Pause]:
    found: list[Pause] = []
    for index, pause in enumerate(pauses):
        previous = pauses[index - 1] if index else None
        if (
            previous is not None
            and previous.status is PauseStatus.REJECTED
            and previous.title == pause.title
            and isinstance(previous.response, dict)
        ):
            found.append(replace(pause, initial={**pause.initial, **previous.response}))
        else:
            found.append(pause)
    return found
