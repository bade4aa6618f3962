"""``signoff runs ... --backend prefect``: the run commands, as a real ``signoff``
subprocess, on real paused runs of the session's Prefect server. Nothing of Prefect is
mocked; ``SIGNOFF_DATABASE_URL`` names a file that does not exist, so a command that read
Signoff's own database instead would fail."""

from __future__ import annotations

import json
import logging
import os
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_forks import CliForks
from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()  # skips (or fails in CI) with the command that installs the extra

from signoff.bot.backends import Actor, PauseStatus, RunState
from signoff.bot.backends.prefect import PrefectBackend
from tests.cli.in_process import run_cli
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]

CAROL = Actor("U0CAROL")
#: how long one command may take before the test fails instead of hanging
COMMAND_TIMEOUT = 180


class PrefectCli:
    """``signoff`` (forked: see ``tests/support/cli_forks.py``) with ``PREFECT_API_URL``
    naming the test server."""

    def __init__(self, api_url: str, tmp_path: Path, forks: CliForks) -> None:
        self.tmp_path = tmp_path
        self.forks = forks
        self.env = {
            **os.environ,
            "PREFECT_API_URL": api_url,
            "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'not-there.db'}",
        }

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.forks.run(args, env=self.env, cwd=self.tmp_path, timeout=COMMAND_TIMEOUT)

    def ok(self, *args: str) -> str:
        done = self(*args)
        assert done.returncode == 0, f"{args} exited {done.returncode}: {done.stderr}"
        return done.stdout

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json"))


@pytest.fixture
def cli(prefect_api_url: str, tmp_path: Path, cli_forks: CliForks) -> PrefectCli:
    return PrefectCli(prefect_api_url, tmp_path, cli_forks)


def paused(backend: PrefectBackend, deployment: str) -> str:
    """Start a run of ``deployment``; its id once it waits for input with its form stored."""
    run = backend.start_run(deployment, {}, started_by=CAROL)

    def asking() -> bool:
        pause = backend.waiting_pause(run.id)
        return pause is not None and (pause.schema is not None or "wait-for-go" in deployment)

    wait_for(asking, timeout=120, what=f"{deployment} run {run.id} to pause")
    return run.id


def error_of(done: subprocess.CompletedProcess[str], status: int = 1) -> str:
    """The one ``error:`` line a failed command printed (and nothing on stdout)."""
    assert done.returncode == status, (done.returncode, done.stdout, done.stderr)
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith("error: ")
    return line


def test_runs_list_and_show_read_a_paused_prefect_run(
    cli: PrefectCli, prefect_backend: PrefectBackend
) -> None:
    run_id = paused(prefect_backend, "get-shirt-order/tests")

    listed = cli.json("runs", "list", "--backend", "prefect", "--state", "paused")
    [run] = [r for r in listed if r["id"] == run_id]
    assert (run["flow_name"], run["state"], run["started_by"]) == (
        "get-shirt-order",
        "paused",
        "U0CAROL",
    )
    table = cli.ok("runs", "list", "--backend", "prefect", "--flow", "get-shirt-order")
    assert table.splitlines()[0].split()[:3] == ["ID", "FLOW", "STATE"]
    assert [run_id[:8], "get-shirt-order", "paused"] in [
        line.split()[:3] for line in table.splitlines()
    ]
    # Only finished runs: the paused one is not among them.
    done = cli.json("runs", "list", "--backend", "prefect", "--state", "completed")
    assert run_id not in [r["id"] for r in done]

    # By the start of its id, as the list shows it: the state, the form's fields, the logs
    # (which Prefect ships in batches).
    wait_for(
        lambda: any("Pausing flow" in e.message for e in prefect_backend.detail(run_id).logs),
        timeout=60,
        what=f"the pause in the logs of {run_id}",
    )
    text = cli.ok("runs", "show", "--backend", "prefect", run_id[:8])
    assert f"Run {run_id}" in text
    assert "state       paused (Paused)" in text
    assert "paused-1  waiting  pause  ShirtOrder" in text
    assert 'field size   string; required; one of "small", "medium", "large", "xlarge"' in text
    assert 'field color  string; required; one of "red", "green", "black"' in text
    assert "Pausing flow, execution will continue" in text
    assert "U0CAROL via slack: run.started" in text

    detail = cli.json("runs", "show", "--backend", "prefect", run_id)
    [pause] = detail["pauses"]
    assert pause["status"] == "waiting"
    assert pause["schema"]["required"] == ["size", "color"]
    assert [r["action"] for r in detail["audit"]] == ["run.started"]
    prefect_backend.cancel(run_id, by=CAROL)


def test_runs_resume_names_every_field_error_then_resumes_the_prefect_run(
    cli: PrefectCli, prefect_backend: PrefectBackend
) -> None:
    run_id = prefect_backend.start_run("get-shirt-order/tests", {}, started_by=CAROL).id
    # Until the run asks, and its form can be read: a resume right after it finds it.
    asked = cli.ok(
        *("runs", "wait", "--backend", "prefect", run_id[:8]),
        *("--until", "paused", "--timeout", "120"),
    )
    assert asked == f"{run_id} paused (Paused)\n"

    refused = cli(
        *("runs", "resume", "--backend", "prefect", run_id[:8]),
        *("--input", '{"size": "tiny"}', "--as", "alice"),
    )
    line = error_of(refused)
    # Both fields, each by name, as the Slack form shows them; nothing reached Prefect.
    assert f"input for run {run_id} rejected:" in line
    assert "size: must be one of: small, medium, large, xlarge" in line
    assert "color: is required" in line
    assert prefect_backend.waiting_pause(run_id) is not None
    assert prefect_backend.get_run(run_id).state is RunState.PAUSED

    out = cli.ok(
        *("runs", "resume", "--backend", "prefect", run_id[:8]),
        *("--input", '{"size": "small", "color": "red"}', "--as", "alice"),
    )
    assert out == f"resumed {run_id} (input 'paused-1') as alice\n"

    # `runs wait` follows the run on Prefect until it ends.
    finished = cli.ok("runs", "wait", "--backend", "prefect", run_id, "--timeout", "120")
    assert finished == f"{run_id} completed (Completed)\n"
    detail = cli.json("runs", "show", "--backend", "prefect", run_id)
    [pause] = detail["pauses"]
    assert (pause["status"], pause["responder"]) == ("accepted", "alice")
    assert pause["response"] == {"size": "small", "color": "red"}
    [answered] = [r for r in detail["audit"] if r["action"] == "answer.received"]
    assert (answered["actor_id"], answered["via"]) == ("alice", "cli")
    text = cli.ok("runs", "show", "--backend", "prefect", run_id)
    assert "answered  by alice at " in text
    assert "alice via cli: answer.received [paused-1]" in text

    # Answering it again: nothing waits any more, and the command says so.
    again = cli(
        *("runs", "resume", "--backend", "prefect", run_id),
        *("--input", '{"size": "small", "color": "red"}'),
    )
    assert "is completed (Completed) and does not wait for input" in error_of(again)


def test_runs_cancel_and_reassign_act_on_a_paused_prefect_run(
    cli: PrefectCli, prefect_backend: PrefectBackend
) -> None:
    run_id = paused(prefect_backend, "wait-for-go/tests")
    text = cli.ok("runs", "show", "--backend", "prefect", run_id)
    assert "input     none (resume it without --input)" in text
    # An answer to a pause that takes none is refused by name, not dropped unread.
    given = cli("runs", "resume", "--backend", "prefect", run_id, "--input", '{"go": true}')
    assert "takes no input; leave --input out" in error_of(given, status=2)

    out = cli.ok("runs", "reassign", "--backend", "prefect", run_id, "--to", "bob", "--as", "al")
    assert out == f"input 'paused-1' of {run_id} is now bob's to answer\n"
    pause = prefect_backend.waiting_pause(run_id)
    assert pause is not None and [d.to for d in pause.delegations] == ["bob"]

    # The permissions as in Slack: once handed to bob, only he or its starter may cancel.
    refused = cli("runs", "cancel", "--backend", "prefect", run_id[:8], "--as", "al")
    assert "al may not cancel: only whoever started it or its approvers (bob)" in error_of(refused)
    out = cli.ok("runs", "cancel", "--backend", "prefect", run_id[:8], "--as", "U0CAROL")
    assert out.startswith((f"cancelled {run_id} by U0CAROL", f"cancelling {run_id} by U0CAROL"))
    # The served flow's runner stops its process: Prefect then has it Cancelled.
    ended = cli("runs", "wait", "--backend", "prefect", run_id, "--timeout", "120")
    assert ended.returncode == 1, ended.stderr  # it did not complete
    assert ended.stdout.startswith(f"{run_id} cancelled (Cancelled")
    trail = cli.json("runs", "show", "--backend", "prefect", run_id)["audit"]
    assert [(r["action"], r["actor_id"], r["via"]) for r in trail][-3:] == [
        ("pause.reassigned", "al", "cli"),
        ("refused", "al", "cli"),
        ("run.cancelled", "U0CAROL", "cli"),
    ]
    assert prefect_backend.get_pause(run_id, "paused-1").status is not PauseStatus.WAITING
    again = cli("runs", "cancel", "--backend", "prefect", run_id)
    assert error_of(again) == f"error: run {run_id} is already cancelled"


def test_a_prefect_request_is_not_handed_to_someone_its_rules_refuse(
    cli: PrefectCli, prefect_backend: PrefectBackend, tmp_path: Path
) -> None:
    # Handed to the run's starter under forbid_starter, the request was left to nobody:
    # the starter is refused as the starter, everyone else as not the approver.
    rules = tmp_path / "permissions.json"
    rules.write_text(json.dumps({"greet-user": {"approvers": ["U0BOB"], "forbid_starter": True}}))
    cli.env["SIGNOFF_PREFECT_PERMISSIONS"] = str(rules)
    run_id = paused(prefect_backend, "greet-user/tests")
    reassign = ("runs", "reassign", "--backend", "prefect", run_id)

    refused = cli(*reassign, "--to", "U0CAROL", "--as", "U0BOB")
    # U0BOB may hand it on; it is U0CAROL who may not have it (it said U0BOB may not).
    barred = "U0CAROL started it, and the person who started a run may not answer it"
    assert error_of(refused) == f"error: U0CAROL may not be handed run {run_id}: {barred}"
    trail = cli.json("runs", "show", "--backend", "prefect", run_id)["audit"]
    assert [(r["action"], r["actor_id"], r["data"]) for r in trail][-1] == (
        "refused",
        "U0BOB",
        {"action": "reassign", "rule": barred},
    )
    # Handed to themselves, it was recorded as handed over and announced in the thread.
    itself = cli(*reassign, "--to", "U0BOB", "--as", "U0BOB")
    assert error_of(itself) == (
        "error: U0BOB may not reassign: it is already yours; hand it to someone else"
    )
    assert prefect_backend.waiting_pause(run_id).delegations == ()
    # Nothing was handed over: the approver still answers it.
    answer = ("--input", '{"name": "Ada"}', "--as", "U0BOB")
    out = cli.ok("runs", "resume", "--backend", "prefect", run_id, *answer)
    assert out == f"resumed {run_id} (input 'paused-1') as U0BOB\n"


def test_who_handed_a_prefect_request_on_no_longer_answers_it_through_a_group(
    cli: PrefectCli, prefect_backend: PrefectBackend, tmp_path: Path
) -> None:
    # Handing it on takes bob off the list, not out of the group on it: he gave the
    # decision away, and still answered it as a member of S0OPS.
    rules = tmp_path / "permissions.json"
    rules.write_text(json.dumps({"greet-user": {"approvers": ["U0BOB", "S0OPS"]}}))
    cli.env["SIGNOFF_PREFECT_PERMISSIONS"] = str(rules)
    run_id = paused(prefect_backend, "greet-user/tests")
    cli.ok("runs", "reassign", "--backend", "prefect", run_id, "--to", "U0ALICE", "--as", "U0BOB")

    resume = ("runs", "resume", "--backend", "prefect", run_id, "--input", '{"name": "Ada"}')
    refused = cli(*resume, "--as", "U0BOB", "--group", "S0OPS")
    assert error_of(refused) == (
        f"error: U0BOB may not answer run {run_id}: U0BOB handed it to U0ALICE, so the "
        "decision is no longer theirs (who may: S0OPS, U0ALICE)"
    )
    out = cli.ok(*resume, "--as", "U0ALICE")
    assert out == f"resumed {run_id} (input 'paused-1') as U0ALICE\n"


@pytest.mark.parametrize(
    ("args", "option"),
    [
        (("runs", "list", "--answered-by", "bob"), "--answered-by"),
        (("runs", "list", "--started-by", "bob"), "--started-by"),
        (("runs", "list", "--since", "2h"), "--since"),
        (("runs", "resume", "0" * 8, "--verdict-timeout", "5"), "--verdict-timeout"),
    ],
)
def test_options_only_the_engine_honours_are_refused_with_prefect(
    cli: PrefectCli, args: tuple[str, ...], option: str
) -> None:
    line = error_of(cli(*args, "--backend", "prefect"), status=2)
    assert f"{option} is not available with --backend prefect" in line


def test_a_prefect_run_not_there_is_named(cli: PrefectCli) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    assert f"no run with id '{missing}'" in error_of(
        cli("runs", "show", "--backend", "prefect", missing)
    )
    assert "'--before'" in error_of(
        cli("runs", "list", "--backend", "prefect", "--before", missing), status=2
    )


def test_without_prefect_api_url_the_command_names_the_setting(
    cli: PrefectCli, monkeypatch: pytest.MonkeyPatch
) -> None:
    del cli.env["PREFECT_API_URL"]
    monkeypatch.chdir(cli.tmp_path)  # no .env of the repository's
    assert error_of(cli("runs", "list", "--backend", "prefect")) == (
        "error: PREFECT_API_URL is not set"
    )


def test_runs_list_of_only_suspended_runs_pages_through_the_paused_ones_between(
    prefect_api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prefect has one PAUSED type for paused and suspended runs: a page of one of them
    must still hold --limit runs when more exist, and end with the command for the next."""
    import httpx

    api = prefect_api_url.rstrip("/")

    def posted(path: str, body: dict[str, Any]) -> str | None:
        # A busy Prefect server answers 503 for a moment; it is then asked again.
        answer = httpx.post(f"{api}{path}", json=body)
        return str(answer.json()["id"]) if answer.status_code < 300 else None

    flow_id = wait_for(lambda: posted("/flows/", {"name": "paging-states"}), what="a flow")

    def create(suspended: bool) -> str:
        state = {
            "type": "PAUSED",
            "name": "Suspended" if suspended else "Paused",
            "state_details": {"pause_reschedule": suspended},
        }
        body = {"flow_id": flow_id, "state": state}
        return wait_for(lambda: posted("/flow_runs/", body), what="a paused run")

    # Newest first: suspended, paused, suspended, paused, suspended, paused.
    made = [create(suspended=i % 2 == 1) for i in range(6)]
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    # The command logs to this test's captured stderr: later tests must not log there.
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        args = ["runs", "list", "--backend", "prefect", "--flow", "paging-states"]
        args += ["--state", "suspended", "--limit", "2"]
        status, out, err = run_cli(capsys, *args, "--json")
        assert status == 0, err
        assert [r["id"] for r in json.loads(out)] == [made[5], made[3]]
        assert err.startswith("more: ") and f" --before {made[3]} " in err, err
        next_page = [w for w in shlex.split(err.removeprefix("more: "))[1:] if w != "--json"]
        status, out, err = run_cli(capsys, *next_page, "--json")
        assert (status, [r["id"] for r in json.loads(out)], err) == (0, [made[1]], "")
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
        for run_id in made:
            httpx.post(
                f"{api}/flow_runs/{run_id}/set_state",
                json={"state": {"type": "CANCELLED"}, "force": True},
            )


def test_runs_list_longer_than_prefect_reads_at_once_is_read_in_pages(
    prefect_api_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Prefect reads at most 200 runs a request: --limit 250, which the help allows, failed
    with "Prefect refused POST /flow_runs/filter: Invalid limit"."""
    import httpx

    api = prefect_api_url.rstrip("/")

    def posted(path: str, body: dict[str, Any]) -> str | None:
        # A busy Prefect server answers 503 for a moment; it is then asked again.
        answer = httpx.post(f"{api}{path}", json=body)
        return str(answer.json()["id"]) if answer.status_code < 300 else None

    flow_id = wait_for(lambda: posted("/flows/", {"name": "long-list"}), what="a flow")
    body = {"flow_id": flow_id, "state": {"type": "COMPLETED", "name": "Completed"}}
    made = {wait_for(lambda: posted("/flow_runs/", body), what="a run") for _ in range(203)}
    monkeypatch.setenv("PREFECT_API_URL", prefect_api_url)
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        args = ["runs", "list", "--backend", "prefect", "--flow", "long-list", "--json"]
        status, out, err = run_cli(capsys, *args, "--limit", "250")
        assert (status, err) == (0, "")
        listed = [r["id"] for r in json.loads(out)]
        assert len(listed) == 203 and set(listed) == made
        status, out, err = run_cli(capsys, *args, "--limit", "201")
        assert status == 0, err
        assert [r["id"] for r in json.loads(out)] == listed[:201]
        assert err.startswith("more: ") and f" --before {listed[200]} " in err, err
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)
