"""A run deleted in Prefect leaves the Home tabs that listed it: they are published again
without it."""

from __future__ import annotations

import json

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Actor
from signoff.bot.sandbox import Workspace
from signoff.bot.slack import ids
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import delete_in_prefect
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]

#: starts this test's run only, so no other test's runs come and go on the Home tab
DAVE = Actor("U0DAVE")


def home_text(ws: Workspace, user: str) -> str:
    found = ws.home_view(user)
    return json.dumps(found.view) if found else ""


def test_a_run_deleted_in_prefect_leaves_the_home_tabs_that_listed_it(bot: ServedBot) -> None:
    backend = bot.backend
    bot.slack.add_user("U0DAVE", "dave", "Dave Diaz")
    run = backend.start_run("greet-user/tests", {}, started_by=DAVE)
    bot.root_message(run.id, timeout=60)
    listed = bot.slack.wait_for(
        lambda ws: run.id[:8] in home_text(ws, "dave") and home_text(ws, "dave"), timeout=60
    )
    assert "Started by you" in listed
    wait_for(
        lambda: backend.get_record(run.id, f"{ids.CONSUMER}.delivered"),
        timeout=30,
        what="the prompt recorded as delivered",
    )
    delete_in_prefect(backend, run.id)

    # Before, the tab went on listing the deleted run (with its buttons) until Dave opened it.
    republished = bot.slack.wait_for(
        lambda ws: (h := home_text(ws, "dave")) and run.id[:8] not in h and h, timeout=60
    )
    assert "You have not started any runs." in republished
