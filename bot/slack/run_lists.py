"""``/runs``'s lists of runs: which runs a selector names, a page of them, and its blocks.

A list's selector is a filter's name (``FILTERS``), ``FLOW_SELECTOR`` and a flow's name,
or "" for the runs waiting for input. The More button under a page keeps it with the last
run read for it (``SELECTOR|LAST_RUN_ID``), and the line under the button types the same as
a command. A page leaves out the runs the person asking may not view (the view rule), and
says how many: it is then shorter, and the next page starts after the last run read.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from slack_sdk.models.blocks import (
    ActionsBlock,
    Block,
    ButtonElement,
    ContextBlock,
    MarkdownTextObject,
    SectionBlock,
)

from signoff.bot.backends import Actor, Backend, Run, RunState
from signoff.bot.forms.mrkdwn import escape_mrkdwn, literal_clipped
from signoff.bot.slack import ids, messages

#: runs per page of a /runs list (Slack allows 50 blocks; each run takes two)
RUNS_PAGE = 15
#: marks a selector as a flow's name: a flow may be named like one of the filters
FLOW_SELECTOR = "flow:"
#: ``/runs WORD``: the runs in these states (None: every run)
FILTERS: dict[str, list[RunState] | None] = {
    "all": None,
    "running": [RunState.RUNNING, RunState.SCHEDULED],
    "waiting": [RunState.PAUSED, RunState.SUSPENDED],
    "completed": [RunState.COMPLETED],
    "failed": [RunState.FAILED, RunState.CRASHED],
    "cancelled": [RunState.CANCELLED],
}


#: of a page of runs the view rule lets someone view, those the Slack side still shows them
Keep = Callable[[Sequence[Run]], list[Run]]


def listing(
    backend: Backend, selector: str, before: str | None, actor: Actor, keep: Keep | None = None
) -> tuple[str, list[Run], dict[str, Any]]:
    """The title, one page of the runs ``actor`` may view, and the blocks' keyword
    arguments for ``selector``: a filter's name, ``FLOW_SELECTOR`` and a flow's name, or ""
    (waiting). (A More button from before flows were marked holds a flow's name alone.)
    ``keep`` leaves out more of them (runs in a private channel ``actor`` is not in)."""
    limit = RUNS_PAGE + 1  # one more than shown: whether a next page exists
    flow_name = selector.removeprefix(FLOW_SELECTOR)
    if selector in FILTERS:
        runs = backend.list_runs(FILTERS[selector], limit=limit, before=before)
        title = f"Runs: {selector}"
    elif flow_name:
        runs = backend.list_runs(flow_name=flow_name, limit=limit, before=before)
        title = f"Runs of {flow_name}"
    else:
        runs = backend.list_runs([RunState.PAUSED, RunState.SUSPENDED], limit=limit, before=before)
        title = "Runs waiting for input"
    if before is not None:
        title += f", older than {before[:8]}"
    read = runs[:RUNS_PAGE]
    # The next page starts after the last run read, shown or not: a run left out here is
    # not read again there.
    more = f"{selector}|{read[-1].id}" if len(runs) > len(read) else None
    page = backend.visible(actor, read)
    if keep is not None:
        page = keep(page)
    waiting = [r.id for r in page if r.state.is_waiting]
    return title, page, {"waiting": waiting, "more": more, "hidden": len(read) - len(page)}


def list_reply(
    backend: Backend, selector: str, before: str | None, actor: Actor, keep: Keep | None = None
) -> dict[str, Any]:
    """``listing`` as a reply to ``/runs`` (or its More button), for ``actor``."""
    title, page, extra = listing(backend, selector, before, actor, keep)
    return {"text": title, "blocks": run_list_blocks(page, title, **extra)}


def hidden_text(hidden: int) -> str:
    """The line that says how many runs of a page the person may not view."""
    runs = "1 run" if hidden == 1 else f"{hidden} runs"
    return f"{runs} you may not view {'is' if hidden == 1 else 'are'} not shown."


def run_list_blocks(
    runs: Sequence[Run],
    title: str,
    waiting: Iterable[str],
    more: str | None = None,
    hidden: int = 0,
) -> list[Block]:
    """An ephemeral list of runs, with buttons for the ones waiting for input.

    ``more`` is the value of a "More" button that lists the next page (``/runs`` keeps it as
    ``SELECTOR|LAST_RUN_ID``); None when this is the last page. ``hidden``: how many runs
    of the page were left out, as the person may not view them.
    """
    waiting_ids = set(waiting)
    blocks: list[Block] = [
        SectionBlock(
            text=MarkdownTextObject(text=f"*{literal_clipped(title, messages.MAX_NAME_TEXT)}*")
        )
    ]
    if not runs:
        empty = "No runs you may view on this page." if hidden and more else "No runs."
        blocks.append(SectionBlock(text=MarkdownTextObject(text=empty)))
    for run in runs[:RUNS_PAGE]:
        line = f"{messages.STATE_EMOJI.get(run.state, '')} {messages.run_label(run)} · {run.state.value} · {messages.when(run.updated_at)}"
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
                ButtonElement(
                    text="Cancel",
                    action_id=ids.CANCEL_RUN,
                    value=run.id,
                    style="danger",
                    confirm=messages.cancel_confirm(run),
                )
            )
        blocks.append(ActionsBlock(block_id=f"run:{run.id}", elements=buttons))
    if hidden:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=hidden_text(hidden))]))
    if more is not None:
        selector, _, last = more.rpartition("|")
        # Quoted as /runs reads words, so that a flow's name with spaces stays one word.
        if selector.startswith(FLOW_SELECTOR):
            words = ["flow", shlex.quote(selector.removeprefix(FLOW_SELECTOR))]
        else:
            words = [shlex.quote(selector)] if selector else []
        typed = " ".join(["/runs", *words, f"before={last}"])
        blocks.append(
            ActionsBlock(
                block_id="runs:more",
                elements=[ButtonElement(text="More", action_id=ids.MORE_RUNS, value=more)],
            )
        )
        blocks.append(
            ContextBlock(
                elements=[MarkdownTextObject(text=f"Older runs: `{escape_mrkdwn(typed)}`")]
            )
        )
    return blocks


__all__ = ["FILTERS", "FLOW_SELECTOR", "RUNS_PAGE", "list_reply", "listing", "run_list_blocks"]
