"""A flow that takes an object as a parameter and as its answer, and logs both as it got
them: for ``test_literal_answer.py`` (served by ``served_flows.py``), which types Prefect's placeholders
(``__prefect_kind``) into them.

Run by an interpreter that has ``prefect`` installed (``python literal_answer_flow.py
NAME`` serves it as deployment ``literal-answer/NAME``).
"""

from __future__ import annotations

import json
import sys
from typing import Any

from prefect import flow, get_run_logger, serve
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Notes(RunInput):
    data: dict[str, Any]


@flow(name="literal-answer")
def literal_answer(note: dict[str, Any] | None = None) -> None:
    logger = get_run_logger()
    logger.info("parameter: %s", json.dumps(note, sort_keys=True))
    got = pause_flow_run(wait_for_input=Notes, timeout=300, poll_interval=1)
    logger.info("answer: %s", json.dumps(got.data, sort_keys=True))


if __name__ == "__main__":
    serve(literal_answer.to_deployment(name=sys.argv[1] if len(sys.argv) > 1 else "tests"))
