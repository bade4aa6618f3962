"""A PostgreSQL session whose ``TimeZone`` is not UTC (``initdb`` takes the host's zone;
``PGTZ``; ``ALTER DATABASE ... SET timezone``) changes nothing an operator sees: the audit
trail verifies, and every time shown or written into a message is UTC."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

import pytest
from click.testing import CliRunner

from signoff.bot.cli.main import cli
from signoff.engine import Engine, EngineSettings, RunState, flow, pause_flow_run, set_engine
from signoff.engine.input import RunInput
from tests.conftest import FAST
from tests.support.waiting import wait_for


class Nod(RunInput):
    ok: bool


@flow(name="zoned-answered")
def zoned_answered() -> bool:
    return pause_flow_run(Nod, timeout=30).ok


@flow(name="zoned-timed-out")
def zoned_timed_out() -> None:
    pause_flow_run(Nod, timeout=0.3)


@pytest.fixture
def zoned_url(database_url: str) -> str:
    # UTC-5 in December: any time read back in the session's zone is five hours off.
    return f"{database_url}?options={quote('-c TimeZone=America/New_York')}"


@pytest.fixture
def zoned_engine(zoned_url: str) -> Iterator[Engine]:
    engine = Engine(EngineSettings.load(database_url=zoned_url, **FAST))
    previous = set_engine(engine)
    yield engine
    set_engine(previous)
    engine.close()


@pytest.mark.parametrize("database_url", ["postgres"], indirect=True)
def test_a_session_in_another_time_zone_verifies_and_shows_utc(
    zoned_engine: Engine, zoned_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    began = datetime.now(UTC)
    done: dict[str, object] = {}
    thread = threading.Thread(target=lambda: done.update(ok=zoned_answered()), daemon=True)
    thread.start()
    run = wait_for(
        lambda: next(
            iter(zoned_engine.list_runs([RunState.PAUSED], flow_name="zoned-answered")), None
        ),
        what="the run to pause",
    )
    zoned_engine.resume(run.id, {"ok": True}, "alice")
    thread.join(10)
    assert done == {"ok": True}
    with pytest.raises(Exception, match="nobody answered in time"):
        zoned_timed_out()

    shown = zoned_engine.get_run(run.id)
    assert shown.created_at.utcoffset() == timedelta(0)
    assert abs(shown.created_at - began) < timedelta(minutes=1)

    runner = CliRunner()
    verified = runner.invoke(cli, ["--database-url", zoned_url, "audit", "verify"])
    assert verified.exit_code == 0, verified.output
    assert "intact" in verified.output

    listed = runner.invoke(
        cli, ["--database-url", zoned_url, "runs", "list", "--flow", "zoned-answered"]
    )
    assert listed.exit_code == 0, listed.output
    assert (
        f"{began:%Y-%m-%d %H}" in listed.output
        or f"{datetime.now(UTC):%Y-%m-%d %H}" in listed.output
    )

    [ended] = zoned_engine.list_runs(flow_name="zoned-timed-out")
    assert ended.state is RunState.FAILED
    shown = runner.invoke(cli, ["--database-url", zoned_url, "runs", "show", ended.id])
    assert f"created     {ended.created_at:%Y-%m-%d %H:%M}" in shown.output, shown.output
    # The URL's options (with a space in them) reach the LISTEN connection too: it was
    # refused for good, and wake-ups fell back to polling.
    logged = [r.getMessage() for when in ("setup", "call") for r in caplog.get_records(when)]
    assert "LISTEN connection lost" not in logged
