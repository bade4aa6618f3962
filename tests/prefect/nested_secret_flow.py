"""A flow that asks for a model holding a secret inside a nested model: for
``test_nested_secret.py`` (served by ``served_flows.py``). Prefect stores the schema with its nested models under
``definitions`` (``$ref: #/definitions/Login``).

Run by an interpreter that has ``prefect`` installed (``python nested_secret_flow.py
NAME`` serves it as deployment ``nested-secret/NAME``).
"""

from __future__ import annotations

import sys

import pydantic
from prefect import flow, get_run_logger, serve
from prefect.flow_runs import pause_flow_run
from prefect.input import RunInput


class Login(pydantic.BaseModel):
    user: str
    password: pydantic.SecretStr


class Credentials(RunInput):
    login: Login


@flow(name="nested-secret")
def nested_secret() -> str:
    got = pause_flow_run(wait_for_input=Credentials, timeout=300, poll_interval=1)
    get_run_logger().info(f"logged in as {got.login.user}")
    return got.login.user


if __name__ == "__main__":
    serve(nested_secret.to_deployment(name=sys.argv[1] if len(sys.argv) > 1 else "tests"))
