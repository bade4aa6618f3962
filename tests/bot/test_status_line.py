"""How a finished run's status line shows the reason it ended."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from signoff.bot.backends import Run, RunState
from signoff.bot.forms.layout import MAX_TEXT
from signoff.bot.slack.messages import status_line

NOW = datetime(2026, 12, 5, tzinfo=UTC)


def failed(message: str) -> Run:
    return Run(
        id="0123456789abcdef",
        flow_name="deploy",
        state=RunState.FAILED,
        state_name="Failed",
        state_message=message,
        parameters={},
        created_at=NOW,
        updated_at=NOW,
        started_by=None,
    )


def test_a_failure_reason_is_shown_as_written_not_as_formatting() -> None:
    line = status_line(failed("TypeError: deploy() got **kwargs for _region_ and ~x~ `y`"))
    reason = line.split("is *failed*: ", 1)[1]
    # Slack shows a date token's fallback as written: none of these starts formatting.
    bare = re.sub(r"<!date\^0\^\{_\}\|[*_~`]>", "", reason)
    assert not set("*_~`") & set(bare)
    assert reason.startswith("TypeError: deploy() got <!date^0^{_}|*>")  # colons stay colons


def test_a_long_reason_full_of_formatting_is_cut_within_a_section() -> None:
    line = status_line(failed("*" * 5000))
    assert len(line) <= MAX_TEXT and line.endswith("…")
    assert line.removesuffix("…").endswith("<!date^0^{_}|*>")  # no token cut in half
