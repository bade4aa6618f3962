"""Prefect runs of open flows posted in a private channel: the backend says which runs of a
page are open to all, and reads where a page's runs are posted in one request (a copy in
each run's labels); through Slack, ``/runs`` keeps such a run from non-members."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.prefect import require_prefect

try:
    import prefect  # noqa: F401
except ImportError:
    require_prefect()

from signoff.bot.backends import Actor
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from signoff.bot.slack import ids
from signoff.bot.testing import serving
from tests.prefect.test_prefect_backend import runs

pytestmark = [pytest.mark.xdist_group("prefect-2"), pytest.mark.timeout(900)]

CAROL = Actor("U0CAROL")
PRIVATE = "C0HR"


@pytest.fixture
def backend(prefect_api_url: str, tmp_path: Path):
    rules = tmp_path / "permissions.json"
    rules.write_text(json.dumps({"greet-user": {"approvers": ["U0BOB"]}}))
    backend = PrefectBackend(PrefectSettings.load(api_url=prefect_api_url, permissions_file=rules))
    try:
        yield backend
    finally:
        backend.close()


def test_open_runs_and_their_threads_are_read_for_a_page_at_once(backend: PrefectBackend) -> None:
    named = backend.start_run("greet-user/tests", {}, started_by=CAROL)
    open_ = [
        backend.start_run("deploy-release/tests", {"version": f"9.{i}"}, started_by=CAROL)
        for i in range(3)
    ]
    try:
        page = [backend.get_run(r.id) for r in (named, *open_)]
        assert [r.id for r in backend.open_to_all(page)] == [r.id for r in open_]
        thread = {"channel": PRIVATE, "ts": "1700000000.000100"}
        backend.set_record(open_[0].id, ids.THREAD, thread)
        backend.add_record(open_[2].id, ids.THREAD, {"channel": "C0GENERAL", "ts": "2.5"})
        requests: list[str] = []
        backend.api._http.event_hooks["request"].append(lambda r: requests.append(str(r.url)))
        found = backend.get_records([r.id for r in page], ids.THREAD)
        assert found == {open_[0].id: thread, open_[2].id: {"channel": "C0GENERAL", "ts": "2.5"}}
        assert len(requests) == 1, requests
        # The record itself is as it was; moved, both say the new place.
        assert backend.get_record(open_[0].id, ids.THREAD) == thread
        backend.set_record(open_[0].id, ids.THREAD, {"channel": "C0GENERAL", "ts": "3.5"})
        assert backend.get_records([open_[0].id], ids.THREAD)[open_[0].id]["channel"] == (
            "C0GENERAL"
        )
    finally:
        for run in (named, *open_):
            backend.cancel(run.id, by=CAROL)


def test_runs_keeps_an_open_run_posted_in_a_private_channel_from_non_members(
    backend: PrefectBackend,
) -> None:
    with serving(backend) as bot:
        bot.slack.add_channel(PRIVATE, "hr", private=True, members=["carol"])
        run = backend.start_run(
            "deploy-release/tests",
            {"version": "7.7.7"},
            started_by=CAROL,
            tags={"slack.channel": PRIVATE},
        )
        try:
            bot.root_message(run.id, channel=PRIVATE, timeout=60)
            refused = runs(bot, "alice", f"show {run.id}").text
            assert refused.startswith(":no_entry: You may not view this")
            assert f"<#{PRIVATE}>" in refused and "7.7.7" not in refused
            listing = json.dumps(runs(bot, "alice", "deploy-release").blocks)
            assert run.id[:8] not in listing and "you may not view" in listing
            assert "7.7.7" in runs(bot, "carol", f"show {run.id}").text
            assert run.id[:8] in json.dumps(runs(bot, "carol", "deploy-release").blocks)
        finally:
            backend.cancel(run.id, by=CAROL)
