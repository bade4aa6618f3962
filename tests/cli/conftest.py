"""The ``cli`` fixture: the command line against this test's database; ``project``: a
folder with a flows file and a SQLite database to run ``signoff`` in; and the logging
set-up each in-process ``main()`` call makes, undone after each test."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.test_cli import Cli
from tests.support.cli_forks import CliForks

FLOWS = '''
from signoff.engine import flow


@flow(approvers=["U024BE7LH"], forbid_starter=True)
def access_request(user: str, days: int = 7) -> dict:
    """Grant temporary access."""
    return {"user": user, "days": days}
'''


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "flows.py").write_text(FLOWS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SIGNOFF_DATABASE_URL", f"sqlite:///{tmp_path / 'ops.db'}")
    return tmp_path


@pytest.fixture
def cli(database_url: str, tmp_path: Path, cli_forks: CliForks) -> Iterator[Cli]:
    # The database comes migrated (copied from a template), so processes started at the
    # same moment do not race on its first migration ("database is locked").
    runner = Cli(database_url, tmp_path, cli_forks)
    yield runner
    runner.stop_workers()


@pytest.fixture(autouse=True)
def logging_as_it_was() -> Iterator[None]:
    """A command configures logging to the stderr of its process, which in a test is the
    test's captured stream, closed once the test ends; the next test's log lines must not
    go there ("Logging error ... I/O operation on closed file")."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
