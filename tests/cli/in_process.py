"""Running ``signoff`` in the test's own process: ``main`` with arguments, and what it
printed."""

from __future__ import annotations

import pytest

from signoff.bot.cli.main import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The exit status, standard output and standard error of ``signoff ARGS...``."""
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err
