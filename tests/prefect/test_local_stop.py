"""``LocalPrefect.stop``: the flow-serving processes stop before the server they pause
their deployments through, and the processes that do not exit on SIGTERM share one grace
period. A stop waited for each in turn, with the server stopping under them: 10 s and more
at the end of every Prefect test group and demo."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from signoff.bot.backends.prefect import local
from signoff.bot.backends.prefect.local import LocalPrefect
from tests.support.waiting import wait_for

#: a process that notes when SIGTERM reached it (in ``argv[1]``), takes ``argv[2]``
#: seconds over it, or ignores it when that is ``never``
PROCESS = """
import signal, sys, time
note, takes = sys.argv[1], sys.argv[2]
def term(*_):
    with open(note, "a") as f:
        f.write(f"term {time.time()}\\n")
    if takes == "never":
        return
    time.sleep(float(takes))
    with open(note, "a") as f:
        f.write(f"exit {time.time()}\\n")
    sys.exit(0)
signal.signal(signal.SIGTERM, term)
open(note + ".up", "w").close()
while True:
    time.sleep(0.05)
"""


def _started(
    prefect: LocalPrefect, name: str, takes: str, tmp_path: Path
) -> tuple[subprocess.Popen[bytes], Path]:
    note = tmp_path / name
    process = prefect._spawn(name, ["-c", PROCESS, str(note), takes])
    wait_for(lambda: Path(f"{note}.up").exists(), timeout=30, what=f"{name} to start")
    return process, note


def _times(note: Path, what: str) -> list[float]:
    return [
        float(line.split()[1]) for line in note.read_text().splitlines() if line.startswith(what)
    ]


def test_the_server_is_told_to_stop_once_the_flows_processes_are_gone(tmp_path: Path) -> None:
    prefect = LocalPrefect(python=sys.executable)
    prefect._server, server = _started(prefect, "server", "0", tmp_path)
    _, flows = _started(prefect, "flows-1", "1", tmp_path)
    prefect.stop()
    assert _times(flows, "exit")[0] <= _times(server, "term")[0]


def test_processes_that_ignore_sigterm_share_one_grace_period(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(local, "_STOP_GRACE_SECONDS", 2)
    prefect = LocalPrefect(python=sys.executable)
    stubborn = [_started(prefect, f"flows-{n}", "never", tmp_path)[0] for n in range(3)]
    began = time.monotonic()
    prefect.stop()
    took = time.monotonic() - began
    assert all(p.returncode is not None for p in stubborn)
    assert took < 4.5, f"stop took {took:.1f}s: one grace of 2 s each, not one for all"
