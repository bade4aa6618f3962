"""``/runs``: list, show, start and cancel runs from Slack, answered ephemerally."""

from __future__ import annotations

import difflib
import logging
import shlex
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from signoff.bot.backends import Action, Actor, Backend, Refusal
from signoff.bot.backends.run_ids import too_short_to_act
from signoff.bot.errors import (
    BackendError,
    ChannelUnreadable,
    CredentialsRefused,
    JsonTooDeep,
    NotPermitted,
    ParametersInvalid,
    RunNotFound,
    TamperedMetadata,
)
from signoff.bot.forms.labels import clip
from signoff.bot.forms.modals import ModalError, build_input_view
from signoff.bot.forms.mrkdwn import escape_mrkdwn, literal_mrkdwn, unescape_mrkdwn
from signoff.bot.forms.parameters import parameter_value
from signoff.bot.forms.submissions import errors_for_view, parse_submission
from signoff.bot.slack import ids, messages, run_lists
from signoff.bot.slack.approvers import refusal_text, slack_actor
from signoff.bot.slack.channel_access import ChannelAccess
from signoff.bot.slack.command_text import command_words
from signoff.bot.slack.failures import failed_text, log_failure, reported
from signoff.bot.slack.interactions import field_errors_ack, notice_view
from signoff.bot.slack.payloads import BlockActions, SlashCommand, ViewSubmission
from signoff.bot.slack.run_detail import show_text
from signoff.bot.slack.sealing import MAX_METADATA, Sealer

logger = logging.getLogger(__name__)

#: the words ``/runs`` takes first, for "did you mean" (a flow's name is listed instead)
_WORDS = ("help", "show", "cancel", "start", "flow", *run_lists.FILTERS)

HELP = """*`/runs`* — runs waiting for input
*`/runs all|running|completed|failed|cancelled`* — runs in that state
*`/runs FLOW`* — runs of one flow (`/runs flow FLOW` for a flow named like a word here)
*`/runs … before=RUN`* — the next page of a list, after RUN (the list's More button)
*`/runs show RUN`* — states, inputs with who gave them, and the log tail
*`/runs start FLOW [k=v ...]`* — start a run (a form asks for missing parameters); `k='two words'`, `tags=["a","b"]`
*`/runs cancel RUN`* — cancel a run
*`/runs help`* — this help"""


def _meant(verb: str, rest: list[str], cursors: list[str]) -> str | None:
    """The command meant by a mistyped first word ``verb``, with the words after it and
    the ``before=`` typed: None when no word is close, or when that command too would be
    refused (a filter takes no more words)."""
    near = difflib.get_close_matches(verb, _WORDS, n=1, cutoff=0.75)
    if not near or near[0] == verb or (near[0] in run_lists.FILTERS and rest):
        return None
    return " ".join([near[0], *rest, *cursors])


def quote_hint(typed: str) -> str:
    """How to type a flow's name that has spaces: ``typed``, with the name in quotes."""
    return f"A flow's name with spaces goes in quotes: `{escape_mrkdwn(typed)}`."


def warning(exc: BackendError) -> str:
    """A backend's error as a warning line: its message is plain text, and may hold what
    someone typed or a button carried (a run id), which must not become a mention or a link."""
    return f":warning: {escape_mrkdwn(str(exc))}"


def refused_text(exc: NotPermitted, actor: Actor) -> str:
    """What a person the rules refuse is told, privately."""
    return refusal_text(Action(exc.action), actor, None, Refusal(exc.reason, exc.allowed))


def _action_value(click: BlockActions, action_id: str) -> str:
    """The value of the clicked ``action_id`` button (a run id)."""
    return next((a.value or "" for a in click.actions if a.action_id == action_id), "")


def register(app: App, backend: Backend, sealer: Sealer, channels: ChannelAccess) -> None:
    """Add ``/runs`` and its buttons to ``app``; ``channels`` keeps runs in private
    channels from those not in them."""

    @app.command(ids.RUNS_COMMAND)
    @reported
    def runs(ack: Ack, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        command = SlashCommand.model_validate(body)
        try:
            # Bounded: the edge refuses text longer than Slack's MAX_COMMAND_TEXT.
            words = command_words(command.text)
        except ValueError as exc:
            respond(f"Could not read that: {exc}\n{HELP}")
            return
        # "before=RUN" anywhere pages a listing (the list's More button types it for you);
        # after `start FLOW` it is a parameter like any other (a report's `before=DATE`).
        cursors: list[str] = []
        if not words or words[0].lower() != "start":
            cursors = [w for w in words if w.lower().startswith("before=")]
            words = [w for w in words if not w.lower().startswith("before=")]
        first = words[0] if words else ""
        verb = first.lower()
        user = command.user_id
        actor = slack_actor(body)
        try:
            if verb == "help":
                respond(HELP)
            elif verb == "show" and len(words) == 2:
                respond(shown_to(actor, backend.get_run(words[1]).id, client))
            elif verb == "cancel" and len(words) == 2 and (short := too_short_to_act(words[1])):
                respond(f":warning: `/runs cancel`: {escape_mrkdwn(short)}.")
            elif verb == "cancel" and len(words) == 2:
                run = backend.cancel(words[1], by=actor, reason=f"cancelled by {user}")
                respond(f"Cancelled {messages.run_label(run)}.")
            elif verb == "start" and len(words) >= 2:
                if backend.start_form(words[1]) is None and (spaced := spaced_flow(words[1:])):
                    shown = escape_mrkdwn(words[1][:100])
                    typed = f"/runs start {shlex.quote(spaced)}"
                    respond(f":warning: No flow named `{shown}`. {quote_hint(typed)}")
                    return
                start(words[1], words[2:], command, respond, client)
            elif verb == "flow" and len(words) == 2:
                # Any flow, also one named like a word of this command (`/runs flow help`).
                if not (
                    backend.start_form(words[1]) or backend.list_runs(flow_name=words[1], limit=1)
                ):
                    shown = escape_mrkdwn(words[1][:200])
                    respond(f"No flow `{shown}`; flows: {known_flows()}.")
                    return
                page_of(run_lists.FLOW_SELECTOR + words[1], cursors, respond, actor, client)
            elif verb in ("show", "cancel", "start", "flow"):
                wanted = "a flow" if verb in ("start", "flow") else "a run id"
                one = "flow's name" if verb == "flow" else "run id"
                # More than one word after show, cancel or flow: one run (or flow) at a time.
                problem = (
                    f"takes one {one}, not {len(words) - 1}" if words[1:] else f"needs {wanted}"
                )
                if verb == "flow" and (spaced := spaced_flow(words[1:])):
                    problem += f". {quote_hint(f'/runs flow {shlex.quote(spaced)}')[:-1]}"
                elif verb in ("start", "flow") and not words[1:]:
                    # Which flow? The list is the answer (the sandbox page names only a few).
                    problem += f"; flows: {known_flows()}"
                respond(f"`/runs {verb}` {problem}.\n{HELP}")
            elif len(words) <= 1 and (verb in run_lists.FILTERS or verb == "" or is_flow(first)):
                selector = (
                    verb
                    if verb in run_lists.FILTERS or not first
                    else run_lists.FLOW_SELECTOR + first
                )
                page_of(selector, cursors, respond, actor, client)
            elif verb in run_lists.FILTERS and not spaced_flow(words):
                # A filter and more words: what is wrong is the words after it, which a "did
                # you mean" of the same filter would only repeat.
                extra = escape_mrkdwn(clip(" ".join(words[1:]), 100))
                respond(
                    f"`/runs {verb}` takes no more words, not `{extra}` (only `before=RUN`, "
                    "for the next page). To list a flow's runs: `/runs FLOW`, or "
                    f"`/runs flow FLOW` for a flow named like a word here.\n{HELP}"
                )
            elif is_flow(first) and not spaced_flow(words):
                # A flow's name and more words: name the words, and the forms that take them.
                extra = escape_mrkdwn(clip(" ".join(words[1:]), 100))
                name = escape_mrkdwn(shlex.quote(first)[:100])
                respond(
                    f"`/runs {name}` takes no more words, not `{extra}` (only `before=RUN`, for "
                    f"the next page). To list its runs: `/runs {name}`; to start it with "
                    f"parameters: `/runs start {name} k=v ...`; to see a run: "
                    f"`/runs show RUN`.\n{HELP}"
                )
            else:
                typed = escape_mrkdwn(unescape_mrkdwn(command.text)[:200])
                hint = ""
                if spaced := spaced_flow(words):
                    hint = f" {quote_hint(f'/runs {shlex.quote(spaced)}')}"
                elif meant := _meant(verb, words[1:], cursors):
                    hint = f" Did you mean `{escape_mrkdwn(f'/runs {meant}'[:200])}`?"
                elif len(words) == 1:
                    # One word is most likely a flow's name mistyped (`/runs FLOW` lists its
                    # runs): say which flows there are, as `/runs start` does.
                    hint = f" No flow has that name; flows: {known_flows()}."
                respond(f"Unknown command `{typed}`.{hint}\n{HELP}")
        except NotPermitted as exc:
            respond(f":no_entry: {refused_text(exc, actor)}")
        except CredentialsRefused as exc:
            log_failure(exc)
            respond(failed_text(exc))
        except BackendError as exc:
            respond(warning(exc))

    def shown_to(actor: Actor, run_id: str, client: WebClient) -> str:
        """``/runs show``'s answer for ``actor``: the run, or why they may not view it
        (the view rule's refusal is recorded; nothing of the run is in it)."""
        refused = backend.refusal(Action.VIEW, actor, run_id)
        if refused is not None:
            return f":no_entry: {refusal_text(Action.VIEW, actor, None, refused)}"
        try:
            private = channels.hidden_in(client, actor, backend.get_run(run_id))
        except ChannelUnreadable as exc:
            return f":warning: Signoff {exc}"
        if private is not None:
            logger.info(
                "run in a private channel not shown to a non-member",
                extra={"action": "view_refused_private_channel", "run_id": run_id},
            )
            return (
                f":no_entry: You may not view this: its messages are in <#{private}>, a private "
                "channel you are not in; only its members and whoever started the run may."
            )
        return show_text(backend, run_id)

    def page_of(
        selector: str, cursors: list[str], respond: Any, actor: Actor, client: WebClient
    ) -> None:
        """Answer with a page of ``selector``'s runs ``actor`` may view, after the last
        ``before=`` typed."""
        before = cursors[-1].partition("=")[2] if cursors else None
        try:
            reply = run_lists.list_reply(
                backend, selector, before, actor, lambda runs: channels.visible(client, actor, runs)
            )
        except RunNotFound as exc:
            shown = escape_mrkdwn((before or "")[:40])
            if not before:
                problem = "give the id of the last run listed (`before=RUN`)"
            elif exc.several:
                choices = escape_mrkdwn(exc.choices)
                problem = f"more than one run id starts with `{shown}` ({choices}); give more of it"
            else:
                problem = f"no run `{shown}` to list after"
            respond(f":warning: `before=`: {problem}.")
            return
        respond(**reply)

    def is_flow(name: str) -> bool:
        """True if ``name`` is a flow's: one that can be started, or that has runs."""
        return bool(backend.start_form(name) or backend.list_runs(flow_name=name, limit=1))

    def spaced_flow(words: list[str]) -> str | None:
        """The flow whose name is the first of ``words`` joined by spaces, if one is:
        a name with spaces typed without quotes."""
        names = set(backend.flow_names())
        for count in range(len(words), 1, -1):
            if (joined := " ".join(words[:count])) in names:
                return joined
        return None

    def known_flows() -> str:
        # Names read as written: in code spans, with Slack's control characters escaped.
        return ", ".join(f"`{escape_mrkdwn(n)}`" for n in backend.flow_names()) or "none"

    def start(
        flow_name: str, pairs: list[str], command: SlashCommand, respond: Any, client: WebClient
    ) -> None:
        flow = backend.start_form(flow_name)
        if flow is None:
            shown = escape_mrkdwn(flow_name[:100])
            near = difflib.get_close_matches(flow_name, backend.flow_names(), n=3, cutoff=0.75)
            meant = " or ".join(f"`{escape_mrkdwn(name)}`" for name in near)
            hint = f" Did you mean {meant}?" if near else ""
            respond(f":warning: No flow named `{shown}`.{hint} Known flows: {known_flows()}")
            return
        schema = flow.schema
        takes = schema.get("properties")
        listed = ", ".join(f"`{escape_mrkdwn(n)}`" for n in takes or ()) or "no parameters"
        params: dict[str, Any] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep or not name:
                typed = escape_mrkdwn(f"/runs start {shlex.quote(flow.name)} name=value ...")
                respond(
                    f":warning: `{escape_mrkdwn(pair[:100])}` is not `name=value`: type "
                    f"`{typed}`; *{literal_mrkdwn(flow.name)}* takes {listed}"
                )
                return
            if name in params:
                respond(
                    f":warning: `{escape_mrkdwn(name[:100])}` is given twice; give each parameter once"
                )
                return
            try:
                params[name] = parameter_value(schema, name, value)
            except JsonTooDeep as exc:
                respond(f":warning: `{escape_mrkdwn(name[:100])}`: {exc}")
                return
        unknown = [n for n in params if isinstance(takes, dict) and n not in takes]
        if unknown and isinstance(takes, dict):
            # Refused here: a form cannot show, nor let anyone remove, a parameter it lacks.
            respond(
                f":warning: Flow *{literal_mrkdwn(flow.name)}* has no parameter "
                f"`{escape_mrkdwn(unknown[0][:100])}`; it takes {listed}"
            )
            return
        missing = [p for p in schema.get("required", []) if p not in params]
        if missing and backend.may_start(slack_actor(command.model_dump()), flow.name) is not None:
            # No form for someone who may not start it: starting records the attempt and
            # raises the refusal, by the same rule as every other entry point.
            backend.start_run(flow.name, params, started_by=slack_actor(command.model_dump()))
        if missing:
            meta = sealer.seal({"flow": flow.name, "channel": command.channel_id, "given": params})
            if len(meta) > MAX_METADATA:
                # Cut JSON would not parse back; the values given must travel whole.
                respond(f":warning: Missing {', '.join(missing)}; give every parameter as k=v.")
                return
            try:
                view = build_input_view(
                    schema,
                    initial=params,
                    title=f"Start {flow.name}",
                    description=flow.description,
                    callback_id=ids.START_VIEW,
                    private_metadata=meta,
                    submit="Start",
                )
            except ModalError as exc:
                respond(
                    f":warning: Missing {', '.join(missing)}, and the parameters cannot be shown as a form: {exc}"
                )
                return
            client.views_open(trigger_id=command.trigger_id, view=view)
            return
        run = backend.start_run(
            flow.name,
            params,
            started_by=slack_actor(command.model_dump()),
            tags={"slack.channel": command.channel_id},
        )
        logger.info(
            "run started from Slack",
            extra={"action": "run_started_from_slack", "run_id": run.id, "flow": flow.name},
        )
        respond(f"Started {messages.run_label(run)}.")

    @app.view(ids.START_VIEW)
    @reported
    def start_submitted(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        submission = ViewSubmission.model_validate(body)
        try:
            meta = sealer.open(submission.view.private_metadata)
        except TamperedMetadata:
            ack(
                response_action="update",
                view=notice_view(
                    "Not accepted", "This form was changed after it was opened; open it again."
                ),
            )
            return
        given = meta.get("given")
        flow = backend.start_form(str(meta.get("flow")))
        if flow is None:
            ack(
                response_action="update",
                view=notice_view(
                    "Cannot start",
                    f"No flow named *{literal_mrkdwn(str(meta.get('flow')))}* any more.",
                ),
            )
            return
        schema = flow.schema
        values, problems = parse_submission(schema, submission.view.state.as_mapping())
        if problems:
            ack(response_action="errors", errors=problems)
            return
        user, channel = submission.user.id, str(meta.get("channel") or "")
        try:
            run = backend.start_run(
                flow.name,
                {**(given if isinstance(given, dict) else {}), **values},
                started_by=slack_actor(body["user"]),
                tags={"slack.channel": channel},
            )
        except NotPermitted as exc:
            refused = refused_text(exc, slack_actor(body["user"]))
            ack(response_action="update", view=notice_view("Not allowed", refused))
            return
        except ParametersInvalid as exc:
            field_errors_ack(ack, errors_for_view(schema, exc.errors), str(exc))
            return
        except BackendError as exc:
            ack(
                response_action="update",
                view=notice_view("Cannot start", escape_mrkdwn(str(exc))),
            )
            return
        ack()
        logger.info(
            "run started from Slack",
            extra={"action": "run_started_from_slack", "run_id": run.id, "flow": flow.name},
        )
        if channel:
            # The modal is closed; tell the starter where the run's prompts will appear.
            client.chat_postEphemeral(
                channel=channel, user=user, text=f"Started {messages.run_label(run)}."
            )

    @app.action(ids.SHOW_RUN)
    @reported
    def show(ack: Ack, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        click = BlockActions.model_validate(body)
        if click.response_url is None:
            return  # not a click in a message: there is nowhere to answer
        try:
            run = backend.get_run(_action_value(click, ids.SHOW_RUN))
            shown = shown_to(slack_actor(body["user"]), run.id, client)
            respond(text=shown, replace_original=False)
        except BackendError as exc:
            respond(text=warning(exc), replace_original=False)

    @app.action(ids.MORE_RUNS)
    @reported
    def more(ack: Ack, body: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        click = BlockActions.model_validate(body)
        if click.response_url is None:
            return  # not a click in a message: there is nowhere to answer
        # The run id is after the last "|": a flow's name may hold one, a run id never does.
        selector, _, last = _action_value(click, ids.MORE_RUNS).rpartition("|")
        try:
            actor = slack_actor(body["user"])
            reply = run_lists.list_reply(
                backend, selector, last, actor, lambda runs: channels.visible(client, actor, runs)
            )
        except BackendError as exc:
            respond(text=warning(exc), replace_original=False)
            return
        respond(**reply, replace_original=False)

    @app.action(ids.CANCEL_RUN)
    @reported
    def cancel(ack: Ack, body: dict[str, Any], respond: Any) -> None:
        ack()
        actor = slack_actor(body["user"])
        try:
            click = BlockActions.model_validate(body)
            if click.response_url is None:
                return  # not a click in a message: there is nowhere to answer
            run = backend.cancel(
                _action_value(click, ids.CANCEL_RUN), by=actor, reason=f"cancelled by {actor.id}"
            )
            respond(text=f"Cancelled {messages.run_label(run)}.", replace_original=False)
        except NotPermitted as exc:
            respond(text=f":no_entry: {refused_text(exc, actor)}", replace_original=False)
        except BackendError as exc:
            respond(text=warning(exc), replace_original=False)
