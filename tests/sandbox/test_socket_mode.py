"""Socket Mode in the sandbox: the WebSocket endpoint, and the driver over it.

The WebSocket protocol is the ``websockets`` library's; these tests check what the sandbox adds
(tickets, hello, envelopes and acks, pings, closing) with a client whose every frame is under
the test's control (the library's sans-I/O client protocol over a plain socket), and the driver
with slack_sdk's builtin ``SocketModeClient``, which is what Bolt's ``SocketModeHandler`` uses.
"""

from __future__ import annotations

import json
import logging
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse
from websockets.client import ClientProtocol
from websockets.frames import Close, Frame, Opcode
from websockets.http11 import Response
from websockets.uri import parse_uri

from signoff.bot.sandbox import AppNotConnected, NotAcknowledged, SlackSandbox
from signoff.bot.sandbox.socket_mode import SocketModeServer
from signoff.bot.sandbox.workspace import Workspace
from tests.support.waiting import wait_for

# -- the endpoint, with a client that shows every frame ----------------------------------------


class RawClient:
    """A WebSocket client that sends exactly what the test asks and shows every frame it gets.

    ``headers`` replace (or, given as "", remove) headers of the opening handshake.
    """

    def __init__(self, url: str, **headers: str) -> None:
        self.protocol = ClientProtocol(parse_uri(url))
        request = self.protocol.connect()
        for name, value in headers.items():
            name = name.replace("_", "-")
            del request.headers[name]
            if value:
                request.headers[name] = value
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.events: list = []
        self.protocol.send_request(request)
        self.flush()
        response = self.event()
        assert isinstance(response, Response), response
        self.status = response.status_code
        self.headers = response.headers

    def flush(self) -> None:
        for data in self.protocol.data_to_send():
            if data:
                self.sock.sendall(data)
            else:  # the protocol's end of stream: the closing handshake is over
                self.sock.shutdown(socket.SHUT_WR)

    def event(self):
        while not self.events:
            data = self.sock.recv(65536)
            if data:
                self.protocol.receive_data(data)
            else:
                self.protocol.receive_eof()
            self.events.extend(self.protocol.events_received())
            self.flush()  # the protocol answers pings and close frames by itself
            if not data and not self.events:
                raise EOFError("the server ended the connection")
        return self.events.pop(0)

    def frame(self, *, skip_pings: bool = True) -> Frame:
        while True:
            frame = self.event()
            if not (skip_pings and frame.opcode == Opcode.PING):
                return frame

    def json(self) -> dict:
        frame = self.frame()
        assert frame.opcode == Opcode.TEXT, frame
        return json.loads(frame.data)

    def send(self, frame: Frame) -> None:
        self.protocol.send_frame(frame)
        self.flush()

    def close(self) -> None:
        self.sock.close()


def close_code(frame: Frame) -> tuple[int, str]:
    assert frame.opcode == Opcode.CLOSE, frame
    close = Close.parse(frame.data)
    return close.code, close.reason


@pytest.fixture
def endpoint() -> Iterator[SocketModeServer]:
    server = SocketModeServer(Workspace(), ping_interval=3600)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def client(endpoint: SocketModeServer) -> Iterator[RawClient]:
    raw = RawClient(endpoint.open_url())
    try:
        yield raw
    finally:
        raw.close()


def test_handshake_and_hello(endpoint: SocketModeServer, client: RawClient) -> None:
    assert client.status == 101
    assert client.headers["Upgrade"] == "websocket"
    hello = client.json()
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0SIGNOFF"}
    assert endpoint.connections == 1


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"path": "/elsewhere/"}, 404),
        ({"ticket": "forged"}, 401),
        ({"Upgrade": ""}, 426),
        ({"Sec_WebSocket_Version": "8"}, 400),
        ({"Sec_WebSocket_Key": "dG9vIHNob3J0"}, 400),
    ],
)
def test_bad_handshakes_are_refused(
    endpoint: SocketModeServer, change: dict, status: int, caplog: pytest.LogCaptureFixture
) -> None:
    malformed = status in (400, 426)  # refused by the WebSocket library, not the sandbox
    url = endpoint.open_url()
    if "path" in change:
        url = url.replace("/link/", change.pop("path"))
    if "ticket" in change:
        url = url.split("?")[0] + "?ticket=" + change.pop("ticket")
    raw = RawClient(url, **change)
    try:
        assert raw.status == status
        if status == 426:
            assert raw.headers["Upgrade"] == "websocket"
    finally:
        raw.close()
    assert endpoint.connections == 0
    if malformed:
        # The client's mistake is one warning line naming it, not an error's traceback.
        [line] = wait_for(
            lambda: [r for r in caplog.records if r.levelno >= logging.WARNING],
            what="the refused handshake's log line",
        )
        assert (line.levelname, line.exc_info) == ("WARNING", None)
        assert line.action == "socket_handshake_refused"  # type: ignore[attr-defined]
        assert line.getMessage().startswith("Socket Mode client's opening handshake refused: ")
        assert "Sec-WebSocket" in line.getMessage() or "Upgrade" in line.getMessage()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_pings_fragments_acks_and_close(endpoint: SocketModeServer, client: RawClient) -> None:
    client.json()  # hello
    client.send(Frame(Opcode.PING, b"session:1.5"))
    assert client.frame() == Frame(Opcode.PONG, b"session:1.5")

    with ThreadPoolExecutor(1) as pool:
        delivery = pool.submit(endpoint.deliver, "interactive", {"type": "view_submission"})
        envelope = client.json()
        assert envelope["type"] == "interactive" and envelope["accepts_response_payload"]
        assert envelope["payload"] == {"type": "view_submission"}
        ack = json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"x": "é"}}).encode()
        # fragmented, with a ping in between (RFC 6455 §5.4)
        client.send(Frame(Opcode.TEXT, ack[:10], fin=False))
        client.send(Frame(Opcode.PING, b"mid"))
        client.send(Frame(Opcode.CONT, ack[10:]))
        assert client.frame() == Frame(Opcode.PONG, b"mid")
        answer = delivery.result(timeout=5)
    assert (answer.status, answer.json, json.loads(answer.body)) == (200, {"x": "é"}, {"x": "é"})

    client.protocol.send_close(1000, "bye")
    client.flush()
    assert close_code(client.frame()) == (1000, "bye")  # echoed
    endpoint.wait_for_connections(0)


def test_events_are_not_answerable_and_empty_acks_are_empty(
    endpoint: SocketModeServer, client: RawClient
) -> None:
    client.json()
    with ThreadPoolExecutor(1) as pool:
        delivery = pool.submit(endpoint.deliver, "events_api", {"type": "event_callback"})
        envelope = client.json()
        assert envelope["accepts_response_payload"] is False
        assert (envelope["retry_attempt"], envelope["retry_reason"]) == (0, "")
        client.send(
            Frame(Opcode.TEXT, json.dumps({"envelope_id": envelope["envelope_id"]}).encode())
        )
        answer = delivery.result(timeout=5)
    assert (answer.status, answer.body, answer.json, answer.response_action) == (
        200,
        b"",
        None,
        None,
    )


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        (Frame(Opcode.BINARY, b"\x00"), 1003),
        (Frame(Opcode.TEXT, b"\xff\xfe"), 1007),
        (Frame(Opcode.CONT, b"x"), 1002),
        (Frame(Opcode.TEXT, b"x" * (4 * 1024 * 1024 + 1)), 1009),
    ],
)
def test_violations_close_the_connection(
    endpoint: SocketModeServer, client: RawClient, frame: Frame, code: int
) -> None:
    client.json()
    client.send(frame)
    assert close_code(client.frame())[0] == code
    endpoint.wait_for_connections(0)


def test_stray_messages_are_logged_and_ignored(
    endpoint: SocketModeServer, client: RawClient, caplog: pytest.LogCaptureFixture
) -> None:
    client.json()
    client.send(Frame(Opcode.TEXT, b"not json"))
    client.send(Frame(Opcode.TEXT, b'{"envelope_id": "nobody-sent-this"}'))
    wait_for(
        lambda: (
            len([r for r in caplog.records if r.action == "sandbox_socket_mode_stray_message"]) == 2
        ),
        timeout=5,
    )
    assert endpoint.connections == 1


def test_server_pings_and_goes_away_on_stop() -> None:
    server = SocketModeServer(Workspace(), ping_interval=0.01)
    server.start()
    url = server.open_url()
    raw = RawClient(url)
    try:
        raw.json()
        assert raw.frame(skip_pings=False).opcode == Opcode.PING
        with ThreadPoolExecutor(1) as pool:
            stopping = pool.submit(server.stop)
            assert close_code(raw.frame()) == (1001, "sandbox stopped")
            # the protocol answered the close frame; the server then ends the connection
            with pytest.raises(EOFError):
                raw.frame()
            stopping.result(timeout=0.9)  # well inside the grace period
        assert server.connections == 0
        with pytest.raises(ConnectionRefusedError):
            RawClient(url)  # nobody listens any more
    finally:
        raw.close()
        server.stop()


def test_nothing_to_deliver_to_and_no_ack(endpoint: SocketModeServer, client: RawClient) -> None:
    empty = SocketModeServer(Workspace())
    with pytest.raises(AppNotConnected):
        empty.deliver("slash_commands", {}, timeout=0.05)
    client.json()
    with pytest.raises(NotAcknowledged, match="none in 0.05s"):
        endpoint.deliver("slash_commands", {"command": "/runs"}, timeout=0.05)
    client.json()  # the envelope that went unanswered
    with ThreadPoolExecutor(1) as pool:
        delivery = pool.submit(endpoint.deliver, "slash_commands", {}, timeout=5)
        client.json()
        client.close()  # the app goes away instead of acking
        with pytest.raises(NotAcknowledged, match="closed first"):
            delivery.result(timeout=5)


# -- apps.connections.open ---------------------------------------------------------------------


def error_of(call, **kwargs) -> str:
    with pytest.raises(SlackApiError) as failure:
        call(**kwargs)
    return str(failure.value.response["error"])


def test_apps_connections_open_wants_an_app_token(slack_sandbox: SlackSandbox) -> None:
    web = WebClient(base_url=slack_sandbox.api_url)
    url = web.apps_connections_open(app_token="xapp-1-any")["url"]
    assert url.startswith(f"ws://127.0.0.1:{slack_sandbox.socket_mode.port}/link/?ticket=")
    assert error_of(web.apps_connections_open, app_token="xoxb-bot") == "not_allowed_token_type"
    assert error_of(web.apps_connections_open, app_token="xoxp-user") == "invalid_auth"
    assert error_of(web.api_call, api_method="apps.connections.open") == "not_authed"
    app_token_client = WebClient(token="xapp-1-any", base_url=slack_sandbox.api_url)
    assert error_of(app_token_client.auth_test) == "not_allowed_token_type"
    slack_sandbox.fail_next("apps.connections.open", error="ratelimited", status=200)
    assert error_of(web.apps_connections_open, app_token="xapp-1-any") == "ratelimited"
    assert [c.error for c in slack_sandbox.calls("apps.connections.open")] == [
        None, "not_allowed_token_type", "invalid_auth", "not_authed", "ratelimited"
    ]  # fmt: skip


def test_a_fixed_app_token() -> None:
    with SlackSandbox(app_token="xapp-1-right") as sandbox:
        web = WebClient(base_url=sandbox.api_url)
        assert error_of(web.apps_connections_open, app_token="xapp-1-wrong") == "invalid_auth"
        assert web.apps_connections_open(app_token=sandbox.app_token)["ok"]


# -- the driver, with slack_sdk's builtin client -----------------------------------------------


@pytest.fixture
def sdk_client(slack_sandbox: SlackSandbox) -> Iterator[SocketModeClient]:
    client = SocketModeClient(
        app_token=slack_sandbox.app_token,
        web_client=WebClient(base_url=slack_sandbox.api_url),
        auto_reconnect_enabled=False,
    )
    try:
        yield client
    finally:
        client.close()


def test_driver_over_slack_sdks_client(
    slack_sandbox: SlackSandbox, sdk_client: SocketModeClient
) -> None:
    received: list[SocketModeRequest] = []

    def ack(client: SocketModeClient, request: SocketModeRequest) -> None:
        received.append(request)
        payload = {"text": "hi"} if request.type == "slash_commands" else None
        if request.payload.get("type") == "view_submission":
            payload = {"response_action": "errors", "errors": {"reason": "Say more"}}
        client.send_socket_mode_response(SocketModeResponse(request.envelope_id, payload))

    sdk_client.socket_mode_request_listeners.append(ack)
    sdk_client.connect()
    driver = slack_sandbox.socket_driver(timeout=5)

    reply = driver.slash_command("alice", "/runs", "help")
    assert (reply.status, reply.json) == (200, {"text": "hi"})
    assert slack_sandbox.ephemeral("alice")[-1].text == "hi"
    assert received[-1].payload["command"] == "/runs"
    assert received[-1].payload["response_url"].startswith(slack_sandbox.base_url)

    view = {
        "type": "modal",
        "callback_id": "why",
        "title": {"type": "plain_text", "text": "Why"},
        "submit": {"type": "plain_text", "text": "Send"},
        "blocks": [
            {
                "type": "input",
                "block_id": "reason",
                "label": {"type": "plain_text", "text": "Reason"},
                "element": {"type": "plain_text_input", "action_id": "text"},
            }
        ],
    }
    slack_sandbox.client().views_open(trigger_id=slack_sandbox.issue_trigger("bob"), view=view)
    refused = driver.submit("bob", {"reason": "x"})
    assert (refused.response_action, refused.errors, refused.problems) == (
        "errors",
        {"reason": "Say more"},
        (),
    )
    assert slack_sandbox.open_view("bob") is not None
    assert received[-1].accepts_response_payload

    assert driver.open_home("carol").json is None
    assert received[-1].type == "events_api"
    assert received[-1].payload["event"]["type"] == "app_home_opened"


def test_sandbox_stop_tells_the_client() -> None:
    closed: list[tuple[int, str | None]] = []
    with SlackSandbox() as sandbox:
        client = SocketModeClient(
            app_token=sandbox.app_token,
            web_client=WebClient(base_url=sandbox.api_url),
            auto_reconnect_enabled=False,
            on_close_listeners=[lambda code, reason: closed.append((code, reason))],
        )
        client.connect()
        sandbox.socket_mode.wait_for_connections(1)
    try:
        assert wait_for(lambda: closed, timeout=5) == [(1001, "sandbox stopped")]
    finally:
        client.close()
