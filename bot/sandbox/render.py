"""Plain-text renderings of views and messages, and Block Kit Builder links.

Used for transcripts (``signoff demo``) and failing-test output, where a readable form beats a
page of JSON::

    >>> print(render_view(slack.open_view("U0ALICE")))
    == Deploy approval ==  (callback_id: run_input)
    ## Approve the deploy of r42?
    Reason: [text: ""]  (field:reason)
    Priority (optional): <select: *High* | Low>  (field:priority)
    [ Submit ]  [ Cancel ]
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from signoff.bot.sandbox.forms import fill_state
from signoff.bot.sandbox.records import EphemeralMessage, JsonDict, Message, OpenView

__all__ = [
    "BLOCK_KIT_BUILDER",
    "block_kit_builder_url",
    "render_message",
    "render_mrkdwn",
    "render_view",
]

#: Block Kit Builder; the payload goes after the ``#``.
BLOCK_KIT_BUILDER = "https://app.slack.com/block-kit-builder#"
_VIEW_KEYS = (
    "type", "title", "submit", "close", "blocks", "private_metadata", "callback_id",
    "clear_on_close", "notify_on_close", "external_id", "submit_disabled",
)  # fmt: skip


_ELEMENT_LABELS = {
    "plain_text_input": "text",
    "email_text_input": "email",
    "url_text_input": "url",
    "number_input": "number",
    "datepicker": "date",
    "timepicker": "time",
    "datetimepicker": "date and time",
    "users_select": "user",
    "multi_users_select": "users",
    "conversations_select": "conversation",
    "multi_conversations_select": "conversations",
    "channels_select": "channel",
    "multi_channels_select": "channels",
    "rich_text_input": "rich text",
    "file_input": "files",
}


#: ``<...>`` tokens in mrkdwn: mentions, dates, special mentions and links
_TOKEN = re.compile(r"<([^<>]+)>")


def _token(body: str, names: Mapping[str, str]) -> str:
    ref, _, label = body.partition("|")
    if ref.startswith("@"):
        return "@" + (label or names.get(ref[1:], ref[1:]))
    if ref.startswith("#"):
        return "#" + (label or names.get(ref[1:], ref[1:]))
    if ref.startswith("!subteam^"):
        group = ref.removeprefix("!subteam^")
        return "@" + (label.lstrip("@") or names.get(group, group))
    if ref.startswith("!date^"):
        return label or ref
    if ref.startswith("!"):  # <!here>, <!channel>, <!everyone>
        return "@" + ref[1:]
    return f"{label} ({ref})" if label else ref


def render_mrkdwn(text: str, names: Mapping[str, str] | None = None) -> str:
    """Slack mrkdwn as a person reads it: mentions by name, dates by their fallback text.

    Example::

        >>> render_mrkdwn("<@U0BOB>, deploy before <!date^1795749831^{time}|03:23 UTC>?",
        ...               {"U0BOB": "bob"})
        '@bob, deploy before 03:23 UTC?'
    """
    known = names or {}
    readable = _TOKEN.sub(lambda m: _token(m.group(1), known), text)
    # Slack escapes only these three in message text.
    return readable.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def _text(obj: Any) -> str:
    if isinstance(obj, Mapping):
        return str(obj.get("text", ""))
    return "" if obj is None else str(obj)


def _option_text(option: Any) -> str:
    return _text(option.get("text")) if isinstance(option, Mapping) else ""


def _chosen(options: list[Any], selected: list[Any]) -> str:
    if not options:  # external selects only know what is selected
        return ", ".join(_option_text(o) for o in selected) or "_"
    values = {o.get("value") for o in selected if isinstance(o, Mapping)}
    return " | ".join(
        f"*{_option_text(o)}*" if o.get("value") in values else _option_text(o) for o in options
    )


def _element(element: Mapping[str, Any], state: JsonDict | None) -> str:
    kind = str(element.get("type", "?"))
    if kind == "button":
        return f"[ {_text(element.get('text'))} ]"
    if kind == "image":
        return f"[image: {element.get('alt_text', '')}]"
    if kind == "overflow":
        return "<... " + " | ".join(_option_text(o) for o in element.get("options", [])) + ">"
    state = state or {}
    options: list[Any] = list(element.get("options") or [])
    for group in element.get("option_groups") or []:
        options += group.get("options", [])
    if kind in ("radio_buttons", "checkboxes"):
        selected = state.get("selected_options") or [state.get("selected_option")]
        values = {o.get("value") for o in selected if isinstance(o, Mapping)}
        mark = ("(x)", "( )") if kind == "radio_buttons" else ("[x]", "[ ]")
        return "  ".join(
            f"{mark[0] if o.get('value') in values else mark[1]} {_option_text(o)}" for o in options
        )
    if "select" in kind and ("selected_option" in state or "selected_options" in state):
        selected = state.get("selected_options") or [state.get("selected_option")]
        return f"<select: {_chosen(options, [s for s in selected if s])}>"
    current = next((v for k, v in state.items() if k != "type"), None)
    if isinstance(current, list):
        current = ", ".join(
            str(v.get("name", v)) if isinstance(v, Mapping) else str(v) for v in current
        )
    elif isinstance(current, Mapping):  # rich text
        current = json.dumps(current)[:60]
    label = _ELEMENT_LABELS.get(kind, kind)
    shown = f'"{current}"' if current is not None else "_" * 10
    placeholder = _text(element.get("placeholder"))
    hint = f" ({placeholder})" if current is None and placeholder else ""
    return f"[{label}: {shown}{hint}]"


def _blocks(
    blocks: Sequence[Any], state: Mapping[str, Any], names: Mapping[str, str] | None
) -> list[str]:
    def shown(obj: Any) -> str:
        if isinstance(obj, Mapping) and obj.get("type") == "mrkdwn":
            return render_mrkdwn(_text(obj), names)
        return _text(obj)

    lines: list[str] = []
    for block in blocks:
        if not isinstance(block, Mapping):
            continue
        kind = block.get("type")
        block_id = str(block.get("block_id", ""))
        block_state: Mapping[str, Any] = state.get(block_id, {})

        def render(element: Any, block_state: Mapping[str, Any] = block_state) -> str:
            action_id = element.get("action_id") if isinstance(element, Mapping) else None
            return _element(element, block_state.get(str(action_id)))

        if kind == "header":
            lines.append(f"## {shown(block.get('text'))}")
        elif kind == "section":
            text = shown(block.get("text"))
            if "accessory" in block:
                text = f"{text}  {render(block['accessory'])}".strip()
            lines.extend(text.splitlines() or [""])
            lines.extend(f"  - {shown(f)}" for f in block.get("fields", []))
        elif kind == "divider":
            lines.append("-" * 40)
        elif kind == "context":
            lines.append(
                "  "
                + " · ".join(
                    shown(e) or f"[image: {e.get('alt_text', '')}]"
                    for e in block.get("elements", [])
                )
            )
        elif kind == "actions":
            lines.append("  ".join(render(e) for e in block.get("elements", [])))
        elif kind == "input":
            label = _text(block.get("label")) + (" (optional)" if block.get("optional") else "")
            lines.append(f"{label}: {render(block.get('element', {}))}  ({block_id})")
            if block.get("hint"):
                lines.append(f"    hint: {shown(block['hint'])}")
        elif kind == "image":
            lines.append(f"[image: {block.get('alt_text', '')}]")
        elif kind == "markdown":
            lines.extend(render_mrkdwn(str(block.get("text", "")), names).splitlines())
        else:
            lines.append(f"[{kind}]")
    return lines


def render_view(view: Mapping[str, Any] | OpenView, names: Mapping[str, str] | None = None) -> str:
    """A modal or Home view as a text form, showing what is entered (or initially set).

    Args:
        view: A view dict (as sent or as stored) or an :class:`OpenView`.
        names: Ids to show mentions by (``Workspace.names()``); unknown ids show as they are.
    """
    data: Mapping[str, Any] = view.view if isinstance(view, OpenView) else view
    state = fill_state(data)
    is_home = data.get("type") == "home"
    head = "== Home ==" if is_home else f"== {_text(data.get('title'))} =="
    if data.get("callback_id"):
        head += f"  (callback_id: {data['callback_id']})"
    lines = [head, *_blocks(data.get("blocks", []), state, names)]
    if data.get("type") != "home":
        buttons = [f"[ {_text(data[key])} ]" for key in ("submit",) if data.get(key)]
        buttons.append(f"[ {_text(data.get('close')) or 'Cancel'} ]")
        lines.append("  ".join(buttons))
    return "\n".join(lines)


def render_message(
    message: Message | EphemeralMessage | Mapping[str, Any], names: Mapping[str, str] | None = None
) -> str:
    """A message as text: its blocks if it has any, else its ``text``.

    Args:
        message: A stored message or a message dict.
        names: Ids to show mentions by (``Workspace.names()``); unknown ids show as they are.
    """
    if isinstance(message, Message | EphemeralMessage):
        text, blocks = message.text, message.blocks
    else:
        text, blocks = str(message.get("text") or ""), list(message.get("blocks") or [])
    if not blocks:
        return render_mrkdwn(text, names)
    return "\n".join(_blocks(blocks, fill_state({"blocks": blocks}), names))


def block_kit_builder_url(
    view_or_blocks: Mapping[str, Any] | Sequence[Mapping[str, Any]] | OpenView | Message,
) -> str:
    """A Block Kit Builder link that shows a view or a message's blocks.

    Args:
        view_or_blocks: A view (dict or :class:`OpenView`), a :class:`Message`, a message
            dict with ``blocks``, or a list of blocks.

    Returns:
        ``https://app.slack.com/block-kit-builder#`` + the URL-encoded JSON of the view
        (``{"type": "modal", ...}``) or of ``{"blocks": [...]}``.
    """
    payload: JsonDict
    if isinstance(view_or_blocks, OpenView):
        view_or_blocks = view_or_blocks.view
    if isinstance(view_or_blocks, Message):
        payload = {"blocks": view_or_blocks.blocks}
    elif isinstance(view_or_blocks, Mapping):
        if view_or_blocks.get("type") in ("modal", "home"):
            payload = {
                k: view_or_blocks[k] for k in _VIEW_KEYS if view_or_blocks.get(k) is not None
            }
        else:
            payload = {"blocks": list(view_or_blocks.get("blocks") or [])}
    else:
        payload = {"blocks": list(view_or_blocks)}
    return BLOCK_KIT_BUILDER + quote(json.dumps(payload, separators=(",", ":")), safe="")
