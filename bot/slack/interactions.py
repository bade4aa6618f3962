"""The button that opens an input form, and the form's submission that resumes the run."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt import Ack, App
from slack_sdk import WebClient
from slack_sdk.models.blocks import MarkdownTextObject, SectionBlock
from slack_sdk.models.views import View

from signoff.bot.backends import Action, Backend, Denied, PauseStatus, Refused, Run, Stale
from signoff.bot.errors import BackendError, RunNotFound, TamperedMetadata
from signoff.bot.forms.modals import ModalError, build_input_view
from signoff.bot.forms.submissions import errors_for_view, parse_submission
from signoff.bot.slack import ids, metrics
from signoff.bot.slack.approvers import refusal_text, slack_actor
from signoff.bot.slack.messages import who
from signoff.bot.slack.payloads import BlockActions, ViewSubmission
from signoff.bot.slack.sealing import Sealer

logger = logging.getLogger(__name__)


def notice_view(title: str, text: str) -> View:
    """A modal that only says something (no inputs, so no submit button)."""
    return View(
        type="modal",
        title=title[:24],
        close="Close",
        blocks=[SectionBlock(text=MarkdownTextObject(text=text))],
    )


def stale_reason(backend: Backend, run: Run, key: str | None) -> str | None:
    """Why there is nothing to answer any more (already answered, timed out, ...)."""
    pause = backend.get_pause(run.id, key) if key else backend.waiting_pause(run.id)
    if pause is None:
        return f"This run is {run.state.value} and is not waiting for input."
    if pause.status is PauseStatus.WAITING and run.state.is_waiting:
        # The deadline may have passed before the timer marked the pause as timed out.
        if pause.deadline is not None and pause.deadline <= datetime.now(UTC):
            return "Nobody answered in time, so this input is closed."
        return None
    if pause.status in (PauseStatus.ANSWERED, PauseStatus.ACCEPTED):
        return f"This input was already answered by {who(pause.responder)}."
    if pause.status is PauseStatus.REJECTED:
        return (
            f"This input was already answered by {who(pause.responder)}, and the answer was "
            "not accepted. If the run asks again, use the newest prompt in its thread."
        )
    if pause.status is PauseStatus.TIMED_OUT:
        return "Nobody answered in time, so this input is closed."
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


def register(app: App, backend: Backend, sealer: Sealer) -> None:
    """Add the input button and form listeners to ``app``."""

    @app.action(ids.PROVIDE_INPUT)
    def open_form(ack: Ack, body: dict[str, Any], client: WebClient) -> None:
        ack()
        click = BlockActions.model_validate(body)
        user = click.user.id
        action = next(a for a in click.actions if a.action_id == ids.PROVIDE_INPUT)
        run_id, _, key = (action.value or "").partition(":")
        actor = slack_actor(body["user"])
        try:
            run = backend.get_run(run_id)
        except RunNotFound:
            client.views_open(
                trigger_id=click.trigger_id,
                view=notice_view("Nothing to do", "That run no longer exists."),
            )
            return
        reason = stale_reason(backend, run, key or None)
        pause = backend.get_pause(run.id, key) if key else backend.waiting_pause(run.id)
        if reason is None and pause is not None:
            refused = backend.refusal(Action.ANSWER, actor, run.id, pause.key)
            if refused is not None:
                reason = refusal_text(Action.ANSWER, actor, run, refused)
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
        metadata = sealer.seal(
            {
                "run": run.id,
                "key": pause.key,
                "channel": origin.channel_id if origin else None,
                "ts": origin.message_ts if origin else None,
            }
        )
        try:
            view = build_input_view(
                pause.schema or {"type": "object", "properties": {}, "title": "Continue"},
                initial=pause.initial,
                title=run.flow_name,
                description=pause.description,
                context=f"Run `{run.id[:8]}` · input `{pause.key}`",
                callback_id=ids.INPUT_VIEW,
                private_metadata=metadata,
            )
        except ModalError as exc:
            view = notice_view("Cannot show form", f"This input cannot be shown in Slack: {exc}")
        client.views_open(trigger_id=click.trigger_id, view=view)
        logger.info(
            "form opened", extra={"action": "form_opened", "run_id": run.id, "key": pause.key}
        )

    @app.view(ids.INPUT_VIEW)
    def submit_form(ack: Ack, body: dict[str, Any]) -> None:
        submission = ViewSubmission.model_validate(body)
        actor = slack_actor(body["user"])
        user = submission.user.id
        try:
            meta = sealer.open(submission.view.private_metadata)
        except TamperedMetadata:
            logger.warning(
                "form with tampered metadata refused",
                extra={"action": "form_metadata_tampered", "user": user},
            )
            ack(
                response_action="update",
                view=notice_view(
                    "Not accepted", "This form was changed after it was opened; open it again."
                ),
            )
            return
        run_id, key = str(meta.get("run", "")), str(meta.get("key", ""))
        try:
            pause = backend.get_pause(run_id, key)
            run = backend.get_run(run_id)
        except RunNotFound:
            ack(
                response_action="update",
                view=notice_view("Nothing to do", "That run no longer exists."),
            )
            return
        if pause is None:
            ack(
                response_action="update",
                view=notice_view("Nothing to do", "That input no longer exists."),
            )
            return
        schema = pause.schema or {"type": "object", "properties": {}}
        values, problems = parse_submission(schema, submission.view.state.as_mapping())
        if problems:
            ack(response_action="errors", errors=problems)
            return
        try:
            outcome = backend.answer(run.id, key, values, responder=actor)
        except BackendError as exc:
            ack(response_action="update", view=notice_view("Something went wrong", str(exc)))
            return
        if isinstance(outcome, Refused):
            field_errors_ack(ack, errors_for_view(schema, outcome.errors), outcome.message)
            return
        if isinstance(outcome, Stale):
            reason = stale_reason(backend, backend.get_run(run.id), key) or outcome.reason
            ack(response_action="update", view=notice_view("Nothing to do", reason))
            return
        if isinstance(outcome, Denied):
            reason = refusal_text(Action.ANSWER, actor, run, outcome.refusal)
            ack(response_action="update", view=notice_view("Not allowed", reason))
            return
        answered = outcome.pause
        if answered.status is PauseStatus.WAITING:
            # One answer of a quorum: say so, since the prompt stays open for the others.
            ack(
                response_action="update",
                view=notice_view(
                    "Answer recorded",
                    f"Your answer is {len(answered.answers)} of the {answered.quorum} this "
                    "input needs; the run goes on once the others have answered.",
                ),
            )
        else:
            ack()
        if answered.status is not PauseStatus.WAITING:
            metrics.observe_answer(answered)
        logger.info(
            "input submitted", extra={"action": "input_submitted", "run_id": run.id, "key": key}
        )
