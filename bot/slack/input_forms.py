"""The first step of an input form's submission, on the thread that acknowledges it.

Slack waits 3 s for the answer to a ``view_submission``, so ``InputForms`` makes only the
cheap checks there: open the sealed metadata, find the form's schema (``FormSchemas``: in
memory, or one read), read the submitted values. Values that cannot be read come back
inline (``response_action: errors``); otherwise the answer goes to ``bot.slack.answering``'s
``Answerer`` and the acknowledgement replaces the form with a "Submitting..." view.
``SlackEdge`` calls it from the HTTP thread; over Socket Mode, Bolt's listener does
(``register``).
"""

from __future__ import annotations

import logging
from typing import Any, Literal, overload

from slack_bolt import Ack, App, BoltRequest
from slack_sdk.models.views import View

from signoff.bot.backends import Backend
from signoff.bot.errors import BackendError, RunNotFound, TamperedMetadata
from signoff.bot.forms.submissions import parse_submission
from signoff.bot.slack import ids
from signoff.bot.slack.answering import Answerer, PendingAnswer, not_recorded
from signoff.bot.slack.approvers import slack_actor
from signoff.bot.slack.edge import replay_key
from signoff.bot.slack.failures import reported
from signoff.bot.slack.form_schemas import FormSchemas, uncarried
from signoff.bot.slack.interactions import form_schema, notice_view
from signoff.bot.slack.payloads import ViewSubmission
from signoff.bot.slack.redelivery import interaction_key
from signoff.bot.slack.sealing import Sealer
from signoff.bot.slack.teams import refused_team, refused_view

__all__ = [
    "InputForms",
    "register",
    "submitting_view",
]

# Under the name it logged as before this was split from bot.slack.answering: logging
# settings that name it keep working.
logger = logging.getLogger("signoff.bot.slack.answering")


def submitting_view() -> View:
    """What a person sees between the acknowledgement and the outcome."""
    view = notice_view("Submitting...", "Recording your answer...")
    view.callback_id = ids.SUBMITTING_VIEW
    return view


#: ``submitting_view`` as the acknowledgement sends it, built once: slack_sdk's
#: ``View.to_dict`` validates the whole view each time, a quarter of a millisecond.
_SUBMITTING = submitting_view().to_dict()


class InputForms:
    """The first step of an input form's submission: the cheap checks and what to
    acknowledge it with. ``SlackEdge`` calls it straight from the HTTP thread; over Socket
    Mode, Bolt's listener does (see ``register``).

    Example::

        forms = InputForms(backend, FormSchemas(), sealer, Answerer(backend, client))
        reply = forms.acknowledge(payload, signature)  # {"response_action": ...}
    """

    def __init__(
        self, backend: Backend, schemas: FormSchemas, sealer: Sealer, answers: Answerer
    ) -> None:
        self.backend = backend
        self.schemas = schemas
        self.sealer = sealer
        self.answers = answers
        #: the teams whose people may answer (``bot.slack.teams``); ``create_app`` sets
        #: them once Slack has named the app's own
        self.allowed_teams: frozenset[str] = frozenset()

    @overload
    def acknowledge(
        self, body: dict[str, Any], signature: str | None, at_once: Literal[False] = False
    ) -> dict[str, Any]: ...

    @overload
    def acknowledge(
        self, body: dict[str, Any], signature: str | None, at_once: bool
    ) -> dict[str, Any] | None: ...

    def acknowledge(
        self, body: dict[str, Any], signature: str | None, at_once: bool = False
    ) -> dict[str, Any] | None:
        """The acknowledgement of the ``view_submission`` payload ``body`` (signed with
        ``signature`` over HTTP; None over Socket Mode), after handing a readable answer to
        the ``Answerer``. With ``at_once``, None instead when that needs the backend (the
        form's schema is not in memory): the caller must not wait."""
        submission = ViewSubmission.model_validate(body)
        team = refused_team(body, self.allowed_teams)
        if team is not None:
            return _replace_with(refused_view(team))
        try:
            meta = self.sealer.open(submission.view.private_metadata)
        except TamperedMetadata:
            logger.warning(
                "form with tampered metadata refused",
                extra={"action": "form_metadata_tampered", "user": submission.user.id},
            )
            return _replace_with(
                notice_view(
                    "Not accepted", "This form was changed after it was opened; open it again."
                )
            )
        run_id, key = str(meta.get("run", "")), str(meta.get("key", ""))
        schema = self.schemas.get(run_id, key)
        if schema is None and isinstance(meta.get("schema"), str):
            # Opened on another replica: the form carries its schema (sealed).
            schema = uncarried(meta["schema"])
            self.schemas.remember(run_id, key, schema)
        if schema is None:
            if at_once:
                return None
            try:
                pause = self.backend.get_pause(run_id, key)
            except RunNotFound:
                return _replace_with(notice_view("Nothing to do", "That run no longer exists."))
            except BackendError as exc:
                return _replace_with(not_recorded(exc, run_id))
            if pause is None:
                return _replace_with(notice_view("Nothing to do", "That input no longer exists."))
            schema = form_schema(pause)
            self.schemas.remember(run_id, key, schema)
        values, problems = parse_submission(schema, submission.view.state.as_mapping())
        if problems:
            return {"response_action": "errors", "errors": problems}
        self.answers.submit(
            PendingAnswer(
                run_id,
                key,
                values,
                slack_actor(body["user"]),
                submission.view.id,
                submission.view.private_metadata,
                schema,
                # Over HTTP the edge left this request's replay claim to the answer (see
                # bot.slack.edge); Socket Mode requests come over our own connection.
                replay_key(signature) if signature else None,
                interaction_key(submission.trigger_id) if submission.trigger_id else None,
            )
        )
        return {"response_action": "update", "view": _SUBMITTING}


def _replace_with(view: View) -> dict[str, Any]:
    return {"response_action": "update", "view": view.to_dict()}


def register(app: App, forms: InputForms) -> None:
    """Add the input form's submission listener to ``app`` (Socket Mode's way in)."""

    @app.view(ids.INPUT_VIEW)
    @reported
    def submit_form(ack: Ack, body: dict[str, Any], request: BoltRequest) -> None:
        signature = request.headers.get("x-slack-signature", [None])[0]
        ack(**forms.acknowledge(body, signature))
