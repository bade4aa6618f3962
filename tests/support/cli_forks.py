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

import contextlib
import importlib
import io
import json
import os
import select
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
    "signoff.bot.demo.command",
)


class ForkedProcess:
    """A command forked by ``CliForks.start``: the parts of ``subprocess.Popen`` the tests
    use. Its status comes from the fork server, which waits for it."""

    def __init__(self, pid: int, conn: socket.socket, args: list[str]) -> None:
        self.pid, self.args = pid, args
        self.returncode: int | None = None
        self._conn = conn

    def poll(self) -> int | None:
        """Its status if it has ended (``-N``: signal N ended it), else None."""
        if self.returncode is None and select.select([self._conn], [], [], 0)[0]:
            self._read_status()
        return self.returncode

    def wait(self, timeout: float | None = None) -> int:
        """Its status, once it ends.

        Raises:
            subprocess.TimeoutExpired: it still runs after ``timeout`` seconds.
        """
        if self.returncode is None:
            if not select.select([self._conn], [], [], timeout)[0]:
                raise subprocess.TimeoutExpired(self.args, timeout or 0)
            self._read_status()
        assert self.returncode is not None
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            os.kill(self.pid, sig)

    def terminate(self) -> None:
        self.send_signal(signal.SIGTERM)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def _read_status(self) -> None:
        reply = b""
        while not reply.endswith(b"\n"):
            chunk = self._conn.recv(64)
            if not chunk:
                raise RuntimeError(f"the fork server lost track of process {self.pid}")
            reply += chunk
        self._conn.close()
        self.returncode = int(reply)


class CliForks:
    """A fork server for ``signoff`` commands: ``run`` is ``subprocess.run`` for them, and
    ``start`` ``subprocess.Popen``."""

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
                # Never written: its end of file tells the server this process is gone,
                # however it ended (a test worker killed leaves no server behind).
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
            )
            os.close(ready_w)
            with os.fdopen(ready_r, "rb") as ready:
                if ready.read(1) != b"1":
                    raise RuntimeError("the signoff fork server did not start (see stderr)")

    def start(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        stdin: int,
        stdout: int,
        stderr: int,
    ) -> ForkedProcess:
        """``signoff ARGS`` forked with ``env`` and ``cwd``, its standard streams on the
        file descriptors given."""
        self._started()
        request = json.dumps({"args": list(args), "env": dict(env), "cwd": str(cwd)}).encode()
        conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            conn.connect(self.address)
            header = len(request).to_bytes(8, "big")
            socket.send_fds(conn, [header + request], [stdin, stdout, stderr])
            pid = b""
            while not pid.endswith(b"\n"):
                chunk = conn.recv(1)
                if not chunk:
                    raise RuntimeError("the signoff fork server closed the connection")
                pid += chunk
        except BaseException:
            conn.close()
            raise
        return ForkedProcess(int(pid), conn, ["signoff", *args])

    def run(
        self,
        args: Sequence[str],
        *,
        env: Mapping[str, str],
        cwd: Path,
        input: str | None = None,
        timeout: float = 180,
        stderr_to_stdout: bool = False,
    ) -> subprocess.CompletedProcess[str]:
        """``signoff ARGS`` forked with ``env``, ``cwd`` and ``input`` on its standard
        input: its status (``-N`` when signal N ended it), standard output and standard
        error (empty with ``stderr_to_stdout``)."""
        with (
            tempfile.TemporaryFile() as given,
            tempfile.TemporaryFile() as out,
            tempfile.TemporaryFile() as err,
        ):
            given.write((input or "").encode())
            given.seek(0)
            process = self.start(
                args,
                env=env,
                cwd=cwd,
                stdin=given.fileno(),
                stdout=out.fileno(),
                stderr=(out if stderr_to_stdout else err).fileno(),
            )
            try:
                status = process.wait(timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
            out.seek(0)
            err.seek(0)
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
            if server.stdin is not None:
                server.stdin.close()
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
    # SIGCHLD wakes the loop through this pipe; each ended child's status goes back on the
    # connection that asked for it.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    children: dict[int, socket.socket] = {}
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    while True:
        try:
            readable = select.select([listener, wake_r, sys.stdin], [], [])[0]
        except InterruptedError:
            continue
        if sys.stdin in readable and not os.read(sys.stdin.fileno(), 1):
            return  # whoever started the server has ended; running commands go on
        if wake_r in readable:
            os.read(wake_r, 4096)
            _reap(children)
        if listener in readable:
            _fork(listener, children, (wake_r, wake_w))


def _fork(
    listener: socket.socket, children: dict[int, socket.socket], pipe: tuple[int, int]
) -> None:
    conn, _ = listener.accept()
    message, fds, _flags, _addr = socket.recv_fds(conn, 1 << 16, 3)
    size = int.from_bytes(message[:8], "big")
    message = message[8:]
    while len(message) < size:
        message += conn.recv(size - len(message))
    pid = os.fork()
    if pid == 0:
        # Nothing of the server's stays open in the child: a connection to another child
        # kept open here would keep its reader waiting after that child ended.
        listener.close()
        conn.close()
        for other in children.values():
            other.close()
        for fd in pipe:
            os.close(fd)
        _child(json.loads(message), fds)
    for fd in fds:
        os.close(fd)
    children[pid] = conn
    conn.sendall(f"{pid}\n".encode())
    _reap(children)  # in case it ended already


def _reap(children: dict[int, socket.socket]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        conn = children.pop(pid, None)
        if conn is not None:
            with contextlib.suppress(OSError):
                conn.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())
            conn.close()


def _child(request: dict[str, Any], fds: list[int]) -> None:
    """Become ``python -m signoff.bot.cli ARGS``."""
    status = 1
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for target, fd in enumerate(fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        _standard_streams(unbuffered=bool(os.environ.get("PYTHONUNBUFFERED")))
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
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status & 0xFF)


def _standard_streams(*, unbuffered: bool) -> None:
    """New ``sys.std*`` on descriptors 0 to 2, as the interpreter makes them at start
    (the fork server's were made for its own, and for its environment)."""

    def writer(fd: int, errors: str) -> io.TextIOWrapper:
        raw = io.FileIO(fd, "w", closefd=False)
        buffer: Any = raw if unbuffered else io.BufferedWriter(raw)
        return io.TextIOWrapper(buffer, encoding="utf-8", errors=errors, write_through=unbuffered)

    sys.stdin = io.TextIOWrapper(
        io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8"
    )
    sys.stdout = writer(1, "strict")
    sys.stderr = writer(2, "backslashreplace")


if __name__ == "__main__":
    _serve(sys.argv[1], int(sys.argv[2]))
