"""Each Prefect test gets its own backend on the session's server (``prefect_api_url``) and,
with ``bot``, its own Slack sandbox and served bot; flow runs are told apart by id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture
def prefect_backend(prefect_api_url: str) -> Iterator[Any]:
    from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings

    backend = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, reconcile_seconds=2.0))
    try:
        yield backend
    finally:
        backend.close()


@pytest.fixture
def bot(prefect_backend: Any) -> Iterator[Any]:
    from signoff.bot.testing import serving

    with serving(prefect_backend) as served:
        yield served
