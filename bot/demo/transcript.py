"""The demo's transcript: a person's clicks and submissions played in the local Slack
sandbox, and what Slack would show them, printed as it happens.

``Demo`` drives a served bot's sandbox workspace and prints each message, modal and error;
it reads runs only through what they post, so the embedded demo (``on_engine``) and the
Prefect one (``on_prefect``) share it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

import click

from signoff.bot.forms.labels import clip
from signoff.bot.sandbox import (
    Message,
    OpenView,
    SlackSandbox,
    UnknownField,
    block_kit_builder_url,
    render_message,
    render_mrkdwn,
    render_view,
)
from signoff.bot.sandbox.forms import (
    BOXES,
    element_state,
    find_element,
    text_too_long,
    typed_problem,
)
from signoff.bot.slack import ids, reminders
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, form_errors, outcome
from signoff.engine import Engine, Run

T = TypeVar("T")
CHANNEL = "C0GENERAL"
#: how long the transcript waits for the bot's messages after an answer or a run's end
ANSWERED_SECONDS = 10.0
#: what the bot's thread note says when a run's input model cannot be a Slack form
UNSHOWABLE = "cannot be shown as a Slack form"


class Unshowable(Exception):
    """The run's input cannot be shown in Slack; the message is the bot's note saying why."""


class WouldNotSend(Exception):
    """An answer its input's Slack box refuses (more text than it takes, no email address,
    a number out of its bounds...): the Slack client would refuse it before sending, so the
    demo does too. The message names the field and the limit."""


class RunRef(Protocol):
    """What the transcript needs of a run, whichever backend runs it."""

    @property
    def id(self) -> str: ...

    @property
    def flow_name(self) -> str: ...


def _has_button(message: Message) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def wait_for(what: str, condition: Callable[[], T | None], timeout: float = 20.0) -> T:
    """``condition()`` once it is truthy, asked every 10 ms for up to ``timeout`` seconds.

    Raises:
        click.ClickException: Still falsy at the deadline; the message names ``what``.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.01)
    raise click.ClickException(f"the demo timed out waiting for {what}")


def quiet_logs() -> None:
    """Keep Signoff's, Bolt's and the scheduler's log records off the terminal."""
    # The transcript is the output; flow logs and Bolt's start-up notes would interleave with it.
    for name in ("signoff", "slack_bolt", "slack_sdk", "apscheduler"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False


class Demo:
    """A served bot, a sandbox workspace and a transcript printer."""

    def __init__(
        self,
        engine: Engine | None,
        sandbox: SlackSandbox,
        server: Server,
        *,
        prompt_seconds: float = 20.0,
    ) -> None:
        #: the embedded engine; None when the flows run elsewhere (``--backend prefect``)
        self._engine = engine
        #: how long a run may take to ask for input (a Prefect flow run starts a process)
        self.prompt_seconds = prompt_seconds
        self.sandbox = sandbox
        self.server = server
        self.driver = sandbox.driver(f"{server.url}/slack/events", SIGNING_SECRET)
        self.seen: set[str] = set()
        #: each message of a run's thread as last printed, by ts: an edit is printed again
        self.printed: dict[str, str] = {}
        #: (what, link) per modal shown; printed whole at the end, where they do not break up
        #: the transcript
        self.builder_links: list[tuple[str, str]] = []

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            raise click.ClickException("this demo step needs Signoff's embedded engine")
        return self._engine

    def say(self, text: str = "") -> None:
        click.echo(text)

    def step(self, text: str) -> None:
        click.secho(f"▶ {text}", fg="cyan", err=True)

    def show_message(self, message: Message, where: str) -> None:
        rendered = render_message(message, self.sandbox.workspace.names())
        self.printed[message.ts] = rendered
        self.say(f"── {where} " + "─" * max(0, 60 - len(where)))
        self.say(rendered)

    def _thread(self, run: RunRef) -> list[tuple[Message, str]]:
        """The run's root message and its thread, oldest first, each with where it is."""
        channel = self.sandbox.channel(CHANNEL)
        root = next(
            (m for m in channel.messages if run.id[:8] in m.text + json.dumps(m.blocks)), None
        )
        if root is None:
            return []
        return [(root, "#general")] + [(m, "thread") for m in channel.replies.get(root.ts, [])]

    def _changes(self, run: RunRef) -> list[tuple[Message, str]]:
        """Messages of the run that are new or were edited since printed, as Slack shows
        them; prompts with buttons are left for when someone is about to click them."""
        names = self.sandbox.workspace.names()
        changed = []
        for message, where in self._thread(run):
            rendered = render_message(message, names)
            if message.ts in self.printed:
                if self.printed[message.ts] != rendered:
                    changed.append((message, f"{where} (updated)"))
            elif message.ts not in self.seen and not _has_button(message):
                changed.append((message, where))
        return changed

    def show_changes(self, run: RunRef, *, wait: float = 0.0) -> None:
        """Print what changed in the run's messages, after waiting up to ``wait`` seconds for
        the first change (the bot posts after it answers Slack)."""
        if not self._thread(run):
            return  # the run never posted (it did not ask for input)
        deadline = time.monotonic() + wait
        changes = self._changes(run)
        while not changes and time.monotonic() < deadline:
            time.sleep(0.02)
            changes = self._changes(run)
        for message, where in changes:
            self.seen.add(message.ts)
            self.show_message(message, where)

    def prompt_for(self, run: RunRef) -> Message:
        """The newest unseen message with a button for ``run`` (root or thread)."""

        def find() -> Message | None:
            channel = self.sandbox.channel(CHANNEL)
            candidates = list(channel.messages) + [m for r in channel.replies.values() for m in r]
            for message in candidates:
                if message.ts in self.seen:
                    continue
                if _has_button(message) and run.id[:8] in json.dumps(message.blocks):
                    return message
                if UNSHOWABLE in message.text and self._of_run(message, run):
                    return message  # no button will come: the bot said why
            return None

        message = wait_for(f"a prompt for {run.flow_name}", find, timeout=self.prompt_seconds)
        self.seen.add(message.ts)
        if UNSHOWABLE in message.text:
            self.show_message(message, "thread")
            raise Unshowable(render_message(message, self.sandbox.workspace.names()))
        return message

    def show_prompt(self, run: RunRef) -> Message:
        """Wait for ``run``'s next prompt and print it, as it appears in Slack."""
        prompt = self.prompt_for(run)
        self.show_changes(run)  # what the thread says before it (a refused answer, say)
        self.show_message(prompt, "#general" if prompt.thread_ts in (None, prompt.ts) else "thread")
        return prompt

    def _of_run(self, message: Message, run: RunRef) -> bool:
        """Whether ``message`` is in ``run``'s thread (its root names the run)."""
        channel = self.sandbox.channel(CHANNEL)
        root = next((m for m in channel.messages if m.ts == message.thread_ts), message)
        return run.id[:8] in root.text + json.dumps(root.blocks)

    def answer(
        self,
        run: RunRef,
        user: str,
        values: dict[str, Any],
        note: str,
        prompt: Message | None = None,
    ) -> bool:
        """Show the prompt (unless ``prompt`` was shown already), click it, fill the modal.

        Returns:
            True when the form refused the values and stays open with its errors (the run
            still waits on the same input); False once the answer was sent on.
        """
        if prompt is None:
            prompt = self.show_prompt(run)
        self.step(f"{user} clicks “Provide input”")
        uid = self.sandbox.user(user)
        assert uid is not None
        told = len(self.sandbox.ephemeral(uid.id))
        self.driver.click(user, prompt, action_id="provide_input")
        # The form, or a private note instead: this person may not answer, say.
        shown = self.sandbox.wait_for(
            lambda ws: ws.open_view(uid.id) or ws.ephemeral(uid.id)[told:], timeout=10
        )
        if not isinstance(shown, OpenView):
            notes = " ".join(n.text for n in self.sandbox.ephemeral(uid.id)[told:])
            note_text = render_mrkdwn(notes, self.sandbox.workspace.names())
            raise click.ClickException(
                f"{user} cannot answer {run.flow_name} run {run.id[:8]}: {note_text} "
                '(choose who answers with "as" in the --answers file)'
            )
        view = shown
        self.say("── modal " + "─" * 52)
        self.say(render_view(view, self.sandbox.workspace.names()))
        self.builder_links.append(
            (f"{run.flow_name} run {run.id[:8]}", block_kit_builder_url(view.view))
        )
        self.say(f"   (see it in Block Kit Builder: link [{len(self.builder_links)}] at the end)")
        self.check_fits(view, values)
        self.step(f"{user} {note}")
        if self.submit(uid.id, values, heading=True):
            return True
        self.show_changes(run, wait=ANSWERED_SECONDS)
        return False

    def resubmit(self, run: RunRef, user: str, values: dict[str, Any], note: str) -> bool:
        """Fix the modal that is still open after errors, and submit it again; True, as for
        ``answer``, when it still shows errors."""
        uid = self.sandbox.user(user)
        assert uid is not None
        view = self.sandbox.workspace.open_view(uid.id)
        if view is not None:
            self.check_fits(view, values)
        self.step(f"{user} {note}")
        if self.submit(uid.id, values, heading=False):
            return True
        self.show_changes(run, wait=ANSWERED_SECONDS)
        return False

    @staticmethod
    def check_fits(view: OpenView, values: dict[str, Any]) -> None:
        """Refuse, before anything is sent, what the Slack client would not send: text
        longer than its box takes (its max_length, or the 3,000 characters of any Slack
        box), an email address, URL or number its box refuses, and a value no person could
        enter (a number into an email box). The demo's answers skip the client: a body that
        large only broke the connection ("Broken pipe"), and a wrong type was a traceback.

        A text shorter than its min_length goes on, for the bot's own refusal to show.

        Raises:
            WouldNotSend: A value does not fit; the message names the field and the limit.
        """
        blocks = view.view.get("blocks", [])
        for key, value in values.items():
            try:
                element = find_element(blocks, key)[3]
            except UnknownField as exc:
                # A misspelt field in the answers: fixable, not an unexpected failure.
                raise WouldNotSend(str(exc)) from exc
            try:
                typed = element_state(element, value).get("value")
            except (TypeError, ValueError) as exc:
                raise WouldNotSend(f"field {key!r} cannot be entered: {exc}") from exc
            box = BOXES.get(str(element["type"]))
            if box is None or not isinstance(typed, str) or not typed:
                continue  # no box, or empty: the submission judges it
            limit = text_too_long(element, typed)
            if limit is not None:
                raise WouldNotSend(
                    f"field {key!r} holds {len(typed):,} characters, but its {box} takes "
                    f"at most {limit:,}: the Slack client would not send it"
                )
            problem = typed_problem(element, typed)
            if problem is not None and element["type"] != "plain_text_input":
                raise WouldNotSend(
                    f"field {key!r} is {clip(typed, 60)!r}, which its {box} refuses "
                    f'("{problem}"): the Slack client would not send it'
                )

    def close_form(self, user: str) -> None:
        """Close the modal ``user`` left open with errors (someone else answers instead)."""
        uid = self.sandbox.user(user)
        assert uid is not None
        self.step(f"{user} closes the form")
        self.driver.close(uid.id)

    def submit(self, uid: str, values: dict[str, Any], *, heading: bool) -> bool:
        """Submit ``uid``'s modal and show what the person sees once the bot has answered:
        errors under the inputs (the form stays open; True), or a notice, which they read
        and close (False)."""
        reply = self.driver.submit(uid, values, client_checks=False)
        errors = reply.errors if reply.response_action == "errors" else {}
        view = outcome(self.sandbox, uid, timeout=60)
        if view.callback_id == ids.INPUT_VIEW:
            errors = errors or form_errors(view)
        else:
            self.driver.close(uid)
        if errors and heading:
            self.say("── errors shown in the modal " + "─" * 32)
        for block, error in errors.items():
            self.say(f"   {block}: {error}")
        return bool(errors)

    def reminder(self, run: Run) -> None:
        """Fire the run's reminder now instead of ten minutes before its deadline."""
        pause = self.engine.waiting_pause(run.id)
        assert pause is not None and pause.deadline is not None
        due = reminders.reminder_time(pause.deadline, pause.created_at)
        self.step(f"fast-forward to {due:%H:%M} UTC, when the reminder is due")
        reminders.remind(run_id=run.id, key=pause.key)
        self.show_changes(run, wait=ANSWERED_SECONDS)

    def refused(self, run: Run, user: str) -> Message:
        """Show the run's prompt and have ``user``, who may not answer, click it; the prompt."""
        prompt = self.show_prompt(run)
        self.step(f"{user} clicks “Provide input” but is not an approver")
        self.driver.click(user, prompt, action_id="provide_input")
        uid = self.sandbox.user(user)
        assert uid is not None
        notes = self.sandbox.wait_for(lambda ws: ws.ephemeral(uid.id), timeout=10)
        self.say(
            f"   (only {user} sees) {render_message(notes[-1], self.sandbox.workspace.names())}"
        )
        return prompt

    def thread_notes(self, run: RunRef) -> None:
        """Print the run's new thread notes and edited messages, as they are now."""
        self.show_changes(run)

    def finish(self, run: Run) -> Run:
        def final() -> Run | None:
            current = self.engine.get_run(run.id)
            return current if current.state.is_final else None

        done = wait_for(f"{run.flow_name} to finish", final)
        self.show_outcome(done, done.state.value)
        return done

    def show_outcome(self, run: RunRef, state: str) -> None:
        """Print the run's last messages once the bot has marked its prompt with how it
        ended, ``state`` (it does so just after the run ends)."""
        names = self.sandbox.workspace.names()
        ended = f"is *{state}*"

        def marked() -> bool:
            thread = self._thread(run)
            return not thread or ended in render_message(thread[0][0], names)

        deadline = time.monotonic() + ANSWERED_SECONDS
        while not marked() and time.monotonic() < deadline:
            time.sleep(0.02)
        self.show_changes(run)

    def summary(self, runs: list[Run]) -> None:
        self.say("── final states " + "─" * 45)
        names = self.sandbox.workspace.names()
        for run in runs:
            detail = self.engine.detail(run.id)
            answers = ", ".join(
                f"input {p.key} {p.status.value} by {render_mrkdwn(f'<@{p.responder}>', names)}"
                for p in detail.pauses
                if p.responder
            )
            self.say(
                f"   {run.flow_name:<18} {detail.run.state.value:<10} result={detail.run.result}  {answers}"
            )
        self.links()

    def links(self) -> None:
        """Print the Block Kit Builder link of each modal shown (the transcript promised them
        "at the end")."""
        if self.builder_links:
            self.say("── the modals in Block Kit Builder (open in a browser) " + "─" * 6)
            for number, (what, link) in enumerate(self.builder_links, 1):
                self.say(f"[{number}] {what}: {link}")


__all__ = [
    "ANSWERED_SECONDS",
    "CHANNEL",
    "UNSHOWABLE",
    "Demo",
    "RunRef",
    "Unshowable",
    "WouldNotSend",
    "quiet_logs",
    "wait_for",
]
