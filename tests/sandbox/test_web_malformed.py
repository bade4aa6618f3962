"""The sandbox page given requests no browser sends: each gets a clear 4xx, in JSON."""

from __future__ import annotations

import json
import socket
import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff.bot.sandbox.web import SandboxPage, handler
from signoff.bot.testing import running_bot
from tests.support.waiting import wait_for


@pytest.fixture
def page(tmp_path: Path) -> Iterator[SandboxPage]:
    with running_bot(["signoff.bot.demo.flows"], database_url=f"sqlite:///{tmp_path}/t.db") as bot:
        served = SandboxPage(bot.slack.workspace, bot.driver)
        served.start()
        try:
            yield served
        finally:
            served.stop()


def exchange(page: SandboxPage, request: bytes) -> tuple[bytes, dict[str, object]]:
    """Send ``request`` as it is; the status line and the JSON body of the answer."""
    with socket.create_connection((page.host, page.port), timeout=10) as raw:
        raw.sendall(request)
        answer = b""
        while chunk := raw.recv(65536):
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head.split(b"\r\n")[0], json.loads(body)


@pytest.mark.parametrize(
    ("request_line", "status"),
    [
        (b"GET / and more HTTP/1.1\r\n", b"400"),  # no path the server can read from it
        (b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n", b"414"),  # longer than the server reads
    ],
    ids=["garbage", "too-long"],
)
def test_a_request_line_the_server_cannot_read_gets_an_answer_not_a_dropped_connection(
    page: SandboxPage, request_line: bytes, status: bytes
) -> None:
    # The page's log line named the request's path, which such a request has none of: the
    # answer was never sent and the terminal showed a traceback.
    line, body = exchange(page, request_line + b"\r\n")
    assert line.startswith(b"HTTP/1.0 " + status)
    assert body["ok"] is False and body["error"]


def _handling() -> bool:
    return any("process_request" in t.name for t in threading.enumerate())


def test_a_browser_that_goes_away_before_the_answer_leaves_no_traceback(
    page: SandboxPage, capfd: pytest.CaptureFixture[str]
) -> None:
    # A tab closed while its click is on its way to the app: the answer finds no one.
    body = json.dumps({"as": "alice", "text": "/runs help"}).encode()
    raw = socket.create_connection((page.host, page.port), timeout=10)
    raw.sendall(
        f"POST /command HTTP/1.1\r\nHost: {page.host}:{page.port}\r\n".encode()
        + f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # reset
    raw.close()
    # The command reached the app (its reply shows), and the page is done with it.
    wait_for(lambda: page.workspace.ephemeral("U0ALICE"), timeout=20, what="the app's reply")
    wait_for(lambda: not _handling(), timeout=20, what="the page to finish the request")
    assert "Traceback" not in capfd.readouterr().err


def post_head(page: SandboxPage, headers: str) -> bytes:
    return (
        f"POST /command HTTP/1.1\r\nHost: {page.host}:{page.port}\r\n"
        f"Content-Type: application/json\r\n{headers}\r\n"
    ).encode()


def test_a_body_shorter_than_its_length_is_answered_when_the_wait_runs_out(
    page: SandboxPage, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The page waited for the missing bytes for good, a thread held for each such request.
    monkeypatch.setattr(handler, "REQUEST_SECONDS", 0.5)
    monkeypatch.setattr(handler._Handler, "timeout", 0.5)
    line, body = exchange(page, post_head(page, "Content-Length: 100\r\n") + b'{"as": ')
    assert line.startswith(b"HTTP/1.0 408")
    assert body["error"] == "the body's 100 bytes did not all come"


def test_a_chunked_body_is_refused_as_chunked(page: SandboxPage) -> None:
    # Its chunk sizes were read as the JSON body: "'as' must name a member", or not JSON.
    sent = json.dumps({"as": "alice", "text": "/runs help"}).encode()
    chunked = f"{len(sent):x}\r\n".encode() + sent + b"\r\n0\r\n\r\n"
    line, body = exchange(page, post_head(page, "Transfer-Encoding: chunked\r\n") + chunked)
    assert line.startswith(b"HTTP/1.0 411")
    assert "Content-Length" in str(body["error"])
