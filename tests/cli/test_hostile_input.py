"""Input an operator gets wrong, or that was built to break things, is refused with one line
naming what is wrong, a non-zero exit status, and nothing run or stored."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli, error_line
from tests.support.cli_forks import CliForks


@pytest.fixture
def sqlite_cli(tmp_path: Path, cli_forks: CliForks) -> Cli:
    """The command line for commands whose database does not matter (one backend is enough)."""
    return Cli(f"sqlite:///{tmp_path / 'signoff.db'}", tmp_path, cli_forks)


def test_an_answers_file_without_flows_is_refused_not_ignored(sqlite_cli: Cli) -> None:
    # The built-in demo answers itself: a file given to it was silently never read, even
    # one that is not JSON at all, and the demo exited 0.
    (sqlite_cli.tmp_path / "answers.json").write_bytes(b"\x00\xff not json")
    done = sqlite_cli("demo", "--answers", "answers.json")
    assert done.returncode == 2
    assert "--answers answers your flows: give --flows too" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    ("answers", "named"),
    [
        ("[" * 5000 + "]" * 5000, "JSON nested too deeply (more than 100 levels"),
        (
            '{"cli-approve": [{"approved": true, "approved": false}]}',
            "the name 'approved' is given twice in one object",
        ),
        ('{"cli-approve": [{"approved": true, "note": NaN}]}', "NaN is not a JSON number"),
        ('{"cli-approve": [{"approved": true, "note": "\\ud800"}]}', "lone surrogate"),
    ],
    ids=["deep", "duplicate-name", "nan", "lone-surrogate"],
)
def test_an_answers_file_the_demo_cannot_use_is_refused_by_name_before_any_run(
    sqlite_cli: Cli, answers: str, named: str
) -> None:
    # Before: a RecursionError ("unexpected"), the last of two answers taken, NaN sent on,
    # and a lone surrogate the engine refused while the demo waited 30 s to time out.
    (sqlite_cli.tmp_path / "answers.json").write_text(answers)
    done = sqlite_cli(
        "demo", "--flows", str(sqlite_cli.flows), "--answers", "answers.json", "--param", "n=1"
    )
    line = error_line(done)
    assert line.startswith("error: answers.json: ") and named in line
    assert done.returncode == 1


def test_a_good_answers_file_still_answers(sqlite_cli: Cli) -> None:
    answers = {"cli-approve": [{"approved": True, "note": "fine"}]}
    (sqlite_cli.tmp_path / "answers.json").write_text(json.dumps(answers))
    done = sqlite_cli(
        "demo", "--flows", str(sqlite_cli.flows), "--answers", "answers.json", "--param", "n=1"
    )
    assert done.returncode == 1, done.stderr  # cli-broken fails, as it is written to
    assert "cli-approve" in done.stdout and "Answered by" in done.stdout


def test_an_answer_too_long_for_its_text_box_is_refused_by_name_before_it_is_sent(
    sqlite_cli: Cli,
) -> None:
    # Before: the demo skipped the Slack client's checks and sent 3 MB on, past the bot's
    # body limit: "unexpected URLError: Broken pipe", naming neither field nor limit.
    answers = {"cli-approve": [{"approved": True, "note": "x" * 3_000_000}]}
    (sqlite_cli.tmp_path / "answers.json").write_text(json.dumps(answers))
    done = sqlite_cli(
        "demo", "--flows", str(sqlite_cli.flows), "--answers", "answers.json", "--param", "n=1"
    )
    assert done.returncode == 1
    assert (
        "✘ cli-approve: answers.json, input 1: field 'note' holds 3,000,000 characters, "
        "but its text box takes at most 3,000: the Slack client would not send it"
    ) in done.stderr
    assert "URLError" not in done.stderr and "Traceback" not in done.stderr
    assert "xxxx" not in done.stdout  # refused before the transcript shows it submitted


def test_an_answer_typed_too_long_is_refused_and_asked_again(sqlite_cli: Cli) -> None:
    assert sqlite_cli.forks is not None
    too_long = json.dumps({"approved": True, "note": "x" * 3001})
    done = sqlite_cli.forks.run(
        ["demo", "--flows", str(sqlite_cli.flows), "--param", "n=1"],
        env=sqlite_cli.env,
        cwd=sqlite_cli.tmp_path,
        input=f'{too_long}\n{{"approved": true, "note": "fine"}}\nskip\nskip\n',
    )
    assert (
        "cli-approve input 1: field 'note' holds 3,001 characters, but its text box takes "
        "at most 3,000: the Slack client would not send it; try again"
    ) in done.stderr
    assert "Answered by" in done.stdout and "Traceback" not in done.stderr
    assert "cli-approve        completed" in done.stdout, done.stdout[-2000:]


#: a flow whose form has an email, a URL and a number box (names unique to this module)
CONTACT_FLOWS = """
import pydantic

from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Contact(RunInput):
    email: pydantic.EmailStr
    site: pydantic.AnyHttpUrl
    count: int = pydantic.Field(ge=1, le=10)


@flow(name="hostile-contact")
def contact() -> str:
    answer = pause_flow_run(wait_for_input=Contact)
    return f"{answer.email} {answer.site} {answer.count}"
"""
GOOD_CONTACT = {"email": "ann@example.com", "site": "https://example.com", "count": 3}
BIG = 3_000_000
WOULD_NOT = ": the Slack client would not send it"


@pytest.mark.parametrize(
    ("field", "value", "refused"),
    [
        (
            "email",
            "a" * BIG + "@example.com",
            f"field 'email' holds {BIG + 12:,} characters, but its email box takes at most 3,000"
            + WOULD_NOT,
        ),
        (
            "site",
            "https://example.com/" + "a" * BIG,
            f"field 'site' holds {BIG + 20:,} characters, but its URL box takes at most 3,000"
            + WOULD_NOT,
        ),
        (
            "count",
            "1" * BIG,
            f"field 'count' holds {BIG:,} characters, but its number box takes at most 3,000"
            + WOULD_NOT,
        ),
        (
            "email",
            "ann at example.com",
            "field 'email' is 'ann at example.com', which its email box refuses "
            '("Please enter a valid email address.")' + WOULD_NOT,
        ),
        (
            "site",
            "ftp://example.com",
            "field 'site' is 'ftp://example.com', which its URL box refuses "
            '("Please enter a valid URL.")' + WOULD_NOT,
        ),
        (
            "count",
            11,
            "field 'count' is '11', which its number box refuses "
            '("Please enter a number between 1 and 10.")' + WOULD_NOT,
        ),
        (
            "count",
            2.5,
            "field 'count' is '2.5', which its number box refuses "
            '("Please enter a whole number.")' + WOULD_NOT,
        ),
        (
            "count",
            True,
            "field 'count' cannot be entered: number_input takes a number or str, not bool",
        ),
    ],
    ids=[
        "email-too-long",
        "url-too-long",
        "number-too-long",
        "not-an-email",
        "not-http",
        "above-maximum",
        "not-whole",
        "a-boolean",
    ],
)
def test_an_answer_its_email_url_or_number_box_refuses_is_refused_by_name_before_it_is_sent(
    sqlite_cli: Cli, field: str, value: object, refused: str
) -> None:
    # Before: 3 MB in an email or URL box broke the connection ("unexpected URLError:
    # Broken pipe"), or the demo timed out waiting for the run; True for a number was
    # "unexpected FieldRejected"; a malformed value the Slack client refuses was sent on,
    # and the run cancelled as "answers.json has no answer for input 1".
    (sqlite_cli.tmp_path / "contact.py").write_text(CONTACT_FLOWS)
    answers = {"hostile-contact": [{**GOOD_CONTACT, field: value}]}
    (sqlite_cli.tmp_path / "answers.json").write_text(json.dumps(answers))
    done = sqlite_cli("demo", "--flows", "contact.py", "--answers", "answers.json")
    assert done.returncode == 1
    assert f"✘ hostile-contact: answers.json, input 1: {refused}\n" in done.stderr
    assert "URLError" not in done.stderr and "Traceback" not in done.stderr
    assert "unexpected" not in done.stderr
    assert "hostile-contact    cancelled" in done.stdout
    # Refused before it is shown submitted (40 in a row: no run id can hold that by chance).
    assert "a" * 40 not in done.stdout + done.stderr


def test_an_email_url_or_number_typed_wrong_is_refused_and_asked_again(sqlite_cli: Cli) -> None:
    assert sqlite_cli.forks is not None
    (sqlite_cli.tmp_path / "contact.py").write_text(CONTACT_FLOWS)
    wrong = [
        {**GOOD_CONTACT, "email": "x" * 3001 + "@example.com"},
        {**GOOD_CONTACT, "site": "example.com"},
        {**GOOD_CONTACT, "count": "ten"},
    ]
    typed = "".join(json.dumps(a) + "\n" for a in [*wrong, GOOD_CONTACT])
    done = sqlite_cli.forks.run(
        ["demo", "--flows", "contact.py"],
        env=sqlite_cli.env,
        cwd=sqlite_cli.tmp_path,
        input=typed,
    )
    for refused in (
        "field 'email' holds 3,013 characters, but its email box takes at most 3,000",
        "field 'site' is 'example.com', which its URL box refuses",
        "field 'count' is 'ten', which its number box refuses (\"Please enter a number.\")",
    ):
        assert f"hostile-contact input 1: {refused}" in done.stderr, done.stderr[-2000:]
    assert done.stderr.count("the Slack client would not send it; try again") == 3
    assert "Traceback" not in done.stderr
    assert "hostile-contact    completed" in done.stdout, done.stdout[-2000:]
    assert "ann@example.com https://example.com/ 3" in done.stdout


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("https://", "it names no host"),
        ("https://signoff.example.com/a b", "it holds a space"),
        ("https://signoff.example.com/?team=1", "takes no ?query or #fragment"),
        ("https://signoff.example.com:80443", "Port out of range"),
    ],
)
def test_manifest_refuses_a_url_slack_could_not_send_requests_to(
    sqlite_cli: Cli, url: str, named: str
) -> None:
    # Before: any text starting with https:// was taken, and the manifest printed (exit
    # 0) with request URLs such as "https:/slack/events" or ".../?team=1/slack/events".
    line = error_line(sqlite_cli("manifest", "--url", url))
    assert line.startswith(f"error: Invalid value for --url: expected an http(s) URL, got {url!r}")
    assert named in line


def test_a_time_before_the_year_1000_is_printed_with_four_digits(sqlite_cli: Cli) -> None:
    # Before: "1-01-01 00:00 UTC" (strftime's %Y drops the zeros on Linux).
    sqlite_cli.ok("db", "upgrade")
    done = sqlite_cli("db", "prune", "--dry-run", "--finished-before", "0001-01-01")
    assert done.returncode == 0, done.stderr
    assert done.stdout == (
        "0 run(s) finished before 0001-01-01 00:00 UTC would be deleted (none deleted)\n"
    )
    done = sqlite_cli("runs", "list", "--since", "0999-05-01", "--until", "0099-01-01T12:30")
    assert done.returncode == 2
    assert (
        "--since (0999-05-01 00:00:00 UTC) must be before --until (0099-01-01 12:30:00 UTC)"
        in done.stderr
    )


def test_flows_from_a_path_that_is_no_regular_file_say_so_not_no_such_file(
    sqlite_cli: Cli,
) -> None:
    # Before: "/dev/null: no such file", though it exists.
    fifo = sqlite_cli.tmp_path / "flows.py"
    os.mkfifo(fifo)
    for source in ("/dev/null", str(fifo)):
        done = sqlite_cli("demo", "--flows", source)
        assert done.returncode == 1
        assert error_line(done) == (
            f"error: cannot load flows from {source}: not a regular file, so not a Python file"
        )
    done = sqlite_cli("demo", "--flows", str(sqlite_cli.tmp_path / "missing.py"))
    assert error_line(done).endswith("missing.py: no such file")
