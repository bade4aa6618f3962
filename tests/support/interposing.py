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
    #: the server answers and close the connection; "cut": close every connection and stop
    #: listening before it reaches the server
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
            try:
                server = socket.create_connection(self.to)
            except OSError:
                _close(client)
                continue
            with self._lock:
                self._opened.extend((client, server))
            losing = threading.Event()
            threading.Thread(
                target=self._upstream, args=(client, server, losing), daemon=True
            ).start()
            threading.Thread(
                target=self._downstream, args=(server, client, losing), daemon=True
            ).start()

    def _upstream(
        self, client: socket.socket, server: socket.socket, losing: threading.Event
    ) -> None:
        try:
            while data := client.recv(65536):
                rule = self._matching(data)
                if rule is not None:
                    rule.seen.set()
                    if rule.kind == "cut":
                        self.stop()
                        return
                    if rule.kind == "hold":
                        rule.release.wait()
                    elif rule.kind == "lose_response":
                        losing.set()
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)

    def _downstream(
        self, server: socket.socket, client: socket.socket, losing: threading.Event
    ) -> None:
        try:
            while data := server.recv(65536):
                if losing.is_set():
                    break  # the server handled the request: its answer never arrives
                client.sendall(data)
        except OSError:
            pass
        finally:
            _close(client)
            _close(server)


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
