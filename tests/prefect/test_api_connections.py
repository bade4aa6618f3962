"""Signoff's Prefect client when the server closes a kept-alive connection under a request.

A local HTTP/1.1 server stands in for Prefect here: it answers the first request on each
connection and drops the connection, unanswered, at the second, as a server closing an idle
connection does when a request crosses its close."""

from __future__ import annotations

import json
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
