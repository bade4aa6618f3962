"""A script that runs flows and configures no logging sees its runs on stderr, with how to
answer a pause; one that configures logging sees only what it configured."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from signoff.engine import Engine, EngineSettings, RunState
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]

GREETING = """
    from signoff.engine import flow, get_run_logger, pause_flow_run, task
    from signoff.engine.input import RunInput


    class UserNameInput(RunInput):
        name: str


    @task
    def note(name):
        get_run_logger().info("greeted %s", name)


    @flow
    def greet_user():
        user_input = pause_flow_run(wait_for_input=UserNameInput)
        get_run_logger().info("Hello, %s!", user_input.name)
        note(user_input.name)


    {configure}
    greet_user()
"""


def start(tmp_path: Path, configure: str = "") -> tuple[subprocess.Popen[str], Path, str]:
    script = tmp_path / "greeting.py"
    script.write_text(textwrap.dedent(GREETING.format(configure=configure)))
    url = f"sqlite:///{tmp_path}/signoff.db"
    errors = tmp_path / "stderr.txt"
    env = {**os.environ, "SIGNOFF_DATABASE_URL": url, "PYTHONPATH": str(ROOT)}
    with errors.open("w") as err:
        proc = subprocess.Popen([sys.executable, str(script)], env=env, stderr=err, text=True)
    return proc, errors, url


def answer_when_waiting(url: str) -> str:
    engine = Engine(EngineSettings.load(database_url=url))
    try:
        waiting = wait_for(
            lambda: engine.list_runs(states=[RunState.PAUSED]), 30, "the run to pause"
        )
        engine.resume(waiting[0].id, {"name": "Ada"}, responder="ada")
        return waiting[0].id
    finally:
        engine.close()


def test_a_script_that_configured_no_logging_shows_its_run_and_how_to_answer(
    tmp_path: Path,
) -> None:
    proc, errors, url = start(tmp_path)
    try:
        wait_for(lambda: "waiting for input" in errors.read_text(), 30, "the pause's line")
        run_id = answer_when_waiting(url)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    lines = errors.read_text().splitlines()
    short = run_id[:8]
    assert [line.split(maxsplit=2)[2] for line in lines] == [
        f"greet-user {short}: run started",
        f"greet-user {short}: waiting for input; answer it in Slack (signoff serve) or "
        f"with: signoff runs resume {short} --input '{{...}}'",
        f"greet-user {short}: Hello, Ada!",
        f"greet-user {short} [note-1]: greeted Ada",  # which task logged it
        f"greet-user {short}: run completed",
    ]


@pytest.mark.parametrize(
    "configure",
    [
        "import logging; logging.basicConfig(level=logging.WARNING)",
        "import logging; logging.getLogger('signoff').setLevel(logging.ERROR)",
    ],
    ids=["root-handler", "signoff-level"],
)
def test_a_script_that_configured_logging_sees_only_what_it_configured(
    tmp_path: Path, configure: str
) -> None:
    proc, errors, url = start(tmp_path, configure)
    try:
        answer_when_waiting(url)
        assert proc.wait(30) == 0
    finally:
        proc.kill()
    assert errors.read_text() == ""


FAILING = """
    from signoff.engine import flow


    @flow
    def copy_reports():
        raise ValueError("bucket 'reports' is gone")


    try:
        copy_reports()
    except ValueError:
        pass
"""


def test_a_run_that_fails_shows_why_as_an_error(tmp_path: Path) -> None:
    """Prefect logs ERROR "Finished in state Failed('...')": the reason, not only the fact."""
    script = tmp_path / "failing.py"
    script.write_text(textwrap.dedent(FAILING))
    env = {**os.environ, "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path}/signoff.db"}
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run(
        [sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    started, failed = (line.split(maxsplit=1)[1] for line in done.stderr.splitlines())
    short = started.split()[2].rstrip(":")
    assert started == f"INFO    copy-reports {short}: run started"
    assert failed == (
        f"ERROR   copy-reports {short}: run failed: ValueError: bucket 'reports' is gone"
    )
    assert "Traceback" not in done.stderr  # the reason, not the whole traceback


def test_ctrl_c_while_a_script_waits_says_the_run_was_kept_and_how_it_goes_on(
    tmp_path: Path,
) -> None:
    proc, errors, url = start(tmp_path)
    try:
        wait_for(lambda: "waiting for input" in errors.read_text(), 30, "the pause's line")
        proc.send_signal(signal.SIGINT)
        proc.wait(30)
    finally:
        proc.kill()
    engine = Engine(EngineSettings.load(database_url=url))
    try:
        (run,) = engine.list_runs(states=[RunState.SUSPENDED])
    finally:
        engine.close()
    short = run.id[:8]
    said = [line.split(maxsplit=2)[2] for line in errors.read_text().splitlines()[:3]]
    assert said[2] == (
        f"greet-user {short}: suspended the run waiting in this process as it stops; "
        f"answering it (in Slack, or with: signoff runs resume {short} ...) runs the flow "
        "again on a worker (signoff worker)"
    )
