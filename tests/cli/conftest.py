"""The ``cli`` fixture: the command line against this test's database."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff.engine import Engine, EngineSettings
from tests.cli.test_cli import Cli


@pytest.fixture
def cli(database_url: str, tmp_path: Path) -> Iterator[Cli]:
    # Create the schema before any subprocess starts: processes that open a brand-new
    # SQLite file at the same moment race on the first migration ("database is locked").
    Engine(EngineSettings.load(database_url=database_url)).close()
    runner = Cli(database_url, tmp_path)
    yield runner
    runner.stop_workers()
