"""User group members as the bot's rules see them: read from Slack over HTTP (the sandbox),
kept a while, and never trusted past what Slack says about a change."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from signoff.bot.sandbox import SlackSandbox
from signoff.bot.slack import approvers
from signoff.bot.slack.approvers import Approvers
from tests.support.waiting import wait_for


@pytest.fixture
def slack() -> Iterator[SlackSandbox]:
    with SlackSandbox() as sandbox:
        sandbox.add_usergroup("S0SRE", "sre", ["U0ALICE", "U0CAROL"])
        yield sandbox


@pytest.fixture
def groups(slack: SlackSandbox) -> Approvers:
    return Approvers(slack.client())


def test_a_change_heard_while_the_group_is_read_is_not_undone_by_that_read(
    slack: SlackSandbox, groups: Approvers
) -> None:
    """The read in flight when Slack said carol left stored the members from before, and
    she could answer for the next 60 s."""
    slack.answer_late("usergroups.users.list", 1.0)  # answered with carol, a second late
    read: dict[str, frozenset[str]] = {}
    reader = threading.Thread(target=lambda: read.update(first=groups.members("S0SRE")))
    reader.start()
    # Slack has answered (with carol); the answer is on its way.
    wait_for(lambda: slack.calls("usergroups.users.list"), what="the read to reach Slack")
    slack.workspace.change_usergroup_members("S0SRE", ["U0ALICE"])
    groups.forget("S0SRE")  # what subteam_members_changed does
    reader.join(10)
    assert groups.members("S0SRE") == {"U0ALICE"}
    assert "U0CAROL" not in groups.members("S0SRE")


def test_members_are_not_trusted_for_ever_while_slack_refuses_to_read_them_again(
    slack: SlackSandbox, groups: Approvers, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert groups.members("S0SRE") == {"U0ALICE", "U0CAROL"}
    monkeypatch.setattr(approvers, "GROUP_TTL_SECONDS", 0.0)  # read again each time
    # A passing failure: the members read before still count.
    slack.fail_next("usergroups.users.list", status=429, retry_after=0)
    assert groups.members("S0SRE") == {"U0ALICE", "U0CAROL"}
    # Past the limit, nobody counts through the group until a read works.
    monkeypatch.setattr(approvers, "GROUP_STALE_LIMIT_SECONDS", 0.0)
    slack.fail_next("usergroups.users.list", status=429, retry_after=0)
    assert groups.members("S0SRE") == frozenset()
    slack.workspace.change_usergroup_members("S0SRE", ["U0ALICE"])
    assert groups.members("S0SRE") == {"U0ALICE"}
