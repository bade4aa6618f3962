"""The reference flows on Prefect, for ``signoff demo --backend prefect`` and the tests.

Run as a script by an interpreter that has ``prefect`` installed (``python
prefect_flows.py NAME`` serves every flow as deployment ``<flow>/NAME``); Signoff's own
modules never import it. ``poll_interval`` is short so that a resumed flow notices within
a second instead of Prefect's default ten.
"""

from __future__ import annotations

import sys
from typing import Literal, cast

import pydantic
from prefect import flow, get_run_logger, serve
from prefect.deployments.runner import RunnerDeployment
from prefect.flow_runs import pause_flow_run, suspend_flow_run
from prefect.input import RunInput

#: seconds between a paused flow's checks for an answer (Prefect's default is 10)
POLL = 1


class UserName(RunInput):
    name: str


class ShirtOrder(RunInput):
    size: Literal["small", "medium", "large", "xlarge"]
    color: Literal["red", "green", "black"]

    @pydantic.field_validator("color")
    @classmethod
    def validate_age(cls, value: str, info: pydantic.ValidationInfo) -> str:
        if value == "green" and info.data.get("size") == "small":
            raise ValueError("Green is only in stock for medium, large, and XL sizes.")
        return value


class Approval(RunInput):
    approved: bool
    reason: str = "ok"


@flow(name="greet-user")
def greet_user() -> str:
    logger = get_run_logger()
    user = pause_flow_run(
        wait_for_input=UserName.with_initial_data(description="Who are you?", name="anonymous"),
        timeout=300,
        poll_interval=POLL,
    )
    logger.info(f"Hello, {user.name}!")
    return user.name


@flow(name="get-shirt-order")
def get_shirt_order() -> str:
    logger = get_run_logger()
    shirt_order = None
    while shirt_order is None:
        try:
            shirt_order = pause_flow_run(wait_for_input=ShirtOrder, timeout=300, poll_interval=POLL)
        except pydantic.ValidationError as exc:
            logger.error(f"Invalid size and color combination: {exc}")
    logger.info(f"Shirt order: {shirt_order.size}, {shirt_order.color}")
    return f"{shirt_order.size}/{shirt_order.color}"


@flow(name="wait-for-go")
def wait_for_go() -> str:
    pause_flow_run(timeout=300, poll_interval=POLL)
    get_run_logger().info("went on")
    return "went on"


@flow(name="quick-timeout")
def quick_timeout(seconds: int = 3) -> str:
    pause_flow_run(wait_for_input=UserName, timeout=seconds, poll_interval=POLL)
    return "answered"


@flow(name="deploy-release")
def deploy_release(version: str, replicas: int = 2) -> str:
    logger = get_run_logger()
    approval = suspend_flow_run(wait_for_input=Approval, timeout=300)
    logger.info(f"approved={approval.approved} version={version} replicas={replicas}")
    return f"{version}:{approval.approved}"


if __name__ == "__main__":
    name = sys.argv[1] if len(sys.argv) > 1 else "tests"
    # to_deployment is typed for async callers too; called here, it returns the deployment.
    deployments = [
        cast(RunnerDeployment, f.to_deployment(name=name))
        for f in (greet_user, get_shirt_order, wait_for_go, quick_timeout)
    ]
    release = deploy_release.to_deployment(name=name, description="Ship a release once approved.")
    serve(*deployments, cast(RunnerDeployment, release), limit=20)
