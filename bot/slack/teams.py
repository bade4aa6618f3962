"""Whose clicks and forms the app acts on: people of its own Slack workspace (or of its
Enterprise Grid organisation), and of the teams ``SIGNOFF_SLACK_OTHER_TEAMS`` names.

In a Slack Connect channel, people of another organisation see the run's messages and can
press their buttons. A decision that anyone in the channel may take (a flow with no
approvers) must not be taken by a partner's employee: their interactions are refused
before any listener runs, they are told so privately, and the refusal is logged
(``other_team_refused``). Slack gives the person's own team as ``user.team_id`` (an ``E``
organisation id on Enterprise Grid); a payload without one is acted on as before.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from slack_bolt import Ack, App
from slack_bolt.response import BoltResponse
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError
from slack_sdk.models.views import View

from signoff.bot.slack.decisions import tell_privately
from signoff.bot.slack.interactions import notice_view

logger = logging.getLogger(__name__)

#: the interactions that act on runs: a click (message, Home tab) and a form's submission
_ACTING = ("block_actions", "view_submission")

REFUSED_TEXT = (
    "Signoff here takes decisions from people of its own Slack workspace only, and your "
    "account belongs to another ({team}). Ask whoever runs Signoff to allow your team."
)


def allowed_teams(auth: Mapping[str, Any], others: Iterable[str]) -> frozenset[str]:
    """The app's own workspace and organisation (from ``auth.test``) and ``others``."""
    own = (auth.get("team_id"), auth.get("enterprise_id"))
    return frozenset(str(team) for team in (*own, *others) if team)


def acting_team(body: Mapping[str, Any]) -> str | None:
    """The team of the person behind an interaction that acts on runs, if Slack gave one."""
    if body.get("type") not in _ACTING:
        return None
    user = body.get("user")
    team = user.get("team_id") if isinstance(user, Mapping) else None
    return team if isinstance(team, str) and team else None


def refused_team(body: Mapping[str, Any], allowed: frozenset[str]) -> str | None:
    """The team of the person behind ``body`` when it is not in ``allowed`` (logged), or
    None. An empty ``allowed`` (the app's own team is not known) refuses nobody."""
    team = acting_team(body)
    if team is None or not allowed or team in allowed:
        return None
    user = body.get("user")
    logger.warning(
        "interaction from another Slack team refused",
        extra={
            "action": "other_team_refused",
            "user": str(user.get("id")) if isinstance(user, Mapping) else None,
            "team": team,
        },
    )
    return team


def refused_view(team: str) -> View:
    """What a form submitted by a person of ``team`` is replaced with."""
    return notice_view("Not accepted", REFUSED_TEXT.format(team=team))


def register(app: App, allowed: frozenset[str]) -> None:
    """Refuse interactions from people of teams not in ``allowed`` (an input form's
    submission over HTTP is answered before Bolt: ``InputForms`` checks it too)."""

    @app.middleware
    def only_allowed_teams(
        body: dict[str, Any], client: WebClient, ack: Ack, next: Callable[[], BoltResponse]
    ) -> BoltResponse | None:
        team = refused_team(body, allowed)
        if team is None:
            return next()
        if body.get("type") == "view_submission":
            ack(response_action="update", view=refused_view(team))
            return None
        text = REFUSED_TEXT.format(team=team)
        ack()
        try:
            tell_privately(client, body, text)
        except SlackApiError as exc:
            # The refusal stands; only telling them failed.
            logger.warning(
                "cannot tell a person of another team why they were refused",
                extra={"action": "slack_call_refused", "error": exc.response.get("error")},
            )
        return None


__all__ = [
    "REFUSED_TEXT",
    "acting_team",
    "allowed_teams",
    "refused_team",
    "refused_view",
    "register",
]
