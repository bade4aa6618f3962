"""DBOS on its SQLite system database, measured like Signoff (run in its own venv).

A workflow waits in ``DBOS.recv`` for a two-field answer, validates it, and marks the
next line; resuming is ``DBOS.send``. Notifications are polled every millisecond, the
lowest interval DBOS allows.

Usage: python dbos_peer.py SCENARIO DB_PATH   (SCENARIO: cold, warm, burst)
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import ANSWER, Approval, emit, latencies, resume_all, wait_until
from dbos import DBOS, DBOSConfig

MARKS: dict[str, float] = {}
WAITING: set[str] = set()


@DBOS.workflow()
def wait_once(tag: str) -> None:
    WAITING.add(tag)
    answer = Approval.model_validate(DBOS.recv("answer", timeout_seconds=600))
    MARKS[tag] = time.time()
    assert answer.approved


def start(tags: list[str]) -> dict[str, str]:
    ids = {}
    for tag in tags:
        handle = DBOS.start_workflow(wait_once, tag)
        ids[tag] = handle.get_workflow_id()
    # recv is entered once the workflow body runs; give it the moment to subscribe.
    wait_until(lambda: set(tags) <= WAITING, what="workflows waiting in recv")
    time.sleep(0.05)
    return ids


def main() -> None:
    scenario, path = sys.argv[1], sys.argv[2]
    logging.getLogger("dbos").setLevel(logging.WARNING)
    config: DBOSConfig = {
        "name": "bench",
        "system_database_url": f"sqlite:///{path}",
        "notification_listener_polling_interval_sec": 0.001,
        "log_level": "WARNING",
    }
    DBOS(config=config)
    DBOS.launch()
    try:
        if scenario == "cold":
            tag = f"cold-{time.time_ns()}"
            ids = start([tag])
            began = time.time()
            DBOS.send(ids[tag], ANSWER, "answer")
            wait_until(lambda: tag in MARKS, what="the workflow's next line")
            emit({"latencies": [MARKS[tag] - began]})
        elif scenario == "warm":
            out = []
            for i in range(50):
                tag = f"warm-{time.time_ns()}-{i}"
                ids = start([tag])
                began = time.time()
                DBOS.send(ids[tag], ANSWER, "answer")
                wait_until(lambda tag=tag: tag in MARKS, what="the workflow's next line")
                out.append(MARKS[tag] - began)
            emit({"latencies": out})
        elif scenario == "burst":
            tags = [f"burst-{time.time_ns()}-{i}" for i in range(100)]
            ids = start(tags)
            starts = resume_all(tags, lambda tag: DBOS.send(ids[tag], ANSWER, "answer"))
            wait_until(lambda: len(MARKS) >= len(tags), what="every workflow's next line")
            emit({"latencies": latencies(starts, MARKS)})
        else:
            raise SystemExit(f"unknown scenario {scenario!r}")
    finally:
        DBOS.destroy()


if __name__ == "__main__":
    main()
