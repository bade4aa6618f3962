"""What the peer scripts share: the two-field answer, the 8 resumer threads, percentiles.

Peer scripts run in their own virtual environments, so this file imports nothing from
Signoff; each script adds this folder to ``sys.path``.
"""

from __future__ import annotations

import json
import queue
import sys
import threading
import time
from collections.abc import Callable
from typing import TypeVar

from pydantic import BaseModel

T = TypeVar("T")

ANSWER = {"approved": True, "reason": "looks good"}
RESUMERS = 8


class Approval(BaseModel):
    approved: bool
    reason: str


def resume_all(
    ids: list[str], resume: Callable[[str], None], threads: int = RESUMERS
) -> dict[str, float]:
    """Resume every id from ``threads`` threads at once; the wall-clock start of each call."""
    todo: queue.SimpleQueue[str] = queue.SimpleQueue()
    for run_id in ids:
        todo.put(run_id)
    starts: dict[str, float] = {}
    gate = threading.Barrier(threads)

    def work() -> None:
        gate.wait()
        while True:
            try:
                run_id = todo.get_nowait()
            except queue.Empty:
                return
            starts[run_id] = time.time()
            resume(run_id)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    return starts


def latencies(starts: dict[str, float], marks: dict[str, float]) -> list[float]:
    """Seconds from each resume call to the flow's next line."""
    return [marks[key] - start for key, start in starts.items()]


def wait_until(
    condition: Callable[[], T], timeout: float = 300, what: str = "", every: float = 0.002
) -> T:
    """Check ``condition`` every ``every`` seconds until it holds; what it returned then."""
    deadline = time.monotonic() + timeout
    while not (found := condition()):
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up waiting for {what}")
        time.sleep(every)
    return found


def emit(result: dict[str, object]) -> None:
    """One JSON object on the last stdout line: what the bench runner reads."""
    print(json.dumps(result), flush=True)
    sys.stdout.flush()
