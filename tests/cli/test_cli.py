"""The ``signoff`` command line against SQLite and PostgreSQL.

Each test gets its own database (the ``database_url`` fixture) and a flows file in its
``tmp_path``. Commands that run to their end are forked from a process that has imported
Signoff once (``tests/support/cli_forks.py``: a new process spends most of a second
importing); workers, commands left running and ``python -m`` start from scratch. Workers
are stopped with SIGTERM at the end of each test.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from signoff.engine import Engine, EngineSettings
from tests.support.cli_forks import CliForks, ForkedProcess
from tests.support.waiting import wait_for

FLOWS = """
from signoff.engine import flow, get_run_logger, pause_flow_run, task
from signoff.engine.input import RunInput


class Approval(RunInput):
    approved: bool
    note: str = ""


@task
def double(n: int) -> int:
    return n * 2


@flow(name="cli-approve")
def approve(n: int) -> int:
    doubled = double(n)
    get_run_logger().info("doubled %s", doubled)
    answer = pause_flow_run(wait_for_input=Approval)
    if not answer.approved:
        raise ValueError("not approved")
    return doubled


@flow(name="cli-quick")
def quick(n: int, label: str = "") -> str:
    return f"{label}{double(n)}"


@flow(name="cli-broken")
def broken() -> None:
    raise RuntimeError("boom")
"""

RUN_ID = re.compile(r"^[0-9a-f]{32}$")
#: ``Cli.start_worker(NO_FLOWS)``: a worker started without ``--flows``
NO_FLOWS = "(no --flows)"
#: How long a command may take before the test fails instead of hanging.
COMMAND_TIMEOUT = 180
#: several CLI processes per test, each seconds to start on a busy machine
pytestmark = pytest.mark.timeout(600)


class Cli:
    """Runs the command line (``python -m signoff.bot.cli``) against one test database, and
    owns worker processes."""

    def __init__(self, database_url: str, tmp_path: Path, forks: CliForks | None = None) -> None:
        self.tmp_path = tmp_path
        self.forks = forks
        self.flows = tmp_path / "cli_flows.py"
        self.flows.write_text(FLOWS)
        self.env = {
            **os.environ,
            "SIGNOFF_DATABASE_URL": database_url,
            # a worker claims runs and proves it is alive this often
            "SIGNOFF_HEARTBEAT_SECONDS": "0.2",
            "SIGNOFF_OWNER_TIMEOUT_SECONDS": "5",
        }
        self.workers: list[tuple[subprocess.Popen[str] | ForkedProcess, Path]] = []

    def __call__(self, *args: str, module: str | None = None) -> subprocess.CompletedProcess[str]:
        """``signoff ARGS`` in a process forked from ``forks``; with ``module`` (or without
        ``forks``), ``python -m MODULE ARGS`` started from scratch."""
        if module is None and self.forks is not None:
            return self.forks.run(args, env=self.env, cwd=self.tmp_path, timeout=COMMAND_TIMEOUT)
        return subprocess.run(
            [sys.executable, "-m", module or "signoff.bot.cli", *args],
            env=self.env,
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )

    def popen(self, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
        """``signoff ARGS`` started and left running, its output piped: for a command
        that waits (``--wait``, ``runs wait``), watched while it does."""
        return subprocess.Popen(
            [sys.executable, "-m", "signoff.bot.cli", *args],
            env=self.env if env is None else env,
            cwd=self.tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def ok(self, *args: str) -> str:
        result = self(*args)
        assert result.returncode == 0, f"{args} exited {result.returncode}: {result.stderr}"
        return result.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))

    def show(self, run_id: str) -> dict[str, Any]:
        detail: dict[str, Any] = self.json("runs", "show", run_id)
        return detail

    def wait_for_state(self, run_id: str, state: str) -> dict[str, Any]:
        # Polled in this process (a CLI call costs seconds on a busy machine); the detail
        # returned is still the CLI's own JSON.
        engine = Engine(EngineSettings.load(database_url=self.env["SIGNOFF_DATABASE_URL"]))
        try:
            wait_for(
                lambda: engine.get_run(run_id).state.value == state,
                timeout=120,
                what=f"run {run_id} to be {state}",
            )
        finally:
            engine.close()
        return self.show(run_id)

    def submit(self, flow: str, *args: str) -> str:
        out = self.ok("run", flow, "--flows", str(self.flows), *args)
        run_id = out.strip()
        assert RUN_ID.match(run_id), out
        return run_id

    def start_worker(
        self, *sources: str | Path, options: Sequence[str] = ()
    ) -> subprocess.Popen[str] | ForkedProcess:
        """A worker with ``--flows`` for each of ``sources`` (by default the test's flows
        file; ``start_worker(NO_FLOWS)``, none) and ``options``."""
        log = self.tmp_path / f"worker-{len(self.workers)}.log"
        given = sources or (self.flows,)
        flags = [a for s in given if s != NO_FLOWS for a in ("--flows", str(s))]
        flags += options
        process: subprocess.Popen[str] | ForkedProcess
        with log.open("w") as stderr, open(os.devnull, "r+") as null:
            if self.forks is not None:
                process = self.forks.start(
                    ["worker", *flags],
                    env=self.env,
                    cwd=self.tmp_path,
                    stdin=null.fileno(),
                    stdout=null.fileno(),
                    stderr=stderr.fileno(),
                )
            else:
                process = subprocess.Popen(
                    [sys.executable, "-m", "signoff.bot.cli", "worker", *flags],
                    env=self.env,
                    cwd=self.tmp_path,
                    stdout=subprocess.DEVNULL,
                    stderr=stderr,
                    text=True,
                )
        self.workers.append((process, log))
        return process

    def stop_workers(self) -> list[int]:
        codes = []
        for process, _log in self.workers:
            if process.poll() is None:
                process.terminate()
            try:
                codes.append(process.wait(timeout=15))
            except subprocess.TimeoutExpired:
                process.kill()
                codes.append(process.wait())
        return codes


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single stderr line of a failed command (and nothing on stdout)."""
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return lines[0]


def test_run_prints_the_id_and_runs_list_shows_it_scheduled(cli: Cli) -> None:
    run_id = cli.submit("cli-approve", "--param", "n=3", "--started-by", "carol")

    listed = cli.json("runs", "list", "--state", "scheduled", "--flow", "cli-approve")
    assert [r["id"] for r in listed] == [run_id]
    run = listed[0]
    assert run["state"] == "scheduled"
    assert run["started_by"] == "carol"
    assert run["parameters"] == {"n": 3}
    for stamp in (run["created_at"], run["updated_at"]):
        assert datetime.fromisoformat(stamp).tzinfo is not None

    table = cli.ok("runs", "list")
    assert table.splitlines()[0].split()[:3] == ["ID", "FLOW", "STATE"]
    assert table.splitlines()[1].split()[:3] == [run_id[:8], "cli-approve", "scheduled"]


def test_a_worker_given_flows_runs_only_theirs(cli: Cli) -> None:
    """It ran any flow a run named, importing it from the path its starter gave."""
    other = cli.tmp_path / "elsewhere" / "other_flows.py"
    other.parent.mkdir()
    other.write_text(
        "from signoff.engine import flow\n\n"
        "@flow(name='cli-elsewhere')\n"
        "def elsewhere() -> str:\n"
        "    return 'ran'\n"
    )
    cli.start_worker()
    stranger = cli.ok("run", "cli-elsewhere", "--flows", str(other)).strip()
    # Queued after the other, so a worker that took both would have taken it first.
    quick = cli.json("run", "cli-quick", "--flows", str(cli.flows), "--param", "n=1", "--wait")
    assert quick["state"] == "completed"
    assert cli.show(stranger)["run"]["state"] == "scheduled"
    cli.start_worker(NO_FLOWS)  # takes runs of any flow
    assert cli.wait_for_state(stranger, "completed")["run"]["result"] == "ran"


def test_answering_a_suspended_run_with_no_worker_says_so_within_seconds(cli: Cli) -> None:
    """It waited the whole --verdict-timeout (30 s) for a worker that was not there."""
    cli.start_worker()
    run_id = cli.submit("cli-approve", "--param", "n=2")
    cli.wait_for_state(run_id, "paused")
    assert cli.stop_workers() == [0]  # its paused run is suspended as it stops
    cli.wait_for_state(run_id, "suspended")
    answered = cli("runs", "resume", run_id, "--input", '{"approved": true}', "--as", "bob")
    assert answered.returncode == 0, answered.stderr
    assert answered.stdout == f"resumed {run_id} (input '1') as bob\n"
    assert answered.stderr == (
        "note: no worker has taken the run after 5s to run it again with the answer; start "
        "one with `signoff worker --flows ...`, and the flow judges the answer then (see "
        "`signoff runs show`)\n"
    )
    cli.start_worker()
    assert cli.wait_for_state(run_id, "completed")["pauses"][0]["status"] == "accepted"


def test_worker_runs_until_input_then_resume_validates_and_completes(cli: Cli) -> None:
    run_id = cli.submit("cli-approve", "--param", "n=3")
    worker = cli.start_worker()

    waiting = cli.wait_for_state(run_id, "paused")
    assert [p["status"] for p in waiting["pauses"]] == ["waiting"]

    refused = cli("runs", "resume", run_id[:8], "--input", '{"approved": "nope"}', "--as", "bob")
    assert refused.returncode == 1
    assert "approved" in error_line(refused)
    still = cli.show(run_id)
    assert still["run"]["state"] == "paused"
    assert still["pauses"][0]["status"] == "waiting"

    out = cli.ok("runs", "resume", run_id[:8], "--input", '{"approved": true}', "--as", "alice")
    assert out == f"resumed {run_id} (input '1') as alice; the flow accepted it\n"

    done = cli.wait_for_state(run_id, "completed")
    assert done["run"]["result"] == 6  # JSON, not a Python repr
    [pause] = done["pauses"]
    assert pause["responder"] == "alice"
    assert pause["response"] == {"approved": True}
    assert pause["status"] == "accepted"
    datetime.fromisoformat(pause["answered_at"])
    [task_run] = done["tasks"]
    assert (task_run["state"], task_run["result"], task_run["attempts"]) == ("completed", "6", 1)
    assert [e["message"] for e in done["logs"]] == ["doubled 6"]
    assert [h["state"] for h in done["history"]] == [
        "scheduled",
        "running",
        "paused",
        "running",
        "completed",
    ]

    text = cli.ok("runs", "show", run_id[:8])
    assert f"Run {run_id}" in text
    assert "by alice" in text
    assert "doubled 6" in text

    assert cli.stop_workers() == [0]
    log = cli.workers[0][1].read_text()
    assert worker.returncode == 0
    assert "run_claimed" in log
    assert "worker_stopped" in log


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_stopping_worker_says_it_suspended_its_waiting_runs_before_it_says_it_stopped(
    cli: Cli, sig: signal.Signals
) -> None:
    """The runs were suspended as the engine closed, after the last line, "worker stopped",
    so an operator reading the log saw the worker do more once it had stopped. A hang-up
    (a closed terminal) stops it the same way: it ended the process on the spot."""
    run_id = cli.submit("cli-approve", "--param", "n=4")
    cli.start_worker()
    cli.wait_for_state(run_id, "paused")
    process = cli.workers[0][0]
    process.send_signal(sig)
    assert process.wait(timeout=15) == 0
    assert cli.show(run_id)["run"]["state"] == "suspended"
    actions = [
        action
        for line in cli.workers[0][1].read_text().splitlines()
        for action in ("paused_runs_suspended", "worker_stopped")
        if action in line
    ]
    assert actions == ["paused_runs_suspended", "worker_stopped"]


@pytest.mark.parametrize(("sig", "status"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_resume_stopped_while_it_waits_for_the_verdict_says_the_answer_is_stored(
    cli: Cli, sig: signal.Signals, status: int
) -> None:
    """Ctrl-C (or SIGTERM) in the wait for the flow's verdict printed 'Aborted!' or 'error:
    terminated' alone: nothing said that the answer had been stored."""
    run_id = cli.submit("cli-approve", "--param", "n=3")
    cli.start_worker()
    cli.wait_for_state(run_id, "paused")
    assert cli.stop_workers() == [0]  # nobody left to judge the answer
    resume = cli.popen(
        *("runs", "resume", run_id, "--as", "alice", "--input", '{"approved": true}'),
        env={**cli.env, "SIGNOFF_LOG_LEVEL": "INFO"},  # to see when it waits
    )
    assert resume.stderr is not None
    logged: list[str] = []
    while not logged or ("verdict_wait" not in logged[-1] and logged[-1]):
        logged.append(resume.stderr.readline())  # '' once the command has ended
    assert "verdict_wait" in logged[-1], logged
    resume.send_signal(sig)
    out, err = resume.communicate(timeout=COMMAND_TIMEOUT)
    assert (resume.returncode, out) == (status, "")
    assert cli.show(run_id)["pauses"][0]["responder"] == "alice"
    assert err.startswith(
        f"stored the answer to {run_id} (input '1') as alice; stopped before the flow "
        "judged it: see `signoff runs show`\n"
    ), err


def test_a_second_ctrl_c_while_a_command_unwinds_ends_it_at_once_without_a_traceback() -> None:
    """Ctrl-C pressed twice: the second ``KeyboardInterrupt`` landed in the first one's
    unwinding, once inside a lock's release in ``threading`` (``run --wait``), which failed
    the command with 'unexpected RuntimeError: release unlocked lock'. The second one now
    ends the process as the signal's default does."""
    command = """if True:
        import signal
        from signoff.bot.stopping import unwind_on_sigterm
        with unwind_on_sigterm():
            try:
                signal.raise_signal(signal.SIGINT)  # Ctrl-C
            except KeyboardInterrupt:
                signal.raise_signal(signal.SIGINT)  # again, while the first one unwinds
                print("unwound after the second Ctrl-C")
    """
    done = subprocess.run(
        [sys.executable, "-c", command], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout, done.stderr) == (-signal.SIGINT, "", "")


def test_run_wait_reports_the_state_it_stops_in_and_cancel(cli: Cli) -> None:
    cli.start_worker()

    quick = cli.ok(
        "run", "cli-quick", "--flows", str(cli.flows), "--param", "n=4", "--param", "label=1.10"
    )
    assert RUN_ID.match(quick.strip())
    waited = cli("run", "cli-quick", "--flows", str(cli.flows), "--param", "n=2", "--wait")
    assert waited.returncode == 0, waited.stderr
    run_id, state, result = waited.stdout.splitlines()
    assert state == f"{run_id} completed (Completed)"
    assert result == "result: '4'"  # what the flow returned, as runs show gives it

    broken = cli("run", "cli-broken", "--flows", str(cli.flows), "--wait")
    assert broken.returncode == 1
    assert broken.stdout.splitlines()[1].endswith("failed (Failed: RuntimeError: boom)")

    paused = cli(
        "run", "cli-approve", "--flows", str(cli.flows), "--param", "n=1", "--until", "paused"
    )
    paused_run = json.loads(
        cli.ok(
            "run",
            "cli-approve",
            "--flows",
            str(cli.flows),
            "--param",
            "n=5",
            "--wait",
            "--until",
            "paused",
            "--json",
        )
    )
    assert paused.returncode == 0
    assert paused.stdout.splitlines()[1].split()[1] == "paused"
    assert paused_run["state"] == "paused"

    out = cli.ok("runs", "cancel", paused_run["id"][:8], "--as", "bob")
    assert out == f"cancelled {paused_run['id']} by bob\n"
    cancelled = cli.wait_for_state(paused_run["id"], "cancelled")
    assert cancelled["run"]["state_message"] == "cancelled by bob"
    # Cancelling again is refused as cancelling a completed run is (exit 1), saying plainly why.
    again = cli("runs", "cancel", paused_run["id"])
    assert (again.returncode, error_line(again)) == (
        1,
        f"error: run {paused_run['id']} is already cancelled",
    )
    completed = cli("runs", "cancel", run_id)
    assert (completed.returncode, error_line(completed)) == (
        1,
        f"error: run {run_id} is completed and cannot become cancelled",
    )

    # a string parameter keeps its text even when it reads as a number
    # (``--json`` gives the result as JSON: a string, not the number 1.108)
    assert cli.wait_for_state(quick.strip(), "completed")["run"]["result"] == "1.108"


def test_errors_are_one_line_on_stderr(cli: Cli) -> None:
    missing = cli("runs", "show", "deadbeef", "--json")
    assert missing.returncode == 1
    assert error_line(missing) == "error: no run with id 'deadbeef'"
    # Not SQLite's "LIKE or GLOB pattern too complex", nor the whole id said back.
    assert error_line(cli("runs", "show", "a" * 50_001)) == (
        f"error: no run with id {'a' * 40!r}... (50,001 characters)"
    )
    assert cli("runs", "resume", "deadbeef", "--input", "{}").returncode == 1
    assert cli("runs", "cancel", "deadbeef").returncode == 1

    bad_param = cli("run", "cli-approve", "--flows", str(cli.flows), "--param", "n=abc")
    assert bad_param.returncode == 1
    assert "n: " in error_line(bad_param)

    no_flows = cli("run", "cli-approve", "--param", "n=1")
    assert "--flows" in error_line(no_flows)

    bad_state = cli("runs", "list", "--state", "bogus")
    assert bad_state.returncode == 2
    assert "'scheduled', 'running'" in error_line(bad_state)

    bad_input = cli("runs", "resume", "deadbeef", "--input", "[1]")
    assert bad_input.returncode == 2
    assert "JSON object" in error_line(bad_input)

    assert cli.json("runs", "list") == []


def test_python_dash_m_signoff_exits_with_the_commands_status(cli: Cli) -> None:
    # A script or a service unit that runs ``python -m signoff`` learns of failures as it
    # would from the ``signoff`` script.
    missing = cli("runs", "show", "deadbeef", module="signoff")
    assert missing.returncode == 1
    assert error_line(missing) == "error: no run with id 'deadbeef'"
    assert cli("runs", "list", "--state", "bogus", module="signoff").returncode == 2
    listed = cli("runs", "list", "--json", module="signoff")
    assert listed.returncode == 0 and json.loads(listed.stdout) == []
