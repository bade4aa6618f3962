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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from signoff.engine import *  # noqa: F403  (the engine's public API is Signoff's)
    from signoff.engine.input import AutomaticRunInput as AutomaticRunInput
    from signoff.engine.input import RunInput as RunInput

    __version__: str

#: names taken from ``signoff.engine.input``; every other one is ``signoff.engine``'s
_INPUT = ("AutomaticRunInput", "RunInput")


def _engine() -> Any:
    return importlib.import_module("signoff.engine")


def __getattr__(name: str) -> Any:
    # Each name is taken from the engine when first used, so that the ``signoff`` command
    # (which lives in this package) starts without the database layer (see engine's
    # ``_LAZY``) and without reading the installed version; and the engine itself is
    # imported then, not with the package: the command's entry point (``bot.cli.entry``)
    # is reached without it, so a Ctrl-C while the command imports is its to answer.
    if name == "__all__":
        value: Any = [*_engine().__all__, *_INPUT, "__version__"]
    elif name == "engine":
        value = _engine()
    elif name in _engine().__all__:
        value = getattr(_engine(), name)
    elif name in _INPUT:
        value = getattr(importlib.import_module("signoff.engine.input"), name)
    elif name == "__version__":
        value = _version()
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__getattr__("__all__")})


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("signoff")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"
