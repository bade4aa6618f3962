"""``signoff serve`` as a process of its own, serving ``tests.e2e.once_flows`` against a
sandbox: for the tests that kill it mid-work (``kill -9``) and look at what survives."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from signoff.bot.sandbox import SlackSandbox
from signoff.bot.testing import SIGNING_SECRET
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def start_serve(
    slack: SlackSandbox,
    database_url: str,
    tmp_path: Path,
    channel: str,
    port: int = 0,
    *,
    options: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
    app_token: str | None = None,
) -> subprocess.Popen[bytes]:
    """Start it (its log in ``tmp_path``), with ``options`` and the variables in ``env``
    besides; ``port`` 0 lets it pick one; in Socket Mode with ``app_token``."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "SLACK_"))}
    environment.update(
        SLACK_BOT_TOKEN=slack.token,
        SLACK_SIGNING_SECRET=SIGNING_SECRET,
        SLACK_API_URL=slack.api_url,
        SIGNOFF_CHANNEL=channel,
        SIGNOFF_DATABASE_URL=database_url,
        SIGNOFF_HEARTBEAT_SECONDS="0.2",
        SIGNOFF_OWNER_TIMEOUT_SECONDS="1",
        HOME=str(tmp_path / "home"),
        **({"SLACK_APP_TOKEN": app_token} if app_token else {}),
    )
    environment.update(env or {})
    log = (tmp_path / f"serve-{time.monotonic_ns()}.log").open("w")
    command = ["serve", "--port", str(port), "--flows", "tests.e2e.once_flows", *options]
    return subprocess.Popen(
        [sys.executable, "-m", "signoff.bot.cli", *command],
        cwd=ROOT,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def wait_until_ready(port: int, timeout: float = 60) -> None:
    """Wait until the process on ``port`` answers ``/readyz`` (it posts prompts before its
    HTTP listener is up, so a prompt in the channel does not mean it takes clicks yet)."""

    def ready() -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    wait_for(ready, timeout=timeout, what=f"signoff serve to answer on port {port}")
