"""The messages the bot posts: prompts, status lines and thread notes, as Block Kit."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from bot import ids
from bot.mrkdwn import escape_mrkdwn, markdown_to_mrkdwn
from engine import Pause, PauseStatus, Run, RunState

_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")
#: the engine writes "cancelled by <who>"; the bot cancels on behalf of a Slack user id
_CANCELLED_BY = re.compile(r"^cancelled by ([UW][A-Z0-9]{2,})$")
#: state names are CamelCase ("TimedOut"); people read "timed out"
_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")

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
    fallback = moment.strftime("%Y-%m-%d %H:%M UTC")
    return f"<!date^{epoch}^{{date_short_pretty}} {{time}}|{fallback}>"


def run_label(run: Run) -> str:
    return f"*{escape_mrkdwn(run.flow_name)}* run `{run.id[:8]}`"


def approvers_text(run: Run, pause: Pause) -> str:
    """Who may answer ``pause``, as mentions."""
    allowed = ", ".join(who(p) for p in pause.approvers) if pause.approvers else "anyone here"
    if pause.forbid_starter and run.started_by:
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
            SectionBlock(text=MarkdownTextObject(text=markdown_to_mrkdwn(pause.description)[:3000]))
        )
    details = [
        MarkdownTextObject(text=f"*Who may answer:* {approvers_text(run, pause)}"),
        MarkdownTextObject(text=f"*Deadline:* {when(pause.deadline)}"),
        MarkdownTextObject(text=f"*Input:* `{pause.key}`"),
    ]
    if again and pause.initial:
        details.append(MarkdownTextObject(text="The form starts from the answer sent last time."))
    blocks.append(ContextBlock(elements=details))
    blocks.append(
        ActionsBlock(
            block_id=f"prompt:{pause.key}"[:255],
            elements=[
                ButtonElement(
                    text="Provide input",
                    action_id=ids.PROVIDE_INPUT,
                    value=f"{run.id}:{pause.key}",
                    style="primary",
                )
            ],
        )
    )
    return blocks


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
            SectionBlock(text=MarkdownTextObject(text=markdown_to_mrkdwn(pause.description)[:3000]))
        )
    blocks.append(ContextBlock(elements=[MarkdownTextObject(text=outcome)]))
    return blocks


def pause_outcome(pause: Pause) -> str:
    """One line on where a request for input stands, naming who answered it."""
    status = pause.status
    if status in (PauseStatus.ANSWERED, PauseStatus.ACCEPTED):
        return f":white_check_mark: Answered by {who(pause.responder)}"
    if status is PauseStatus.REJECTED:
        return f":warning: Answer from {who(pause.responder)} was rejected (see the thread)"
    if status is PauseStatus.TIMED_OUT:
        return ":alarm_clock: Nobody answered in time"
    if status is PauseStatus.WAITING:
        return ":hourglass: Waiting for an answer"
    return ":no_entry_sign: Cancelled"


def status_line(run: Run) -> str:
    emoji = STATE_EMOJI.get(run.state, "")
    detail = ""
    if run.state_message and run.state.is_final:
        by = _CANCELLED_BY.match(run.state_message)
        message = f"cancelled by {who(by.group(1))}" if by else escape_mrkdwn(run.state_message)
        detail = f": {message}"
    name = run.state_name if run.state_name.lower() != run.state.value else run.state.value
    name = _WORD_START.sub(" ", name).lower()
    return f"{emoji} {run_label(run)} is *{escape_mrkdwn(name)}*{detail}"


def root_blocks(run: Run, pauses: Sequence[Pause]) -> list[Block]:
    """The run's first message once it no longer asks: status, and who gave each input.

    It is kept up to date as the run moves on, so the channel shows the outcome and the
    people who answered without opening the thread.
    """
    blocks: list[Block] = [text_block(status_line(run))]
    if pauses:
        lines = [f"• `{p.key}` {pause_outcome(p)}" for p in pauses[-20:]]
        blocks.append(text_block("*Inputs:*\n" + "\n".join(lines)))
    return blocks


def rejection_text(responder: str | None, errors: Mapping[str, str], response: object) -> str:
    lines = [f":warning: {who(responder)}'s answer was not accepted:"]
    lines += [
        f"• *{escape_mrkdwn(field or 'input')}*: {escape_mrkdwn(msg)}"
        for field, msg in errors.items()
    ]
    if isinstance(response, Mapping) and response:
        sent = ", ".join(f"{k}={v}" for k, v in response.items())
        lines.append(f"They sent: `{escape_mrkdwn(sent)[:500]}`")
    # Whether the flow asks again is only known later: the next prompt (or the run's
    # failure) follows in this thread, so this note does not promise a form.
    return "\n".join(lines)


def unrenderable_text(pause: Pause, reason: str) -> str:
    title = escape_mrkdwn(pause.title or "input")
    return (
        f":x: The input model *{title}* cannot be shown as a Slack form: "
        f"{escape_mrkdwn(reason)}. The run is cancelled; change the model and start it again."
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
    """A nudge before the deadline, mentioning whoever may answer ("anyone here" if open)."""
    allowed = approvers_text(run, pause)
    return (
        f":bell: Reminder: {run_label(run)} is still waiting for input `{pause.key}`. "
        f"{allowed[:1].upper()}{allowed[1:]}: please answer before {when(pause.deadline)}."
    )


def run_list_blocks(runs: Sequence[Run], title: str, waiting: Iterable[str]) -> list[Block]:
    """An ephemeral list of runs, with buttons for the ones waiting for input."""
    waiting_ids = set(waiting)
    blocks: list[Block] = [SectionBlock(text=MarkdownTextObject(text=f"*{escape_mrkdwn(title)}*"))]
    if not runs:
        blocks.append(SectionBlock(text=MarkdownTextObject(text="No runs.")))
    for run in runs[:15]:
        line = f"{STATE_EMOJI.get(run.state, '')} {run_label(run)} · {run.state.value} · {when(run.updated_at)}"
        section = SectionBlock(text=MarkdownTextObject(text=line))
        blocks.append(section)
        buttons = [ButtonElement(text="Show", action_id=ids.SHOW_RUN, value=run.id)]
        if run.id in waiting_ids:
            buttons.insert(
                0,
                ButtonElement(
                    text="Provide input", action_id=ids.PROVIDE_INPUT, value=run.id, style="primary"
                ),
            )
        if not run.state.is_final:
            buttons.append(
                ButtonElement(text="Cancel", action_id=ids.CANCEL_RUN, value=run.id, style="danger")
            )
        blocks.append(ActionsBlock(block_id=f"run:{run.id}", elements=buttons))
    if len(runs) > 15:
        blocks.append(
            ContextBlock(elements=[MarkdownTextObject(text=f"…and {len(runs) - 15} more")])
        )
    return blocks


def text_block(text: str) -> SectionBlock:
    return SectionBlock(text=MarkdownTextObject(text=text[:3000]))
