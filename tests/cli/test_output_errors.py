"""Output that cannot be written (``signoff audit export > trail.jsonl`` on a full disk)
is named in one line on stderr, exit status 1: the export is not complete, and nothing
else is printed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def signoff_to_full_disk(project: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # /dev/full: every write fails with ENOSPC, as on a disk that has filled up
    with open("/dev/full", "w") as full:
        return subprocess.run(
            [sys.executable, "-m", "signoff.bot.cli", *args],
            cwd=project,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize(
    "args",
    [["audit", "export"], ["audit", "export", "--format", "csv"], ["runs", "list"], ["manifest"]],
)
def test_output_to_a_full_disk_is_one_line_and_a_failure(project: Path, args: list[str]) -> None:
    started = subprocess.run(
        [
            sys.executable,
            "-m",
            "signoff.bot.cli",
            "run",
            "access-request",
            "--flows",
            "flows.py",
            "--param",
            "user=bob",
        ],
        cwd=project,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert started.returncode == 0, started.stderr
    done = signoff_to_full_disk(project, *args)
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "error: cannot write to standard output: No space left on device"
    ]
