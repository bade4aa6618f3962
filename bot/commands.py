"""``/runs``: list, show, start and cancel runs from Slack, answered ephemerally."""

from __future__ import annotations

import json
import logging
import shlex
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient

from bot import ids, messages
from bot.modals import ModalError, build_input_view
from bot.submissions import errors_for_view, parse_submission
from engine import Engine, EngineError, InvalidParameters, RunState

logger = logging.getLogger(__name__)

HELP = """*`/runs`* — runs waiting for input
*`/runs all|running|completed|failed|cancelled`* — runs in that state
*`/runs FLOW`* — runs of one flow
*`/runs show RUN`* — states, inputs with who gave them, and the log tail
*`/runs start FLOW [k=v ...]`* — start a run (a form asks for missing parameters)
*`/runs cancel RUN`* — cancel a run
*`/runs help`* — this help"""

FILTERS: dict[str, list[RunState] | None] = {
    "all": None,
    "running": [RunState.RUNNING, RunState.SCHEDULED],
    "waiting": [RunState.PAUSED, RunState.SUSPENDED],
    "completed": [RunState.COMPLETED],
    "failed": [RunState.FAILED, RunState.CRASHED],
    "cancelled": [RunState.CANCELLED],
}


def _parse_value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def show_text(engine: Engine, run_id: str) -> str:
    detail = engine.detail(run_id)
    run = detail.run
    lines = [messages.status_line(run), f"Parameters: `{json.dumps(run.parameters)[:500]}`"]
    if run.started_by:
        lines.append(f"Started by {messages.who(run.started_by)}")
    lines.append("*States:* " + " → ".join(f"{h.name} ({h.at:%H:%M:%S})" for h in detail.history))
    for pause in detail.pauses:
        answer = (
            f" by {messages.who(pause.responder)}: `{json.dumps(pause.response)[:300]}`"
            if pause.responder or pause.response
            else ""
        )
        rejected = (
            f" — rejected: {'; '.join(f'{k}: {v}' for k, v in pause.errors.items())}"
            if pause.errors
            else ""
        )
        lines.append(f"*Input* `{pause.key}` {pause.status.value}{answer}{rejected}")
    for task in detail.tasks:
        lines.append(
            f"*Task* `{task.key}` {task.state.value} ×{task.attempts} {task.result or task.error or ''}"
        )
    if detail.logs:
        lines.append(
            "*Log tail:*\n```"
            + "\n".join(f"{e.level} {e.message}" for e in detail.logs[-10:])[:1500]
            + "```"
        )
    return "\n".join(lines)[:3900]


def register(app: App, engine: Engine) -> None:
    """Add ``/runs`` and its buttons to ``app``."""

    def listing(selector: str) -> tuple[str, list[Any], list[str]]:
        if selector in FILTERS:
            runs = engine.list_runs(FILTERS[selector], limit=50)
            title = f"Runs: {selector}"
        elif selector:
            runs = engine.list_runs(flow_name=selector, limit=50)
            title = f"Runs of {selector}"
        else:
            runs = engine.list_runs([RunState.PAUSED, RunState.SUSPENDED], limit=50)
            title = "Runs waiting for input"
        waiting = [r.id for r in runs if r.state.is_waiting]
        return title, runs, waiting

    @app.command(ids.RUNS_COMMAND)
    def runs(ack: Ack, command: dict[str, Any], respond: Any, client: WebClient) -> None:
        ack()
        try:
            words = shlex.split(command.get("text") or "")
        except ValueError as exc:
            respond(f"Could not read that: {exc}\n{HELP}")
            return
        verb = words[0].lower() if words else ""
        user = command["user_id"]
        try:
            if verb == "help":
                respond(HELP)
            elif verb == "show" and len(words) == 2:
                respond(show_text(engine, engine.get_run(words[1]).id))
            elif verb == "cancel" and len(words) == 2:
                run = engine.cancel(words[1], by=user)
                respond(f"Cancelled {messages.run_label(run)}.")
            elif verb == "start" and len(words) >= 2:
                start(words[1], words[2:], command, respond, client)
            elif verb in ("show", "cancel", "start"):
                respond(
                    f"`/runs {verb}` needs {'a flow' if verb == 'start' else 'a run id'}.\n{HELP}"
                )
            elif len(words) <= 1 and (
                verb in FILTERS
                or verb == ""
                or engine.flows.get(verb)
                or engine.list_runs(flow_name=verb, limit=1)
            ):
                title, found, waiting = listing(verb)
                respond(text=title, blocks=messages.run_list_blocks(found, title, waiting))
            else:
                respond(f"Unknown command `{command.get('text')}`.\n{HELP}")
        except EngineError as exc:
            respond(f":warning: {exc}")

    def start(
        flow_name: str, pairs: list[str], command: dict[str, Any], respond: Any, client: WebClient
    ) -> None:
        flow = engine.flows.get(flow_name)
        if flow is None:
            known = ", ".join(engine.flows.names()) or "none"
            respond(f":warning: No flow named `{flow_name}`. Known flows: {known}")
            return
        params: dict[str, Any] = {}
        for pair in pairs:
            name, sep, value = pair.partition("=")
            if not sep:
                respond(f":warning: `{pair}` is not `name=value`")
                return
            params[name] = _parse_value(value)
        schema = flow.parameters_schema()
        missing = [p for p in schema.get("required", []) if p not in params]
        if missing:
            meta = json.dumps(
                {"flow": flow.name, "channel": command.get("channel_id"), "given": params}
            )
            try:
                view = build_input_view(
                    schema,
                    initial=params,
                    title=f"Start {flow.name}",
                    callback_id=ids.START_VIEW,
                    private_metadata=meta[:3000],
                    submit="Start",
                )
            except ModalError as exc:
                respond(
                    f":warning: Missing {', '.join(missing)}, and the parameters cannot be shown as a form: {exc}"
                )
                return
            client.views_open(trigger_id=command["trigger_id"], view=view)
            return
        run = engine.submit(
            flow.name,
            params,
            started_by=command["user_id"],
            tags={"slack.channel": command.get("channel_id") or ""},
        )
        respond(f"Started {messages.run_label(run)}.")

    @app.view(ids.START_VIEW)
    def start_submitted(ack: Ack, body: dict[str, Any], view: dict[str, Any]) -> None:
        meta = json.loads(view.get("private_metadata") or "{}")
        flow = engine.flows.get(str(meta.get("flow")))
        if flow is None:
            ack(response_action="errors", errors={})
            return
        schema = flow.parameters_schema()
        values, problems = parse_submission(schema, view["state"]["values"])
        if problems:
            ack(response_action="errors", errors=problems)
            return
        try:
            engine.submit(
                flow.name,
                {**meta.get("given", {}), **values},
                started_by=body["user"]["id"],
                tags={"slack.channel": meta.get("channel") or ""},
            )
        except InvalidParameters as exc:
            ack(response_action="errors", errors=errors_for_view(schema, exc.errors))
            return
        ack()

    @app.action(ids.SHOW_RUN)
    def show(ack: Ack, body: dict[str, Any], respond: Any) -> None:
        ack()
        try:
            respond(
                text=show_text(engine, str(body["actions"][0]["value"])), replace_original=False
            )
        except EngineError as exc:
            respond(text=f":warning: {exc}", replace_original=False)

    @app.action(ids.CANCEL_RUN)
    def cancel(ack: Ack, body: dict[str, Any], respond: Any) -> None:
        ack()
        try:
            run = engine.cancel(str(body["actions"][0]["value"]), by=body["user"]["id"])
            respond(text=f"Cancelled {messages.run_label(run)}.", replace_original=False)
        except EngineError as exc:
            respond(text=f":warning: {exc}", replace_original=False)
