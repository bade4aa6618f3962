"""A TCP port that forwards to another (a database server) once opened: what a client
meets when the server behind an address is down (connection refused), then back."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def free_port() -> int:
    """A port nothing listens on now (the kernel picked it; closed again at once)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        for end in (source, target):
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@contextmanager
def forwarding(port: int, to: tuple[str, int]) -> Iterator[None]:
    """Listen on 127.0.0.1:``port`` and forward each connection to ``to`` until the block
    ends."""
    listener = socket.create_server(("127.0.0.1", port))
    listener.settimeout(0.2)  # so that accept() sees the block end
    stopped = threading.Event()
    opened: list[socket.socket] = []

    def accept() -> None:
        while not stopped.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            client.settimeout(None)
            server = socket.create_connection(to)
            opened.extend((client, server))
            for source, target in ((client, server), (server, client)):
                threading.Thread(target=_pipe, args=(source, target), daemon=True).start()

    thread = threading.Thread(target=accept, name="forwarding", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stopped.set()
        thread.join(5)
        listener.close()
        for end in opened:
            # Shut down first: a close alone leaves the socket open while a pipe's thread
            # is blocked reading it, and the client's query then hangs, as on a network
            # that drops packets, not a server that went down.
            try:
                end.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            end.close()
