"""Wake-up signals between the processes that share one SQLite file.

PostgreSQL has LISTEN/NOTIFY; SQLite has nothing of the kind, and polling it often enough
for a prompt cross-process resume keeps an idle process busy. So every process that reads
events binds a Unix datagram socket in a folder named after the database file, and a
writer that committed events sends one byte to each socket there. A datagram is a hint
("read the events table"), never the data: a lost one costs only the slow safety poll.
Sockets left by a killed process refuse datagrams and are removed by the next sender, or
by the last process to leave, which removes the folder too.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import socket
import tempfile
import threading
import uuid
from pathlib import Path

logger = logging.getLogger(__name__)

#: a wake-up: new events, which may wait for the reader's next paced read
_PING = b"\x01"
#: a wake-up for events a waiting flow needs at once (an answer, a cancellation)
PROMPT_SIGNAL = b"\x02"


def _folder(database: str) -> Path:
    # Unix socket paths are short (about 100 bytes): name the folder by a hash of the file.
    digest = hashlib.sha256(str(Path(database).expanduser().resolve()).encode()).hexdigest()
    user = getattr(os, "getuid", lambda: 0)()
    return Path(tempfile.gettempdir()) / f"signoff-{user}-{digest[:20]}"


def _wake(sender: socket.socket, path: str, signal: bytes) -> bool:
    """Send ``signal`` to the socket at ``path`` (``sender`` does not block); False if
    nobody reads it any more (its process died without cleaning up), and it was removed."""
    try:
        sender.sendto(signal, path)
    except BlockingIOError:
        pass  # its queue is full of wake-ups already
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.ENOENT):
            with contextlib.suppress(OSError):
                os.unlink(path)
            return False
    return True


class LocalWakeups:
    """Send and receive "new events" hints among processes using one SQLite file.

    Example::

        wakeups = LocalWakeups("/var/lib/signoff/runs.db")
        inbox = wakeups.listen()     # a socket to block on
        wakeups.send()               # after committing events
    """

    def __init__(self, database: str) -> None:
        self.folder = _folder(database)
        self._folder_path = str(self.folder)
        self._sender: socket.socket | None = None
        self._inbox: socket.socket | None = None
        self._inbox_path: str | None = None
        self._peers: list[str] = []
        self._seen_mtime: int | None = None
        self._lock = threading.Lock()

    @staticmethod
    def supported() -> bool:
        return hasattr(socket, "AF_UNIX")

    def listen(self) -> socket.socket | None:
        """Bind this process's socket; None (poll instead) if that is not possible here."""
        if not self.supported():
            return None
        path = str(self.folder / f"{os.getpid()}-{uuid.uuid4().hex[:8]}")
        inbox: socket.socket | None = None
        try:
            inbox = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            try:
                self.folder.mkdir(mode=0o700, exist_ok=True)
                inbox.bind(path)
            except FileNotFoundError:
                # The last process to leave removed the folder just after we made sure of
                # it (``close``): make it again.
                self.folder.mkdir(mode=0o700, exist_ok=True)
                inbox.bind(path)
        except OSError as exc:
            if inbox is not None:
                inbox.close()
            logger.warning(
                "no local wake-ups; other processes' events are found by polling",
                extra={"action": "wakeups_unavailable", "error": str(exc)},
            )
            return None
        self._inbox, self._inbox_path = inbox, path
        return inbox

    def send(self, *, prompt: bool = False) -> None:
        """Wake every other listening process; cheap, never blocks, never raises. With
        ``prompt``, the events wake a waiting flow: readers should not pace their read."""
        signal = PROMPT_SIGNAL if prompt else _PING
        if not self.supported():
            return
        with self._lock:
            try:
                peers = self._current_peers()
                if self._sender is None:
                    self._sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._sender.setblocking(False)
            except OSError:
                return
            for path in peers:
                if not _wake(self._sender, path, signal):
                    self._seen_mtime = None

    def wake_self(self) -> None:
        """Wake this process's own listener (so that it notices it should stop, at once)."""
        if self._inbox_path is None:
            return
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(_PING, self._inbox_path)

    def _current_peers(self) -> list[str]:
        # The folder changes only when a process comes or goes: list it only then.
        mtime = os.stat(self._folder_path).st_mtime_ns  # os.stat: a commit's hot path
        if mtime != self._seen_mtime:
            self._peers = [
                str(entry) for entry in self.folder.iterdir() if str(entry) != self._inbox_path
            ]
            self._seen_mtime = mtime
        return self._peers

    def _remove_dead_sockets(self) -> None:
        """Remove the sockets of processes killed before they could (``kill -9``), then
        the folder if that emptied it. A live process's socket takes the byte as a hint."""
        with contextlib.suppress(OSError):
            entries = list(self.folder.iterdir())
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as probe:
                probe.setblocking(False)
                for entry in entries:
                    _wake(probe, str(entry), _PING)
            os.rmdir(self._folder_path)

    def close(self) -> None:
        with self._lock:
            for sock in (self._inbox, self._sender):
                if sock is not None:
                    sock.close()
            if self._inbox_path is not None:
                with contextlib.suppress(OSError):
                    os.unlink(self._inbox_path)
                # The last process to leave removes the folder (rmdir fails while it holds
                # another's socket), so that every database used once does not leave one.
                try:
                    os.rmdir(self._folder_path)
                except OSError:
                    self._remove_dead_sockets()
            self._inbox = self._sender = None
            self._inbox_path = None


__all__ = ["PROMPT_SIGNAL", "LocalWakeups"]
