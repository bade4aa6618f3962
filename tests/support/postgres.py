"""A throwaway PostgreSQL cluster for the test session, started from the machine's binaries.

The cluster lives in a temporary directory and listens on a Unix socket and a free loopback
port. PostgreSQL refuses to run as root, so under root (as in CI) the server runs as the
``postgres`` system user.

Every test gets a database copied from a migrated template, and a copy writes the whole
database (about 8 MB) twice, into the write-ahead log and into its files. On a disk that
took 60 to 180 ms a test on the 2-core machine, and the page cache's writeback slowed the
tests beside it; in memory it takes about 11 ms. So the tests' cluster lives on ``/dev/shm``
when that has room (``in_memory``), and the tests drop their databases as they finish, which
keeps it small. The benchmarks keep theirs on disk, where users keep PostgreSQL's data.
"""

from __future__ import annotations

import atexit
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries were found on this machine."""


def _bindir() -> Path:
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    if candidates:
        return Path(candidates[0]).parent
    raise PostgresUnavailable("initdb was not found on PATH or under /usr/lib/postgresql")


#: what ``/dev/shm`` must have free to hold the cluster: its template, the databases of the
#: tests running now and a write-ahead log of up to ``max_wal_size``
_MEMORY_NEEDED = 2 << 30


def _parent() -> str | None:
    """Where the cluster's directory goes: in memory when there is room, else the default."""
    shm = "/dev/shm"
    try:
        roomy = shutil.disk_usage(shm).free >= _MEMORY_NEEDED and os.access(shm, os.W_OK)
    except OSError:
        return None
    return shm if roomy else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    """A running cluster; ``url(db)`` gives a SQLAlchemy URL for one database in it."""

    datadir: Path
    port: int
    bindir: Path
    run_as: str | None

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    @property
    def admin_conninfo(self) -> str:
        """psycopg's connection string for the ``postgres`` database, to make others."""
        return f"host=127.0.0.1 port={self.port} user=postgres dbname=postgres"

    def _cmd(self, *args: str) -> list[str]:
        if self.run_as:
            return ["runuser", "-u", self.run_as, "--", *args]
        return list(args)

    def stop(self) -> None:
        subprocess.run(
            self._cmd(
                str(self.bindir / "pg_ctl"), "-D", str(self.datadir), "-m", "immediate", "stop"
            ),
            check=False,
            capture_output=True,
        )
        shutil.rmtree(self.datadir.parent, ignore_errors=True)


def start_cluster(*, in_memory: bool = False) -> PostgresCluster:
    """Start a cluster; with ``in_memory``, on ``/dev/shm`` if that has room."""
    bindir = _bindir()
    run_as = None
    root = Path(tempfile.mkdtemp(prefix="signoff-pg-", dir=_parent() if in_memory else None))
    datadir = root / "data"
    if os.geteuid() == 0:
        run_as = "postgres"
        user = pwd.getpwnam(run_as)
        os.chown(root, user.pw_uid, user.pw_gid)
        os.chmod(root, 0o700)
    port = _free_port()
    cluster = PostgresCluster(datadir=datadir, port=port, bindir=bindir, run_as=run_as)
    subprocess.run(
        cluster._cmd(
            str(bindir / "initdb"),
            "-D",
            str(datadir),
            "-U",
            "postgres",
            "--auth=trust",
            "--encoding=UTF8",
            "--no-sync",
        ),
        check=True,
        capture_output=True,
    )
    options = (
        f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=300"
    )
    if in_memory:
        options += " -c max_wal_size=256MB"  # the log is memory too
    subprocess.run(
        cluster._cmd(
            str(bindir / "pg_ctl"),
            "-D",
            str(datadir),
            "-o",
            options,
            "-l",
            str(root / "log"),
            "-w",
            "start",
        ),
        check=True,
        capture_output=True,
    )
    # Also on interpreter exit, so that an interrupted session leaves no server behind.
    atexit.register(cluster.stop)
    return cluster
