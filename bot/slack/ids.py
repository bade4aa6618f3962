"""Slash commands, callback ids and action ids: the only place Slack identifiers are spelled."""

from __future__ import annotations

RUNS_COMMAND = "/runs"
INPUT_VIEW = "signoff_input"
#: the view an input form becomes between the ack of its submission and the outcome
SUBMITTING_VIEW = "signoff_submitting"
START_VIEW = "signoff_start"
PROVIDE_INPUT = "provide_input"
CANCEL_RUN = "cancel_run"
SHOW_RUN = "show_run"
#: the next page of a /runs list (value: "SELECTOR|LAST_RUN_ID")
MORE_RUNS = "more_runs"
#: a one-click decision button (the suffix is the button's position: ids must be unique)
DECIDE = "decide"
REASSIGN = "reassign"
REASSIGN_VIEW = "signoff_reassign"
#: run metadata: a direct message already sent for (pause key, user)
DMS = "slack.dms"
#: run metadata: pause key -> the direct prompts sent for it (channel and ts)
DM_PROMPTS = "slack.dm_prompts"
#: durable event consumer name under which the bot reads the backend's run changes
CONSUMER = "slack"
#: run metadata keys
THREAD = "slack.thread"
PROMPTS = "slack.prompts"
#: event id -> ts of the thread note posted for it, so a redelivered event posts nothing
NOTES = "slack.notes"
#: the people whose Home tab was published because of the run (it is listed there), so
#: that they get it again once the run is deleted
HOMES = "slack.homes"


def reminder_key(pause_key: str) -> str:
    """Where the ts of the reminder posted for a pause is kept (claimed before posting)."""
    return f"slack.reminder.{pause_key}"


def posting_key(post_id: str) -> str:
    """Where the intent to make post ``post_id`` is claimed before the call (see notifier)."""
    return f"slack.posting.{post_id}"
