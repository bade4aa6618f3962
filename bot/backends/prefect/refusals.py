"""Prefect's refusals, read as field errors: the server's schema check names the field.

Used where Prefect refuses what Signoff sent it: a run's parameters (``RunControl.start_run``)
and an answer to a paused run (``Answering.answer``).
"""

from __future__ import annotations

import re

#: Prefect's schema check names the field: "Validation failed for field 'size'. Failure
#: reason: 'tiny' is not one of [...]"
_FIELD_REJECTED = re.compile(
    r"Validation failed for field '(?P<field>[^']+)'\. Failure reason: (?P<why>.*)", re.S
)
_WHOLE_REJECTED = re.compile(r"Validation failed\. Failure reason: (?P<why>.*)", re.S)


def field_errors(reason: str) -> dict[str, str]:
    """Prefect's refusal of an answer as field path -> message (``""``: the whole input)."""
    text = reason.removeprefix("Reason: ")
    match = _FIELD_REJECTED.search(text)
    if match:
        path = match["field"].replace("[", ".").replace("]", "")
        return {path: match["why"].strip()}
    match = _WHOLE_REJECTED.search(text)
    return {"": (match["why"] if match else text).strip()}


__all__ = ["field_errors"]
