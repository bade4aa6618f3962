"""A flow that asks for the same model twice, for two different decisions, and logs a
warning between them: for ``test_two_approvals.py`` (served by ``served_flows.py``).

Run by an interpreter that has ``prefect`` installed (``python two_approvals_flow.py NAME``
serves it as deployment ``two-approvals/NAME``).
"""

from __future__ import annotations

import sys

from prefect import flow, get_run_logger, serve
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Approval(RunInput):
    approved: bool
    reason: str = "ok"


@flow(name="two-approvals")
def two_approvals() -> str:
    logger = get_run_logger()
    build = pause_flow_run(
        wait_for_input=Approval.with_initial_data(description="Ship the build?"),
        timeout=300,
        poll_interval=1,
    )
    logger.warning(f"build approved ({build.reason}): the next step deploys to production")
    deploy = pause_flow_run(
        wait_for_input=Approval.with_initial_data(description="Deploy to production?"),
        timeout=300,
        poll_interval=1,
    )
    logger.info(f"deploy: {deploy.approved} ({deploy.reason})")
    return deploy.reason


if __name__ == "__main__":
    serve(two_approvals.to_deployment(name=sys.argv[1] if len(sys.argv) > 1 else "tests"))
