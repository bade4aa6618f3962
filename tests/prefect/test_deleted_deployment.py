"""A deployment deleted in Prefect (``prefect deployment delete``, or a flow deployed
again under a new name and the old one removed) keeps its paused runs, whose
``deployment_id`` then names nothing: they are still prompted, listed and answered."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.support.prefect import FLOWS, require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import PauseStatus, RunState
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.backends.prefect.local import LocalPrefect
from signoff.bot.backends.prefect.settings import NOBODY, Permissions
from signoff.bot.slack import ids
from signoff.bot.testing import serving
from tests.prefect.test_prefect_backend import CAROL, finished, runs
from tests.support.waiting import wait_for

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]


def test_a_paused_run_whose_deployment_was_deleted_is_still_prompted_and_answered(
    prefect_backend: PrefectBackend, prefect_api_url: str
) -> None:
    with LocalPrefect(api_url=prefect_api_url) as served:
        served.serve_flows(FLOWS, "doomed", deployments=5)
        run = prefect_backend.start_run("greet-user/doomed", {}, started_by=CAROL)
        wait_for(
            lambda: prefect_backend.waiting_pause(run.id),
            timeout=120,
            what=f"run {run.id} to pause",
        )
        deployment = httpx.get(f"{prefect_api_url}/deployments/name/greet-user/doomed").json()

        def deleted() -> bool:
            # A busy Prefect server answers 503 for a moment; it is then asked again.
            status = httpx.delete(f"{prefect_api_url}/deployments/{deployment['id']}").status_code
            assert status in (204, 503), status
            return status == 204

        wait_for(deleted, what="Prefect to delete the deployment")

        # A bot started after the deletion (it knows no name for the deployment): every read
        # of the run failed "Prefect refused GET /deployments/...: Deployment not found", so
        # no prompt was posted, and /runs failed for everyone while the run was listed.
        fresh = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, reconcile_seconds=2))
        with serving(fresh) as bot:
            root = bot.root_message(run.id, timeout=120)
            listed = runs(bot, "U0ALICE", "")
            assert run.id[:8] in json.dumps(listed.blocks)

            bot.driver.click("alice", root, action_id=ids.PROVIDE_INPUT)
            bot.slack.wait_for(lambda ws: ws.open_view("U0ALICE"), timeout=120)
            bot.driver.submit("alice", {"name": "Ada"})
            assert "Answer recorded" in json.dumps(bot.outcome("alice", timeout=120).view)
            assert finished(fresh, run.id).state is RunState.COMPLETED
            [asked] = fresh.detail(run.id).pauses
            assert (asked.status, asked.responder) == (PauseStatus.ACCEPTED, "U0ALICE")


def test_a_run_of_a_deleted_deployment_keeps_the_strictest_of_its_flows_rules() -> None:
    # Which deployment's entry was the run's is unknown: it may have been either.
    rules = Permissions(
        entries={
            "deploy": {"approvers": ["U0BOB", "U0CAROL"]},
            "deploy/prod": {"approvers": ["U0BOB"], "forbid_starter": True},
            "deploy/dev": {"approvers": ["U0CAROL"], "cancel": ["U0DAN"]},
            "other/prod": {"approvers": ["U0EVE"]},
        }
    )
    found = rules.for_unknown_deployment("deploy")
    assert found.approvers == [NOBODY]  # no one is in all three lists
    assert found.cancel == ["U0DAN"]
    assert found.forbid_starter is True
    # A deployment's entry alone still binds: the run may have been that deployment's.
    assert rules.for_unknown_deployment("other").approvers == ["U0EVE"]
    lone = Permissions(entries={"deploy": {"approvers": ["U0BOB"]}})
    assert lone.for_unknown_deployment("deploy").approvers == ["U0BOB"]
