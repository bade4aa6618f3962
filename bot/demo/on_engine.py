"""``signoff demo`` on Signoff's embedded engine: the built-in reference flows, or yours
(``--flows``) answered from the answers file or at the prompt, played on a temporary SQLite
store and printed as a transcript (``transcript``).
"""

from __future__ import annotations

import contextlib
import inspect
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager

import click

from signoff.bot.demo.plans import Answer, Plan, load_plans, read_answer
from signoff.bot.demo.transcript import (
    CHANNEL,
    Demo,
    Unshowable,
    WouldNotSend,
    quiet_logs,
    wait_for,
)
from signoff.bot.sandbox import Message
from signoff.bot.testing import running_bot
from signoff.engine import (
    Actor,
    EngineError,
    InvalidParameters,
    Run,
    RunState,
    Via,
    load_flows,
    registered_flows,
)

#: who cancels a run the demo gives up on: the system, which every rule lets cancel, as a
#: flow with approvers lets neither a sandbox user nor a bare name do it
_DEMO = Actor("signoff-demo", name="the demo", via=Via.SYSTEM)


@contextmanager
def served(flows: list[str]) -> Iterator[Demo]:
    """The bot on the embedded engine with ``flows`` loaded, served against a new sandbox."""
    with running_bot(flows) as bot:
        yield Demo(bot.engine, bot.slack, bot.server)


def builtin_demo() -> list[str]:
    """The built-in flows, answered as the transcript shows; what did not complete."""
    quiet_logs()
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
        wait_for(
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


def _waiting_or_done(demo: Demo, run: Run, answered: set[str]) -> str | None:
    """The key of a new question the run waits on, or None once the run has finished."""

    def check() -> tuple[str | None] | None:
        current = demo.engine.get_run(run.id)
        pause = demo.engine.waiting_pause(run.id)
        if pause is not None and current.state.is_waiting and pause.key not in answered:
            return (pause.key,)
        return (None,) if current.state.is_final else None

    return wait_for(f"{run.flow_name} to ask or finish", check)[0]


def _typed_answer(flow_name: str, key: str, user: str) -> Answer | None:
    """Ask at the prompt until the answer is a JSON object (given by ``user``, or by the
    sandbox user named before it); None when the person skips."""
    question = (
        f"JSON answer for {flow_name} input {key}, as {user} "
        "(or 'bob {...}' as another user, or 'skip')"
    )
    while True:
        if sys.stdin.isatty():
            typed = click.prompt(question, default="skip", err=True)
        else:
            # Piped (CI, a script): the end of the input is no Ctrl-C, as click.prompt
            # would have it (exit 130, "interrupted"), but answers that ran out.
            click.echo(f"{question} [skip]: ", err=True, nl=False)
            line = sys.stdin.readline()
            if not line:
                raise click.ClickException(
                    f"no answer for {flow_name} input {key}: standard input ended. "
                    "Give the answers in a file with --answers FILE"
                )
            typed = line.strip() or "skip"
            click.echo(typed, err=True)
        if typed.strip() == "skip":
            return None
        try:
            return read_answer(typed, user)
        except ValueError as exc:
            click.secho(f"   {exc}; try again", fg="yellow", err=True)


def _answer_input(
    demo: Demo,
    run: Run,
    plan: Plan,
    queue: list[Answer],
    key: str,
    prompt: Message,
    answers_file: str | None,
) -> str | None:
    """Answer the input ``key`` the run waits on, from ``queue`` or at the prompt.

    An answer the form refuses (a required field left out, a reason too short) leaves the
    form open with its errors and the run waiting on the same input, so the next answer
    goes into that form, as a person would fix it; one from someone else is given after
    the first person closes theirs.

    Returns:
        None once an answer was sent on; otherwise why the run was cancelled ("" when
        the person chose to skip, which is no problem).
    """
    open_form: str | None = None  # whose form still shows errors
    while True:
        if plan.answers is not None and not queue:
            if open_form is not None:
                demo.close_form(open_form)
            demo.engine.cancel(
                run.id, _DEMO, reason="cancelled by the demo: the answers file has no more answers"
            )
            return f"{answers_file} has no answer for input {key}"
        typed: Answer | None = None
        if queue:
            answer = queue.pop(0)
        else:
            typed = _typed_answer(run.flow_name, key, plan.user)
            if typed is None:
                if open_form is not None:
                    demo.close_form(open_form)
                demo.engine.cancel(
                    run.id, _DEMO, reason="cancelled by the demo: skipped at the prompt"
                )
                return ""
            answer = typed
        note = f"submits {json.dumps(answer.values)}"
        try:
            if open_form == answer.user:
                refused = demo.resubmit(run, answer.user, answer.values, note)
            else:
                if open_form is not None:
                    demo.close_form(open_form)
                open_form = None
                refused = demo.answer(run, answer.user, answer.values, note, prompt)
        except WouldNotSend as why:
            # Refused before it was sent, with the form open: typed, it can be fixed there.
            open_form = answer.user
            if typed is not None:
                click.secho(
                    f"   {run.flow_name} input {key}: {why}; try again", fg="yellow", err=True
                )
                continue
            demo.close_form(open_form)
            demo.engine.cancel(
                run.id, _DEMO, reason="cancelled by the demo: an answer its form would not send"
            )
            return f"{answers_file}, input {key}: {why}"
        if not refused:
            return None
        open_form = answer.user


def user_demo(flows: list[str], answers_file: str | None, params: dict[str, str]) -> list[str]:
    """Run each flow of ``flows`` once, answered from the file or at the prompt.

    Returns:
        What went wrong, one line per run that failed, ran out of answers or could not be
        shown (empty: every run went as planned).
    """
    quiet_logs()
    load_flows(*flows)
    # Checked before the bot starts: a mistake in the file costs no waiting.
    flows_by_name = {f.name: f for f in registered_flows()}
    if not flows_by_name:
        # A file whose function lacks @flow would otherwise play nothing and say it finished.
        raise click.ClickException(
            f"no flows in {', '.join(flows)}: a flow is a function decorated with @flow "
            "(from signoff import flow)"
        )
    takes = {name: list(inspect.signature(f.fn).parameters) for name, f in flows_by_name.items()}
    schemas = {name: f.parameters_schema() for name, f in flows_by_name.items()}
    plans = load_plans(answers_file, takes, params, schemas)
    for flow_name, plan in plans.items():
        try:
            flows_by_name[flow_name].validate_parameters(dict(plan.parameters))
        except InvalidParameters as exc:
            # The demo asks for answers, never for parameters: say where they come from.
            raise click.ClickException(
                f'{exc} (give them with --param NAME=VALUE, or as "parameters" in --answers)'
            ) from exc
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
                        demo.engine.cancel(
                            run.id, _DEMO, reason="cancelled by the demo: its input cannot be shown"
                        )
                    problems.append(f"{flow_name}: {why}")
                    break
                problem = _answer_input(demo, run, plan, queue, key, prompt, answers_file)
                if problem is not None:
                    if problem:
                        problems.append(f"{flow_name}: {problem}")
                    break
            else:
                if queue:
                    # The flow asked fewer times than the file answers (it took another
                    # branch, say): the file's later answers tested nothing.
                    click.secho(
                        f"warning: {answers_file}: {flow_name}: the run asked for "
                        f"{len(answered)} input(s); its last {len(queue)} answer(s) went unused",
                        fg="yellow",
                        err=True,
                    )
            done = demo.finish(run)
            if done.state in (RunState.FAILED, RunState.CRASHED):
                problems.append(f"{flow_name} {done.state.value}: {done.state_message or ''}")
            runs.append(done)
        demo.summary(runs)
    return problems


__all__ = ["builtin_demo", "served", "user_demo"]
