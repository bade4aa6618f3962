"""The notes the bot posts in a run's thread, as mrkdwn text: an answer the flow's model
refused, an input no Slack form can show, a secret to give from the command line, a request
nobody can answer, a run that ended without completing, a reminder before the deadline, an
escalation, and a quorum too few people may answer. (The prompts and status lines they
follow are ``bot.slack.messages``.)"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from signoff.bot.backends import Pause, PauseStatus, Run, RunState
from signoff.bot.forms.labels import clip
from signoff.bot.forms.layout import MAX_TEXT
from signoff.bot.forms.mrkdwn import escape_mrkdwn, literal_mrkdwn
from signoff.bot.slack.messages import (
    MAX_MESSAGE_TEXT,
    approvers_text,
    run_label,
    status_line,
    when,
    who,
)


def rejection_text(responder: str | None, errors: Mapping[str, str], response: object) -> str:
    """The thread's note on an answer the flow's model refused: each field's reason (a
    model's own words, clipped to a section's length), and what was sent."""
    lines = [f":warning: {who(responder)}'s answer was not accepted:"]
    lines += [
        f"• *{literal_mrkdwn(clip(field or 'input', 200))}*: {escape_mrkdwn(clip(msg, MAX_TEXT))}"
        for field, msg in errors.items()
    ]
    if isinstance(response, Mapping) and response:
        sent = ", ".join(f"{k}={v}" for k, v in response.items())
        lines.append(f"They sent: `{escape_mrkdwn(clip(sent, 500))}`")
    # Whether the flow asks again is only known later: the next prompt (or the run's
    # failure) follows in this thread, so this note does not promise a form.
    return clip("\n".join(lines), MAX_MESSAGE_TEXT)


def unrenderable_text(
    pause: Pause, reason: str, *, cancelled: bool = True, elsewhere: bool = False
) -> str:
    """The thread note for an input no Slack form can show: whether the run was cancelled
    for it, or where else it may be answered."""
    title = literal_mrkdwn(pause.title or f"for {pause.key}")
    if elsewhere:
        then = "Answer it where the run runs (Prefect's UI), or change the model."
    elif cancelled:
        then = "The run is cancelled; change the model and start it again."
    else:
        then = "Change the model and start it again."
    return (
        f":x: The input model *{title}* cannot be shown as a Slack form: "
        f"{escape_mrkdwn(reason)}. {then}"
    )


def secret_text(run: Run, pause: Pause, field: str) -> str:
    """The thread note for an input holding a secret: Slack shows what is typed, so the
    answer is given from the command line, and the run waits for it."""
    title = literal_mrkdwn(pause.title or f"for {pause.key}")
    given: Any = "..."
    for name in reversed(field.split(".")):
        given = {name: given}
    command = f"signoff runs resume {run.id[:8]} --input '{json.dumps(given)}'"
    return (
        f":lock: The input *{title}* asks for a secret (`{escape_mrkdwn(field)}`), which a "
        f"Slack form never asks for, since Slack shows what is typed. Give it from the "
        f"command line: `{command}`. The run waits for it."
    )


def unanswerable_text(pause: Pause) -> str:
    """The thread note for a request nobody can answer (``Pause.unanswerable`` says why)."""
    title = literal_mrkdwn(pause.title or f"for {pause.key}")
    return (
        f":x: Nobody can answer the input *{title}*: "
        f"{escape_mrkdwn(pause.unanswerable or 'it cannot be answered')}. "
        f"Cancel the run (`/runs cancel {pause.run_id[:8]}`), and start it again if it is "
        "still needed."
    )


def finished_text(run: Run) -> str:
    """The thread note for a run that ended without completing."""
    line = status_line(run)
    if run.state is RunState.FAILED and (run.state_message or "").startswith("input rejected"):
        return (
            f"{line}\nThe answer was rejected and the flow does not ask again, so the run failed."
        )
    return line


def reminder_text(run: Run, pause: Pause) -> str:
    """A nudge before the deadline, mentioning whoever may answer ("anyone here" if open).

    A quorum's reminder says how many answers it still lacks, and does not mention the
    people who have answered already (they cannot answer again)."""
    answered = set(pause.answered_by)
    remaining = tuple(a for a in pause.approvers if a not in answered)
    if remaining and remaining != pause.approvers:
        pause = dataclasses.replace(pause, approvers=remaining)
    allowed = approvers_text(run, pause)
    text = f":bell: Reminder: {run_label(run)} is still waiting for input `{pause.key}`."
    if pause.quorum > 1:
        text += f" It has {len(pause.answers)} of the {pause.quorum} answers it needs"
        if answered:
            text += f" ({', '.join(who(r) for r in pause.answered_by)} answered)"
        text += "."
    return (
        f"{text} {allowed[:1].upper()}{allowed[1:]}: please answer before {when(pause.deadline)}."
    )


def escalation_text(key: str, added: Sequence[str], pause: Pause | None) -> str:
    """The thread note when a pause's escalation adds approvers: the pause went unanswered,
    or (a quorum) short of the answers it needs."""
    waiting = pause is not None and pause.status is PauseStatus.WAITING
    given = len(pause.answers) if pause is not None and waiting else 0
    if pause is not None and given:
        missing = f"Input `{key}` has {given} of the {pause.quorum} answers it needs"
    else:
        missing = f"Nobody has answered input `{key}` yet"
    return f":rotating_light: {missing}: {', '.join(who(a) for a in added)} may answer it now."


def short_quorum_text(key: str, quorum: int, people: Sequence[str], *, groups: bool) -> str:
    """The thread note when fewer people may answer a quorum than it needs; ``groups``:
    some of them are there as members of a user group, which can grow."""
    named = ", ".join(who(p) for p in people) or "nobody"
    remedy = (
        "Add people to its user groups, or cancel the run."
        if groups
        else "Cancel the run, and start it again once the flow names enough approvers."
    )
    return (
        f":warning: Input `{key}` needs answers from {quorum} different people, but only "
        f"{len(people)} may give them ({named}), so as it stands it cannot be decided. {remedy}"
    )
