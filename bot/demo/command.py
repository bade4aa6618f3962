"""``signoff demo``: the whole loop on this machine, against the local Slack sandbox.

It serves the bot on a temporary SQLite store, starts the demo flows (or yours, with
``--flows``), plays a person's clicks and submissions, and prints what Slack would show.
"""

from __future__ import annotations

import contextlib
import inspect
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol, TypeVar

import click
from pydantic import PydanticUserError

from signoff.bot.demo.plans import Answer, load_plans, read_answer
from signoff.bot.sandbox import (
    Message,
    SlackSandbox,
    block_kit_builder_url,
    render_message,
    render_mrkdwn,
    render_view,
)
from signoff.bot.slack import ids, reminders
from signoff.bot.slack.server import Server
from signoff.bot.testing import SIGNING_SECRET, form_errors, outcome, running_bot
from signoff.engine import Engine, EngineError, Run, RunState, load_flows, registered_flows

T = TypeVar("T")
CHANNEL = "C0GENERAL"
#: how long the transcript waits for the bot's messages after an answer or a run's end
ANSWERED_SECONDS = 10.0
#: what the bot's thread note says when a run's input model cannot be a Slack form
UNSHOWABLE = "cannot be shown as a Slack form"


class Unshowable(Exception):
    """The run's input cannot be shown in Slack; the message is the bot's note saying why."""


class RunRef(Protocol):
    """What the transcript needs of a run, whichever backend runs it."""

    @property
    def id(self) -> str: ...

    @property
    def flow_name(self) -> str: ...


def _has_button(message: Message) -> bool:
    return any(b.get("type") == "actions" for b in message.blocks)


def _wait(what: str, condition: Callable[[], T | None], timeout: float = 20.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = condition()
        if found:
            return found
        time.sleep(0.01)
    raise click.ClickException(f"the demo timed out waiting for {what}")


class Demo:
    """A served bot, a sandbox workspace and a transcript printer."""

    def __init__(self, engine: Engine | None, sandbox: SlackSandbox, server: Server) -> None:
        #: the embedded engine; None when the flows run elsewhere (``--backend prefect``)
        self._engine = engine
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

        message = _wait(f"a prompt for {run.flow_name}", find)
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
    ) -> None:
        """Show the prompt (unless ``prompt`` was shown already), click it, fill the modal."""
        if prompt is None:
            prompt = self.show_prompt(run)
        self.step(f"{user} clicks “Provide input”")
        self.driver.click(user, prompt, action_id="provide_input")
        uid = self.sandbox.user(user)
        assert uid is not None
        view = self.sandbox.wait_for(lambda ws: ws.open_view(uid.id), timeout=10)
        self.say("── modal " + "─" * 52)
        self.say(render_view(view, self.sandbox.workspace.names()))
        self.builder_links.append(
            (f"{run.flow_name} run {run.id[:8]}", block_kit_builder_url(view.view))
        )
        self.say(f"   (see it in Block Kit Builder: link [{len(self.builder_links)}] at the end)")
        self.step(f"{user} {note}")
        if self.submit(uid.id, values, heading=True):
            return
        self.show_changes(run, wait=ANSWERED_SECONDS)

    def resubmit(self, run: RunRef, user: str, values: dict[str, Any], note: str) -> None:
        """Fix the modal that is still open after errors, and submit it again."""
        self.step(f"{user} {note}")
        uid = self.sandbox.user(user)
        assert uid is not None
        if self.submit(uid.id, values, heading=False):
            return
        self.show_changes(run, wait=ANSWERED_SECONDS)

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

        done = _wait(f"{run.flow_name} to finish", final)
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
        if self.builder_links:
            self.say("── the modals in Block Kit Builder (open in a browser) " + "─" * 6)
            for number, (what, link) in enumerate(self.builder_links, 1):
                self.say(f"[{number}] {what}: {link}")


@contextmanager
def served(flows: list[str]) -> Iterator[Demo]:
    with running_bot(flows) as bot:
        yield Demo(bot.engine, bot.slack, bot.server)


def _quiet_logs() -> None:
    # The transcript is the output; flow logs and Bolt's start-up notes would interleave with it.
    for name in ("signoff", "slack_bolt", "slack_sdk", "apscheduler"):
        logging.getLogger(name).addHandler(logging.NullHandler())
        logging.getLogger(name).propagate = False


def builtin_demo() -> list[str]:
    """The built-in flows, answered as the transcript shows; what did not complete."""
    _quiet_logs()
    with served(["signoff.bot.demo.flows"]) as demo:
        runs = []
        demo.step("starting greet-user (the reference's greeting, with initial data)")
        greet = demo.engine.submit("greet-user", {}, started_by="U0CAROL")
        demo.answer(greet, "alice", {"name": "Ada"}, "types “Ada” and submits")
        runs.append(demo.finish(greet))

        demo.step("starting get-shirt-order (the reference's validation loop)")
        shirt = demo.engine.submit("get-shirt-order", {}, started_by="U0CAROL")
        demo.answer(
            shirt,
            "alice",
            {"size": "small", "color": "green"},
            "picks small + green (out of stock)",
        )
        _wait(
            "the rejection in the thread",
            lambda: (
                demo.engine.waiting_pause(shirt.id)
                and any(
                    "not accepted" in m.text
                    for r in demo.sandbox.channel(CHANNEL).replies.values()
                    for m in r
                )
            ),
        )
        demo.thread_notes(shirt)
        demo.answer(shirt, "bob", {"color": "red"}, "fixes only the colour (the rest is prefilled)")
        runs.append(demo.finish(shirt))

        demo.step("starting deploy-production (approvers: bob; the starter may not approve)")
        deploy = demo.engine.submit("deploy-production", {"version": "2.4.1"}, started_by="U0CAROL")
        prompt = demo.refused(deploy, "alice")
        demo.reminder(deploy)
        demo.answer(
            deploy,
            "bob",
            {"approve": True, "reason": "ok"},
            "submits a reason that is too short",
            prompt=prompt,
        )
        demo.resubmit(
            deploy,
            "bob",
            {"reason": "Staging soak was clean"},
            "fixes the reason in the open modal",
        )
        runs.append(demo.finish(deploy))
        demo.summary(runs)
    return [f"{r.flow_name} {r.state.value}" for r in runs if r.state is not RunState.COMPLETED]


def _plan(entry: Any) -> tuple[dict[str, Any], list[dict[str, Any]] | None]:
    """(parameters, answers) from an answers-file entry: a list of answers, or
    ``{"parameters": {...}, "answers": [...]}``; answers None means "ask at the prompt"."""
    if isinstance(entry, list):
        return {}, entry
    if isinstance(entry, dict):
        return dict(entry.get("parameters") or {}), entry.get("answers")
    return {}, None


def _waiting_or_done(demo: Demo, run: Run, answered: set[str]) -> str | None:
    """The key of a new question the run waits on, or None once the run has finished."""

    def check() -> tuple[str | None] | None:
        current = demo.engine.get_run(run.id)
        pause = demo.engine.waiting_pause(run.id)
        if pause is not None and current.state.is_waiting and pause.key not in answered:
            return (pause.key,)
        return (None,) if current.state.is_final else None

    return _wait(f"{run.flow_name} to ask or finish", check)[0]


def _typed_answer(flow_name: str, key: str) -> dict[str, Any] | None:
    """Ask at the prompt until the answer is a JSON object; None when the person skips."""
    while True:
        typed = click.prompt(
            f"JSON answer for {flow_name} input {key} (or 'skip')", default="skip", err=True
        )
        if typed.strip() == "skip":
            return None
        try:
            return read_answer(typed)
        except ValueError as exc:
            click.secho(f"   {exc}; try again", fg="yellow", err=True)


def _parameter_names(schema: Callable[[], dict[str, Any]], fn: Callable[..., Any]) -> list[str]:
    """The parameters a flow takes, from its schema (or, without one, its signature)."""
    try:
        return list(schema().get("properties", {}))
    except PydanticUserError:  # parameters of arbitrary types have no schema
        return list(inspect.signature(fn).parameters)


def _read_param(text: str) -> Any:
    """A ``--param`` value: JSON when it parses (numbers, true, lists), else the text."""
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def user_demo(flows: list[str], answers_file: str | None, params: dict[str, str]) -> list[str]:
    """Run each flow of ``flows`` once, answered from the file or at the prompt.

    Returns:
        What went wrong, one line per run that failed, ran out of answers or could not be
        shown (empty: every run went as planned).
    """
    _quiet_logs()
    for source in flows:
        load_flows(source)
    # Checked before the bot starts: a mistake in the file costs no waiting.
    takes = {f.name: _parameter_names(f.parameters_schema, f.fn) for f in registered_flows()}
    plans = load_plans(answers_file, takes, {k: _read_param(v) for k, v in params.items()})
    problems: list[str] = []
    with served(flows) as demo:
        runs = []
        for flow_name, plan in plans.items():
            demo.step(f"starting {flow_name}")
            run = demo.engine.submit(flow_name, plan.parameters, started_by="U0CAROL")
            answered: set[str] = set()
            queue = list(plan.answers or [])
            while (key := _waiting_or_done(demo, run, answered)) is not None:
                answered.add(key)
                try:
                    # The message first, as in Slack: then the answer that is typed for it.
                    prompt = demo.show_prompt(run)
                except Unshowable as why:
                    # The bot may have cancelled it already, when it found the model unshowable.
                    with contextlib.suppress(EngineError):
                        demo.engine.cancel(run.id, by="the demo: its input cannot be shown")
                    problems.append(f"{flow_name}: {why}")
                    break
                if plan.answers is not None and not queue:
                    demo.engine.cancel(run.id, by="the demo: the answers file has no more answers")
                    problems.append(f"{flow_name}: {answers_file} has no answer for input {key}")
                    break
                if queue:
                    answer = queue.pop(0)
                else:
                    values = _typed_answer(flow_name, key)
                    if values is None:
                        demo.engine.cancel(run.id, by="the demo")
                        break
                    answer = Answer(values, plan.user)
                note = f"submits {json.dumps(answer.values)}"
                demo.answer(run, answer.user, answer.values, note, prompt)
            done = demo.finish(run)
            if done.state in (RunState.FAILED, RunState.CRASHED):
                problems.append(f"{flow_name} {done.state.value}: {done.state_message or ''}")
            runs.append(done)
        demo.summary(runs)
    return problems


#: What ``demo --web`` starts for the built-in flows: the reference's two examples and a deploy.
WEB_RUNS: list[tuple[str, dict[str, Any]]] = [
    ("greet-user", {}),
    ("get-shirt-order", {}),
    ("deploy-production", {"version": "2.4.1"}),
]


def web_demo(flows: list[str], plans: dict[str, Any], *, port: int = 8765) -> None:
    """Start one run of each flow and serve the sandbox page, for a person to answer.

    Args:
        flows: Flow files or modules; the built-in demo flows when empty.
        plans: The answers file's entries; only their ``parameters`` are used here.
        port: The page's port.
    """
    from signoff.bot.demo.page import serve_page

    if not flows:
        serve_page(["signoff.bot.demo.flows"], start=lambda _names: WEB_RUNS, port=port)
        return
    serve_page(flows, start=lambda n: [(f, _plan(plans.get(f))[0]) for f in n], port=port)


def demo_command(prefect_demo: Callable[[str | None], None] | None = None) -> click.Command:
    """The ``signoff demo`` command; ``prefect_demo(api_url)`` plays ``--backend prefect``."""

    @click.command("demo")
    @click.option(
        "--flows",
        "sources",
        multiple=True,
        metavar="PATH_OR_MODULE",
        help="Your flows instead of the built-in ones.",
    )
    @click.option(
        "--answers",
        type=click.Path(exists=True, dir_okay=False),
        help='JSON: {"flow-name": [answer, ...]} or {"flow-name": {"parameters": {...}, '
        '"answers": [...], "as": "bob"}}; an answer may be {"as": "bob", "input": {...}}. '
        "Flows without answers are asked at the prompt.",
    )
    @click.option(
        "--param",
        "params",
        multiple=True,
        metavar="NAME=VALUE",
        help="A parameter for every one of your flows that takes NAME (repeatable; over the "
        "answers file's; JSON values such as 3 or true are read as such).",
    )
    @click.option(
        "--web",
        is_flag=True,
        help="Start the flows and show the sandbox in your browser, to answer them yourself.",
    )
    @click.option(
        "--port",
        default=8765,
        show_default=True,
        type=click.IntRange(0, 65535),
        help="With --web: the page's port (0: any free port).",
    )
    @click.option(
        "--backend",
        type=click.Choice(["embedded", "prefect"]),
        default="embedded",
        show_default=True,
        help="Run the reference flows on Signoff's engine, or on a throwaway Prefect server.",
    )
    @click.option(
        "--prefect-url",
        metavar="URL",
        help="With --backend prefect: the API of a Prefect server to serve them on instead "
        "of a throwaway one (e.g. http://127.0.0.1:4200/api).",
    )
    def demo(
        sources: tuple[str, ...],
        answers: str | None,
        params: tuple[str, ...],
        web: bool,
        port: int,
        backend: str,
        prefect_url: str | None,
    ) -> None:
        """See the whole loop locally: flows, Slack prompts, modals, errors, and answers.

        Exits 1 when a run failed, ran out of answers, or asked for input Slack cannot show.
        """
        if prefect_url and backend != "prefect":
            raise click.UsageError("--prefect-url goes with --backend prefect")
        if backend == "prefect":
            if sources or web or answers or params:
                raise click.UsageError("--backend prefect plays the reference flows only")
            if prefect_demo is None:
                raise click.ClickException("this signoff has no Prefect demo")
            started = time.monotonic()
            prefect_demo(prefect_url)
            click.secho(
                f"✔ demo finished in {time.monotonic() - started:.1f}s", fg="green", err=True
            )
            return
        texts: dict[str, str] = {}
        for item in params:
            key, sep, value = item.partition("=")
            if not sep or not key.strip():
                raise click.BadParameter(
                    f"expected NAME=VALUE, got {item!r}", param_hint="'--param'"
                )
            texts[key.strip()] = value
        if params and not sources:
            raise click.UsageError("--param sets parameters of your flows: give --flows too")
        if web:
            plans = json.loads(Path(answers).read_text()) if answers else {}
            web_demo(list(sources), plans, port=port)
            return
        started = time.monotonic()
        problems = user_demo(list(sources), answers, texts) if sources else builtin_demo()
        took = f"{time.monotonic() - started:.1f}s"
        if problems:
            for problem in problems:
                click.secho(f"✘ {problem}", fg="red", err=True)
            raise click.ClickException(f"the demo finished in {took}, but not every run completed")
        click.secho(f"✔ demo finished in {took}", fg="green", err=True)

    return demo
