"""Acting as Slack towards the app: slash commands, clicks, submissions and events.

The driver builds the same payloads Slack sends (slack-platform.md §2) and delivers them the way
the app receives them: signed POSTs over real HTTP (:class:`~bot.sandbox.transport.HttpDriver`)
or envelopes over the app's Socket Mode WebSocket
(:class:`~bot.sandbox.socket_mode.SocketModeDriver`). It then applies to the workspace what
Slack would do with the answer (:mod:`~bot.sandbox.app_responses`): a submission answered with
an empty ack closes the view, ``response_action: update`` replaces it, ``push`` pushes,
``errors`` keeps it open, a slash command's answer is shown to the user::

    with SlackSandbox() as slack:
        driver = slack.driver("http://127.0.0.1:3000/slack/events", signing_secret="s3cr3t")
        # or, for an app connected in Socket Mode: driver = slack.socket_driver()
        driver.slash_command("alice", "/runs", "pending")
        message = slack.wait_for(lambda ws: ws.channel("C0GENERAL").last)
        driver.click("alice", message, action_id="provide_input")
        slack.wait_for(lambda ws: ws.open_view("U0ALICE"))
        response = driver.submit("alice", {"reason": "ship it"})
        assert response.status == 200
"""

from __future__ import annotations

import copy
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import replace
from typing import Any, Literal

from signoff.bot.sandbox.app_responses import apply_submission_response, show_command_reply
from signoff.bot.sandbox.errors import ApiFailure, FieldRejected, NoSuchUser, NothingToInteractWith
from signoff.bot.sandbox.forms import (
    StateValues,
    client_problems,
    element_state,
    fill_state,
    stateful_elements,
)
from signoff.bot.sandbox.records import (
    AppResponse,
    EphemeralMessage,
    JsonDict,
    Message,
    OpenView,
    User,
)
from signoff.bot.sandbox.targets import Target, as_it_is_now, find_element
from signoff.bot.sandbox.workspace import Workspace

__all__ = ["VERIFICATION_TOKEN", "Delivery", "Driver"]

logger = logging.getLogger(__name__)

#: The deprecated verification token Slack still puts into payloads.
VERIFICATION_TOKEN = "sandbox-verification-token"


#: What is delivered, named as Socket Mode names its envelopes.
Delivery = Literal["slash_commands", "interactive", "events_api"]


class Driver(ABC):
    """Sends Slack's requests to an app, as users of the sandbox workspace.

    Users are given as ids (``"U0ALICE"``) or handles (``"alice"``). Get one from
    :meth:`bot.sandbox.SlackSandbox.driver` (HTTP) or
    :meth:`bot.sandbox.SlackSandbox.socket_driver` (Socket Mode); both act the same way.

    Args:
        workspace: The sandbox workspace (issues trigger_ids and response_urls, holds views).
        sandbox_url: Base URL of the sandbox server, for response_urls.
    """

    def __init__(self, workspace: Workspace, sandbox_url: str) -> None:
        self.workspace = workspace
        self.sandbox_url = sandbox_url.rstrip("/")
        self._events = 0
        #: the last request handed to the app, for ``redeliver``
        self._last: tuple[Delivery, JsonDict] | None = None

    def deliver(self, kind: Delivery, payload: Mapping[str, Any]) -> AppResponse:
        """Hand one request to the app and return its answer (the ack, in Socket Mode).

        Args:
            kind: ``slash_commands`` (``payload`` is the command's fields),
                ``interactive`` (an interactivity payload) or ``events_api`` (an
                ``event_callback`` body).
            payload: What Slack sends.
        """
        self._last = (kind, copy.deepcopy(dict(payload)))
        return self._send(kind, payload, None)

    @property
    def last_delivery(self) -> tuple[Delivery, JsonDict] | None:
        """The last request this driver handed to the app (kind, payload), if any."""
        return self._last

    def redeliver(
        self,
        *,
        attempt: int = 1,
        reason: str = "timeout",
        delivery: tuple[Delivery, JsonDict] | None = None,
    ) -> AppResponse:
        """Deliver the last request again, as Slack does when it took the first delivery
        for failed (no answer in time): the same payload, same ``trigger_id``, marked as
        retry ``attempt`` for ``reason``. Over HTTP it is signed again a moment later, with
        ``X-Slack-Retry-Num`` and ``X-Slack-Retry-Reason``; over Socket Mode it is a new
        envelope with ``retry_attempt`` and ``retry_reason``. A slash command's answer is
        shown as the first one's was; a view submission's is applied to the modal, if the
        submitted view is still on top (Slack shows the answer to the delivery it took).

        Args:
            attempt: Which retry this is (Slack: 1 to 3).
            reason: Why Slack retries (``http_timeout``, ``timeout``, ...).
            delivery: What to deliver again (another driver's ``last_delivery``, to deliver
                it to another replica); by default this driver's ``last_delivery``.

        Raises:
            NothingToInteractWith: Nothing was delivered yet.
        """
        delivery = delivery or self._last
        if delivery is None:
            raise NothingToInteractWith("nothing was delivered yet, so nothing to deliver again")
        kind, payload = delivery
        if kind == "interactive" and payload.get("type") == "view_submission":
            return self._submit_again(payload, (attempt, reason))
        response = self._send(kind, payload, (attempt, reason))
        if kind != "slash_commands":
            return response
        shown = show_command_reply(
            self.workspace, response, payload["user_id"], payload["channel_id"]
        )
        return replace(response, problems=shown)

    def _submit_again(self, payload: JsonDict, retry: tuple[int, str]) -> AppResponse:
        """Deliver a view submission again: Slack applies this delivery's answer to the
        modal, if the submitted view is still the user's top view."""
        user, view_id = payload["user"]["id"], payload["view"]["id"]
        top = self.workspace.open_view(user)
        if top is None or top.id != view_id:
            return self._send("interactive", payload, retry)
        with self.workspace.submitting(view_id):
            response = self._send("interactive", payload, retry)
            rejected = apply_submission_response(self.workspace, user, top, response)
        return replace(response, problems=rejected)

    @abstractmethod
    def _send(
        self, kind: Delivery, payload: Mapping[str, Any], retry: tuple[int, str] | None
    ) -> AppResponse:
        """Hand ``payload`` to the app as ``deliver`` says; ``retry`` (attempt, reason)
        marks it as Slack marks a delivery made again."""

    # -- helpers shared by the interactions -------------------------------------------------

    def _user(self, ref: str) -> User:
        user = self.workspace.user(ref) or self.workspace.user_by_name(ref)
        if user is None:
            raise NoSuchUser(f"no user {ref!r} in the sandbox workspace")
        return user

    def _resolve_id(self, ref: str) -> str:
        """Names written in tests (``alice``, ``#general``) to Slack ids for pickers."""
        if ref.startswith("#"):
            return self.workspace.channel(ref).id
        user = self.workspace.user_by_name(ref)
        return user.id if user else ref

    def _envelope(self, kind: str, user: User, *, trigger: bool = True) -> JsonDict:
        ws = self.workspace
        payload: JsonDict = {
            "type": kind,
            "team": {"id": ws.team_id, "domain": ws.team_domain},
            "user": {
                "id": user.id,
                "username": user.name,
                "name": user.name,
                "team_id": user.team_id or ws.team_id,
            },
            "api_app_id": ws.app_id,
            "token": VERIFICATION_TOKEN,
            "enterprise": None,
            "is_enterprise_install": False,
        }
        if trigger:
            payload["trigger_id"] = ws.issue_trigger(user.id)
        return payload

    def _response_url(self, url_id: str) -> str:
        return f"{self.sandbox_url}/response/{url_id}"

    # -- slash commands ---------------------------------------------------------------------

    def slash_command(
        self, user: str, command: str, text: str = "", *, channel: str | None = None
    ) -> AppResponse:
        """Run ``/command text`` as ``user`` in ``channel`` (default: the workspace's #general).

        ``text`` is what the user types; like Slack, the sandbox sends its ``&``, ``<`` and
        ``>`` as ``&amp;``, ``&lt;`` and ``&gt;``. A non-empty answer is shown like Slack
        does: ephemeral to the user, or in the channel for ``{"response_type": "in_channel"}``.
        """
        ws = self.workspace
        who = self._user(user)
        try:
            channel_id = ws.resolve_channel(channel or ws.default_channel, create=True)
        except ApiFailure as failure:
            raise NothingToInteractWith(f"no channel {channel!r}") from failure
        conversation = ws.channel(channel_id)
        fields = {
            "token": VERIFICATION_TOKEN,
            "team_id": ws.team_id,
            "team_domain": ws.team_domain,
            "channel_id": channel_id,
            "channel_name": conversation.name
            if conversation.kind == "channel"
            else "directmessage",
            "user_id": who.id,
            "user_name": who.name,
            "command": command,
            # As Slack does: these three arrive escaped, whatever the command's should_escape.
            "text": text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;"),
            "api_app_id": ws.app_id,
            "is_enterprise_install": "false",
            "response_url": self._response_url(ws.issue_response_url(who.id, channel_id)),
            "trigger_id": ws.issue_trigger(who.id),
        }
        response = self.deliver("slash_commands", fields)
        logger.debug(
            "%s ran %s -> %s",
            who.name,
            command,
            response.status,
            extra={"action": "sandbox_slash_command", "user": who.id, "status": response.status},
        )
        return replace(
            response, problems=show_command_reply(self.workspace, response, who.id, channel_id)
        )

    # -- clicks -----------------------------------------------------------------------------

    def click(
        self,
        user: str,
        target: Target,
        *,
        action_id: str,
        value: object = None,
        block_id: str | None = None,
    ) -> AppResponse:
        """Use an interactive element in a message, an ephemeral message or an open view.

        Args:
            user: Who clicks.
            target: The message (``sandbox.channel(...).last``), ephemeral message, or the
                :class:`OpenView` (modal or Home tab) holding the element.
            action_id: The element's action_id.
            value: For buttons, picks the button with this value when several share the
                action_id; for selects, overflows, pickers the value chosen (as in ``submit``).
            block_id: Narrows the search to one block.

        Returns:
            The app's answer (Slack ignores its body for block_actions).
        """
        who = self._user(user)
        blocks, fresh = as_it_is_now(self.workspace, target)
        block, element = find_element(blocks, action_id, value, block_id)
        action: JsonDict = {
            "type": element["type"],
            "block_id": block.get("block_id"),
            "action_id": action_id,
            "action_ts": f"{time.time():.6f}",
        }
        if element["type"] in ("button", "workflow_button"):
            action.update({k: element[k] for k in ("text", "value", "style") if k in element})
        elif element["type"] == "overflow":
            chosen = element_state({"type": "static_select", **element}, value)
            action["selected_option"] = chosen["selected_option"]
        else:
            action.update(element_state(element, value, resolve=self._resolve_id))
        payload = self._envelope("block_actions", who)
        payload["actions"] = [action]
        state = self._state_after(fresh, block, element, action)
        if isinstance(fresh, OpenView):
            view = copy.deepcopy(fresh.view)
            view["state"] = {"values": state}
            payload.update(container={"type": "view", "view_id": fresh.id}, view=view)
            if fresh.type == "modal" and element["type"] != "button":
                self.workspace.set_view_state(fresh.id, state)
            return self.deliver("interactive", payload)
        ephemeral = isinstance(fresh, EphemeralMessage)
        container: JsonDict = {
            "type": "message",
            "message_ts": fresh.ts,
            "channel_id": fresh.channel,
            "is_ephemeral": ephemeral,
        }
        if fresh.thread_ts:
            container["thread_ts"] = fresh.thread_ts
        url_id = self.workspace.issue_response_url(
            who.id, fresh.channel, fresh.ts, ephemeral=ephemeral
        )
        payload.update(
            container=container,
            channel={"id": fresh.channel, "name": self.workspace.channel(fresh.channel).name},
            state={"values": state},
            response_url=self._response_url(url_id),
        )
        if isinstance(fresh, Message):
            payload["message"] = fresh.to_api(self.workspace.team_id)
        return self.deliver("interactive", payload)

    @staticmethod
    def _state_after(
        target: Target, block: JsonDict, element: JsonDict, action: JsonDict
    ) -> StateValues:
        source: Mapping[str, Any] = (
            target.view if isinstance(target, OpenView) else {"blocks": target.blocks}
        )
        state = fill_state(source)
        if any(el is element for _, _, _, el in stateful_elements([block])):
            value = {
                k: v for k, v in action.items() if k not in ("block_id", "action_id", "action_ts")
            }
            state.setdefault(str(block.get("block_id")), {})[str(element.get("action_id"))] = value
        return state

    # -- modals -----------------------------------------------------------------------------

    def submit(
        self,
        user: str,
        values: Mapping[str, object] | None = None,
        *,
        view: OpenView | None = None,
        client_checks: bool = True,
    ) -> AppResponse:
        """Fill in and submit the modal view ``user`` has on top.

        Args:
            user: Who submits.
            values: Field path, block_id or label -> plain Python value (see
                :func:`bot.sandbox.forms.element_state`). Unmentioned inputs keep what was
                entered before or their initial value.
            view: Assert that this is the view being submitted (it must be on top).
            client_checks: Refuse like the Slack client does when a required input is empty
                or a value breaks the element's limits. Turn off to test server-side checks.

        Returns:
            The app's answer; ``problems`` lists what Slack would reject in it.

        Raises:
            NothingToInteractWith: ``user`` has no open modal, ``view`` is not on top, or
                the top view has no Submit button (a notice).
            UnknownField: A key matches no input.
            FieldRejected: The Slack client would not send this submission.
        """
        who = self._user(user)
        top = self.workspace.open_view(who.id)
        if top is None:
            raise NothingToInteractWith(f"{who.name} has no open modal")
        if view is not None and view.id != top.id:
            raise NothingToInteractWith(f"view {view.id} is not the top view ({top.id})")
        if top.view.get("type") == "modal" and not top.view.get("submit"):
            # Slack shows no Submit button on such a view (a notice, "Answer recorded"):
            # nothing can be sent from it, and the next form opens only once it is closed.
            title = str((top.view.get("title") or {}).get("text", ""))
            raise NothingToInteractWith(
                f"{who.name}'s top view ({title!r}) has no Submit button;"
                f" close it first: close({who.name!r})"
            )
        state = fill_state(top.view, values, resolve=self._resolve_id)
        problems = client_problems(top.view, state) if client_checks else {}
        if problems:
            raise FieldRejected(f"the Slack client would not submit: {problems}", problems)
        self.workspace.set_view_state(top.id, state)
        submitted = copy.deepcopy(top.view)
        submitted["state"] = {"values": state}
        payload = self._envelope("view_submission", who)
        payload.update(view=submitted, response_urls=self._response_urls(who, top, state))
        with self.workspace.submitting(top.id):
            response = self.deliver("interactive", payload)
            rejected = apply_submission_response(self.workspace, who.id, top, response)
        logger.debug(
            "%s submitted %s -> %s %s",
            who.name,
            top.callback_id,
            response.status,
            response.response_action or "",
            extra={"action": "sandbox_view_submitted", "user": who.id, "view_id": top.id},
        )
        return replace(response, problems=rejected)

    def _response_urls(self, who: User, view: OpenView, state: StateValues) -> list[JsonDict]:
        urls: list[JsonDict] = []
        for _, block_id, action_id, element in stateful_elements(view.blocks):
            value = state[block_id][action_id]
            channel = value.get("selected_conversation") or value.get("selected_channel")
            if element.get("response_url_enabled") and channel:
                url_id = self.workspace.issue_response_url(who.id, str(channel))
                urls.append(
                    {
                        "block_id": block_id,
                        "action_id": action_id,
                        "channel_id": channel,
                        "response_url": self._response_url(url_id),
                    }
                )
        return urls

    def close(self, user: str) -> AppResponse | None:
        """Close ``user``'s top modal view (the Close button or the X).

        Sends ``view_closed`` when the view has ``notify_on_close``; with ``clear_on_close`` the
        whole stack goes. Returns the app's answer, or None when nothing was sent.
        """
        who = self._user(user)
        top = self.workspace.open_view(who.id)
        if top is None:
            raise NothingToInteractWith(f"{who.name} has no open modal")
        cleared = bool(top.view.get("clear_on_close"))
        self.workspace.close_views(who.id, all_views=cleared)
        if not top.view.get("notify_on_close"):
            return None
        payload = self._envelope("view_closed", who, trigger=False)
        payload.update(view=top.view, is_cleared=cleared)
        return self.deliver("interactive", payload)

    # -- events -----------------------------------------------------------------------------

    def event(self, event: Mapping[str, Any]) -> AppResponse:
        """Deliver an Events API ``event_callback`` wrapping ``event``."""
        ws = self.workspace
        self._events += 1
        body = {
            "token": VERIFICATION_TOKEN,
            "team_id": ws.team_id,
            "api_app_id": ws.app_id,
            "event": dict(event),
            "type": "event_callback",
            "event_id": f"Ev{self._events:08d}",
            "event_time": int(time.time()),
            "authorizations": [
                {
                    "enterprise_id": None,
                    "team_id": ws.team_id,
                    "user_id": ws.bot_user.id,
                    "is_bot": True,
                    "is_enterprise_install": False,
                }
            ],
            "is_ext_shared_channel": False,
        }
        return self.deliver("events_api", body)

    def change_usergroup(self, group_id: str, users: Sequence[str]) -> AppResponse:
        """An admin gives user group ``group_id`` these members (ids or handles): the
        workspace changes and the app gets ``subteam_members_changed``, as from Slack."""
        ids = [self._user(u).id for u in users]
        group, added, removed = self.workspace.change_usergroup_members(group_id, ids)
        event: JsonDict = {
            "type": "subteam_members_changed",
            "subteam_id": group.id,
            "team_id": self.workspace.team_id,
            "date_previous_update": int(time.time()) - 1,
            "date_update": int(time.time()),
            "added_users": added,
            "added_users_count": str(len(added)),
            "removed_users": removed,
            "removed_users_count": str(len(removed)),
            "event_ts": f"{time.time():.6f}",
        }
        return self.event(event)

    def open_home(self, user: str) -> AppResponse:
        """``user`` opens the app's Home tab (an ``app_home_opened`` event)."""
        who = self._user(user)
        event: JsonDict = {
            "type": "app_home_opened",
            "user": who.id,
            "channel": self.workspace.open_conversation([who.id]),
            "tab": "home",
            "event_ts": f"{time.time():.6f}",
        }
        home = self.workspace.home_view(who.id)
        if home is not None:
            event["view"] = home.view
        return self.event(event)
