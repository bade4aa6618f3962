"""What Slack does with the app's answer to a request the sandbox driver delivered.

A slash command's answer is shown to the user (ephemeral, or in the channel); a view
submission's ``response_action`` changes the user's view stack: none closes the view,
``clear`` closes them all, ``update`` replaces it, ``push`` pushes, ``errors`` keeps it open.
Each returns what Slack would reject in the answer (empty when it takes it), for
``AppResponse.problems``.
"""

from __future__ import annotations

from signoff.bot.forms.blockkit import check_message, check_view
from signoff.bot.sandbox.errors import ApiFailure
from signoff.bot.sandbox.records import AppResponse, JsonDict, OpenView
from signoff.bot.sandbox.workspace import Workspace

__all__ = ["apply_submission_response", "show_command_reply"]


def show_command_reply(
    workspace: Workspace, response: AppResponse, user: str, channel: str
) -> tuple[str, ...]:
    """Show a slash command's answer as Slack does: ephemeral to ``user``, or in ``channel``
    for ``{"response_type": "in_channel"}``. What Slack would reject in it, if anything."""
    if response.status != 200 or not response.body.strip():
        return ()
    data: JsonDict = response.json if response.json is not None else {"text": response.text}
    text = str(data.get("text") or "")
    blocks: list[JsonDict] = data.get("blocks") or []
    problems = check_message(blocks, text)
    if problems:
        return tuple(problems)
    if data.get("response_type") == "in_channel":
        workspace.post_message(channel, text, blocks)
    else:
        workspace.post_ephemeral(channel, user, text, blocks, None)
    return ()


def apply_submission_response(
    workspace: Workspace, user: str, top: OpenView, response: AppResponse
) -> tuple[str, ...]:
    """Change the view stack as Slack would after this answer to a view_submission."""
    if response.status != 200:
        return (f"the app answered HTTP {response.status}; Slack shows an error in the modal",)
    action = response.response_action
    if action is None:
        workspace.close_views(user)
        return ()
    if action == "clear":
        workspace.close_views(user, all_views=True)
        return ()
    if action == "errors":
        inputs = {b.get("block_id") for b in top.blocks if b.get("type") == "input"}
        return tuple(
            f"errors key {key!r} is not the block_id of an input block in the view"
            for key in response.errors
            if key not in inputs
        )
    if action not in ("update", "push"):
        return (f"unknown response_action {action!r}",)
    new_view = (response.json or {}).get("view")
    problems = check_view(new_view if isinstance(new_view, dict) else {})
    if problems or not isinstance(new_view, dict):
        return tuple(problems)
    try:
        if action == "update":
            workspace.update_view(new_view, view_id=top.id, answering=True)
        else:
            workspace.open_modal(user, new_view, push=True)
    except ApiFailure as failure:
        return (failure.error,)
    return ()
