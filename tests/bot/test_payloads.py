"""Reading Slack's form-encoded bodies: what a person typed reaches the bot unchanged."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote, unquote_plus, urlencode

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from signoff.bot.errors import PayloadError
from signoff.bot.slack.approvers import MAX_NAME, slack_actor
from signoff.bot.slack.payloads import ViewSubmission, parse_request, unquote_form

FORM = "application/x-www-form-urlencoded"

#: escapes, stray and half escapes, pluses, backslashes (what the fast path rewrites) and
#: any other text, including characters UTF-8 cannot encode
_PIECES = st.one_of(
    st.sampled_from(["%", "%2", "%25", "%zz", "+", "\\", "\\x", "%5C", "%E2%9C%93", "%C3", "%FF"]),
    st.from_regex(r"%[0-9A-Fa-f]{2}", fullmatch=True),
    st.text(),
)


@given(st.lists(_PIECES).map("".join))
@example("\ud800%41")
@example("%4%41")
def test_form_values_decode_exactly_as_urllib_decodes_them(value: str) -> None:
    try:
        expected = unquote_plus(value, errors="strict")
    except UnicodeDecodeError:
        with pytest.raises(UnicodeDecodeError):
            unquote_form(value)
        return
    assert unquote_form(value) == expected


@pytest.mark.parametrize("escaped", ["Zed%FF%FE", "%C3", "caf%E9"])
def test_escapes_that_are_not_utf8_are_refused_not_replaced(escaped: str) -> None:
    """They were read as U+FFFD, and stored so in the answer and its audit record."""
    payload = quote(json.dumps(submission("x"))).replace("%22x%22", f"%22{escaped}%22")
    with pytest.raises(PayloadError, match="^a form field is not UTF-8 once its %-escapes"):
        parse_request(FORM, f"payload={payload}".encode())
    with pytest.raises(PayloadError, match="^a form field is not UTF-8 once its %-escapes"):
        parse_request(FORM, f"command=%2Fruns&text={escaped}".encode())


def submission(typed: str) -> dict[str, Any]:
    return {
        "type": "view_submission",
        "user": {"id": "U1"},
        "view": {
            "id": "V1",
            "type": "modal",
            "callback_id": "signoff_input",
            "private_metadata": "",
            "state": {"values": {"field:note": {"value": {"type": "x", "value": typed}}}},
        },
    }


@given(st.text(max_size=3000))  # Slack's longest text input
@example('50% "done" & {ok}: 100%25 \\ ✓ é')
def test_whatever_a_person_typed_reads_back_as_typed(typed: str) -> None:
    body = urlencode({"payload": json.dumps(submission(typed))}).encode()
    payload = parse_request(FORM, body)
    assert isinstance(payload, ViewSubmission)
    assert payload.view.state.as_mapping()["field:note"]["value"]["value"] == typed


def test_a_payload_field_beside_others_is_still_read_as_a_form() -> None:
    body = "payload=" + quote(json.dumps(submission("hi"))) + "&extra=1"
    payload = parse_request(FORM, body.encode())
    assert isinstance(payload, ViewSubmission)


@pytest.mark.parametrize("user_id", ["U0\x00ALICE", "U0 ALICE", "<@U0ALICE>", ""])
def test_a_user_id_slack_never_sends_is_refused_by_field(user_id: str) -> None:
    command = {"command": "/runs", "user_id": user_id, "response_url": "https://x.io/r"}
    with pytest.raises(PayloadError, match="user_id"):
        parse_request(FORM, urlencode(command).encode())
    event = {"type": "event_callback", "event": {"type": "app_home_opened", "user": user_id}}
    with pytest.raises(PayloadError, match="user"):
        parse_request("application/json", json.dumps(event).encode())


def test_a_display_name_is_kept_only_as_far_as_the_audit_trail_holds_it() -> None:
    actor = slack_actor({"id": "U0ALICE", "name": "al\x00ice" + "e" * 300})
    assert actor.id == "U0ALICE"
    assert actor.name == "alice" + "e" * (MAX_NAME - 5)
    # A name the engine would refuse (it could forge a line in a run's trail) is kept on
    # one line, and its owner can still act.
    forged = slack_actor({"id": "U0EVE", "name": "eve\n  2026-12-04 U0BOB: run.cancelled\x1b"})
    assert forged.name == "eve  2026-12-04 U0BOB: run.cancelled"
