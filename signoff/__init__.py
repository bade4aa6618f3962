"""Signoff: Python flows that wait for the right person's decision in Slack.

One import name for everything Signoff offers, so that it cannot collide with a project's
own ``engine`` or ``bot``::

    from signoff import RunInput, flow, get_run_logger, pause_flow_run

    class Approval(RunInput):
        approved: bool

    @flow
    def deploy(version: str) -> None:
        answer = pause_flow_run(wait_for_input=Approval, timeout=600)
        get_run_logger().info("approved=%s", answer.approved)

``signoff`` is the flow engine's public API (``signoff.engine``) with the input models;
the Slack side lives in ``signoff.bot``: ``signoff.bot.testing.running_bot`` and the pytest
fixtures for your tests, ``signoff.bot.sandbox`` for a local Slack.

In a source checkout ``signoff/engine`` and ``signoff/bot`` are links to the repository's
``engine/`` and ``bot/``; a wheel holds them as real folders.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from signoff import engine as _engine
from signoff.engine import *  # noqa: F403  (the engine's public API is Signoff's)
from signoff.engine.input import AutomaticRunInput, RunInput

try:
    __version__ = version("signoff")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"

__all__ = [*_engine.__all__, "AutomaticRunInput", "RunInput", "__version__"]  # noqa: PLE0604
