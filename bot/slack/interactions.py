"""The button that opens an input form, and the notices a person sees in a modal."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import Block, ContextBlock, MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from signoff.bot.backends import JSON, Action, Backend, Pause, PauseStatus, Run
from signoff.bot.errors import BackendError, RunNotFound
from signoff.bot.forms.labels import clip
from signoff.bot.forms.layout import MAX_TEXT
from signoff.bot.forms.modals import ModalError, build_input_view
from signoff.bot.forms.mrkdwn import escape_mrkdwn
from signoff.bot.slack import ids
from signoff.bot.slack.approvers import refusal_text, slack_actor
from signoff.bot.slack.deleted import GONE, close_pressed_prompt
from signoff.bot.slack.failures import reported
from signoff.bot.slack.form_schemas import FormSchemas, carried
from signoff.bot.slack.messages import responders_text, timed_out_text
from signoff.bot.slack.payloads import BlockActions
from signoff.bot.slack.sealing import MAX_METADATA, Sealer

logger = logging.getLogger(__name__)


def notice_view(title: str, text: str, context: str | None = None) -> View:
    """A modal that only says something (no inputs, so no submit button).

    ``text`` is clipped to a section's 3,000 characters: it often carries a flow's own
    words (a model's refusal), and slack_sdk refuses to send a longer section at all.
    ``context``, a line above it, says what it is about (the form's run and input).
    """
    blocks: list[Block] = []
    if context:
        blocks.append(ContextBlock(elements=[MarkdownTextObject(text=clip(context, MAX_TEXT))]))
    blocks.append(SectionBlock(text=MarkdownTextObject(text=clip(text, MAX_TEXT))))
    return View(type="modal", title=clip(title, 24), close="Close", blocks=blocks)


def form_context(run_id: str, key: str) -> str:
    """The line a form, and the notice that replaces it, shows first: its run and input."""
    return f"Run `{run_id[:8]}` · input `{key}`"


def stale_reason(backend: Backend, run: Run, key: str | None) -> str | None:
    """Why there is nothing to answer any more (already answered, timed out, ...)."""
    pause = backend.get_pause(run.id, key) if key else backend.waiting_pause(run.id)
    if pause is None and key:
        # Only a forged button, or one from a run stored elsewhere, names another key.
        return f"This run has asked for no input named `{escape_mrkdwn(key[:100])}`."
    if pause is None:
        return f"This run is {run.state.value} and is not waiting for input."
    if pause.status is PauseStatus.WAITING and run.state.is_waiting:
        # The deadline may have passed before the timer marked the pause as timed out.
        if pause.deadline is not None and pause.deadline <= datetime.now(UTC):
            return f"{timed_out_text(pause)}, so this input is closed."
        if pause.unanswerable is not None:
            return (
                f"Nobody can answer this input: {escape_mrkdwn(pause.unanswerable)}. "
                f"Cancel the run (`/runs cancel {run.id[:8]}`), and start it again if it is "
                "still needed."
            )
        return None
    if pause.status in (PauseStatus.ANSWERED, PauseStatus.ACCEPTED):
        return f"This input was already answered by {responders_text(pause)}."
    if pause.status is PauseStatus.REJECTED:
        return (
            f"This input was already answered by {responders_text(pause)}, and the answer "
            "was not accepted. If the run asks again, use the newest prompt in its thread."
        )
    if pause.status is PauseStatus.TIMED_OUT:
        return f"{timed_out_text(pause)}, so this input is closed."
    if pause.status is PauseStatus.WAITING:
        return f"This run is {run.state.value} and is not waiting for input."
    return "This run was cancelled."


def field_errors_ack(ack: Ack, block_errors: dict[str, str], fallback: str) -> None:
    """Show errors under the inputs, or (a form without inputs) as a notice.

    Bolt refuses ``response_action="errors"`` with an empty ``errors``.
    """
    if block_errors:
        ack(response_action="errors", errors=block_errors)
    else:
        ack(response_action="update", view=notice_view("Not accepted", fallback))


def form_schema(pause: Pause) -> dict[str, JSON]:
    """The schema a pause's form is built from and its submission read with."""
    return pause.schema or {"type": "object", "properties": {}, "title": "Continue"}


def input_view(
    run: Run,
    pause: Pause,
    metadata: str,
    initial: Mapping[str, Any],
    errors: Mapping[str, str] | None = None,
) -> View:
    """The form for ``pause``, prefilled with ``initial``; ``errors`` (by block id) show under
    their inputs. A form Slack cannot show becomes a notice saying why."""
    try:
        return build_input_view(
            form_schema(pause),
            initial=initial,
            title=run.flow_name,
            description=pause.description,
            context=form_context(run.id, pause.key),
            callback_id=ids.INPUT_VIEW,
            private_metadata=metadata,
            errors=errors,
        )
    except ModalError as exc:
        return notice_view("Cannot show form", f"This input cannot be shown in Slack: {exc}")


def register(app: App, backend: Backend, schemas: FormSchemas, sealer: Sealer) -> None:
    """Add the button that opens an input form to ``app`` (``bot.slack.input_forms`` takes the
    form's submission); ``schemas`` learns each opened form's schema."""

    @app.action(ids.PROVIDE_INPUT)
    @reported
    def open_form(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = BlockActions.model_validate(body)
        user = click.user.id
        action = next(a for a in click.actions if a.action_id == ids.PROVIDE_INPUT)
        run_id, _, key = (action.value or "").partition(":")
        actor = slack_actor(body["user"])
        if not run_id:
            # Every button of Signoff's names its run: this one was made elsewhere.
            view = notice_view("Nothing to do", "That button is not one of Signoff's.")
            client.views_open(trigger_id=click.trigger_id, view=view)
            return
        try:
            run = backend.get_run(run_id)
            reason = stale_reason(backend, run, key or None)
            pause = backend.get_pause(run.id, key) if key else backend.waiting_pause(run.id)
            if reason is None and pause is not None:
                refused = backend.refusal(Action.ANSWER, actor, run.id, pause.key)
                if refused is not None:
                    reason = refusal_text(Action.ANSWER, actor, run, refused)
        except RunNotFound:
            client.views_open(trigger_id=click.trigger_id, view=notice_view("Nothing to do", GONE))
            close_pressed_prompt(client, body, run_id)
            return
        except BackendError as exc:
            # The person clicked and waits: say so, rather than nothing happening.
            logger.warning(
                "cannot open an input form",
                extra={"action": "form_open_failed", "run_id": run_id, "error": str(exc)[:300]},
            )
            client.views_open(
                trigger_id=click.trigger_id,
                view=notice_view(
                    "Try again shortly",
                    f"Signoff cannot read this run just now: {escape_mrkdwn(str(exc))}"[:3000],
                ),
            )
            return
        if reason is not None or pause is None:
            channel = click.channel_id
            if channel:
                client.chat_postEphemeral(
                    channel=channel, user=user, text=reason or "Nothing to answer."
                )
            else:
                client.views_open(
                    trigger_id=click.trigger_id, view=notice_view("Nothing to do", reason or "")
                )
            logger.info("answer refused", extra={"action": "answer_refused", "run_id": run.id})
            return
        origin = click.container
        schema = form_schema(pause)
        meta: dict[str, JSON] = {
            "run": run.id,
            "key": pause.key,
            "channel": origin.channel_id if origin else None,
            "ts": origin.message_ts if origin else None,
        }
        metadata = sealer.seal(meta)
        if (schema_text := carried(schema)) is not None:
            # So that any replica can check the submission (see bot.slack.form_schemas).
            with_schema = sealer.seal({**meta, "schema": schema_text})
            metadata = with_schema if len(with_schema) <= MAX_METADATA else metadata
        client.views_open(
            trigger_id=click.trigger_id, view=input_view(run, pause, metadata, pause.initial)
        )
        # Most forms are submitted to the process that opened them: it need not read the
        # schema again to check the submission.
        schemas.remember(run.id, pause.key, schema)
        logger.info(
            "form opened", extra={"action": "form_opened", "run_id": run.id, "key": pause.key}
        )
