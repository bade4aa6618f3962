"""``signoff serve``'s HTTP listener over real sockets: what it answers on its event loop,
what it leaves to its pool, oversized bodies, failures, and stopping with requests in flight."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Iterable, Iterator
from typing import Any

import pytest

from signoff.bot.slack.listener import HttpListener, StartResponse
from tests.support.waiting import wait_for

MAX_BODY = 1000


class App:
    """A WSGI application whose ``/slow`` requests wait until released."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.waiting = 0
        self.seen: list[dict[str, Any]] = []

    def __call__(self, environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        self.seen.append(environ)
        if environ["PATH_INFO"] == "/slow":
            self.waiting += 1
            self.release.wait(10)
        if environ["PATH_INFO"] == "/broken":
            raise RuntimeError("the application failed")
        body = environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Path", environ["PATH_INFO"])])
        return [b"pool:", body]


def at_once(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes] | None:
    if environ["PATH_INFO"] != "/quick":
        return None
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"at once"]


@pytest.fixture
def app() -> Iterator[App]:
    made = App()
    yield made
    made.release.set()


@pytest.fixture
def listener(app: App) -> Iterator[HttpListener]:
    # One pool thread, so that a single slow request keeps the pool busy.
    served = HttpListener(
        app, host="127.0.0.1", port=0, threads=1, at_once=at_once, max_body=MAX_BODY
    )
    served.start()
    yield served
    served.stop()


def request(
    listener: HttpListener, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, bytes, http.client.HTTPResponse]:
    conn = http.client.HTTPConnection("127.0.0.1", listener.port, timeout=10)
    try:
        conn.request("POST", path, body=body, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read(), response
    finally:
        conn.close()


def in_thread(*args: Any) -> dict[str, Any]:
    done: dict[str, Any] = {}

    def send() -> None:
        done["reply"] = request(*args)

    threading.Thread(target=send, daemon=True).start()
    return done


def test_what_can_be_answered_at_once_does_not_wait_for_a_busy_pool(
    listener: HttpListener, app: App
) -> None:
    slow = in_thread(listener, "/slow")
    wait_for(lambda: app.waiting == 1, timeout=10, what="the slow request to hold the pool")
    assert request(listener, "/quick")[:2] == (200, b"at once")
    assert "reply" not in slow
    app.release.set()
    assert wait_for(lambda: slow.get("reply"), timeout=10)[:2] == (200, b"pool:")


def test_the_application_sees_the_request_as_wsgi_describes_it(
    listener: HttpListener, app: App
) -> None:
    status, body, response = request(
        listener,
        "/slack/events?x=1",
        b"payload=1",
        {"Content-Type": "application/x-www-form-urlencoded", "X-Slack-Signature": "v0=abc"},
    )
    assert (status, body, response.getheader("X-Path")) == (200, b"pool:payload=1", "/slack/events")
    [environ] = app.seen
    assert environ["QUERY_STRING"] == "x=1"
    assert environ["CONTENT_TYPE"] == "application/x-www-form-urlencoded"
    assert environ["CONTENT_LENGTH"] == "9"
    assert environ["HTTP_X_SLACK_SIGNATURE"] == "v0=abc"
    assert environ["SERVER_PROTOCOL"] == "HTTP/1.1"


def test_a_body_past_the_limit_gets_413_before_it_is_sent(listener: HttpListener, app: App) -> None:
    with socket.create_connection(("127.0.0.1", listener.port), timeout=10) as sock:
        sock.sendall(
            f"POST /slack/events HTTP/1.1\r\nHost: x\r\nContent-Length: {MAX_BODY + 1}\r\n\r\n".encode()
        )
        # Not a byte of the body is sent: the answer comes from the length alone.
        answer = b""
        while not answer.endswith(b"Request too large."):
            received = sock.recv(4096)
            assert received, f"the connection closed after {answer!r}"
            answer += received
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert answer.endswith(b"Request too large.")
    assert app.seen == []
    # A body that turns out longer than its (chunked) announcement is refused as well.
    assert request(listener, "/x", iter([b"a" * 600, b"b" * 600]))[0] == 413  # type: ignore[arg-type]


def test_a_failing_application_gets_500_and_the_listener_serves_on(
    listener: HttpListener, caplog: pytest.LogCaptureFixture
) -> None:
    assert request(listener, "/broken")[:2] == (500, b"Internal Server Error")
    assert any(getattr(r, "action", None) == "http_request_failed" for r in caplog.records)
    assert request(listener, "/quick")[0] == 200


def test_stopping_finishes_the_requests_in_flight_then_refuses_connections(
    listener: HttpListener, app: App
) -> None:
    slow = in_thread(listener, "/slow", b"late")
    wait_for(lambda: app.waiting == 1, timeout=10, what="the slow request to start")
    stopping = threading.Thread(target=listener.stop)
    stopping.start()
    wait_for(lambda: refuses(listener), timeout=10, what="the listener to stop taking connections")
    assert stopping.is_alive(), "stop returned with a request in flight"
    assert "reply" not in slow
    app.release.set()
    stopping.join(10)
    assert not stopping.is_alive()
    assert slow["reply"][:2] == (200, b"pool:late")
    listener.stop()  # a second stop does nothing


def refuses(listener: HttpListener) -> bool:
    try:
        socket.create_connection(("127.0.0.1", listener.port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_an_idle_listener_stops_at_once(app: App) -> None:
    """``signoff serve`` stops (and each test's bot with it) without waiting on a timer:
    uvicorn's own stop waited 0.2 s, whatever was in flight."""
    took = []
    for _ in range(5):
        served = HttpListener(app, host="127.0.0.1", port=0, threads=1, max_body=MAX_BODY)
        served.start()
        assert request(served, "/idle")[0] == 200  # a closed connection, as Slack's are
        began = time.monotonic()
        served.stop()
        took.append(time.monotonic() - began)
    # The quickest of five, so that a busy machine does not fail it: uvicorn's took 0.1 s
    # at the very least.
    assert min(took) < 0.05, took


def test_a_port_in_use_is_an_error_naming_it(app: App) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        busy = HttpListener(app, host="127.0.0.1", port=port, threads=1, max_body=MAX_BODY)
        with pytest.raises(OSError, match="in use"):
            busy.start()
