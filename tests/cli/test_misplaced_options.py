"""``signoff``'s own options given after a command (as many tools allow) are refused
with where they go, not only "No such option"."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.in_process import run_cli


@pytest.mark.parametrize(
    ("command_line", "said"),
    [
        (
            ("runs", "list", "--database-url", "sqlite:///elsewhere.db"),
            "error: --database-url is an option of signoff itself and goes before the command:"
            " signoff --database-url URL runs list ...",
        ),
        (
            ("runs", "list", "--database-url=sqlite:///elsewhere.db"),
            "error: --database-url is an option of signoff itself and goes before the command:"
            " signoff --database-url URL runs list ...",
        ),
        (
            ("db", "upgrade", "-v"),
            "error: -v is an option of signoff itself and goes before the command:"
            " signoff -v db upgrade ...",
        ),
        (
            ("runs", "list", "--version"),
            "error: --version is an option of signoff itself: signoff --version",
        ),
    ],
)
def test_an_option_of_signoff_after_the_command_says_where_it_goes(
    capsys: pytest.CaptureFixture[str], command_line: tuple[str, ...], said: str
) -> None:
    status, out, err = run_cli(capsys, *command_line)
    assert (status, out, err) == (2, "", said + "\n")


def test_an_option_nobody_has_still_points_at_the_commands_help(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, _out, err = run_cli(capsys, "runs", "list", "--bogus")
    assert (status, err) == (
        2,
        "error: No such option '--bogus' (see 'signoff runs list --help')\n",
    )


def test_the_option_before_the_command_works(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'signoff.db'}"
    assert run_cli(capsys, "--database-url", url, "db", "upgrade")[0] == 0
    status, out, _err = run_cli(capsys, "--database-url", url, "runs", "list", "--json")
    assert (status, out) == (0, "[]\n")
