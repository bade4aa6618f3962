"""Socket Mode in the sandbox: RFC 6455 framing, the WebSocket endpoint, and the driver over it.

Framing is checked against slack_sdk's own client-side frame code in both directions; the
endpoint with a hand-written client (so every byte is under the test's control); the driver
with slack_sdk's builtin ``SocketModeClient``, which is what Bolt's ``SocketModeHandler`` uses.
"""

from __future__ import annotations

import io
import json
import logging
import os
import socket
import struct
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.socket_mode.builtin import SocketModeClient
from slack_sdk.socket_mode.builtin.internals import (
    _build_data_frame_for_sending,
    _fetch_messages,
)
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.sandbox import AppNotConnected, NotAcknowledged, SlackSandbox
from bot.sandbox.socket_mode import SocketModeServer
from bot.sandbox.websocket import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    ConnectionLost,
    Frame,
    ProtocolViolation,
    accept_key,
    encode_frame,
    read_frame,
)
from bot.sandbox.workspace import Workspace
from tests.support.waiting import wait_for

# -- framing -----------------------------------------------------------------------------------


def reader(data: bytes):
    return io.BytesIO(data).read


def test_accept_key_matches_rfc_6455_example() -> None:
    assert accept_key("dGhlIHNhbXBsZSBub25jZQ==") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="


@pytest.mark.parametrize("size", [0, 1, 125, 126, 65535, 65536, 200_000])
def test_frames_round_trip_at_every_length_encoding(size: int) -> None:
    payload = os.urandom(size)
    masked = encode_frame(BINARY, payload, mask=b"\x01\x02\x03\x04")
    assert read_frame(reader(masked)) == Frame(BINARY, payload)
    plain = encode_frame(TEXT, payload, fin=False)
    assert read_frame(reader(plain), masked=False) == Frame(TEXT, payload, fin=False)
    header = 2 if size <= 125 else 4 if size <= 65535 else 10
    assert len(plain) == header + size and len(masked) == header + 4 + size


@pytest.mark.parametrize("text", ["", "ack", "é" * 70, "x" * 70_000])
def test_frames_interoperate_with_slack_sdk(text: str) -> None:
    # What slack_sdk's client sends (masked) is what the server reads ...
    if len(text.encode()) <= 65535:  # slack_sdk cannot send longer frames
        sent = _build_data_frame_for_sending(text, TEXT)
        assert read_frame(reader(sent)) == Frame(TEXT, text.encode())
    # ... and what the server sends (unmasked) is what slack_sdk's client parses.
    data = encode_frame(TEXT, text.encode()) + encode_frame(PING, b"p")
    stream = io.BytesIO(data)
    messages = _fetch_messages(
        messages=[], receive=lambda size=None: stream.read(size or 1024), logger=logging.getLogger()
    )
    parsed = [(h.opcode, d) for h, d in messages if h is not None]
    assert parsed == [(TEXT, text.encode()), (PING, b"p")]


def test_violations_and_truncation() -> None:
    mask = b"abcd"
    with pytest.raises(ProtocolViolation, match="must be masked"):
        read_frame(reader(encode_frame(TEXT, b"hi")))
    with pytest.raises(ProtocolViolation, match="unexpected mask"):
        read_frame(reader(encode_frame(TEXT, b"hi", mask=mask)), masked=False)
    with pytest.raises(ProtocolViolation, match="control frames"):
        read_frame(reader(encode_frame(PING, b"x" * 126, mask=mask)))
    with pytest.raises(ProtocolViolation, match="control frames"):
        read_frame(reader(encode_frame(CLOSE, b"", fin=False, mask=mask)))
    with pytest.raises(ProtocolViolation, match="reserved bits"):
        read_frame(reader(b"\xc1\x80" + mask))
    with pytest.raises(ProtocolViolation, match="unknown opcode"):
        read_frame(reader(b"\x83\x80" + mask))
    with pytest.raises(ProtocolViolation) as too_big:
        read_frame(reader(encode_frame(TEXT, b"x" * 11, mask=mask)), max_size=10)
    assert too_big.value.code == 1009
    with pytest.raises(ConnectionLost):
        read_frame(reader(encode_frame(TEXT, b"hello", mask=mask)[:-1]))
    with pytest.raises(ConnectionLost):
        read_frame(reader(b""))
    with pytest.raises(ValueError, match="4 bytes"):
        encode_frame(TEXT, b"x", mask=b"ab")


# -- the endpoint, with a hand-written client --------------------------------------------------


class RawClient:
    """A WebSocket client written out by hand: handshake, masked frames, and reading frames."""

    def __init__(self, url: str, *, key: str = "dGhlIHNhbXBsZSBub25jZQ==", **headers: str) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=5)
        self.file = self.sock.makefile("rb")
        sent = {
            "Host": f"{parts.hostname}:{parts.port}",
            "Upgrade": "websocket",
            "Connection": "keep-alive, Upgrade",
            "Sec-WebSocket-Key": key,
            "Sec-WebSocket-Version": "13",
            **{k.replace("_", "-"): v for k, v in headers.items()},
        }
        lines = [f"GET {parts.path}?{parts.query} HTTP/1.1"]
        lines += [f"{k}: {v}" for k, v in sent.items() if v]
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        self.status = int(self.file.readline().split()[1])
        self.headers: dict[str, str] = {}
        while (line := self.file.readline().strip()) != b"":
            name, _, value = line.decode().partition(":")
            self.headers[name.strip().lower()] = value.strip()

    def send(self, opcode: int, payload: bytes = b"", *, fin: bool = True) -> None:
        self.sock.sendall(encode_frame(opcode, payload, fin=fin, mask=os.urandom(4)))

    def frame(self, *, skip_pings: bool = True) -> Frame:
        while True:
            frame = read_frame(self.file.read, masked=False)
            if not (skip_pings and frame.opcode == PING):
                return frame

    def json(self) -> dict:
        frame = self.frame()
        assert frame.opcode == TEXT, frame
        return json.loads(frame.payload)

    def close(self) -> None:
        self.file.close()
        self.sock.close()


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
    assert client.headers["upgrade"] == "websocket"
    assert client.headers["sec-websocket-accept"] == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    hello = client.json()
    assert hello["type"] == "hello" and hello["num_connections"] == 1
    assert hello["connection_info"] == {"app_id": "A0SIGNOFF"}
    assert endpoint.connections == 1


@pytest.mark.parametrize(
    ("change", "status"),
    [
        ({"path": "/elsewhere/"}, 404),
        ({"ticket": "forged"}, 401),
        ({"Upgrade": ""}, 400),
        ({"Sec_WebSocket_Version": "8"}, 426),
        ({"key": "dG9vIHNob3J0"}, 400),
    ],
)
def test_bad_handshakes_are_refused(endpoint: SocketModeServer, change: dict, status: int) -> None:
    url = endpoint.open_url()
    if "path" in change:
        url = url.replace("/link/", change.pop("path"))
    if "ticket" in change:
        url = url.split("?")[0] + "?ticket=" + change.pop("ticket")
    raw = RawClient(url, **change)
    try:
        assert raw.status == status
        if status == 426:
            assert raw.headers["sec-websocket-version"] == "13"
    finally:
        raw.close()
    assert endpoint.connections == 0


def test_pings_fragments_acks_and_close(endpoint: SocketModeServer, client: RawClient) -> None:
    client.json()  # hello
    client.send(PING, b"session:1.5")
    assert client.frame() == Frame(PONG, b"session:1.5")

    with ThreadPoolExecutor(1) as pool:
        delivery = pool.submit(endpoint.deliver, "interactive", {"type": "view_submission"})
        envelope = client.json()
        assert envelope["type"] == "interactive" and envelope["accepts_response_payload"]
        assert envelope["payload"] == {"type": "view_submission"}
        ack = json.dumps({"envelope_id": envelope["envelope_id"], "payload": {"x": "é"}}).encode()
        client.send(TEXT, ack[:10], fin=False)  # fragmented, with a ping in between (§5.4)
        client.send(PING, b"mid")
        client.send(CONTINUATION, ack[10:])
        assert client.frame() == Frame(PONG, b"mid")
        answer = delivery.result(timeout=5)
    assert (answer.status, answer.json, json.loads(answer.body)) == (200, {"x": "é"}, {"x": "é"})

    client.send(CLOSE, struct.pack("!H", 1000) + b"bye")
    assert client.frame() == Frame(CLOSE, struct.pack("!H", 1000))
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
        client.send(TEXT, json.dumps({"envelope_id": envelope["envelope_id"]}).encode())
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
        (encode_frame(BINARY, b"\x00", mask=b"abcd"), 1003),
        (encode_frame(TEXT, b"\xff\xfe", mask=b"abcd"), 1007),
        (encode_frame(CONTINUATION, b"x", mask=b"abcd"), 1002),
        (encode_frame(TEXT, b"unmasked"), 1002),
    ],
)
def test_violations_close_the_connection(
    endpoint: SocketModeServer, client: RawClient, frame: bytes, code: int
) -> None:
    client.json()
    client.sock.sendall(frame)
    closing = client.frame()
    assert closing.opcode == CLOSE and struct.unpack("!H", closing.payload[:2])[0] == code
    endpoint.wait_for_connections(0)


def test_server_pings_and_goes_away_on_stop() -> None:
    server = SocketModeServer(Workspace(), ping_interval=0.01)
    server.start()
    raw = RawClient(server.open_url())
    try:
        raw.json()
        assert raw.frame(skip_pings=False) == Frame(PING, b"sandbox")
        with ThreadPoolExecutor(1) as pool:
            stopping = pool.submit(server.stop)
            frame = raw.frame()
            assert frame.opcode == CLOSE and struct.unpack("!H", frame.payload[:2])[0] == 1001
            assert raw.file.read(1) == b""  # the server sends nothing after its close frame
            raw.close()  # the client's part of the closing handshake
            stopping.result(timeout=0.5)  # well inside the grace period
        assert server.connections == 0
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
