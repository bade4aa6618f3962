"""pytest plugin providing the ``slack_sandbox`` fixture.

Enable it in your ``conftest.py``::

    pytest_plugins = ["bot.sandbox.pytest_plugin"]

Then, in a test::

    def test_posts_approval_request(slack_sandbox):
        client = slack_sandbox.client()
        my_app.notify(client, channel="C0GENERAL")
        message = slack_sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").last)
        assert "Approve" in message.text

Each test gets a fresh, started sandbox; it is stopped when the test ends. Outside pytest, use
``with SlackSandbox() as slack: ...`` directly.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.sandbox.sandbox import SlackSandbox

__all__ = ["slack_sandbox"]


@pytest.fixture
def slack_sandbox() -> Iterator[SlackSandbox]:
    """A started :class:`SlackSandbox`, stopped after the test."""
    with SlackSandbox() as sandbox:
        yield sandbox
