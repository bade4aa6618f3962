"""The flows ``signoff demo`` runs: the reference's two examples and a production deploy."""

from __future__ import annotations

from typing import Literal

import pydantic

from signoff.engine import flow, get_run_logger, pause_flow_run, task
from signoff.engine.input import RunInput


class UserNameInput(RunInput):
    name: str


class ShirtOrder(RunInput):
    size: Literal["small", "medium", "large", "xlarge"]
    color: Literal["red", "green", "black"]

    @pydantic.field_validator("color")
    @classmethod
    def in_stock(cls, value: str, info: pydantic.ValidationInfo) -> str:
        if value == "green" and info.data.get("size") == "small":
            raise ValueError("Green is only in-stock for medium, large, and XL sizes.")
        return value


class DeployApproval(RunInput):
    approve: bool = pydantic.Field(title="Approve this deploy")
    reason: str = pydantic.Field(title="Reason", min_length=3, max_length=300)
    window: Literal["now", "tonight", "weekend"] = pydantic.Field(
        default="now", title="Deploy window"
    )


@flow
def greet_user() -> str:
    logger = get_run_logger()
    user_input: UserNameInput = pause_flow_run(  # type: ignore[assignment]
        wait_for_input=UserNameInput.with_initial_data(name="anonymous")
    )
    greeting = (
        "Hello, stranger!" if user_input.name == "anonymous" else f"Hello, {user_input.name}!"
    )
    logger.info(greeting)
    return greeting


@flow
def get_shirt_order() -> str:
    logger = get_run_logger()
    shirt_order = None
    while shirt_order is None:
        try:
            shirt_order = pause_flow_run(wait_for_input=ShirtOrder)
        except pydantic.ValidationError as exc:
            logger.error(f"Invalid size and color combination: {exc}")
    logger.info(f"Shirt order: {shirt_order.size}, {shirt_order.color}")
    return f"{shirt_order.size} {shirt_order.color}"


@task
def build(service: str, version: str) -> str:
    return f"{service}:{version}"


@task
def roll_out(image: str, window: str) -> str:
    return f"{image} rolled out ({window})"


@flow(approvers=["U0BOB"], forbid_starter=True)
def deploy_production(service: str = "payments", version: str = "2.4.1") -> str:
    image = build(service, version)
    answer: DeployApproval = pause_flow_run(  # type: ignore[assignment]
        wait_for_input=DeployApproval.with_initial_data(
            description=(
                f"**{service} {version}** is built and passed staging.\n\n"
                "- 214 tests green\n- migration `0042` is backwards compatible\n\n"
                "Approve to roll it out to **production**."
            ),
            window="tonight",
        ),
        timeout=15 * 60,
    )
    if not answer.approve:
        get_run_logger().info(f"Deploy declined: {answer.reason}")
        return "declined"
    return roll_out(image, answer.window)
