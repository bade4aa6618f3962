"""Serving flows for a local Prefect server leaves nothing behind in the system's temporary
folder: a served file's forkserver (``forking.py``) left a ``pymp-*`` folder with its
socket in ``/tmp`` whenever its process was killed. The forkserver starts with the
serving, before any run: the first run's prompt waited for its imports."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest

from tests.support.prefect import FLOWS, require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends.prefect.backend import PrefectBackend
from signoff.bot.backends.prefect.local import LocalPrefect
from tests.prefect.test_prefect_backend import CAROL
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def _socket_folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("pymp-*"))


def _forkservers(group: int) -> list[int]:
    """The forkserver processes in process group ``group``."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            command = (stat.parent / "cmdline").read_bytes()
        except OSError:
            continue  # it exited meanwhile
        if int(fields[2]) == group and b"multiprocessing.forkserver" in command:
            found.append(int(stat.parent.name))
    return found


def test_a_stopped_flows_process_leaves_nothing_in_the_temporary_folder(
    prefect_backend: PrefectBackend, prefect_api_url: str
) -> None:
    before = _socket_folders()
    with LocalPrefect(api_url=prefect_api_url) as served:
        served.serve_flows(FLOWS, "leftovers", deployments=5)
        group = served.processes[-1].pid
        wait_for(lambda: _forkservers(group), timeout=60, what="the forkserver, before any run")
        run = prefect_backend.start_run("greet-user/leftovers", {}, started_by=CAROL)
        # Paused: its process was forked, so the forkserver is running.
        wait_for(lambda: prefect_backend.waiting_pause(run.id), timeout=120, what="the pause")
        # As stop() kills a flows process that takes longer than its grace over SIGTERM
        # (20 s and more, at times): nothing of it cleans up after it.
        os.killpg(served.processes[-1].pid, signal.SIGKILL)
    assert _socket_folders() - before == set()
