"""Signoff's Prefect client when the server closes a kept-alive connection under a request.

A local HTTP/1.1 server stands in for Prefect here: it answers the first request on each
connection and drops the connection, unanswered, at the second, as a server closing an idle
connection does when a request crosses its close."""

from __future__ import annotations

import json
import logging
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from signoff.bot.backends.prefect.api import PrefectApi
from signoff.bot.errors import BackendUnavailable

RUN_ID = str(uuid.uuid4())


class _DropsSecondRequest(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen: list[str]

    def setup(self) -> None:
        super().setup()
        self.answered = 0

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.rfile.read(length)
        self.seen.append(f"{self.command} {self.path}")
        if self.answered:
            self.close_connection = True
            self.connection.close()
            return
        self.answered += 1
        found = [] if self.path.endswith("/filter") else {"id": RUN_ID, "status": "ACCEPT"}
        body = json.dumps(found).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_POST = _handle

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[PrefectApi, list[str]]]:
    seen: list[str] = []
    handler = type("Handler", (_DropsSecondRequest,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    api = PrefectApi(f"http://127.0.0.1:{httpd.server_address[1]}/api")
    try:
        yield api, seen
    finally:
        api.close()
        httpd.shutdown()
        httpd.server_close()


def test_a_read_on_a_dropped_connection_is_sent_again(
    server: tuple[PrefectApi, list[str]],
) -> None:
    api, seen = server
    assert api.flow_run(RUN_ID)["id"] == RUN_ID
    assert api.flow_run(RUN_ID)["id"] == RUN_ID  # dropped once, then answered
    assert seen == [f"GET /api/flow_runs/{RUN_ID}"] * 3
    assert api.flow_runs(ids=[RUN_ID]) == []  # a filter only reads: sent again too
    assert seen[3:] == ["POST /api/flow_runs/filter"] * 2


def test_a_resume_on_a_dropped_connection_is_not_sent_twice(
    server: tuple[PrefectApi, list[str]],
) -> None:
    api, seen = server
    api.flow_run(RUN_ID)
    # The server may have resumed the run before dropping the connection: a second resume
    # would be refused, and read as someone else's answer. The caller hears it failed.
    with pytest.raises(BackendUnavailable, match="cannot be reached"):
        api.resume(RUN_ID, {"approved": True})
    assert seen == [f"GET /api/flow_runs/{RUN_ID}", f"POST /api/flow_runs/{RUN_ID}/resume"]


class _StoresInputs(BaseHTTPRequestHandler):
    """Flow run inputs, as Prefect stores them; the first request to store one is dropped,
    before or after it is stored (``drop``), as a connection that failed under it."""

    protocol_version = "HTTP/1.1"
    seen: list[str]
    stored: dict[str, dict[str, str]]
    drop: list[str]  # "before" or "after", used once

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        self.seen.append(f"POST {self.path}")
        if self.path.endswith("/input/filter"):
            found = [e for k, e in self.stored.items() if k.startswith(body["prefix"])]
            return self._answer(200, found)
        when = self.drop.pop() if self.drop else None
        if when == "before":
            return self._hang_up()
        if body["key"] in self.stored:
            return self._answer(409, {"detail": "exists"})
        self.stored[body["key"]] = body
        if when == "after":
            return self._hang_up()
        return self._answer(201, body)

    def _hang_up(self) -> None:
        self.close_connection = True
        self.connection.close()

    def _answer(self, status: int, found: object) -> None:
        data = json.dumps(found).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.mark.parametrize(
    ("drop", "theirs", "created", "requests"),
    [
        pytest.param("before", False, True, ["input", "filter", "input"], id="lost-unstored"),
        pytest.param("after", False, True, ["input", "filter"], id="lost-stored"),
        pytest.param("before", True, False, ["input", "filter"], id="another-s"),
    ],
)
def test_an_input_stored_on_a_dropped_connection_is_told_apart_by_its_mark(
    drop: str, theirs: bool, created: bool, requests: list[str]
) -> None:
    # Prefect's server closes a connection right after a 500 it raised: the next request
    # sent down it was reported as Prefect being unavailable, stored or not.
    seen: list[str] = []
    stored = {"signoff-claim": {"key": "signoff-claim", "sender": "signoff 0"}} if theirs else {}
    handler = type("Handler", (_StoresInputs,), {"seen": seen, "stored": stored, "drop": [drop]})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api = PrefectApi(f"http://127.0.0.1:{httpd.server_address[1]}/api")
    try:
        assert api.create_input(RUN_ID, "signoff-claim", {"by": "U0BOB"}, "signoff") is created
    finally:
        api.close()
        httpd.shutdown()
        httpd.server_close()
    base = f"POST /api/flow_runs/{RUN_ID}/input"
    assert seen == [base if r == "input" else f"{base}/filter" for r in requests]
    assert len(stored) == 1
    if created:
        assert json.loads(stored["signoff-claim"]["value"]) == {"by": "U0BOB"}


class _BusyAtFirst(BaseHTTPRequestHandler):
    """Prefect's server on a busy SQLite database: 503, nothing written, ``busy`` times."""

    protocol_version = "HTTP/1.1"
    busy: list[int]

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        status, found = (503, {"exception_message": "Service Unavailable"})
        if self.busy[0] > 0:
            self.busy[0] -= 1
        else:
            status, found = 200, {"status": "ACCEPT"}
        body = json.dumps(found).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:
        pass


def test_a_server_busy_for_seconds_is_waited_out(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Four retries in 3.4 s gave up while a loaded server's database stayed busy: a
    person's answer came back "not recorded: it answered 503"."""
    from signoff.bot.backends.prefect import api as api_module

    schedule = api_module.BUSY_RETRY_SECONDS
    assert sum(schedule) >= 15
    monkeypatch.setattr(api_module, "BUSY_RETRY_SECONDS", (0.0,) * len(schedule))
    busy = [len(schedule)]  # every retry meets a busy server but the last
    handler = type("Handler", (_BusyAtFirst,), {"busy": busy})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    api = PrefectApi(f"http://127.0.0.1:{httpd.server_address[1]}/api")
    caplog.set_level(logging.INFO, logger="signoff.bot.backends.prefect.api")
    try:
        assert api.resume(RUN_ID, {"approved": True})["status"] == "ACCEPT"
        busy[0] = len(schedule) + 1
        with pytest.raises(BackendUnavailable, match="answered 503"):
            api.resume(RUN_ID, {"approved": True})
    finally:
        api.close()
        httpd.shutdown()
        httpd.server_close()
    retried = [r for r in caplog.records if getattr(r, "action", None) == "prefect_busy"]
    assert len(retried) == 2 * len(schedule)
