"""A real Prefect server for the tests: SQLite in a temporary PREFECT_HOME, the test flows
(``bot/demo/prefect_flows.py``) served as deployments named ``tests``.

Started once per test worker that runs a Prefect test (the ``prefect_api_url`` fixture in
``tests/conftest.py``); ``TEST_PREFECT_API_URL`` names one already running with those flows
served instead, for quick local reruns. Without the ``prefect`` extra the tests that need it are skipped, with
the command that installs it; in CI (``CI=true``) that is a failure.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FLOWS = ROOT / "bot" / "demo" / "prefect_flows.py"
#: deployments FLOWS serves
DEPLOYMENTS = 5
INSTALL = "pip install -c constraints.txt -e '.[prefect]'"


def require_prefect() -> None:
    """Skip the calling test without the extra (fail in CI)."""
    if importlib.util.find_spec("prefect") is not None:
        return
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI runs the Prefect tests: the prefect extra is missing ({INSTALL})")
    pytest.skip(f"the prefect extra is not installed: {INSTALL}", allow_module_level=True)


@contextmanager
def prefect_server() -> Iterator[str]:
    """A running server with FLOWS served; yields its API URL."""
    running = os.environ.get("TEST_PREFECT_API_URL")
    if running:
        yield running
        return
    from signoff.bot.backends.prefect.local import LocalPrefect

    prefect = LocalPrefect()
    try:
        prefect.start(timeout=900)
        prefect.serve_flows(FLOWS, "tests", deployments=DEPLOYMENTS, timeout=300)
        yield prefect.api_url
    finally:
        prefect.stop()
