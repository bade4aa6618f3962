"""Input an operator gets wrong, or that was built to break things, is refused with one line
naming what is wrong, a non-zero exit status, and nothing run or stored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
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
