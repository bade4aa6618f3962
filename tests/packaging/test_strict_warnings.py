"""A project whose tests turn warnings into errors (``filterwarnings = error``, common in
CI) can import Signoff and use its pytest fixtures: importing Signoff warns of nothing."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

TESTS = """\
from signoff import RunInput, flow, pause_flow_run
from signoff.bot.testing import running_bot


def test_the_sandbox_fixture(slack_sandbox):
    slack_sandbox.client().chat_postMessage(channel="C0GENERAL", text="hello")
    assert slack_sandbox.channel("C0GENERAL").last.text == "hello"
"""


def test_a_project_that_makes_warnings_errors_can_test_its_flows(tmp_path: Path) -> None:
    (tmp_path / "pytest.ini").write_text("[pytest]\nfilterwarnings =\n    error\n")
    (tmp_path / "test_flows.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNOFF_", "PYTEST_"))}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, "-W", "error", "-m", "pytest", "-q", "-p", "no:cacheprovider"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "1 passed" in done.stdout


def test_importing_signoff_warns_of_nothing() -> None:
    modules = "signoff, signoff.engine, signoff.bot.testing, signoff.bot.cli.main"
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", f"import {modules}"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
