"""The loopback HTTP server that answers like ``https://slack.com/api/``.

``POST /api/<method>`` (GET works too) with ``Authorization: Bearer xoxb-...`` and a JSON,
form-encoded or empty body; ``POST /response/<id>`` for response_urls. ``apps.connections.open``
takes an app-level token (``xapp-...``) instead and answers a Socket Mode URL. Every request is recorded
in the workspace's call log before the answer is sent. Tests can make the next calls of a method
fail (429 with ``Retry-After``, 500, 503, or any ``ok: false`` error), or answer late: the call
takes effect at once and its answer comes after a delay, as from a slow Slack.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from signoff.bot.sandbox.errors import ApiFailure, SandboxNotRunning
from signoff.bot.sandbox.methods import SCOPES, call_method, respond
from signoff.bot.sandbox.records import Call, JsonDict
from signoff.bot.sandbox.socket_mode import SocketModeServer
from signoff.bot.sandbox.workspace import Workspace
from signoff.bot.slack.manifest import METHOD_SCOPES

__all__ = ["WebApiServer"]

logger = logging.getLogger(__name__)

_SERVER_ERRORS = {500: "internal_error", 502: "bad_gateway", 503: "service_unavailable"}
#: The one method that takes an app-level token rather than the bot token.
_CONNECTIONS_OPEN = "apps.connections.open"


@dataclass(frozen=True)
class _Fault:
    status: int
    retry_after: int | None
    error: str | None
    #: the calls it applies to (by their arguments); None: the next call, whatever it is
    when: Callable[[JsonDict], bool] | None = None

    def answer(self) -> tuple[int, JsonDict, dict[str, str]]:
        headers = {"Retry-After": str(self.retry_after)} if self.retry_after is not None else {}
        if self.status == 429:
            error = self.error or "ratelimited"
        else:
            error = self.error or _SERVER_ERRORS.get(self.status, "fatal_error")
        return self.status, {"ok": False, "error": error}, headers


@dataclass(frozen=True, eq=False)
class _Delay:
    seconds: float
    #: the calls it applies to (by their arguments); None: the next call, whatever it is
    when: Callable[[JsonDict], bool] | None = None
    #: set, it answers at once (before ``seconds`` are up)
    released: threading.Event | None = None


def _parse_args(content_type: str, body: bytes, query: str) -> JsonDict:
    """Arguments from the query string and a JSON, form-encoded or empty body."""
    args: JsonDict = {k: v[-1] for k, v in parse_qs(query, keep_blank_values=True).items()}
    text = body.decode("utf-8").strip()
    if not text:
        return args
    if "json" in content_type or (text.startswith("{") and "form" not in content_type):
        parsed = json.loads(text)
        if not isinstance(parsed, dict):
            raise ValueError("JSON body must be an object")
        args.update(parsed)
    else:
        args.update({k: v[-1] for k, v in parse_qs(text, keep_blank_values=True).items()})
    return args


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    api: WebApiServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        self.server.api.handle(self)

    do_GET = do_POST

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # Path only: a query string could carry ?token=xoxb-... and tokens are never logged.
        logger.debug(
            "%s %s -> %s",
            self.command,
            urlsplit(self.path).path,
            code,
            extra={"action": "sandbox_http"},
        )

    def log_message(self, format: str, *args: Any) -> None:
        # Only the format: its arguments may echo the raw request line.
        logger.debug(format, extra={"action": "sandbox_http_message"})

    def send_json(self, status: int, body: JsonDict, headers: dict[str, str]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)


class WebApiServer:
    """Serves the Web API emulator for one workspace on ``127.0.0.1`` and an ephemeral port.

    Args:
        workspace: The state to serve.
        bot_token: If set, only this token is accepted; otherwise any ``xoxb-`` token is.
        socket_mode: The Socket Mode endpoint whose URLs ``apps.connections.open`` hands out
            (without one that method is unknown).
        app_token: If set, ``apps.connections.open`` accepts only this token; otherwise any
            ``xapp-`` token.
    """

    def __init__(
        self,
        workspace: Workspace,
        *,
        bot_token: str | None = None,
        socket_mode: SocketModeServer | None = None,
        app_token: str | None = None,
    ) -> None:
        self.workspace = workspace
        self.bot_token = bot_token
        self.socket_mode = socket_mode
        self.app_token = app_token
        #: the error every app-level token gets once revoked (``revoke_app_token``)
        self._app_token_refused: str | None = None
        #: the manifest's scopes the installed app lacks (``withhold_scopes``)
        self._withheld: frozenset[str] = frozenset()
        self._faults: dict[str, deque[_Fault]] = {}
        self._delays: dict[str, deque[_Delay]] = {}
        self._faults_lock = threading.Lock()
        #: set on stop, so that no delayed answer holds the server up
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The TCP port (only while running)."""
        if self._server is None:
            raise SandboxNotRunning("start the sandbox first (use it as a context manager)")
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        """Bind an ephemeral loopback port and serve on a daemon thread."""
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", 0), _Handler)
        server.api = self
        self._stopping.clear()
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self._thread.start()
        logger.info(
            "Slack sandbox listening on %s",
            self.base_url,
            extra={"action": "sandbox_started", "port": self.port},
        )

    def stop(self) -> None:
        """Stop serving and release the port."""
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        logger.info("Slack sandbox stopped", extra={"action": "sandbox_stopped"})

    def revoke_app_token(self, error: str = "token_revoked") -> None:
        """From now on ``apps.connections.open`` refuses every app-level token with
        ``error``, as Slack does once the app's token is revoked (``invalid_auth`` for
        one it no longer knows at all)."""
        self._app_token_refused = error

    def withhold_scopes(self, *scopes: str) -> None:
        """Answer as for an app installed without ``scopes`` (installed before the manifest
        asked for them): a method that needs one answers ``missing_scope``, and
        ``auth.test``'s ``x-oauth-scopes`` leaves them out."""
        self._withheld = frozenset(scopes)

    def fail_next(
        self,
        method: str,
        times: int = 1,
        *,
        status: int = 429,
        retry_after: int | None = None,
        error: str | None = None,
        when: Callable[[JsonDict], bool] | None = None,
    ) -> None:
        """Make the next ``times`` calls of ``method`` fail.

        Args:
            method: A Web API method such as ``chat.postMessage``, or ``response_url``.
            times: How many calls fail before normal answers resume.
            status: 429 (``ratelimited``), 500, 503, ... or 200 with ``error``.
            retry_after: ``Retry-After`` header in whole seconds (defaults to 0 for 429).
            error: The ``error`` code in the body (for 200 a plain Slack error).
            when: Only calls whose arguments it accepts fail (and count); others are
                answered as usual.
        """
        if status == 429 and retry_after is None:
            retry_after = 0
        with self._faults_lock:
            queue = self._faults.setdefault(method, deque())
            queue.extend(_Fault(status, retry_after, error, when) for _ in range(times))

    def answer_late(
        self,
        method: str,
        seconds: float,
        times: int = 1,
        *,
        when: Callable[[JsonDict], bool] | None = None,
        until: threading.Event | None = None,
    ) -> None:
        """Let the next ``times`` calls of ``method`` take effect at once (a message is
        stored) but send their answers only after ``seconds``, like a slow Slack.

        A client that gives up first cannot know whether its call was done. With ``when``,
        only calls whose arguments it accepts are answered late (and count). With
        ``until``, they are answered as soon as it is set, if that is sooner.
        """
        with self._faults_lock:
            delays = [_Delay(seconds, when, until)] * times
            self._delays.setdefault(method, deque()).extend(delays)

    def _take_delay(self, method: str, args: JsonDict) -> _Delay | None:
        with self._faults_lock:
            queue = self._delays.get(method)
            for delay in queue or ():
                if delay.when is None or delay.when(args):
                    queue.remove(delay)  # type: ignore[union-attr]
                    return delay
            return None

    def _hold(self, delay: _Delay) -> None:
        """Wait out ``delay``: its seconds, its release, or the server's stop."""
        if delay.released is None:
            self._stopping.wait(delay.seconds)
            return
        deadline = time.monotonic() + delay.seconds
        while not self._stopping.is_set() and (left := deadline - time.monotonic()) > 0:
            if delay.released.wait(min(left, 0.1)):
                return

    def _take_fault(self, method: str, args: JsonDict) -> _Fault | None:
        with self._faults_lock:
            queue = self._faults.get(method)
            for fault in queue or ():
                if fault.when is None or fault.when(args):
                    queue.remove(fault)  # type: ignore[union-attr]
                    return fault
            return None

    def _authenticate(self, method: str, header: str, args: JsonDict) -> str | None:
        """The error code for a missing or bad token, or None when it is fine."""
        token = header.removeprefix("Bearer ").strip() if header.startswith("Bearer ") else ""
        token = token or str(args.get("token") or "")
        if not token:
            return "not_authed"
        if method == _CONNECTIONS_OPEN:
            if self._app_token_refused is not None and token.startswith("xapp-"):
                return self._app_token_refused
            right_kind, expected = token.startswith("xapp-"), self.app_token
        else:
            right_kind, expected = token.startswith("xoxb-"), self.bot_token
        if not right_kind:
            # Slack tells a good token of the wrong kind apart from a bad token.
            return (
                "not_allowed_token_type" if token.startswith(("xapp-", "xoxb-")) else "invalid_auth"
            )
        return None if expected in (None, token) else "invalid_auth"

    def handle(self, request: _Handler) -> None:
        """Answer one HTTP request (runs on a server thread)."""
        parts = urlsplit(request.path)
        if parts.path.startswith("/api/"):
            method = parts.path.removeprefix("/api/").strip("/")
        elif parts.path.startswith("/response/"):
            method = "response_url"
        else:
            request.send_json(404, {"ok": False, "error": "not_found"}, {})
            return
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        args: JsonDict = {}
        headers: dict[str, str] = {}
        with self.workspace.answering():
            try:
                args = _parse_args(request.headers.get("Content-Type", ""), body, parts.query)
            except (ValueError, UnicodeDecodeError):
                status, answer = 200, {"ok": False, "error": "invalid_json"}
            else:
                if method == "response_url":
                    args["response_url_id"] = parts.path.removeprefix("/response/").strip("/")
                status, answer, headers = self._answer(
                    method, args, request.headers.get("Authorization", "")
                )
            self.workspace.record(Call(method, args, self.workspace.clock(), status, answer))
        logger.debug(
            "%s -> %s %s",
            method,
            status,
            answer.get("error", "ok"),
            extra={"action": "sandbox_api_call", "method": method, "status": status},
        )
        delay = self._take_delay(method, args)
        if delay is not None:
            self._hold(delay)
        try:
            request.send_json(status, answer, headers)
        except OSError:  # the client gave up (timed out, or its process died) meanwhile
            logger.debug("late answer not delivered", extra={"action": "sandbox_late_answer"})

    def _answer(
        self, method: str, args: JsonDict, authorization: str
    ) -> tuple[int, JsonDict, dict[str, str]]:
        if method != "response_url":  # response_urls carry their own secret, not a token
            error = self._authenticate(method, authorization, args)
            args.pop("token", None)
            if error:
                return 200, {"ok": False, "error": error}, {}
        fault = self._take_fault(method, args)
        if fault is not None:
            return fault.answer()
        needed = METHOD_SCOPES.get(method)
        if needed in self._withheld:
            granted = ",".join(s for s in SCOPES.split(",") if s not in self._withheld)
            return (
                200,
                {"ok": False, "error": "missing_scope", "needed": needed, "provided": granted},
                {},
            )
        status, answer = self._run(method, args)
        headers = {}
        if method == "auth.test" and status == 200:
            headers = {
                "x-oauth-scopes": ",".join(s for s in SCOPES.split(",") if s not in self._withheld)
            }
        return status, answer, headers

    def _run(self, method: str, args: JsonDict) -> tuple[int, JsonDict]:
        try:
            if method == "response_url":
                url_id = str(args["response_url_id"])
                body = {k: v for k, v in args.items() if k != "response_url_id"}
                if isinstance(body.get("payload"), str):  # form-encoded payload=<json>
                    body = json.loads(body["payload"])
                return 200, respond(self.workspace, url_id, body)
            if method == _CONNECTIONS_OPEN and self.socket_mode is not None:
                return 200, {"ok": True, "url": self.socket_mode.open_url()}
            return 200, call_method(self.workspace, method, args)
        except ApiFailure as failure:
            return failure.status, failure.body()
        except Exception:  # the emulator must answer even when it has a bug
            logger.exception("sandbox method failed", extra={"action": "sandbox_method_failed"})
            return 500, {"ok": False, "error": "internal_error"}
