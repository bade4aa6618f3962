"""A flow that asks for input, fails on a small answer and is retried by Prefect, which
then asks again under the same key (``paused-1``): for ``test_retried.py`` (served by ``served_flows.py``).

Run by an interpreter that has ``prefect`` installed (``python retried_flow.py NAME``
serves it as deployment ``retry-pause/NAME``).
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger, serve
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Count(RunInput):
    n: int


# Resuming a pause counts as a run too, so one retry is not enough for a second ask.
@flow(name="retry-pause", retries=3, retry_delay_seconds=0)
def retry_pause() -> int:
    got = pause_flow_run(wait_for_input=Count, timeout=300, poll_interval=1)
    get_run_logger().info(f"got {got.n}")
    if got.n < 10:
        raise ValueError(f"{got.n} is too small")
    return got.n


if __name__ == "__main__":
    serve(retry_pause.to_deployment(name=sys.argv[1] if len(sys.argv) > 1 else "tests"))
