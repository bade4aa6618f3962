"""``/runs start`` reads a value for a Prefect deployment's Enum parameter as the text it
is, as it does for the embedded engine's: Prefect's parameter schema points at the Enum
with ``#/definitions/...``, which was not followed, so ``python=3.11`` was sent as the
number 3.11 and Prefect refused it."""

from __future__ import annotations

import json

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import runs
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def test_an_enum_parameter_that_reads_as_a_number_is_sent_as_its_text(
    bot: ServedBot, served_flows: str
) -> None:
    reply = runs(bot, "U0ALICE", f"start release/{served_flows} python=3.11")
    # Before: "Prefect refused the parameters: python: 3.11 is not one of ['3.11', ...]".
    assert "not one of" not in json.dumps(reply.blocks) + reply.text, reply.text
    [run] = wait_for(
        lambda: bot.backend.list_runs(flow_name="release", limit=5),
        timeout=60,
        what="the release run",
    )
    assert run.parameters == {"python": "3.11"}
