"""The sandbox page's HTTP server: the page, its live updates, and people's actions.

Routes (all on ``127.0.0.1`` unless told otherwise; the page is for local development)::

    GET  /?as=U0ALICE&c=C0GENERAL[&thread=TS][&home=1]   the page, drawn on the server
    GET  /regions?...&since=KEY    the page's parts as JSON, when they changed since KEY
    GET  /static/page.css|page.js|icon.svg  the page's only style sheet, script and icon
    (HEAD answers as GET does, without the body)
    POST /act      {"as", "surface": {...}, "action_id", "block_id", "value"}  a click or choice
    POST /submit   {"as", "view_id", "values": {block_id: value}}             submit the modal
    POST /close    {"as"}                                                      close the modal
    POST /command  {"as", "channel", "text": "/runs ..."}                      a slash command
    POST /home     {"as"}                                                      open the Home tab

Every action goes through the sandbox's :class:`~bot.sandbox.Driver`: the app receives the
same signed requests (or Socket Mode envelopes) Slack would send, and the workspace changes
as Slack would change it. Another method than a route's gets 405 with ``Allow``.

Other sites cannot act through your browser: the page answers only requests whose ``Host``
names it (421 otherwise) and whose ``Origin``, when there, is its own (403), and POSTs must
be JSON (415); :mod:`.guard` says why each rule is there and which hosts are the page's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import secrets
import shlex
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from zoneinfo import ZoneInfo

from markupsafe import Markup

from signoff.bot.sandbox.driver import Driver
from signoff.bot.sandbox.errors import PageRequestInvalid, SubmitBlocked
from signoff.bot.sandbox.forms import fill_state, stateful_elements
from signoff.bot.sandbox.records import AppResponse, EphemeralMessage, JsonDict, Message, OpenView
from signoff.bot.sandbox.web.blocks import environment
from signoff.bot.sandbox.web.handler import PageServer
from signoff.bot.sandbox.web.page import Feedback, Place, regions, regions_key
from signoff.bot.sandbox.workspace import Workspace
from signoff.bot.slack.listener import http_url

__all__ = ["LOOPBACK", "SandboxPage"]

logger = logging.getLogger(__name__)

#: The default address: this machine only.
LOOPBACK = "127.0.0.1"
#: flows suggested under the composer by name; the rest are counted (a process with a
#: hundred flows would otherwise push the conversation off the page)
SHOWN_FLOWS = 8
#: how often the serving loop looks whether ``stop`` was called
STOP_POLL_SECONDS = 0.05


class SandboxPage:
    """Serves the sandbox as a Slack-like page and turns clicks into the driver's requests.

    Example::

        with SlackSandbox() as slack:
            ...serve the app; driver = slack.driver(app_url, signing_secret)...
            page = SandboxPage(slack.workspace, driver, flows=["deploy"])
            page.start()
            print(page.url)          # http://127.0.0.1:PORT/
            ...
            page.stop()

    Args:
        workspace: The sandbox workspace to show.
        driver: Sends people's actions to the app (HTTP or Socket Mode).
        host: Address to bind; loopback by default.
        port: Port to bind; 0 picks a free one.
        flows: Flow names to suggest (``/runs start NAME``).
        default_user: Whose eyes the page opens with (id or handle).
    """

    def __init__(
        self,
        workspace: Workspace,
        driver: Driver,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        flows: Sequence[str] = (),
        default_user: str = "alice",
    ) -> None:
        self.workspace = workspace
        self.driver = driver
        self.flows = list(flows)
        self.feedback = Feedback()
        self.default_user = workspace.user_id(default_user)
        #: this server's own: the sandbox's ids start again from V00000001 when it restarts,
        #: so what a tab kept for a view (a draft) is told apart from another sandbox's
        self.instance = secrets.token_hex(6)
        self._lock = threading.Lock()
        self._server = PageServer(host, port, self)
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:8765/`` (``http://[::1]:8765/``)."""
        return f"{http_url(self.host, self.port)}/"

    def start(self) -> None:
        """Serve in a background thread until :meth:`stop`."""
        # stop() waits for the loop to look at its flag, every poll_interval (0.5 s by
        # default: each stop, each test's page, took half a second)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": STOP_POLL_SECONDS},
            name="sandbox-page",
            daemon=True,
        )
        self._thread.start()
        logger.info("sandbox page at %s", self.url, extra={"action": "sandbox_page_started"})

    def stop(self) -> None:
        """Stop serving and free the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join()

    # -- reading --------------------------------------------------------------------------

    def place(self, query: Mapping[str, list[str]]) -> Place:
        """The place a query string names; unknown users fall back to the default user."""

        def one(key: str) -> str | None:
            values = query.get(key)
            return values[-1] if values else None

        user = self.workspace.user_id(one("as") or self.default_user)
        found = self.workspace.user(user)
        if found is None or found.is_bot:
            user = self.default_user
        return Place(
            user=user,
            channel=one("c") or self.workspace.default_channel,
            thread=one("thread") or None,
            home=one("home") == "1",
        )

    def draw(self, place: Place) -> dict[str, Markup]:
        """The page's parts for ``place``."""
        with self._lock:
            return regions(self.workspace, place, self.feedback)

    def page_html(self, place: Place) -> str:
        """The whole page for ``place``."""
        parts = self.draw(place)
        users = [(u, n) for u, n in self.workspace.names().items() if self._is_member(u)]
        return (
            environment()
            .get_template("page.html")
            .render(
                place=place,
                regions=parts,
                key=regions_key(parts),
                users=users,
                # As typed: a name with a space is quoted, as /runs start reads it.
                flows=[shlex.quote(name) for name in self.flows],
                shown_flows=SHOWN_FLOWS,
                bind=f"{self.host}:{self.port}",
                instance=self.instance,
            )
        )

    def _is_member(self, ref: str) -> bool:
        user = self.workspace.user(ref)
        return user is not None and not user.is_bot

    # -- acting ---------------------------------------------------------------------------

    def act(self, body: Mapping[str, Any]) -> JsonDict:
        """Dispatch one POST body to the driver; the answer tells the page what happened."""
        route = str(body.get("route"))
        user = self._member(body.get("as"))
        handlers: dict[str, Callable[[str, Mapping[str, Any]], JsonDict]] = {
            "act": self._click,
            "submit": self._submit,
            "close": self._close,
            "command": self._command,
            "home": self._home,
        }
        handler = handlers.get(route)
        if handler is None:
            raise PageRequestInvalid(f"no action {route!r}")
        with self._lock:
            self.feedback.notices.pop(user, None)
        return handler(user, body)

    def _member(self, ref: object) -> str:
        if not isinstance(ref, str) or not self._is_member(self.workspace.user_id(ref)):
            raise PageRequestInvalid(
                f"'as' must name a member of the sandbox workspace, got {ref!r}"
            )
        return self.workspace.user_id(ref)

    def _answer(self, user: str, response: AppResponse | None, what: str) -> JsonDict:
        if response is None:
            return {"ok": True}
        problems = list(response.problems)
        if response.status != 200:
            problems.insert(0, f"the app answered HTTP {response.status} to {what}")
        if problems:
            with self._lock:
                self.feedback.notices[user] = "; ".join(problems)
        return {"ok": not problems, "status": response.status, "problems": problems}

    def _target(self, user: str, surface: object) -> Message | EphemeralMessage | OpenView:
        if not isinstance(surface, Mapping):
            raise PageRequestInvalid(
                "'surface' must be an object (kind, and channel/ts or view_id)"
            )
        kind = surface.get("kind")
        if kind == "message":
            found = self.workspace.channel(str(surface.get("channel"))).message(
                str(surface.get("ts"))
            )
            if found is not None:
                return found
        elif kind == "ephemeral":
            for message in self.workspace.ephemeral(user):
                if message.ts == surface.get("ts"):
                    return message
        elif kind == "view":
            views = [*self.workspace.view_stack(user), self.workspace.home_view(user)]
            for view in views:
                if view is not None and view.id == surface.get("view_id"):
                    return view
        raise PageRequestInvalid(f"nothing to act on at {dict(surface)!r}; it may have gone")

    def _click(self, user: str, body: Mapping[str, Any]) -> JsonDict:
        target = self._target(user, body.get("surface") or {})
        value = body.get("value")
        if isinstance(target, OpenView):
            value = self._typed(target.blocks, str(body.get("block_id")), value, user)
        response = self.driver.click(
            user,
            target,
            action_id=str(body.get("action_id")),
            value=value if value not in ("", None) else None,
            block_id=body.get("block_id") or None,
        )
        return self._answer(user, response, "the click")

    def _typed(self, blocks: list[JsonDict], block_id: str, value: object, user: str) -> object:
        """A picker's form value as the driver takes it (datetime-local text to a datetime)."""
        for _, bid, _, element in stateful_elements(blocks):
            if bid == block_id and element.get("type") == "datetimepicker" and value:
                viewer = self.workspace.user(user)
                zone = ZoneInfo(viewer.tz if viewer else "UTC")
                return dt.datetime.fromisoformat(str(value)).replace(tzinfo=zone)
        return value

    def _submit(self, user: str, body: Mapping[str, Any]) -> JsonDict:
        top = self.workspace.open_view(user)
        if top is None or top.id != body.get("view_id"):
            raise PageRequestInvalid("that modal is no longer open")
        raw = body.get("values") or {}
        if not isinstance(raw, Mapping):
            raise PageRequestInvalid("'values' must be an object of block_id -> value")
        values = {
            str(k): self._typed(top.blocks, str(k), None if v in ("", []) else v, user)
            for k, v in raw.items()
        }
        key = (user, top.id, top.hash)
        try:
            response = self.driver.submit(user, values, view=top)
        except SubmitBlocked as refused:
            # The Slack client itself refuses: the errors show, what was typed stays, and
            # nothing is sent.
            with contextlib.suppress(SubmitBlocked):
                self.workspace.set_view_state(top.id, fill_state(top.view, values))
            with self._lock:
                self.feedback.errors[key] = dict(refused.errors)
            return {"ok": False, "errors": dict(refused.errors), "sent": False}
        errors = response.errors if response.response_action == "errors" else {}
        with self._lock:
            self.feedback.errors.pop(key, None)
            current = self.workspace.open_view(user)
            if errors and current is not None:
                self.feedback.errors[(user, current.id, current.hash)] = errors
        answer = self._answer(user, response, "the submission")
        answer["errors"] = errors
        answer["sent"] = True
        return answer

    def _close(self, user: str, _body: Mapping[str, Any]) -> JsonDict:
        return self._answer(user, self.driver.close(user), "closing the modal")

    def _command(self, user: str, body: Mapping[str, Any]) -> JsonDict:
        text = str(body.get("text") or "").strip()
        if not text.startswith("/") or len(text) < 2:
            raise PageRequestInvalid(
                "the sandbox sends slash commands only; start with '/', e.g. /runs"
            )
        command, _, rest = text.partition(" ")
        channel = str(body.get("channel") or self.workspace.default_channel)
        response = self.driver.slash_command(user, command, rest.strip(), channel=channel)
        return self._answer(user, response, command)

    def _home(self, user: str, _body: Mapping[str, Any]) -> JsonDict:
        return self._answer(user, self.driver.open_home(user), "opening the Home tab")
