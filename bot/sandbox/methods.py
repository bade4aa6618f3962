"""The Web API methods the emulator implements, and ``response_url`` posts.

Each method takes the workspace and the parsed arguments and returns Slack's JSON answer, or
raises :class:`~bot.sandbox.errors.ApiFailure` with the error code Slack would use. Block
Kit payloads go through :mod:`bot.forms.blockkit`, so a view or message Slack would refuse is refused
here too, with the same ``invalid_arguments``/``invalid_blocks`` messages.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from signoff.bot.forms.blockkit import (
    VIEW_SIZE_LIMIT,
    check_message,
    check_view,
    format_problem,
    view_size,
)
from signoff.bot.sandbox.errors import ApiFailure
from signoff.bot.sandbox.records import Channel, JsonDict
from signoff.bot.sandbox.workspace import Workspace
from signoff.bot.slack.manifest import bot_scopes

__all__ = ["METHODS", "SCOPES", "call_method", "respond"]

Method = Callable[[Workspace, JsonDict], JsonDict]

#: Reported in auth.test's ``x-oauth-scopes`` header: the app manifest's, so they never drift.
SCOPES = ",".join(bot_scopes())


def _str(args: JsonDict, key: str) -> str | None:
    value = args.get(key)
    return None if value is None or value == "" else str(value)


def _flag(args: JsonDict, key: str) -> bool:
    return args.get(key) in (True, 1, "1", "true", "True")


def _decoded(args: JsonDict, key: str, error: str) -> Any:
    """Arguments like ``blocks`` and ``view`` arrive as JSON strings in form bodies."""
    value = args.get(key)
    if isinstance(value, str):
        try:
            return json.loads(value) if value else None
        except json.JSONDecodeError:
            raise ApiFailure(error, [format_problem("failed to parse json", f"/{key}")]) from None
    return value


def _content(args: JsonDict, *, required: bool) -> tuple[str | None, list[JsonDict] | None]:
    """Validated ``text`` and ``blocks`` of a message call."""
    text = args.get("text")
    text = None if text is None else str(text)
    blocks = _decoded(args, "blocks", "invalid_blocks_format")
    if blocks is not None and not isinstance(blocks, list):
        raise ApiFailure("invalid_blocks_format")
    attachments = _decoded(args, "attachments", "invalid_attachments")
    if required and not text and not blocks and not attachments:
        raise ApiFailure("no_text")
    problems = check_message(blocks, text)
    if any("[json-pointer:/text]" in p for p in problems):
        raise ApiFailure("msg_too_long", problems)
    if problems:
        raise ApiFailure("invalid_blocks", problems)
    return text, blocks


def _view_arg(args: JsonDict, kind: str) -> JsonDict:
    view = _decoded(args, "view", "invalid_arguments")
    if view is None:
        raise ApiFailure("invalid_arguments", [format_problem("missing required field: view", "")])
    raw = args.get("view")
    # As sent: the form field's text, or (in a JSON body) the view written as slack_sdk does.
    size = len(raw.encode()) if isinstance(raw, str) else view_size(view)
    if size > VIEW_SIZE_LIMIT:
        raise ApiFailure("view_too_large")
    problems = check_view(view)
    if not problems and view.get("type") != kind:
        problems = [format_problem(f"must be {kind} for this method", "/view/type")]
    if problems:
        raise ApiFailure("invalid_arguments", problems)
    return dict(view)


def auth_test(ws: Workspace, args: JsonDict) -> JsonDict:
    """``auth.test``: who the token belongs to."""
    return {
        "ok": True,
        "url": f"https://{ws.team_domain}.slack.com/",
        "team": ws.team_domain.title(),
        "user": ws.bot_user.name,
        "team_id": ws.team_id,
        "user_id": ws.bot_user.id,
        "bot_id": ws.bot_id,
        "is_enterprise_install": False,
    }


def chat_post_message(ws: Workspace, args: JsonDict) -> JsonDict:
    """``chat.postMessage``: new message or thread reply; a ``U...`` channel posts to the DM."""
    channel = ws.resolve_channel(_str(args, "channel") or "", create=True)
    text, blocks = _content(args, required=True)
    message = ws.post_message(
        channel,
        text or "",
        blocks or [],
        thread_ts=_str(args, "thread_ts"),
        reply_broadcast=_flag(args, "reply_broadcast"),
        metadata=_metadata(args),
    )
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "message": message.to_api(ws.team_id, with_metadata=True),
    }


def _metadata(args: JsonDict) -> JsonDict | None:
    """Message ``metadata``: an ``event_type`` (letters, digits, ``_``, ``.``) and an object."""
    metadata = _decoded(args, "metadata", "invalid_metadata_format")
    if metadata is None:
        return None
    event_type = metadata.get("event_type") if isinstance(metadata, dict) else None
    if (
        not isinstance(event_type, str)
        or not re.fullmatch(r"[A-Za-z0-9_.]{1,255}", event_type)
        or not isinstance(metadata.get("event_payload"), dict)
    ):
        raise ApiFailure("invalid_metadata_format")
    return dict(metadata)


def chat_update(ws: Workspace, args: JsonDict) -> JsonDict:
    """``chat.update``: needs the conversation id (``D...`` for DMs, never ``U...``)."""
    channel = ws.resolve_channel(_str(args, "channel") or "", create=False, allow_user=False)
    ts = _str(args, "ts")
    text, blocks = _content(args, required=False)
    if text is None and blocks is None and args.get("attachments") is None:
        raise ApiFailure("no_text")
    message = ws.update_message(channel, ts or "", text, blocks)
    return {
        "ok": True,
        "channel": channel,
        "ts": message.ts,
        "text": message.text,
        "message": message.to_api(ws.team_id),
    }


def chat_delete(ws: Workspace, args: JsonDict) -> JsonDict:
    """``chat.delete``."""
    channel = ws.resolve_channel(_str(args, "channel") or "", create=False, allow_user=False)
    ts = _str(args, "ts") or ""
    ws.delete_message(channel, ts)
    return {"ok": True, "channel": channel, "ts": ts}


def chat_post_ephemeral(ws: Workspace, args: JsonDict) -> JsonDict:
    """``chat.postEphemeral``: only ``user`` sees it; it cannot be chat.update'd."""
    user = ws.require_user(_str(args, "user"))
    channel = ws.resolve_channel(_str(args, "channel") or "", create=True)
    text, blocks = _content(args, required=True)
    message = ws.post_ephemeral(channel, user.id, text or "", blocks or [], _str(args, "thread_ts"))
    return {"ok": True, "message_ts": message.ts}


def views_open(ws: Workspace, args: JsonDict) -> JsonDict:
    """``views.open``: needs a fresh, unused trigger_id."""
    view = _view_arg(args, "modal")
    user = ws.exchange_trigger(_str(args, "trigger_id"))
    return {"ok": True, "view": ws.open_modal(user, view)}


def views_push(ws: Workspace, args: JsonDict) -> JsonDict:
    """``views.push``: at most 3 views in a stack."""
    view = _view_arg(args, "modal")
    user = ws.exchange_trigger(_str(args, "trigger_id"))
    return {"ok": True, "view": ws.open_modal(user, view, push=True)}


def views_update(ws: Workspace, args: JsonDict) -> JsonDict:
    """``views.update`` by ``view_id`` or ``external_id``, with optional ``hash``."""
    view_id, external_id = _str(args, "view_id"), _str(args, "external_id")
    if not view_id and not external_id:
        raise ApiFailure(
            "invalid_arguments", [format_problem("must provide view_id or external_id", "")]
        )
    raw = _decoded(args, "view", "invalid_arguments")
    view = _view_arg(args, raw.get("type", "modal") if isinstance(raw, dict) else "modal")
    updated = ws.update_view(
        view, view_id=view_id, external_id=external_id, hash_=_str(args, "hash")
    )
    return {"ok": True, "view": updated}


def views_publish(ws: Workspace, args: JsonDict) -> JsonDict:
    """``views.publish``: a user's Home tab."""
    user = ws.require_user(_str(args, "user_id"))
    view = _view_arg(args, "home")
    return {"ok": True, "view": ws.publish_home(user.id, view, _str(args, "hash"))}


def conversations_open(ws: Workspace, args: JsonDict) -> JsonDict:
    """``conversations.open``: ``users="U1"`` gives a ``D...`` DM, several give a group DM."""
    channel = _str(args, "channel")
    if channel:
        return {"ok": True, "channel": {"id": ws.resolve_channel(channel, create=False)}}
    users = [u.strip() for u in (_str(args, "users") or "").split(",") if u.strip()]
    if not users:
        raise ApiFailure("users_list_not_supplied")
    if len(users) > 8:
        raise ApiFailure("too_many_users")
    existed = len(users) == 1 and ws.channel(users[0]).kind == "im"
    conversation_id = ws.open_conversation(users)
    data: JsonDict = {"id": conversation_id}
    if len(users) == 1:
        data.update(is_im=True, user=users[0])
    return {"ok": True, "no_op": existed, "already_open": existed, "channel": data}


def conversations_history(ws: Workspace, args: JsonDict) -> JsonDict:
    """``conversations.history``: top-level messages, newest first."""
    channel = ws.channel(ws.resolve_channel(_str(args, "channel") or "", create=False))
    with_metadata = _flag(args, "include_all_metadata")
    messages = [
        m.to_api(ws.team_id, with_metadata=with_metadata) for m in reversed(channel.messages)
    ]
    return {"ok": True, "messages": messages, "has_more": False}


def conversations_replies(ws: Workspace, args: JsonDict) -> JsonDict:
    """``conversations.replies``: the parent and its replies, oldest first."""
    channel = ws.channel(ws.resolve_channel(_str(args, "channel") or "", create=False))
    parent = channel.message(_str(args, "ts") or "")
    if parent is None:
        raise ApiFailure("thread_not_found")
    thread = [parent, *channel.thread(parent.ts)]
    with_metadata = _flag(args, "include_all_metadata")
    messages = [m.to_api(ws.team_id, with_metadata=with_metadata) for m in thread]
    return {"ok": True, "messages": messages, "has_more": False}


def _visible_channel(ws: Workspace, args: JsonDict) -> Channel:
    """The channel ``args`` names, as the bot sees it: a private one the bot is not in is
    ``channel_not_found``, as in Slack."""
    channel = ws.channel(ws.resolve_channel(_str(args, "channel") or "", create=False))
    if channel.is_private and ws.bot_user.id not in channel.members:
        raise ApiFailure("channel_not_found")
    return channel


def conversations_info(ws: Workspace, args: JsonDict) -> JsonDict:
    """``conversations.info``: a channel's kind and whether it is private."""
    channel = _visible_channel(ws, args)
    kind = channel.kind
    data: JsonDict = {
        "id": channel.id,
        "name": channel.name,
        "is_channel": kind == "channel",
        "is_group": False,
        "is_im": kind == "im",
        "is_mpim": kind == "mpim",
        "is_private": channel.is_private or kind != "channel",
        "is_archived": False,
    }
    if channel.is_private:
        data["is_member"] = True  # else it would be channel_not_found
    return {"ok": True, "channel": data}


def conversations_members(ws: Workspace, args: JsonDict) -> JsonDict:
    """``conversations.members``, paged by ``limit`` and ``cursor``. A public channel's
    members are everyone (the sandbox does not track who joined it)."""
    channel = _visible_channel(ws, args)
    if channel.kind == "channel" and not channel.is_private:
        members = [u for u in ws.names() if u[:1] in ("U", "W")]
    else:
        members = list(channel.members)
    try:
        limit = max(1, min(int(args.get("limit") or 100), 1000))
        start = int(_str(args, "cursor") or 0)
    except ValueError:
        raise ApiFailure("invalid_cursor") from None
    page = members[start : start + limit]
    more = start + limit < len(members)
    return {
        "ok": True,
        "members": page,
        "response_metadata": {"next_cursor": str(start + limit) if more else ""},
    }


def users_info(ws: Workspace, args: JsonDict) -> JsonDict:
    """``users.info``."""
    return {"ok": True, "user": ws.require_user(_str(args, "user")).to_api(ws.team_id)}


def usergroups_list(ws: Workspace, args: JsonDict) -> JsonDict:
    """``usergroups.list`` (members only with ``include_users``)."""
    groups = []
    for group in ws.usergroups():
        data: JsonDict = {
            "id": group.id,
            "team_id": ws.team_id,
            "handle": group.handle,
            "name": group.name,
            "user_count": len(group.users),
        }
        if _flag(args, "include_users"):
            data["users"] = list(group.users)
        groups.append(data)
    return {"ok": True, "usergroups": groups}


def usergroups_users_list(ws: Workspace, args: JsonDict) -> JsonDict:
    """``usergroups.users.list``."""
    wanted = _str(args, "usergroup")
    for group in ws.usergroups():
        if group.id == wanted:
            return {"ok": True, "users": list(group.users)}
    raise ApiFailure("no_such_subteam")


#: Method name -> implementation.
METHODS: dict[str, Method] = {
    "auth.test": auth_test,
    "chat.postMessage": chat_post_message,
    "chat.update": chat_update,
    "chat.delete": chat_delete,
    "chat.postEphemeral": chat_post_ephemeral,
    "views.open": views_open,
    "views.push": views_push,
    "views.update": views_update,
    "views.publish": views_publish,
    "conversations.open": conversations_open,
    "conversations.history": conversations_history,
    "conversations.replies": conversations_replies,
    "conversations.info": conversations_info,
    "conversations.members": conversations_members,
    "users.info": users_info,
    "usergroups.list": usergroups_list,
    "usergroups.users.list": usergroups_users_list,
}


def call_method(ws: Workspace, method: str, args: JsonDict) -> JsonDict:
    """Run one Web API method.

    Raises:
        ApiFailure: Whatever Slack would answer with ``ok: false`` (``unknown_method`` too).
    """
    implementation = METHODS.get(method)
    if implementation is None:
        raise ApiFailure("unknown_method")
    return implementation(ws, args)


def respond(ws: Workspace, url_id: str, body: JsonDict) -> JsonDict:
    """Handle a post to a ``response_url``.

    ``delete_original`` removes the message the interaction came from; ``replace_original``
    replaces it (ephemeral or not); otherwise a new message is posted, ephemeral to the user
    unless ``response_type`` is ``in_channel``. Each URL works 5 times within 30 minutes.
    """
    url = ws.use_response_url(url_id)
    if _flag(body, "delete_original"):
        if url.message_ts is None:
            raise ApiFailure("no_original_message", status=404)
        if url.ephemeral:
            ws.change_ephemeral(url.user, url.message_ts, None, None)
        else:
            ws.delete_message(url.channel, url.message_ts)
        return {"ok": True}
    text, blocks = _content(body, required=True)
    channel = ws.resolve_channel(url.channel, create=True)
    if _flag(body, "replace_original") and url.message_ts is not None:
        if url.ephemeral:
            ws.change_ephemeral(url.user, url.message_ts, text or "", blocks or [])
        else:
            ws.update_message(url.channel, url.message_ts, text or "", blocks or [])
    elif body.get("response_type") == "in_channel":
        ws.post_message(channel, text or "", blocks or [], thread_ts=_str(body, "thread_ts"))
    else:
        ws.post_ephemeral(channel, url.user, text or "", blocks or [], _str(body, "thread_ts"))
    return {"ok": True}
