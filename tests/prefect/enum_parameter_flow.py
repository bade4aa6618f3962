"""A flow whose parameter is an Enum of texts that read as numbers: for
``test_enum_parameter.py`` (served by ``served_flows.py``). Prefect's parameter schema points at the Enum with
``#/definitions/Python``.

Run by an interpreter that has ``prefect`` installed (``python enum_parameter_flow.py
NAME`` serves it as deployment ``release/NAME``).
"""

from __future__ import annotations

import sys
from enum import Enum

from prefect import flow, serve


class Python(Enum):
    V311 = "3.11"
    V312 = "3.12"


@flow(name="release")
def release(python: Python = Python.V312) -> str:
    return python.value


if __name__ == "__main__":
    serve(release.to_deployment(name=sys.argv[1] if len(sys.argv) > 1 else "tests"))
