"""Signoff's Prefect watcher while the server cannot be reached (restarting, down): it
keeps trying, and says so in one line a try rather than a traceback each time."""

from __future__ import annotations

import logging
import socket
import uuid

import pytest

from signoff.bot.backends.model import Event
from signoff.bot.backends.prefect import PrefectBackend, PrefectSettings
from tests.support.waiting import wait_for


class _Nobody:
    def on_event(self, event: Event) -> None:
        raise AssertionError(f"nothing can be delivered from an unreachable server: {event}")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_an_unreachable_server_is_logged_a_line_a_try_without_tracebacks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, logger="signoff.bot.backends.prefect")
    url = f"http://127.0.0.1:{_closed_port()}/api"
    backend = PrefectBackend(PrefectSettings.load(api_url=url, reconcile_seconds=0.2))
    watch = backend.watch("outage-test", _Nobody())
    watcher = backend._watchers[0]
    run_id = str(uuid.uuid4())
    try:
        watch.start()
        watcher.poke(run_id)  # as an event would: that run's sync fails too

        def tried(action: str, times: int) -> bool:
            return sum(getattr(r, "action", None) == action for r in caplog.records) >= times

        wait_for(
            lambda: tried("prefect_reconcile_failed", 2) and tried("prefect_sync_failed", 2),
            timeout=30,
            what="two failed reconciliations and two failed syncs",
        )
    finally:
        watch.stop()
        backend.close()
    failed = [
        r
        for r in caplog.records
        if getattr(r, "action", None) in ("prefect_reconcile_failed", "prefect_sync_failed")
    ]
    assert all(r.exc_info is None and r.levelno == logging.WARNING for r in failed)
    assert all("cannot be reached" in r.error for r in failed)  # type: ignore[attr-defined]
    synced = [r for r in failed if r.action == "prefect_sync_failed"]  # type: ignore[attr-defined]
    assert {r.run_id for r in synced} == {run_id}  # type: ignore[attr-defined]
