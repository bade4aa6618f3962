"""Running a flow on a thread of the test, and finding the pause it waits on."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from signoff.engine import Engine, Pause
from tests.support.waiting import wait_for


def start(fn: Callable[..., Any], *args: Any) -> tuple[threading.Thread, dict[str, Any]]:
    """Call a flow on a thread; the box gets its result or exception."""
    box: dict[str, Any] = {}

    def body() -> None:
        try:
            box["result"] = fn(*args)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=body, daemon=True)
    thread.start()
    return thread, box


def waiting(engine: Engine, flow_name: str | None = None) -> Pause:
    """The pause a run (of ``flow_name``) waits on, once one does."""

    def find() -> Pause | None:
        for run in engine.list_runs(flow_name=flow_name, limit=5):
            pause = engine.waiting_pause(run.id)
            if pause is not None and run.state.is_waiting:
                return pause
        return None

    return wait_for(find, what="a run waiting for input")
