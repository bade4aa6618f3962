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
from engine import Pause, Run, RunState

_SLACK_ID = re.compile(r"^[UW][A-Z0-9]{2,}$")
_GROUP_ID = re.compile(r"^S[A-Z0-9]{2,}$")

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


def prompt_blocks(run: Run, pause: Pause, *, again: bool = False) -> list[Block]:
    """The message that asks for input: what, for whom, until when, and the button."""
    allowed = ", ".join(who(p) for p in pause.approvers) if pause.approvers else "anyone here"
    if pause.forbid_starter and run.started_by:
        allowed += f" (not {who(run.started_by)}, who started it)"
    heading = "needs input again" if again else "is waiting for input"
    blocks: list[Block] = [
        SectionBlock(text=MarkdownTextObject(text=f"{run_label(run)} {heading}"))
    ]
    if pause.description:
        blocks.append(
            SectionBlock(text=MarkdownTextObject(text=markdown_to_mrkdwn(pause.description)[:3000]))
        )
    blocks.append(
        ContextBlock(
            elements=[
                MarkdownTextObject(text=f"*Who may answer:* {allowed}"),
                MarkdownTextObject(text=f"*Deadline:* {when(pause.deadline)}"),
                MarkdownTextObject(text=f"*Input:* `{pause.key}`"),
            ]
        )
    )
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
    status = pause.status.value
    if status in ("answered", "accepted"):
        return f":white_check_mark: Answered by {who(pause.responder)}"
    if status == "rejected":
        return f":warning: Answer from {who(pause.responder)} was rejected (see the thread)"
    if status == "timed_out":
        return ":alarm_clock: Nobody answered in time"
    return ":no_entry_sign: Cancelled"


def status_line(run: Run) -> str:
    emoji = STATE_EMOJI.get(run.state, "")
    detail = (
        f": {escape_mrkdwn(run.state_message)}" if run.state_message and run.state.is_final else ""
    )
    name = run.state_name if run.state_name.lower() != run.state.value else run.state.value
    return f"{emoji} {run_label(run)} is *{escape_mrkdwn(name.lower())}*{detail}"


def rejection_text(responder: str | None, errors: Mapping[str, str], response: object) -> str:
    lines = [f":warning: {who(responder)}'s answer was not accepted:"]
    lines += [
        f"• *{escape_mrkdwn(field or 'input')}*: {escape_mrkdwn(msg)}"
        for field, msg in errors.items()
    ]
    if isinstance(response, Mapping) and response:
        sent = ", ".join(f"{k}={v}" for k, v in response.items())
        lines.append(f"They sent: `{escape_mrkdwn(sent)[:500]}`")
    lines.append("The form below starts from what they sent, so only the wrong fields need fixing.")
    return "\n".join(lines)


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
