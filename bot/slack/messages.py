"""The messages the bot posts: prompts and status lines, as Block Kit, and the mentions,
dates and labels they share with the notes in a run's thread (``bot.slack.thread_notes``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ConfirmObject,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from signoff.bot.backends import AuditRecord, Pause, PauseStatus, Run, RunState
from signoff.bot.forms.labels import choice_labels, clip
from signoff.bot.forms.layout import MAX_TEXT
from signoff.bot.forms.mrkdwn import (
    clip_mrkdwn,
    escape_mrkdwn,
    literal_clipped,
    markdown_to_mrkdwn,
)
from signoff.bot.slack import ids

_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
#: the backend writes "cancelled by <who>"; the bot cancels on behalf of a Slack user id
_CANCELLED_BY = re.compile(r"^cancelled by ([UW][A-Z0-9]{2,})$")
#: state names are CamelCase ("TimedOut"); people read "timed out"
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")
#: the longest text of a message; past it Slack refuses the message (``msg_too_long``)
MAX_MESSAGE_TEXT = 40_000
#: the longest reason (a run's failure, a model's refusal) quoted in a status line, which
#: must fit a section (``MAX_TEXT``) with the run's name around it
MAX_REASON = 2000
#: the longest text of a confirm dialog (a Cancel button's, an answer's)
MAX_CONFIRM = 300
#: the most a flow's name takes in a line, as mrkdwn: its formatting characters take
#: fifteen each (``literal_mrkdwn``), and the line must fit a section with it
MAX_NAME_TEXT = 1500
#: how much of an answer a closed prompt shows (a context element holds 3000 characters)
MAX_ANSWER_TEXT = 1000
STATE_EMOJI = {
    RunState.SCHEDULED: ":hourglass:",
    RunState.RUNNING: ":arrow_forward:",
    RunState.PAUSED: ":raised_hand:",
    RunState.SUSPENDED: ":raised_hand:",
    RunState.COMPLETED: ":white_check_mark:",
    RunState.FAILED: ":x:",
    RunState.CANCELLED: ":no_entry_sign:",
    RunState.CRASHED: ":boom:",
}


def who(principal: str | None) -> str:
    """A user id as a mention, a group id as a group mention, anything else as text."""
    if principal is None:
        return "someone"
    if _SLACK_ID.match(principal):
        return f"<@{principal}>"
    if _GROUP_ID.match(principal):
        return f"<!subteam^{principal}>"
    return escape_mrkdwn(principal)


def when(moment: datetime | None) -> str:
    if moment is None:
        return "no deadline"
    epoch = int(moment.timestamp())
    fallback = moment.replace(tzinfo=None).isoformat(" ", "minutes") + " UTC"
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def confirm_text(before: str, run: Run, after: str) -> str:
    """``before``, the run's label and ``after``, as a confirm dialog's text: the flow's name
    is cut so that the whole fits ``MAX_CONFIRM`` once escaped (``literal_clipped``)."""
    tail = f"* run `{run.id[:8]}`{after}"
    room = MAX_CONFIRM - len(before) - 1 - len(tail)
    return f"{before}*{literal_clipped(run.flow_name, room)}{tail}"


def cancel_confirm(run: Run) -> ConfirmObject:
    """Slack's confirm dialog on a Cancel button: cancelling cannot be undone."""
    return ConfirmObject(
        title="Cancel this run?",
        text=confirm_text("", run, " stops where it is. This cannot be undone."),
        confirm="Cancel the run",
        deny="Keep it",
        style="danger",
    )


def json_text(value: object, limit: int) -> str:
    """``value`` as JSON for a message (a run's parameters, an answer): characters as they
    are, not ``\\u`` escapes, cut to ``limit`` characters, and with ``&``, ``<`` and ``>``
    escaped, so that markup someone typed (``<!channel>``) is shown, not acted on."""
    return escape_mrkdwn(clip(json.dumps(value, ensure_ascii=False), limit))


#: an audit record's action as a person reads it in Slack (the stable key, as exported,
#: for one not listed)
AUDIT_WORDS = {
    "run.started": "started the run",
    "answer.received": "answered",
    "answer.accepted": "answer accepted by the flow",
    "answer.rejected": "answer refused by the flow",
    "answer.invalid": "answer did not fit the form",
    "refused": "was refused",
    "reminder.sent": "reminder sent",
    "pause.escalated": "escalated",
    "pause.reassigned": "handed on",
    "run.cancelled": "cancelled the run",
    "pause.timed_out": "nobody answered in time",
}


def audit_line(record: AuditRecord) -> str:
    """One audit record for a Slack message: time, who (as a mention), what."""
    actor = who(record.actor_id) if record.actor_id else "someone"
    if record.via == "system":
        actor = "Signoff"
    detail = ""
    if "input" in record.data:
        detail = f" `{json_text(record.data['input'], 120)}`"
    elif record.data.get("rule"):
        detail = f" ({escape_mrkdwn(str(record.data['rule']))[:150]})"
    elif record.data.get("to"):
        detail = f" to {who(str(record.data['to']))}"
    elif record.data.get("answered"):
        # An answer given outside Signoff (Prefect's UI): nobody's, as far as Signoff knows.
        detail = f" (answered {escape_mrkdwn(str(record.data['answered']))[:150]})"
    elif isinstance(responders := record.data.get("responders"), list):
        # A quorum's answers, judged as one.
        detail = f" (the answers of {', '.join(who(str(r)) for r in responders if r)})"
    via = f" via {record.via}" if record.via and record.via != "system" else ""
    key = f" `{record.key}`" if record.key else ""
    said = AUDIT_WORDS.get(record.action, escape_mrkdwn(record.action))
    return f"• {when_short(record.at)} {actor}{via}: {said}{key}{detail}"


def when_short(moment: datetime) -> str:
    epoch = int(moment.timestamp())
    return f"<!date^{epoch}^{{time_secs}}|{moment:%H:%M:%S} UTC>"


def run_label(run: Run) -> str:
    """The run as people know it: its flow's name in bold, shown as written (a ``*`` or
    ``_`` in it is not formatting), and its short id; for a run a listing could not read
    in full, why (its row was changed outside Signoff)."""
    label = f"*{literal_clipped(run.flow_name, MAX_NAME_TEXT)}* run `{run.id[:8]}`"
    if run.unreadable is not None:
        label += f" :warning: cannot be read ({escape_mrkdwn(run.unreadable)})"
    return label


def approvers_text(run: Run, pause: Pause) -> str:
    """Who may answer ``pause``, as mentions."""
    allowed = ", ".join(who(p) for p in pause.approvers) if pause.approvers else "anyone here"
    # Said (and the starter mentioned) only where the starter could otherwise be among
    # them: anyone, a group, or named; not beside a list of other people.
    named = set(pause.approvers)
    could_be = not named or run.started_by in named or any(_GROUP_ID.match(p) for p in named)
    if pause.forbid_starter and run.started_by and could_be:
        allowed += f" (not {who(run.started_by)}, who started it)"
    return allowed


def prompt_blocks(run: Run, pause: Pause, *, again: bool = False) -> list[Block]:
    """The message that asks for input: what, for whom, until when, and the button."""
    heading = "needs input again" if again else "is waiting for input"
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"{run_label(run)} {heading}"))
    ]
    if pause.description:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip_mrkdwn(markdown_to_mrkdwn(pause.description), 3000)
                )
            )
        )
    details = [
        MarkdownTextObject(text=f"*Who may answer:* {approvers_text(run, pause)}"),
        MarkdownTextObject(text=f"*Deadline:* {when(pause.deadline)}"),
        MarkdownTextObject(text=f"*Input:* `{pause.key}`"),
    ]
    if pause.quorum > 1:
        given = ", ".join(who(r) for r in pause.answered_by) or "none yet"
        details.append(
            MarkdownTextObject(text=f"*Answers:* {len(pause.answers)} of {pause.quorum} ({given})")
        )
    if again and pause.initial:
        details.append(MarkdownTextObject(text="The form starts from the answer sent last time."))
    blocks.append(ContextBlock(elements=details))
    blocks.append(
        ActionsBlock(block_id=f"prompt:{pause.key}"[:255], elements=prompt_buttons(run, pause))
    )
    return blocks


#: Slack's limit on a button's text
_BUTTON_TEXT = 75


def prompt_buttons(run: Run, pause: Pause) -> list[ButtonElement]:
    """One click per choice for a single decision; otherwise the button that opens the form.

    Either way a Reassign button hands the decision to someone else.
    """
    target = f"{run.id}:{pause.key}"
    confirm = answer_confirm(run) if pause.confirm else None
    decision = pause.schema and single_decision(pause.schema)
    buttons: list[ButtonElement] = []
    if decision:
        for label, value in decision[1]:
            buttons.append(
                ButtonElement(
                    text=label,  # at most _BUTTON_TEXT, made so by single_decision
                    # The choice is looked up by the button's number when clicked: the
                    # field and the value, as JSON, may be longer than a value may be.
                    action_id=f"{ids.DECIDE}:{len(buttons)}",
                    value=target,
                    style="primary" if value is True or len(buttons) == 0 else None,
                    confirm=confirm,
                )
            )
        buttons.append(
            ButtonElement(text="With a comment…", action_id=ids.PROVIDE_INPUT, value=target)
        )
    else:
        buttons.append(
            ButtonElement(
                text="Provide input", action_id=ids.PROVIDE_INPUT, value=target, style="primary"
            )
        )
    buttons.append(ButtonElement(text="Reassign", action_id=ids.REASSIGN, value=target))
    return buttons


def single_decision(schema: Mapping[str, Any]) -> tuple[str, list[tuple[str, Any]]] | None:
    """``(field, [(label, value), ...])`` when the model is one decision plus optional text.

    A decision is a required ``bool`` or a required choice of two or three strings; every
    other field must be optional text, so that a click alone is a complete answer.
    """
    properties: Mapping[str, Any] = schema.get("properties") or {}
    required = set(schema.get("required") or ())
    decisions: list[tuple[str, list[tuple[str, Any]]]] = []
    for name, field in properties.items():
        title = str(field.get("title") or name)
        node = _enum_of(schema, field)
        if node.get("type") == "boolean" and name in required:
            # The title gives way, not the yes or no: both buttons read the same otherwise.
            short = clip(title, _BUTTON_TEXT - len(": yes"))
            decisions.append((name, [(f"{short}: yes", True), (f"{short}: no", False)]))
        elif (
            name in required
            and isinstance(node.get("enum"), list)
            and 2 <= len(node["enum"]) <= 3
            and all(isinstance(v, str) for v in node["enum"])
        ):
            # Labelled as the form labels them, so that two choices never read the same.
            labels = choice_labels(node["enum"])
            decisions.append((name, list(zip(labels, node["enum"], strict=True))))
        elif name in required or not _text(node):
            return None
    return decisions[0] if len(decisions) == 1 else None


def _enum_of(schema: Mapping[str, Any], field: Mapping[str, Any]) -> Mapping[str, Any]:
    """``field``'s schema, or the enum its ``$ref`` names: an ``Enum`` class's choices sit in
    ``$defs`` (a ``Literal``'s inline), and a decision of one got no buttons."""
    ref = field.get("$ref")
    defs = schema.get("$defs")
    if not isinstance(ref, str) or not ref.startswith("#/$defs/") or not isinstance(defs, Mapping):
        return field
    found = defs.get(ref.removeprefix("#/$defs/"))
    return found if isinstance(found, Mapping) and "enum" in found else field


def _text(node: Mapping[str, Any]) -> bool:
    """Whether a field's schema is text (``str``, or ``str | None``)."""
    branches = node.get("anyOf")
    if isinstance(branches, list):
        types = {b.get("type") for b in branches if isinstance(b, Mapping)}
        return len(branches) == 2 and types == {"string", "null"}
    return node.get("type") == "string"


def answer_confirm(run: Run) -> ConfirmObject:
    """The confirm dialog a flow asks for (``confirm=True``) before an answer counts."""
    return ConfirmObject(
        title="Send this answer?",
        text=confirm_text("Your answer to ", run, " is recorded and the run goes on."),
        confirm="Send it",
        deny="Not yet",
    )


def prompt_text(run: Run) -> str:
    return f"{run.flow_name} run {run.id[:8]} is waiting for input"


def closed_prompt_blocks(run: Run, pause: Pause, outcome: str) -> list[Block]:
    """A prompt once nothing waits on it: the button is gone, the outcome is said."""
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f"{run_label(run)} asked for input `{pause.key}`")
        )
    ]
    if pause.description:
        blocks.append(
            SectionBlock(
                text=MarkdownTextObject(
                    text=clip_mrkdwn(markdown_to_mrkdwn(pause.description), 3000)
                )
            )
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=outcome)]))
    answered = (PauseStatus.ANSWERED, PauseStatus.ACCEPTED, PauseStatus.REJECTED)
    if pause.status in answered and pause.response not in (None, {}, []):
        # What was decided stays beside who decided it (secret fields come masked).
        shown = json_text(pause.response, MAX_ANSWER_TEXT)
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=f"Answer: `{shown}`")]))
    return blocks


def responders_text(pause: Pause) -> str:
    """Who answered ``pause``, as mentions: each person a quorum counted, in the order they
    answered (the pause's ``responder`` is only the last of them), and whose "no" ended it
    early when one did."""
    if pause.answered_outside:
        return "someone outside Signoff"
    if pause.quorum <= 1 and len(pause.answers) <= 1:
        return who(pause.responder)
    named = pause.answered_by or ((pause.responder,) if pause.responder else ())
    text = ", ".join(who(r) for r in named) or who(None)
    last = pause.answers[-1] if pause.answers else None
    if (
        pause.veto
        and last is not None
        and isinstance(last.input, Mapping)
        and last.input.get(pause.veto) is False
    ):
        text += f" ({who(last.responder)} vetoed it)"
    return text


#: the most of a run's failure a closed prompt quotes (the status line has it whole)
MAX_PROMPT_REASON = 500
#: how a run that ended on its own, before its question was answered, closes its prompts
_ENDED = {RunState.CRASHED: ":boom: The run crashed", RunState.FAILED: ":x: The run failed"}


def pause_outcome(pause: Pause, run: Run | None = None) -> str:
    """One line on where a request for input stands, naming who answered it. With its
    ``run``: a question nobody answered before the run crashed or failed says so, with
    why, not "Cancelled" (the engine closes such a run's pauses as cancelled)."""
    status = pause.status
    ended = _ENDED.get(run.state) if run is not None else None
    if (
        ended is not None
        and run is not None
        and status in (PauseStatus.CANCELLED, PauseStatus.WAITING)
    ):
        ended += " before it was answered"
        if run.state_message:
            ended += f": {literal_clipped(run.state_message, MAX_PROMPT_REASON, emoji=True)}"
        return ended
    if status in (PauseStatus.ANSWERED, PauseStatus.ACCEPTED):
        return f":white_check_mark: Answered by {responders_text(pause)}"
    if status is PauseStatus.REJECTED:
        return f":warning: Answer from {responders_text(pause)} was rejected (see the thread)"
    if status is PauseStatus.TIMED_OUT:
        return f":alarm_clock: {timed_out_text(pause)}"
    if status is PauseStatus.WAITING:
        return ":hourglass: Waiting for an answer"
    return ":no_entry_sign: Cancelled"


def timed_out_text(pause: Pause) -> str:
    """Why a pause past its deadline is closed: nobody answered, or (a quorum) too few."""
    if not pause.answers:
        return "Nobody answered in time"
    return (
        f"Only {len(pause.answers)} of the {pause.quorum} answers it needed came in time "
        f"(from {responders_text(pause)})"
    )


def status_line(run: Run) -> str:
    """The run's name and state, and how it ended: one section's text (``MAX_TEXT``)."""
    emoji = STATE_EMOJI.get(run.state, "")
    name = run.state_name if run.state_name.lower() != run.state.value else run.state.value
    name = _WORD_START.sub(" ", name).lower()
    line = f"{emoji} {run_label(run)} is *{escape_mrkdwn(name)}*"
    if run.state_message and run.state.is_final:
        by = _CANCELLED_BY.match(run.state_message)
        # Measured once escaped: an error page's "<" and "&" take four or five characters.
        # Shown as written: "**kwargs" or "_id_" in an error is not formatting. Its colons
        # stay colons ("ValueError: ..."), which only a ":name:" would turn into an emoji.
        room = min(MAX_REASON, MAX_TEXT - len(line) - 2)
        message = (
            f"cancelled by {who(by.group(1))}"
            if by
            else literal_clipped(run.state_message, room, emoji=True)
        )
        line += f": {message}"
    return line


def root_blocks(run: Run, pauses: Sequence[Pause]) -> list[Block]:
    """The run's first message once it no longer asks: status, and who gave each input.

    It is kept up to date as the run moves on, so the channel shows the outcome and the
    people who answered without opening the thread.
    """
    blocks: list[Block] = [text_block(status_line(run))]
    if pauses:
        lines = [f"• `{p.key}` {pause_outcome(p, run)}" for p in pauses[-20:]]
        blocks.append(text_block("*Inputs:*\n" + "\n".join(lines)))
    return blocks


def thread_restarted_block(cannot_post_in: tuple[str, str] | None = None) -> ContextBlock:
    """Said on a run's first message posted again: after someone deleted the first one, or
    (``cannot_post_in``: the channel and Slack's error) in the default channel, because
    Slack refuses the bot the run's own channel."""
    if cannot_post_in is None:
        text = ":information_source: This run's first message was deleted; its thread goes on here."
    else:
        channel, error = cannot_post_in
        text = (
            f":information_source: Signoff cannot post in <#{channel}> (`{error}`), so this "
            "run's messages go here. Invite the app there to keep a run's messages with it."
        )
    return ContextBlock(elements=[MarkdownTextObject(text=clip_mrkdwn(text, 3000))])


def text_block(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=clip_mrkdwn(text, 3000)))
