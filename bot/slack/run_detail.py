"""``/runs show``'s text: a run's states, inputs with who gave them, tasks, log tail and
audit trail, within one Slack message."""

from __future__ import annotations

from signoff.bot.backends import Backend
from signoff.bot.forms.labels import clip
from signoff.bot.forms.mrkdwn import escape_mrkdwn
from signoff.bot.slack import messages


def show_text(backend: Backend, run_id: str) -> str:
    detail = backend.detail(run_id)
    run = detail.run
    lines = [messages.status_line(run), f"Parameters: `{messages.json_text(run.parameters, 500)}`"]
    if run.started_by:
        lines.append(f"Started by {messages.who(run.started_by)}")
    states = " → ".join(f"{h.name} ({h.at:%H:%M:%S})" for h in detail.history)
    lines.append("*States:* " + clip(states, 600))
    body: list[str] = []
    for pause in detail.pauses:
        answer = (
            f" by {messages.who(pause.responder)}: `{messages.json_text(pause.response, 300)}`"
            if pause.responder or pause.response
            else ""
        )
        if pause.quorum > 1 or len(pause.answers) > 1:
            # Each answer with who gave it: the pause's responder is only the last of them.
            given = [
                f"{messages.who(a.responder)}: `{messages.json_text(a.input, 150)}`"
                for a in pause.answers
            ]
            answer = f", {len(pause.answers)} of {pause.quorum} answers"
            answer += f" ({'; '.join(given)})" if given else ""
        problems = "; ".join(f"{k}: {v}" for k, v in pause.errors.items())
        rejected = f" — rejected: {escape_mrkdwn(clip(problems, 500))}" if problems else ""
        body.append(f"*Input* `{pause.key}` {pause.status.value}{answer}{rejected}")
    for task in detail.tasks:
        outcome = escape_mrkdwn(clip(task.result or task.error or "", 300))
        body.append(
            f"*Task* `{escape_mrkdwn(task.key)}` {task.state.value} ×{task.attempts} {outcome}"
        )
    ending: list[str] = []
    if detail.logs:
        tail = "\n".join(f"{e.level} {e.message}" for e in detail.logs[-10:])
        ending.append("*Log tail:*\n```" + escape_mrkdwn(clip(tail, 1000)) + "```")
    trail = backend.audit_trail(run.id)
    if trail:
        # The newest records matter most when a message has to be cut: whole lines of the
        # oldest go, never half a mention or a date token.
        shown = [messages.audit_line(r) for r in trail[-12:]]
        while len(shown) > 1 and sum(len(line) + 1 for line in shown) > _TRAIL_CHARS:
            shown.pop(0)
        ending.append("*Audit trail:*\n" + "\n".join(shown))
    # The inputs and tasks give way, line by line, so that the log tail and the trail stay.
    room = _SHOW_CHARS - sum(len(part) + 1 for part in (*lines, *ending))
    kept = _lines_within(body, room, f"`signoff runs show {run.id[:8]}` has them all")
    return "\n".join([*lines, *kept, *ending])


#: what ``/runs show`` writes at most (Slack takes 4,000 characters in a message's text)
_SHOW_CHARS = 3900
#: what the audit trail takes of it at most
_TRAIL_CHARS = 1200


def _lines_within(lines: list[str], room: int, rest: str) -> list[str]:
    """``lines`` from the first, as many as fit in ``room`` characters with a line saying
    how many were left out (and where they are: ``rest``)."""
    if sum(len(line) + 1 for line in lines) <= room:
        return lines
    kept: list[str] = []
    used = len(rest) + 40  # the closing line's own length
    for line in lines:
        if used + len(line) + 1 > room:
            break
        kept.append(line)
        used += len(line) + 1
    return [*kept, f"… {len(lines) - len(kept)} more lines; {rest}"]
