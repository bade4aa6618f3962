"""Test your own approval flows end to end: engine, served bot and Slack sandbox in one call.

Example (pytest)::

    from signoff.bot.testing import running_bot

    def test_refund_needs_finance(tmp_path):
        with running_bot(flows=["flows/refunds.py"], database_url=f"sqlite:///{tmp_path}/t.db") as bot:
            run = bot.engine.submit("refund", {"order": "A-1"}, started_by="U0CAROL")
            prompt = bot.root_message(run.id)
            bot.driver.click("bob", prompt, action_id="provide_input")
            bot.driver.submit("bob", {"amount": 20, "approve": True})
            ...

The sandbox serves only loopback; nothing reaches Slack.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Protocol

from signoff.bot.backends import Backend
from signoff.bot.backends.embedded import EmbeddedBackend
from signoff.bot.config import BotSettings
from signoff.bot.forms.modals import ERROR_MARK
from signoff.bot.sandbox import ConditionTimeout, Driver, Message, OpenView, SlackSandbox
from signoff.bot.slack import ids
from signoff.bot.slack.server import Server
from signoff.engine import Engine, EngineSettings, set_engine

__all__ = ["RunningBot", "ServedBot", "form_errors", "outcome", "running_bot", "serving"]

SIGNING_SECRET = "sandbox-signing-secret"
DEFAULT_CHANNEL = "C0GENERAL"


class _ReadRun(Protocol):
    """A run as the engine or a backend returns it, for what a time-out says of it."""

    @property
    def state(self) -> Enum: ...

    @property
    def state_message(self) -> str | None: ...


class _InSandbox:
    """What a bot under test waits for in its Slack sandbox (``RunningBot``, ``ServedBot``)."""

    slack: SlackSandbox
    channel: str

    def root_message(self, run_id: str, channel: str | None = None, timeout: float = 10) -> Message:
        """Wait for the first message about run ``run_id`` (its prompt, the thread's root).

        Args:
            run_id: The run's id.
            channel: Where to look; the bot's default channel if None.
            timeout: Seconds to wait before ``ConditionTimeout`` is raised.
        """
        where = channel or self.channel
        try:
            return self.slack.wait_for(
                lambda ws: next(
                    (m for m in ws.channel(where).messages if run_id[:8] in m.text), None
                ),
                timeout=timeout,
            )
        except ConditionTimeout as exc:
            # A bare "condition not met" hid the usual cause: the flow failed (or finished)
            # before it asked for anything, so there was never a prompt to post.
            raise ConditionTimeout(
                f"no message about run {run_id[:8]} in {where} within {timeout}s; "
                f"{self._run_now(run_id)}"
            ) from exc

    def _run_now(self, run_id: str) -> str:
        """What became of run ``run_id``, to say why its prompt never came:
        ``the run is failed: RuntimeError: kaboom``."""
        try:
            run = self._get_run(run_id)
        except Exception as exc:  # reporting a timeout: any reason it cannot be read will do
            return f"the run could not be read: {exc}"
        message = run.state_message
        return f"the run is {run.state.value}" + (f": {message}" if message else "")

    def _get_run(self, run_id: str) -> _ReadRun:
        """The run as the bot's side reads it (it has ``state`` and ``state_message``)."""
        raise NotImplementedError

    def outcome(self, user: str, timeout: float = 10) -> OpenView:
        """Wait until the modal ``user`` submitted shows what became of the answer, and
        return that view.

        The bot acknowledges a form at once with a "Submitting..." view and then replaces it
        (``views.update``) with the outcome: "Answer recorded", the form again with errors
        under its inputs, or a notice saying why nothing was done.
        """
        return outcome(self.slack, user, timeout)


@dataclass
class RunningBot(_InSandbox):
    """What ``running_bot`` yields."""

    engine: Engine
    slack: SlackSandbox
    server: Server
    driver: Driver
    channel: str = DEFAULT_CHANNEL

    def _get_run(self, run_id: str) -> _ReadRun:
        return self.engine.get_run(run_id)


@dataclass
class ServedBot(_InSandbox):
    """What ``serving`` yields: the bot over any backend, on a fresh sandbox."""

    backend: Backend
    slack: SlackSandbox
    server: Server
    driver: Driver
    channel: str = DEFAULT_CHANNEL

    def _get_run(self, run_id: str) -> _ReadRun:
        return self.backend.get_run(run_id)


@contextmanager
def serving(backend: Backend, *, channel: str = DEFAULT_CHANNEL) -> Iterator[ServedBot]:
    """Serve the bot over ``backend`` (the Prefect one, say) against a fresh Slack sandbox.

    Example::

        with serving(PrefectBackend(PrefectSettings.load())) as bot:
            run = bot.backend.start_run("greet-user/demo", {}, started_by=Actor("U0CAROL"))
            bot.driver.click("alice", bot.root_message(run.id), action_id="provide_input")
    """
    with SlackSandbox() as slack:
        settings = BotSettings.load(
            bot_token=slack.token,
            signing_secret=SIGNING_SECRET,
            api_url=slack.api_url,
            channel=channel,
        )
        server = Server(backend, settings, port=0)
        server.start()
        try:
            driver = slack.driver(f"{server.url}/slack/events", SIGNING_SECRET)
            yield ServedBot(backend, slack, server, driver, channel)
        finally:
            server.stop()


def outcome(slack: SlackSandbox, user: str, timeout: float = 10) -> OpenView:
    """``RunningBot.outcome`` for any sandbox: ``user``'s top modal view once it is no
    longer "Submitting..." (``user`` is an id or a handle)."""
    try:
        return slack.wait_for(
            lambda ws: (
                view
                if (view := ws.open_view(user)) is not None
                and view.callback_id != ids.SUBMITTING_VIEW
                else None
            ),
            timeout=timeout,
        )
    except ConditionTimeout as exc:
        top = slack.workspace.open_view(slack.workspace.user_id(user))
        now = (
            "has no open modal (submit a form first)"
            if top is None
            else 'still sees "Submitting..." (the bot never replaced it)'
        )
        raise ConditionTimeout(f"no outcome for {user} within {timeout}s: {user} {now}") from exc


def form_errors(view: OpenView) -> dict[str, str]:
    """The errors a form shows under its inputs after the bot refused an answer, by input
    ``block_id`` (``field:<path>``). Errors that Slack shows itself (``response_action:
    errors``) are in the submission's ``AppResponse.errors`` instead."""
    found = {}
    for block in view.blocks:
        hint = str((block.get("hint") or {}).get("text", ""))
        if block.get("type") == "input" and hint.startswith(ERROR_MARK):
            found[str(block.get("block_id"))] = hint.removeprefix(ERROR_MARK)
    return found


@contextmanager
def running_bot(
    flows: Sequence[str] = (),
    *,
    database_url: str | None = None,
    engine: Engine | None = None,
    channel: str = DEFAULT_CHANNEL,
) -> Iterator[RunningBot]:
    """Serve the bot against a fresh Slack sandbox, with a worker for ``flows``.

    Without ``engine`` or ``database_url`` it uses a temporary SQLite file. The engine it
    opens is the process's engine (``get_engine()``) until the block ends.
    """
    with tempfile.TemporaryDirectory(prefix="signoff-") as tmp:
        own = engine is None
        if engine is None:
            url = database_url or f"sqlite:///{Path(tmp) / 'signoff.db'}"
            engine = Engine(EngineSettings.load(database_url=url, heartbeat_seconds=0.5))
        previous = set_engine(engine)
        try:
            with serving(EmbeddedBackend(engine, flows=flows), channel=channel) as served:
                yield RunningBot(engine, served.slack, served.server, served.driver, channel)
        finally:
            set_engine(previous)
            if own:
                engine.close()
