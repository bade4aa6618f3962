"""Each Prefect test gets its own backend on the session's server (``prefect_api_url``) and,
with ``bot``, its own Slack sandbox and served bot; flow runs are told apart by id."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

#: the flows file the tests' own flows are served from, its deployments' name and number
SERVED_FLOWS = Path(__file__).with_name("served_flows.py")
SERVED_NAME = "served"
SERVED_DEPLOYMENTS = 5


@pytest.fixture
def prefect_backend(prefect_api_url: str) -> Iterator[Any]:
    from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings

    backend = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, reconcile_seconds=2.0))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def served_flows(prefect_api_url: str) -> str:
    """The deployment name under which ``served_flows.py``'s flows are served on the
    session's server (by one process, started by the first test that asks)."""
    from tests.conftest import PREFECT

    PREFECT.serve(SERVED_FLOWS, SERVED_NAME, deployments=SERVED_DEPLOYMENTS)
    return SERVED_NAME


@pytest.fixture
def bot(prefect_backend: Any) -> Iterator[Any]:
    from signoff.bot.testing import serving

    with serving(prefect_backend) as served:
        yield served
