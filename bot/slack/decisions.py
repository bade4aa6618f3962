"""One-click decisions on a prompt, and handing a decision to someone else ("Reassign").

A click answers through ``Backend.answer`` as the clicking Slack user, so the same rules,
quorum and audit trail apply as to the form; a refusal or a stale prompt is told to the
person privately and changes nothing.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.blocks import InputBlock, MarkdownTextObject, SectionBlock, UserSelectElement
from slack_sdk.models.views import View

from signoff.bot.backends import (
    Action,
    Actor,
    Backend,
    Denied,
    Pause,
    PauseStatus,
    Refusal,
    Refused,
    Stale,
)
from signoff.bot.errors import BackendError, NotPermitted, RunNotFound, TamperedMetadata
from signoff.bot.forms.labels import clip
from signoff.bot.forms.mrkdwn import escape_mrkdwn
from signoff.bot.slack import ids
from signoff.bot.slack.approvers import refusal_text, slack_actor
from signoff.bot.slack.deleted import GONE, close_pressed_prompt
from signoff.bot.slack.failures import reported
from signoff.bot.slack.interactions import form_context, notice_view, stale_reason
from signoff.bot.slack.messages import MAX_MESSAGE_TEXT, single_decision, who
from signoff.bot.slack.sealing import Sealer

logger = logging.getLogger(__name__)

_DECIDE = re.compile(rf"^{ids.DECIDE}:\d+$")
NOT_OURS = "That button is not one of Signoff's; nothing was changed."


def tell_privately(client: WebClient, body: dict[str, Any], text: str) -> None:
    """Say something to the clicking person only: in the channel, or (Home, DM) as a notice."""
    user = body["user"]["id"]
    channel = (body.get("channel") or {}).get("id") or (body.get("container") or {}).get(
        "channel_id"
    )
    if channel:
        # A model's refusal can be longer than a message may be.
        client.chat_postEphemeral(channel=channel, user=user, text=clip(text, MAX_MESSAGE_TEXT))
    elif body.get("trigger_id"):
        client.views_open(trigger_id=body["trigger_id"], view=notice_view("Signoff", text))


def _person(client: WebClient, user: str) -> tuple[str | None, str]:
    """Why Slack user ``user`` cannot be handed a decision (not a person in the workspace),
    or None; and how they are shown in plain text (by name; their id when Slack will not
    say). When Slack cannot say, the reassign goes ahead: the rules still apply."""
    try:
        found = client.users_info(user=user).get("user") or {}
    except SlackApiError as exc:
        if exc.response.get("error") == "user_not_found":
            return "There is no such person in this workspace.", user
        logger.warning(
            "cannot look up the person a decision is handed to",
            extra={"action": "reassign_lookup_failed", "error": exc.response.get("error")},
        )
        return None, user
    profile = found.get("profile") or {}
    # Slack shows a mention by display name, else by full name.
    named = profile.get("display_name") or profile.get("real_name") or found.get("name")
    shown = f"@{named}" if isinstance(named, str) and named.strip() else user
    if found.get("deleted"):
        return f"{shown} has left this workspace.", shown
    if found.get("is_bot") or found.get("is_app_user"):
        return "Choose a person: an app cannot decide.", shown
    return None, shown


def _refused(actor: Actor, to: str, shown: str, exc: NotPermitted) -> dict[str, Any]:
    """What a refused hand-over's form answers. Under the field, so that someone else can
    be chosen, as plain text (Slack shows a field's error as it is), with the person chosen
    by name. A refusal naming others (the approvers, when the sender may no longer hand it
    on) replaces the form with a notice, like the input form's: its mentions show as names
    there, and there is no one else to choose."""
    refusal = Refusal(exc.reason, exc.allowed)
    others: list[str] = []

    def plain(principal: str | None) -> str:
        if principal == to:
            return shown
        if principal is None:
            return "someone"
        others.append(principal)
        return principal

    text = refusal_text(Action.REASSIGN, actor, None, refusal, who=plain)
    if not others:
        return {"response_action": "errors", "errors": {"to": clip(text, 150)}}
    text = refusal_text(Action.REASSIGN, actor, None, refusal)
    return {"response_action": "update", "view": notice_view("Not allowed", text)}


def _closed(backend: Backend, run_id: str, key: str, exc: BackendError) -> View:
    """The notice for a hand-over the decision closed before (answered, timed out, the run
    cancelled): in the input form's words, else the backend's."""
    try:
        reason = stale_reason(backend, backend.get_run(run_id), key)
    except RunNotFound:
        reason = GONE
    except BackendError:
        reason = None
    return notice_view(
        "Nothing to do", reason or escape_mrkdwn(str(exc)), form_context(run_id, key)
    )


def _pressed(action: dict[str, Any]) -> tuple[str, str, dict[str, Any] | int]:
    """The run id and input key a decision button names, and the answer it stands for: the
    choice's number (its ``action_id`` ends in it), or, on a button posted before they were
    looked up, the answer itself (``{"t": "RUN:KEY", "f": field, "v": value}``).

    Raises:
        ValueError, KeyError, TypeError, RecursionError: the button is not one of Signoff's.
    """
    value = str(action["value"])
    if value.startswith(("{", "[")):
        chosen = json.loads(value)
        run_id, _, key = str(chosen["t"]).partition(":")
        return run_id, key, {str(chosen["f"]): chosen["v"]}
    run_id, colon, key = value.partition(":")
    if not colon:
        raise ValueError(f"a decision button's value names no input: {value[:40]!r}")
    return run_id, key, int(str(action["action_id"]).rpartition(":")[2])


def _choice(pause: Pause, number: int) -> dict[str, Any] | None:
    """The answer the ``number``-th decision button of ``pause``'s prompt gives, or None when
    its model has no such button."""
    decision = single_decision(pause.schema) if pause.schema else None
    if decision is None or not 0 <= number < len(decision[1]):
        return None
    field, choices = decision
    return {field: choices[number][1]}


def register(app: App, backend: Backend, sealer: Sealer) -> None:
    """Add the decision buttons' and the Reassign button's listeners to ``app``.

    The Reassign form's ``private_metadata`` is sealed, as the input form's is.
    """

    @app.action(_DECIDE)
    @reported
    def decide(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor = slack_actor(body["user"])
        try:
            run_id, key, chosen = _pressed(body["actions"][0])
        except (ValueError, KeyError, TypeError, RecursionError):
            # RecursionError: JSON nested deeper than the parser recurses, which no button
            # of Signoff's carries.
            tell_privately(client, body, NOT_OURS)
            return
        try:
            if isinstance(chosen, int):
                pause = backend.get_pause(run_id, key)
                if pause is None:
                    run = backend.get_run(run_id)
                    tell_privately(client, body, stale_reason(backend, run, key) or NOT_OURS)
                    return
                answer = _choice(pause, chosen)
                if answer is None:
                    tell_privately(client, body, NOT_OURS)
                    return
            else:
                answer = chosen
            outcome = backend.answer(run_id, key, answer, responder=actor)
            if isinstance(outcome, Denied):
                run = backend.get_run(run_id)
                tell_privately(
                    client, body, refusal_text(Action.ANSWER, actor, run, outcome.refusal)
                )
                return
            if isinstance(outcome, Stale):
                run = backend.get_run(run_id)
                tell_privately(client, body, stale_reason(backend, run, key) or outcome.reason)
                return
        except RunNotFound:
            tell_privately(client, body, GONE)
            close_pressed_prompt(client, body, run_id)
            return
        except BackendError as exc:
            tell_privately(client, body, f":warning: {escape_mrkdwn(str(exc))}")
            return
        if isinstance(outcome, Refused):
            tell_privately(client, body, f":warning: {escape_mrkdwn(outcome.message)}")
            return
        pause = outcome.pause
        if pause.status is PauseStatus.WAITING:
            tell_privately(
                client,
                body,
                f"Recorded: answer {len(pause.answers)} of the {pause.quorum} this needs.",
            )
        logger.info(
            "decision clicked", extra={"action": "decision_clicked", "run_id": run_id, "key": key}
        )

    @app.action(ids.REASSIGN)
    @reported
    def open_reassign(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        actor = slack_actor(body["user"])
        value = body["actions"][0].get("value")
        if not isinstance(value, str) or ":" not in value:
            # Every Reassign button of Signoff's names its input.
            tell_privately(client, body, NOT_OURS)
            return
        run_id, _, key = value.partition(":")
        try:
            # Like the other buttons: a decision already made or closed says so at once,
            # rather than after the person picked someone in the form.
            stale = stale_reason(backend, backend.get_run(run_id), key)
            if stale is not None:
                tell_privately(client, body, stale)
                return
            refused = backend.refusal(Action.REASSIGN, actor, run_id, key)
        except RunNotFound:
            tell_privately(client, body, GONE)
            close_pressed_prompt(client, body, run_id)
            return
        except BackendError as exc:
            tell_privately(client, body, f":warning: {escape_mrkdwn(str(exc))}")
            return
        if refused is not None:
            tell_privately(client, body, refusal_text(Action.REASSIGN, actor, None, refused))
            return
        view = View(
            type="modal",
            callback_id=ids.REASSIGN_VIEW,
            title="Reassign",
            submit="Hand it over",
            close="Cancel",
            private_metadata=sealer.seal({"run": run_id, "key": key}),
            blocks=[
                SectionBlock(
                    text=MarkdownTextObject(
                        text=f"Hand input `{key}` of run `{run_id[:8]}` to someone else. "
                        "They are told, and you stop being asked."
                    )
                ),
                InputBlock(
                    block_id="to",
                    label="Who should decide",
                    element=UserSelectElement(action_id="user"),
                ),
            ],
        )
        client.views_open(trigger_id=body["trigger_id"], view=view)

    @app.view(ids.REASSIGN_VIEW)
    @reported
    def reassign(ack: Ack, body: dict[str, Any], view: dict[str, Any], client: WebClient) -> None:
        actor = slack_actor(body["user"])
        try:
            meta = sealer.open(str(view.get("private_metadata") or ""))
        except TamperedMetadata:
            logger.warning(
                "reassign form with tampered metadata refused",
                extra={"action": "form_metadata_tampered", "user": actor.id},
            )
            ack(
                response_action="update",
                view=notice_view(
                    "Not accepted", "This form was changed after it was opened; open it again."
                ),
            )
            return
        values = (view.get("state") or {}).get("values") or {}
        chosen = (values.get("to") or {}).get("user") or {}
        to = chosen.get("selected_user")
        if not to:
            ack(response_action="errors", errors={"to": "Choose who should decide."})
            return
        problem, shown = _person(client, str(to))
        if problem is not None:
            ack(response_action="errors", errors={"to": problem})
            return
        run_id, key = str(meta.get("run")), str(meta.get("key"))
        try:
            backend.reassign(run_id, str(to), actor, key=key)
        except NotPermitted as exc:
            ack(**_refused(actor, str(to), shown, exc))
            return
        except BackendError as exc:
            ack(response_action="update", view=_closed(backend, run_id, key, exc))
            return
        ack(
            response_action="update",
            view=notice_view("Reassigned", f"{who(str(to))} has been asked instead."),
        )
