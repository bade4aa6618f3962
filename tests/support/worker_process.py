"""A ``Worker`` in a process of its own, for tests of what outlives a process (kill -9)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from signoff.engine import load_flows

WORKER = textwrap.dedent(
    """
    import sys, signal, threading
    from signoff.engine import Worker, Engine
    worker = Worker(Engine(), flows=[sys.argv[1]])  # settings from the environment
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *a: stop.set())
    worker.start()
    print("ready", flush=True)
    stop.wait()
    worker.stop()
    worker.engine.close()
    """
)


def flows_file(directory: Path, source: str) -> Path:
    """``source`` written to ``directory/flows.py`` for a worker process, and loaded here
    too (the test submits its flows)."""
    flows = directory / "flows.py"
    flows.write_text(source)
    load_flows(str(flows))
    return flows


@contextmanager
def worker_process(
    flows: Path,
    database_url: str,
    heartbeat_seconds: float = 0.2,
    owner_timeout_seconds: float = 1.0,
) -> Iterator[subprocess.Popen[str]]:
    """A ``signoff`` worker of its own for ``flows``, once it is ready; stopped (if
    ``kill_9`` has not ended it) when the block ends."""
    env = {
        **os.environ,
        "SIGNOFF_DATABASE_URL": database_url,
        "SIGNOFF_HEARTBEAT_SECONDS": str(heartbeat_seconds),
        "SIGNOFF_OWNER_TIMEOUT_SECONDS": str(owner_timeout_seconds),
    }
    proc = subprocess.Popen(
        [sys.executable, "-c", WORKER, str(flows)], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "ready"
        yield proc
    finally:
        _stop(proc)


def kill_9(proc: subprocess.Popen[str]) -> None:
    """End the worker as a crash would: no chance to clean up or say it is leaving."""
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)


def _stop(proc: subprocess.Popen[str]) -> None:
    if proc.stdout is not None:
        proc.stdout.close()
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
