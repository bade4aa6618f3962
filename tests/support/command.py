"""The real ``signoff`` command, run as an operator runs it: in a folder of their own, with
none of the test process's Signoff or Slack settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def signoff_in(
    folder: Path, *args: str, database: str = "signoff.db"
) -> subprocess.CompletedProcess[str]:
    """``signoff ARGS...`` run in ``folder`` on the SQLite file ``database`` there."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_"))}
    env.update(SIGNOFF_DATABASE_URL=f"sqlite:///{folder / database}", PYTHONPATH=str(ROOT))
    return subprocess.run(
        [sys.executable, "-m", "signoff.bot.cli", *args],
        cwd=folder,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
