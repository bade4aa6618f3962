"""The pytest plugin, as a user project sees it: installed, with no conftest.py at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from signoff.bot.sandbox import ConditionTimeout
from signoff.bot.testing import running_bot
from signoff.engine import flow

FLOWS = """
from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Go(RunInput):
    go: bool


@flow(name="plugin-approve")
def plugin_approve() -> bool:
    return pause_flow_run(wait_for_input=Go, timeout=60).go
"""

TESTS = """
def test_sandbox(slack_sandbox):
    slack_sandbox.client().chat_postMessage(channel="C0GENERAL", text="hello")
    assert slack_sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").last).text == "hello"


def test_running_bot(signoff_bot):
    run = signoff_bot.engine.submit("plugin-approve", {})
    prompt = signoff_bot.root_message(run.id)
    signoff_bot.driver.click("alice", prompt, action_id="provide_input")
    signoff_bot.slack.wait_for(lambda ws: ws.open_view("alice"), timeout=10)
    signoff_bot.driver.submit("alice", {"go": True})
    done = signoff_bot.slack.wait_for(
        lambda ws: (r := signoff_bot.engine.get_run(run.id)).state.is_final and r, timeout=15
    )
    assert done.state.value == "completed"
"""


def test_the_installed_plugin_gives_both_fixtures_without_a_conftest(tmp_path: Path) -> None:
    (tmp_path / "flows.py").write_text(FLOWS)
    (tmp_path / "test_mine.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nsignoff_flows = flows.py\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


def test_flows_listed_in_the_ini_file_are_found_from_any_directory(tmp_path: Path) -> None:
    """``signoff_flows = flows/approve.py`` was read from the working directory: pytest run
    in ``tests/`` (as an editor runs one test) could not load the flows."""
    (tmp_path / "flows").mkdir()
    (tmp_path / "flows" / "approve.py").write_text(FLOWS)
    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_mine.py").write_text(TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\nsignoff_flows = flows/approve.py\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:xdist"],
        cwd=tmp_path / "tests",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert "2 passed" in done.stdout


@flow(name="kit-fails-at-once")
def kit_fails_at_once() -> None:
    raise RuntimeError("the deploy script is missing")


def test_a_prompt_that_never_comes_says_what_became_of_the_run(tmp_path: Path) -> None:
    """A flow that failed before it asked anything: ``root_message`` timed out with
    "condition not met within 10s (last lookup error: None; last calls: auth.test)", and the
    test's author had to dig the run's error out of the log."""
    with running_bot(database_url=f"sqlite:///{tmp_path}/t.db") as bot:
        run = bot.engine.submit("kit-fails-at-once", {})
        with pytest.raises(ConditionTimeout) as info:
            bot.root_message(run.id, timeout=1)
    assert str(info.value) == (
        f"no message about run {run.id[:8]} in C0GENERAL within 1s; the run is failed: "
        "RuntimeError: the deploy script is missing"
    )


def test_an_outcome_nobody_submitted_says_there_is_no_form(tmp_path: Path) -> None:
    with running_bot(database_url=f"sqlite:///{tmp_path}/t.db") as bot:
        with pytest.raises(ConditionTimeout) as info:
            bot.outcome("bob", timeout=0.5)
    assert (
        str(info.value)
        == "no outcome for bob within 0.5s: bob has no open modal (submit a form first)"
    )
