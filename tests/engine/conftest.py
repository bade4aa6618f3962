"""Fixtures the engine's tests share."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from signoff.engine import Engine, Worker


@pytest.fixture
def worker(engine: Engine) -> Iterator[Worker]:
    """A worker on ``engine``, taking runs (a suspended run's re-run) until the test ends."""
    made = Worker(engine)
    made.start()
    yield made
    made.stop()
