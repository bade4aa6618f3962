"""The sandbox page's HTTP layer: which routes answer which methods, the server's refusals
(:mod:`.guard`), and turning requests into :class:`~.server.SandboxPage` calls and JSON.

:mod:`.server` lists the routes; every answer here is JSON except the page and its files.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import files
from typing import Any, Protocol
from urllib.parse import parse_qs, urlsplit

from markupsafe import Markup

from signoff.bot.sandbox.errors import PageRequestInvalid, SandboxError
from signoff.bot.sandbox.records import JsonDict
from signoff.bot.sandbox.web.guard import is_json, refusal
from signoff.bot.sandbox.web.page import REGIONS, Place, regions_key
from signoff.bot.slack.listener import address_family

__all__ = ["MAX_BODY", "Page", "PageServer"]

logger = logging.getLogger(__name__)

_STATIC = {
    "page.css": "text/css; charset=utf-8",
    "page.js": "text/javascript; charset=utf-8",
    "icon.svg": "image/svg+xml",
}


#: the routes people's actions are POSTed to (see :meth:`.server.SandboxPage.act`)
_ACTIONS = ("act", "submit", "close", "command", "home")
_GET = ("GET", "HEAD")


def _methods(path: str) -> tuple[str, ...] | None:
    """The methods ``path`` answers, or None when there is nothing there."""
    if path in ("/", "/regions") or (path.startswith("/static/") and path[8:] in _STATIC):
        return _GET
    return ("POST",) if path.strip("/") in _ACTIONS else None


class Page(Protocol):
    """What the server asks of the page (:class:`~.server.SandboxPage`)."""

    @property
    def host(self) -> str: ...
    @property
    def port(self) -> int: ...
    @property
    def instance(self) -> str: ...
    def place(self, query: Mapping[str, list[str]]) -> Place: ...
    def draw(self, place: Place) -> dict[str, Markup]: ...
    def page_html(self, place: Place) -> str: ...
    def act(self, body: Mapping[str, Any]) -> JsonDict: ...


#: the largest request body the page reads (its own requests are a few kilobytes)
MAX_BODY = 1_000_000


class PageServer(ThreadingHTTPServer):
    """The page's HTTP server: one thread per request, each answered by :class:`_Handler`."""

    daemon_threads = True

    def __init__(self, host: str, port: int, page: Page) -> None:
        # The class's family is IPv4's, which cannot bind an IPv6 address such as ::1.
        self.address_family = address_family(host)
        self.page = page
        super().__init__((host, port), _Handler)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A browser that went away before its answer (a tab closed mid-click) is no fault
        of the page's: logged, not printed as a traceback on the developer's terminal."""
        failure = sys.exc_info()[1]
        if isinstance(failure, ConnectionError):
            logger.debug(
                "sandbox page client went away: %s",
                failure,
                extra={"action": "sandbox_page_client_gone"},
            )
            return
        logger.exception("sandbox page request failed", extra={"action": "sandbox_page_failed"})


#: how long a connection may keep the page waiting for the rest of a request (its socket's
#: timeout): a body shorter than its Content-Length held a thread for good
REQUEST_SECONDS = 30.0


class _Handler(BaseHTTPRequestHandler):
    server: PageServer
    timeout = REQUEST_SECONDS
    #: until the request line is read: a request refused before that (garbage, a line too
    #: long) is still answered, and logged, without one
    path = ""

    @property
    def page(self) -> Page:
        return self.server.page

    def _send(self, status: int, body: bytes, content_type: str, allow: Sequence[str] = ()) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        # No other site may frame the page: its clicks would act as the page's own
        # (same origin), past the Origin check.
        self.send_header("Content-Security-Policy", "frame-ancestors 'none'")
        self.send_header("X-Frame-Options", "DENY")
        if allow:
            self.send_header("Allow", ", ".join(allow))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Mapping[str, Any], allow: Sequence[str] = ()) -> None:
        self._send(status, json.dumps(data).encode(), "application/json", allow)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """The server's own refusals (a malformed request line, an unknown method) as JSON,
        like the page's other errors, instead of an HTML page."""
        self.close_connection = True
        short = self.responses.get(code, ("", ""))[0]
        self._json(code, {"ok": False, "error": message or short or f"HTTP {code}"})

    def _refused(self) -> bool:
        """Answer a request the page refuses (see :mod:`.guard`); True when it did."""
        path = urlsplit(self.path).path
        bound = (self.page.host, self.page.port)
        refused = refusal(self.headers.get("Host"), self.headers.get("Origin"), bound)
        if refused is not None:
            status, why = refused
            logger.warning(
                "sandbox page refused %s %s: %s",
                self.command,
                path,
                why,
                extra={"action": "sandbox_page_refused"},
            )
            self._json(status, {"ok": False, "error": why})
            return True
        allowed = _methods(path)
        if allowed is None:
            self._json(404, {"ok": False, "error": f"no page at {path}"})
            return True
        if self.command not in allowed:
            why = f"{path} answers {' or '.join(allowed)}, not {self.command}"
            self._json(405, {"ok": False, "error": why}, allow=allowed)
            return True
        return False

    def do_HEAD(self) -> None:
        self.do_GET()  # _send leaves the body out

    def _not_allowed(self) -> None:
        self._refused()  # every path answers GET/HEAD or POST only: always refused

    do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_TRACE = do_CONNECT = _not_allowed

    def do_GET(self) -> None:
        if self._refused():
            return
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        if parts.path == "/":
            html = self.page.page_html(self.page.place(query))
            self._send(200, html.encode(), "text/html; charset=utf-8")
        elif parts.path == "/regions":
            drawn = self.page.draw(self.page.place(query))
            key = regions_key(drawn)
            answer: dict[str, Any] = {"key": key, "instance": self.page.instance}
            if query.get("since", [""])[-1] != key:
                answer["regions"] = {n: str(drawn[n]) for n in REGIONS}
            self._json(200, answer)
        elif parts.path.startswith("/static/") and parts.path[8:] in _STATIC:
            name = parts.path[8:]
            data = files("signoff.bot.sandbox.web").joinpath("static", name).read_bytes()
            self._send(200, data, _STATIC[name])
        else:
            self._json(404, {"ok": False, "error": f"no page at {parts.path}"})

    def do_POST(self) -> None:
        if self._refused():
            return
        route = urlsplit(self.path).path.strip("/")
        sent = self.headers.get("Content-Type")
        if not is_json(sent):
            why = f"send JSON (Content-Type: application/json), not {sent or 'no type'!r}"
            self._json(415, {"ok": False, "error": why})
            return
        if self.headers.get("Transfer-Encoding", "identity").lower() != "identity":
            # Not read: its chunks would be taken for the JSON body, and refused as that.
            why = "send the body with a Content-Length, not in chunks (Transfer-Encoding)"
            self._json(411, {"ok": False, "error": why})
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if not 0 <= length <= MAX_BODY:
            # A negative length would block reading to the end of a stream that stays open.
            self._json(413, {"ok": False, "error": f"send a body of 0 to {MAX_BODY} bytes"})
            return
        try:
            sent_body = self.rfile.read(length)
        except TimeoutError:
            self._json(408, {"ok": False, "error": f"the body's {length} bytes did not all come"})
            return
        try:
            body = json.loads(sent_body or b"{}")
            if not isinstance(body, dict):
                raise PageRequestInvalid("the body must be a JSON object")
            body["route"] = route
            answer = self.page.act(body)
        except (ValueError, RecursionError, PageRequestInvalid) as exc:
            self._json(400, {"ok": False, "error": str(exc)})
            return
        except SandboxError as exc:
            self._json(409, {"ok": False, "error": str(exc)})
            return
        except Exception as exc:
            # The page's own fault: said so to the page, whose connection must not just drop.
            logger.exception("sandbox page request failed", extra={"action": "sandbox_page_failed"})
            self._json(500, {"ok": False, "error": f"the sandbox failed: {type(exc).__name__}"})
            return
        self._json(200, answer)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        logger.debug(
            "%s %s -> %s",
            self.command,
            urlsplit(self.path).path,
            code,
            extra={"action": "sandbox_page_request"},
        )

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug(format, *args, extra={"action": "sandbox_page_log"})
