"""pytest plugin: the ``slack_sandbox`` and ``signoff_bot`` fixtures.

Installing Signoff registers it (the ``pytest11`` entry point), so a project's tests use
the fixtures without any ``conftest.py``::

    def test_posts_approval_request(slack_sandbox):
        client = slack_sandbox.client()
        my_app.notify(client, channel="C0GENERAL")
        message = slack_sandbox.wait_for(lambda ws: ws.channel("C0GENERAL").last)
        assert "Approve" in message.text


    def test_deploy_needs_bob(signoff_bot):
        run = signoff_bot.engine.submit("deploy-production", {"version": "1.2"})
        prompt = signoff_bot.root_message(run.id)
        signoff_bot.driver.click("bob", prompt, action_id="provide_input")

``signoff_bot`` is a running bot (``bot.testing.RunningBot``) on a fresh SQLite database
with a worker, served against a fresh sandbox. It loads the flows listed in the
``signoff_flows`` ini option (files or modules, one per line; a file's path is read from
the ini file's folder) and every flow the test modules define. Each test gets its own;
both fixtures stop when the test ends. Outside pytest, use ``with SlackSandbox() as slack: ...`` or ``with running_bot(...) as bot: ...``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from signoff.bot.sandbox.sandbox import SlackSandbox

__all__ = ["listed_flows", "pytest_addoption", "signoff_bot", "slack_sandbox"]


def pytest_addoption(parser: pytest.Parser) -> None:
    """Declare the ``signoff_flows`` ini option."""
    parser.addini(
        "signoff_flows",
        "Flows files or modules that the signoff_bot fixture loads (one per line).",
        type="linelist",
        default=[],
    )


def listed_flows(config: pytest.Config) -> list[str]:
    """The ``signoff_flows`` entries: a file or folder is found beside the ini file that
    lists it, wherever pytest runs (an editor runs one test from its own folder); a
    module name (``myteam.flows``) is kept as written."""
    base = config.inipath.parent if config.inipath is not None else config.rootpath
    found = []
    for entry in config.getini("signoff_flows"):
        path = base / str(entry)
        found.append(str(path) if path.exists() else str(entry))
    return found


@pytest.fixture
def slack_sandbox() -> Iterator[SlackSandbox]:
    """A started :class:`SlackSandbox`, stopped after the test."""
    with SlackSandbox() as sandbox:
        yield sandbox


@pytest.fixture
def signoff_bot(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    """A running bot (``bot.testing.RunningBot``) on a fresh SQLite database."""
    from signoff.bot.testing import running_bot  # the engine loads only for tests that use it

    flows = listed_flows(request.config)
    with running_bot(flows=flows, database_url=f"sqlite:///{tmp_path / 'signoff.db'}") as bot:
        yield bot
