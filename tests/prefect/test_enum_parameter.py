"""``/runs start`` reads a value for a Prefect deployment's Enum parameter as the text it
is, as it does for the embedded engine's: Prefect's parameter schema points at the Enum
with ``#/definitions/...``, which was not followed, so ``python=3.11`` was sent as the
number 3.11 and Prefect refused it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends.prefect.local import LocalPrefect
from signoff.bot.testing import ServedBot
from tests.prefect.test_prefect_backend import runs
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]

FLOW = Path(__file__).with_name("enum_parameter_flow.py")


def test_an_enum_parameter_that_reads_as_a_number_is_sent_as_its_text(
    bot: ServedBot, prefect_api_url: str
) -> None:
    with LocalPrefect(api_url=prefect_api_url) as served:
        served.serve_flows(FLOW, "enum", deployments=1)
        reply = runs(bot, "U0ALICE", "start release/enum python=3.11")
        # Before: "Prefect refused the parameters: python: 3.11 is not one of ['3.11', ...]".
        assert "not one of" not in json.dumps(reply.blocks) + reply.text, reply.text
        [run] = wait_for(
            lambda: bot.backend.list_runs(flow_name="release", limit=5),
            timeout=60,
            what="the release run",
        )
        assert run.parameters == {"python": "3.11"}
