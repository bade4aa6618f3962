"""A TCP forwarder that can hold, or cut, one HTTP request at the moment it is sent.

What a client meets when the network fails under one particular call: the request held
(the server slow to get it), its response lost after the server handled it, or the
server gone the moment the request leaves. Requests are matched by their request line
(``rb"POST /api/flow_runs/[^ ]+/resume "``), as they cross the forwarder.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field


@dataclass
class Rule:
    """What to do to the next request whose request line matches ``pattern``."""

    pattern: bytes
    #: "hold": forward it once ``release`` is set; "lose_response": forward it, drop what
    #: the server answers once it handled it and close the connection (a 503, the server
    #: too busy to do anything, goes through: the client's retry is the one lost); "cut":
    #: close every connection and stop listening before it reaches the server
    kind: str
    #: set when the request reached the forwarder
    seen: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)


class Interposer:
    """Listens on 127.0.0.1:``port`` and forwards each connection to ``to``."""

    def __init__(self, port: int, to: tuple[str, int]) -> None:
        self.port, self.to = port, to
        self._rules: list[Rule] = []
        self._lock = threading.Lock()
        self._opened: list[socket.socket] = []
        self._stopped = threading.Event()
        self._listener = socket.create_server(("127.0.0.1", port))
        self._listener.settimeout(0.2)  # so that accept() sees the stop
        self._thread = threading.Thread(target=self._accept, name="interposer", daemon=True)
        self._thread.start()

    def next_request(self, pattern: bytes, kind: str) -> Rule:
        """Do ``kind`` to the next request matching ``pattern`` (once)."""
        rule = Rule(pattern, kind)
        with self._lock:
            self._rules.append(rule)
        return rule

    def stop(self) -> None:
        """Stop listening and close every connection: the port refuses from now on."""
        self._stopped.set()
        self._listener.close()
        with self._lock:
            opened, self._opened = self._opened, []
        for end in opened:
            _close(end)
        for rule in self._rules:
            rule.release.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(5)

    def _matching(self, data: bytes) -> Rule | None:
        with self._lock:
            for rule in self._rules:
                if re.search(rule.pattern, data):
                    self._rules.remove(rule)
                    return rule
        return None

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            with self._lock:
                self._opened.append(client)
            threading.Thread(target=_Link(self, client).upstream, daemon=True).start()

    def rearm(self, rule: Rule) -> None:
        """Apply ``rule`` to the next matching request again."""
        with self._lock:
            self._rules.insert(0, rule)

    def connect(self) -> socket.socket:
        server = socket.create_connection(self.to)
        with self._lock:
            self._opened.append(server)
        return server


class _Link:
    """One client connection, and the server connection its requests go down. The server
    connection is opened at the first request, and again for a held one: the server closes
    a connection left idle for long (5 s for Prefect's), as one held would be."""

    def __init__(self, interposer: Interposer, client: socket.socket) -> None:
        self.interposer, self.client = interposer, client
        self.server: socket.socket | None = None
        #: the "lose_response" rule whose request went down this connection last
        self.losing: Rule | None = None

    def upstream(self) -> None:
        try:
            while data := self.client.recv(65536):
                rule = self.interposer._matching(data)
                if rule is not None:
                    rule.seen.set()
                    if rule.kind == "cut":
                        self.interposer.stop()
                        return
                    if rule.kind == "hold":
                        # Between two requests nothing is lost; left idle, the server
                        # would close it, and the client would see that.
                        self._drop_server()
                        rule.release.wait()
                    elif rule.kind == "lose_response":
                        self.losing = rule
                if self.server is None:
                    self.server = self.interposer.connect()
                    threading.Thread(
                        target=self.downstream, args=(self.server,), daemon=True
                    ).start()
                self.server.sendall(data)
        except OSError:
            pass
        finally:
            _close(self.client)
            self._drop_server()

    def _drop_server(self) -> None:
        server, self.server = self.server, None
        if server is not None:
            _close(server)

    def downstream(self, server: socket.socket) -> None:
        try:
            while data := server.recv(65536):
                rule, self.losing = self.losing, None
                if rule is not None and data.startswith(_BUSY):
                    # Nothing was done (Prefect's SQLite was busy) and the client asks again:
                    # lost, this one read as a resume that never took effect.
                    self.interposer.rearm(rule)
                elif rule is not None:
                    break  # the server handled the request: its answer never arrives
                self.client.sendall(data)
        except OSError:
            pass
        finally:
            if self.server is server:  # not one dropped for a held request's fresh one
                _close(self.client)
            _close(server)


#: a response that says the server did nothing and may be asked again
_BUSY = b"HTTP/1.1 503 "


def _close(end: socket.socket) -> None:
    try:
        end.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass
    end.close()


@contextmanager
def interposing(port: int, to: tuple[str, int]) -> Iterator[Interposer]:
    """An ``Interposer`` on ``port`` until the block ends."""
    interposer = Interposer(port, to)
    try:
        yield interposer
    finally:
        interposer.stop()
