"""``signoff`` commands as real processes, without paying for their imports each time.

A new ``signoff`` process spends most of a second importing SQLAlchemy, pydantic and
Signoff itself before it does anything, and the CLI tests start hundreds. A fork server
(``CliForks``) imports all that once, in a process of its own with no threads and no open
connections, then forks a child per command. The child is a real process with its own
environment, directory, standard streams and exit status; what it shares with the others
is only what importing left in memory, as ``python -m signoff.bot.cli`` would have it.

Example::

    with CliForks() as forks:
        done = forks.run(["runs", "list"], env=os.environ, cwd=Path.cwd())
        print(done.returncode, done.stdout)
"""

from __future__ import annotations

import importlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

#: what a command imports on its way (the parts its modules import lazily included)
PRELOAD = (
    "signoff.bot.cli.main",
    "signoff.bot.cli.audit",
    "signoff.bot.cli.db",
    "signoff.bot.cli.runs",
    "signoff.bot.cli.wait",
    "signoff.engine.runtime",
    "signoff.engine.dispatch",
    "signoff.engine.store.sql",
    "signoff.bot.backends.prefect.backend",
    "sqlalchemy.dialects.sqlite.pysqlite",
    "sqlalchemy.dialects.postgresql.psycopg",
    "psycopg",
    "alembic.command",
)


class CliForks:
    """A fork server for ``signoff`` commands; ``run`` is ``subprocess.run`` for them."""

    def __init__(self) -> None:
        self._folder = tempfile.TemporaryDirectory(prefix="signoff-forks-")
        self.address = str(Path(self._folder.name) / "forks.sock")
        self._server: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def __enter__(self) -> CliForks:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _started(self) -> None:
        with self._lock:
            if self._server is not None and self._server.poll() is None:
                return
            ready_r, ready_w = os.pipe()
            self._server = subprocess.Popen(
                [sys.executable, __file__, self.address, str(ready_w)],
                pass_fds=(ready_w,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
            os.close(ready_w)
            with os.fdopen(ready_r, "rb") as ready:
                if ready.read(1) != b"1":
                    raise RuntimeError("the signoff fork server did not start (see stderr)")

    def run(
        self, args: Sequence[str], *, env: Mapping[str, str], cwd: Path, timeout: float = 180
    ) -> subprocess.CompletedProcess[str]:
        """``signoff ARGS`` in a forked child with ``env`` and ``cwd``; its status (``-N``
        when signal N ended it), standard output and standard error."""
        self._started()
        request = json.dumps({"args": list(args), "env": dict(env), "cwd": str(cwd)}).encode()
        with (
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
            socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as conn,
        ):
            conn.settimeout(timeout)
            conn.connect(self.address)
            socket.send_fds(
                conn, [len(request).to_bytes(8, "big") + request], [out.fileno(), err.fileno()]
            )
            reply = b""
            while chunk := conn.recv(64):
                reply += chunk
            out.seek(0)
            err.seek(0)
            status = int(reply) if reply.strip() else -signal.SIGKILL
            return subprocess.CompletedProcess(
                ["signoff", *args],
                status,
                out.read().decode(errors="replace"),
                err.read().decode(errors="replace"),
            )

    def close(self) -> None:
        """Stop the fork server; commands still running go on to their end."""
        server, self._server = self._server, None
        if server is not None:
            server.terminate()
            server.wait(10)
        self._folder.cleanup()


# -- the fork server's side ------------------------------------------------------------------


def _serve(address: str, ready_fd: int) -> None:
    for name in PRELOAD:
        importlib.import_module(name)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(address)
    listener.listen(64)
    # Children are reaped by the kernel: each reports its own status on its connection.
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    while True:
        conn, _ = listener.accept()
        message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 2)
        size = int.from_bytes(message[:8], "big")
        message = message[8:]
        while len(message) < size:
            message += conn.recv(size - len(message))
        if os.fork() == 0:
            listener.close()
            _child(conn, json.loads(message), fds)
        conn.close()
        for fd in fds:
            os.close(fd)


def _child(conn: socket.socket, request: dict[str, Any], fds: list[int]) -> None:
    """Become ``python -m signoff.bot.cli ARGS`` and report the exit status on ``conn``."""
    status = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)  # its own children are waited for
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(fds[0], 1)
        os.dup2(fds[1], 2)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        sys.path[0] = request["cwd"]  # as `python -m` puts the working directory first
        sys.argv = ["signoff", *request["args"]]
        from signoff.bot.cli.main import main

        try:
            status = main(request["args"])
        except SystemExit as exc:
            status = exc.code if isinstance(exc.code, int) else 1
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
            conn.sendall(str(status).encode())
        finally:
            os._exit(status & 0xFF)


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
