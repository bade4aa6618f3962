"""``signoff runs list``: filters by state, flow, who started, who answered and time, pages
that end with the command for the next one, and errors that name the option."""

from __future__ import annotations

import json
import shlex
import uuid
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import pytest

from signoff.engine import (
    Engine,
    EngineSettings,
    RunState,
    RunSuspended,
    flow,
    set_engine,
    suspend_flow_run,
)
from tests.cli.in_process import run_cli

BASE = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


@flow(name="list-ask")
def list_ask() -> int:
    return suspend_flow_run(wait_for_input=int)


def ids(out: str) -> list[str]:
    return [run["id"] for run in json.loads(out)]


@pytest.fixture
def made(database_url: str, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Nine runs an hour apart from BASE, oldest first: carol started 0-4 and dave 5-8;
    runs 0, 3 and 6 failed, the others completed; then run 9, an hour later still, of
    flow list-ask, which bob answered."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", database_url)
    engine = Engine(EngineSettings.load(database_url=database_url))
    runs = []
    try:
        for i in range(9):
            engine.store.clock = lambda i=i: BASE + timedelta(hours=i)
            run = engine.store.create_run(
                uuid.uuid4().hex,
                "even" if i % 2 == 0 else "odd",
                None,
                b"",
                {},
                RunState.FAILED if i % 3 == 0 else RunState.COMPLETED,
                owner=None,
                started_by="carol" if i < 5 else "dave",
            )
            runs.append(run.id)
        engine.store.clock = lambda: BASE + timedelta(hours=9)
        previous = set_engine(engine)
        try:
            with pytest.raises(RunSuspended) as stopped:
                list_ask()
        finally:
            set_engine(previous)
        runs.append(stopped.value.run_id)
        engine.resume(runs[9], {"value": 1}, "bob")
    finally:
        engine.close()
    return runs


def test_filters(made: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    newest_first = made[::-1]
    status, out, _ = run_cli(capsys, "runs", "list", "--json")
    assert status == 0 and ids(out) == newest_first

    _, out, _ = run_cli(capsys, "runs", "list", "--started-by", "carol", "--json")
    assert ids(out) == newest_first[5:]
    _, out, _ = run_cli(
        capsys, "runs", "list", "--started-by", "dave", "--state", "failed", "--json"
    )
    assert ids(out) == [made[6]]
    _, out, _ = run_cli(capsys, "runs", "list", "--flow", "even", "--state", "completed", "--json")
    assert ids(out) == [made[8], made[4], made[2]]
    _, out, _ = run_cli(capsys, "runs", "list", "--answered-by", "bob", "--json")
    assert ids(out) == [made[9]]
    _, out, _ = run_cli(capsys, "runs", "list", "--answered-by", "carol")
    assert out == "no runs\n"

    # --since includes its instant, --until does not; offsets are honoured, no offset is UTC
    _, out, _ = run_cli(
        capsys,
        "runs",
        "list",
        "--since",
        "2026-11-02T12:00",
        "--until",
        "2026-11-02T16:00+01:00",
        "--json",
    )
    assert ids(out) == [made[5], made[4], made[3]]
    _, out, _ = run_cli(capsys, "runs", "list", "--since", "2026-11-03", "--json")
    assert ids(out) == []
    # an age counts back from now; these runs are older than a day
    _, out, _ = run_cli(capsys, "runs", "list", "--since", "1d", "--json")
    assert ids(out) == []

    # the table shows when each run was created
    _, out, _ = run_cli(capsys, "runs", "list", "--started-by", "dave", "--limit", "1")
    header, row = out.splitlines()
    assert header.split()[:5] == ["ID", "FLOW", "STATE", "CREATED", "(UTC)"]
    assert row.split()[:5] == [made[8][:8], "even", "completed", "2026-11-02", "17:00:00"]


def test_a_flow_no_run_is_stored_of_is_said_apart_from_an_empty_filter(
    made: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    """'--flow refnd' (a typo) printed 'no runs', as a flow whose runs the other filters
    leave out does."""
    status, out, err = run_cli(capsys, "runs", "list", "--flow", "evn")
    assert (status, out) == (0, "no runs\n")
    assert err == "note: no run of a flow named 'evn' is stored\n"
    status, out, err = run_cli(capsys, "runs", "list", "--flow", "even", "--state", "paused")
    assert (status, out, err) == (0, "no runs\n", "")


def test_pages_end_with_the_command_for_the_next_one(
    made: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    newest_first = made[::-1]
    args = ["runs", "list", "--state", "completed", "--state", "failed", "--limit", "4"]
    seen: list[str] = []
    while True:
        status, out, err = run_cli(capsys, *args, "--json")
        assert status == 0, err
        seen += ids(out)
        if not err:
            break
        assert err.startswith("more: signoff runs list --state completed --state failed")
        next_command = shlex.split(err.removeprefix("more: "))
        assert next_command[-3:] == ["--before", seen[-1], "--json"] and next_command[-4] == "4"
        args = [word for word in next_command[1:] if word != "--json"]
    assert seen == [r for r in newest_first if r != made[9]]  # list-ask's run is suspended
    assert len(seen) == 9

    # the cursor may be a unique prefix, as runs list shows ids
    _, out, _ = run_cli(capsys, "runs", "list", "--before", made[2][:8], "--json")
    assert ids(out) == [made[1], made[0]]


def test_the_next_pages_command_keeps_the_database_url_given_on_the_command_line(
    made: list[str],
    database_url: str,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """It named the subcommand's options only: run as printed, the next page read the
    default database (or SIGNOFF_DATABASE_URL's), and failed there or listed other runs."""
    monkeypatch.delenv("SIGNOFF_DATABASE_URL")
    first = ["-v", "--database-url", database_url, "runs", "list", "--limit", "4", "--json"]
    status, out, err = run_cli(capsys, *first)
    assert status == 0, err
    [more] = [line for line in err.splitlines() if line.startswith("more: ")]
    next_command = shlex.split(more.removeprefix("more: "))
    assert urlsplit(database_url).password is None  # one would be masked
    assert next_command[:4] == ["signoff", "-v", "--database-url", database_url]
    status, out, err = run_cli(capsys, *next_command[1:])
    assert status == 0, err
    assert ids(out) == made[::-1][4:8]


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--since", "yesterday"], "'--since': 'yesterday' is not a time"),
        (["--until", "2026-13-01"], "'--until': '2026-13-01' is not a time"),
        (
            ["--since", "2026-11-03", "--until", "2026-11-02"],
            "--since (2026-11-03 00:00:00 UTC) must be before --until",
        ),
        (["--since", "99999999w"], "'--since': '99999999w' reaches back before the year 1"),
        (
            ["--since", "9999-12-31T23:59:59-01:00"],
            "'--since': '9999-12-31T23:59:59-01:00' is outside the years 1 to 9999 in UTC",
        ),
        (
            ["--until", "0001-01-01T00:00+01:00"],
            "'--until': '0001-01-01T00:00+01:00' is outside the years 1 to 9999 in UTC",
        ),
        (["--before", "nope"], "'--before': no run 'nope'"),
        (["--limit", "0"], "'--limit'"),
        # past what the database's integers hold: refused by name, not an OverflowError
        (["--limit", "99999999999999999999"], "1<=x<=10000"),
        (["--state", "asleep"], "'--state'"),
        (["--flow", ""], "'--flow': is empty"),
    ],
)
def test_bad_filter_values_name_the_option(
    made: list[str], capsys: pytest.CaptureFixture[str], args: list[str], names: str
) -> None:
    status, out, err = run_cli(capsys, "runs", "list", *args)
    assert status == 2 and out == ""
    assert err.startswith("error: ") and names in err, err


def test_an_ambiguous_before_says_so_rather_than_no_run(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", database_url)
    engine = Engine(EngineSettings.load(database_url=database_url))
    try:
        for run_id in ("1a" + "0" * 30, "1b" + "0" * 30):
            engine.store.create_run(
                run_id, "even", None, b"", {}, RunState.COMPLETED, owner=None, started_by="carol"
            )
    finally:
        engine.close()
    status, out, err = run_cli(capsys, "runs", "list", "--before", "1")
    assert (status, out) == (2, "")
    # the runs it could be are named, to pick one
    assert "'--before': more than one run id starts with '1': 1a000000, 1b000000 (give a" in err
    status, out, err = run_cli(capsys, "runs", "list", "--before", "2")
    assert (status, out) == (2, "")
    assert "'--before': no run '2' (give a run id, or a unique prefix of one)" in err
    status, out, _ = run_cli(capsys, "runs", "list", "--before", "1b")
    assert status == 0 and out.splitlines()[1].startswith("1a000000")


def test_a_run_id_of_several_runs_names_them_and_acts_on_none(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`runs cancel 1a2b` said only that more than one run id starts with it: which, the
    person had to look up with `runs list`."""
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", database_url)
    engine = Engine(EngineSettings.load(database_url=database_url))
    try:
        for run_id in ("1a2b3c4d" + "0" * 24, "1a2b9f00" + "0" * 24, "1a2b9f00" + "1" * 24):
            engine.store.create_run(
                run_id, "even", None, b"", {}, RunState.RUNNING, owner=None, started_by="carol"
            )
    finally:
        engine.close()
    status, out, err = run_cli(capsys, "runs", "cancel", "1a2b")
    assert (status, out) == (1, "")
    # as people tell them apart: 8 characters, or more where two share them
    assert err == (
        "error: more than one run id starts with '1a2b' (1a2b3c4d0, 1a2b9f000, 1a2b9f001); "
        "give more of it\n"
    )
    status, out, err = run_cli(capsys, "runs", "show", "1a2b9f")
    assert (status, out) == (1, "")
    assert "more than one run id starts with '1a2b9f' (1a2b9f000, 1a2b9f001)" in err
    assert run_cli(capsys, "runs", "cancel", "1a2b3")[0] == 0
