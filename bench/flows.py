"""Flows the benchmarks run, in the bench process and in ``signoff worker`` processes.

A flow marks the moment its line after ``pause_flow_run`` runs: in ``MARKS`` when it runs
in the bench process, and as a line appended to ``$BENCH_MARKS`` (``tag wall-clock``)
when it runs in a worker, so the bench can pair each mark with its resume call.
"""

from __future__ import annotations

import os
import time

from signoff.engine import flow, pause_flow_run, task
from signoff.engine.input import RunInput

MARKS: dict[str, float] = {}


class Approval(RunInput):
    """The two-field input every scenario answers with (as the peers are measured)."""

    approved: bool
    reason: str


ANSWER = {"approved": True, "reason": "looks good"}


def _mark(tag: str) -> None:
    now = time.time()
    path = os.environ.get("BENCH_MARKS")
    if path:
        # O_APPEND writes of one short line do not interleave between threads or processes.
        with open(path, "a") as out:
            out.write(f"{tag} {now!r}\n")
    else:
        MARKS[tag] = now


@flow(name="bench-wait")
def wait_once(tag: str) -> None:
    answer = pause_flow_run(wait_for_input=Approval, timeout=None)
    _mark(tag)
    assert answer.approved


@flow(name="bench-wait-async")
async def wait_once_async(tag: str) -> None:
    answer = await pause_flow_run(wait_for_input=Approval, timeout=None)
    _mark(tag)
    assert answer.approved


@task
def step(i: int) -> int:
    return i


@flow(name="bench-noop")
def noop() -> None:
    return None


@flow(name="bench-ten-tasks")
def ten_tasks() -> int:
    return sum(step(i) for i in range(10))
