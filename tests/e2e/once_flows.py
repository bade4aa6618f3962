"""Flows for the delivery tests that run ``signoff serve`` as a subprocess (``--flows``)."""

from __future__ import annotations

from signoff.engine import flow, pause_flow_run
from signoff.engine.input import RunInput


class Amount(RunInput):
    amount: int


@flow(name="once-amount")
def once_amount() -> int:
    return pause_flow_run(wait_for_input=Amount, timeout=600).amount
