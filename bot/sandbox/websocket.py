"""RFC 6455 WebSockets, server side, with the standard library only.

Just what the sandbox's Socket Mode endpoint needs: the ``Sec-WebSocket-Accept`` key of the
opening handshake (§4.2.2), frames (§5.2) and one connection that reassembles text messages,
answers pings and closes (§5.5, §7). No extensions, no binary messages.

Clients mask every frame they send and servers never mask theirs (§5.1); :func:`read_frame`
enforces the first, :func:`encode_frame` masks only when asked to (tests that act as a client).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import logging
import socket
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass

__all__ = [
    "BINARY",
    "CLOSE",
    "CONTINUATION",
    "PING",
    "PONG",
    "TEXT",
    "ConnectionLost",
    "Frame",
    "ProtocolViolation",
    "WebSocket",
    "accept_key",
    "close_payload",
    "encode_frame",
    "read_frame",
]

logger = logging.getLogger(__name__)

CONTINUATION, TEXT, BINARY = 0x0, 0x1, 0x2
CLOSE, PING, PONG = 0x8, 0x9, 0xA
_OPCODES = {CONTINUATION, TEXT, BINARY, CLOSE, PING, PONG}

#: Close codes (RFC 6455 §7.4.1).
NORMAL, GOING_AWAY, PROTOCOL_ERROR, UNSUPPORTED_DATA = 1000, 1001, 1002, 1003
NO_STATUS, ABNORMAL, INVALID_DATA, TOO_BIG = 1005, 1006, 1007, 1009

_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#: Socket Mode envelopes are JSON of at most a few hundred KB; refuse anything absurd.
MAX_MESSAGE = 4 * 1024 * 1024


class ProtocolViolation(Exception):
    """The peer broke RFC 6455; ``code`` is the close code to answer with."""

    def __init__(self, message: str, code: int = PROTOCOL_ERROR) -> None:
        super().__init__(message)
        self.code = code


class ConnectionLost(Exception):
    """The TCP stream ended in the middle of (or before) a frame."""


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a client's ``Sec-WebSocket-Key``.

    Example:
        >>> accept_key("dGhlIHNhbXBsZSBub25jZQ==")
        's3pPLMBiTxaQ9kYGzzhZRbK+xOo='
    """
    digest = hashlib.sha1((key.strip() + _GUID).encode("ascii")).digest()
    return base64.b64encode(digest).decode("ascii")


@dataclass(frozen=True)
class Frame:
    """One frame: its opcode, unmasked payload, and whether it ends a message."""

    opcode: int
    payload: bytes = b""
    fin: bool = True


def _xor(payload: bytes, key: bytes) -> bytes:
    # One big-integer XOR instead of a Python loop per byte: envelopes run to tens of KB.
    size = len(payload)
    if not size:
        return b""
    stream = (key * (size // 4 + 1))[:size]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(stream, "big")).to_bytes(size, "big")


def encode_frame(
    opcode: int, payload: bytes = b"", *, fin: bool = True, mask: bytes | None = None
) -> bytes:
    """One frame on the wire; ``mask`` (4 bytes) masks it as a client must.

    Example:
        >>> encode_frame(TEXT, b"hi")
        b'\\x81\\x02hi'
    """
    first = (0x80 if fin else 0) | opcode
    mask_bit = 0x80 if mask is not None else 0
    size = len(payload)
    if size <= 125:
        header = struct.pack("!BB", first, mask_bit | size)
    elif size <= 0xFFFF:
        header = struct.pack("!BBH", first, mask_bit | 126, size)
    else:
        header = struct.pack("!BBQ", first, mask_bit | 127, size)
    if mask is None:
        return header + payload
    if len(mask) != 4:
        raise ValueError("a masking key is 4 bytes")
    return header + mask + _xor(payload, mask)


def _exactly(read: Callable[[int], bytes], size: int) -> bytes:
    data = read(size) if size else b""
    if len(data) < size:
        raise ConnectionLost(f"stream ended after {len(data)} of {size} bytes")
    return data


def read_frame(
    read: Callable[[int], bytes], *, masked: bool = True, max_size: int = MAX_MESSAGE
) -> Frame:
    """Read one frame with ``read(n)`` (which returns fewer bytes only at the end of the stream).

    Args:
        read: E.g. a buffered socket file's ``read``.
        masked: Whether frames must be masked (true for frames from a client).
        max_size: Largest payload accepted.

    Raises:
        ProtocolViolation: The frame breaks RFC 6455 (or is larger than ``max_size``).
        ConnectionLost: The stream ended before the frame did.
    """
    first, second = _exactly(read, 2)
    fin, opcode = bool(first & 0x80), first & 0x0F
    if first & 0x70:
        raise ProtocolViolation("reserved bits set but no extension was negotiated")
    if opcode not in _OPCODES:
        raise ProtocolViolation(f"unknown opcode {opcode:#x}")
    size = second & 0x7F
    if size == 126:
        (size,) = struct.unpack("!H", _exactly(read, 2))
    elif size == 127:
        (size,) = struct.unpack("!Q", _exactly(read, 8))
    if bool(second & 0x80) != masked:
        raise ProtocolViolation("client frames must be masked" if masked else "unexpected mask")
    if opcode >= CLOSE and (size > 125 or not fin):
        raise ProtocolViolation("control frames are unfragmented and at most 125 bytes")
    if size > max_size:
        raise ProtocolViolation(f"frame of {size} bytes is too big", TOO_BIG)
    key = _exactly(read, 4) if masked else b""
    payload = _exactly(read, size)
    return Frame(opcode, _xor(payload, key) if masked else payload, fin)


def close_payload(code: int, reason: str = "") -> bytes:
    """The body of a close frame: the code, then a UTF-8 reason."""
    return struct.pack("!H", code) + reason.encode("utf-8")[:123]


class WebSocket:
    """The server side of one connection, after the opening handshake.

    ``receive`` runs on one thread (the connection's); ``send_text``, ``ping``, ``close`` and
    ``abort`` may be called from any thread.

    Closing follows §7.1: the side that closes sends a close frame and stops sending, the other
    answers with one, and the server drops the TCP connection last. slack_sdk's client answers
    a close frame by dropping the connection instead, which ends ``receive`` just the same.

    Args:
        read: Reads from the connection (the same buffered file the handshake was read from,
            so no byte the client sent early is lost).
        sock: The connection's socket, for writing and for waking a blocked reader.
        max_size: Largest message accepted.
    """

    def __init__(
        self, read: Callable[[int], bytes], sock: socket.socket, *, max_size: int = MAX_MESSAGE
    ) -> None:
        self._read = read
        self._sock = sock
        self._max_size = max_size
        self._send_lock = threading.Lock()
        self._closing = False
        self.close_code: int | None = None
        self.close_reason = ""

    @property
    def open(self) -> bool:
        """Neither side has started closing, and the stream has not ended."""
        return not self._closing and self.close_code is None

    def _send(self, frame: bytes) -> bool:
        with self._send_lock:
            if self._closing:
                return False
            try:
                self._sock.sendall(frame)
            except OSError:
                # The peer went away; the reader thread sees the end of the stream and finishes.
                self._closing = True
                return False
        return True

    def send_text(self, text: str) -> bool:
        """Send a text message; False when the connection is closing or gone."""
        return self._send(encode_frame(TEXT, text.encode("utf-8")))

    def ping(self, payload: bytes = b"") -> bool:
        """Send a ping; the client answers with a pong carrying the same payload."""
        return self._send(encode_frame(PING, payload[:125]))

    def close(self, code: int = NORMAL, reason: str = "") -> None:
        """Start the closing handshake: a close frame, then nothing more from this side.

        ``receive`` goes on reading (and dropping) what the client still sends until its
        close frame or the end of the stream; :meth:`abort` cuts that short.
        """
        self._send(encode_frame(CLOSE, close_payload(code, reason)))
        self._settle(code)
        # Half-close: the client still gets everything sent so far, then the end of the stream.
        with contextlib.suppress(OSError):
            self._sock.shutdown(socket.SHUT_WR)

    def abort(self) -> None:
        """Drop the connection at once, waking ``receive``."""
        self._settle(ABNORMAL)
        with contextlib.suppress(OSError):  # already disconnected
            self._sock.shutdown(socket.SHUT_RDWR)

    def _settle(self, code: int) -> None:
        """Stop sending; the first code set is the one the connection closed with."""
        with self._send_lock:
            self._closing = True
            if self.close_code is None:
                self.close_code = code

    def receive(self) -> str | None:
        """The next text message, or None once the connection is over.

        Pings are answered and pongs dropped on the way. A close frame from the client is
        echoed (§5.5.1); a protocol violation is answered with a close frame carrying its code.
        """
        parts: list[bytes] = []
        while True:
            try:
                frame = read_frame(self._read, max_size=self._max_size)
            except ProtocolViolation as violation:
                logger.debug(
                    "closing: %s", violation, extra={"action": "sandbox_websocket_violation"}
                )
                self.close(violation.code, str(violation))
                return None
            except (ConnectionLost, OSError):
                self._settle(ABNORMAL)  # keeps the code of a close already under way
                return None
            if frame.opcode == CLOSE:
                self._answer_close(frame.payload)
                return None
            if self._closing:
                continue  # what the client sent before it saw our close frame
            try:
                message = self._handle(frame, parts)
            except ProtocolViolation as violation:
                self.close(violation.code, str(violation))
                return None
            if message is not None:
                return message

    def _answer_close(self, payload: bytes) -> None:
        code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else NO_STATUS
        self.close_reason = payload[2:].decode("utf-8", "replace")
        self._send(encode_frame(CLOSE, payload[:2]))  # skipped when we closed first
        self._settle(code)

    def _handle(self, frame: Frame, parts: list[bytes]) -> str | None:
        """React to one data or ping frame; the text once a message's last fragment arrived."""
        if frame.opcode == PING:
            self._send(encode_frame(PONG, frame.payload))
            return None
        if frame.opcode == PONG:
            return None
        if frame.opcode == BINARY:
            raise ProtocolViolation("Socket Mode speaks text", UNSUPPORTED_DATA)
        if (frame.opcode == CONTINUATION) != bool(parts):
            raise ProtocolViolation("continuation without a start" if not parts else "unfinished")
        parts.append(frame.payload)
        if sum(map(len, parts)) > self._max_size:
            raise ProtocolViolation("message too big", TOO_BIG)
        if not frame.fin:
            return None
        data = b"".join(parts)
        parts.clear()
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            raise ProtocolViolation("text is not UTF-8", INVALID_DATA) from None
